"""Computation cost of a model, measured: the one measurement behind ``make bench``, ``make plan``,
the GPU smoke run and the figures stage's cost table.

Per variant (the trained checkpoint; weights do not change the cost): parameters (trainable,
frozen, of which the text tower), FLOPs per frame (``torch.utils.flop_counter`` on one forward
pass: matrix products and attention, the usual convention; per clip divided by T), latency per
clip (forward passes in eval mode without gradients, batch ``batch``), time of one training step
(forward, backward, AdamW) and peak memory of a training step.

Peak memory of a training step: on CUDA ``torch.cuda.max_memory_allocated`` (the allocator's
peak, weights included). On a CPU there is no allocator statistic, and the process's resident
memory is dominated by the Python runtime and keeps freed memory in malloc arenas (measured: a
second variant in the same process showed no growth at all), so the tensors are counted instead:
weights and buffers + gradients + AdamW state + every tensor saved for the backward pass (unique
storages, via ``torch.autograd.graph.saved_tensors_hooks``), i.e. what a training step must hold
at the end of its forward pass. Exact and deterministic; it leaves out short-lived temporaries.

Timings are as good as the machine is quiet: the table says which device and how many threads.
"""
from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Mapping

import torch

from poseprompt.core.devices import device_name, pick_device, synchronize
from poseprompt.core.metrics import training_loss
from poseprompt.model.checkpoint import load_checkpoint
from poseprompt.model.lifter import PosePromptLifter


def _storages(tensors) -> dict[int, int]:
    return {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in tensors}


def training_tensor_bytes(model: PosePromptLifter, loss_fn, optimizer) -> tuple[int, int]:
    """(bytes held at the end of one training forward pass, bytes saved for backward only): weights,
    buffers, gradients and optimizer state plus the unique storages saved for backward. Runs one
    training step (forward, backward, update)."""
    own = _storages(list(model.parameters()) + list(model.buffers()))
    saved: dict[int, int] = {}

    def pack(t):
        st = t.untyped_storage()
        if st.data_ptr() not in own:
            saved[st.data_ptr()] = st.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = loss_fn()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    trainable = [p for p in model.parameters() if p.requires_grad]
    grads = sum(p.numel() * p.element_size() for p in trainable)
    state = sum(v.numel() * v.element_size() for st in optimizer.state.values() for v in st.values()
                if torch.is_tensor(v))
    activations = sum(saved.values())
    return sum(own.values()) + grads + state + activations, activations


def _median_time(fn, sync, repeats: int) -> float:
    """Seconds of one call of ``fn``: the median of ``repeats`` calls, each timed alone (a median,
    not a mean: one call slowed by another process or a first-time allocation moves a mean of three
    by a factor of ten, measured on this 2-core machine; it does not move a median)."""
    times = []
    for _ in range(max(1, int(repeats))):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return float(statistics.median(times))


def measure_model(model: PosePromptLifter, batch: int = 1, device: str | torch.device = "cpu",
                  repeats: int = 3, seed: int = 0) -> dict:
    """Cost of one model (moved to ``device``; its weights are changed by the training steps, so
    pass a model you do not need afterwards)."""
    from torch.utils.flop_counter import FlopCounterMode
    device = pick_device(device)
    model = model.to(device)
    cfg = model.cfg
    T, N = cfg.frames, model.skeleton.num_joints
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(batch, T, N, 3, generator=g) * 0.3).to(device)
    x[..., 2] = 1.0
    y = (torch.randn(batch, T, N, 3, generator=g) * 0.2).to(device)
    texts = {"action": ["walk"] * batch, "speed": ["normal"] * batch}
    def sync():
        synchronize(device)
    counts = model.parameter_counts()

    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model(x, texts)
    flops = fc.get_total_flops() / batch

    with torch.no_grad():
        model(x, texts)                                          # warm-up
        forward_s = _median_time(lambda: model(x, texts), sync, repeats)

    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    model.train()

    def step():
        loss, _ = training_loss(model(x, texts), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()                                                       # warm-up (allocates optimizer state)
    sync()
    weights_mb = sum(t.numel() * t.element_size() for t in list(model.parameters()) + list(model.buffers())) / 2**20
    step_s = _median_time(step, sync, repeats)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    held, activations = training_tensor_bytes(model, lambda: training_loss(model(x, texts), y)[0], opt)
    sync()
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**20
        method = "cuda max_memory_allocated"
    else:
        peak = held / 2**20
        method = "tensor accounting"
    model.eval()
    return {**counts, "flops_per_clip": flops, "flops_per_frame": flops / T, "latency_ms": forward_s / batch * 1e3,
            "forward_ms": forward_s * 1e3, "train_step_ms": step_s * 1e3, "peak_mem_mb": peak,
            "peak_mem_method": method, "activations_mb": activations / 2**20, "weights_mb": weights_mb,
            "batch": batch, "frames": T, "repeats": repeats, "device": str(device),
            "device_name": device_name(device), "threads": torch.get_num_threads()}


# ---- the cost table of the figures stage ----------------------------------------------------------


def measure_variants(checkpoints: Mapping[str, str | Path], batch: int = 1, device: str = "auto",
                     repeats: int = 3, threads: int = 0, log=None) -> dict[str, dict]:
    """``{variant: measurement}`` for the checkpoints, each loaded fresh (in the given order).

    ``threads`` > 0 sets torch's CPU threads during the measurement (restored afterwards): on a
    busy machine, more threads than free cores make every operation wait (measured: a small model
    60 times slower with 2 threads than with 1 while another process used both cores)."""
    dev = pick_device(device)
    before = torch.get_num_threads()
    if threads > 0:
        torch.set_num_threads(threads)
    try:
        return _measure_all(checkpoints, batch, dev, repeats, log)
    finally:
        torch.set_num_threads(before)


def _measure_all(checkpoints, batch, dev, repeats, log) -> dict[str, dict]:
    out = {}
    for v, path in checkpoints.items():
        model = load_checkpoint(path, map_location="cpu")
        out[v] = measure_model(model, batch, dev, repeats)
        del model
        if dev.type == "cuda":
            torch.cuda.empty_cache()
        if log:
            r = out[v]
            log(f"cost {v}: {r['flops_per_frame'] / 1e6:.2f} MFLOPs/frame, {r['latency_ms']:.1f} ms/clip, "
                f"train step {r['train_step_ms']:.1f} ms, peak {r['peak_mem_mb']:.0f} MB")
    return out
