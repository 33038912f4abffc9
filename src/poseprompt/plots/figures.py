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
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..config import ConfigError
from ..io import write_json

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

def mean_pose_floor(root: Path, params: Mapping, test) -> float:
    """MPJPE (mm) of predicting every test frame as the training split's mean root-relative pose:
    the error of a model that ignores its input (the floor beside the results)."""
    return mean_pose_floors(root, params, {"test": test})["test"]


def mean_pose_floors(root: Path, params: Mapping, splits: Mapping[str, Any]) -> dict[str, float]:
    """:func:`mean_pose_floor` of several splits (name -> PoseSequences), the training mean loaded once;
    per action frame-weighted, then the mean over actions (the evaluation's protocol)."""
    from ..data.format import PoseSequences
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
    from ..data.format import PoseSequences
    from .tables import cross_sets
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


def make_all(root: str | Path, params: Mapping, out_dir: str | Path = "figures", log=print) -> list[Path]:
    """Write every figure (PNG + PDF) and table (.md + .tex) whose inputs exist, the compact
    ``metrics/summary.json``, and return the written files.

    ``out_dir`` is relative to ``root`` unless absolute; tables go to ``<out_dir>/tables``. A figure or
    table whose inputs are absent in this configuration (no cross-domain set, no occlusion suite, a
    single variant, ...) is skipped and listed with the reason under ``skipped`` in the manifest:
    every configuration runs to the end; so does a variant named by ``figures.matched_baseline`` or
    ``figures.claim_variant`` that this run did not train (the tables compare with the baseline only,
    the claims that need it say "not run")."""
    from . import claims as CL
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
    manifest: dict[str, dict] = {"figures": {}, "tables": {}, "skipped": {}}

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

    def skip(name, why):
        manifest["skipped"][name] = why
        log(f"skipped {name}: {why}")

    def suites_of(kind):
        return [v for v in vs if T.suite_settings(o.metrics, [v], (kind,))]

    for key in ("matched_baseline", "claim_variant"):
        name = getattr(cfg, key)
        if name is not None and name not in vs:
            skip(key, f"figures.{key} = {name!r} is not a variant of this run: " +
                 (f"the tables compare with {base} only" if key == "matched_baseline" else
                  "the claims that need it are 'not run'"))
    floor = mean_pose_floor(root, params, o.test)

    prop_model = o.model(prop)
    from ..checkpoint import read_checkpoint
    init = read_checkpoint(o.checkpoint(prop)).get("init_state") or {}
    done(M.fig2_architecture(out, prop_model.cfg, dpi=dpi), "Figure 2 (architecture)")
    if prop_model.cfg.prompt == "adaptive" and prop_model.cfg.spatial_pool == "laplacian":
        done(M.fig3_laplacian_pooling(prop_model, o.test, out, window_kw=o.window_kw, frame=cfg.example_frame,
                                      dpi=dpi, init_state=init), "Figure 3 (Laplacian pooling)")
    else:
        skip("fig3_laplacian_pooling", f"the proposed variant {prop!r} has no Laplacian pooling")
    if prop_model.cfg.prompt == "adaptive" and prop_model.cfg.temporal_pool == "gaussian":
        done(M.fig4_gaussian_pooling(prop_model, o.test, out, window_kw=o.window_kw, joint=cfg.trajectory_joint,
                                     dpi=dpi, init_state=init), "Figure 4 (Gaussian pooling)")
    else:
        skip("fig4_gaussian_pooling", f"the proposed variant {prop!r} has no Gaussian pooling")
    if suites_of("occlusion"):
        done(E.fig5_occlusion(o.metrics, out, base, dpi=dpi, all_variants=vs, floor=floor,
                              train_occlusion=params["train"].get("occlusion")), "Figure 5 (occlusion)")
    else:
        skip("fig5_occlusion", "no suite of kind occlusion was evaluated (evaluate.suites)")
    if any(s in o.metrics[v].get("suites", {}) for v in vs for s in cfg.irregular_suites):
        done(E.fig6_irregular_motion(o.metrics, out, base, cfg.irregular_suites, dpi=dpi, all_variants=vs),
             "Figure 6 (irregular motion)")
    else:
        skip("fig6_irregular_motion", f"none of the suites {list(cfg.irregular_suites)} was evaluated")
    if any(o.metrics[v].get("cross_domain") for v in vs):
        floors = {"test": floor, **cross_domain_floors(root, params, o.metrics)}
        done(E.fig7_cross_domain(o.metrics, out, base, dpi=dpi, all_variants=vs, floors=floors),
             "Figure 7 (cross-domain)")
    else:
        skip("fig7_cross_domain", "no cross-domain set in this configuration (data.cross_domain, shift_*)")
    if prop_model.cross_attn is not None and base != prop:
        done(E.fig8_attention_encoding({base: o.model(base), prop: prop_model}, o.test, out, base, prop,
                                       o.window_kw, cfg.attention_clips, cfg.attention_layer, dpi=dpi,
                                       audits=o.audits, all_variants=vs),
             "Figure 8 (attention-based encoding)")
    else:
        skip("fig8_attention_encoding", "needs a baseline and a proposed variant with cross-attention")
    done(E.fig9_velocity_refinement({v: o.model(v) for v in vs}, o.metrics, o.test, out, base, o.window_kw,
                                    cfg.attention_clips, dpi=dpi, all_variants=vs, audits=o.audits),
         "Figure 9 (velocity refinement)")
    done(E.fig10_training_curves(o.all_summaries, out, base, dpi=dpi, all_variants=vs), "Figure 10 (training curves)")
    if o.audits:
        done(E.fig12_component_audit(o.audits, out, base, dpi=dpi, all_variants=vs), "Figure 12 (component audit)")
    else:
        skip("fig12_component_audit", "no audit was run (evaluate.audit: false)")
    if base != prop:
        preds = {v: o.predictions(v) for v in (base, prop)}
        done(Q.fig11_qualitative(o.test, preds, out, base, prop, prop_model.cfg.frames, cfg.qualitative_clips,
                                 cfg.qualitative_occlusion, params["evaluate"], o.window_kw, dpi=dpi),
             "Figure 11 (qualitative)")
    else:
        skip("fig11_qualitative", "the baseline and the proposed variant are the same")

    R = T.Results(o.metrics, o.configs, {v: o.clip_errors(v) for v in vs}, base, cfg.matched_baseline)
    main = [v for v in (cfg.main or vs) if v in o.metrics]
    done(T.main_results(R, main, tab, floor)[0], "table main_results")
    done(T.ablation(R, vs, cfg.ablation, tab)[0], "table ablation")
    done(T.injection(R, o.audits, vs, cfg.injection, tab)[0], "table injection")
    if any(o.metrics[v].get("suites") for v in vs):
        done(T.robustness(R, vs, tab)[0], "table robustness")
    else:
        skip("robustness", "no robustness suite was evaluated")
    if any(o.metrics[v].get("cross_domain") for v in vs):
        done(T.cross_domain(R, vs, tab)[0], "table cross_domain")
    else:
        skip("cross_domain", "no cross-domain set in this configuration")
    if o.audits:
        audited = [v for v in vs if v in o.audits]
        done(T.audit_knockouts(R, o.audits, audited, tab)[0], "table audit")
        done(T.audit_movement(R, o.audits, [v for v in audited if o.audits[v]["summary"]["movement"]], tab)[0],
             "table audit_movement")
    measured = C.measure_variants({v: o.checkpoint(v) for v in vs}, cfg.cost_batch, cfg.cost_device,
                                  cfg.cost_repeats, threads=cfg.cost_threads, log=log)
    written.append(write_json(tab / "cost.json", measured))
    done(T.cost(measured, o.metrics, o.configs, vs, tab)[0], "table cost")
    roles = CL.Roles(base, cfg.matched_baseline, prop, cfg.claim_variant)
    claim_paths, claim_rows = CL.claims_table(
        R, o.audits, roles, tab, recipe=CL.recipe_note(params, o.summaries[base].get("steps") if base in o.summaries
                                                       else None))
    done(claim_paths, "table claims")
    written.append(write_json(root / "metrics" / "summary.json",
                              summary_metrics(R, o.audits, vs, floor, CL.verdict_counts(claim_rows))))
    written.append(write_json(out / "manifest.json", manifest))
    return written
