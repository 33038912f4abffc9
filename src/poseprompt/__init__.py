"""Pose-adaptive prompting for monocular 3D human pose estimation (GAtFuN lifter + CLIP prompts).

Public surface: :func:`build_model`, :func:`load_checkpoint`, :class:`ModelConfig`.

The names are imported on first use (PEP 562), so that ``import poseprompt.data`` does not load
the model: each pipeline stage then depends on the code it really runs (tools/deps.py).
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"
__all__ = ["ModelConfig", "TextEncoderConfig", "PosePromptLifter", "build_model", "load_checkpoint",
           "save_checkpoint"]

_WHERE = {"ModelConfig": ".config.sections", "TextEncoderConfig": ".config.sections",
          "PosePromptLifter": ".model.lifter", "build_model": ".model.lifter",
          "load_checkpoint": ".model.checkpoint", "save_checkpoint": ".model.checkpoint"}


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
