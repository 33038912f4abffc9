"""Speed and memory of the model: ``make bench`` (figures printed, nothing asserted).

For three sizes and two variants (no prompt = the GAtFuN baseline, full = adaptive prompts with
both poolings, injected into both streams) it prints parameter counts (trainable, frozen, text
tower), FLOPs per clip (``torch.utils.flop_counter``: matrix products and attention, the usual
convention; element-wise work is not counted), forward and train-step time for a fixed batch,
peak memory (and, on a CPU, its growth over the process after the model is built: the
activations and optimizer state), and the full/no-prompt ratios of train-step time and FLOPs.

Sizes:

* ``default``: the ``model`` section of params.yaml (the offline default);
* ``xs``: about MotionAGFormer-XS (T=27, width 64, depth 4, batch 16);
* ``paper``: T=243, width 512, depth 8, 8 heads, ViT-B-32 text tower with random weights
  (the paper's architecture; weights do not change the cost), batch 1 on a CPU.

Every measurement runs in a fresh process, so that peak memory (max resident set on a CPU,
``torch.cuda.max_memory_allocated`` on a GPU) belongs to that configuration alone.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import time
from pathlib import Path

import yaml

SIZES = {
    "default": {"batch": 8},
    "xs": {"batch": 16, "model": dict(frames=27, width=64, depth=4, heads=4)},
    "paper": {"batch": 1, "model": dict(frames=243, width=512, depth=8, heads=8, context_dim=128, slot_dim=128,
                                        spatial_heads=4, temporal_heads=4, temporal_radius=40, prompt_length=12,
                                        text_tokens=4, text_encoder={"arch": "ViT-B-32"})},
}
VARIANTS = {"no-prompt": {"prompt": "none"},
            "full": {"prompt": "adaptive", "spatial_pool": "laplacian", "temporal_pool": "gaussian", "inject": "both"}}


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def measure(model_cfg: dict, batch: int, device: str, repeats: int) -> dict:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from . import build_model
    from .metrics import training_loss

    torch.manual_seed(0)
    model = build_model(model_cfg).to(device)
    counts = model.parameter_counts()
    T = model.cfg.frames
    x = torch.randn(batch, T, model.skeleton.num_joints, 3, device=device)
    x[..., 2] = 1.0
    y = torch.randn(batch, T, model.skeleton.num_joints, 3, device=device) * 0.2
    texts = {"action": ["walk"] * batch, "speed": ["fast"] * batch}
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    sync = (lambda: torch.cuda.synchronize()) if device.startswith("cuda") else (lambda: None)

    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model(x, texts)
    flops = fc.get_total_flops() / batch

    rss0 = _max_rss_mb()
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()

    def forward():
        with torch.no_grad():
            model(x, texts)

    def train_step():
        loss, _ = training_loss(model(x, texts), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    out = {}
    for name, fn, mode in (("forward_s", forward, "eval"), ("train_step_s", train_step, "train")):
        getattr(model, mode)()
        fn()  # warm-up
        sync()
        t0 = time.perf_counter()
        for _ in range(repeats):
            fn()
        sync()
        out[name] = (time.perf_counter() - t0) / repeats
    peak = (torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else _max_rss_mb())
    return {**counts, "flops_per_clip": flops, **out, "peak_mem_mb": peak, "rss_before_mb": rss0,
            "batch": batch, "frames": T, "device": device}


def _child(args, queue):
    try:
        queue.put(measure(*args))
    except Exception as e:  # report, do not hang the parent
        queue.put({"error": f"{type(e).__name__}: {e}"})


def run_isolated(model_cfg, batch, device, repeats) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=((model_cfg, batch, device, repeats), q))
    p.start()
    res = q.get()
    p.join()
    return res


def default_model_section(params_path: str | os.PathLike = "params.yaml") -> dict:
    p = Path(params_path)
    if p.is_file():
        return dict(yaml.safe_load(p.read_text()).get("model", {}))
    return {}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="default,xs,paper")
    ap.add_argument("--device", default="cuda" if _has_cuda() else "cpu")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    from .config import merge
    base = default_model_section()
    results = {}
    print(f"device: {args.device}; torch threads: {os.cpu_count()} cores")
    print(f"{'size':8} {'variant':10} {'trainable':>11} {'frozen':>11} {'text':>11} {'GFLOP/clip':>11} "
          f"{'fwd s':>8} {'step s':>8} {'peak MB':>9} {'+MB':>7}")
    for size in args.sizes.split(","):
        spec = SIZES[size]
        for vname, variant in VARIANTS.items():
            cfg = merge(merge(base, spec.get("model")), variant)
            r = run_isolated(cfg, spec["batch"], args.device, args.repeats)
            results[f"{size}/{vname}"] = r
            if "error" in r:
                print(f"{size:8} {vname:10} ERROR {r['error']}")
                continue
            print(f"{size:8} {vname:10} {r['trainable']:>11,} {r['frozen']:>11,} {r['text_encoder']:>11,} "
                  f"{r['flops_per_clip'] / 1e9:>11.3f} {r['forward_s']:>8.3f} {r['train_step_s']:>8.3f} "
                  f"{r['peak_mem_mb']:>9.0f} {r['peak_mem_mb'] - r['rss_before_mb']:>7.0f}")
        full, base_r = results.get(f"{size}/full"), results.get(f"{size}/no-prompt")
        if full and base_r and "error" not in full and "error" not in base_r:
            print(f"{size:8} ratio full/no-prompt: train step x{full['train_step_s'] / base_r['train_step_s']:.2f}, "
                  f"FLOPs x{full['flops_per_clip'] / base_r['flops_per_clip']:.2f} "
                  f"(batch {spec['batch']}, T={full['frames']})")
    if args.json:
        from .io import write_json
        write_json(args.json, results)
    return results


def _has_cuda() -> bool:
    import torch
    return torch.cuda.is_available()


if __name__ == "__main__":
    main()
