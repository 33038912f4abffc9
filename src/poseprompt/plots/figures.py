"""Every figure and table of the paper from the pipeline's outputs: :func:`make_all` (the figures
stage, notebooks/04_figures.ipynb).

Reads, for every variant of params.yaml: ``models/<v>/model.pt``, ``models/<v>/train_summary.json``,
``metrics/<v>.json`` and ``reports/eval/<v>/predictions.npz``; and ``<data.out_dir>/test.npz``.
Writes into ``figures/`` (PNG and PDF) and ``figures/tables/`` (Markdown and LaTeX), with stable
names (:data:`FIGURES`, :data:`TABLES`), the raw cost measurements ``figures/tables/cost.json`` and
``figures/manifest.json`` (every figure's files, size in inches and dpi; every table's files).

Settings: the ``figures`` section of params.yaml (:class:`FigureConfig`); every key is optional.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..config import ConfigError
from ..io import write_json

FIGURES = ("fig2_architecture", "fig3_laplacian_pooling", "fig4_gaussian_pooling", "fig5_occlusion",
           "fig6_irregular_motion", "fig7_cross_domain", "fig8_attention_encoding", "fig9_velocity_refinement",
           "fig10_training_curves", "fig11_qualitative")
TABLES = ("main_results", "ablation", "injection", "robustness", "cross_domain", "cost")


@dataclass(frozen=True)
class FigureConfig:
    """The ``figures`` section of params.yaml."""
    dpi: int = 300                                  # raster resolution of the PNGs
    baseline: str = "gatfun"                        # the no-prompt baseline
    proposed: str = "full"                          # the proposed model (method figures, comparisons)
    main: tuple[str, ...] | None = None             # variants of the main table (None: every variant)
    ablation: tuple[str, ...] = ("gatfun", "static", "adaptive-mean", "adaptive-spatial", "adaptive-temporal",
                                 "full", "full-generic-action")
    injection: tuple[str, ...] = ("full-encoding-only", "full-refinement-only", "full")
    irregular_suites: tuple[str, ...] = ("speed", "drop", "jitter")   # panels of Figure 6 (those evaluated)
    example_frame: int | None = None                # test frame of Figure 3 (None: most frontal pose)
    trajectory_joint: str = "right_wrist"           # joint whose trajectory Figure 4 filters
    attention_clips: int = 8                        # test windows averaged in Figures 8 and 9
    attention_layer: int = -1                       # layer shown in Figure 8 (-1: last)
    qualitative_clips: int = 2                      # clips per setting (clean, occluded) in Figure 11
    qualitative_occlusion: float | None = None      # occlusion strength of Figure 11 (None: the largest)
    cost_batch: int = 1                             # clips per forward pass when timing
    cost_repeats: int = 3                           # timed repeats (after one warm-up)
    cost_device: str = "auto"                       # auto (CUDA if present) | cpu | cuda
    cost_threads: int = 0                           # torch CPU threads while timing (0: as configured)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> "FigureConfig":
        d = dict(d or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"figures: unknown keys {unknown}; known keys: {sorted(known)}")
        for k in ("main", "ablation", "injection", "irregular_suites"):
            if d.get(k) is not None:
                d[k] = tuple(d[k])
        return cls(**d)


# ---- inputs -----------------------------------------------------------------------------------------

def seeds_of(params: Mapping) -> list[int]:
    from ..params import seeds_of as _seeds
    return _seeds(params)


def required_inputs(root: Path, params: Mapping) -> list[tuple[Path, str]]:
    """(file, the stage that writes it) for everything the figures read."""
    from ..train import seed_dir
    out = [(root / params["data"]["out_dir"] / "test.npz", "prepare")]
    for v in params["variants"]:
        out.append((root / "metrics" / "variants" / f"{v}.json", f"evaluate@{v}"))
        for s in seeds_of(params):
            out += [(seed_dir(root, v, s) / "model.pt", f"train@{v}"),
                    (seed_dir(root, v, s) / "train_summary.json", f"train@{v}"),
                    (seed_dir(root, v, s, "reports/eval") / "predictions.npz", f"evaluate@{v}"),
                    (seed_dir(root, v, s, "reports/eval") / "clip_errors.npz", f"evaluate@{v}")]
    return out


def check_inputs(root: Path, params: Mapping) -> None:
    missing = [(p, s) for p, s in required_inputs(root, params) if not p.is_file()]
    if missing:
        lines = "\n".join(f"  {p} (written by stage {s}: `dvc repro {s}`)" for p, s in missing)
        raise FileNotFoundError(f"the figures need outputs that are missing:\n{lines}")


@dataclass
class Outputs:
    """The pipeline outputs of one project root, loaded on demand.

    ``metrics[v]``: the variant's results over seeds (means in one seed's layout, ``std``,
    ``per_seed``); ``summaries[v]``: the first seed's training summary and ``all_summaries[v]`` every
    seed's; the figures that show one model (method figures, attention, qualitative) use the first
    seed's checkpoint (``model(v)``), and say so."""
    root: Path
    params: Mapping
    variants: list[str] = field(default_factory=list)
    _models: dict = field(default_factory=dict)

    def __post_init__(self):
        from ..train import seed_dir
        self.root = Path(self.root)
        self.variants = list(self.params["variants"])
        self.seeds = seeds_of(self.params)
        self.metrics = {v: json.loads((self.root / "metrics" / "variants" / f"{v}.json").read_text())
                        for v in self.variants}
        self.all_summaries = {v: [json.loads((seed_dir(self.root, v, s) / "train_summary.json").read_text())
                                  for s in self.seeds] for v in self.variants}
        self.summaries = {v: ss[0] for v, ss in self.all_summaries.items()}
        self.configs = {v: self.summaries[v].get("model_config") or self._config(v) for v in self.variants}
        audit_dir = self.root / "metrics" / "audit"
        self.audits = {v: json.loads((audit_dir / f"{v}.json").read_text()) for v in self.variants
                       if (audit_dir / f"{v}.json").is_file()}
        from ..data.format import PoseSequences
        self.test = PoseSequences.load(self.root / self.params["data"]["out_dir"] / "test.npz")
        from ..train import window_kwargs
        self.window_kw = window_kwargs(self.params["data"])

    def _config(self, v):
        from ..params import variant_config
        return variant_config(self.params, v).to_dict()

    def checkpoint(self, v: str, seed: int | None = None) -> Path:
        from ..train import seed_dir
        return seed_dir(self.root, v, self.seeds[0] if seed is None else seed) / "model.pt"

    def model(self, v: str):
        if v not in self._models:
            from ..checkpoint import load_checkpoint
            self._models[v] = load_checkpoint(self.checkpoint(v))
        return self._models[v]

    def predictions(self, v: str) -> dict[str, np.ndarray]:
        from ..train import seed_dir
        with np.load(seed_dir(self.root, v, self.seeds[0], "reports/eval") / "predictions.npz") as z:
            return {k: z[k].astype(np.float32) for k in z.files}

    def clip_errors(self, v: str) -> dict[str, np.ndarray]:
        """Per-clip MPJPE of every setting, stacked over seeds: setting -> (S, W)."""
        from ..train import seed_dir
        per = []
        for s in self.seeds:
            with np.load(seed_dir(self.root, v, s, "reports/eval") / "clip_errors.npz") as z:
                per.append({k: z[k].astype(np.float64) for k in z.files})
        keys = set.intersection(*(set(p) for p in per))
        return {k: np.stack([p[k] for p in per]) for k in sorted(keys)}


# ---- everything -------------------------------------------------------------------------------------

def make_all(root: str | Path, params: Mapping, out_dir: str | Path = "figures", log=print) -> list[Path]:
    """Write every figure (PNG + PDF) and table (.md + .tex) and return the written files.

    ``out_dir`` is relative to ``root`` unless absolute; tables go to ``<out_dir>/tables``."""
    from . import cost as C
    from . import evidence as E
    from . import method as M
    from . import qualitative as Q
    from . import tables as T

    root = Path(root)
    cfg = FigureConfig.from_dict(params.get("figures"))
    for key in ("baseline", "proposed"):
        if getattr(cfg, key) not in params["variants"]:
            raise ConfigError(f"figures.{key} = {getattr(cfg, key)!r} is not a variant of params.yaml "
                              f"(variants: {list(params['variants'])})")
    check_inputs(root, params)
    out = Path(out_dir) if Path(out_dir).is_absolute() else root / out_dir
    tab = out / "tables"
    o = Outputs(root, params)
    dpi, base, prop, vs = cfg.dpi, cfg.baseline, cfg.proposed, o.variants
    log = log or (lambda *a: None)
    written: list[Path] = []
    manifest: dict[str, dict] = {"figures": {}, "tables": {}}

    def done(result, what):
        paths = result["paths"] if isinstance(result, dict) else result
        written.extend(paths)
        stem = Path(paths[0]).stem
        if isinstance(result, dict):
            manifest["figures"][stem] = {"files": [p.name for p in paths], "size_in": result["size_in"], "dpi": dpi,
                                         "what": what}
        else:
            manifest["tables"][stem] = {"files": [str(Path(p).relative_to(out)) for p in paths], "what": what}
        log(f"wrote {what}")

    done(M.fig2_architecture(out, o.model(prop).cfg, dpi=dpi), "Figure 2 (architecture)")
    done(M.fig3_laplacian_pooling(o.model(prop), o.test, out, window_kw=o.window_kw, frame=cfg.example_frame,
                                  dpi=dpi), "Figure 3 (Laplacian pooling)")
    done(M.fig4_gaussian_pooling(o.model(prop), o.test, out, window_kw=o.window_kw, joint=cfg.trajectory_joint,
                                 dpi=dpi), "Figure 4 (Gaussian pooling)")
    done(E.fig5_occlusion(o.metrics, out, base, dpi=dpi, all_variants=vs), "Figure 5 (occlusion)")
    done(E.fig6_irregular_motion(o.metrics, out, base, cfg.irregular_suites, dpi=dpi, all_variants=vs),
         "Figure 6 (irregular motion)")
    done(E.fig7_cross_domain(o.metrics, out, base, dpi=dpi, all_variants=vs), "Figure 7 (cross-domain)")
    done(E.fig8_attention_encoding({base: o.model(base), prop: o.model(prop)}, o.test, out, base, prop,
                                   o.window_kw, cfg.attention_clips, cfg.attention_layer, dpi=dpi),
         "Figure 8 (attention-based encoding)")
    done(E.fig9_velocity_refinement({v: o.model(v) for v in vs}, o.metrics, o.test, out, base, o.window_kw,
                                    cfg.attention_clips, dpi=dpi, all_variants=vs), "Figure 9 (velocity refinement)")
    done(E.fig10_training_curves(o.summaries, out, base, dpi=dpi, all_variants=vs), "Figure 10 (training curves)")
    preds = {v: o.predictions(v) for v in (base, prop)}
    done(Q.fig11_qualitative(o.test, preds, out, base, prop, o.model(prop).cfg.frames, cfg.qualitative_clips,
                             cfg.qualitative_occlusion, params["evaluate"], o.window_kw, dpi=dpi),
         "Figure 11 (qualitative)")

    main = [v for v in (cfg.main or vs) if v in o.metrics]
    done(T.main_results(o.metrics, o.configs, main, tab)[0], "table main_results")
    done(T.ablation(o.metrics, o.configs, vs, cfg.ablation, base, tab)[0], "table ablation")
    done(T.injection(o.metrics, o.configs, vs, cfg.injection, tab)[0], "table injection")
    done(T.robustness(o.metrics, o.configs, vs, tab)[0], "table robustness")
    done(T.cross_domain(o.metrics, o.configs, vs, tab)[0], "table cross_domain")
    measured = C.measure_variants({v: o.checkpoint(v) for v in vs}, cfg.cost_batch, cfg.cost_device,
                                  cfg.cost_repeats, threads=cfg.cost_threads, log=log)
    written.append(write_json(tab / "cost.json", measured))
    done(T.cost(measured, o.metrics, o.configs, vs, tab)[0], "table cost")
    written.append(write_json(out / "manifest.json", manifest))
    return written
