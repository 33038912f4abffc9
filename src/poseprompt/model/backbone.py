"""The GAtFuN backbone as a direct regressor (paper section 3.6; ../docs: gatfun-backbone.md).

Two streams leave the embedding (eq. 1-2):

* the **pose stream** ``x`` (B, T, N, D): pre-LayerNorm transformer blocks with multi-head
  self-attention over the N joints of each frame (spatial stage), then over the T frames of each
  joint (temporal stage);
* the **motion stream** ``v`` (B, T, N, D): the frame difference of the embedding, refined by
  blocks of the same shape whose attention is replaced by graph attention: over joints with the
  skeleton adjacency, over frames with a fixed temporal prior times a data-dependent affinity.

After every stage an **adaptive motion fusion** mixes the streams per channel and rebuilds the
pose stream by integrating the fused velocity. A LayerNorm and a linear head regress the joints.

Decisions written down (the public code leaves them implicit):

* the rebuild is ``x_new[t] = x_old[t-1] + v_fused[t]`` for t >= 1 with ``x_new[0] = x_old[0]``
  (the previous frame of the *old* pose stream, vectorised); when the fusion picks the pose
  stream's own velocity the rebuild is the identity (tested);
* each stage owns its LayerNorm (the public code shares one across depths);
* the temporal affinity is ``softmax(v v^T / sqrt(D))``: the public code has no scale, which
  saturates the softmax at width 512;
* the output is root-relative by construction (the root prediction is subtracted).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class DropPath(nn.Module):
    """Stochastic depth: drop the whole residual branch of a sample with probability ``p``."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep


class MLP(nn.Module):
    def __init__(self, dim: int, hidden: int, dropout: float = 0.0):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        return self.drop(self.fc2(self.drop(F.gelu(self.fc1(x)))))


def attend(q, k, v, probe: dict | None = None, key: str = "attn", mask: torch.Tensor | None = None):
    """Scaled dot-product attention (..., heads, L, d); ``mask`` (boolean, broadcastable to
    (..., L, S)) marks the keys that may be attended to. With a ``probe`` dict the weights are
    computed explicitly and their mean over the batch is stored under ``key`` (for figures)."""
    if probe is None:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    logits = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if mask is not None:
        logits = logits.masked_fill(~mask, float("-inf"))
    w = torch.softmax(logits, dim=-1)
    probe[key] = w.detach().float().mean(dim=tuple(range(w.ndim - 2)))  # (L, S)
    if w.ndim == 4:                                                      # (B, heads, L, S): per sample
        probe[key + "_mass"] = w.detach().float().mean(dim=(1, 2))        # (B, S) mean over heads, queries
    return w @ v


class SelfAttention(nn.Module):
    """Multi-head self-attention over the token axis of (B', L, D)."""

    def __init__(self, dim: int, heads: int, qkv_bias: bool = True, dropout: float = 0.0):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)
        self.probe: dict | None = None

    def forward(self, x):
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        y = attend(q, k, v, self.probe)                           # (B', heads, L, d_h)
        return self.drop(self.proj(y.transpose(1, 2).reshape(b, n, d)))


class GraphAttention(nn.Module):
    """``y = A @ V(x) + U(x)`` over the token axis of (B', L, D) with a fixed propagation matrix
    ``A`` (L, L); with ``affinity=True`` ``A`` is multiplied element-wise by ``softmax(x x^T /
    sqrt(D))`` (the temporal stage of the motion stream)."""

    def __init__(self, dim: int, propagation: torch.Tensor, affinity: bool = False, dropout: float = 0.0):
        super().__init__()
        self.register_buffer("A", propagation.float())
        self.V, self.U = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.affinity = affinity
        self.drop = nn.Dropout(dropout)
        self.probe: dict | None = None

    def forward(self, x):
        a = self.A
        if self.affinity:
            a = a * torch.softmax(x @ x.transpose(-1, -2) / math.sqrt(x.shape[-1]), dim=-1)   # (B', L, L)
        if self.probe is not None:
            self.probe["attn"] = (a if a.ndim == 2 else a.mean(0)).detach().float()
        return self.drop(a @ self.V(x) + self.U(x))


class Block(nn.Module):
    """Pre-LayerNorm residual block around a token mixer, followed by the stage's LayerNorm."""

    def __init__(self, dim: int, mixer: nn.Module, mlp_ratio: float, drop_path: float, dropout: float,
                 norm_out: bool = True):
        super().__init__()
        self.norm1, self.mixer = nn.LayerNorm(dim), mixer
        self.norm2, self.mlp = nn.LayerNorm(dim), MLP(dim, int(dim * mlp_ratio), dropout)
        self.drop_path = DropPath(drop_path)
        self.norm_out = nn.LayerNorm(dim) if norm_out else nn.Identity()

    def forward(self, x):
        x = x + self.drop_path(self.mixer(self.norm1(x)))
        x = x + self.drop_path(self.mlp(self.norm2(x)))
        return self.norm_out(x)


def spatial(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Apply a block over joints: tokens = N, batch = B*T."""
    b, t, n, d = x.shape
    return block(x.reshape(b * t, n, d)).view(b, t, n, d)


def temporal(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Apply a block over frames: tokens = T, batch = B*N."""
    b, t, n, d = x.shape
    y = block(x.transpose(1, 2).reshape(b * n, t, d))
    return y.view(b, n, t, d).transpose(1, 2)


def frame_difference(x: torch.Tensor) -> torch.Tensor:
    """``v[t] = x[t] - x[t-1]`` over axis 1, with ``v[0] := v[1]`` (T >= 2)."""
    v = x[:, 1:] - x[:, :-1]
    return torch.cat([v[:, :1], v], dim=1)


class AdaptiveMotionFusion(nn.Module):
    """Per-channel 2-way softmax between the motion stream ``v`` and the pose stream's own velocity
    ``v1 = diff(x)``; the pose stream is rebuilt by integrating the fused velocity.

    Initialisation: the fusion starts close to the identity (``a`` about 0.02: the pose stream
    keeps its own velocity) and learns how much of the motion stream to take. With ``a = 1/2`` at
    the start, every stage replaces half of the pose stream by LayerNorm-scale motion features
    and training sat at the mean-pose error for tens of steps (measured on the default data,
    most of all for the prompted variants).
    """

    def __init__(self, motion_weight: float = 0.5):
        super().__init__()
        if not 0.0 < motion_weight < 1.0:
            raise ValueError(f"initial motion weight must be in (0, 1), got {motion_weight}")
        self.motion_weight = motion_weight
        self.mix = nn.Linear(2, 2)
        self.reset_parameters()
        self.probe: dict | None = None
        self.cut = False            # audit switch: the pose stream takes nothing from the motion stream

    def reset_parameters(self):
        nn.init.trunc_normal_(self.mix.weight, std=0.02)
        with torch.no_grad():       # b0 - b1 = logit(a0): the motion stream starts with weight a0
            self.mix.bias.copy_(torch.tensor([math.log(self.motion_weight / (1 - self.motion_weight)), 0.0]))

    def forward(self, x: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        v1 = frame_difference(x)
        if self.cut:                # a := 0: the rebuild is the identity and v carries the pose velocity
            if self.probe is not None:
                self.probe["weight_motion"] = 0.0
            return x, v1
        # softmax over the two logits of Linear(2, 2)([v, v1]), taken as the sigmoid of their
        # difference: the same number without stacking a (B, T, N, D, 2) tensor
        w, b = self.mix.weight, self.mix.bias
        a = torch.sigmoid((w[0, 0] - w[1, 0]) * v + (w[0, 1] - w[1, 1]) * v1 + (b[0] - b[1]))   # (B, T, N, D)
        v_fused = a * v + (1.0 - a) * v1
        x_new = torch.cat([x[:, :1], x[:, :-1] + v_fused[:, 1:]], dim=1)
        if self.probe is not None:
            self.probe["weight_motion"] = a.detach().float().mean().item()
        return x_new, v_fused


def temporal_prior(frames: int, center: float, slope: float) -> torch.Tensor:
    """``A_ij = 1 / (1 + exp(slope (|i-j| - center)))``, symmetrically degree-normalised."""
    idx = torch.arange(frames, dtype=torch.float64)
    a = torch.sigmoid(-slope * ((idx[:, None] - idx[None, :]).abs() - center))
    d = a.sum(1).rsqrt()
    return (a * d[:, None] * d[None, :]).float()


class GAtFuNLayer(nn.Module):
    """One depth of the backbone: spatial stage, fusion, temporal stage, fusion."""

    def __init__(self, dim, heads, mlp_ratio, qkv_bias, drop_path, dropout, joint_prop, frame_prop,
                 motion_weight: float = 0.5, motion_norm: bool = True):
        super().__init__()
        blk = lambda mixer, norm=True: Block(dim, mixer, mlp_ratio, drop_path, dropout, norm)  # noqa: E731
        self.pose_spatial = blk(SelfAttention(dim, heads, qkv_bias, dropout))
        self.pose_temporal = blk(SelfAttention(dim, heads, qkv_bias, dropout))
        self.motion_spatial = blk(GraphAttention(dim, joint_prop, affinity=False, dropout=dropout), motion_norm)
        self.motion_temporal = blk(GraphAttention(dim, frame_prop, affinity=True, dropout=dropout), motion_norm)
        self.fuse_spatial = AdaptiveMotionFusion(motion_weight)
        self.fuse_temporal = AdaptiveMotionFusion(motion_weight)

    def forward(self, x, v):
        x, v = spatial(self.pose_spatial, x), spatial(self.motion_spatial, v)
        x, v = self.fuse_spatial(x, v)
        x, v = temporal(self.pose_temporal, x), temporal(self.motion_temporal, v)
        x, v = self.fuse_temporal(x, v)
        return x, v


class RegressionHead(nn.Module):
    """LayerNorm -> Linear(D -> 3), made root-relative.

    Neither has a bias: a bias adds the same vector to every joint, which the root subtraction
    cancels, so it would only collect round-off gradients (that Adam turns into noise)."""

    def __init__(self, dim: int, root: int):
        super().__init__()
        self.norm, self.fc = nn.LayerNorm(dim, bias=False), nn.Linear(dim, 3, bias=False)
        self.root = root

    def forward(self, x):
        y = self.fc(self.norm(x))
        return y - y[..., self.root:self.root + 1, :]
