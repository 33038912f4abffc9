"""Every figure and table of the paper from the pipeline's outputs: :func:`make_all` (the figures
stage, notebooks/04_figures.ipynb).

Reads, for every variant of params.yaml: ``models/<v>/model.pt``, ``models/<v>/train_summary.json``,
``metrics/<v>.json`` and ``reports/eval/<v>/predictions.npz``; and ``<data.out_dir>/test.npz``.
Writes into ``figures/`` (PNG and PDF) and ``figures/tables/`` (Markdown and LaTeX), with stable
names (:data:`FIGURES`, :data:`TABLES`), the raw cost measurements ``figures/tables/cost.json``, the
claims with their verdicts ``figures/tables/claims.json`` (:mod:`poseprompt.plots.claims`) and
``figures/manifest.json`` (every figure's files, size in inches and dpi; every table's files; what
was skipped and why).

Settings: the ``figures`` section of params.yaml (:class:`FigureConfig`); every key is optional.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from poseprompt.config.sections import ConfigError, check_keys
from poseprompt.core.io import write_json

FIGURES = ("fig2_architecture", "fig3_laplacian_pooling", "fig4_gaussian_pooling", "fig5_occlusion",
           "fig6_irregular_motion", "fig7_cross_domain", "fig8_attention_encoding", "fig9_velocity_refinement",
           "fig10_training_curves", "fig11_qualitative", "fig12_component_audit")
TABLES = ("main_results", "ablation", "injection", "robustness", "cross_domain", "audit", "audit_movement", "cost",
          "claims")


@dataclass(frozen=True)
class FigureConfig:
    """The ``figures`` section of params.yaml."""
    dpi: int = 300                                  # raster resolution of the PNGs
    baseline: str = "gatfun"                        # the no-prompt baseline
    matched_baseline: str | None = "gatfun-wide"    # the capacity-matched baseline (None: none; absent: skipped)
    proposed: str = "full"                          # the proposed model (method figures, comparisons)
    claim_variant: str = "full-generic-action"      # the label-free method of the claims table
    main: tuple[str, ...] | None = None             # variants of the main table (None: every variant)
    ablation: tuple[str, ...] = ("gatfun", "gatfun-wide", "static", "context-direct", "adaptive-mean",
                                 "adaptive-spatial", "adaptive-temporal", "full", "full-generic-action", "full-layer1")
    injection: tuple[str, ...] = ("full-encoding-only", "full-refinement-only", "full")
    irregular_suites: tuple[str, ...] = ("speed", "drop", "jitter")   # panels of Figure 6 (those evaluated)
    example_frame: int | None = None                # test frame of Figure 3 (None: most frontal pose)
    trajectory_joint: str = "right_wrist"           # joint whose trajectory Figure 4 filters
    attention_clips: int = 8                        # test windows averaged in Figures 8 and 9
    attention_layer: int = -1                       # layer shown in Figure 8 (-1: last)
    qualitative_clips: int = 2                      # clips per setting (clean, occluded) in Figure 11
    qualitative_occlusion: float | None = None      # occlusion strength of Figure 11 (None: the largest)
    cost_batch: int = 1                             # clips per forward pass when timing
    cost_repeats: int = 5                           # timed repeats after one warm-up (median reported)
    cost_device: str = "auto"                       # auto (CUDA if present) | cpu | cuda
    cost_threads: int = 0                           # torch CPU threads while timing (0: as configured)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> "FigureConfig":
        d = dict(d or {})
        check_keys("figures", d, cls)
        for k in ("main", "ablation", "injection", "irregular_suites"):
            if d.get(k) is not None:
                d[k] = tuple(d[k])
        return cls(**d)


# ---- inputs -----------------------------------------------------------------------------------------

def seeds_of(params: Mapping) -> list[int]:
    from poseprompt.config.params import seeds_of as _seeds
    return _seeds(params)


def required_inputs(root: Path, params: Mapping) -> list[tuple[Path, str]]:
    """(file, the stage that writes it) for everything the figures read."""
    from poseprompt.core.paths import seed_dir
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
        from poseprompt.core.paths import seed_dir
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
        from poseprompt.data.format import PoseSequences
        self.test = PoseSequences.load(self.root / self.params["data"]["out_dir"] / "test.npz")
        from poseprompt.data.windows import window_kwargs
        self.window_kw = window_kwargs(self.params["data"])

    def _config(self, v):
        from poseprompt.config.params import variant_config
        return variant_config(self.params, v).to_dict()

    def checkpoint(self, v: str, seed: int | None = None) -> Path:
        from poseprompt.core.paths import seed_dir
        return seed_dir(self.root, v, self.seeds[0] if seed is None else seed) / "model.pt"

    def model(self, v: str):
        if v not in self._models:
            from poseprompt.model.checkpoint import load_checkpoint
            self._models[v] = load_checkpoint(self.checkpoint(v))
        return self._models[v]

    def predictions(self, v: str) -> dict[str, np.ndarray]:
        from poseprompt.core.paths import seed_dir
        with np.load(seed_dir(self.root, v, self.seeds[0], "reports/eval") / "predictions.npz") as z:
            return {k: z[k].astype(np.float32) for k in z.files}

    def clip_errors(self, v: str) -> dict[str, np.ndarray]:
        """Per-clip MPJPE of every setting, stacked over seeds: setting -> (S, W)."""
        from poseprompt.core.paths import seed_dir
        per = []
        for s in self.seeds:
            with np.load(seed_dir(self.root, v, s, "reports/eval") / "clip_errors.npz") as z:
                per.append({k: z[k].astype(np.float64) for k in z.files})
        keys = set.intersection(*(set(p) for p in per))
        return {k: np.stack([p[k] for p in per]) for k in sorted(keys)}


# ---- everything -------------------------------------------------------------------------------------

def mean_pose_floor(root: Path, params: Mapping, test) -> float:
    """MPJPE (mm) of predicting every test frame as the training split's mean root-relative pose:
    the error of a model that ignores its input (the floor beside the results)."""
    return mean_pose_floors(root, params, {"test": test})["test"]


def mean_pose_floors(root: Path, params: Mapping, splits: Mapping[str, Any]) -> dict[str, float]:
    """:func:`mean_pose_floor` of several splits (name -> PoseSequences), the training mean loaded once;
    per action frame-weighted, then the mean over actions (the evaluation's protocol)."""
    from poseprompt.data.format import PoseSequences
    train = PoseSequences.load(root / params["data"]["out_dir"] / "train.npz")
    mean = train.pose3d[train.valid].mean(0)                                   # (N, 3), root at 0
    out = {}
    for name, split in splits.items():
        err = np.linalg.norm(split.pose3d - mean[None], axis=-1).mean(-1) * 1000.0    # (F,)
        acts = np.repeat(split.action, split.lengths())
        ok = split.valid
        out[name] = float(np.mean([err[ok & (acts == a)].mean() for a in np.unique(acts[ok])]))
    return out


def cross_domain_floors(root: Path, params: Mapping, metrics: Mapping[str, Mapping]) -> dict[str, float]:
    """The mean-pose floor of every cross-domain set of the metrics whose file is in the data folder."""
    from poseprompt.data.format import PoseSequences
    from poseprompt.plots.tables import cross_sets
    folder = root / params["data"]["out_dir"]
    found = {s: folder / f"{s}.npz" for s, _, _ in cross_sets(metrics, list(metrics))}
    return mean_pose_floors(root, params, {s: PoseSequences.load(p) for s, p in found.items() if p.is_file()})


def summary_metrics(R, audits: Mapping, variants, floor: float | None, claims: Mapping[str, int] | None = None
                    ) -> dict:
    """The compact metrics file ``dvc exp show`` and ``dvc metrics diff`` compare experiments on:
    per variant the main MPJPE and P-MPJPE (mean and sd over seeds), the paired difference to the
    baseline (``d_vs_<baseline>``, ``d_lo``, ``d_hi``) and to the capacity-matched baseline
    (``d_vs_<matched>`` with ``_lo``, ``_hi``) with their intervals, the hardest occlusion and the mean
    over the cross-domain sets; and the claims table's verdict counts (``claims``)."""
    out: dict[str, Any] = {"floor_mpjpe": floor, "seeds": len(R.metrics[variants[0]].get("seeds") or [])}
    if claims is not None:
        out["claims"] = dict(claims)
    for v in variants:
        m = R.metrics[v]
        main = m["main"]["setting"]
        sd = (m.get("std") or {}).get(main, {})
        e: dict[str, Any] = {"mpjpe": m[main]["mpjpe"], "mpjpe_sd": sd.get("mpjpe"),
                             "p_mpjpe": m[main]["p_mpjpe"], "p_mpjpe_sd": sd.get("p_mpjpe")}
        iv = R.interval(v, main)
        if iv is not None:
            e.update({f"d_vs_{R.baseline}": iv.mean, "d_lo": iv.lo, "d_hi": iv.hi})
        for b in R.baselines[1:]:
            iv = R.interval(v, main, b)
            if iv is not None:
                e.update({f"d_vs_{b}": iv.mean, f"d_vs_{b}_lo": iv.lo, f"d_vs_{b}_hi": iv.hi})
        occ = m.get("suites", {}).get("occlusion") or {}
        if occ:
            st = max(occ, key=float)
            e[f"occl_{st}"] = occ[st]["mpjpe"]
        cross = m.get("cross_domain") or {}
        if cross:
            e["cross_mean"] = float(np.mean([d["mpjpe"] for d in cross.values()]))
        cut = ((audits.get(v) or {}).get("summary", {}).get("knockout", {}).get("motion_stream", {})
               .get("test", {}).get("interval") or {})
        if cut:
            e["ko_motion_stream"] = cut["mean"]
        out[v] = {k: (round(x, 2) if isinstance(x, float) else x) for k, x in e.items()}
    return out


@dataclass
class Context:
    """What every figure and table of :func:`make_all` draws from (one run's outputs, loaded once)."""
    root: Path
    params: Mapping
    cfg: "FigureConfig"
    out: Path
    o: "Outputs"
    floor: float

    @property
    def tab(self) -> Path:
        return self.out / "tables"

    @property
    def vs(self) -> list[str]:
        return self.o.variants

    @property
    def base(self) -> str:
        return self.cfg.baseline

    @property
    def prop(self) -> str:
        return self.cfg.proposed

    @property
    def model(self):
        """The proposed variant's model (the first seed's checkpoint)."""
        return self.o.model(self.prop)

    @property
    def init(self) -> dict:
        from poseprompt.model.checkpoint import read_checkpoint
        return read_checkpoint(self.o.checkpoint(self.prop)).get("init_state") or {}

    def suites_of(self, kind: str) -> list[str]:
        from poseprompt.plots.tables import suite_settings
        return [v for v in self.vs if suite_settings(self.o.metrics, [v], (kind,))]

    def any_metric(self, key: str) -> bool:
        return any(self.o.metrics[v].get(key) for v in self.vs)


@dataclass(frozen=True)
class Item:
    """One figure or table: its file stem, the manifest's label, the reason it cannot be drawn in a
    configuration (``unless(ctx)``: None when it can) and the drawing (``draw(ctx)``, returning
    what the figure and table functions return)."""
    name: str
    what: str
    draw: Callable[[Context], Any]
    unless: Callable[[Context], str | None] = lambda c: None


def _figures() -> list[Item]:
    """Every figure, in order. A figure whose inputs this configuration lacks is skipped with the
    reason ``unless`` gives."""
    from poseprompt.plots import evidence as E, method as M, qualitative as Q

    def pooled(kind):
        def unless(c):
            ok = c.model.cfg.prompt == "adaptive" and getattr(c.model.cfg, f"{kind}_pool") == \
                {"spatial": "laplacian", "temporal": "gaussian"}[kind]
            return None if ok else f"the proposed variant {c.prop!r} has no " + \
                {"spatial": "Laplacian", "temporal": "Gaussian"}[kind] + " pooling"
        return unless
    return [
        Item("fig2_architecture", "Figure 2 (architecture)",
             lambda c: M.fig2_architecture(c.out, c.model.cfg, dpi=c.cfg.dpi)),
        Item("fig3_laplacian_pooling", "Figure 3 (Laplacian pooling)",
             lambda c: M.fig3_laplacian_pooling(c.model, c.o.test, c.out, window_kw=c.o.window_kw,
                                                frame=c.cfg.example_frame, dpi=c.cfg.dpi, init_state=c.init),
             pooled("spatial")),
        Item("fig4_gaussian_pooling", "Figure 4 (Gaussian pooling)",
             lambda c: M.fig4_gaussian_pooling(c.model, c.o.test, c.out, window_kw=c.o.window_kw,
                                               joint=c.cfg.trajectory_joint, dpi=c.cfg.dpi, init_state=c.init),
             pooled("temporal")),
        Item("fig5_occlusion", "Figure 5 (occlusion)",
             lambda c: E.fig5_occlusion(c.o.metrics, c.out, c.base, dpi=c.cfg.dpi, all_variants=c.vs, floor=c.floor,
                                        train_occlusion=c.params["train"].get("occlusion")),
             lambda c: None if c.suites_of("occlusion") else
             "no suite of kind occlusion was evaluated (evaluate.suites)"),
        Item("fig6_irregular_motion", "Figure 6 (irregular motion)",
             lambda c: E.fig6_irregular_motion(c.o.metrics, c.out, c.base, c.cfg.irregular_suites, dpi=c.cfg.dpi,
                                               all_variants=c.vs),
             lambda c: None if any(s in c.o.metrics[v].get("suites", {}) for v in c.vs
                                   for s in c.cfg.irregular_suites) else
             f"none of the suites {list(c.cfg.irregular_suites)} was evaluated"),
        Item("fig7_cross_domain", "Figure 7 (cross-domain)",
             lambda c: E.fig7_cross_domain(c.o.metrics, c.out, c.base, dpi=c.cfg.dpi, all_variants=c.vs,
                                           floors={"test": c.floor,
                                                   **cross_domain_floors(c.root, c.params, c.o.metrics)}),
             lambda c: None if c.any_metric("cross_domain") else
             "no cross-domain set in this configuration (data.cross_domain, shift_*)"),
        Item("fig8_attention_encoding", "Figure 8 (attention-based encoding)",
             lambda c: E.fig8_attention_encoding({c.base: c.o.model(c.base), c.prop: c.model}, c.o.test, c.out,
                                                 c.base, c.prop, c.o.window_kw, c.cfg.attention_clips,
                                                 c.cfg.attention_layer, dpi=c.cfg.dpi, audits=c.o.audits,
                                                 all_variants=c.vs),
             lambda c: None if c.model.cross_attn is not None and c.base != c.prop else
             "needs a baseline and a proposed variant with cross-attention"),
        Item("fig9_velocity_refinement", "Figure 9 (velocity refinement)",
             lambda c: E.fig9_velocity_refinement({v: c.o.model(v) for v in c.vs}, c.o.metrics, c.o.test, c.out,
                                                  c.base, c.o.window_kw, c.cfg.attention_clips, dpi=c.cfg.dpi,
                                                  all_variants=c.vs, audits=c.o.audits)),
        Item("fig10_training_curves", "Figure 10 (training curves)",
             lambda c: E.fig10_training_curves(c.o.all_summaries, c.out, c.base, dpi=c.cfg.dpi, all_variants=c.vs)),
        Item("fig12_component_audit", "Figure 12 (component audit)",
             lambda c: E.fig12_component_audit(c.o.audits, c.out, c.base, dpi=c.cfg.dpi, all_variants=c.vs),
             lambda c: None if c.o.audits else "no audit was run (evaluate.audit: false)"),
        Item("fig11_qualitative", "Figure 11 (qualitative)",
             lambda c: Q.fig11_qualitative(c.o.test, {v: c.o.predictions(v) for v in (c.base, c.prop)}, c.out,
                                           c.base, c.prop, c.model.cfg.frames, c.cfg.qualitative_clips,
                                           c.cfg.qualitative_occlusion, c.params["evaluate"], c.o.window_kw,
                                           dpi=c.cfg.dpi),
             lambda c: None if c.base != c.prop else "the baseline and the proposed variant are the same"),
    ]


def _tables(R) -> list[Item]:
    """Every table but the cost and claims tables (made after them by :func:`make_all`), in order."""
    from poseprompt.plots import tables as T

    def audited(c):
        return [v for v in c.vs if v in c.o.audits]
    return [
        Item("main_results", "table main_results",
             lambda c: T.main_results(R, [v for v in (c.cfg.main or c.vs) if v in c.o.metrics], c.tab, c.floor)[0]),
        Item("ablation", "table ablation", lambda c: T.ablation(R, c.vs, c.cfg.ablation, c.tab)[0]),
        Item("injection", "table injection", lambda c: T.injection(R, c.o.audits, c.vs, c.cfg.injection, c.tab)[0]),
        Item("robustness", "table robustness", lambda c: T.robustness(R, c.vs, c.tab)[0],
             lambda c: None if c.any_metric("suites") else "no robustness suite was evaluated"),
        Item("cross_domain", "table cross_domain", lambda c: T.cross_domain(R, c.vs, c.tab)[0],
             lambda c: None if c.any_metric("cross_domain") else "no cross-domain set in this configuration"),
        Item("audit", "table audit", lambda c: T.audit_knockouts(R, c.o.audits, audited(c), c.tab)[0],
             lambda c: None if c.o.audits else "no audit was run"),
        Item("audit_movement", "table audit_movement",
             lambda c: T.audit_movement(R, c.o.audits, [v for v in audited(c)
                                                        if c.o.audits[v]["summary"]["movement"]], c.tab)[0],
             lambda c: None if c.o.audits else "no audit was run"),
    ]


def make_all(root: str | Path, params: Mapping, out_dir: str | Path = "figures", log=print) -> list[Path]:
    """Write every figure (PNG + PDF) and table (.md + .tex) whose inputs exist, the compact
    ``metrics/summary.json``, and return the written files.

    ``out_dir`` is relative to ``root`` unless absolute; tables go to ``<out_dir>/tables``. A figure or
    table whose inputs are absent in this configuration (no cross-domain set, no occlusion suite, a
    single variant, ...) is skipped and listed with the reason under ``skipped`` in the manifest:
    every configuration runs to the end; so does a variant named by ``figures.matched_baseline`` or
    ``figures.claim_variant`` that this run did not train (the tables compare with the baseline only,
    the claims that need it say "not run"). What is drawn is the data of :func:`_figures` and
    :func:`_tables`: one :class:`Item` each."""
    from poseprompt.plots import claims as CL, tables as T
    from poseprompt.stages import cost as C

    root = Path(root)
    cfg = FigureConfig.from_dict(params.get("figures"))
    for key in ("baseline", "proposed"):
        if getattr(cfg, key) not in params["variants"]:
            raise ConfigError(f"figures.{key} = {getattr(cfg, key)!r} is not a variant of params.yaml "
                              f"(variants: {list(params['variants'])})")
    check_inputs(root, params)
    out = Path(out_dir) if Path(out_dir).is_absolute() else root / out_dir
    o = Outputs(root, params)
    log = log or (lambda *a: None)
    written: list[Path] = []
    manifest: dict[str, dict] = {"figures": {}, "tables": {}, "skipped": {}}

    def done(result, what):
        paths = result["paths"] if isinstance(result, dict) else result
        written.extend(paths)
        stem = Path(paths[0]).stem
        if isinstance(result, dict):
            manifest["figures"][stem] = {"files": [p.name for p in paths], "size_in": result["size_in"],
                                         "dpi": cfg.dpi, "what": what}
        else:
            manifest["tables"][stem] = {"files": [str(Path(p).relative_to(out)) for p in paths], "what": what}
        log(f"wrote {what}")

    def skip(name, why):
        manifest["skipped"][name] = why
        log(f"skipped {name}: {why}")

    for key in ("matched_baseline", "claim_variant"):
        name = getattr(cfg, key)
        if name is not None and name not in o.variants:
            skip(key, f"figures.{key} = {name!r} is not a variant of this run: " +
                 (f"the tables compare with {cfg.baseline} only" if key == "matched_baseline" else
                  "the claims that need it are 'not run'"))
    ctx = Context(root, params, cfg, out, o, mean_pose_floor(root, params, o.test))
    R = T.Results(o.metrics, o.configs, {v: o.clip_errors(v) for v in o.variants}, cfg.baseline, cfg.matched_baseline)
    for item in _figures() + _tables(R):
        why = item.unless(ctx)
        if why is None:
            done(item.draw(ctx), item.what)
        else:
            skip(item.name, why)
    vs, tab = o.variants, ctx.tab
    measured = C.measure_variants({v: o.checkpoint(v) for v in vs}, cfg.cost_batch, cfg.cost_device,
                                  cfg.cost_repeats, threads=cfg.cost_threads, log=log)
    written.append(write_json(tab / "cost.json", measured))
    done(T.cost(measured, o.metrics, o.configs, vs, tab)[0], "table cost")
    roles = CL.Roles(cfg.baseline, cfg.matched_baseline, cfg.proposed, cfg.claim_variant)
    claim_paths, claim_rows = CL.claims_table(
        R, o.audits, roles, tab, recipe=CL.recipe_note(params, o.summaries[cfg.baseline].get("steps")
                                                       if cfg.baseline in o.summaries else None))
    done(claim_paths, "table claims")
    written.append(write_json(root / "metrics" / "summary.json",
                              summary_metrics(R, o.audits, vs, ctx.floor, CL.verdict_counts(claim_rows))))
    written.append(write_json(out / "manifest.json", manifest))
    return written
