"""Multi-scale Gaussian temporal context pooling (paper eq. 8-10).

Head ``h`` filters every channel over time with ``g_h(tau) = exp(-(tau - mu_h)^2 / (2 sigma_h^2))``
on the offsets ``tau = -R..R`` (eq. 8): ``X_t^(h) = sum_tau g_h(tau) X_{t-tau}`` (eq. 9), then
``v_t^(h) = Pool_{t,n}(eta(X^(h)))`` (eq. 10). Small ``sigma_h`` keeps short-term kinematics, large
``sigma_h`` averages over long-range motion; ``mu_h`` (learned only with ``temporal_shift``) moves
the kernel towards the past (mu > 0) or the future (mu < 0).

Decisions written down:

* kernels are normalised to sum 1 over their support, so the filter's gain does not depend on
  ``sigma_h`` and a constant sequence stays that constant (tested);
* sequence edges: frames outside [0, T) are replaced by the nearest edge frame (replicate
  padding), folded into a (T, T) filtering matrix per head;
* as in the spatial pooling, ``eta``'s linear part commutes with the filter and is applied
  first, and ``eta`` ends in a GELU, without which mean pooling would erase the kernels' shape
  (the mean over t of a normalised filtering is, up to edge effects, the plain mean); what enters
  the GELU is normalised per token and head (LayerNorm without parameters, then a learnable bias),
  so the nonlinearity acts from the first step (spatial_pool.py says why).

* ``filter="detail"`` (``model.temporal_filter``) takes what the smoothing removes,
  ``X^(h) = X - g_h * X``: head h sees the motion at time scales below ``sigma_h`` (a small
  ``sigma_h`` the frame-to-frame kinematics, a large one the motion over the whole window) and no
  head sees the static pose, which the spatial pooling already carries. With the paper's
  ``smooth`` form on short windows (T = 16) every head pools nearly the plain mean: the pose
  features change little within a window, so smoothing them changes little (measured: heads'
  cosine 0.9993, knock-out 0.0 mm; see README, "Decisions"). What enters the GELU is then
  divided by one running root-mean-square per head (a buffer: set by the first training batch,
  then an exponential average with rate 0.01; frozen in ``eval``), not by a LayerNorm per token,
  which would give a still and a fast sample the same unit scale and erase the motion's amplitude.
  The knock-out (and ``mode="mean"``) pool the unfiltered features with the LayerNorm per token.
  Measured (README, "Model decisions"): ``detail`` makes the heads distinct (cosine 0.85) but gives
  the error of ``smooth`` on the synthetic default (75.0 against 75.1 mm) and no gain on real motion
  capture, and replacing its heads by the plain mean still costs nothing; the default keeps the
  paper's ``smooth``.

``mode="mean"`` is the ablation: no temporal filter, one head, ``v_t = Pool(eta(X))``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from poseprompt.config.sections import TEMPORAL_FILTERS


class GaussianTemporalPool(nn.Module):
    def __init__(self, width: int, context_dim: int, heads: int, radius: int, learn_shift: bool = False,
                 mode: str = "gaussian", filter: str = "smooth"):
        super().__init__()
        if filter not in TEMPORAL_FILTERS:
            raise ValueError(f"temporal filter {filter!r}; expected one of {list(TEMPORAL_FILTERS)}")
        self.mode, self.radius, self.filter = mode, radius, filter
        self.eta = nn.Linear(width, context_dim, bias=False)
        self.eta_bias = nn.Parameter(torch.zeros(context_dim))
        self.heads = heads if mode == "gaussian" else 1
        if mode == "gaussian":
            # scales spread geometrically from one frame to the half radius: short to long range
            s0 = torch.logspace(0.0, math.log10(max(radius / 2, 1.0)), heads)
            self.sigma_raw = nn.Parameter(torch.log(torch.expm1(s0)))
            self.mu = nn.Parameter(torch.zeros(heads), requires_grad=learn_shift)
        self.running_scale = filter == "detail" and mode == "gaussian"
        if self.running_scale:          # only here, so that a smooth model's checkpoint keeps its keys
            self.register_buffer("u_ms", torch.ones(self.heads))    # running mean square per head
            self.register_buffer("seen", torch.tensor(False))
        self.register_buffer("offsets", torch.arange(-radius, radius + 1, dtype=torch.float32))
        self.probe: dict | None = None
        self.knocked_out = False        # audit switch: heads replaced by the plain mean

    @property
    def sigma(self) -> torch.Tensor:
        return F.softplus(self.sigma_raw) + 1e-3

    def kernels(self, tau: torch.Tensor | None = None, normalise: bool = True) -> torch.Tensor:
        """``g_h(tau)`` (H, len(tau)); normalised over the support ``-R..R`` unless told otherwise."""
        g = torch.exp(-(self.offsets[None, :] - self.mu[:, None]) ** 2 / (2 * self.sigma[:, None] ** 2))
        scale = g.sum(-1, keepdim=True) if normalise else 1.0
        if tau is None:
            return g / scale
        g_tau = torch.exp(-(tau[None, :] - self.mu[:, None]) ** 2 / (2 * self.sigma[:, None] ** 2))
        return g_tau / scale

    def filters(self, frames: int) -> torch.Tensor:
        """(H, T, T) matrices M with ``(M X)_t = sum_tau g(tau) X_clamp(t - tau)`` (``smooth``), or
        ``I - M`` (``detail``: what the smoothing removes)."""
        g = self.kernels()                                                    # (H, 2R+1)
        t = torch.arange(frames, device=g.device)
        src = (t[:, None] - self.offsets.long()[None, :]).clamp(0, frames - 1)   # (T, 2R+1)
        m = g.new_zeros(self.heads, frames, frames)
        m = m.scatter_add(2, src.expand(self.heads, -1, -1), g[:, None, :].expand(-1, frames, -1))
        if self.filter == "detail":
            m = torch.eye(frames, device=g.device) - m
        return m

    def filtered(self, x: torch.Tensor) -> torch.Tensor:
        """``eta``-projected, filtered features before the nonlinearity: (B, H, T, N, D_c)."""
        y = self.eta(x)                                                         # (B, T, N, Dc)
        if self.mode != "gaussian":
            return y.unsqueeze(1)
        if self.knocked_out:                    # audit: every head the identity (plain mean, as mode "mean")
            return y.unsqueeze(1).expand(-1, self.heads, -1, -1, -1)
        return torch.einsum("htu,bunc->bhtnc", self.filters(x.shape[1]), y)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Context vectors ``v_t^(h)``: (B, H, D_c)."""
        u = self.filtered(x)
        if self.running_scale and not self.knocked_out:
            # one running scale per head (not per token): how much a sample moves survives
            if self.training:
                with torch.no_grad():
                    ms = u.pow(2).mean(dim=(0, 2, 3, 4))
                    if not bool(self.seen):
                        self.u_ms.copy_(ms)
                        self.seen.fill_(True)
                    else:
                        self.u_ms.lerp_(ms, 0.01)
            u = u * torch.rsqrt(self.u_ms + 1e-12)[None, :, None, None, None]
        else:
            u = F.layer_norm(u, u.shape[-1:])
        v = F.gelu(u + self.eta_bias).mean(dim=(2, 3))
        if self.probe is not None:
            self.probe["v_t_heads"] = v.detach()
        return v
