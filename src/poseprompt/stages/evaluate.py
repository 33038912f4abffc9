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
strengths (data/perturb.py). The key names the suite; ``kind:`` names the perturbation (default: the
key), so one kind can have several suites (``occlusion-side: {kind: occlusion, mode: side, ...}``).
Kinds: ``occlusion`` (hidden fraction of 2D joints; ``mode``: joints, limbs, parts, side or all,
``span``: frames per event), ``speed`` (temporal resampling factor), ``drop`` (frame-drop rate),
``jitter`` (timestamp noise, frames), ``noise`` (2D noise, pixels). Results are under
``suites[<name>][<strength>]``, the resolved entry of each suite (kind, options, strengths) under
``suite_specs[<name>]``. Cross-domain sets are every ``shift_*.npz`` in the data folder, under
``cross_domain[<set>]`` with the set's ``shift`` kind and ``shift_strength`` where the source grades
it (synthetic: ``shift_<kind>-<strength>``), else None.

Seeds: every variant is evaluated for every training seed (``seeds`` in params.yaml). Outputs:

* ``metrics/variants/<variant>.json``: the headline numbers as the mean over seeds (same layout as one
  seed's result), their sample standard deviation under ``std`` (None with one seed), the seeds,
  and every seed's own result under ``per_seed``;
* ``metrics/audit/<variant>.json``: the component audit of every seed (poseprompt/stages/audit.py);
* in ``reports/eval/<variant>/seed<k>/``: ``per_action.csv``, ``suites.csv``, ``cross_domain.csv``,
  ``clip_errors.npz`` (MPJPE of every test clip in every setting: the tables' paired intervals)
  and ``predictions.npz`` (float16 predictions of the test split, key ``test``, and of every
  strength of every suite of kind occlusion, key ``<suite>_<strength>`` such as ``occlusion_0.4``,
  for the qualitative figure).

Prediction is batched over windows gathered from the frame arrays (no per-window Python work).
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

from poseprompt.config.sections import ConfigError, check_keys
from poseprompt.core import metrics as M
from poseprompt.core.devices import pick_device
from poseprompt.core.io import save_npz, write_json, write_text
from poseprompt.data.augment import flip_pose
from poseprompt.data.format import PoseSequences
from poseprompt.data.perturb import OCCLUSION_MODES, PERTURBATIONS, SUITE_OPTIONS, perturb_sequences
from poseprompt.data.windows import PoseWindows
from poseprompt.model.checkpoint import load_checkpoint
from poseprompt.model.lifter import PosePromptLifter

POSE_METRICS = ("mpjpe", "p_mpjpe", "n_mpjpe", "pck150", "auc", "limb_mpjpe", "limb_p_mpjpe")
TEMPORAL_METRICS = ("mpjve", "accel")
ALL_METRICS = POSE_METRICS + TEMPORAL_METRICS
PERCENT = ("pck150", "auc")


@dataclass(frozen=True)
class Suite:
    """One entry of ``evaluate.suites``, checked and completed: its name (the key), the perturbation
    ``kind`` (``kind:``, else the key), the strengths as written (their text names the results:
    ``suites[name][str(strength)]``) and the kind's options with their defaults filled in."""
    name: str
    kind: str
    strengths: tuple
    options: Mapping[str, Any]

    def perturb_kwargs(self) -> dict[str, Any]:
        """The options as :func:`~poseprompt.data.perturb.perturb_sequences` takes them."""
        names = SUITE_OPTIONS[self.kind]
        return {names[k][0]: (tuple(v) if isinstance(v, list) else v) for k, v in self.options.items()}

    def apply(self, split: PoseSequences, strength: float, seed: int) -> PoseSequences:
        """The split perturbed exactly as the evaluation perturbs it (the qualitative figure redraws
        the occluded input with this)."""
        return perturb_sequences(split, self.kind, float(strength), seed, **self.perturb_kwargs())

    def spec(self) -> dict[str, Any]:
        """What the metrics record for the suite (``suite_specs``): kind, options, strengths."""
        return {"kind": self.kind, **{k: (list(v) if isinstance(v, tuple) else v) for k, v in self.options.items()},
                "strengths": [float(x) for x in self.strengths]}


def _suite(name: str, spec: Mapping[str, Any] | None) -> Suite:
    where = f"evaluate.suites.{name}"
    if not isinstance(spec, Mapping) or not spec.get("strengths"):
        raise ConfigError(f"{where}: expected a mapping with a non-empty list 'strengths', got {spec!r}")
    spec = dict(spec)
    kind = spec.pop("kind", name)
    if kind not in PERTURBATIONS:
        raise ConfigError(f"{where}: unknown kind {kind!r} (the key is the kind unless the entry names one "
                          f"with 'kind:'); known kinds: {sorted(PERTURBATIONS)}")
    strengths = spec.pop("strengths")
    if not isinstance(strengths, (list, tuple)) or not all(
            isinstance(x, (int, float)) and not isinstance(x, bool) for x in strengths):
        raise ConfigError(f"{where}.strengths: expected a list of numbers, got {strengths!r}")
    known = SUITE_OPTIONS[kind]
    unknown = sorted(set(spec) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown} for kind {kind!r}; known keys: "
                          f"{sorted({'kind', 'strengths', *known})}")
    options = {k: spec.get(k, default) for k, (_, default) in known.items()}
    if kind == "occlusion":
        if options["mode"] not in OCCLUSION_MODES:
            raise ConfigError(f"{where}.mode = {options['mode']!r}; expected one of {list(OCCLUSION_MODES)}")
        span = options["span"]
        if not (isinstance(span, (list, tuple)) and len(span) == 2 and all(isinstance(v, int) for v in span)
                and 1 <= span[0] <= span[1]):
            raise ConfigError(f"{where}.span = {span!r}; expected [min, max] frames, integers with 1 <= min <= max")
        options["span"] = tuple(span)
        if not all(0.0 <= x <= 1.0 for x in strengths):
            raise ConfigError(f"{where}.strengths: hidden fractions must lie in [0, 1], got {strengths!r}")
    return Suite(name, kind, tuple(strengths), options)


def resolve_suites(suites: Mapping[str, Any]) -> dict[str, Suite]:
    """Every entry of ``evaluate.suites`` as a :class:`Suite`, in the order written."""
    return {str(name): _suite(str(name), spec) for name, spec in (suites or {}).items()}


@dataclass(frozen=True)
class EvalConfig:
    batch_size: int = 64
    flip: bool = True
    suite_flip: bool = False          # flip averaging in robustness suites and cross-domain sets
    seed: int = 0
    suites: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: {
        "occlusion": {"strengths": [0.1, 0.25, 0.4], "mode": "limbs", "span": [2, 8]},
        "occlusion-side": {"kind": "occlusion", "strengths": [0.1, 0.25, 0.4], "mode": "side", "span": [2, 8]},
        "occlusion-gap": {"kind": "occlusion", "strengths": [0.1, 0.25, 0.4], "mode": "all", "span": [4, 16]},
        "speed": {"strengths": [0.5, 2.0]}, "drop": {"strengths": [0.3]}, "noise": {"strengths": [10.0]}})
    device: str = "auto"
    save_predictions: bool = True
    audit: bool = True                # run the component audit (metrics/audit/<variant>.json)
    audit_clips: int = 64             # clips per split for the audit's knock-outs (0: all)

    def __post_init__(self):
        resolve_suites(self.suites)

    def suite_list(self) -> list[Suite]:
        return list(resolve_suites(self.suites).values())

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | "EvalConfig") -> "EvalConfig":
        if isinstance(d, EvalConfig):
            return d
        check_keys("evaluate", d, cls)
        return cls(**d)


# ---- prediction -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Clips:
    """The test windows of a split: ``frame`` (W, T) split-global frame of every slot and ``mask``
    (W, T) the slots the window scores (each scored frame belongs to exactly one window)."""
    frame: np.ndarray
    mask: np.ndarray

    def means(self, per_frame: np.ndarray) -> np.ndarray:
        """Mean of a per-frame quantity (F,) over each clip's scored, finite frames: (W,)."""
        v = per_frame[self.frame]
        ok = self.mask & np.isfinite(v)
        n = ok.sum(1)
        return np.where(n > 0, np.where(ok, v, 0.0).sum(1) / np.maximum(n, 1), np.nan)


@torch.no_grad()
def predict_split(model: PosePromptLifter, split: PoseSequences, batch_size: int = 64, flip: bool = False,
                  device: str | torch.device = "cpu", window_kw: Mapping | None = None) -> tuple[np.ndarray, Clips]:
    """Predictions (F, N, 3) in metres for every frame of ``split`` (NaN where not scored: invalid
    frames of MPI-INF-3DHP) and the clips they came from. Each frame comes from exactly one window."""
    model.eval()
    ds = PoseWindows(split, model.cfg.frames, stride=model.cfg.frames, mode="test", **dict(window_kw or {}))
    out = np.full((split.num_frames, split.num_joints, 3), np.nan, dtype=np.float32)
    frames, masks = [], []
    for i in range(0, len(ds), batch_size):
        b = ds.gather(range(i, min(len(ds), i + batch_size)))
        x = b["x"].to(device)
        pred = model(x, b["texts"])
        if flip:
            pred = 0.5 * (pred + flip_pose(model(flip_pose(x, model.skeleton), b["texts"]), model.skeleton))
        pred = pred.float().cpu().numpy()
        m, f = b["eval_mask"].numpy(), b["frame"].numpy()
        out[f[m]] = pred[m]
        frames.append(f)
        masks.append(m)
    return out, Clips(np.concatenate(frames), np.concatenate(masks))


# ---- scoring ----------------------------------------------------------------------------------------

LIMB_METRICS = ("limb_mpjpe", "limb_p_mpjpe")


def per_frame_errors(pred: np.ndarray, split: PoseSequences) -> dict[str, np.ndarray]:
    """Per-frame values (F,) of every metric, in mm (PCK/AUC in %). NaN where a frame is not
    scored. Velocity and acceleration errors are assigned to the last frame of their difference
    and need valid neighbours within the same sequence.

    Joints a source does not have (``scored_joints`` False, e.g. HumanEva-I's spine, neck and head
    top, filled in as midpoints) are left out of every metric of their sequence: the metric is
    computed on the scored joints (the root always among them). The limb metrics use the 12 limb
    joints, which every source has."""
    p = torch.from_numpy(np.nan_to_num(pred).astype(np.float64)) * 1000.0
    y = torch.from_numpy(split.pose3d.astype(np.float64)) * 1000.0
    scored = torch.from_numpy(split.valid & np.isfinite(pred).all(axis=(1, 2)))
    joints = np.asarray(split.scored_joints, dtype=bool)                   # (S, N)
    seq_of_frame = np.repeat(np.arange(split.num_sequences), split.lengths())
    patterns, pattern_of_seq = np.unique(joints, axis=0, return_inverse=True)
    pattern_of_seq = pattern_of_seq.reshape(-1)
    out = {name: torch.full((split.num_frames,), torch.nan, dtype=torch.float64) for name in ALL_METRICS}
    for k, pattern in enumerate(patterns):
        idx = torch.from_numpy(np.flatnonzero(pattern | (np.arange(len(pattern)) == 0)))   # root kept first
        frames = torch.from_numpy(np.flatnonzero(pattern_of_seq[seq_of_frame] == k))
        for name in POSE_METRICS:
            fn = M.FRAME_METRICS[name][0]
            if name in LIMB_METRICS:
                v = fn(p[frames], y[frames], reduce=False)
            else:
                v = fn(p[frames][:, idx], y[frames][:, idx], reduce=False)
            out[name][frames] = v * (100.0 if name in PERCENT else 1.0)
    for name in POSE_METRICS:
        out[name] = torch.where(scored, out[name], torch.nan)
    for name, order in (("mpjve", 1), ("accel", 2)):
        v = out[name]
        for s in range(split.num_sequences):
            sl = split.frames(s)
            if sl.stop - sl.start <= order:
                continue
            idx = torch.from_numpy(np.flatnonzero(joints[s] | (np.arange(joints.shape[1]) == 0)))
            e = M.FRAME_METRICS[name][0](p[sl][:, idx], y[sl][:, idx], reduce=False)       # (L - order,)
            ok = scored[sl].clone()
            for k in range(1, order + 1):                                  # all frames involved valid
                ok[k:] &= scored[sl][:-k].clone()
            vv = torch.full((sl.stop - sl.start,), torch.nan, dtype=torch.float64)
            vv[order:] = e
            v[sl] = torch.where(ok, vv, torch.nan)
    return {k: v.numpy() for k, v in out.items()}


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


def score(model, split, cfg: EvalConfig, device, window_kw, flip: bool):
    """(overall, per-action rows, predictions, per-clip MPJPE (W,))."""
    pred, clips = predict_split(model, split, cfg.batch_size, flip, device, window_kw)
    errors = per_frame_errors(pred, split)
    overall, rows = aggregate(errors, split)
    return overall, rows, pred, clips.means(errors["mpjpe"])


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
    from poseprompt.config.params import project_root
    try:
        return str(Path(path).resolve().relative_to(project_root(Path(path).parent)))
    except (FileNotFoundError, ValueError):
        return str(path)


def evaluate_checkpoint(checkpoint: str | Path, data_dir: str | Path, cfg: EvalConfig | Mapping, *,
                        variant: str, report_dir: str | Path, metrics_path: str | Path | None = None,
                        window_kw: Mapping | None = None, seed: int | None = None, log=print) -> dict:
    """Evaluate one checkpoint; returns its result (also written to ``metrics_path`` if given)."""
    cfg = EvalConfig.from_dict(cfg)
    device = pick_device(cfg.device)
    data_dir, report_dir = Path(data_dir), Path(report_dir)
    model = load_checkpoint(checkpoint, map_location=device)
    test = PoseSequences.load(data_dir / "test.npz")
    t0 = time.time()
    result: dict[str, Any] = {
        "variant": variant, "seed": seed, "checkpoint": _shown(checkpoint), "split": "test",
        "source": test.meta.get("source"), "input_2d": test.meta.get("input_2d"),
        "action_label_given": model.cfg.uses_text and model.cfg.action_text == "label",
        "style_label_given": model.cfg.uses_text and model.cfg.person_text == "label",
        "flip_in_suites": cfg.suite_flip, "units": "mm; pck150 and auc in %",
        "parameters": model.parameter_counts(),
    }
    per_action, preds, clip_err = [], {}, {}
    for name, flip in (("test", False), ("test_flip", True)):
        if flip and not cfg.flip:
            continue
        overall, rows, pred, ce = score(model, test, cfg, device, window_kw, flip)
        result[name] = overall
        clip_err[name] = ce
        per_action += [{"setting": name, **r} for r in rows]
        if flip == cfg.flip:
            preds["test"] = pred
        log(f"{variant} seed {seed} {name}: MPJPE {overall['mpjpe']:.1f} mm, P-MPJPE {overall['p_mpjpe']:.1f} mm "
            f"over {overall['actions']} actions, {overall['frames']:,} frames")
    main = "test_flip" if cfg.flip else "test"
    result["main"] = {"setting": main, **{k: result[main][k] for k in ("mpjpe", "p_mpjpe", "mpjve")}}

    suites, suite_rows = {}, []
    for suite in cfg.suite_list():
        suites[suite.name] = {}
        for strength in suite.strengths:
            perturbed = suite.apply(test, strength, cfg.seed)
            overall, _, pred, ce = score(model, perturbed, cfg, device, window_kw, cfg.suite_flip)
            suites[suite.name][str(strength)] = overall
            clip_err[f"suite/{suite.name}/{strength}"] = ce
            suite_rows.append({"suite": suite.name, "kind": suite.kind, "strength": float(strength), **overall})
            if suite.kind == "occlusion":             # the qualitative figure redraws occluded clips
                preds[f"{suite.name}_{strength}"] = pred
            log(f"{variant} seed {seed} {suite.name} {strength}: MPJPE {overall['mpjpe']:.1f} mm")
    result["suites"] = suites
    result["suite_specs"] = {suite.name: suite.spec() for suite in cfg.suite_list()}

    cross, cross_rows = {}, []
    for path in sorted(data_dir.glob("shift_*.npz")):
        split = PoseSequences.load(path)
        overall, _, _, ce = score(model, split, cfg, device, window_kw, cfg.suite_flip)
        cross[path.stem] = {**overall, "input_2d": split.meta.get("input_2d"), "source": split.meta.get("source"),
                            "shift": split.meta.get("shift"), "shift_strength": split.meta.get("shift_strength")}
        clip_err[f"cross/{path.stem}"] = ce
        cross_rows.append({"set": path.stem, **overall})
        log(f"{variant} seed {seed} {path.stem}: MPJPE {overall['mpjpe']:.1f} mm")
    result["cross_domain"] = cross
    result["eval_seconds"] = time.time() - t0

    report_dir.mkdir(parents=True, exist_ok=True)
    write_text(report_dir / "per_action.csv", _csv(per_action))
    write_text(report_dir / "suites.csv", _csv(suite_rows))
    write_text(report_dir / "cross_domain.csv", _csv(cross_rows))
    save_npz(report_dir / "clip_errors.npz", {k: v.astype(np.float32) for k, v in clip_err.items()})
    if cfg.save_predictions:
        save_npz(report_dir / "predictions.npz", {k: v.astype(np.float16) for k, v in preds.items()})
    if metrics_path is not None:
        write_json(metrics_path, result)
    return result


# ---- seeds ------------------------------------------------------------------------------------------

def _mean_tree(trees: list):
    """The mean over seeds of every number of a result tree; other leaves from the first seed."""
    first = trees[0]
    if isinstance(first, dict):
        return {k: _mean_tree([t[k] for t in trees if isinstance(t, dict) and k in t]) for k in first}
    if isinstance(first, bool) or not isinstance(first, (int, float)):
        return first
    vals = [float(t) for t in trees if isinstance(t, (int, float)) and not isinstance(t, bool)]
    return float(np.mean(vals)) if vals else first


def _std_tree(trees: list):
    """The sample standard deviation over seeds of every number (None with one seed)."""
    first = trees[0]
    if isinstance(first, dict):
        out = {k: _std_tree([t[k] for t in trees if isinstance(t, dict) and k in t]) for k in first}
        return {k: v for k, v in out.items() if v is not None and v != {}}
    if isinstance(first, bool) or not isinstance(first, (int, float)):
        return None
    vals = [float(t) for t in trees if isinstance(t, (int, float)) and not isinstance(t, bool)]
    return float(np.std(vals, ddof=1)) if len(vals) > 1 else None


def over_seeds(results: Mapping[int, dict]) -> dict:
    """One variant's results over seeds: means in the usual layout, ``std``, ``seeds``, ``per_seed``."""
    seeds = sorted(results)
    trees = [results[s] for s in seeds]
    out = _mean_tree(trees)
    out.pop("seed", None)
    out["seeds"] = seeds
    out["n_seeds"] = len(seeds)
    out["std"] = _std_tree(trees) if len(seeds) > 1 else {}
    out["per_seed"] = {str(s): results[s] for s in seeds}
    return out


def _save_deltas(path: Path, deltas: Mapping[str, Mapping[str, np.ndarray]]) -> None:
    """The audit's per-clip knock-out effects of one seed (``<label>/<split>`` -> clips): the record of a
    study keeps them, so that seeds run later pool with these into intervals over seeds x clips."""
    arrays = {f"{label}/{split}": np.asarray(d, np.float32) for label, per in deltas.items() for split, d in per.items()}
    save_npz(path, arrays, compress=False)


def load_deltas(path: Path) -> dict[str, dict[str, np.ndarray]]:
    """What :func:`_save_deltas` wrote (an empty dict when ``path`` does not exist)."""
    out: dict[str, dict[str, np.ndarray]] = {}
    if Path(path).is_file():
        with np.load(path) as z:
            for key in z.files:
                label, split = key.rsplit("/", 1)
                out.setdefault(label, {})[split] = z[key].astype(np.float64)
    return out


def run_variant(params: Mapping, variant: str, root: str | Path = ".", log=print) -> dict:
    """Evaluate (and audit) the trained ``variant`` for every seed; paths relative to ``root``."""
    from poseprompt.config.params import seeds_of
    from poseprompt.core.paths import seed_dir
    from poseprompt.data.windows import window_kwargs
    root = Path(root)
    cfg = EvalConfig.from_dict(params["evaluate"])
    data_dir = root / params["data"]["out_dir"]
    kw = window_kwargs(params["data"])
    results, audits = {}, {}
    for seed in seeds_of(params):
        ckpt = seed_dir(root, variant, seed) / "model.pt"
        results[seed] = evaluate_checkpoint(ckpt, data_dir, cfg, variant=variant, seed=seed,
                                            report_dir=seed_dir(root, variant, seed, "reports/eval"),
                                            window_kw=kw, log=log)
        if cfg.audit:
            from poseprompt.stages.audit import audit_checkpoint
            t0 = time.time()
            audits[seed] = audit_checkpoint(ckpt, data_dir, window_kw=kw, clips=cfg.audit_clips, seed=cfg.seed,
                                            batch_size=cfg.batch_size, device=pick_device(cfg.device))
            audits[seed]["checkpoint"] = _shown(ckpt)
            _save_deltas(seed_dir(root, variant, seed, "reports/eval") / "audit_deltas.npz",
                         audits[seed]["knockout"].get("_deltas", {}))
            log(f"{variant} seed {seed}: audit in {time.time() - t0:.0f} s")
    summary = over_seeds(results)
    write_json(root / "metrics" / "variants" / f"{variant}.json", summary)
    if cfg.audit:
        from poseprompt.stages.audit import over_seeds as audit_over_seeds
        write_json(root / "metrics" / "audit" / f"{variant}.json", audit_over_seeds(variant, audits))
    return summary


def main(argv=None):
    from poseprompt.config.params import stage_command
    run_variant(*stage_command("evaluate (and audit) one trained variant of params.yaml, every seed", argv))


if __name__ == "__main__":
    main()
