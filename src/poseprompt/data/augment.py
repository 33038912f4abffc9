"""Training augmentation (horizontal flip, missing joints) and test-time flip averaging.

Flipping a clip mirrors it about the image's vertical centre line: the x coordinate is negated
(normalised 2D inputs are centred, see data/format.py; 3D camera-frame x likewise) and the left and
right joints swap names. A missing joint (confidence 0, coordinates 0) stays missing.

Missing joints (``train.occlusion``, :class:`OcclusionConfig`): a model that never saw a missing
joint in training fails on the first one at test time, so every variant trains with some clips
missing single joints or whole limbs over short spans, drawn with the same event machinery as the
evaluation's occlusion suites (:func:`poseprompt.data.perturb.occlusion_mask`). The suites then test
strengths beyond the training rate and patterns never trained (a whole body side, all joints over
a gap of frames).
"""
from __future__ import annotations


from typing import Sequence

import numpy as np
import torch

from poseprompt.config.sections import ConfigError, OcclusionConfig
from poseprompt.core.skeleton import H36M17, Skeleton


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


def occlusion_masks(seeds: Sequence[int], frames: int, cfg: OcclusionConfig,
                    skeleton: Skeleton = H36M17) -> np.ndarray:
    """Boolean (B, T, N) masks of the entries :func:`random_occlusion` hides, one clip per seed.

    Each clip draws from ``numpy.random.default_rng(seed)`` alone, so its mask does not depend on the
    other clips of the batch (the training loop passes one seed per clip and epoch)."""
    from poseprompt.data.perturb import occlusion_groups, occlusion_mask
    n = skeleton.num_joints
    per_mode = [occlusion_groups(skeleton, m) for m in cfg.modes]
    groups = np.concatenate(per_mode)                                        # (G, N)
    # a mode is picked uniformly, then a group of it: a mode's groups share 1 / len(modes)
    group_p = np.concatenate([np.full(len(g), 1.0 / (len(g) * len(per_mode))) for g in per_mode])
    reach = int(groups.any(0).sum())
    if cfg.max_rate * n > reach + 1e-9:
        raise ConfigError(f"train.occlusion.max_rate = {cfg.max_rate}: modes {list(cfg.modes)} can hide at most "
                          f"{reach / n:.3f} of the joints of skeleton {skeleton.name!r}")
    masks = np.zeros((len(seeds), frames, n), bool)
    for b, s in enumerate(seeds):
        rng = np.random.default_rng(int(s))
        if rng.random() >= cfg.prob:
            continue
        target = int(round(rng.uniform(0.0, cfg.max_rate) * frames * n))
        if target:
            masks[b] = occlusion_mask(frames, n, rng, target, groups, cfg.span, group_p)
    return masks


def random_occlusion(x: torch.Tensor, seeds: torch.Tensor, cfg: OcclusionConfig,
                     skeleton: Skeleton = H36M17) -> torch.Tensor:
    """Training augmentation: missing joints as ``train.occlusion`` describes (:class:`OcclusionConfig`).

    x: (B, T, N, 3) normalised x, y and confidence; seeds: (B,) one integer per clip. Hidden entries
    get confidence 0 and both coordinates 0, exactly like a missing detection; the confidences of
    the other entries are kept. Returns a new tensor (x is not modified)."""
    masks = torch.from_numpy(occlusion_masks(seeds.tolist(), x.shape[1], cfg, skeleton))   # (B, T, N)
    return x.masked_fill(masks.to(x.device).unsqueeze(-1), 0.0)
