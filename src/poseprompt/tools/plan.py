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
import math
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


def evaluation_passes(params: Mapping, test_windows: int, shift_windows: int) -> int:
    """Forward passes (windows) of one evaluation: test (twice with flip), each suite strength
    (twice with suite_flip), the shifted sets, and the audit's knock-outs."""
    ev = params["evaluate"]
    flip = 2 if ev.get("flip", True) else 1
    suite_flip = 2 if ev.get("suite_flip", True) else 1
    strengths = sum(len(s.get("strengths", [])) for s in (ev.get("suites") or {}).values())
    n = test_windows * (1 + flip) + strengths * test_windows * suite_flip + shift_windows * suite_flip
    if ev.get("audit", True):
        clips = ev.get("audit_clips", 64) or test_windows
        n += 14 * 2 * min(clips, test_windows)
    return n


def plan(params: Mapping, root: str | Path = ".", gpus: int = 1, step_s: float | None = None,
         device: str = "auto", log=print) -> dict[str, Any]:
    from poseprompt.config.params import seeds_of, variant_config
    from poseprompt.config.sections import TrainConfig
    from poseprompt.core.devices import device_name, pick_device
    from poseprompt.data.format import PoseSequences
    from poseprompt.data.windows import PoseWindows
    from poseprompt.data.windows import window_kwargs
    from poseprompt.stages.cost import measure_model
    from poseprompt.stages.train import init_model

    root = Path(root)
    data_dir = root / params["data"]["out_dir"]
    missing = [s for s in ("train", "val", "test") if not (data_dir / f"{s}.npz").is_file()]
    if missing:
        raise FileNotFoundError(f"{data_dir}: {', '.join(missing)}.npz missing: run `dvc repro prepare` first "
                                f"(the plan counts the windows of the prepared data)")
    tc = TrainConfig.from_dict(params["train"])
    kw = window_kwargs(params["data"])
    splits = {s: PoseSequences.load(data_dir / f"{s}.npz") for s in ("train", "val", "test")}
    shifts = [PoseSequences.load(p) for p in sorted(data_dir.glob("shift_*.npz"))]
    seeds = seeds_of(params)
    dev = pick_device(device)
    heavy = _variant_cost_order(params)
    cfg = variant_config(params, heavy)
    T = cfg.frames
    train_w = len(PoseWindows(splits["train"], T, stride=tc.stride, mode="train", **kw))
    val_w = len(PoseWindows(splits["val"], T, stride=T, mode="test", **kw))
    test_w = len(PoseWindows(splits["test"], T, stride=T, mode="test", **kw))
    shift_w = sum(len(PoseWindows(s, T, stride=T, mode="test", **kw)) for s in shifts)
    steps_epoch = train_w // tc.batch_size
    steps = steps_epoch * tc.epochs if not tc.max_steps else min(tc.max_steps, steps_epoch * tc.epochs)
    measured_batch = tc.batch_size if dev.type == "cuda" else min(tc.batch_size, 2)
    m = measure_model(init_model(cfg, 0), batch=measured_batch, device=dev, repeats=2)
    step = step_s if step_s is not None else m["train_step_ms"] / 1e3 * tc.batch_size / measured_batch
    fwd_clip = m["forward_ms"] / 1e3 / measured_batch
    # seeds side by side on a CPU (train.seed_procs): each process's step at its share of the threads
    from poseprompt.stages.seedpool import cpu_cores, seed_processes, seed_rounds
    procs = seed_processes(tc.seed_procs, len(seeds), device) if step_s is None else 1
    step_proc = step
    if procs > 1:
        threads = torch.get_num_threads()
        torch.set_num_threads(tc.threads or max(1, cpu_cores() // procs))
        try:
            m_proc = measure_model(init_model(cfg, 0), batch=measured_batch, device=dev, repeats=2)
        finally:
            torch.set_num_threads(threads)
        step_proc = m_proc["train_step_ms"] / 1e3 * tc.batch_size / measured_batch
    val_s = tc.epochs * val_w * fwd_clip
    run_h = (steps * step + val_s) / 3600.0
    train_wall_h = (seed_rounds(len(seeds), procs, cpu_cores()) * (steps * step_proc + val_s) / 3600.0
                    if procs > 1 else len(seeds) * run_h)
    eval_h = evaluation_passes(params, test_w, shift_w) * fwd_clip / 3600.0
    n_var = len(params["variants"])
    runs = n_var * len(seeds)
    # one variant per device: the variants' runs (all seeds) spread over the devices
    per_variant_h = train_wall_h + len(seeds) * eval_h
    whole_1 = n_var * per_variant_h
    whole_n = math.ceil(n_var / max(gpus, 1)) * per_variant_h
    out = {"device": device_name(dev), "measured_variant": heavy, "frames": T,
           "train_frames": splits["train"].num_frames, "train_windows": train_w, "stride": tc.stride,
           "batch": tc.batch_size, "steps_per_epoch": steps_epoch, "epochs": tc.epochs, "steps_per_run": steps,
           "step_s": step, "step_measured": step_s is None, "measured_batch": measured_batch,
           "hours_per_run": run_h, "eval_hours_per_run": eval_h, "variants": n_var, "seeds": len(seeds),
           "runs": runs, "seed_processes": procs, "step_s_per_process": step_proc, "hours_whole_1_device": whole_1, f"hours_whole_{gpus}_devices": whole_n,
           "step_memory_mb": m["peak_mem_mb"] * tc.batch_size / measured_batch if dev.type != "cuda"
           else m["peak_mem_mb"], "memory_method": m["peak_mem_method"]}
    log(f"plan on {out['device']} (step {'measured' if step_s is None else 'given'}: {step:.3f} s at batch "
        f"{tc.batch_size}{'' if measured_batch == tc.batch_size else f', scaled from batch {measured_batch}'}, "
        f"variant {heavy})")
    log(f"  data: {out['train_frames']:,} training frames -> {train_w:,} windows of T={T} at stride {tc.stride}; "
        f"{steps_epoch:,} steps of {tc.batch_size} clips per epoch, {tc.epochs} epochs = {steps:,} steps per run")
    log(f"  one run (one variant, one seed): {run_h:.2f} h training + {eval_h:.2f} h evaluation")
    if procs > 1:
        log(f"  seeds side by side: {procs} processes (train.seed_procs), {step_proc:.3f} s per step each: "
            f"{train_wall_h:.2f} h of training per variant for {len(seeds)} seeds")
    log(f"  the whole pipeline: {n_var} variants x {len(seeds)} seeds = {runs} runs: {whole_1:.1f} h on one device"
        + (f", {whole_n:.1f} h on {gpus} devices (one variant per device)" if gpus > 1 else ""))
    log(f"  memory of one training step: {out['step_memory_mb']:.0f} MB ({out['memory_method']}"
        f"{'' if dev.type == 'cuda' else ', scaled to the batch'})")
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--root", default=".")
    ap.add_argument("--gpus", type=int, default=torch.cuda.device_count() or 8,
                    help="devices for the parallel estimate (default: this machine's GPUs, else 8)")
    ap.add_argument("--step-s", type=float, help="seconds per training step (instead of measuring one)")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args(argv)
    from poseprompt.config.params import load_params
    plan(load_params(args.params), args.root, args.gpus, args.step_s, args.device)


if __name__ == "__main__":
    main()
