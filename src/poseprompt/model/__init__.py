"""The model: one module per idea of the paper (see lifter.py for the data flow)."""
from .lifter import PosePromptLifter, build_model

__all__ = ["PosePromptLifter", "build_model"]
