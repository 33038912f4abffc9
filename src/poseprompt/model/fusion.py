"""Fusion of the prompt into the pose features (paper eq. 16 and section 3.6).

* ``P'`` (B, W) -> linear -> (B, D), broadcast-added to every token of the pose stream (eq. 16);
* the motion stream is *scaled* by ``P'`` instead, per channel: ``v <- v * (1 + g W_m P')``. It carries
  velocities: a per-sample constant added to it swamps them (measured: at initialisation the
  frame difference of ``phi(x)`` has an rms far below that of the gated ``P'``, so every velocity
  token became ``LN(P')``, and the prompted variants learned more slowly than the baseline), while a
  scale keeps "no motion" as no motion and lets the text (a speed word, an action) set how strongly
  each motion channel is propagated;
* pose-to-prompt cross-attention: the stream's T*N tokens are queries, the K L + 2 prompt token
  features (projected from the text width W to the pose width D, so the text tower's width is
  independent of the pose width) are keys and values; gated residual, pre-LayerNorm.

Injection points (``model.inject``): ``encoding`` = the pose (attention) stream, ``refinement`` =
the motion (velocity) stream, ``both``. The motion stream needs its own entry: it starts as the
frame difference of ``phi(x)``, from which a per-sample constant like ``P'`` added to ``X`` cancels.
"""
from __future__ import annotations

import torch
from torch import nn

from poseprompt.model.backbone import attend

#: Initial value of the learnable gates on the prompt's two entry points (small, not zero, so
#: that gradients reach the prompt path from the first step).
GATE_INIT = 0.1


class PromptCrossAttention(nn.Module):
    def __init__(self, dim: int, text_width: int, heads: int, qkv_bias: bool = True):
        super().__init__()
        self.heads = heads
        self.norm_q, self.norm_kv = nn.LayerNorm(dim), nn.LayerNorm(text_width)
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(text_width, 2 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.gate = nn.Parameter(torch.tensor(GATE_INIT))   # as in PromptAddition
        self.probe: dict | None = None
        self.knocked_out = False                             # audit switch: this entry removed

    def forward(self, x: torch.Tensor, prompt_tokens: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, T, N, D) stream; prompt_tokens: (B, S, W); valid: (B, S) real prompt positions
        (padding after the end token is never attended to). Returns x + gated attention output."""
        if self.knocked_out:
            return x
        b, t, n, d = x.shape
        h, dh = self.heads, d // self.heads
        q = self.q(self.norm_q(x)).view(b, t * n, h, dh).transpose(1, 2)               # (B, h, TN, dh)
        k, v = self.kv(self.norm_kv(prompt_tokens)).view(b, -1, 2, h, dh).permute(2, 0, 3, 1, 4)
        mask = valid[:, None, None, :] if valid is not None else None               # (B, 1, 1, S)
        y = attend(q, k, v, self.probe, key="attn", mask=mask)                      # (B, h, TN, dh)
        return x + self.gate * self.proj(y.transpose(1, 2).reshape(b, t, n, d))


class PromptAddition(nn.Module):
    """``X <- X + Broadcast(W_p P')`` (eq. 16).

    The addition is scaled by a learnable gate ``g`` (initialised at ``GATE_INIT``): the motion
    stream starts as frame differences of the embedding, a small signal, and an ungated ``P'``
    swamps it; with Adam even a zero-initialised projection jumps to full scale in one step
    (every weight moves by about the learning rate), whereas one scalar gate grows by about the
    learning rate per step. Measured on the default data: without the gate the prompted variants
    sat at the zero-pose error for tens of steps longer than the baseline.
    """

    def __init__(self, dim: int, text_width: int):
        super().__init__()
        self.norm, self.proj = nn.LayerNorm(text_width), nn.Linear(text_width, dim)
        self.gate = nn.Parameter(torch.tensor(GATE_INIT))
        self.knocked_out = False                             # audit switch: this entry removed

    def forward(self, x: torch.Tensor, pooled: torch.Tensor) -> torch.Tensor:
        if self.knocked_out:
            return x
        return x + self.gate * self.proj(self.norm(pooled))[:, None, None, :]


class PromptScale(nn.Module):
    """``V <- V * (1 + g W P')``: the prompt's entry into the motion (velocity) stream, a per-sample,
    per-channel scale (``g`` a learnable gate, initialised at ``GATE_INIT``)."""

    def __init__(self, dim: int, text_width: int):
        super().__init__()
        self.norm, self.proj = nn.LayerNorm(text_width), nn.Linear(text_width, dim)
        self.gate = nn.Parameter(torch.tensor(GATE_INIT))
        self.knocked_out = False                             # audit switch: this entry removed

    def forward(self, v: torch.Tensor, pooled: torch.Tensor) -> torch.Tensor:
        if self.knocked_out:
            return v
        return v * (1.0 + self.gate * self.proj(self.norm(pooled)))[:, None, None, :]
