"""Evaluation on the test split and the robustness suites (driven by notebooks/03_evaluate.ipynb).

Protocol, as the field reports it:

* every test frame is predicted exactly once (non-overlapping windows, the remainder by a window
  aligned to the sequence end: data/windows.py), then stitched back into whole sequences;
* per-frame errors in millimetres; within an action frame-weighted, then the unweighted mean over
  actions (Human3.6M's protocol: per action, then the mean of the action means);
* MPJPE, P-MPJPE, N-MPJPE, velocity error (MPJVE), acceleration error, PCK@150 mm and AUC (%),
  and MPJPE / P-MPJPE on the 12 limb joints centred at the mid-hip;
* without and with test-time flip averaging; the robustness suites and cross-domain sets with
  flip averaging when ``evaluate.suite_flip`` is on (the default configuration turns it off to
  halve their CPU time; the paper configuration turns it on);
* which 2D input, which split, which checkpoint, and whether the ground-truth action label was
  given to the model are written next to the numbers.

Robustness suites (``evaluate.suites``), each a perturbation of the test split at several
strengths (data/perturb.py): ``occlusion`` (hidden fraction of 2D joints), ``speed`` (temporal
resampling factor), ``drop`` (frame-drop rate), ``jitter`` (timestamp noise, frames), ``noise``
(2D noise, pixels). Cross-domain sets are every ``shift_*.npz`` in the data folder.

Outputs: ``metrics/<variant>.json`` (DVC metrics) and, in ``reports/eval/<variant>/``,
``per_action.csv``, ``suites.csv``, ``cross_domain.csv`` and ``predictions.npz`` (float16
predictions of the test split and of each occlusion strength, for the qualitative figure).
"""
from __future__ import annotations

import csv
import io
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from . import metrics as M
from .augment import flip_pose
from .checkpoint import load_checkpoint
from .config import ConfigError, check_keys
from .data.format import PoseSequences
from .data.perturb import PERTURBATIONS, perturb_sequences
from .data.windows import PoseWindows
from .io import atomic_path, write_json, write_text
from .model import PosePromptLifter

POSE_METRICS = ("mpjpe", "p_mpjpe", "n_mpjpe", "pck150", "auc", "limb_mpjpe", "limb_p_mpjpe")
TEMPORAL_METRICS = ("mpjve", "accel")
ALL_METRICS = POSE_METRICS + TEMPORAL_METRICS
PERCENT = ("pck150", "auc")


@dataclass(frozen=True)
class EvalConfig:
    batch_size: int = 64
    flip: bool = True
    suite_flip: bool = True           # flip averaging in robustness suites and cross-domain sets
    seed: int = 0
    suites: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    device: str = "auto"
    save_predictions: bool = True

    def __post_init__(self):
        for name, spec in self.suites.items():
            if name not in PERTURBATIONS:
                raise ConfigError(f"evaluate.suites.{name}: unknown suite; known: {sorted(PERTURBATIONS)}")
            if not spec or not spec.get("strengths"):
                raise ConfigError(f"evaluate.suites.{name}: expected a list 'strengths'")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | "EvalConfig") -> "EvalConfig":
        if isinstance(d, EvalConfig):
            return d
        check_keys("evaluate", d, cls)
        return cls(**d)


# ---- prediction -------------------------------------------------------------------------------------

@torch.no_grad()
def predict_split(model: PosePromptLifter, split: PoseSequences, batch_size: int = 64, flip: bool = False,
                  device: str | torch.device = "cpu", window_kw: Mapping | None = None) -> np.ndarray:
    """Predictions (F, N, 3) in metres for every frame of ``split`` (NaN where not scored: invalid
    frames of MPI-INF-3DHP). Each frame comes from exactly one window."""
    model.eval()
    ds = PoseWindows(split, model.cfg.frames, stride=model.cfg.frames, mode="test", **dict(window_kw or {}))
    out = np.full((split.num_frames, split.num_joints, 3), np.nan, dtype=np.float32)
    n = len(ds)
    for i in range(0, n, batch_size):
        items = [ds[j] for j in range(i, min(n, i + batch_size))]
        x = torch.stack([it["x"] for it in items]).to(device)
        texts = {k: [it["texts"][k] for it in items] for k in items[0]["texts"]}
        pred = model(x, texts)
        if flip:
            pred = 0.5 * (pred + flip_pose(model(flip_pose(x, model.skeleton), texts), model.skeleton))
        pred = pred.float().cpu().numpy()
        for it, p in zip(items, pred):
            m = it["eval_mask"].numpy()
            out[it["frame"].numpy()[m]] = p[m]
    return out


# ---- scoring ----------------------------------------------------------------------------------------

def per_frame_errors(pred: np.ndarray, split: PoseSequences) -> dict[str, np.ndarray]:
    """Per-frame values (F,) of every metric, in mm (PCK/AUC in %). NaN where a frame is not
    scored. Velocity and acceleration errors are assigned to the last frame of their difference
    and need valid neighbours within the same sequence."""
    p = torch.from_numpy(np.nan_to_num(pred).astype(np.float64)) * 1000.0
    y = torch.from_numpy(split.pose3d.astype(np.float64)) * 1000.0
    scored = torch.from_numpy(split.valid & np.isfinite(pred).all(axis=(1, 2)))
    out = {}
    for name in POSE_METRICS:
        fn = M.FRAME_METRICS[name][0]
        v = fn(p, y, reduce=False) * (100.0 if name in PERCENT else 1.0)
        out[name] = torch.where(scored, v, torch.nan).numpy()
    for name, order in (("mpjve", 1), ("accel", 2)):
        v = torch.full((split.num_frames,), torch.nan, dtype=torch.float64)
        for s in range(split.num_sequences):
            sl = split.frames(s)
            if sl.stop - sl.start <= order:
                continue
            e = M.FRAME_METRICS[name][0](p[sl], y[sl], reduce=False)       # (L - order,)
            ok = scored[sl].clone()
            for k in range(1, order + 1):                                  # all frames involved valid
                ok[k:] &= scored[sl][:-k].clone()
            vv = torch.full((sl.stop - sl.start,), torch.nan, dtype=torch.float64)
            vv[order:] = e
            v[sl] = torch.where(ok, vv, torch.nan)
        out[name] = v.numpy()
    return out


def frame_actions(split: PoseSequences) -> np.ndarray:
    return np.repeat(split.action, split.lengths())


def aggregate(errors: Mapping[str, np.ndarray], split: PoseSequences) -> tuple[dict[str, float], list[dict]]:
    """(overall, per-action rows): frame-weighted within an action, then the mean over actions."""
    acts = frame_actions(split)
    rows = []
    for a in sorted(set(acts.tolist())):
        sel = acts == a
        row = {"action": a, "frames": int(np.isfinite(errors["mpjpe"][sel]).sum())}
        for k, v in errors.items():
            vals = v[sel]
            vals = vals[np.isfinite(vals)]
            row[k] = float(vals.mean()) if len(vals) else float("nan")
        rows.append(row)
    rows = [r for r in rows if r["frames"] > 0]
    overall = {k: float(np.nanmean([r[k] for r in rows])) if rows else float("nan") for k in errors}
    overall["frames"] = int(sum(r["frames"] for r in rows))
    overall["actions"] = len(rows)
    return overall, rows


def score(model, split, cfg: EvalConfig, device, window_kw, flip: bool) -> tuple[dict, list[dict], np.ndarray]:
    pred = predict_split(model, split, cfg.batch_size, flip, device, window_kw)
    overall, rows = aggregate(per_frame_errors(pred, split), split)
    return overall, rows, pred


# ---- the whole evaluation of one checkpoint ---------------------------------------------------------

def _csv(rows: list[dict]) -> str:
    if not rows:
        return ""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in r.items()})
    return buf.getvalue()


def csv_markdown(path: str | Path, columns: list[str] | None = None, digits: int = 1) -> str:
    """A CSV table of this module as Markdown, numbers rounded (for the notebooks)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return "_(empty)_"
    cols = columns or list(rows[0])

    def fmt(v: str) -> str:
        try:
            x = float(v)
        except ValueError:
            return v
        return str(int(x)) if x.is_integer() and "." not in v else f"{x:.{digits}f}"
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def _shown(path: str | Path) -> str:
    """``path`` relative to the project folder when inside one (metrics files are committed and
    must not carry the paths of the machine that wrote them), else as given."""
    from .params import project_root
    try:
        return str(Path(path).resolve().relative_to(project_root(Path(path).parent)))
    except (FileNotFoundError, ValueError):
        return str(path)


def evaluate_checkpoint(checkpoint: str | Path, data_dir: str | Path, cfg: EvalConfig | Mapping, *,
                        variant: str, metrics_path: str | Path, report_dir: str | Path,
                        window_kw: Mapping | None = None, log=print) -> dict:
    cfg = EvalConfig.from_dict(cfg)
    device = torch.device("cuda" if (cfg.device == "auto" and torch.cuda.is_available()) else
                          ("cpu" if cfg.device == "auto" else cfg.device))
    data_dir, report_dir = Path(data_dir), Path(report_dir)
    model = load_checkpoint(checkpoint, map_location=device)
    test = PoseSequences.load(data_dir / "test.npz")
    t0 = time.time()
    result: dict[str, Any] = {
        "variant": variant, "checkpoint": _shown(checkpoint), "split": "test",
        "source": test.meta.get("source"), "input_2d": test.meta.get("input_2d"),
        "action_label_given": model.cfg.uses_text and model.cfg.action_text == "label",
        "style_label_given": model.cfg.uses_text and model.cfg.person_text == "label",
        "flip_in_suites": cfg.suite_flip, "units": "mm; pck150 and auc in %",
        "parameters": model.parameter_counts(),
    }
    per_action, preds = [], {}
    for name, flip in (("test", False), ("test_flip", True)):
        if flip and not cfg.flip:
            continue
        overall, rows, pred = score(model, test, cfg, device, window_kw, flip)
        result[name] = overall
        per_action += [{"setting": name, **r} for r in rows]
        if flip == cfg.flip:
            preds["test"] = pred
        log(f"{variant} {name}: MPJPE {overall['mpjpe']:.1f} mm, P-MPJPE {overall['p_mpjpe']:.1f} mm "
            f"over {overall['actions']} actions, {overall['frames']:,} frames")
    main = "test_flip" if cfg.flip else "test"
    result["main"] = {"setting": main, **{k: result[main][k] for k in ("mpjpe", "p_mpjpe", "mpjve")}}

    suites, suite_rows = {}, []
    for kind, spec in cfg.suites.items():
        spec = dict(spec)
        strengths = spec.pop("strengths")
        options = {f"occlusion_{k}" if kind == "occlusion" and not k.startswith("occlusion_") else k: v
                   for k, v in spec.items()}
        suites[kind] = {}
        for strength in strengths:
            perturbed = perturb_sequences(test, kind, float(strength), cfg.seed, **options)
            overall, _, pred = score(model, perturbed, cfg, device, window_kw, cfg.suite_flip)
            suites[kind][str(strength)] = overall
            suite_rows.append({"suite": kind, "strength": float(strength), **overall})
            if kind == "occlusion":
                preds[f"occlusion_{strength}"] = pred
            log(f"{variant} {kind} {strength}: MPJPE {overall['mpjpe']:.1f} mm")
    result["suites"] = suites

    cross, cross_rows = {}, []
    for path in sorted(data_dir.glob("shift_*.npz")):
        split = PoseSequences.load(path)
        overall, _, _ = score(model, split, cfg, device, window_kw, cfg.suite_flip)
        cross[path.stem] = {**overall, "input_2d": split.meta.get("input_2d"), "source": split.meta.get("source")}
        cross_rows.append({"set": path.stem, **overall})
        log(f"{variant} {path.stem}: MPJPE {overall['mpjpe']:.1f} mm")
    result["cross_domain"] = cross
    result["eval_seconds"] = time.time() - t0

    report_dir.mkdir(parents=True, exist_ok=True)
    write_text(report_dir / "per_action.csv", _csv(per_action))
    write_text(report_dir / "suites.csv", _csv(suite_rows))
    write_text(report_dir / "cross_domain.csv", _csv(cross_rows))
    if cfg.save_predictions:
        with atomic_path(report_dir / "predictions.npz") as tmp:
            np.savez_compressed(tmp, **{k: v.astype(np.float16) for k, v in preds.items()})
    write_json(metrics_path, result)
    return result


def run_variant(params: Mapping, variant: str, root: str | Path = ".", log=print) -> dict:
    """Evaluate the trained ``variant`` with the sections of params.yaml; paths relative to ``root``."""
    from .train import window_kwargs
    root = Path(root)
    return evaluate_checkpoint(root / "models" / variant / "model.pt", root / params["data"]["out_dir"],
                               params["evaluate"], variant=variant, metrics_path=root / "metrics" / f"{variant}.json",
                               report_dir=root / "reports" / "eval" / variant,
                               window_kw=window_kwargs(params["data"]), log=log)
