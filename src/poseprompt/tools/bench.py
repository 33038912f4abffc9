"""Speed and memory figures: ``make bench`` (printed, nothing asserted).

1. **The model** at the sizes of the presets (``default``: the embedded default; ``paper``: the
   paper architecture, T = 243, width 512, depth 8, ViT-B-32 text tower with random weights, which
   do not change the cost), for the no-prompt baseline and ``full``: parameters, FLOPs per clip,
   forward and training-step time, peak memory, the full/no-prompt ratios. One measurement,
   :func:`poseprompt.stages.cost.measure_model` (the figures stage's cost table uses the same), each in a
   fresh process.
2. **Training-data start-up**: the window index of a split of 1.5 M frames at T = 243, stride 1 and
   stride 81, and the gather of one batch (batches are gathered from the frame arrays, never a
   copy per window): seconds and the index's memory.
3. **The whole-paper estimate** of ``make plan`` for 1 and for 8 GPUs, from a training-step time
   (``--paper-step-s``: a GPU's, e.g. from ``make gpu-smoke``; else this machine's measured one).
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import time

VARIANTS = {"no-prompt": {"prompt": "none"},
            "full": {"prompt": "adaptive", "spatial_pool": "laplacian", "temporal_pool": "gaussian", "inject": "both"}}
#: preset -> batch on a CPU / on a GPU
SIZES = {"default": (8, 8), "paper": (1, 16)}


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def size_model(preset: str) -> dict:
    """The ``model`` section of a preset, its text tower with random weights (same cost)."""
    from poseprompt.config.presets import preset_params
    from poseprompt.config.sections import merge
    model = preset_params(preset)["model"]
    return merge(model, {"text_encoder": {"pretrained": None, "checkpoint": None}})


def _measure_child(args, queue):
    try:
        from poseprompt.config.sections import ModelConfig
        from poseprompt.stages.cost import measure_model
        from poseprompt.stages.train import init_model
        cfg, batch, device, repeats = args
        queue.put(measure_model(init_model(ModelConfig.from_dict(cfg), 0), batch, device, repeats))
    except Exception as e:  # report, do not hang the parent
        queue.put({"error": f"{type(e).__name__}: {e}"})


def run_isolated(target, args) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=target, args=(args, q))
    p.start()
    res = q.get()
    p.join()
    return res


def _data_child(args, queue):
    try:
        import numpy as np

        from poseprompt.data.format import PoseSequences
        from poseprompt.data.windows import PoseWindows
        frames, T, stride, seq_len = args
        n = frames // seq_len
        F = n * seq_len
        rng = np.random.default_rng(0)
        split = PoseSequences(
            kp2d=rng.standard_normal((F, 17, 2), dtype=np.float32) * 0.3, kp2d_px=np.zeros((F, 17, 2), np.float32),
            conf=np.ones((F, 17), np.float32), pose3d=np.zeros((F, 17, 3), np.float32),
            root3d=np.zeros((F, 3), np.float32), valid=np.ones(F, bool),
            starts=np.arange(0, F + 1, seq_len, dtype=np.int64), subject=np.array(["S"] * n),
            name=np.array([f"s{i}" for i in range(n)]), action=np.array(["walk"] * n), style=np.array([""] * n),
            camera=np.array(["c"] * n), fps=np.full(n, 50.0), intrinsics=np.ones((n, 4)),
            image_size=np.full((n, 2), 1000.0), meta={"source": "bench", "skeleton": "h36m17"})
        rss0 = _max_rss_mb()
        t0 = time.perf_counter()
        w = PoseWindows(split, T, stride=stride, mode="train")
        t_index = time.perf_counter() - t0
        t0 = time.perf_counter()
        w.gather(np.random.default_rng(1).choice(len(w), 16, replace=False))
        t_batch = time.perf_counter() - t0
        queue.put({"frames": F, "windows": len(w), "index_s": t_index, "batch_s": t_batch,
                   "rss_mb": _max_rss_mb(), "rss_frames_mb": rss0, "materialised_gb": len(w) * T * 17 * 6 * 4 / 1e9})
    except Exception as e:
        queue.put({"error": f"{type(e).__name__}: {e}"})


def bench_models(device: str, repeats: int, sizes=("default", "paper")) -> dict:
    from poseprompt.config.sections import merge
    results = {}
    print(f"device: {device}; {os.cpu_count()} CPU cores")
    print(f"{'size':8} {'variant':10} {'trainable':>11} {'frozen':>11} {'GFLOP/clip':>11} {'fwd ms':>9} "
          f"{'step ms':>9} {'batch':>5} {'peak MB':>9}")
    for size in sizes:
        batch = SIZES[size][1 if device.startswith("cuda") else 0]
        base = size_model(size)
        for vname, variant in VARIANTS.items():
            r = run_isolated(_measure_child, (merge(base, variant), batch, device, repeats))
            results[f"{size}/{vname}"] = r
            if "error" in r:
                print(f"{size:8} {vname:10} ERROR {r['error']}")
                continue
            print(f"{size:8} {vname:10} {r['trainable']:>11,} {r['frozen']:>11,} {r['flops_per_clip'] / 1e9:>11.3f} "
                  f"{r['forward_ms']:>9.1f} {r['train_step_ms']:>9.1f} {batch:>5} {r['peak_mem_mb']:>9.0f}")
        full, nop = results.get(f"{size}/full"), results.get(f"{size}/no-prompt")
        if full and nop and "error" not in full and "error" not in nop:
            print(f"{size:8} full/no-prompt: train step x{full['train_step_ms'] / nop['train_step_ms']:.2f}, "
                  f"FLOPs x{full['flops_per_clip'] / nop['flops_per_clip']:.2f}")
    return results


def bench_data(frames: int = 1_500_000) -> dict:
    out = {}
    print(f"training-data start-up, {frames:,} frames in sequences of 2,000, T = 243:")
    for stride in (1, 81):
        r = run_isolated(_data_child, (frames, 243, stride, 2000))
        out[f"stride{stride}"] = r
        if "error" in r:
            print(f"  stride {stride}: ERROR {r['error']}")
            continue
        print(f"  stride {stride:>2}: {r['windows']:>9,} windows indexed in {r['index_s']:.2f} s, one batch of 16 "
              f"gathered in {r['batch_s'] * 1e3:.1f} ms; peak memory {r['rss_mb']:.0f} MB (the frames alone "
              f"{r['rss_frames_mb']:.0f} MB; a copy of every window would need {r['materialised_gb']:.1f} GB)")
    return out


def bench_plan(step_s: float | None, device: str) -> dict:
    """The paper preset's whole-pipeline estimate for 1 and 8 devices (Human3.6M sizes)."""
    import math

    from poseprompt.config.presets import preset_params
    from poseprompt.tools.plan import evaluation_passes
    from poseprompt.tools.smoke import H36M_TRAIN_FRAMES
    p = preset_params("paper")
    tc = p["train"]
    windows = H36M_TRAIN_FRAMES // tc["stride"]
    steps = windows // tc["batch_size"] * tc["epochs"]
    if step_s is None:
        r = run_isolated(_measure_child, (merge_full(size_model("paper")), 1, device, 1))
        if "error" in r:
            print(f"plan: ERROR {r['error']}")
            return {}
        step_s = r["train_step_ms"] / 1e3 * tc["batch_size"]      # batch 1 on a CPU, scaled
        how = f"this machine's step at batch 1 x {tc['batch_size']}"
    else:
        how = "the given step time"
    n_var, n_seeds = len(p["variants"]), len(p["seeds"])
    run_h = steps * step_s / 3600.0
    eval_windows = evaluation_passes(p, 540_000 // 243, 24_000 // 243)
    per_variant = n_seeds * run_h
    out = {"steps_per_run": steps, "step_s": step_s, "hours_per_run": run_h, "runs": n_var * n_seeds,
           "hours_1": n_var * per_variant, "hours_8": math.ceil(n_var / 8) * per_variant,
           "eval_windows_per_run": eval_windows}
    print(f"paper plan ({how}: {step_s:.3f} s per step of {tc['batch_size']} clips): {steps:,} steps per run "
          f"({windows:,} windows at stride {tc['stride']}, {tc['epochs']} epochs) = {run_h:.1f} h; "
          f"{n_var} variants x {n_seeds} seeds: {out['hours_1']:.0f} h on 1 GPU, {out['hours_8']:.0f} h on 8 "
          f"(one variant per GPU)")
    return out


def merge_full(cfg: dict) -> dict:
    from poseprompt.config.sections import merge
    return merge(cfg, VARIANTS["full"])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="default,paper")
    ap.add_argument("--device", default=None)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--paper-step-s", type=float, help="a GPU's step time of the paper configuration (batch 16)")
    ap.add_argument("--skip", default="", help="comma list of parts to skip: models,data,plan")
    ap.add_argument("--json", help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    import torch
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    skip = set(args.skip.split(",")) - {""}
    results = {}
    if "models" not in skip:
        results["models"] = bench_models(device, args.repeats, args.sizes.split(","))
    if "data" not in skip:
        results["data"] = bench_data()
    if "plan" not in skip:
        results["plan"] = bench_plan(args.paper_step_s, device)
    if args.json:
        from poseprompt.core.io import write_json
        write_json(args.json, results)
    return results


if __name__ == "__main__":
    main()
