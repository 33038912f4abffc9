"""The first GPU hour, prepared: ``make gpu-hour`` (``python -m poseprompt.tools.gpu_hour``).

One script, under 10 minutes on one GPU, that answers what a paper run needs to know before it
starts, written to one JSON (``<out>/gpu_hour.json``) and printed:

1. **smoke** (:mod:`poseprompt.tools.smoke`): the paper architecture (T = 243, width 512, depth 8,
   ViT-B-32 text tower with random weights: the cost does not depend on the weights) trains 50
   steps, stops half way, resumes to the same weights as an uninterrupted run (``resume_max_weight_diff``),
   and bf16 autocast against fp32 on the same batch;
2. **steps per second at the paper batch** (16 clips) for ``gatfun`` and ``full`` (the cheapest and
   the most expensive kind of variant: no prompt, and adaptive prompts into both streams), timed
   after warm-up steps on random clips, and the peak memory of a training step of each;
3. **the plan of the whole paper** from those step times: Human3.6M's training windows at the
   paper's stride, the paper's epochs, every variant of the paper preset at the step time of its
   kind, three seeds, the evaluation's forward passes (with the full audit, ``audit_clips: 0``)
   and its share of the cost, on one GPU and on 8 (one variant per GPU).

``--tiny`` shrinks every model (a CPU test of the same code path: the test suite runs it). On a
GPU machine without a package registry: ``PYTHONPATH=src python3 -m poseprompt.tools.gpu_hour``
with the wheels of ``make gpu-wheels`` (docs/gpu.md).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

#: Human3.6M test frames (S9, S11, four cameras) and MPI-INF-3DHP test frames, for the evaluation's share
H36M_TEST_FRAMES = 543_344
MPI3DHP_TEST_FRAMES = 2_929                    # the valid frames of TS1-TS6


def paper_variants(tiny: bool) -> dict[str, dict]:
    """Every variant of the paper preset as a model configuration (random text weights: the same cost)."""
    from poseprompt.config.params import variant_config
    from poseprompt.config.presets import preset_params
    from poseprompt.config.sections import merge
    from poseprompt.tools.smoke import TINY
    p = preset_params("paper")
    p["model"] = merge(p["model"], {"text_encoder": {"pretrained": None, "checkpoint": None}})
    if tiny:
        p["model"] = merge(p["model"], TINY)
    return {v: variant_config(p, v) for v in p["variants"]}, p


def _step_seconds(cfg, batch: int, device, warmup: int, steps: int) -> float:
    """Seconds of one training step (forward under the run's autocast, backward, AdamW) on random
    clips, timed over ``steps`` steps after ``warmup`` untimed ones."""
    from poseprompt.core.devices import autocast_for, synchronize
    from poseprompt.core.metrics import training_loss
    from poseprompt.stages.train import init_model
    model = init_model(cfg, 0).to(device)
    if model.cfg.uses_text and device.type == "cuda":         # as training runs it: the frozen tower in bf16
        model.text.compute_in(torch.bfloat16)
    T, N = cfg.frames, model.skeleton.num_joints
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(batch, T, N, 3, generator=g) * 0.3).to(device)
    x[..., 2] = 1.0
    y = (torch.randn(batch, T, N, 3, generator=g) * 0.2).to(device)
    texts = {"action": ["walk"] * batch, "speed": ["normal"] * batch}
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4,
                            **({"fused": True} if device.type == "cuda" else {}))
    autocast = autocast_for(device, "auto")
    model.train()
    for k in range(warmup + steps):
        if k == warmup:
            synchronize(device)
            t0 = time.perf_counter()
        with autocast():
            pred = model(x, texts)
        loss, _ = training_loss(pred.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    synchronize(device)
    return (time.perf_counter() - t0) / steps


def time_steps(cfg, batch: int, device, warmup: int = 3, steps: int = 10) -> dict:
    """Steps per second of ``cfg`` at ``batch`` after ``warmup`` steps, and the peak memory of a
    training step (:func:`poseprompt.stages.cost.measure_model`, the allocator's peak on CUDA)."""
    from poseprompt.stages.cost import measure_model
    from poseprompt.stages.train import init_model
    step_s = _step_seconds(cfg, batch, device, warmup, steps)
    if device.type == "cuda":
        torch.cuda.empty_cache()
    mem = measure_model(init_model(cfg, 0), batch=batch, device=device, repeats=1)
    return {"steps_per_s": 1.0 / step_s, "step_s": step_s, "batch": batch, "warmup_steps": warmup,
            "timed_steps": steps, "peak_mem_mb": mem["peak_mem_mb"], "peak_mem_method": mem["peak_mem_method"],
            "forward_ms_per_clip": mem["latency_ms"]}


def paper_plan(params: dict, variants: dict, step_s: dict[str, float], forward_s_clip: float,
               gpus: int = 8) -> dict:
    """The whole paper from the measured step times: each variant at the step of its kind (no prompt:
    gatfun's; with prompts: full's), three seeds, its evaluation with the full audit."""
    from poseprompt.tools.plan import audit_knockouts, evaluation_passes
    from poseprompt.tools.smoke import H36M_TRAIN_FRAMES
    tc, T = params["train"], params["model"]["frames"]
    windows = H36M_TRAIN_FRAMES // tc["stride"]
    steps = windows // tc["batch_size"] * tc["epochs"]
    test_w, shift_w = H36M_TEST_FRAMES // T, MPI3DHP_TEST_FRAMES // T
    val_w = int(windows * tc["stride"] / T * params["data"]["val"]["fraction"])
    seeds = len(params["seeds"])
    per_variant = {}
    for v, cfg in variants.items():
        s = step_s["gatfun"] if not cfg.has_prompt else step_s["full"]
        train_h = steps * s / 3600 + tc["epochs"] * val_w * forward_s_clip / 3600
        eval_h = evaluation_passes(params, test_w, shift_w, val_w, audit_knockouts(cfg)) * forward_s_clip / 3600
        per_variant[v] = {"train_h": seeds * train_h, "eval_h": seeds * eval_h}
    total = {v: e["train_h"] + e["eval_h"] for v, e in per_variant.items()}
    hours_1 = sum(total.values())
    slowest = sorted(total.values(), reverse=True)
    return {"steps_per_run": steps, "train_windows": windows, "val_windows": val_w, "forward_s_per_clip": forward_s_clip, "epochs": tc["epochs"], "batch": tc["batch_size"],
            "variants": len(variants), "seeds": seeds, "per_variant": per_variant, "hours_1_gpu": hours_1,
            f"hours_{gpus}_gpus": sum(slowest[::gpus]),
            "eval_share": sum(e["eval_h"] for e in per_variant.values()) / hours_1,
            "days_1_gpu": hours_1 / 24, "note": "one variant per GPU; evaluation at the measured forward time "
                                                "per clip of full, the audit on every test clip"}


def run(out: str | Path = "reports/gpu-hour", tiny: bool = False, device: str = "auto", smoke_steps: int = 50,
        log=print) -> dict:
    from poseprompt.core.devices import device_name, pick_device
    from poseprompt.core.io import write_json
    from poseprompt.tools import smoke
    out = Path(out)
    dev = pick_device(device)
    t0 = time.perf_counter()
    result: dict = {"device": device_name(dev), "torch": torch.__version__, "tiny": tiny}
    result["smoke"] = smoke.run(out / "smoke", tiny=tiny, steps=smoke_steps, device=str(dev), check_resume=True,
                                log=log)
    variants, params = paper_variants(tiny)
    batch = params["train"]["batch_size"]
    result["speed"] = {}
    for v in ("gatfun", "full"):
        result["speed"][v] = time_steps(variants[v], batch, dev, steps=3 if tiny else 10)
        log(f"gpu-hour: {v} at batch {batch}: {result['speed'][v]['steps_per_s']:.2f} steps/s, peak "
            f"{result['speed'][v]['peak_mem_mb']:.0f} MB")
    result["plan"] = paper_plan(params, variants, {v: r["step_s"] for v, r in result["speed"].items()},
                                result["speed"]["full"]["forward_ms_per_clip"] / 1e3)
    result["seconds"] = time.perf_counter() - t0
    write_json(out / "gpu_hour.json", result)
    pl = result["plan"]
    log(f"gpu-hour: the paper ({pl['variants']} variants x {pl['seeds']} seeds, {pl['steps_per_run']:,} steps each): "
        f"{pl['hours_1_gpu']:.0f} h on one GPU, {pl['hours_8_gpus']:.0f} h on 8; evaluation {pl['eval_share']:.0%}; "
        f"this script took {result['seconds']:.0f} s -> {out / 'gpu_hour.json'}")
    return result


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="reports/gpu-hour")
    ap.add_argument("--tiny", action="store_true", help="small models (a CPU test of the same code path)")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args(argv)
    res = run(args.out, args.tiny, args.device)
    print(json.dumps({k: res[k] for k in ("device", "speed", "plan")}, indent=1, default=str)[:4000])


if __name__ == "__main__":
    main()
