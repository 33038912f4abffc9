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

from dataclasses import dataclass, fields
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from .config import ConfigError, check_keys
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


@dataclass(frozen=True)
class OcclusionConfig:
    """``train.occlusion``: missing joints as training augmentation, like a detector's dropped joints.

    A fraction ``prob`` of the training clips get missing joints. Such a clip draws a rate
    ``r ~ U(0, max_rate)`` (the fraction of its (frame, joint) 2D entries to hide) and events are
    added until about ``r`` is hidden: each event picks one of ``modes`` (uniformly; ``joints``: a
    single joint, ``limbs``: an arm or a leg, see :func:`poseprompt.data.perturb.occlusion_groups`),
    a group of that mode, and hides it over ``span`` = [min, max] frames (uniform, clipped to T).
    On average ``prob * max_rate / 2`` of the entries are hidden.
    """
    prob: float = 0.5
    max_rate: float = 0.25
    modes: tuple[str, ...] = ("joints", "limbs")
    span: tuple[int, int] = (2, 16)

    def __post_init__(self):
        from .data.perturb import OCCLUSION_MODES

        def fraction(v) -> bool:
            return isinstance(v, (int, float)) and not isinstance(v, bool) and 0.0 <= v <= 1.0
        if not fraction(self.prob):
            raise ConfigError(f"train.occlusion.prob = {self.prob!r}; expected a probability in [0, 1]")
        if not fraction(self.max_rate):
            raise ConfigError(f"train.occlusion.max_rate = {self.max_rate!r}; expected a fraction in [0, 1]")
        if not self.modes or any(m not in OCCLUSION_MODES for m in self.modes):
            raise ConfigError(f"train.occlusion.modes = {list(self.modes)!r}; expected a non-empty list of "
                              f"{list(OCCLUSION_MODES)}")
        span = self.span
        if not (len(span) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in span)
                and 1 <= span[0] <= span[1]):
            raise ConfigError(f"train.occlusion.span = {list(span)!r}; expected [min, max] frames, integers "
                              f"with 1 <= min <= max")

    @property
    def active(self) -> bool:
        return self.prob > 0 and self.max_rate > 0

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | "OcclusionConfig" | None) -> "OcclusionConfig":
        if isinstance(d, OcclusionConfig):
            return d
        if d is None:
            return cls()
        if not isinstance(d, Mapping):
            raise ConfigError(f"train.occlusion: expected a mapping with keys "
                              f"{sorted(f.name for f in fields(cls))}, got {d!r}")
        check_keys("train.occlusion", d, cls)
        d = dict(d)
        for key in ("modes", "span"):
            if key in d:
                if isinstance(d[key], str) or not isinstance(d[key], (list, tuple)):
                    raise ConfigError(f"train.occlusion.{key} = {d[key]!r}; expected a list")
                d[key] = tuple(d[key])
        return cls(**d)


def occlusion_masks(seeds: Sequence[int], frames: int, cfg: OcclusionConfig,
                    skeleton: Skeleton = H36M17) -> np.ndarray:
    """Boolean (B, T, N) masks of the entries :func:`random_occlusion` hides, one clip per seed.

    Each clip draws from ``numpy.random.default_rng(seed)`` alone, so its mask does not depend on the
    other clips of the batch (the training loop passes one seed per clip and epoch)."""
    from .data.perturb import occlusion_groups, occlusion_mask
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
