"""Seeds side by side on a CPU: one process per seed, the cores shared out between them.

The default model is small: a training step is bound by per-operator overhead, not by
arithmetic, so a second thread buys little (measured on 2 cores, default ``full`` at batch 8:
64 ms per step with 2 threads, 72 ms with 1). Two seeds in two one-thread processes therefore
do nearly twice the work of one two-thread process (measured: 3 seeds of 100 steps in 23.6 s
against 36 s one after another). ``train.seed_procs`` chooses the number of processes; 0 (the default) means: on a GPU, one (the
seeds share the device one after another); on a CPU, one per core, or one per seed where the seeds
do not fill the rounds evenly and sharing the cores is cheaper than a last round with idle cores
(:func:`seed_processes`). Three seeds on two cores thus train in three processes at once: the
cores time-share them at a cost of ``OVERSUBSCRIBED_COST`` (measured on 2 cores, default ``full``,
400 steps: three processes 68.4 s, two processes in two rounds 76.9 s, i.e. 1.18 x the 1.5 rounds
of ideal sharing) instead of a second round in which one core waits. Evaluation is not
spread out this way: it is batched and keeps the cores busy on its own (measured: 3 seeds in 35 s
one after another, 38 s in parallel processes).

Every seed is still its own run (its own RNG, checkpoint, resume state and DVCLive folder), so
results do not depend on how many processes ran them, except for the floating-point order of a
different thread count (which the run fingerprint ignores, as it ignores ``train.threads``).
Workers are started with ``spawn``: nothing of the parent's state (an open DVCLive, CUDA) is
inherited, and an exception in a worker is raised in the parent with the seed that failed.
"""
from __future__ import annotations

import math
import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Iterable, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def cpu_cores() -> int:
    """Cores this process may run on (the affinity mask, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:                      # not on Linux
        return max(1, os.cpu_count() or 1)


# Wall time of n one-thread processes time-sharing c < n cores, in units of one process alone:
# n / c * OVERSUBSCRIBED_COST (cache and scheduling losses; measured, see the module docstring).
OVERSUBSCRIBED_COST = 1.18


def seed_rounds(n_seeds: int, procs: int, cores: int) -> float:
    """Wall time of ``n_seeds`` equal seed runs in ``procs`` one-thread processes on ``cores``
    cores, in units of one run alone on one core: whole rounds while the processes fit the cores,
    time-shared cores (at ``OVERSUBSCRIBED_COST``) when there are more processes than cores."""
    procs = max(1, min(procs, n_seeds))
    if procs <= cores:
        return float(math.ceil(n_seeds / procs))
    return math.ceil(n_seeds / procs) * procs / cores * OVERSUBSCRIBED_COST


def seed_processes(requested: int, n_seeds: int, device: str = "auto") -> int:
    """How many processes run ``n_seeds`` seeds: ``requested`` (> 0) capped at the seed count;
    0 = automatic (CUDA or MPS: 1; CPU: one per core, or one per seed when that is faster by
    :func:`seed_rounds`, e.g. 3 seeds on 2 cores). Always 1 under torchrun (``train.gpus > 1``:
    the processes are the data-parallel ranks)."""
    if requested < 0:
        raise ValueError(f"seed_procs = {requested}; expected 0 (automatic) or a positive number")
    if n_seeds < 2 or int(os.environ.get("WORLD_SIZE", "1")) > 1:   # one seed, or under torchrun
        return 1
    if requested:
        return min(requested, n_seeds)
    from poseprompt.core.devices import pick_device
    if pick_device(device).type != "cpu":
        return 1
    cores = cpu_cores()
    if n_seeds > cores and seed_rounds(n_seeds, n_seeds, cores) < seed_rounds(n_seeds, cores, cores):
        return n_seeds
    return min(n_seeds, cores)


def _init_worker(threads: int) -> None:
    import torch
    torch.set_num_threads(threads)


def map_seeds(fn: Callable[[T], R], items: Iterable[T], procs: int, threads: int = 0) -> list[R]:
    """``[fn(x) for x in items]``, in ``procs`` spawned processes when ``procs > 1`` (results in
    the order of ``items``). ``threads``: torch threads per process (0: the cores divided by
    ``procs``, at least 1). ``fn`` must be a module-level function (it is pickled)."""
    items = list(items)
    if procs <= 1 or len(items) < 2:
        return [fn(x) for x in items]
    threads = threads or max(1, cpu_cores() // procs)
    with ProcessPoolExecutor(min(procs, len(items)), mp_context=mp.get_context("spawn"),
                             initializer=_init_worker, initargs=(threads,)) as pool:
        return list(pool.map(fn, items))
