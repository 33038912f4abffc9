"""What a configuration will cost, before anything long starts: ``make plan`` (``python -m poseprompt.tools.plan``).

From params.yaml, the prepared data on disk (``data/processed/{train,val,test}.npz``; run ``dvc repro
prepare`` first, it takes seconds to minutes) and one measured training step of the most expensive
variant on this machine, it prints per variant: training windows, steps per epoch and in all, the
estimated hours of one run (one seed) with validation, and the evaluation's forward passes; then
the whole pipeline (variants x seeds; on a CPU the seeds side by side, as ``train.seed_procs``
trains them, with the step measured at each process's share of the threads) on this machine with 1
and with ``--gpus N`` devices
(``make paper-parallel`` runs one variant per GPU), and the memory one training step needs.

The step time can be given instead of measured (``--step-s``: e.g. the figure of ``make
gpu-smoke`` on the target GPU) to plan for another machine. Nothing is written.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any, Mapping

import torch


def _variant_cost_order(params: Mapping) -> str:
    """The most expensive variant: adaptive prompts injected into both streams, if any."""
    from poseprompt.config.params import variant_config
    best, score = None, -1
    for v in params["variants"]:
        c = variant_config(params, v)
        s = {"none": 0, "direct": 1, "static": 1, "adaptive": 2}[c.prompt] * 10 + (2 if c.inject == "both" else 1)
        if s > score:
            best, score = v, s
    return best


#: steps timed after the warm-up steps
WARMUP_STEPS, TIMED_STEPS = 3, 12


def time_training_steps(params: Mapping, variant: str, data_dir: Path, device, threads: int,
                        warmup: int = WARMUP_STEPS, steps: int = TIMED_STEPS) -> dict[str, Any]:
    """Seconds per step of the real training loop (:func:`poseprompt.stages.train.train_epoch`:
    data gathering, augmentation, forward, backward, AdamW, the gradient ratios every
    ``train.log_every`` steps) for ``variant`` at the run's batch, on the prepared data: ``warmup``
    steps untimed, then each of ``steps`` steps timed alone.

    On a CPU with one thread per seed process (how the seeds train side by side) the step is the
    mean of the thread's CPU times (``time.thread_time``), which another job on the machine does
    not stretch: the estimate is that of a free core, and ``busy`` (the median wall time over the
    median CPU time above 1.3) says that the machine was shared while it measured. Otherwise it is
    the median wall time between synchronisations."""
    import statistics
    import tempfile
    from unittest import mock

    from poseprompt.config.params import variant_config
    from poseprompt.core.devices import synchronize
    from poseprompt.data.windows import window_kwargs
    from poseprompt.stages import train as T
    cfg = variant_config(params, variant)
    train_cfg = {**params["train"], "device": str(device), "progress": False, "checkpoint_every": 0,
                 "max_steps": 0, "threads": threads}
    old_threads = torch.get_num_threads()
    cpu_clock = device.type == "cpu" and threads == 1
    walls, cpus = [], []
    try:
        with tempfile.TemporaryDirectory() as tmp, mock.patch.object(T, "save", lambda *a, **k: None):
            run = T.setup(cfg, train_cfg, data_dir, Path(tmp), 0, window_kwargs(params["data"]), None)
            state = T.restore(run, False)
            n = max(2, min(warmup + steps, run.steps_per_epoch - 1))
            for k in range(n):
                synchronize(run.device)
                w0, c0 = time.perf_counter(), time.thread_time()
                T.train_epoch(run, state, 0, T.StepBudget(state.global_step, 1, 0))
                synchronize(run.device)
                if k >= min(warmup, n - 1):
                    walls.append(time.perf_counter() - w0)
                    cpus.append(time.thread_time() - c0)
    finally:
        torch.set_num_threads(old_threads)
    wall = statistics.median(walls)
    return {"step_s": statistics.fmean(cpus) if cpu_clock else wall, "wall_s": wall,
            "cpu_s": statistics.median(cpus), "clock": "thread CPU time" if cpu_clock else "wall time",
            "steps_timed": len(walls), "busy": bool(cpu_clock and wall > 1.3 * statistics.median(cpus))}


def audit_knockouts(cfg) -> int:
    """Knock-outs the component audit runs for a model configuration (poseprompt.stages.audit):
    the model's own, the slot texts that vary (speed; action when the label is given), and for a
    model that pools context the heads with re-estimated statistics and the two at-init ones."""
    from poseprompt.model.lifter import build_model
    n = len(build_model(cfg).knockouts())
    if cfg.uses_text:
        n += 1 + (cfg.action_text == "label")
    if cfg.pools_context:
        n += 2 + 3
    return n


def evaluation_passes(params: Mapping, test_windows: int, shift_windows: int, val_windows: int | None = None,
                      knockouts: int = 14) -> int:
    """Forward passes (windows) of one evaluation: test (twice with flip), each suite strength
    (twice with suite_flip), the shifted sets, and the audit (the whole model and each of
    ``knockouts`` knock-outs on the audit's validation and test clips)."""
    ev = params["evaluate"]
    flip = 2 if ev.get("flip", True) else 1
    suite_flip = 2 if ev.get("suite_flip", True) else 1
    strengths = sum(len(s.get("strengths", [])) for s in (ev.get("suites") or {}).values())
    n = test_windows * (1 + flip) + strengths * test_windows * suite_flip + shift_windows * suite_flip
    if ev.get("audit", True):
        clips = ev.get("audit_clips", 64)
        val = test_windows if val_windows is None else val_windows
        audit_clips = (min(clips, test_windows) + min(clips, val)) if clips else test_windows + val
        n += (2 + knockouts) * audit_clips
    return n


def time_forward(model, batch: int, device, threads: int, repeats: int = 3) -> float:
    """Seconds of one forward pass per clip at ``batch`` (evaluation mode), after one warm-up; on a
    CPU with one thread the thread's CPU time (unaffected by other jobs), else the wall time."""
    from poseprompt.core.devices import synchronize
    T, N = model.cfg.frames, model.skeleton.num_joints
    x = torch.zeros(batch, T, N, 3, device=device)
    x[..., 2] = 1.0
    texts = {"action": ["walk"] * batch, "speed": ["normal"] * batch}
    old = torch.get_num_threads()
    cpu_clock = device.type == "cpu" and threads == 1
    if device.type == "cpu":
        torch.set_num_threads(threads)
    try:
        model = model.to(device).eval()
        with torch.no_grad():
            model(x, texts)
            synchronize(device)
            w0, c0 = time.perf_counter(), time.thread_time()
            for _ in range(repeats):
                model(x, texts)
            synchronize(device)
            took = (time.thread_time() - c0) if cpu_clock else (time.perf_counter() - w0)
    finally:
        torch.set_num_threads(old)
    return took / repeats / batch


def startup_seconds() -> float:
    """CPU seconds a fresh Python needs to import what a stage's notebook imports (torch, open_clip,
    matplotlib, the package): the fixed cost of every notebook papermill starts (and of every seed
    process), measured as the child's CPU time, so another job does not stretch it."""
    import resource
    import subprocess
    import sys
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-c", "import poseprompt.stages.train, poseprompt.stages.evaluate, "
                    "poseprompt.plots.figures, IPython"], check=True, capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


#: the evaluation runs in one process on all cores: its speed-up over one core, per core
#: (calibrated on the default pipeline on 2 cores, docs/speed.md, "make plan against reality")
EVAL_CORE_EFFICIENCY = 0.6
#: seconds per figure or table drawn by the figures stage, beyond its model passes (calibrated alike)
FIGURE_S = 1.5
#: papermill's kernel start on top of the imports (seconds per notebook)
KERNEL_S = 1.5


def plan(params: Mapping, root: str | Path = ".", gpus: int = 1, step_s: float | None = None,
         device: str = "auto", log=print, quick: bool = False) -> dict[str, Any]:
    """The cost of the pipeline of ``params`` on this machine (see the module docstring); ``quick``
    times only the most expensive variant and charges its step to every variant."""
    from poseprompt.config.params import seeds_of, variant_config
    from poseprompt.config.sections import TrainConfig
    from poseprompt.core.devices import device_name, pick_device
    from poseprompt.data.format import PoseSequences
    from poseprompt.data.windows import PoseWindows, window_kwargs
    from poseprompt.stages.cost import measure_model
    from poseprompt.stages.seedpool import cpu_cores, seed_processes, seed_rounds
    from poseprompt.stages.train import init_model

    root = Path(root)
    data_dir = root / params["data"]["out_dir"]
    missing = [s for s in ("train", "val", "test") if not (data_dir / f"{s}.npz").is_file()]
    if missing:
        raise FileNotFoundError(f"{data_dir}: {', '.join(missing)}.npz missing: run `dvc repro prepare` first "
                                f"(the plan counts the windows of the prepared data)")
    tc = TrainConfig.from_dict(params["train"])
    ev = params["evaluate"]
    kw = window_kwargs(params["data"])
    splits = {s: PoseSequences.load(data_dir / f"{s}.npz") for s in ("train", "val", "test")}
    shifts = [PoseSequences.load(p) for p in sorted(data_dir.glob("shift_*.npz"))]
    seeds = seeds_of(params)
    dev = pick_device(device)
    cores = cpu_cores()
    heavy = _variant_cost_order(params)
    variants = list(params["variants"])
    cfg = variant_config(params, heavy)
    T = cfg.frames
    train_w = len(PoseWindows(splits["train"], T, stride=tc.stride, mode="train", **kw))
    val_w = len(PoseWindows(splits["val"], T, stride=T, mode="test", **kw))
    test_w = len(PoseWindows(splits["test"], T, stride=T, mode="test", **kw))
    shift_w = sum(len(PoseWindows(s, T, stride=T, mode="test", **kw)) for s in shifts)
    steps_epoch = train_w // tc.batch_size
    steps = steps_epoch * tc.epochs if not tc.max_steps else min(tc.max_steps, steps_epoch * tc.epochs)
    procs = seed_processes(tc.seed_procs, len(seeds), device) if step_s is None else 1
    threads = (tc.threads or max(1, cores // procs)) if dev.type == "cpu" else 0
    eval_batch = int(ev.get("batch_size", 64))
    timings: dict[str, dict] = {}
    per_variant: dict[str, dict] = {}
    startup = startup_seconds() + KERNEL_S
    for v in variants:
        vc = variant_config(params, v)
        if step_s is not None:
            t = {"step_s": step_s, "clock": "given", "busy": False}
        elif quick:
            if heavy not in timings:
                timings[heavy] = time_training_steps(params, heavy, data_dir, dev, threads)
            t = timings[heavy]
        else:
            t = timings[v] = time_training_steps(params, v, data_dir, dev, threads)
        fwd_1 = time_forward(init_model(vc, 0), min(eval_batch, 64), dev, 1 if dev.type == "cpu" else 0)
        fwd_eval = fwd_1 / (max(1, cores) * EVAL_CORE_EFFICIENCY) if dev.type == "cpu" else fwd_1
        val_s = tc.epochs * val_w * fwd_1                      # in each seed's process, at its threads
        run_s = steps * t["step_s"] + val_s
        rounds = seed_rounds(len(seeds), procs, cores) if procs > 1 else len(seeds)
        train_s = rounds * run_s + startup
        eval_s = len(seeds) * evaluation_passes(params, test_w, shift_w, val_w, audit_knockouts(vc)) * fwd_eval
        per_variant[v] = {"step_s": t["step_s"], "clock": t["clock"], "busy": t["busy"], "run_h": run_s / 3600,
                          "train_h": train_s / 3600, "eval_h": (eval_s + startup) / 3600}
    step = per_variant[heavy]["step_s"]
    cost = measure_model(init_model(cfg, 0), batch=1, device=dev, repeats=1)
    n_items = 22                                               # figures and tables of the figures stage
    # method and figures: two notebooks, the cost table's passes of every variant (a few training
    # steps each, charged at the timed step) and the drawing
    repeats = int((params.get("figures") or {}).get("cost_repeats", 3))
    figures_s = 2 * startup + sum((2 + 2 * repeats) * e["step_s"] for e in per_variant.values()) + n_items * FIGURE_S
    prepare_s = startup
    variant_h = {v: e["train_h"] + e["eval_h"] for v, e in per_variant.items()}
    whole_1 = sum(variant_h.values()) + (figures_s + prepare_s) / 3600
    slowest = sorted(variant_h.values(), reverse=True)
    whole_n = sum(slowest[::max(gpus, 1)]) + (figures_s + prepare_s) / 3600   # one variant per device
    busy = any(e["busy"] for e in per_variant.values())
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    run_h = per_variant[heavy]["run_h"]
    eval_h = per_variant[heavy]["eval_h"]
    out = {"device": device_name(dev), "measured_variant": heavy, "frames": T,
           "train_frames": splits["train"].num_frames, "train_windows": train_w, "stride": tc.stride,
           "batch": tc.batch_size, "steps_per_epoch": steps_epoch, "epochs": tc.epochs, "steps_per_run": steps,
           "step_s": step, "step_measured": step_s is None, "measured_batch": tc.batch_size,
           "warmup_steps": WARMUP_STEPS, "timed_steps": TIMED_STEPS, "clock": per_variant[heavy]["clock"],
           "hours_per_run": run_h, "eval_hours_per_run": eval_h, "variants": len(variants), "seeds": len(seeds),
           "runs": len(variants) * len(seeds), "seed_processes": procs,
           "step_s_per_process": step, "per_variant": per_variant, "startup_s": startup,
           "figures_h": figures_s / 3600, "eval_share": sum(e["eval_h"] for e in per_variant.values()) / whole_1,
           "hours_whole_1_device": whole_1, f"hours_whole_{gpus}_devices": whole_n,
           "busy": busy, "load_average": load,
           "step_memory_mb": cost["peak_mem_mb"] * tc.batch_size if dev.type != "cuda" else cost["peak_mem_mb"],
           "memory_method": cost["peak_mem_method"]}
    log(f"plan on {out['device']}: step of the training loop at batch {tc.batch_size}, the median of "
        f"{TIMED_STEPS} steps after {WARMUP_STEPS} warm-up steps ({out['clock']}"
        f"{', ' + str(threads) + ' thread(s) per seed process' if dev.type == 'cpu' else ''})")
    if busy:
        log(f"  the machine was busy while measuring (load {load:.1f} on {cores} cores): the steps' wall time "
            f"exceeded their CPU time; the estimate uses the CPU time, i.e. a machine without the other jobs")
    log(f"  data: {out['train_frames']:,} training frames -> {train_w:,} windows of T={T} at stride {tc.stride}; "
        f"{steps_epoch:,} steps of {tc.batch_size} clips per epoch, {steps:,} steps per run")
    for v, e in per_variant.items():
        log(f"  {v:22s} {e['step_s'] * 1e3:8.1f} ms per step; one run {e['run_h'] * 60:7.1f} min; "
            f"{len(seeds)} seeds: training {e['train_h'] * 60:7.1f} min, evaluation {e['eval_h'] * 60:6.1f} min")
    log(f"  the whole pipeline: {len(variants)} variants x {len(seeds)} seeds: {whole_1:.2f} h "
        f"({whole_1 * 60:.0f} min) on one device" + (f", {whole_n:.2f} h on {gpus} devices (one variant per device)"
                                                     if gpus > 1 else "")
        + f"; evaluation and audit {out['eval_share']:.0%} of it; figures {figures_s / 60:.1f} min")
    log(f"  memory of one training step: {out['step_memory_mb']:.0f} MB ({out['memory_method']}"
        f"{'' if dev.type == 'cuda' else ', batch 1 scaled to the batch'})")
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--root", default=".")
    ap.add_argument("--gpus", type=int, default=torch.cuda.device_count() or 8,
                    help="devices for the parallel estimate (default: this machine's GPUs, else 8)")
    ap.add_argument("--step-s", type=float, help="seconds per training step (instead of measuring one)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--quick", action="store_true", help="time the most expensive variant only")
    args = ap.parse_args(argv)
    from poseprompt.config.params import load_params
    plan(load_params(args.params), args.root, args.gpus, args.step_s, args.device, quick=args.quick)


if __name__ == "__main__":
    main()
