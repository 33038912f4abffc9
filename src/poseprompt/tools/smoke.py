"""A smoke run of the paper configuration: ``make gpu-smoke`` (``python -m poseprompt.tools.smoke``).

Before hours of GPU time, check in minutes that the paper architecture trains on this machine:

1. a few hundred frames of synthetic data in the Human3.6M layout (the ``gpu-smoke`` preset);
2. the ``full`` variant of the paper architecture (T = 243, width 512, depth 8, the ViT-B-32 text
   tower with random weights: the cost does not depend on the weights, and a GPU machine may
   have no internet) trains 25 steps, stops with a checkpoint, resumes and trains to step 50; the
   resumed run must end with the same weights as an uninterrupted one on the same device (checked
   with ``--check-resume``, which trains the 50 steps a second time);
3. bf16 autocast against fp32 on the same batch: the largest difference of the outputs and of the
   loss;
4. steps per second (the resumed half, warm), peak memory of a training step, and the projected
   time of one epoch of the paper configuration on Human3.6M (``make plan`` does the whole paper).

It needs neither DVC nor papermill: on a GPU machine without a package registry it runs as
``PYTHONPATH=src python3 -m poseprompt.tools.smoke`` with open_clip and its few missing dependencies
carried as wheels (README, "Running the paper on GPUs"). ``--tiny`` shrinks the model for a CPU
test. Results go to ``<out>/smoke.json`` and are printed.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

from poseprompt.config.sections import merge
from poseprompt.core.devices import autocast_for, device_name, pick_device, synchronize
from poseprompt.core.io import write_json

#: Model overrides of ``--tiny`` (a CPU test of the same code path).
TINY = dict(frames=27, width=32, depth=2, heads=2, context_dim=16, slot_dim=16, temporal_radius=6,
            prompt_length=4, text_tokens=2, prompt_encoder_layers=1, text_encoder={"arch": "pp-text-tiny"})

#: Human3.6M training frames in the paper configuration (S1, S5-S8, four cameras), for the projection.
H36M_TRAIN_FRAMES = 1_559_752


def smoke_params(tiny: bool = False, steps: int = 50) -> dict:
    from poseprompt.config.presets import preset_params
    p = preset_params("gpu-smoke")
    if tiny:
        p["model"] = merge(p["model"], TINY)
        p["data"]["synthetic"].update(frames_per_sequence=60)
        p["train"].update(batch_size=4)
    p["train"].update(max_steps=steps, checkpoint_every=steps // 2, progress=False)
    p["seeds"] = [0]
    p["variants"] = {"full": {}}
    return p


def _max_diff(a: dict, b: dict) -> float:
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


def run(out: str | Path, tiny: bool = False, steps: int = 50, device: str = "auto", check_resume: bool = False,
        log=print) -> dict:
    from poseprompt.config.params import variant_config
    from poseprompt.core.metrics import training_loss
    from poseprompt.data.format import PoseSequences
    from poseprompt.data.windows import PoseWindows, window_kwargs
    from poseprompt.model.checkpoint import load_state, read_checkpoint
    from poseprompt.stages.cost import measure_model
    from poseprompt.stages.prepare import prepare
    from poseprompt.stages.train import fit, init_model

    out = Path(out)
    params = smoke_params(tiny, steps)
    dev = pick_device(device)
    cfg = variant_config(params, "full")
    train_cfg = {**params["train"], "device": str(dev)}
    data_dir = out / "data"
    t0 = time.perf_counter()
    prepare(params["data"], data_dir, params["seed"])
    log(f"smoke: data in {time.perf_counter() - t0:.1f} s; model T={cfg.frames} D={cfg.width} depth={cfg.depth} "
        f"text {cfg.text_encoder.arch}; device {device_name(dev)}")
    kw = window_kwargs(params["data"])
    half = steps // 2

    t0 = time.perf_counter()
    first = fit(cfg, train_cfg, data_dir, out / "run", seed=0, window_kw=kw, stop_after=half, resume=False)
    synchronize(dev)
    t_first = time.perf_counter() - t0
    t0 = time.perf_counter()
    fit(cfg, train_cfg, data_dir, out / "run", seed=0, window_kw=kw, resume=True)
    synchronize(dev)
    t_second = time.perf_counter() - t0
    last = read_checkpoint(out / "run" / "state" / "last.pt")
    result = {"device": device_name(dev), "model": {k: cfg.to_dict()[k] for k in ("frames", "width", "depth", "heads")},
              "text_encoder": cfg.text_encoder.arch, "batch": params["train"]["batch_size"], "steps": steps,
              "stopped_at": first.get("stopped_at_step"), "resumed_to": last["train_state"]["global_step"],
              "seconds_first_half": t_first, "seconds_second_half": t_second,
              "steps_per_s": (steps - half) / t_second}
    if check_resume:
        fit(cfg, train_cfg, data_dir, out / "whole", seed=0, window_kw=kw, resume=False)
        whole = read_checkpoint(out / "whole" / "state" / "last.pt")
        result["resume_max_weight_diff"] = _max_diff(last["state_dict"], whole["state_dict"])

    # bf16 against fp32 on the same batch
    model = init_model(cfg, 0).to(dev).eval()
    load_state(model, last)
    windows = PoseWindows(PoseSequences.load(data_dir / "train.npz"), cfg.frames, stride=params["train"]["stride"],
                          mode="train", **kw)
    b = windows.gather(range(min(len(windows), params["train"]["batch_size"])))
    x, y = b["x"].to(dev), b["y"].to(dev)
    with torch.no_grad():
        p32 = model(x, b["texts"]).float()
        if model.cfg.uses_text:                 # as training runs it: the frozen tower stored in bf16
            model.text.compute_in(torch.bfloat16)
        with autocast_for(dev, "bf16")():
            p16 = model(x, b["texts"]).float()
    l32 = float(training_loss(p32, y)[0])
    l16 = float(training_loss(p16, y)[0])
    result.update({"bf16_max_abs_diff_mm": float((p32 - p16).abs().max()) * 1000.0,
                   "bf16_mean_abs_diff_mm": float((p32 - p16).abs().mean()) * 1000.0,
                   "loss_fp32": l32, "loss_bf16": l16})
    cost = measure_model(init_model(cfg, 0), batch=params["train"]["batch_size"], device=dev, repeats=2)
    result.update({"peak_mem_mb": cost["peak_mem_mb"], "peak_mem_method": cost["peak_mem_method"],
                   "train_step_ms_fp32": cost["train_step_ms"]})
    windows_h36m = H36M_TRAIN_FRAMES // 81                      # stride 81, the paper preset
    steps_epoch = windows_h36m // 16
    result["projected_epoch_h_h36m"] = steps_epoch / result["steps_per_s"] / 3600.0
    write_json(out / "smoke.json", result)
    log(f"smoke: {result['steps_per_s']:.2f} steps/s (batch {result['batch']}), peak {result['peak_mem_mb']:.0f} MB "
        f"({result['peak_mem_method']}); bf16 vs fp32: max {result['bf16_max_abs_diff_mm']:.2f} mm, loss "
        f"{l32:.4f} vs {l16:.4f}; resumed {result['stopped_at']} -> {result['resumed_to']}"
        + (f"; resume vs whole: max weight diff {result['resume_max_weight_diff']:.2e}" if check_resume else "")
        + f"; one epoch of Human3.6M at stride 81: {result['projected_epoch_h_h36m']:.2f} h")
    if not math.isfinite(l16) or not math.isfinite(l32):
        raise RuntimeError("smoke: the loss is not finite")
    return result


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="reports/gpu-smoke")
    ap.add_argument("--tiny", action="store_true", help="a small model (CPU test of the same code path)")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--check-resume", action="store_true", help="also train the steps uninterrupted and compare")
    args = ap.parse_args(argv)
    print(json.dumps(run(args.out, args.tiny, args.steps, args.device, args.check_resume), indent=2))


if __name__ == "__main__":
    main()
