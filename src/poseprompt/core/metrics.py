"""Losses and metrics of the field, vectorised over any leading dimensions.

Poses are tensors (..., N, 3). Unless said otherwise a metric returns the mean over everything
(a scalar tensor); pass ``reduce=False`` to get per-frame values (...,) for weighting, masking and
per-action averaging. Units are those of the input (the pipeline reports millimetres).

* MPJPE (protocol 1): mean joint distance after putting the root at the origin.
* P-MPJPE (protocol 2): per frame, the best similarity transform (rotation with the reflection
  fixed, uniform scale, translation: orthogonal Procrustes) applied to the prediction, then MPJPE.
* N-MPJPE: per frame, the best uniform scale only (least squares), then MPJPE.
* MPJVE: mean distance of the first temporal differences (frames on axis -3).
* Acceleration error: mean distance of the second temporal differences.
* PCK@150mm and AUC (mean PCK over 0, 5, ..., 150 mm), as on MPI-INF-3DHP.
* Limb variants: the 12 limb joints, both poses centred at the mid-hip.
"""
from __future__ import annotations

import torch

from poseprompt.core.skeleton import H36M17, Skeleton


def _reduce(per_frame: torch.Tensor, reduce: bool) -> torch.Tensor:
    return per_frame.mean() if reduce else per_frame


def root_relative(pose: torch.Tensor, root: int = 0) -> torch.Tensor:
    return pose - pose[..., root:root + 1, :]


def mpjpe(pred: torch.Tensor, target: torch.Tensor, reduce: bool = True, root: int | None = 0) -> torch.Tensor:
    """Mean per-joint position error; per-frame values (...,) when ``reduce=False``."""
    if root is not None:
        pred, target = root_relative(pred, root), root_relative(target, root)
    return _reduce(torch.linalg.vector_norm(pred - target, dim=-1).mean(-1), reduce)


def n_mpjpe(pred: torch.Tensor, target: torch.Tensor, reduce: bool = True, root: int | None = 0) -> torch.Tensor:
    """MPJPE after the least-squares uniform scale ``s = <p, y> / <p, p>`` per frame."""
    if root is not None:
        pred, target = root_relative(pred, root), root_relative(target, root)
    num = (pred * target).sum((-1, -2), keepdim=True)
    den = (pred * pred).sum((-1, -2), keepdim=True).clamp_min(1e-12)
    return mpjpe(num / den * pred, target, reduce=reduce, root=None)


def procrustes_align(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``pred`` moved onto ``target`` by the best similarity transform, per frame (..., N, 3).

    With centred point sets P, Y and ``P^T Y = U S V^T``, the rotation is ``R = U diag(1,1,d) V^T``
    with ``d = sign(det(U V^T))`` (no reflections), the scale ``s = tr(diag(1,1,d) S) / |P|^2``.
    Computed in float64: the SVD of near-degenerate frames is unstable in float32.
    """
    dtype = pred.dtype
    p, y = pred.double(), target.double()
    mu_p, mu_y = p.mean(-2, keepdim=True), y.mean(-2, keepdim=True)
    p0, y0 = p - mu_p, y - mu_y
    h = p0.transpose(-1, -2) @ y0                       # (..., 3, 3)
    u, s, vt = torch.linalg.svd(h)
    d = torch.sign(torch.linalg.det(u @ vt))
    d = torch.where(d == 0, torch.ones_like(d), d)
    fix = torch.ones_like(s)
    fix[..., -1] = d
    rot = (u * fix.unsqueeze(-2)) @ vt                  # U diag(fix) V^T
    scale = (s * fix).sum(-1) / (p0 ** 2).sum((-1, -2)).clamp_min(1e-12)
    aligned = scale[..., None, None] * p0 @ rot + mu_y
    return aligned.to(dtype)


def p_mpjpe(pred: torch.Tensor, target: torch.Tensor, reduce: bool = True) -> torch.Tensor:
    return mpjpe(procrustes_align(pred, target), target, reduce=reduce, root=None)


def mpjve(pred: torch.Tensor, target: torch.Tensor, reduce: bool = True, root: int | None = 0) -> torch.Tensor:
    """Velocity error over frames (axis -3); per-frame values have T-1 entries."""
    if root is not None:
        pred, target = root_relative(pred, root), root_relative(target, root)
    dv = torch.diff(pred, dim=-3) - torch.diff(target, dim=-3)
    return _reduce(torch.linalg.vector_norm(dv, dim=-1).mean(-1), reduce)


def accel_error(pred: torch.Tensor, target: torch.Tensor, reduce: bool = True, root: int | None = 0) -> torch.Tensor:
    """Acceleration error over frames (axis -3); per-frame values have T-2 entries."""
    if root is not None:
        pred, target = root_relative(pred, root), root_relative(target, root)
    da = torch.diff(pred, n=2, dim=-3) - torch.diff(target, n=2, dim=-3)
    return _reduce(torch.linalg.vector_norm(da, dim=-1).mean(-1), reduce)


def pck(pred: torch.Tensor, target: torch.Tensor, threshold: float = 150.0, reduce: bool = True,
        root: int | None = 0) -> torch.Tensor:
    """Fraction of joints within ``threshold`` (same unit as the poses), per frame or overall."""
    if root is not None:
        pred, target = root_relative(pred, root), root_relative(target, root)
    dist = torch.linalg.vector_norm(pred - target, dim=-1)
    return _reduce((dist <= threshold).to(pred.dtype).mean(-1), reduce)


def auc(pred: torch.Tensor, target: torch.Tensor, max_threshold: float = 150.0, step: float = 5.0,
        reduce: bool = True, root: int | None = 0) -> torch.Tensor:
    """Mean PCK over the thresholds 0, step, ..., max_threshold."""
    if root is not None:
        pred, target = root_relative(pred, root), root_relative(target, root)
    dist = torch.linalg.vector_norm(pred - target, dim=-1)            # (..., N)
    th = torch.arange(0.0, max_threshold + step / 2, step, dtype=dist.dtype, device=dist.device)
    within = (dist.unsqueeze(-1) <= th).to(dist.dtype)                 # (..., N, K)
    return _reduce(within.mean((-1, -2)), reduce)


def limb_centred(pose: torch.Tensor, skeleton: Skeleton = H36M17) -> torch.Tensor:
    """The 12 limb joints, centred at the mid-hip (for cross-dataset comparisons)."""
    r_hip, l_hip = skeleton.joints.index("right_hip"), skeleton.joints.index("left_hip")
    mid_hip = 0.5 * (pose[..., r_hip:r_hip + 1, :] + pose[..., l_hip:l_hip + 1, :])
    return pose[..., list(skeleton.limbs), :] - mid_hip


def limb_mpjpe(pred, target, reduce=True, skeleton: Skeleton = H36M17):
    return mpjpe(limb_centred(pred, skeleton), limb_centred(target, skeleton), reduce=reduce, root=None)


def limb_p_mpjpe(pred, target, reduce=True, skeleton: Skeleton = H36M17):
    return p_mpjpe(limb_centred(pred, skeleton), limb_centred(target, skeleton), reduce=reduce)


#: Per-frame metric functions used by evaluation: name -> (function, temporal offset).
#: The offset says how many frames the metric loses (velocity 1, acceleration 2).
FRAME_METRICS = {
    "mpjpe": (mpjpe, 0),
    "p_mpjpe": (p_mpjpe, 0),
    "n_mpjpe": (n_mpjpe, 0),
    "mpjve": (mpjve, 1),
    "accel": (accel_error, 2),
    "pck150": (pck, 0),
    "auc": (auc, 0),
    "limb_mpjpe": (limb_mpjpe, 0),
    "limb_p_mpjpe": (limb_p_mpjpe, 0),
}


def training_loss(pred: torch.Tensor, target: torch.Tensor, w_nmpjpe: float = 0.5, w_velocity: float = 20.0,
                  mask: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``MPJPE + w_n N-MPJPE + w_v velocity loss`` on clips (B, T, N, 3) in metres.

    The velocity term is the mean distance between predicted and true frame differences (the
    MPJVE in metres per frame). ``mask`` (B, T) excludes padded frames. Returns the total and the
    terms (detached) for logging.
    """
    per_frame = mpjpe(pred, target, reduce=False)                      # (B, T)
    per_frame_n = n_mpjpe(pred, target, reduce=False)
    vel = mpjve(pred, target, reduce=False)                            # (B, T-1)
    if mask is None:
        l_pos, l_n, l_vel = per_frame.mean(), per_frame_n.mean(), vel.mean()
    else:
        m = mask.to(pred.dtype)
        mv = m[:, 1:] * m[:, :-1]
        l_pos = (per_frame * m).sum() / m.sum().clamp_min(1)
        l_n = (per_frame_n * m).sum() / m.sum().clamp_min(1)
        l_vel = (vel * mv).sum() / mv.sum().clamp_min(1)
    total = l_pos + w_nmpjpe * l_n + w_velocity * l_vel
    return total, {"loss": total.detach(), "mpjpe": l_pos.detach(), "n_mpjpe": l_n.detach(),
                   "velocity": l_vel.detach()}
