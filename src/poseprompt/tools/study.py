"""The equal-budget study on real motion capture: ``make study-bandai`` (``python -m poseprompt.tools.study``).

Bandai Namco Research Motion dataset 1 (BVH, real optical motion capture; see
``../shared/data/bandai-1/README.md``) through the ``bvh`` source, seen by virtual Human3.6M-like
cameras with the detector model: the ``study-bandai`` preset trains ``gatfun``, ``gatfun-wide``,
``full-generic-action``, ``context-direct``, ``full``, ``static`` and ``full-layer1`` (in that order of
priority) with 3 seeds each and the same number of steps for all, and tests on the held-out styles (angry, childish, old). It prints per variant the mean and
standard deviation of the test MPJPE, the paired difference to ``gatfun`` and to the
capacity-matched ``gatfun-wide`` (when the preset trains it; ``figures.matched_baseline``) with
their 95 % intervals (seeds x clips) and each variant's component audit, and writes
``<out>/study.json`` and the tables (``<out>/tables/*.md|tex``: main results, robustness to the
occlusion suites, the component audit, and the claims with their verdicts, also as
``claims.json``). It runs in a folder of its own (``reports/study-bandai`` by
default), never in the default pipeline (a user's machine has no ``../shared``). The tables and the
record are rewritten after every variant, so a study cut short leaves what finished, marked
``INCOMPLETE`` (``study.json``: ``complete``, ``pending``).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import yaml


def study_params(folder: str | Path, out: Path, seeds=None, epochs: int | None = None,
                 overrides: dict | None = None) -> dict:
    from poseprompt.config.presets import preset_overrides, preset_params
    from poseprompt.config.sections import merge
    overrides = dict(overrides or {})
    variants = overrides.pop("variants", None)                 # a list of variants replaces, not merges
    p = merge(preset_params("study-bandai"), overrides)
    # the preset lists its variants by priority (the record is rewritten after each): keep its order,
    # not the default's that the merge inherits
    order = list(preset_overrides("study-bandai").get("variants") or {})
    p["variants"] = {v: p["variants"][v] for v in order + [v for v in p["variants"] if v not in order]}
    if variants is not None:
        p["variants"] = dict(variants)
    p["data"]["bvh"]["folder"] = str(Path(folder).resolve())
    p["data"]["out_dir"] = "data/processed"
    if seeds is not None:
        p["seeds"] = list(seeds)
    if epochs is not None:
        p["train"]["epochs"] = int(epochs)
    return p


def _filled(params: dict) -> dict:
    """``params`` with the typed sections (train, model) written out with every default filled, so
    that a record made before a key existed compares equal when this run leaves the key at its default."""
    from dataclasses import asdict

    from poseprompt.config.sections import ModelConfig, TrainConfig
    out = dict(params)
    for key, cls in (("train", TrainConfig), ("model", ModelConfig)):
        if isinstance(out.get(key), dict):
            out[key] = asdict(cls.from_dict(out[key]))
    return out


class Pool:
    """The seeds of an earlier record of the same study (``--pool``), pooled with this run's.

    The record's ``runs/`` folder holds every variant's metrics and audit with their per-seed
    results, and per seed the training summary, the per-clip errors and (records made since the
    audit kept them) the audit's per-clip knock-out effects. Building it checks that the record
    ran the same study (every section of its ``params.yaml`` equal to this run's but ``seeds`` and
    ``figures``, which only chooses what the tables show) on
    other seeds, and copies the per-seed files into ``out``; :meth:`merge` then rewrites a variant's
    ``metrics/variants`` and ``metrics/audit`` files over the seeds of both runs. Everything is read
    before this run's first record replaces the old one."""

    def __init__(self, record: str | Path, out: Path, params: dict):
        record = Path(record)
        runs = record / "runs"
        if not (record / "params.yaml").is_file() or not runs.is_dir():
            raise FileNotFoundError(f"study --pool: {record} holds no study record (params.yaml and runs/ "
                                    "expected; make study-bandai writes one into metrics/study-bandai)")
        earlier = yaml.safe_load((record / "params.yaml").read_text())
        # every section that makes a number must match; figures only chooses what the tables show;
        # a key the code gained after the record, at its default, is the same study
        a, b = _filled(earlier), _filled(params)
        diff = sorted(k for k in set(a) | set(b) if k not in ("seeds", "figures") and a.get(k) != b.get(k))
        if diff:
            raise ValueError(f"study --pool: {record / 'params.yaml'} differs from this study in "
                             f"{', '.join(diff)}; pool only seeds of the same study (same folder, --epochs, preset)")
        self.seeds = [int(x) for x in earlier["seeds"]]
        both = sorted(set(self.seeds) & set(params["seeds"]))
        if both:
            raise ValueError(f"study --pool: seeds {both} are in {record} already; run other --seeds")
        self.record = str(record)
        self.metrics, self.audits = {}, {}
        for v in params["variants"]:
            mv, av = runs / "metrics" / "variants" / f"{v}.json", runs / "metrics" / "audit" / f"{v}.json"
            if not mv.is_file():
                raise FileNotFoundError(f"study --pool: {mv} missing (the earlier run did not finish {v})")
            self.metrics[v] = json.loads(mv.read_text())
            self.audits[v] = json.loads(av.read_text()) if av.is_file() else None
        import shutil

        from poseprompt.core.paths import seed_dir
        for v in params["variants"]:
            for seed in self.seeds:
                src = runs / v / f"seed{seed}"
                for name, where in (("train_summary.json", "models"), ("clip_errors.npz", "reports/eval"),
                                    ("audit_deltas.npz", "reports/eval")):
                    if (src / name).is_file():
                        dest = seed_dir(out, v, seed, where) / name
                        dest.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copyfile(src / name, dest)
                    elif name != "audit_deltas.npz":
                        raise FileNotFoundError(f"study --pool: {src / name} missing")

    def merge(self, out: Path, v: str) -> None:
        from poseprompt.core.io import write_json
        from poseprompt.core.paths import seed_dir
        from poseprompt.stages import evaluate
        from poseprompt.stages.audit import over_seeds as audit_over_seeds
        mpath = out / "metrics" / "variants" / f"{v}.json"
        new = json.loads(mpath.read_text())
        per = {int(s): r for s, r in self.metrics[v]["per_seed"].items()}
        per.update({int(s): r for s, r in new["per_seed"].items()})
        write_json(mpath, evaluate.over_seeds(per))
        apath = out / "metrics" / "audit" / f"{v}.json"
        if self.audits[v] is not None and apath.is_file():
            seeds = {int(s): a for s, a in self.audits[v]["per_seed"].items()}
            seeds.update({int(s): a for s, a in json.loads(apath.read_text())["per_seed"].items()})
            audits = {}
            for s, a in seeds.items():
                deltas = evaluate.load_deltas(seed_dir(out, v, s, "reports/eval") / "audit_deltas.npz")
                audits[s] = {**a, "knockout": {**a["knockout"], **({"_deltas": deltas} if deltas else {})}}
            write_json(apath, audit_over_seeds(v, audits))


def run(folder: str | Path, out: str | Path = "reports/study-bandai", seeds=None, epochs: int | None = None,
        log=print, overrides: dict | None = None, record: str | Path | None = None,
        train_models: bool = True, pool: str | Path | None = None) -> dict[str, Any]:
    """The whole study; ``overrides`` (params sections) shrink it for a test. ``record``: a folder
    that receives a copy of the results (``study.md``, ``study.json``, ``params.yaml``, the tables),
    without the models: ``make study-bandai`` records into ``metrics/study-bandai/``, which git
    tracks, so that the README's study table can be checked against the run that made it.
    ``train_models=False`` (``--evaluate-only``) evaluates and audits the models already in ``out``
    again (after a change of the evaluation or the audit), training nothing."""
    from poseprompt.stages import evaluate, train
    from poseprompt.stages.prepare import prepare

    out = Path(out).resolve()
    params = study_params(folder, out, seeds, epochs, overrides)
    if not train_models:
        from poseprompt.config.params import seeds_of
        from poseprompt.core.paths import seed_dir
        missing = [str(seed_dir(out, v, s) / "model.pt") for v in params["variants"] for s in seeds_of(params)
                   if not (seed_dir(out, v, s) / "model.pt").is_file()]
        if missing:
            raise FileNotFoundError(f"study --evaluate-only: no trained model at {', '.join(missing[:3])}"
                                    f"{' and %d more' % (len(missing) - 3) if len(missing) > 3 else ''}; "
                                    f"run the study with the same --seeds and --epochs without --evaluate-only first")
        trained_with = yaml.safe_load((out / "params.yaml").read_text()) if (out / "params.yaml").is_file() else None
        if trained_with is not None and \
                (trained_with.get("train"), trained_with.get("model"), trained_with.get("data")) != \
                (params["train"], params["model"], params["data"]):
            raise ValueError(f"study --evaluate-only: {out / 'params.yaml'} (the run that trained the models) differs "
                             "from this study's train, model or data section; pass the same --epochs, --seeds and "
                             "folder")
    out.mkdir(parents=True, exist_ok=True)
    pooled = Pool(pool, out, params) if pool is not None else None
    # a pooled study's params.yaml lists every seed of its tables (a later --pool reads it)
    (out / "params.yaml").write_text(yaml.safe_dump(
        params if pooled is None else {**params, "seeds": sorted(pooled.seeds + list(params["seeds"]))},
        sort_keys=False))
    (out / "dvc.yaml").write_text("stages: {}\n")            # marks the folder as a project root
    t0 = time.time()
    summary = prepare(params["data"], out / params["data"]["out_dir"], params["seed"])
    log(f"study: data prepared in {time.time() - t0:.0f} s")
    times: dict[str, float] = {}
    result: dict[str, Any] = {}
    variants = list(params["variants"])
    for v in variants:
        t1 = time.time()
        if train_models:
            train.run_variant(params, v, out)
        evaluate.run_variant(params, v, out, log=lambda *a: None)
        if pooled is not None:
            pooled.merge(out, v)
        times[v] = time.time() - t1
        log(f"study: {v} ({len(params['seeds'])} seeds) {'trained and ' if train_models else ''}evaluated in {times[v]:.0f} s")
        # the record is rewritten after every variant (the preset lists them by priority): a study cut
        # short still leaves its finished variants' tables, marked incomplete
        if "gatfun" in times:
            if not result and record is not None and Path(record).is_dir():
                # this run's first record replaces the old one whole: no table of the old run survives
                import shutil
                shutil.rmtree(Path(record) / "runs", ignore_errors=True)
                for f in Path(record).rglob("*"):
                    if f.is_file() and (f.suffix in (".md", ".tex") or f.name in ("study.json", "claims.json")):
                        f.unlink()
            shown = params if pooled is None else {**params, "seeds": sorted(pooled.seeds + list(params["seeds"]))}
            result = summarise(out, shown, list(times), folder, summary, times, t0, record,
                               log if len(times) == len(variants) else (lambda *a: None),
                               pooled={"record": pooled.record, "seeds": pooled.seeds,
                                       "seeds_run": list(params["seeds"])} if pooled is not None else None)
    return result


def summarise(out: Path, params: dict, done: list[str], folder, data_summary: dict, times: dict, t0: float,
              record: Path | str | None, log=print, pooled: dict | None = None) -> dict[str, Any]:
    """Tables, ``study.md`` and ``study.json`` of the variants ``done`` (the baseline gatfun among them);
    ``complete`` says whether every variant of the study is in, ``pending`` lists the rest."""
    from poseprompt.plots import claims as CL
    from poseprompt.plots.figures import Outputs
    pending = [v for v in params["variants"] if v not in done]
    part = {**params, "variants": {v: params["variants"][v] for v in params["variants"] if v in done}}
    o = Outputs(out, part)
    tab = out / "tables"
    R, claim_rows, floor = write_tables(o, part, tab)
    matched = R.matched
    result: dict[str, Any] = {"complete": not pending, "pending": pending,
                              "floor_mpjpe": floor, "seeds": params["seeds"], "epochs": params["train"]["epochs"],
                              "steps": {v: o.summaries[v]["steps"] for v in o.variants}, "seconds": dict(times),
                              "data": data_summary, "matched_baseline": matched,
                              "claims": CL.verdict_counts(claim_rows), "variants": {}}
    if pooled is not None:
        # seconds and the timing are this run's (seeds_run); the results pool both runs' seeds
        result["pooled"] = pooled
    lines = [f"study on {folder}: test = held-out styles {params['data']['bvh']['test_values']}; "
             f"{len(params['seeds'])} seeds; {result['steps']['gatfun']} steps each; mean-pose floor {floor:.1f} mm"]
    if pooled is not None:
        lines.append(f"seeds {pooled['seeds']} from the record {pooled['record']}, pooled with seeds "
                     f"{pooled['seeds_run']} of this run (same study and budget)")
    if pending:
        lines.append(f"INCOMPLETE: {len(done)} of {len(params['variants'])} variants finished; not yet run: "
                     f"{', '.join(pending)}")
    lines.append(f"{'variant':22} {'MPJPE mm':>16} {'Δ vs gatfun [95 % CI]':>28}" +
                 (f" {f'Δ vs {matched} [95 % CI]':>30}" if matched else "") + "  audit")

    def text(iv):
        return f"{iv.mean:+.1f} [{iv.lo:+.1f}, {iv.hi:+.1f}]{' *' if iv.significant else ''}" if iv else "–"
    for v in o.variants:
        m = o.metrics[v]
        main = m["main"]["setting"]
        sd = (m.get("std") or {}).get(main, {}).get("mpjpe")
        iv = R.interval(v, main)
        ivm = R.interval(v, main, matched) if matched else None
        a = o.audits[v]["summary"]
        entry = {"mpjpe": m[main]["mpjpe"], "mpjpe_sd": sd, "interval": iv.as_dict() if iv else None,
                 "seed_mpjpe": [m["per_seed"][str(s)][main]["mpjpe"] for s in m["seeds"]],
                 "audit": a}
        if matched:
            entry["interval_matched"] = ivm.as_dict() if ivm else None
        result["variants"][v] = entry
        ko = {k: e["test"]["interval"]["mean"] for k, e in a["knockout"].items() if e["test"].get("interval")}
        top = ", ".join(f"{k} {x:+.1f}" for k, x in sorted(ko.items(), key=lambda kv: -abs(kv[1]))[:4])
        lines.append(f"{v:22} {m[main]['mpjpe']:>9.1f} ± {sd or 0:4.1f} {text(iv):>28}" +
                     (f" {text(ivm):>30}" if matched else "") + f"  knock-outs: {top}")
    counts = result["claims"]
    lines.append("claims: " + ", ".join(f"{n} {k}" for k, n in counts.items()) + " (tables/claims.md)")
    from poseprompt.core.io import write_json, write_text
    result["seconds_total"] = time.time() - t0
    write_json(out / "study.json", result)
    shown = ["main_results", "robustness", "claims", "audit", "audit_movement"]
    write_text(out / "study.md", "\n".join(lines) + "\n\n" +
               "\n".join((tab / f"{t}.md").read_text() for t in shown if (tab / f"{t}.md").is_file()))
    if record is not None:
        _record(out, Path(record), list(done))
    for ln in lines:
        log(ln)
    log(f"study: {result['seconds_total']:.0f} s in all; tables in {tab}" +
        (f"; results recorded in {record}" if record is not None else ""))
    return result


def write_tables(o, params: dict, tab: Path):
    """The study's tables into ``tab``: main results, robustness (when a suite was evaluated), the
    component audit and the claims (``claims.md|tex|json``). Baseline gatfun; the capacity-matched
    baseline ``figures.matched_baseline`` (gatfun-wide) when the study trained it. Returns the
    :class:`~poseprompt.plots.tables.Results`, the claims' rows and the mean-pose floor."""
    from poseprompt.plots import claims as CL, tables as T
    from poseprompt.plots.figures import FigureConfig, mean_pose_floor
    fig = FigureConfig.from_dict(params.get("figures"))
    matched = fig.matched_baseline if fig.matched_baseline in o.variants else None
    R = T.Results(o.metrics, o.configs, {v: o.clip_errors(v) for v in o.variants}, "gatfun", matched)
    floor = mean_pose_floor(o.root, params, o.test)
    T.main_results(R, o.variants, tab, floor)
    if any(o.metrics[v].get("suites") for v in o.variants):
        T.robustness(R, o.variants, tab)
    T.audit_knockouts(R, o.audits, o.variants, tab)
    T.audit_movement(R, o.audits, [v for v in o.variants if o.audits[v]["summary"]["movement"]], tab)
    _, rows = CL.claims_table(R, o.audits, CL.Roles("gatfun", matched, fig.proposed, fig.claim_variant), tab,
                              recipe=CL.recipe_note(params, o.summaries["gatfun"].get("steps")))
    return R, rows, floor


def _record(out: Path, dest: Path, variants: list[str] | None = None) -> None:
    """Copy the study's results (no models) from ``out`` to ``dest``, each file written atomically:
    the study's summary, its params, every table (``.md``, ``.tex``) and the claims (``claims.json``),
    and under ``runs/`` what a later run needs to pool more seeds with these: every variant's metrics
    and audit (``metrics/``), and per seed the training summary and the per-clip errors
    (``<variant>/seed<k>/``; about 50 kB a seed, the predictions are left out)."""
    import shutil

    from poseprompt.core.io import write_atomic, write_text
    files = ["study.md", "study.json", "params.yaml"] + sorted(
        f"tables/{f.name}" for f in (out / "tables").iterdir()
        if f.suffix in (".md", ".tex") or f.name == "claims.json")
    for f in files:
        write_text(dest / f, (out / f).read_text())
    keep = (lambda v: True) if variants is None else (lambda v: v in variants)
    raw = [(f, Path("runs") / f.relative_to(out)) for f in sorted((out / "metrics").rglob("*.json")) if keep(f.stem)]
    raw += [(f, Path("runs") / f.parent.parent.name / f.parent.name / f.name)
            for pattern in ("models/*/seed*/train_summary.json", "reports/eval/*/seed*/clip_errors.npz",
                            "reports/eval/*/seed*/audit_deltas.npz")
            for f in sorted(out.glob(pattern)) if keep(f.parent.parent.name)]
    for src, rel in raw:
        write_atomic(dest / rel, lambda tmp, src=src: shutil.copyfile(src, tmp))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--folder", required=True, help="folder of the Bandai Namco BVH files")
    ap.add_argument("--out", default="reports/study-bandai")
    ap.add_argument("--seeds", help="comma-separated training seeds (default: the preset's)")
    ap.add_argument("--epochs", type=int, help="training epochs (default: the preset's)")
    ap.add_argument("--evaluate-only", action="store_true",
                    help="evaluate and audit the models already trained in --out again, training nothing")
    ap.add_argument("--pool", help="record of an earlier run of the same study on other seeds (a folder "
                                   "with params.yaml and runs/, e.g. metrics/study-bandai): its seeds are "
                                   "pooled with this run's in every table")
    ap.add_argument("--record", help="folder that receives a copy of the results without the models "
                                     "(make study-bandai: metrics/study-bandai)")
    args = ap.parse_args(argv)
    import logging
    logging.basicConfig(level=logging.WARNING)
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else None
    res = run(args.folder, args.out, seeds, args.epochs, record=args.record,
              train_models=not args.evaluate_only, pool=args.pool)
    print(json.dumps({v: {k: e[k] for k in ("mpjpe", "mpjpe_sd")} for v, e in res["variants"].items()}, indent=1))


if __name__ == "__main__":
    main()
