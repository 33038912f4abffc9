"""The frozen CLIP text transformer, behind one small adapter (paper eq. 15 and section 3.5).

Every open_clip detail lives here: how the model is created (offline tiny tower, pretrained tag, or
a local checkpoint), which parts of the text side are kept (``token_embedding``,
``positional_embedding``, ``transformer``, ``ln_final``, ``text_projection``, ``attn_mask``), and how
a sequence of *embeddings* (not token ids) is run through them. ``tests/test_text_encoder.py`` checks
that :meth:`FrozenTextEncoder.encode_text` reproduces open_clip's own ``encode_text``.

Freezing means ``requires_grad_(False)`` on the weights and eval mode, *not* ``torch.no_grad()``:
gradients must flow through the frozen transformer back to the learnable prompt context ``r_k``
and to the adaptation networks ``f_k`` (the public GAtFuN code runs the tower under ``no_grad``,
which silently stops its context vectors from ever training).
"""
from __future__ import annotations

import functools
import logging
import os
import socket
from pathlib import Path

import torch
from torch import nn

from poseprompt.config.sections import TextEncoderConfig

log = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parent.parent / "assets"
OFFLINE_ARCHS = ("pp-text-tiny",)


class PretrainedWeightsUnavailable(RuntimeError):
    pass


@functools.lru_cache(maxsize=1)
def _register_configs() -> None:
    import open_clip
    open_clip.add_model_config(ASSETS)


def _hub_reachable(host: str = "huggingface.co", timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _cached_weights(arch: str, tag: str) -> str | None:
    """Path of the tag's weights in the Hugging Face cache, or None."""
    from open_clip.pretrained import get_pretrained_cfg
    cfg = get_pretrained_cfg(arch, tag)
    hub = cfg.get("hf_hub", "")
    if not hub:
        return None
    repo, filename = os.path.split(hub.rstrip("/")) if not hub.endswith("/") else (hub.rstrip("/"), "")
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover
        return None
    names = [filename] if filename else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
    for name in names:
        hit = try_to_load_from_cache(repo_id=repo, filename=name)
        if isinstance(hit, str):
            return hit
    return None


def check_pretrained_available(cfg: TextEncoderConfig) -> None:
    """Fail within seconds, with instructions, when pretrained weights cannot be had.

    open_clip itself retries a download for about 46 s before giving up on a machine without
    internet; this check looks in the local cache first and then probes the hub once.
    """
    from open_clip.pretrained import get_pretrained_cfg, list_pretrained_tags_by_model
    if cfg.checkpoint:
        if not Path(cfg.checkpoint).is_file():
            raise PretrainedWeightsUnavailable(
                f"model.text_encoder.checkpoint = {cfg.checkpoint!r}: file not found. Give the path of an "
                f"open_clip checkpoint of {cfg.arch} (e.g. open_clip_pytorch_model.bin).")
        return
    if not get_pretrained_cfg(cfg.arch, cfg.pretrained):
        raise PretrainedWeightsUnavailable(
            f"model.text_encoder.pretrained = {cfg.pretrained!r} is not a known tag of {cfg.arch}; "
            f"known tags: {list_pretrained_tags_by_model(cfg.arch)}")
    if _cached_weights(cfg.arch, cfg.pretrained):
        return
    offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")
    if offline or not _hub_reachable():
        why = "HF_HUB_OFFLINE is set" if offline else "huggingface.co cannot be reached"
        raise PretrainedWeightsUnavailable(
            f"Pretrained text-encoder weights {cfg.arch}/{cfg.pretrained} are not in the local cache and {why}. "
            f"Either (1) on a machine with internet run `make weights` (it fills the Hugging Face cache; copy "
            f"~/.cache/huggingface to this machine), or (2) download the open_clip checkpoint yourself and set "
            f"model.text_encoder.checkpoint to its path, or (3) use the offline default "
            f"(model.text_encoder.arch: pp-text-tiny, pretrained: null), whose tower is random and frozen.")


def create_clip(cfg: TextEncoderConfig) -> nn.Module:
    """Build the open_clip model (text and a vision tower we discard) per the configuration."""
    import open_clip
    _register_configs()
    if cfg.is_pretrained:
        check_pretrained_available(cfg)
        from open_clip.pretrained import get_pretrained_cfg
        quick_gelu = bool(get_pretrained_cfg(cfg.arch, cfg.pretrained or "").get("quick_gelu", False))
        source = cfg.checkpoint or cfg.pretrained
        return open_clip.create_model(cfg.arch, pretrained=source, force_quick_gelu=quick_gelu)
    # Random weights: seeded on their own so that every variant and every run gets the same tower.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.init_seed)
        return open_clip.create_model(cfg.arch, pretrained=None)


@functools.lru_cache(maxsize=8)
def text_width(arch: str) -> int:
    """Width W of the text transformer of an open_clip architecture, read from its model config (no
    weights built): the width that the prompt entry modules take their input at."""
    import open_clip
    _register_configs()
    cfg = open_clip.get_model_config(arch)
    if not cfg or "text_cfg" not in cfg:
        raise ValueError(f"model.text_encoder.arch = {arch!r}: not an open_clip model with a text tower; known: "
                         f"{', '.join(open_clip.list_models()[:8])}, ...")
    return int(cfg["text_cfg"]["width"])


@functools.lru_cache(maxsize=8)
def _tokenizer(arch: str):
    import open_clip
    _register_configs()
    return open_clip.get_tokenizer(arch)


class FrozenTextEncoder(nn.Module):
    """The text side of an open_clip CLIP model, frozen, fed with embeddings.

    Shapes: W = transformer width, E = joint embedding width, S <= context length.
    """

    def __init__(self, cfg: TextEncoderConfig):
        super().__init__()
        self.cfg = cfg
        clip = create_clip(cfg)
        self.token_embedding = clip.token_embedding            # (vocab, W)
        self.positional_embedding = clip.positional_embedding  # (context, W)
        self.transformer = clip.transformer                    # batch-first in open_clip 3.x
        self.ln_final = clip.ln_final
        proj = clip.text_projection
        self.text_projection = proj if isinstance(proj, (nn.Linear, type(None))) else nn.Parameter(proj.data)
        self.register_buffer("attn_mask", clip.attn_mask.clone(), persistent=False)
        if not getattr(self.transformer, "batch_first", True):
            raise RuntimeError("open_clip text transformer is not batch-first; this adapter expects open_clip>=3")
        del clip  # the vision tower is not needed
        self.requires_grad_(False)
        self.eval()
        tok = _tokenizer(cfg.arch)
        self.sot_id = int(tok.sot_token_id)
        self.eot_id = int(tok.eot_token_id)
        self.pad_id = 0
        self.source = (f"{cfg.arch} / {cfg.pretrained or cfg.checkpoint}" if cfg.is_pretrained else
                       f"{cfg.arch} / RANDOM INIT (seed {cfg.init_seed}, frozen, not pretrained)")
        if not cfg.is_pretrained:
            log.warning("text encoder %s is randomly initialised and frozen (offline default): prompt texts "
                        "reach the model only through distinct token embeddings, not through CLIP semantics. "
                        "The paper configuration uses ViT-B-32 with pretrained 'openai' weights.", cfg.arch)

    # ---- sizes
    @property
    def width(self) -> int:
        return self.positional_embedding.shape[1]

    @property
    def context_length(self) -> int:
        return self.positional_embedding.shape[0]

    @property
    def embed_dim(self) -> int:
        p = self.text_projection
        return p.out_features if isinstance(p, nn.Linear) else (p.shape[1] if p is not None else self.width)

    def train(self, mode: bool = True):
        return super().train(False)  # frozen: always in eval mode

    # ---- tokens
    def tokenize(self, texts: list[str]) -> torch.Tensor:
        """open_clip tokenisation (B, context_length) with start and end tokens."""
        return _tokenizer(self.cfg.arch)(list(texts))

    @functools.lru_cache(maxsize=4096)
    def _word_ids(self, text: str, n: int) -> tuple[tuple[int, ...], int]:
        ids = self.tokenize([text])[0].tolist()
        end = ids.index(self.eot_id)
        words = ids[1:end][:n]                     # drop start/end tokens, truncate to n
        return tuple(words + [self.pad_id] * (n - len(words))), len(words)

    def word_ids(self, texts: list[str], n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids of each text's words, truncated to ``n``: ids (B, n) and lengths (B,).

        Entries past a text's length hold ``pad_id`` only to make a rectangle; the prompt layout
        never places them in a sequence (prompts.py: no foreign tokens)."""
        pairs = [self._word_ids(t, n) for t in texts]
        dev = self.token_embedding.weight.device
        return (torch.tensor([p[0] for p in pairs], dtype=torch.long, device=dev),
                torch.tensor([p[1] for p in pairs], dtype=torch.long, device=dev))

    @property
    def token_std(self) -> float:
        """Standard deviation of the frozen token embeddings (the scale of a real prompt token)."""
        return float(self.token_embedding.weight.detach().float().std())

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        return self.token_embedding(ids)

    # ---- the frozen transformer on embeddings
    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        """Token features (B, S, W) of input embeddings (B, S, W): positional embedding, causal
        transformer, final LayerNorm (exactly as open_clip's ``encode_text`` before pooling)."""
        s = emb.shape[1]
        if s > self.context_length:
            raise ValueError(f"prompt sequence of {s} tokens exceeds the text encoder's context length "
                             f"{self.context_length}: lower model.prompt_length or the number of slots")
        dt = self.compute_dtype
        x = emb.to(dt) + self.positional_embedding[:s].to(dt)
        x = self.transformer(x, attn_mask=self.attn_mask[:s, :s])
        return self.ln_final(x).to(emb.dtype)

    def project(self, pooled: torch.Tensor) -> torch.Tensor:
        p = self.text_projection
        if p is None:
            return pooled
        x = pooled.to(self.compute_dtype)
        return (p(x) if isinstance(p, nn.Linear) else x @ p).to(pooled.dtype)

    # ---- precision of the frozen weights
    @property
    def compute_dtype(self) -> torch.dtype:
        """The dtype the transformer, final norm and projection are stored and run in."""
        return self.ln_final.weight.dtype

    def compute_in(self, dtype: torch.dtype) -> "FrozenTextEncoder":
        """Store the frozen transformer, positional embedding, final norm and projection in ``dtype``
        (training on a GPU with bf16 autocast: half the memory and no per-step cast of 38 M frozen
        weights for ViT-B-32). The token embeddings, from which the learnable prompt context is
        built, stay float32; inputs are cast to ``dtype`` and outputs back to the caller's dtype, so
        gradients reach the context tokens in float32. A tower stored in bf16 and loaded back into
        float32 computes exactly what it computed in training, and keeps its fingerprint."""
        for m in (self.transformer, self.ln_final):
            m.to(dtype)
        self.positional_embedding.data = self.positional_embedding.data.to(dtype)
        p = self.text_projection
        if isinstance(p, nn.Linear):
            p.to(dtype)
        elif p is not None:
            p.data = p.data.to(dtype)
        return self

    def encode_text(self, ids: torch.Tensor) -> torch.Tensor:
        """open_clip's ``encode_text`` for token ids (B, context): pooled at the end token."""
        feats = self.forward(self.embed(ids))
        pooled = feats[torch.arange(ids.shape[0]), ids.argmax(-1)]
        return self.project(pooled)

    def fingerprint(self, exact: bool = False) -> float:
        """A cheap checksum of the frozen weights (checkpoints store it to detect a different tower).

        Taken on the weights rounded to bf16, so that a tower stored in bf16 for training
        (:meth:`compute_in`) has the fingerprint of its float32 original; ``exact``: on the weights
        as stored (what older checkpoints recorded; loading accepts either)."""
        with torch.no_grad():
            if exact:
                return float(sum(p.double().abs().sum() for p in self.parameters()))
            return float(sum(p.to(torch.bfloat16).double().abs().sum() for p in self.parameters()))
