"""Pose-adaptive prompting for monocular 3D human pose estimation (GAtFuN lifter + CLIP prompts).

Public surface: :func:`build_model`, :func:`load_checkpoint`, :class:`ModelConfig`.
"""
from .config import ModelConfig, TextEncoderConfig
from .model import PosePromptLifter, build_model
from .checkpoint import load_checkpoint, save_checkpoint

__version__ = "0.1.0"
__all__ = ["ModelConfig", "TextEncoderConfig", "PosePromptLifter", "build_model", "load_checkpoint",
           "save_checkpoint"]
