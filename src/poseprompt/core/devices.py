"""Where computation runs: the one device helper of the package (training, evaluation, costs).

``device: auto`` is CUDA when present (the local rank's GPU under ``torchrun``), else the CPU;
any torch device string works (``cpu``, ``cuda``, ``cuda:1``). ``precision: auto`` is bf16
autocast on CUDA and fp32 elsewhere.
"""
from __future__ import annotations

import contextlib
import os
from typing import Callable

import torch

PRECISIONS = ("auto", "fp32", "bf16")


def pick_device(setting: str | torch.device = "auto") -> torch.device:
    if isinstance(setting, torch.device):
        return setting
    if setting == "auto":
        if not torch.cuda.is_available():
            return torch.device("cpu")
        import torch.distributed as dist
        if dist.is_available() and dist.is_initialized():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        return torch.device("cuda")
    return torch.device(setting)


def uses_bf16(device: torch.device, precision: str = "auto") -> bool:
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}; expected one of {list(PRECISIONS)}")
    return precision == "bf16" or (precision == "auto" and device.type == "cuda")


def autocast_for(device: torch.device, precision: str = "auto") -> Callable[[], contextlib.AbstractContextManager]:
    """A factory of autocast contexts for ``device`` (bf16 where :func:`uses_bf16`)."""
    enabled = uses_bf16(device, precision)
    return lambda: torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
