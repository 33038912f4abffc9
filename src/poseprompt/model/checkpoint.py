"""Self-describing checkpoints: the model is rebuilt from the file alone.

A checkpoint is one ``torch.save`` dict:

* ``format``/``version``: what the file is;
* ``model_config``: the full :class:`ModelConfig` as a dict;
* ``state_dict``: the weights. The frozen text tower is included when it is randomly initialised
  (the offline default: small, and needed to reproduce the run); with pretrained weights it is
  left out (63 M parameters per file for ViT-B-32) and rebuilt from open_clip on loading, and
  ``text_fingerprint`` guards against a different tower;
* optionally ``optimizer``, ``scheduler``, ``train_state`` (epoch, step, RNG states, best
  validation score), ``params`` (the params.yaml sections of the run) and ``init_state`` (the
  initial values of the new components' parameters, for the component audit: poseprompt/stages/audit.py).

Every value is a tensor, a plain container (dict, list, tuple), a string, a number, a boolean or
None, so that a checkpoint is read with ``torch.load(..., weights_only=True)``: PyTorch's restricted
unpickler, which refuses a file whose pickle asks for any other object (a function to call, a class
to build) instead of running it. Files from strangers are therefore safe to open.

Writes are atomic. A corrupt file, another format, a refused payload or a mismatched model gives a
:class:`CheckpointError` that names the file and what is wrong.
"""
from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import torch
from torch.torch_version import TorchVersion

from poseprompt.config.sections import ConfigError, ModelConfig
from poseprompt.core.io import atomic_path
from poseprompt.model.lifter import PosePromptLifter, build_model

FORMAT, VERSION = "poseprompt-checkpoint", 1


class CheckpointError(RuntimeError):
    pass


def _text_is_pretrained(model: PosePromptLifter) -> bool:
    return model.cfg.uses_text and model.cfg.text_encoder.is_pretrained


def save_checkpoint(path: str | Path, model: PosePromptLifter, *, optimizer=None, scheduler=None,
                    train_state: dict | None = None, params: dict | None = None,
                    init_state: dict | None = None) -> Path:
    state = model.state_dict()
    drop_text = _text_is_pretrained(model)
    if drop_text:
        state = {k: v for k, v in state.items() if not k.startswith("text.")}
    payload: dict[str, Any] = {
        "format": FORMAT, "version": VERSION,
        "model_config": model.cfg.to_dict(),
        "state_dict": state,
        "text_weights_included": not drop_text,
        "text_fingerprint": model.text.fingerprint() if model.cfg.uses_text else None,
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "train_state": train_state,
        "params": params,
        "init_state": init_state,
        "torch_version": str(torch.__version__),       # a plain str: TorchVersion is a class
    }
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """The checkpoint dict, validated; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found (train the variant first: `dvc repro train@<variant>`)")
    try:
        # Checkpoints written before torch_version was stored as a plain str hold a TorchVersion
        # (a str subclass without behaviour beyond comparisons): the one class allowed besides
        # what weights_only admits anyway.
        with torch.serialization.safe_globals([TorchVersion]):
            payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        refused = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
        if refused:
            raise CheckpointError(
                f"{path}: refused to load: its pickle asks for '{refused.group(1)}', which a poseprompt checkpoint "
                f"never contains (only tensors, plain containers, strings and numbers); the file was read with "
                f"torch.load(weights_only=True) and nothing from it was run") from None
        reason = re.search(r"WeightsUnpickler error:\s*(.*?)(?:\n\s*\n|$)", str(e), re.S)
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or corrupt file?): "
                              f"{reason.group(1).strip() if reason else e}") from e
    except Exception as e:
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or corrupt file?): {e}") from e
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a poseprompt checkpoint (field 'format' is "
                              f"{payload.get('format') if isinstance(payload, dict) else type(payload).__name__!r}, "
                              f"expected {FORMAT!r})")
    if payload.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint version {payload.get('version')!r}, expected {VERSION}")
    for key in ("model_config", "state_dict"):
        if key not in payload:
            raise CheckpointError(f"{path}: field {key!r} is missing")
    return payload


#: Model options added after checkpoints had been written, with the behaviour of the code before
#: them: a stored configuration without the key was trained that way (its default today differs).
LEGACY_DEFAULTS = {"context_norm": "sample"}


def load_state(model: PosePromptLifter, payload: dict, where: str = "<checkpoint>") -> None:
    """Load a checkpoint's weights into a model built from the same configuration."""
    state = payload["state_dict"]
    result = model.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not (k.startswith("text.") and not payload["text_weights_included"])]
    if missing or result.unexpected_keys:
        raise CheckpointError(f"{where}: weights do not match the model: missing {missing[:8]}, "
                              f"unexpected {result.unexpected_keys[:8]}")
    fp = payload.get("text_fingerprint")
    if fp is not None and model.cfg.uses_text:
        now = model.text.fingerprint()
        same = abs(now - fp) <= 1e-6 * max(1.0, abs(fp))
        if not same:            # a checkpoint written before fingerprints were taken on bf16-rounded weights
            same = abs(model.text.fingerprint(exact=True) - fp) <= 1e-6 * max(1.0, abs(fp))
        if not same:
            raise CheckpointError(f"{where}: the text encoder built from the configuration differs from the one "
                                  f"the checkpoint was trained with (fingerprint {now:.6g} vs {fp:.6g})")


def model_from_payload(payload: dict, where: str = "<checkpoint>",
                       map_location: str | torch.device = "cpu") -> PosePromptLifter:
    """The model of a checkpoint dict read by :func:`read_checkpoint` (in eval mode)."""
    stored = dict(payload["model_config"])
    for key, before in LEGACY_DEFAULTS.items():
        stored.setdefault(key, before)
    try:
        cfg = ModelConfig.from_dict(stored)
    except (ConfigError, TypeError) as e:
        raise CheckpointError(f"{where}: field 'model_config' is not a valid model configuration: {e}") from e
    model = build_model(cfg)
    load_state(model, payload, where)
    return model.to(map_location).eval()


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> PosePromptLifter:
    """Rebuild the model from the file alone (in eval mode)."""
    return model_from_payload(read_checkpoint(path, map_location), str(path), map_location)
