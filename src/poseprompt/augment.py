"""Horizontal flip: training augmentation and test-time flip averaging.

Flipping a clip mirrors it about the image's vertical centre line: the x coordinate is negated
(normalised 2D inputs are centred, see data/format.py; 3D camera-frame x likewise) and the left and
right joints swap names. A missing joint (confidence 0, coordinates 0) stays missing.
"""
from __future__ import annotations

import torch

from .skeleton import H36M17, Skeleton


def flip_pose(pose: torch.Tensor, skeleton: Skeleton = H36M17) -> torch.Tensor:
    """Mirror (..., N, C) poses: negate channel 0 (x), swap left/right. Other channels (y, z,
    confidence) are carried along with their joint."""
    perm = torch.as_tensor(skeleton.flip_permutation, device=pose.device)
    out = pose.index_select(-2, perm).clone()
    out[..., 0] = -out[..., 0]
    return out


@torch.no_grad()
def predict_with_flip(model, x: torch.Tensor, slot_texts=None, skeleton: Skeleton = H36M17) -> torch.Tensor:
    """Test-time flip averaging: ``(f(x) + flip(f(flip(x)))) / 2``."""
    y = model(x, slot_texts=slot_texts)
    y_flip = flip_pose(model(flip_pose(x, skeleton), slot_texts=slot_texts), skeleton)
    return 0.5 * (y + y_flip)
