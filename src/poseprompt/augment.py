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


def random_occlusion(x: torch.Tensor, seeds: torch.Tensor, prob: float, skeleton: Skeleton = H36M17,
                     mode: str = "limbs") -> torch.Tensor:
    """Training augmentation: with probability ``prob`` a clip gets one joint group (a limb by
    default, see :func:`poseprompt.data.perturb.occlusion_groups`) hidden over a random span of
    frames: confidence 0 and coordinates 0, exactly like a missing detection.

    x: (B, T, N, 3); seeds: (B,) one integer per clip, so the draw does not depend on the batch.
    """
    from .data.perturb import occlusion_groups
    groups = torch.as_tensor(occlusion_groups(skeleton, mode))            # (G, N)
    out = x.clone()
    T = x.shape[1]
    for b, s in enumerate(seeds.tolist()):
        g = torch.Generator().manual_seed(int(s))
        if torch.rand((), generator=g) >= prob:
            continue
        joints = groups[torch.randint(len(groups), (), generator=g)]
        length = int(torch.randint(max(1, T // 4), T + 1, (), generator=g))
        start = int(torch.randint(0, T - length + 1, (), generator=g))
        out[b, start:start + length, joints] = 0.0
    return out
