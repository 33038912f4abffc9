"""Pose-adaptive prompts (paper eq. 14-15) and the prompt sequence fed to the frozen text tower.

Slot ``k`` (person, speed, action, body, arm, leg by default) is ``L`` token embeddings::

    p_k = Concat(p~_k, r_k + Delta p_k)          (eq. 14a)
    Delta p_k = f_k(z_k),  r_k in R^{(L-t) x W}   (eq. 14b)
    p~_k = tokens of the slot's text [:t]        (eq. 15)

``p~_k`` are the first ``t`` frozen token embeddings of the slot's text (per sample: the action
label, a speed word, ...; padded with token id 0 when the text is shorter), ``r_k`` a learnable
context shared by all samples, ``Delta p_k`` the per-sample adaptation predicted from the slot
descriptor ``z_k`` by a slot-specific MLP ``f_k``. ``W`` is the text tower's width.

The K slots of one sample form **one** sequence ``[start] p_1 ... p_K [end]`` of ``K L + 2``
tokens for the causal CLIP transformer; the end token is the real last position, so pooling there
sees every slot (the public GAtFuN code pools at an index that holds context tokens only).

Modes: ``static`` has no ``Delta p_k`` (learned, input-independent context, as GAtFuN intends);
``adaptive`` adds it. ``f_k``'s output layer starts small (std 0.02, like ``r_k``), not at zero,
so that gradients reach the pooling modules from the first step.
"""
from __future__ import annotations

import torch
from torch import nn

from .context import GroupedMLP


class PromptBank(nn.Module):
    def __init__(self, slots: int, prompt_length: int, text_tokens: int, text_width: int, slot_dim: int,
                 adaptive: bool):
        super().__init__()
        self.K, self.L, self.t, self.W = slots, prompt_length, text_tokens, text_width
        self.context = nn.Parameter(torch.randn(slots, prompt_length - text_tokens, text_width) * 0.02)  # r_k
        self.adapt = (GroupedMLP(slots, slot_dim, slot_dim, (prompt_length - text_tokens) * text_width,
                                 out_std=0.02) if adaptive else None)                               # f_k

    def delta(self, z_k: torch.Tensor) -> torch.Tensor:
        """``Delta p_k`` (B, K, L-t, W) from slot descriptors (B, K, D_z)."""
        b = z_k.shape[0]
        return self.adapt(z_k).view(b, self.K, self.L - self.t, self.W)

    def forward(self, words: torch.Tensor, start: torch.Tensor, end: torch.Tensor,
                z_k: torch.Tensor | None = None) -> torch.Tensor:
        """The prompt sequence (B, K L + 2, W).

        words: (B, K, t, W) frozen token embeddings of each slot's text;
        start, end: (W,) embeddings of the start and end tokens; z_k: (B, K, D_z) or None.
        """
        b = words.shape[0]
        ctx = self.context.unsqueeze(0).expand(b, -1, -1, -1)                       # (B, K, L-t, W)
        if self.adapt is not None:
            if z_k is None:
                raise ValueError("adaptive prompts need slot descriptors z_k")
            ctx = ctx + self.delta(z_k)
        slots = torch.cat([words.to(ctx.dtype), ctx], dim=2).reshape(b, self.K * self.L, self.W)
        return torch.cat([start.expand(b, 1, -1).to(ctx.dtype), slots, end.expand(b, 1, -1).to(ctx.dtype)], dim=1)
