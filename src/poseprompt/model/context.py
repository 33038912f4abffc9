"""Softmax-gated context and slot-wise pose descriptors (paper eq. 11-13).

``v_s = sum_h beta_h^s v_s^(h)``, ``v_t = sum_h beta_h^t v_t^(h)`` with ``beta = softmax(a)`` over
heads (eq. 11-12); ``z = [v_s; v_t]`` and one small MLP per semantic slot, ``z_k = MLP_k(z)``
(eq. 13). The K MLPs run as one batched computation (grouped weights), not a Python loop.

Decision: ``z`` is normalised (LayerNorm without parameters) before the slot MLPs. Pooled means of
many tokens are small and alike; unnormalised, the slot MLPs and the adaptations ``Delta p_k`` start
in their linear range at a scale far below the prompt context and stay dormant (measured: ``|Delta
p_k| / |r_k|`` 0.0015 at initialisation without it).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class GroupedMLP(nn.Module):
    """K independent two-layer MLPs applied to K inputs at once: (B, K, in) -> (B, K, out)."""

    def __init__(self, groups: int, d_in: int, hidden: int, d_out: int, out_std: float | None = None):
        super().__init__()
        self.w1 = nn.Parameter(torch.empty(groups, d_in, hidden))
        self.b1 = nn.Parameter(torch.zeros(groups, hidden))
        self.w2 = nn.Parameter(torch.empty(groups, hidden, d_out))
        self.b2 = nn.Parameter(torch.zeros(groups, d_out))
        nn.init.normal_(self.w1, std=d_in ** -0.5)
        nn.init.normal_(self.w2, std=out_std if out_std is not None else hidden ** -0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.gelu(torch.einsum("bki,kih->bkh", x, self.w1) + self.b1)
        return torch.einsum("bkh,kho->bko", h, self.w2) + self.b2


class ContextGate(nn.Module):
    """Gates ``beta^s, beta^t`` and the joint context ``z`` (B, 2 D_c)."""

    def __init__(self, spatial_heads: int, temporal_heads: int):
        super().__init__()
        self.a_s = nn.Parameter(torch.zeros(spatial_heads))
        self.a_t = nn.Parameter(torch.zeros(temporal_heads))

    @property
    def beta_s(self):
        return torch.softmax(self.a_s, 0)

    @property
    def beta_t(self):
        return torch.softmax(self.a_t, 0)

    def forward(self, v_s_heads: torch.Tensor, v_t_heads: torch.Tensor) -> torch.Tensor:
        v_s = torch.einsum("h,bhc->bc", self.beta_s, v_s_heads)
        v_t = torch.einsum("h,bhc->bc", self.beta_t, v_t_heads)
        return torch.cat([v_s, v_t], dim=-1)


class SlotDescriptors(nn.Module):
    """``z_k = MLP_k(z)`` for the K slots: (B, 2 D_c) -> (B, K, D_z)."""

    def __init__(self, slots: int, d_in: int, d_out: int):
        super().__init__()
        self.slots = slots
        self.mlp = GroupedMLP(slots, d_in, d_out, d_out)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = F.layer_norm(z, z.shape[-1:])
        return self.mlp(z.unsqueeze(1).expand(-1, self.slots, -1))
