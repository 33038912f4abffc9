"""Typed, frozen configurations built from the sections of ``params.yaml``.

One dataclass per concern (``model``, ``data`` with its ``val`` and ``windows``; ``train``,
``evaluate`` and ``figures`` live beside the code they configure); unknown keys and bad values are
errors that name the key and list the known ones; the defaults are the default preset's values
(tested), so a key left out of params.yaml means the default. Nothing writes into a
configuration at run time: derived sizes are properties.
"""
from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from typing import Any, ClassVar, Mapping

PROMPT_MODES = ("none", "static", "adaptive", "direct")
MATCH_PARAMS = ("none", "adaptive")
SPATIAL_POOLS = ("laplacian", "mean")
TEMPORAL_POOLS = ("gaussian", "mean")
TEMPORAL_FILTERS = ("smooth", "detail")
INJECT_POINTS = ("encoding", "refinement", "both")
TEXT_SOURCES = ("label", "generic")
CONTEXT_SOURCES = ("embedding", "layer1")
CONTEXT_NORMS = ("batch", "sample")

DEFAULT_SLOTS = ("person", "speed", "action", "body", "arm", "leg")
DEFAULT_SLOT_WORDS = {"person": "a person", "speed": "speed", "action": "action",
                      "body": "body", "arm": "arm", "leg": "leg"}


class ConfigError(ValueError):
    pass


def check_keys(section: str, d: Mapping[str, Any], cls) -> None:
    """The one unknown-key check of every section of params.yaml: raise ``ConfigError`` when ``d``
    holds keys that are not fields of the dataclass ``cls``; the message names the file, the section,
    the unknown keys and the keys it knows."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ConfigError(f"params.yaml: {section}: unknown keys {unknown}; known keys: {sorted(known)}")


def _plain(v):
    """A configuration value as params.yaml writes it: tuples as lists, nested options as dicts."""
    if isinstance(v, Options):
        return v.to_dict()
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, Mapping):
        return {k: _plain(x) for k, x in v.items()}
    return v


class Options:
    """The typed, frozen options of one section of params.yaml (a data source's, a nested block's):
    a frozen dataclass with its defaults stated once, built by :meth:`from_dict` (the one unknown-key
    check, nested options filled from their own defaults, no value converted) and written back by
    :meth:`to_dict` (plain dicts and lists, as the code that reads a section expects)."""
    SECTION: ClassVar[str] = ""

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None):
        if isinstance(d, cls):
            return d
        if d is not None and not isinstance(d, Mapping):
            raise ConfigError(f"params.yaml: {cls.SECTION}: expected a mapping with keys "
                              f"{sorted(f.name for f in fields(cls))}, got {d!r}")
        d = dict(d or {})
        check_keys(cls.SECTION, d, cls)
        for f in fields(cls):
            sub = f.default_factory if f.default_factory is not MISSING else None
            if isinstance(sub, type) and issubclass(sub, Options) and f.name in d:
                d[f.name] = sub.from_dict(d[f.name])
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True)
class TextEncoderConfig:
    """The frozen CLIP text transformer (open_clip).

    ``arch`` is an open_clip model name. The offline default ``pp-text-tiny`` is a small
    CLIP-architecture text tower registered from ``poseprompt/assets`` through open_clip's own
    model-config mechanism; it is randomly initialised (from ``init_seed``) and frozen. The paper
    configuration is ``arch: ViT-B-32, pretrained: openai``. ``checkpoint`` is a local open_clip
    checkpoint file used instead of downloading ``pretrained``.
    """
    arch: str = "pp-text-tiny"
    pretrained: str | None = None
    checkpoint: str | None = None
    init_seed: int = 0

    @property
    def is_pretrained(self) -> bool:
        return bool(self.pretrained or self.checkpoint)


@dataclass(frozen=True)
class ModelConfig:
    # --- data layout
    skeleton: str = "h36m17"
    frames: int = 16                   # T: window length
    in_channels: int = 3               # x, y, confidence
    input_centering: str = "clip"      # clip: subtract the clip's mean 2D position of the visible joints | none
    # --- GAtFuN backbone
    width: int = 32                    # D
    depth: int = 2
    heads: int = 2
    mlp_ratio: float = 2.0
    qkv_bias: bool = True
    drop_path: float = 0.0             # stochastic depth, linear over depth
    dropout: float = 0.0
    temporal_prior_center: float = 5.0  # frames: the motion stream's temporal prior
    temporal_prior_slope: float = 0.125
    motion_weight: float = 0.5         # initial weight a of the motion stream in every adaptive fusion
    motion_norm: bool = True           # LayerNorm after each motion-stream stage (as the pose stream)
    # --- variant switches
    prompt: str = "adaptive"           # none | static | adaptive | direct (z -> P' and tokens, no text: a control)
    spatial_pool: str = "laplacian"    # laplacian | mean
    temporal_pool: str = "gaussian"    # gaussian | mean
    inject: str = "both"               # encoding | refinement | both
    action_text: str = "label"         # label | generic ("action" for every sample)
    person_text: str = "generic"       # label (style word of the source) | generic ("a person")
    context_from: str = "embedding"    # embedding (eq. 1-2 output) | layer1 (pose stream after layer 1)
    # --- context pooling (sections 3.2-3.4)
    spatial_heads: int = 4             # H_s
    temporal_heads: int = 4            # H_t
    context_dim: int = 32              # D_c
    temporal_radius: int = 7           # kernel support tau in [-R, R]
    temporal_shift: bool = False       # learn the kernel centre mu_h (eq. 8)
    temporal_filter: str = "smooth"    # smooth: X^(h) = g_h * X (eq. 9) | detail: X - g_h * X (motion below sigma_h)
    context_norm: str = "batch"        # z before the slot MLPs: batch (standardised across samples) | sample (LayerNorm)
    slot_dim: int = 32                 # width of the slot descriptors z_k (eq. 13)
    adapt_init: float = 1.0            # |Delta p_k| / |r_k| at initialisation (about)
    direct_hidden: int = 32            # prompt: direct: hidden width of its token MLPs g_k(z_k) (model/direct.py)
    # --- capacity matching (model/capacity.py): adaptive = the free size (width for prompt none,
    # direct_hidden for prompt direct) is solved so that the trainable parameter count is nearest
    # that of the same configuration with prompt: adaptive (the capacity-matched controls)
    match_params: str = "none"         # none | adaptive
    # --- prompts (section 3.5)
    slots: tuple[str, ...] = DEFAULT_SLOTS
    slot_words: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_SLOT_WORDS))
    prompt_length: int = 6             # L: tokens per slot
    text_tokens: int = 3               # t: frozen word tokens per slot
    prompt_encoder_layers: int = 1     # trainable transformer layers after the frozen tower
    cross_attention: bool = True       # pose-to-prompt cross-attention (section 3.6)
    text_encoder: TextEncoderConfig = field(default_factory=TextEncoderConfig)

    def __post_init__(self):
        for key, allowed in (("prompt", PROMPT_MODES), ("spatial_pool", SPATIAL_POOLS),
                             ("temporal_pool", TEMPORAL_POOLS), ("inject", INJECT_POINTS),
                             ("action_text", TEXT_SOURCES), ("person_text", TEXT_SOURCES),
                             ("context_from", CONTEXT_SOURCES), ("input_centering", ("clip", "none")),
                             ("temporal_filter", TEMPORAL_FILTERS), ("context_norm", CONTEXT_NORMS),
                             ("match_params", MATCH_PARAMS)):
            if getattr(self, key) not in allowed:
                raise ConfigError(f"model.{key} = {getattr(self, key)!r}; expected one of {list(allowed)}")
        for key in ("frames", "width", "depth", "heads", "spatial_heads", "temporal_heads", "context_dim",
                    "slot_dim", "prompt_length", "in_channels", "direct_hidden"):
            if int(getattr(self, key)) < 1:
                raise ConfigError(f"model.{key} = {getattr(self, key)!r}; expected a positive integer")
        if self.width % self.heads:
            raise ConfigError(f"model.width = {self.width} must be divisible by model.heads = {self.heads}")
        if not 0 <= self.text_tokens < self.prompt_length:
            raise ConfigError(f"model.text_tokens = {self.text_tokens} must be in [0, prompt_length = "
                              f"{self.prompt_length}): each slot needs at least one learnable context token")
        missing = [s for s in self.slots if s not in self.slot_words]
        if missing:
            raise ConfigError(f"model.slot_words has no default text for slots {missing}")
        if self.temporal_radius < 0:
            raise ConfigError("model.temporal_radius must be >= 0")
        if self.context_from == "layer1" and self.depth < 2:
            raise ConfigError("model.context_from = 'layer1' needs model.depth >= 2 (the prompts enter after "
                              "the first layer; with one layer the motion stream would no longer reach the head)")
        if not 0.0 < self.motion_weight < 1.0:
            raise ConfigError(f"model.motion_weight = {self.motion_weight!r}; expected a number in (0, 1)")
        if self.adapt_init < 0:
            raise ConfigError(f"model.adapt_init = {self.adapt_init!r}; expected a number >= 0")
        if self.match_params != "none" and self.prompt not in ("none", "direct"):
            raise ConfigError(f"model.match_params = {self.match_params!r} needs model.prompt 'none' (the width is "
                              f"solved) or 'direct' (direct_hidden is solved), got prompt {self.prompt!r}")

    # --- derived sizes
    @property
    def num_slots(self) -> int:
        return len(self.slots)           # K

    @property
    def context_tokens(self) -> int:
        return self.prompt_length - self.text_tokens   # L - t

    @property
    def prompt_sequence_length(self) -> int:
        """Start token + K slots of L tokens + end token."""
        return self.num_slots * self.prompt_length + 2

    @property
    def uses_text(self) -> bool:
        """Slot texts through the frozen text tower (static and adaptive prompts)."""
        return self.prompt in ("static", "adaptive")

    @property
    def pools_context(self) -> bool:
        """The pose context z is pooled (Laplacian and Gaussian heads, gates, slot descriptors)."""
        return self.prompt in ("adaptive", "direct")

    @property
    def has_prompt(self) -> bool:
        """Something enters the pose and/or motion stream (P' and tokens): every mode but none."""
        return self.prompt != "none"

    # --- conversion
    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | "ModelConfig") -> "ModelConfig":
        if isinstance(d, ModelConfig):
            return d
        d = dict(d)
        check_keys("model", d, cls)
        te = d.pop("text_encoder", None) or {}
        if not isinstance(te, TextEncoderConfig):
            check_keys("model.text_encoder", te, TextEncoderConfig)
            te = TextEncoderConfig(**te)
        if "slots" in d:
            d["slots"] = tuple(d["slots"])
        if "slot_words" in d:
            d["slot_words"] = {**DEFAULT_SLOT_WORDS, **dict(d["slot_words"])}
        return cls(**d, text_encoder=te)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["slots"] = list(self.slots)
        out["slot_words"] = dict(self.slot_words)
        return out

    def replace(self, **changes) -> "ModelConfig":
        return replace(self, **changes)


def merge(base: Mapping[str, Any], override: Mapping[str, Any] | None) -> dict[str, Any]:
    """Recursive dict merge (``override`` wins): a variant is the model section plus its overrides."""
    out = dict(base)
    for k, v in (override or {}).items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


# ---- the data section --------------------------------------------------------------------------------

@dataclass(frozen=True)
class WindowConfig:
    """``data.windows``: how windows of T frames are cut when loading (poseprompt/data/windows.py)."""
    short: str = "pad"                                   # sequences shorter than T: pad | reject
    speed_thresholds: tuple[float, ...] = (0.6, 3.0)     # body scales / s: slow < a <= normal < b <= fast

    def __post_init__(self):
        if self.short not in ("pad", "reject"):
            raise ConfigError(f"data.windows.short = {self.short!r}; expected 'pad' or 'reject'")
        object.__setattr__(self, "speed_thresholds", tuple(float(v) for v in self.speed_thresholds))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> "WindowConfig":
        d = dict(d or {})
        check_keys("data.windows", d, cls)
        return cls(**d)

    def kwargs(self) -> dict[str, Any]:
        return {"short": self.short, "speed_thresholds": self.speed_thresholds}


@dataclass(frozen=True)
class ValConfig:
    """``data.val``: the validation split carved from the training data (model selection)."""
    by: str = "subject"                                  # subject | sequence
    fraction: float = 0.2
    subjects: tuple[str, ...] = ()                       # explicit validation subjects (by: subject)

    def __post_init__(self):
        if self.by not in ("subject", "sequence"):
            raise ConfigError(f"data.val.by = {self.by!r}; expected 'subject' or 'sequence'")
        if not 0.0 < float(self.fraction) < 1.0:
            raise ConfigError(f"data.val.fraction = {self.fraction!r}; expected a number in (0, 1)")
        object.__setattr__(self, "subjects", tuple(self.subjects or ()))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> "ValConfig":
        d = dict(d or {})
        check_keys("data.val", d, cls)
        return cls(**d)


#: The data sources and the sub-section of ``data`` that configures each.
SOURCE_SECTIONS = {"synthetic": "synthetic", "bvh": "bvh", "h36m": "h36m", "3dhp": "mpi3dhp", "humaneva": "humaneva"}


@dataclass(frozen=True)
class DataConfig:
    """The ``data`` section. The source sections are each source's own typed options, validated by
    the source (``resolve_config``: unknown keys are errors that list the known ones) and kept
    read-only; their defaults are the sources' ``DEFAULTS``, equal to the default preset."""
    source: str = "synthetic"
    out_dir: str = "data/processed"
    val: ValConfig = field(default_factory=ValConfig)
    windows: WindowConfig = field(default_factory=WindowConfig)
    cross_domain: tuple[Mapping[str, Any], ...] = ()
    synthetic: Mapping[str, Any] = field(default_factory=dict)
    bvh: Mapping[str, Any] = field(default_factory=dict)
    h36m: Mapping[str, Any] = field(default_factory=dict)
    mpi3dhp: Mapping[str, Any] = field(default_factory=dict)
    humaneva: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.source not in SOURCE_SECTIONS:
            raise ConfigError(f"data.source = {self.source!r}; expected one of {sorted(SOURCE_SECTIONS)}")
        import types
        for name in SOURCE_SECTIONS.values():
            object.__setattr__(self, name, types.MappingProxyType(dict(getattr(self, name) or {})))
        entries = []
        for i, e in enumerate(self.cross_domain or ()):
            e = dict(e or {})
            if e.get("source") not in SOURCE_SECTIONS or not e.get("name"):
                raise ConfigError(f"data.cross_domain[{i}] = {e!r}; expected {{name: ..., source: one of "
                                  f"{sorted(SOURCE_SECTIONS)}, ...options of that source}}")
            entries.append(types.MappingProxyType(e))
        object.__setattr__(self, "cross_domain", tuple(entries))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | "DataConfig", resolve=None) -> "DataConfig":
        """Build and validate; ``resolve`` (source -> function) checks every source section that
        is used (the active source and the cross-domain entries)."""
        if isinstance(d, DataConfig):
            return d
        d = dict(d or {})
        check_keys("data", d, cls)
        d["val"] = ValConfig.from_dict(d.get("val"))
        d["windows"] = WindowConfig.from_dict(d.get("windows"))
        d["cross_domain"] = tuple(d.get("cross_domain") or ())
        cfg = cls(**d)
        if resolve is not None:
            try:
                resolve[cfg.source](dict(getattr(cfg, SOURCE_SECTIONS[cfg.source])))
                for e in cfg.cross_domain:
                    opts = {k: v for k, v in e.items() if k not in ("name", "source")}
                    resolve[e["source"]](opts or dict(getattr(cfg, SOURCE_SECTIONS[e["source"]])))
            except ValueError as err:
                raise ConfigError(f"data: {err}") from err
        return cfg


# ---- train ------------------------------------------------------------------------------------------

#: missing-joint patterns (poseprompt.data.perturb.occlude; train.occlusion.modes, occlusion suites)
OCCLUSION_MODES = ("joints", "limbs", "parts", "side", "all")


@dataclass(frozen=True)
class OcclusionConfig:
    """``train.occlusion``: missing joints as training augmentation, like a detector's dropped joints.

    A fraction ``prob`` of the training clips get missing joints. Such a clip draws a rate
    ``r ~ U(0, max_rate)`` (the fraction of its (frame, joint) 2D entries to hide) and events are
    added until about ``r`` is hidden: each event picks one of ``modes`` (uniformly; ``joints``: a
    single joint, ``limbs``: an arm or a leg, see :func:`poseprompt.data.perturb.occlusion_groups`),
    a group of that mode, and hides it over ``span`` = [min, max] frames (uniform, clipped to T).
    On average ``prob * max_rate / 2`` of the entries are hidden.
    """
    prob: float = 0.5
    max_rate: float = 0.25
    modes: tuple[str, ...] = ("joints", "limbs")
    span: tuple[int, int] = (2, 16)

    def __post_init__(self):
        def fraction(v) -> bool:
            return isinstance(v, (int, float)) and not isinstance(v, bool) and 0.0 <= v <= 1.0
        if not fraction(self.prob):
            raise ConfigError(f"train.occlusion.prob = {self.prob!r}; expected a probability in [0, 1]")
        if not fraction(self.max_rate):
            raise ConfigError(f"train.occlusion.max_rate = {self.max_rate!r}; expected a fraction in [0, 1]")
        if not self.modes or any(m not in OCCLUSION_MODES for m in self.modes):
            raise ConfigError(f"train.occlusion.modes = {list(self.modes)!r}; expected a non-empty list of "
                              f"{list(OCCLUSION_MODES)}")
        span = self.span
        if not (len(span) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in span)
                and 1 <= span[0] <= span[1]):
            raise ConfigError(f"train.occlusion.span = {list(span)!r}; expected [min, max] frames, integers "
                              f"with 1 <= min <= max")

    @property
    def active(self) -> bool:
        return self.prob > 0 and self.max_rate > 0

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | "OcclusionConfig" | None) -> "OcclusionConfig":
        if isinstance(d, OcclusionConfig):
            return d
        if d is None:
            return cls()
        if not isinstance(d, Mapping):
            raise ConfigError(f"train.occlusion: expected a mapping with keys "
                              f"{sorted(f.name for f in fields(cls))}, got {d!r}")
        check_keys("train.occlusion", d, cls)
        d = dict(d)
        for key in ("modes", "span"):
            if key in d:
                if isinstance(d[key], str) or not isinstance(d[key], (list, tuple)):
                    raise ConfigError(f"train.occlusion.{key} = {d[key]!r}; expected a list")
                d[key] = tuple(d[key])
        return cls(**d)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 6
    batch_size: int = 8             # global batch, split across processes
    lr: float = 4e-3
    lr_decay: float = 0.8           # per epoch (schedule "exp")
    schedule: str = "cosine"        # exp (lr_decay per epoch) | cosine (to 0 over the run, after the warm-up)
    lr_context: float = 10.0        # learning-rate factor of the context-pooling parameters (CONTEXT_PARAMS)
    warmup_steps: int = 20
    weight_decay: float = 0.01
    grad_clip: float = 1.0          # max gradient norm; 0 = off
    w_nmpjpe: float = 0.5
    w_velocity: float = 1.0
    stride: int = 14                # frames between training windows
    flip: bool = True               # flip augmentation
    occlusion: OcclusionConfig = field(default_factory=OcclusionConfig)   # missing joints (augment.py)
    val_batch_size: int = 64
    select: str = "val"             # val | last
    device: str = "auto"            # auto | cpu | cuda | cuda:1 ...
    precision: str = "auto"         # auto (bf16 autocast on CUDA) | fp32 | bf16
    compile: bool = False           # torch.compile the model (measured: README, "Speed")
    gpus: int = 1                   # > 1: the notebook launches torchrun with this many processes
    checkpoint_every: int = 0       # steps between mid-epoch checkpoints; 0 = end of epoch only
    max_steps: int = 0              # the run's budget: finish (export the model) after this many steps in all (0: none)
    log_every: int = 10             # steps between gradient-ratio measurements and progress updates
    threads: int = 0                # torch CPU threads (0 = torch's default; with seed_procs: cores / processes)
    seed_procs: int = 0             # seeds trained at once, one process each (0 = auto: CPU one per seed and core, GPU 1)
    progress: bool = True           # a bar on a terminal, an epoch line in a log

    def __post_init__(self):
        if not isinstance(self.occlusion, OcclusionConfig):        # built from a plain mapping
            object.__setattr__(self, "occlusion", OcclusionConfig.from_dict(self.occlusion))
        if self.select not in ("val", "last"):
            raise ConfigError(f"train.select = {self.select!r}; expected 'val' or 'last'")
        if self.schedule not in ("exp", "cosine"):
            raise ConfigError(f"train.schedule = {self.schedule!r}; expected 'exp' or 'cosine'")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ConfigError(f"train.precision = {self.precision!r}; expected auto, fp32 or bf16")
        if self.seed_procs < 0:
            raise ConfigError(f"train.seed_procs = {self.seed_procs}; expected 0 (automatic) or a positive number")
        if self.batch_size < 1 or self.epochs < 1 or self.stride < 1 or self.log_every < 1:
            raise ConfigError("train.batch_size, train.epochs, train.stride and train.log_every must be positive")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | "TrainConfig") -> "TrainConfig":
        if isinstance(d, TrainConfig):
            return d
        if "occlusion_prob" in d:
            raise ConfigError("train.occlusion_prob was replaced by the section train.occlusion: "
                              "{prob, max_rate, modes, span} (see OcclusionConfig)")
        check_keys("train", d, cls)
        d = dict(d)
        d["occlusion"] = OcclusionConfig.from_dict(d.get("occlusion"))
        return cls(**d)
