"""The computation-cost table's measurements: every variant's trained checkpoint through
:func:`poseprompt.cost.measure_model` (the same measurement as ``make bench``)."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import torch

from ..checkpoint import load_checkpoint
from ..cost import measure_model
from ..devices import pick_device


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
