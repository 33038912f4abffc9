"""The whole model: GAtFuN with pose-adaptive prompting (paper Figure 2, sections 3.1-3.6).

Data flow of one forward pass, shapes for B clips of T frames and N joints::

    x (B,T,N,3) --embed (eq.1-2)--> X (B,T,N,D) -----> pose stream  x_s = X
    x --phi (eq.1)--> frame difference -------------> motion stream v_s = diff(phi(x))
    X --Laplacian pooling (eq.3-7)--> v_s^(h) (B,H_s,D_c) -+
    X --Gaussian pooling (eq.8-10)--> v_t^(h) (B,H_t,D_c) -+-> gate (eq.11-12) -> z (B,2D_c)
    z --MLP_k (eq.13)--> z_k (B,K,D_z) --f_k (eq.14b)--> Delta p_k (B,K,L-t,W)
    slot texts --tokens, frozen embedding (eq.15)--> p~_k;  p_k = [p~_k; r_k + Delta p_k] (eq.14a)
    [start; p_1 .. p_K; end] (packed, no padding tokens) --frozen CLIP text transformer
        (+ small trainable encoder)--> prompt tokens (B,S,W), P' = token at each [end] (B,W)
    x_s += Linear(P') (eq.16); v_s *= 1 + g Linear(P')  (per injection point)
    depth x [spatial stage, fusion, temporal stage, fusion]; after the first layer the injected
        stream(s) cross-attend to the prompt tokens (before it, when depth = 1)
    head: LayerNorm -> Linear -> root-relative 3D (B,T,N,3)

With ``context_from: layer1`` the context is pooled from the pose stream after the first layer
(the evolving pose state) instead of the embedding, and ``P'`` is added there.

Variants are configuration only (``ModelConfig``): ``prompt`` none/static/adaptive/direct (the
control without text: ``z`` mapped to ``P'`` and tokens by a small network, model/direct.py),
``spatial_pool`` laplacian/mean, ``temporal_pool`` gaussian/mean, ``inject``
encoding/refinement/both, ``action_text`` label/generic, ``context_from`` embedding/layer1.

The component audit (poseprompt/stages/audit.py) switches single components off in a trained model with
:meth:`PosePromptLifter.knockout` (names in :data:`KNOCKOUTS`); nothing else uses the switches.
"""
from __future__ import annotations

import contextlib
from typing import Iterator, Mapping, Sequence

import torch
from torch import nn

from poseprompt.config.sections import ModelConfig
from poseprompt.core.skeleton import get_skeleton
from poseprompt.model.backbone import AdaptiveMotionFusion, GAtFuNLayer, RegressionHead, temporal_prior
from poseprompt.model.context import ContextGate, SlotDescriptors
from poseprompt.model.direct import DirectContextPrompt
from poseprompt.model.embedding import PoseEmbedding
from poseprompt.model.fusion import PromptAddition, PromptCrossAttention, PromptScale
from poseprompt.model.prompts import PromptBank
from poseprompt.model.spatial_pool import LaplacianContextPool
from poseprompt.model.temporal_pool import GaussianTemporalPool
from poseprompt.model.text_encoder import FrozenTextEncoder, text_width

STREAMS = {"encoding": ("pose",), "refinement": ("motion",), "both": ("pose", "motion")}

#: Components the audit can remove from a trained model: name -> what is removed.
KNOCKOUTS = {
    "delta_p": "Delta p_k := 0 (prompts lose their pose adaptation)",
    "delta_p_mean": "Delta p_k := its mean over the validation clips (the same adaptation for every sample)",
    "spatial_heads": "Laplacian heads replaced by the plain mean over joints",
    "temporal_heads": "Gaussian heads replaced by the plain mean over frames",
    "add_pose": "P' no longer added to the pose stream (eq. 16)",
    "scale_motion": "P' no longer scales the motion stream",
    "xattn_pose": "no pose-stream cross-attention to the prompt tokens",
    "xattn_motion": "no motion-stream cross-attention to the prompt tokens",
    "prompt": "every prompt entry removed (addition and cross-attention, both streams)",
    "motion_stream": "motion stream cut: every adaptive fusion takes weight 0 from it",
}


class PosePromptLifter(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.skeleton = sk = get_skeleton(cfg.skeleton)
        D, T, N = cfg.width, cfg.frames, sk.num_joints
        self.embed = PoseEmbedding(cfg.in_channels, D, N, T, cfg.input_centering)
        joint_prop = torch.tensor(sk.normalized_adjacency(), dtype=torch.float32)
        frame_prop = temporal_prior(T, cfg.temporal_prior_center, cfg.temporal_prior_slope)
        drop = torch.linspace(0.0, cfg.drop_path, cfg.depth).tolist()
        self.layers = nn.ModuleList(
            GAtFuNLayer(D, cfg.heads, cfg.mlp_ratio, cfg.qkv_bias, drop[i], cfg.dropout, joint_prop, frame_prop,
                        cfg.motion_weight, cfg.motion_norm)
            for i in range(cfg.depth))
        self.head = RegressionHead(D, sk.root)
        self.probe: dict | None = None
        self.reference_delta: torch.Tensor | None = None    # set_reference_adaptation (audit only)
        # The backbone is initialised before any prompt module is built, so that every variant
        # starts from the same backbone for the same seed (paired comparisons; tested).
        for m in (self.embed, self.layers, self.head):
            m.apply(self._init_linear)
        for m in self.modules():
            if isinstance(m, AdaptiveMotionFusion):
                m.reset_parameters()

        self.streams: tuple[str, ...] = ()
        self.cross_attn: nn.ModuleDict | None = None
        if cfg.uses_text:
            self.text = FrozenTextEncoder(cfg.text_encoder)
            W = self.text.width
            if cfg.prompt_sequence_length > self.text.context_length:
                raise ValueError(f"K L + 2 = {cfg.prompt_sequence_length} prompt tokens exceed the text "
                                 f"encoder's context length {self.text.context_length}")
            adaptive = cfg.prompt == "adaptive"
            self.prompts = PromptBank(cfg.num_slots, cfg.prompt_length, cfg.text_tokens, W, cfg.slot_dim, adaptive,
                                      token_std=self.text.token_std, adapt_init=cfg.adapt_init)
            self.prompt_encoder = self._prompt_encoder(W)
        elif cfg.has_prompt:                                   # direct: no text tower, W from its config
            W = text_width(cfg.text_encoder.arch)
        if cfg.pools_context:
            self.spatial_pool = LaplacianContextPool(sk, D, cfg.context_dim, cfg.spatial_heads, cfg.spatial_pool)
            self.temporal_pool = GaussianTemporalPool(D, cfg.context_dim, cfg.temporal_heads,
                                                      cfg.temporal_radius, cfg.temporal_shift, cfg.temporal_pool,
                                                      cfg.temporal_filter)
            self.gate = ContextGate(self.spatial_pool.heads, self.temporal_pool.heads)
            self.slot_mlp = SlotDescriptors(cfg.num_slots, 2 * cfg.context_dim, cfg.slot_dim, cfg.context_norm)
        if cfg.prompt == "direct":
            self.direct = DirectContextPrompt(cfg.num_slots, cfg.context_tokens, cfg.slot_dim, W, cfg.direct_hidden,
                                              self._prompt_encoder(W))
        if cfg.has_prompt:
            self.streams = STREAMS[cfg.inject]
            self.add_prompt = nn.ModuleDict({s: (PromptAddition if s == "pose" else PromptScale)(D, W)
                                             for s in self.streams})
            self.cross_attn = (nn.ModuleDict({s: PromptCrossAttention(D, W, cfg.heads, cfg.qkv_bias)
                                              for s in self.streams}) if cfg.cross_attention else None)
        for name, m in self.named_children():
            if name not in ("embed", "layers", "head"):
                m.apply(self._init_linear)


    def _prompt_encoder(self, W: int) -> nn.Module | None:
        """The small trainable transformer after the frozen tower (or, in ``direct``, after the tokens)."""
        cfg = self.cfg
        return (nn.TransformerEncoder(
            nn.TransformerEncoderLayer(W, max(1, W // 64), 2 * W, dropout=cfg.dropout, activation="gelu",
                                       batch_first=True, norm_first=True),
            cfg.prompt_encoder_layers, enable_nested_tensor=False) if cfg.prompt_encoder_layers else None)

    @staticmethod
    def _init_linear(m: nn.Module):
        if isinstance(m, nn.Linear) and m.weight.requires_grad:
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    # ---- prompt path -------------------------------------------------------------------------------
    def slot_texts_for(self, slot_texts: Mapping[str, Sequence[str]] | None, batch: int) -> list[list[str]]:
        """The text of every slot for every sample: K lists of B strings.

        Given texts are used for every slot except where the configuration says ``generic``
        (``action_text``, ``person_text``): then the slot's default word is used for all samples, so
        no ground-truth label is needed at test time. Slots not given use their default word.
        """
        cfg, given = self.cfg, dict(slot_texts or {})
        out = []
        for slot in cfg.slots:
            default = cfg.slot_words[slot]
            generic = (slot == "action" and cfg.action_text == "generic") or \
                      (slot == "person" and cfg.person_text == "generic")
            texts = given.get(slot)
            if generic or texts is None:
                texts = [default] * batch
            elif isinstance(texts, str) or len(texts) != batch:
                raise ValueError(f"slot_texts[{slot!r}] must be a list of {batch} strings (one per sample)")
            out.append([str(s) for s in texts])
        return out

    def context(self, X: torch.Tensor) -> dict[str, torch.Tensor]:
        """Spatial and temporal context, gated context ``z`` and slot descriptors ``z_k``."""
        v_s = self.spatial_pool(X)                             # (B, H_s, D_c)
        v_t = self.temporal_pool(X)                            # (B, H_t, D_c)
        z = self.gate(v_s, v_t)                                # (B, 2 D_c)
        return {"v_s_heads": v_s, "v_t_heads": v_t, "z": z, "z_k": self.slot_mlp(z)}

    def encode_prompts(self, X: torch.Tensor, slot_texts=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict]:
        """Prompt token features (B, S, W), the pooled ``P'`` (B, W), the valid-token mask (B, S)
        and intermediate values. ``X`` (B, T, N, D) is what the context is pooled from."""
        b = X.shape[0]
        texts = self.slot_texts_for(slot_texts, b)
        pairs = [self.text.word_ids(t, self.cfg.text_tokens) for t in texts]
        ids = torch.stack([p[0] for p in pairs], dim=1)                   # (B, K, t)
        lengths = torch.stack([p[1] for p in pairs], dim=1)               # (B, K)
        special = self.text.embed(torch.tensor([self.text.sot_id, self.text.eot_id], device=ids.device))
        extra: dict = {}
        if self.cfg.prompt == "adaptive":
            extra = self.context(X)
            seq, end, valid, source = self.prompts(self.text.embed(ids), lengths, special[0], special[1], extra["z_k"])
            feats = self.text(seq)
            if self.prompts.adapt is not None:
                extra["delta_p"] = self.prompts.delta(extra["z_k"])
        else:
            # Static prompts depend on the texts only: run the tower once per distinct text tuple.
            key = torch.cat([ids.flatten(1), lengths], dim=1)
            uniq, inverse = torch.unique(key, dim=0, return_inverse=True)
            k_t = ids.shape[1] * ids.shape[2]
            seq, end, valid, source = self.prompts(self.text.embed(uniq[:, :k_t].view(-1, *ids.shape[1:])),
                                                   uniq[:, k_t:], special[0], special[1])
            feats, seq, end, valid, source = (self.text(seq)[inverse], seq[inverse], end[inverse], valid[inverse],
                                              source[inverse])
        if self.prompt_encoder is not None:
            feats = self.prompt_encoder(feats, src_key_padding_mask=~valid)
        extra["prompt_sequence"] = seq
        extra["prompt_source"] = source
        pooled = feats[torch.arange(b, device=feats.device), end]          # P': at each sample's [end]
        return feats, pooled, valid, extra

    def encode_direct(self, X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict]:
        """The control without text (``prompt: direct``): tokens (B, K M, W), ``P'`` (B, W), an all-true
        mask and the context, as :meth:`encode_prompts` returns them."""
        extra = self.context(X)
        tokens, pooled = self.direct(extra["z_k"])
        valid = torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
        return tokens, pooled, valid, extra

    def _enter_prompts(self, xs, vs, source, slot_texts):
        """Encode the prompts from ``source`` and add ``P'`` to the injected stream(s) (eq. 16)."""
        tokens, pooled, valid, extra = (self.encode_direct(source) if self.cfg.prompt == "direct" else
                                        self.encode_prompts(source, slot_texts))
        if "pose" in self.streams:
            xs = self.add_prompt["pose"](xs, pooled)
        if "motion" in self.streams:
            vs = self.add_prompt["motion"](vs, pooled)
        if self.probe is not None:
            self.probe.update({k: v.detach() for k, v in extra.items()}, P_prime=pooled.detach(),
                              prompt_tokens=tokens.detach(), prompt_valid=valid.detach())
        return xs, vs, tokens, valid

    # ---- forward -----------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, slot_texts: Mapping[str, Sequence[str]] | None = None) -> torch.Tensor:
        """x: (B, T, N, 3) normalised 2D and confidence -> (B, T, N, 3) root-relative 3D (metres)."""
        X, V = self.embed.streams(x)                           # (B, T, N, D) each
        xs, vs = X, V
        tokens = valid = None
        # Prompts enter before the first layer (context from the embedding) or after it (context
        # from the pose stream after layer 1). Cross-attention enters after the first layer (as in
        # GAtFuN), or before the only layer of a depth-1 model: after the last layer the motion
        # stream no longer reaches the head.
        enter = 1 if self.cfg.context_from == "layer1" else 0
        at = 1 if len(self.layers) > 1 else 0
        for i, layer in enumerate(self.layers):
            if self.streams and i == enter:
                xs, vs, tokens, valid = self._enter_prompts(xs, vs, X if enter == 0 else xs, slot_texts)
            if i == at and self.cross_attn is not None:
                if "pose" in self.streams:
                    xs = self.cross_attn["pose"](xs, tokens, valid)
                if "motion" in self.streams:
                    vs = self.cross_attn["motion"](vs, tokens, valid)
            xs, vs = layer(xs, vs)
        return self.head(xs)

    # ---- component audit -----------------------------------------------------------------------------
    def knockouts(self) -> list[str]:
        """The components of :data:`KNOCKOUTS` that this variant has."""
        out = []
        if self.cfg.prompt == "adaptive":
            out += ["delta_p", "delta_p_mean"]
        if self.cfg.pools_context:
            if self.cfg.spatial_pool == "laplacian":
                out.append("spatial_heads")
            if self.cfg.temporal_pool == "gaussian":
                out.append("temporal_heads")
        for s in self.streams:
            out.append("add_pose" if s == "pose" else "scale_motion")
            if self.cross_attn is not None:
                out.append(f"xattn_{s}")
        if self.streams:
            out.append("prompt")
        out.append("motion_stream")
        return out

    @torch.no_grad()
    def set_reference_adaptation(self, x: torch.Tensor, slot_texts=None, batch_size: int = 128) -> torch.Tensor:
        """Store the mean ``Delta p_k`` (K, L-t, W) of the clips ``x`` (B, T, N, 3) as the value that
        the knock-out ``delta_p_mean`` gives every sample (the audit uses the validation clips)."""
        if self.cfg.prompt != "adaptive":
            raise ValueError("set_reference_adaptation: this variant has no pose adaptation (prompt != 'adaptive')")
        d = torch.cat([st[""]["delta_p"].double() for st in self.captures(x, slot_texts, batch_size)])
        self.reference_delta = d.mean(0).float()
        return self.reference_delta

    @torch.no_grad()
    def captures(self, x: torch.Tensor, slot_texts=None, batch_size: int = 128) -> list[dict[str, dict]]:
        """What :meth:`capture` records for the clips ``x`` (B, T, N, 3), in eval mode, one record per
        batch of ``batch_size`` clips."""
        was = self.training
        self.eval()
        out = []
        try:
            for i in range(0, x.shape[0], batch_size):
                texts = None if slot_texts is None else {k: list(v[i:i + batch_size]) for k, v in slot_texts.items()}
                with self.capture() as st:
                    self(x[i:i + batch_size], texts)
                out.append(st)
        finally:
            self.train(was)
        return out

    @contextlib.contextmanager
    def knockout(self, *names: str) -> Iterator[None]:
        """Remove the named components (:data:`KNOCKOUTS`) for the forward passes inside the block."""
        have = set(self.knockouts())
        bad = [n for n in names if n not in have]
        if bad:
            raise ValueError(f"knockout {bad}: not components of this variant; it has {sorted(have)}")
        if "delta_p_mean" in names and self.reference_delta is None:
            raise ValueError("knockout 'delta_p_mean' needs the reference adaptation: call "
                             "model.set_reference_adaptation(x) with reference clips first")
        switches = []
        fixed = None
        for n in names:
            if n == "delta_p_mean":
                fixed = self.reference_delta
            elif n == "delta_p":
                switches.append(self.prompts)
            elif n == "spatial_heads":
                switches.append(self.spatial_pool)
            elif n == "temporal_heads":
                switches.append(self.temporal_pool)
            elif n == "add_pose":
                switches.append(self.add_prompt["pose"])
            elif n == "scale_motion":
                switches.append(self.add_prompt["motion"])
            elif n.startswith("xattn_"):
                switches.append(self.cross_attn[n[6:]])
            elif n == "prompt":
                switches += list(self.add_prompt.values()) + list((self.cross_attn or {}).values())
        fusions = [m for m in self.modules() if isinstance(m, AdaptiveMotionFusion)] if "motion_stream" in names else []
        try:
            for m in switches:
                m.knocked_out = True
            for m in fusions:
                m.cut = True
            if fixed is not None:
                self.prompts.fixed_delta = fixed
            yield
        finally:
            for m in switches:
                m.knocked_out = False
            for m in fusions:
                m.cut = False
            if fixed is not None:
                self.prompts.fixed_delta = None

    # ---- inspection --------------------------------------------------------------------------------
    @contextlib.contextmanager
    def capture(self) -> Iterator[dict[str, dict]]:
        """Record attention maps, fusion weights, pooled contexts and prompts of the next forward
        passes: ``{module name: {quantity: tensor}}`` (the model's own entries under "")."""
        store = {}
        mods = [(n, m) for n, m in self.named_modules() if hasattr(m, "probe")]
        for name, m in mods:
            m.probe = store.setdefault(name, {})
        try:
            yield store
        finally:
            for _, m in mods:
                m.probe = None

    def parameter_counts(self) -> dict[str, int]:
        text = sum(p.numel() for p in self.text.parameters()) if self.cfg.uses_text else 0
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        total = sum(p.numel() for p in self.parameters())
        return {"trainable": trainable, "frozen": total - trainable, "text_encoder": text, "total": total}

    def summary(self) -> str:
        c, n = self.cfg, self.parameter_counts()
        lines = [f"PosePromptLifter: T={c.frames} N={self.skeleton.num_joints} D={c.width} depth={c.depth} "
                 f"heads={c.heads}",
                 f"  variant: prompt={c.prompt} spatial_pool={c.spatial_pool} temporal_pool={c.temporal_pool} "
                 f"inject={c.inject} action_text={c.action_text} person_text={c.person_text}",
                 f"  parameters: trainable {n['trainable']:,}  frozen {n['frozen']:,} "
                 f"(text encoder {n['text_encoder']:,})"]
        if self.cfg.uses_text:
            lines.append(f"  text encoder: {self.text.source}; K={c.num_slots} slots x L={c.prompt_length} "
                         f"tokens (t={c.text_tokens} word tokens), sequence {c.prompt_sequence_length}")
        return "\n".join(lines)


def build_model(cfg: Mapping | ModelConfig) -> PosePromptLifter:
    """The model of a ``model`` section of params.yaml (a dict) or a :class:`ModelConfig`; with
    ``match_params`` its free size is solved first (:func:`~poseprompt.model.capacity.match_capacity`),
    and the model's ``cfg`` holds the solved size (so a checkpoint rebuilds it exactly)."""
    from poseprompt.model.capacity import match_capacity
    return PosePromptLifter(match_capacity(ModelConfig.from_dict(cfg)))
