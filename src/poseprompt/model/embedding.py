"""Input embedding with joint and frame positional embeddings (paper eq. 1-2).

``X = phi(x) + e_pos^S + e_pos^T`` with ``phi`` a linear map of each joint's input channels
(normalised x, y and a confidence: a missing joint is (0, 0, 0), so occluded inputs are
representable), ``e_pos^S`` (1, 1, N, D) per joint and ``e_pos^T`` (1, T, 1, D) per frame.
"""
from __future__ import annotations

import torch
from torch import nn


class PoseEmbedding(nn.Module):
    def __init__(self, in_channels: int, width: int, joints: int, frames: int):
        super().__init__()
        self.phi = nn.Linear(in_channels, width)                      # eq. 1
        self.joint_pos = nn.Parameter(torch.zeros(1, 1, joints, width))  # e_pos^S
        self.frame_pos = nn.Parameter(torch.zeros(1, frames, 1, width))  # e_pos^T
        nn.init.trunc_normal_(self.joint_pos, std=0.02)
        nn.init.trunc_normal_(self.frame_pos, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, n, c = x.shape
        if (t, n, c) != (self.frame_pos.shape[1], self.joint_pos.shape[2], self.phi.in_features):
            raise ValueError(f"input of shape {tuple(x.shape)}; expected (B, T={self.frame_pos.shape[1]}, "
                             f"N={self.joint_pos.shape[2]}, C={self.phi.in_features})")
        return self.phi(x) + self.joint_pos + self.frame_pos               # eq. 2, (B, T, N, D)
