"""Several variants at once, one per GPU: ``make paper-parallel GPUS=8`` (``python -m poseprompt.tools.parallel``).

``dvc repro`` runs the stages one after another, so on a machine with N GPUs it would use one. This
runner trains (and then evaluates) the variants of params.yaml concurrently, one process per
device (``CUDA_VISIBLE_DEVICES`` set per process; a device takes the next variant as soon as it is
free), with exactly the code the DVC stages run (``python -m poseprompt.stages.train`` / ``.evaluate``:
every seed of the variant, resumable). Then ``dvc commit`` records the finished stages in dvc.lock,
and ``dvc repro`` runs what is left (method, figures) and reports nothing else to do:

    dvc repro prepare && python -m poseprompt.tools.parallel --gpus 8 && dvc repro

An interrupted run is restarted with the same command: finished seeds are re-exported from their
checkpoints in seconds, an unfinished one resumes. Each process logs to
``reports/parallel/<stage>_<variant>.log``. ``--devices cpu`` runs processes on the CPU (tests).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence


def schedule(jobs: Sequence[tuple[str, list[str]]], devices: Sequence[str], root: Path, log=print,
             poll_s: float = 0.5) -> dict[str, int]:
    """Run ``jobs`` (name, argv) with at most one job per device at a time; returns exit codes."""
    logs = root / "reports" / "parallel"
    logs.mkdir(parents=True, exist_ok=True)
    todo = list(jobs)
    running: dict[str, tuple[str, subprocess.Popen, object]] = {}
    codes: dict[str, int] = {}
    free = list(devices)
    while todo or running:
        while todo and free:
            name, argv = todo.pop(0)
            dev = free.pop(0)
            env = dict(os.environ)
            if dev != "cpu":
                env["CUDA_VISIBLE_DEVICES"] = dev
            fh = open(logs / f"{name}.log", "w")
            running[name] = (dev, subprocess.Popen(argv, cwd=root, env=env, stdout=fh, stderr=subprocess.STDOUT), fh)
            log(f"started {name} on {'GPU ' + dev if dev != 'cpu' else 'the CPU'}")
        for name, (dev, proc, fh) in list(running.items()):
            if proc.poll() is not None:
                fh.close()
                codes[name] = proc.returncode
                free.append(dev)
                del running[name]
                log(f"{'finished' if proc.returncode == 0 else 'FAILED'} {name} (exit {proc.returncode}); "
                    f"log: reports/parallel/{name}.log")
        time.sleep(poll_s)
    return codes


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gpus", type=int, default=0, help="number of GPUs (default: all visible)")
    ap.add_argument("--devices", help="comma-separated device list instead, e.g. 0,1,2 or cpu,cpu")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--root", default=".")
    ap.add_argument("--stages", default="train,evaluate", help="train, evaluate or both (in that order)")
    ap.add_argument("--no-commit", action="store_true", help="do not `dvc commit` the finished stages")
    args = ap.parse_args(argv)
    import torch

    from poseprompt.config.params import load_params
    root = Path(args.root).resolve()
    params = load_params(root / args.params)
    if args.devices:
        devices = args.devices.split(",")
    else:
        n = args.gpus or torch.cuda.device_count()
        if n < 1:
            raise SystemExit("no GPU visible: give --devices cpu,cpu to run processes on the CPU")
        devices = [str(i) for i in range(n)]
    failed = []
    for stage in args.stages.split(","):
        module = {"train": "poseprompt.stages.train", "evaluate": "poseprompt.stages.evaluate"}[stage]
        jobs = [(f"{stage}_{v}", [sys.executable, "-m", module, "--params", args.params, "--variant", v,
                                  "--root", str(root)]) for v in params["variants"]]
        codes = schedule(jobs, devices, root)
        bad = [n for n, c in codes.items() if c]
        failed += bad
        if bad:
            print(f"{stage}: {len(bad)} of {len(jobs)} failed: {bad}", file=sys.stderr)
            break
        if not args.no_commit:
            names = [f"{stage}@{v}" for v in params["variants"]]
            import shutil
            dvc = shutil.which("dvc") or str(Path(sys.executable).parent / "dvc")
            subprocess.run([dvc, "commit", "-f", *names], cwd=root, check=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
