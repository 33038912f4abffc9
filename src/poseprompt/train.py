"""Training: one ``fit`` for every variant and dataset (driven by notebooks/02_train.ipynb).

* AdamW; learning rate ``lr * lr_decay ** epoch`` with an optional linear warm-up (per step);
* loss ``MPJPE + w_n N-MPJPE + w_v velocity`` (metrics.training_loss), on clips of T frames;
* horizontal flip augmentation (probability 1/2 per clip) and optional random occlusion of a body
  part over a frame span (perturbation augmentation);
* validation MPJPE on the validation split after every epoch (never the test split); the model
  kept is the best on validation (``select: val``) or the last epoch (``select: last``);
* checkpoints written atomically with optimizer, scheduler and RNG state, at the end of every
  epoch and every ``checkpoint_every`` steps; ``resume`` continues an interrupted run to the same
  result (the per-epoch data order and augmentation draws come from a generator seeded by
  ``(seed, epoch)``, so a resumed epoch replays them and skips the steps already done);
* DVCLive metrics per epoch (``dvc exp show``, ``dvc plots``), a tqdm bar with loss and clips/s;
* device chosen automatically (CUDA when present, with bf16 autocast), and data-parallel training
  over several processes (``torchrun``; NCCL on GPUs, gloo on CPUs): each process takes its share
  of the same global batch, so the result does not depend on the number of processes.

Files in ``out_dir`` (models/<variant>/): ``model.pt`` (the selected model), ``train_summary.json``,
and ``state/last.pt``, ``state/best.pt`` (resumable training state).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
import torch.distributed as dist
from tqdm import tqdm

from .augment import flip_pose, random_occlusion
from .checkpoint import load_state, read_checkpoint, save_checkpoint
from .config import ConfigError, ModelConfig, check_keys
from .data.format import PoseSequences
from .data.windows import PoseWindows
from .io import write_json
from .metrics import mpjpe, training_loss
from .model import PosePromptLifter, build_model

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10
    batch_size: int = 32            # global batch, split across processes
    lr: float = 5e-4
    lr_decay: float = 0.99          # per epoch
    warmup_steps: int = 0
    weight_decay: float = 0.01
    grad_clip: float = 1.0          # max gradient norm; 0 = off
    w_nmpjpe: float = 0.5
    w_velocity: float = 20.0
    stride: int = 9                 # frames between training windows
    flip: bool = True               # flip augmentation
    occlusion_prob: float = 0.0     # probability that a clip gets a random body part hidden
    val_batch_size: int = 64
    select: str = "val"             # val | last
    device: str = "auto"            # auto | cpu | cuda | cuda:1 ...
    precision: str = "auto"         # auto (bf16 autocast on CUDA) | fp32 | bf16
    gpus: int = 1                   # > 1: the notebook launches torchrun with this many processes
    checkpoint_every: int = 0       # steps between mid-epoch checkpoints; 0 = end of epoch only
    max_steps: int = 0              # stop after this many steps in all (0 = no limit; smoke runs)
    threads: int = 0                # torch CPU threads (0 = torch's default)
    progress: bool = True

    def __post_init__(self):
        if self.select not in ("val", "last"):
            raise ConfigError(f"train.select = {self.select!r}; expected 'val' or 'last'")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ConfigError(f"train.precision = {self.precision!r}; expected auto, fp32 or bf16")
        if self.batch_size < 1 or self.epochs < 1 or self.stride < 1:
            raise ConfigError("train.batch_size, train.epochs and train.stride must be positive")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | "TrainConfig") -> "TrainConfig":
        if isinstance(d, TrainConfig):
            return d
        check_keys("train", d, cls)
        return cls(**d)


# ---- data -------------------------------------------------------------------------------------------

def materialise(windows: PoseWindows) -> dict[str, Any]:
    """All windows as stacked tensors (x, y, mask) and per-window slot texts: batches are then
    plain index selections, cheap on a CPU and identical in every process."""
    items = [windows[i] for i in range(len(windows))]
    out = {k: torch.stack([it[k] for it in items]) for k in ("x", "y", "eval_mask")}
    out["texts"] = {k: [it["texts"][k] for it in items] for k in items[0]["texts"]} if items else {}
    out["seq"] = torch.tensor([int(it["seq"]) for it in items], dtype=torch.long)
    return out


def batch_of(data: dict, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict]:
    ids = idx.tolist()
    texts = {k: [v[i] for i in ids] for k, v in data["texts"].items()}
    return data["x"][idx], data["y"][idx], data["eval_mask"][idx], texts


def file_digest(path: Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---- devices and processes --------------------------------------------------------------------------

def pick_device(setting: str) -> torch.device:
    if setting == "auto":
        if dist.is_available() and dist.is_initialized() and torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(setting)


def init_distributed() -> tuple[int, int]:
    """(rank, world size); initialises the process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _barrier(world: int):
    if world > 1:
        dist.barrier()


# ---- RNG state --------------------------------------------------------------------------------------

def rng_state() -> dict:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict):
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 100_003 + epoch)


# ---- evaluation during training ---------------------------------------------------------------------

@torch.no_grad()
def validation_mpjpe(model: PosePromptLifter, data: dict, batch_size: int, device, autocast) -> float:
    """Mean MPJPE (mm) over the scored frames of the validation windows."""
    model.eval()
    total, count = 0.0, 0
    n = data["x"].shape[0]
    for i in range(0, n, batch_size):
        idx = torch.arange(i, min(n, i + batch_size))
        x, y, m, texts = batch_of(data, idx)
        with autocast():
            pred = model(x.to(device), texts).float()
        err = mpjpe(pred, y.to(device), reduce=False)          # (B, T), metres
        mask = m.to(device)
        total += float((err * mask).sum()) * 1000.0
        count += int(mask.sum())
    return total / max(count, 1)


# ---- the training run -------------------------------------------------------------------------------

#: The code a training run depends on (the train stages of dvc.yaml list the same files).
TRAINING_CODE = ("model", "train.py", "metrics.py", "augment.py", "checkpoint.py", "config.py",
                 "data/windows.py", "assets/pp-text-tiny.json")


def code_digest() -> str:
    """Digest of the training code: a resumed or reused run must also have the same code."""
    pkg = Path(__file__).resolve().parent
    h = hashlib.sha1()
    for entry in TRAINING_CODE:
        p = pkg / entry
        for path in sorted(p.rglob("*.py")) if p.is_dir() else [p]:
            h.update(path.read_bytes())
    return h.hexdigest()


def run_fingerprint(model_cfg: ModelConfig, train_cfg: TrainConfig, seed: int, data_digest: str,
                    window_kw: Mapping) -> str:
    """What makes two runs the same run: configuration, seed, data and code (not the device,
    thread count or progress display)."""
    keep = {k: v for k, v in asdict(train_cfg).items() if k not in ("progress", "device", "threads")}
    blob = json.dumps([model_cfg.to_dict(), keep, seed, data_digest, dict(window_kw), code_digest()],
                      sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()


def fit(model_cfg: ModelConfig | Mapping, train_cfg: TrainConfig | Mapping, data_dir: str | Path,
        out_dir: str | Path, *, seed: int = 0, window_kw: Mapping | None = None, live_dir: str | Path | None = None,
        resume: str | bool = "auto", stop_after: int | None = None, params: Mapping | None = None) -> dict:
    """Train one model; returns a summary (also written to ``out_dir/train_summary.json``).

    ``resume``: "auto" continues ``out_dir/state/last.pt`` when it belongs to the same run (same
    configuration, seed and data) and starts afresh otherwise; True requires it; False ignores it.
    ``stop_after``: stop (as if interrupted) after this many steps of this call, with a checkpoint.
    """
    model_cfg, cfg = ModelConfig.from_dict(model_cfg), TrainConfig.from_dict(train_cfg)
    window_kw = dict(window_kw or {})
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    state_dir = out_dir / "state"
    rank, world = init_distributed()
    main_proc = rank == 0
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = pick_device(cfg.device)
    use_bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and device.type == "cuda")

    def autocast():
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16)

    if cfg.batch_size % world:
        raise ConfigError(f"train.batch_size = {cfg.batch_size} must be divisible by the {world} processes")

    # -- data
    paths = {s: data_dir / f"{s}.npz" for s in ("train", "val")}
    train_split, val_split = PoseSequences.load(paths["train"]), PoseSequences.load(paths["val"])
    T = model_cfg.frames
    train_data = materialise(PoseWindows(train_split, T, stride=cfg.stride, mode="train", **window_kw))
    val_data = materialise(PoseWindows(val_split, T, stride=T, mode="test", **window_kw))
    n_train = train_data["x"].shape[0]
    steps_per_epoch = n_train // cfg.batch_size
    if steps_per_epoch < 1:
        raise ConfigError(f"{paths['train']}: {n_train} training windows of T={T} frames (stride {cfg.stride}) "
                          f"are fewer than one batch of {cfg.batch_size}")
    digest = file_digest(paths["train"]) + file_digest(paths["val"])
    fingerprint = run_fingerprint(model_cfg, cfg, seed, digest, window_kw)

    # -- model, optimiser, schedule
    torch.manual_seed(seed)
    model = build_model(model_cfg).to(device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=cfg.lr, weight_decay=cfg.weight_decay)

    def lr_factor(step: int) -> float:
        warm = min(1.0, (step + 1) / cfg.warmup_steps) if cfg.warmup_steps else 1.0
        return warm * cfg.lr_decay ** (step // steps_per_epoch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)

    # -- resume
    start = {"epoch": 0, "step_in_epoch": 0, "global_step": 0, "best_val": math.inf, "best_epoch": -1,
             "history": [], "finished": False, "epoch_sums": [0, 0.0, 0.0, 0]}
    last = state_dir / "last.pt"
    if resume and last.is_file():
        payload = read_checkpoint(last, map_location=device)
        ts = payload.get("train_state") or {}
        if ts.get("fingerprint") == fingerprint:
            load_state(model, payload, str(last))
            opt.load_state_dict(payload["optimizer"])
            sched.load_state_dict(payload["scheduler"])
            set_rng_state(ts["rng"])
            start = {k: ts.get(k, start[k]) for k in start}
            if main_proc:
                log.info("resuming %s at epoch %d step %d", last, start["epoch"], start["step_in_epoch"])
        elif resume is True:
            raise RuntimeError(f"{last}: belongs to another run (configuration, seed or data differ); "
                               f"delete it or train with resume: auto")
        elif main_proc:
            log.info("%s belongs to another run: training from scratch", last)
    elif resume is True:
        raise FileNotFoundError(f"{last}: nothing to resume")
    if start["finished"]:
        if main_proc:
            log.info("%s: this run is already complete; re-exporting its model and logs", last)
            if live_dir is not None:                    # DVC removed the stage's outputs: write them again
                _open_live(live_dir, model, seed, start["history"]).end()
        summary = _export(out_dir, state_dir, cfg, start, fingerprint, model_cfg, params, n_train, resumed=True)
        _barrier(world)
        return summary

    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)

    live = None
    if main_proc and live_dir is not None:
        live = _open_live(live_dir, model, seed, start["history"])

    def save(name: str, epoch: int, step_in_epoch: int, finished: bool = False):
        if not main_proc:
            return
        ts = {"epoch": epoch, "step_in_epoch": step_in_epoch, "global_step": global_step, "best_val": best_val,
              "best_epoch": best_epoch, "history": history, "finished": finished, "rng": rng_state(),
              "fingerprint": fingerprint,
              # running sums of the unfinished epoch: a resumed epoch logs the same means
              "epoch_sums": [seen, loss_sum, mpjpe_sum, nb] if step_in_epoch else [0, 0.0, 0.0, 0]}
        save_checkpoint(state_dir / name, model, optimizer=opt, scheduler=sched, train_state=ts, params=params)

    global_step, best_val, best_epoch, history = (start["global_step"], start["best_val"], start["best_epoch"],
                                                  list(start["history"]))
    steps_this_call = 0
    per_rank = cfg.batch_size // world
    for epoch in range(start["epoch"], cfg.epochs):
        g = epoch_generator(seed, epoch)
        perm = torch.randperm(n_train, generator=g)
        flips = torch.rand(n_train, generator=g) < (0.5 if cfg.flip else 0.0)
        occ_seed = torch.randint(0, 2**31 - 1, (n_train,), generator=g)
        first = start["step_in_epoch"] if epoch == start["epoch"] else 0
        net.train()
        bar = tqdm(range(first, steps_per_epoch), desc=f"epoch {epoch + 1}/{cfg.epochs}", mininterval=2.0,
                   disable=not (cfg.progress and main_proc), leave=False)
        t_epoch = time.time()
        seen, loss_sum, mpjpe_sum, nb = start["epoch_sums"] if first else (0, 0.0, 0.0, 0)
        seen0 = seen                                    # clips/s counts this call's clips only
        for step in bar:
            idx = perm[step * cfg.batch_size:(step + 1) * cfg.batch_size][rank * per_rank:(rank + 1) * per_rank]
            x, y, mask, texts = batch_of(train_data, idx)
            f = flips[idx]
            x[f], y[f] = flip_pose(x[f], model.skeleton), flip_pose(y[f], model.skeleton)
            if cfg.occlusion_prob > 0:
                x = random_occlusion(x, occ_seed[idx], cfg.occlusion_prob, model.skeleton)
            x, y, mask = x.to(device), y.to(device), mask.to(device)
            with autocast():
                pred = net(x, texts)
            loss, terms = training_loss(pred.float(), y, cfg.w_nmpjpe, cfg.w_velocity, mask=mask)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(trainable, cfg.grad_clip)
            opt.step()
            sched.step()
            global_step += 1
            steps_this_call += 1
            seen += cfg.batch_size
            loss_sum += float(terms["loss"])
            mpjpe_sum += float(terms["mpjpe"]) * 1000.0
            nb += 1
            bar.set_postfix(loss=f"{loss_sum / nb:.4f}", mpjpe_mm=f"{mpjpe_sum / nb:.1f}",
                            clips_s=f"{(seen - seen0) / max(time.time() - t_epoch, 1e-9):.0f}")
            done_epoch = step + 1 == steps_per_epoch
            if cfg.checkpoint_every and global_step % cfg.checkpoint_every == 0 and not done_epoch:
                save("last.pt", epoch, step + 1)
            stop_now = (stop_after is not None and steps_this_call >= stop_after) or \
                       (cfg.max_steps and global_step >= cfg.max_steps)
            if stop_now and not done_epoch:
                save("last.pt", epoch, step + 1)
                _barrier(world)
                if live:
                    live.end()
                return {"stopped_at_step": global_step, "epoch": epoch}
        bar.close()
        # -- end of epoch: validation, selection, checkpoint, logging
        if main_proc:
            val = validation_mpjpe(model, val_data, cfg.val_batch_size, device, autocast)
            if val < best_val:
                best_val, best_epoch = val, epoch
            rec = {"epoch": epoch + 1, "step": global_step, "train_loss": loss_sum / max(nb, 1),
                   "train_mpjpe_mm": mpjpe_sum / max(nb, 1), "val_mpjpe_mm": val, "lr": opt.param_groups[0]["lr"],
                   "epoch_s": time.time() - t_epoch, "clips_per_s": (seen - seen0) / max(time.time() - t_epoch, 1e-9)}
            history.append(rec)
            log.info("epoch %d: train loss %.4f, train MPJPE %.1f mm, val MPJPE %.1f mm (%.0f s)", epoch + 1,
                     rec["train_loss"], rec["train_mpjpe_mm"], val, rec["epoch_s"])
            if cfg.progress:
                print(f"epoch {epoch + 1}/{cfg.epochs}: loss {rec['train_loss']:.4f}  train MPJPE "
                      f"{rec['train_mpjpe_mm']:.1f} mm  val MPJPE {val:.1f} mm  {rec['clips_per_s']:.0f} clips/s",
                      flush=True)
            if live:
                _log_epoch(live, rec)
            finished = epoch + 1 == cfg.epochs
            if best_epoch == epoch:
                save("best.pt", epoch + 1, 0, finished)
            save("last.pt", epoch + 1, 0, finished)
        _barrier(world)
        stop_now = (stop_after is not None and steps_this_call >= stop_after) or \
                   (cfg.max_steps and global_step >= cfg.max_steps)
        if stop_now and epoch + 1 < cfg.epochs:
            if live:
                live.end()
            return {"stopped_at_step": global_step, "epoch": epoch + 1}
    if live:
        live.end()
    summary = None
    if main_proc:
        final = {"best_val": best_val, "best_epoch": best_epoch, "history": history, "global_step": global_step}
        summary = _export(out_dir, state_dir, cfg, final, fingerprint, model_cfg, params, n_train, resumed=False)
    _barrier(world)
    return summary


LIVE_METRICS = ("train_loss", "train_mpjpe_mm", "val_mpjpe_mm", "lr")


def _log_epoch(live, rec: Mapping) -> None:
    for k in LIVE_METRICS:
        live.log_metric(k.replace("_", "/", 1) if k.startswith(("train_", "val_")) else k, rec[k])
    live.next_step()


def _open_live(live_dir: str | Path, model, seed: int, history: list):
    """A fresh DVCLive log that first replays the epochs already in the checkpoint's history.

    The logs are a function of the history alone: a resumed run (DVC deletes a stage's outputs
    before it runs it again) or a re-exported finished one writes the same curves as a run that
    was never interrupted."""
    from dvclive import Live
    live = Live(dir=str(live_dir), resume=False, save_dvc_exp=False, dvcyaml=None, report=None)
    live.log_params({"variant_summary": model.summary().splitlines()[1].strip(), "seed": seed,
                     "trainable_parameters": model.parameter_counts()["trainable"]})
    for rec in history:
        _log_epoch(live, rec)
    return live


def _export(out_dir: Path, state_dir: Path, cfg: TrainConfig, st: Mapping, fingerprint: str,
            model_cfg: ModelConfig, params, n_train: int, resumed: bool) -> dict:
    """Copy the selected checkpoint to ``model.pt`` and write the summary (rank 0 only)."""
    chosen = state_dir / ("best.pt" if cfg.select == "val" else "last.pt")
    if not chosen.is_file():
        chosen = state_dir / "last.pt"
    target = out_dir / "model.pt"
    tmp = target.with_name(".model.pt.tmp")
    shutil.copyfile(chosen, tmp)
    os.replace(tmp, target)
    summary = {"model": str(target), "selected": cfg.select, "selected_epoch": int(st["best_epoch"]) + 1
               if cfg.select == "val" else len(st["history"]), "best_val_mpjpe_mm": st["best_val"],
               "epochs": cfg.epochs, "steps": st["global_step"], "train_windows": n_train,
               "fingerprint": fingerprint, "history": st["history"], "reused_finished_run": resumed,
               "model_config": model_cfg.to_dict(), "selection_split": "val"}
    write_json(out_dir / "train_summary.json", summary)
    return summary


# ---- entry point for the notebook and torchrun ------------------------------------------------------

def run_variant(params: Mapping, variant: str, root: str | Path = ".", resume: str | bool = "auto") -> dict:
    """Train ``variant`` with the sections of params.yaml; paths relative to ``root``."""
    from .params import variant_config
    root = Path(root)
    data = params["data"]
    return fit(variant_config(params, variant), params["train"], root / data["out_dir"],
               root / "models" / variant, seed=int(params["seed"]), window_kw=window_kwargs(data),
               live_dir=root / "dvclive" / "train" / variant, resume=resume,
               params={k: params[k] for k in ("seed", "data", "model", "train")} | {"variant": variant})


def window_kwargs(data_section: Mapping) -> dict:
    w = dict(data_section.get("windows") or {})
    if "speed_thresholds" in w:
        w["speed_thresholds"] = tuple(w["speed_thresholds"])
    return w


def launch(params_file: str | Path, variant: str, gpus: int, root: str | Path = ".") -> None:
    """Run training under torchrun with ``gpus`` processes (called by the notebook)."""
    import subprocess
    import sys
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={gpus}",
           "-m", "poseprompt.train", "--params", str(params_file), "--variant", variant, "--root", str(root)]
    subprocess.run(cmd, check=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description="train one variant of params.yaml")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--variant", required=True)
    ap.add_argument("--root", default=".")
    args = ap.parse_args(argv)
    from .params import load_params
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    run_variant(load_params(args.params), args.variant, args.root)
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
