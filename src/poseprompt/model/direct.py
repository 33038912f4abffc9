"""The control without text (variant ``context-direct``): ``P'`` and the prompt tokens straight from the pose context.

It answers the question every reviewer of a prompting method asks: does the gain need the prompt
(slot texts and the frozen CLIP text tower), or only the pooled pose context ``z``? Everything up to
the slot descriptors ``z_k`` is ``full``'s (Laplacian and Gaussian pooling, gates, slot MLPs: eq.
3-13), and so is everything after ``P'`` (the addition to the pose stream, eq. 16, the scale of the
motion stream, the cross-attention to the tokens). What replaces the text path::

    tokens_k = u_k + g_k(z_k)                         (B, K, M, W)   M = L - t tokens per slot
    [tokens_1 .. tokens_K; s] --trainable encoder--> token features (B, K M, W), P' = feature at s

``u_k`` are learned tokens (``full``'s ``r_k``), ``g_k`` slot-specific two-layer MLPs of hidden width
``H = model.direct_hidden`` (``full``'s ``f_k``), ``s`` a learned summary token, and the trainable
encoder is ``full``'s prompt encoder (``prompt_encoder_layers`` layers of width ``W``; with none,
``P'`` is the mean token). What is gone: the slot texts, their word tokens and the frozen text
transformer between the tokens and the encoder. ``W`` is the text tower's width (read from its
config, nothing built), so every entry module has ``full``'s shape, and with
``model.match_params: adaptive`` ``H`` is solved so that the trainable parameter count equals
``full``'s (model/capacity.py).
"""
from __future__ import annotations

import torch
from torch import nn

from poseprompt.model.context import GroupedMLP


class DirectContextPrompt(nn.Module):
    def __init__(self, slots: int, tokens_per_slot: int, slot_dim: int, width: int, hidden: int,
                 encoder: nn.Module | None, token_std: float = 0.02):
        super().__init__()
        self.K, self.M, self.W = slots, tokens_per_slot, width
        self.tokens = nn.Parameter(torch.randn(slots, tokens_per_slot, width) * token_std)          # u_k
        # g_k(z_k) at the scale of u_k at initialisation (as full's |Delta p_k| ~ |r_k|)
        self.adapt = GroupedMLP(slots, slot_dim, hidden, tokens_per_slot * width,
                                out_std=token_std / (0.65 * hidden ** 0.5))                         # g_k
        self.summary = nn.Parameter(torch.randn(width) * token_std)                                 # s
        self.encoder = encoder

    def forward(self, z_k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z_k (B, K, D_z) -> token features (B, K M, W) and P' (B, W)."""
        b = z_k.shape[0]
        tokens = self.tokens.unsqueeze(0) + self.adapt(z_k).view(b, self.K, self.M, self.W)
        tokens = tokens.reshape(b, self.K * self.M, self.W)
        if self.encoder is None:
            return tokens, tokens.mean(1)
        feats = self.encoder(torch.cat([tokens, self.summary.expand(b, 1, -1)], dim=1))
        return feats[:, :-1], feats[:, -1]
