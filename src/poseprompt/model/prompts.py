"""Pose-adaptive prompts (paper eq. 14-15) and the prompt sequence fed to the frozen text tower.

Slot ``k`` (person, speed, action, body, arm, leg by default) is up to ``L`` token embeddings::

    p_k = Concat(p~_k, r_k + Delta p_k)          (eq. 14a)
    Delta p_k = f_k(z_k),  r_k in R^{(L-t) x W}   (eq. 14b)
    p~_k = tokens of the slot's text [:t]        (eq. 15)

``p~_k`` are the first (at most ``t``) frozen token embeddings of the slot's text (per sample: the
action label, a speed word, ...), ``r_k`` a learnable context shared by all samples, ``Delta p_k``
the per-sample adaptation predicted from the slot descriptor ``z_k`` by a slot-specific MLP
``f_k``. ``W`` is the text tower's width.

The K slots of one sample form **one** sequence for the causal CLIP transformer::

    [start] words_1 ctx_1 words_2 ctx_2 ... words_K ctx_K [end] pad ...

Decisions written down:

* **No foreign tokens.** A text shorter than ``t`` tokens keeps only its real tokens (padding the
  word part with token id 0 would insert the real token "!" into the prompt, seen by every later
  token). The sequence is therefore packed per sample: its length ``S_b = 2 + sum_k (n_bk + L - t)``
  varies with the number of word tokens ``n_bk``, and the positions after ``[end]`` are padding,
  as in CLIP's own tokenisation. The causal mask hides them from every real position, the
  trainable prompt encoder and the cross-attention are told to ignore them (``valid`` mask), and
  ``P'`` is read at each sample's ``[end]`` position, which sees every slot.
* **Adaptation at the scale of the context.** ``r_k`` starts at the standard deviation of the
  tower's own token embeddings and ``f_k``'s output layer is scaled so that ``|Delta p_k|`` starts
  at about ``adapt_init x |r_k|`` (default 1): the adaptation changes the prompt from the first
  step. (With a generic small initialisation ``|Delta p_k| / |r_k|`` was 0.0015 and the prompts of
  two different poses differed by 3e-5, measured.)
* **Context tokens at the norm of real tokens.** Each context token ``r_k + Delta p_k`` is rescaled
  to the mean norm of the tower's token embeddings (``token_std * sqrt(W)``): unconstrained, the
  adaptation grew to 43 x ``|r_k|`` in a short run (measured), far outside the distribution the
  (pretrained) tower was made for; the rescale keeps the direction, which carries the pose.

Modes: ``static`` has no ``Delta p_k`` (learned, input-independent context, as GAtFuN intends);
``adaptive`` adds it. ``knocked_out`` (the component audit) sets ``Delta p_k := 0``; ``fixed_delta``
(the audit's ``delta_p_mean``) replaces every sample's ``Delta p_k`` by one given value, its mean
over reference clips: what is left of the adaptation once it no longer depends on the sample.
"""
from __future__ import annotations

import torch
from torch import nn

from poseprompt.model.context import GroupedMLP

#: rms of f_k's hidden layer at initialisation, for unit-rms slot descriptors (GELU of unit
#: Gaussians): used to scale f_k's output layer so that |Delta p_k| ~ adapt_init |r_k| at the start.
HIDDEN_RMS = 0.65


class PromptBank(nn.Module):
    def __init__(self, slots: int, prompt_length: int, text_tokens: int, text_width: int, slot_dim: int,
                 adaptive: bool, token_std: float = 0.02, adapt_init: float = 1.0):
        super().__init__()
        self.K, self.L, self.t, self.W = slots, prompt_length, text_tokens, text_width
        c = prompt_length - text_tokens
        self.context = nn.Parameter(torch.randn(slots, c, text_width) * token_std)            # r_k
        out_std = adapt_init * token_std / (HIDDEN_RMS * slot_dim ** 0.5)
        self.adapt = (GroupedMLP(slots, slot_dim, slot_dim, c * text_width, out_std=out_std)
                      if adaptive else None)                                                 # f_k
        self.register_buffer("token_norm", torch.tensor(token_std * text_width ** 0.5), persistent=False)
        self.knocked_out = False
        self.fixed_delta: torch.Tensor | None = None     # audit switch: (K, L-t, W) for every sample

    @property
    def max_length(self) -> int:
        """Tokens of the longest prompt sequence: start + K L + end."""
        return self.K * self.L + 2

    def delta(self, z_k: torch.Tensor) -> torch.Tensor:
        """``Delta p_k`` (B, K, L-t, W) from slot descriptors (B, K, D_z)."""
        b = z_k.shape[0]
        return self.adapt(z_k).view(b, self.K, self.L - self.t, self.W)

    def contexts(self, batch: int, z_k: torch.Tensor | None = None) -> torch.Tensor:
        """``r_k + Delta p_k`` (B, K, L-t, W) (``r_k`` alone for static prompts or when knocked out)."""
        ctx = self.context.unsqueeze(0).expand(batch, -1, -1, -1)
        if self.adapt is not None and not self.knocked_out and self.fixed_delta is not None:
            ctx = ctx + self.fixed_delta.to(ctx.dtype)
        elif self.adapt is not None and not self.knocked_out:
            if z_k is None:
                raise ValueError("adaptive prompts need slot descriptors z_k")
            ctx = ctx + self.delta(z_k)
        # every context token at the norm of a real token embedding: the adaptation sets its
        # direction, never drives it out of the tower's input distribution
        return ctx * (self.token_norm / ctx.norm(dim=-1, keepdim=True).clamp_min(1e-8))

    def layout(self, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Where every token of the packed sequence comes from.

        lengths: (B, K) word tokens of each slot's text (0..t). Returns ``source`` (B, S) indices into
        ``[start, words (K t), contexts (K (L-t)), end, zero]`` and ``end`` (B,) the position of [end].
        """
        b, K, t, c = lengths.shape[0], self.K, self.t, self.L - self.t
        dev = lengths.device
        seg = lengths + c                                                         # (B, K) tokens per slot
        offset = 1 + torch.cumsum(seg, 1) - seg                                   # (B, K) first position
        end = 1 + seg.sum(1)                                                      # (B,)
        S = self.max_length
        n_words, n_ctx = K * t, K * c
        pad_src = 2 + n_words + n_ctx
        source = torch.full((b, S + 1), pad_src, dtype=torch.long, device=dev)  # column S: discard bin
        source[:, 0] = 0
        j = torch.arange(t, device=dev)
        w_dest = offset[..., None] + j                                            # (B, K, t)
        w_dest = torch.where(j < lengths[..., None], w_dest, torch.full_like(w_dest, S))
        w_src = 1 + torch.arange(K, device=dev)[:, None] * t + j                  # (K, t)
        i = torch.arange(c, device=dev)
        c_dest = (offset + lengths)[..., None] + i                                # (B, K, c)
        c_src = 1 + n_words + torch.arange(K, device=dev)[:, None] * c + i        # (K, c)
        source.scatter_(1, w_dest.flatten(1), w_src.flatten().expand(b, -1))
        source.scatter_(1, c_dest.flatten(1), c_src.flatten().expand(b, -1))
        source.scatter_(1, end[:, None], torch.full((b, 1), 1 + n_words + n_ctx, device=dev))
        return source[:, :S], end

    def forward(self, words: torch.Tensor, lengths: torch.Tensor, start: torch.Tensor, end: torch.Tensor,
                z_k: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The packed prompt sequence (B, S, W), the [end] position (B,), the valid mask (B, S) and
        the layout (B, S): where each position comes from (:meth:`layout`; for figures).

        words: (B, K, t, W) frozen token embeddings of each slot's text (entries past a text's
        length are ignored); lengths: (B, K); start, end: (W,) embeddings of the start and end
        tokens; z_k: (B, K, D_z) or None.
        """
        b = words.shape[0]
        ctx = self.contexts(b, z_k)                                                  # (B, K, L-t, W)
        dt = ctx.dtype
        pool = torch.cat([start.to(dt).expand(b, 1, -1), words.to(dt).reshape(b, -1, self.W),
                          ctx.reshape(b, -1, self.W), end.to(dt).expand(b, 1, -1),
                          ctx.new_zeros(b, 1, self.W)], dim=1)
        source, end_pos = self.layout(lengths)
        seq = pool.gather(1, source[..., None].expand(-1, -1, self.W))
        valid = torch.arange(seq.shape[1], device=seq.device)[None, :] <= end_pos[:, None]
        return seq, end_pos, valid, source

    def position_kinds(self, source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """For a layout (B, S): the slot of every position (-1 for start, end and padding) and its
        kind: 0 start, 1 word token, 2 context token, 3 end, 4 padding."""
        K, t, c = self.K, self.t, self.L - self.t
        n_words, n_ctx = K * t, K * c
        kind = torch.full_like(source, 4)
        slot = torch.full_like(source, -1)
        kind[source == 0] = 0
        w = (source >= 1) & (source < 1 + n_words)
        kind[w], slot[w] = 1, (source[w] - 1) // max(t, 1)
        cx = (source >= 1 + n_words) & (source < 1 + n_words + n_ctx)
        kind[cx], slot[cx] = 2, (source[cx] - 1 - n_words) // c
        kind[source == 1 + n_words + n_ctx] = 3
        return slot, kind
