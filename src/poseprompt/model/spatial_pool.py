"""Spectral Laplacian spatial context pooling (paper eq. 3-7).

With the skeleton's combinatorial Laplacian ``L = U diag(lambda) U^T`` (eq. 3), features are taken
to the graph-frequency domain ``X~ = U^T X`` (eq. 4). Head ``h`` keeps a Gaussian band of
frequencies ``w_h(lambda) = exp(-(lambda - mu_h)^2 / (2 sigma_h^2))`` (eq. 5), goes back to the
joints and mixes with the input through a residual gate (eq. 6)::

    X^(h) = X + alpha_h (U (w_h * X~) - X) = G_h X,    G_h = I + alpha_h (U diag(w_h) U^T - I)

then ``v_s^(h) = Pool_{t,n}(rho(X^(h)))`` (eq. 7). Small ``mu_h`` keeps the smooth, whole-body
components (``lambda_0 = 0`` is the mean over joints), large ``mu_h`` the local articulation.

Implementation facts and decisions:

* ``rho``'s linear part acts on channels and ``G_h`` on joints, so they commute: the projection to
  ``D_c`` is applied first and the filter runs on the narrower features;
* ``rho`` ends in a GELU. With a purely linear ``rho`` and mean pooling the band masks would be
  invisible: ``mean_n U diag(w) U^T X = w(0) mean_n X`` because U's first column is constant and
  the others are orthogonal to it, so every head would pool the same vector up to a scale;
* what enters the GELU is **normalised** per token and head (a LayerNorm over the D_c channels
  without parameters, then a learnable bias): ``rho(X)`` of a freshly initialised model has an rms
  of about 0.004, where a GELU is linear, so without the normalisation the nonlinearity does not act
  and every head pools a scaled plain mean (cosine 1.0000, measured). The normalisation also gives
  every head the same scale whatever the gain of its band, so a narrow high-frequency band is not
  drowned by the whole-body one.

``mode="mean"`` is the ablation: no spectral filter, one head, ``v_s = Pool(rho(X))``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from poseprompt.core.skeleton import Skeleton


class LaplacianContextPool(nn.Module):
    def __init__(self, skeleton: Skeleton, width: int, context_dim: int, heads: int, mode: str = "laplacian"):
        super().__init__()
        self.mode = mode
        lam, u = skeleton.spectrum()
        self.register_buffer("eigvals", torch.tensor(lam, dtype=torch.float32))   # lambda (N,)
        self.register_buffer("U", torch.tensor(u, dtype=torch.float32))          # (N, N), columns = modes
        self.rho = nn.Linear(width, context_dim, bias=False)
        self.rho_bias = nn.Parameter(torch.zeros(context_dim))
        self.heads = heads if mode == "laplacian" else 1
        if mode == "laplacian":
            lam_max = float(lam.max())
            # centres spread over the spectrum, bandwidth about one band's width
            self.mu = nn.Parameter(torch.linspace(0.0, lam_max, heads))
            sigma0 = lam_max / max(heads, 2)
            self.sigma_raw = nn.Parameter(torch.full((heads,), math.log(math.expm1(sigma0))))
            self.alpha = nn.Parameter(torch.ones(heads))
        self.probe: dict | None = None
        self.knocked_out = False        # audit switch: heads replaced by the plain mean

    def step_units(self) -> list[tuple[nn.Parameter, float]]:
        """The band centres' optimiser unit: the largest graph frequency ``lambda_max``.

        ``mu_h`` lives on the frequency axis ``[0, lambda_max]`` (5.3 for the 17-joint skeleton),
        unlike the pool's other parameters, which are of order one (``alpha_h``; ``sigma_h`` through
        the inverse softplus). Adam moves a parameter by about its learning rate per step whatever
        its scale, so a centre would cross the spectrum ``lambda_max`` times slower than the other
        parameters move: measured on real motion capture, the centres moved no farther than a
        pure-noise walk (4x weight decay alone) although their direction agreed between seeds.
        Training therefore steps ``mu_h`` in units of ``lambda_max`` (``train.param_groups``), which
        for Adam equals learning ``mu_h / lambda_max``; the parameter itself stays in frequency units."""
        if self.mode != "laplacian":
            return []
        return [(self.mu, float(self.eigvals.max()))]

    @property
    def sigma(self) -> torch.Tensor:
        """Bandwidths ``sigma_h``, kept positive by a softplus."""
        return F.softplus(self.sigma_raw) + 1e-3

    def band_masks(self, lam: torch.Tensor | None = None) -> torch.Tensor:
        """``w_h(lambda)`` (H, len(lam)) at the graph frequencies or any given ``lam``."""
        lam = self.eigvals if lam is None else lam
        return torch.exp(-(lam[None, :] - self.mu[:, None]) ** 2 / (2 * self.sigma[:, None] ** 2))

    def filters(self) -> torch.Tensor:
        """The joint-domain operators ``G_h`` (H, N, N) of eq. 6."""
        eye = torch.eye(self.U.shape[0], device=self.U.device)
        band = self.U @ torch.diag_embed(self.band_masks()) @ self.U.T             # U diag(w_h) U^T
        return eye + self.alpha[:, None, None] * (band - eye)

    def filtered(self, x: torch.Tensor) -> torch.Tensor:
        """``rho``-projected, filtered features before the nonlinearity: (B, H, T, N, D_c).

        With ``knocked_out`` set (the component audit), every head is the identity filter: the
        context is then a plain mean over joints and frames of the normalised projection."""
        y = self.rho(x)                                                         # (B, T, N, Dc)
        if self.mode != "laplacian":
            return y.unsqueeze(1)
        if self.knocked_out:
            return y.unsqueeze(1).expand(-1, self.heads, -1, -1, -1)
        return torch.einsum("hnm,btmc->bhtnc", self.filters(), y)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Context vectors ``v_s^(h)``: (B, H, D_c)."""
        u = self.filtered(x)
        feats = F.gelu(F.layer_norm(u, u.shape[-1:]) + self.rho_bias)         # normalised, then GELU
        v = feats.mean(dim=(2, 3))                                              # Pool_{t,n}
        if self.probe is not None:
            self.probe["v_s_heads"] = v.detach()
        return v
