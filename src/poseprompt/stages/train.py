"""Training: one ``fit`` for every variant, seed and dataset (driven by notebooks/02_train.ipynb).

* AdamW in groups (matrices decay; vectors, norms and gates do not; the context-pooling
  parameters have their own learning rate ``lr_context`` x ``lr``, the band centres in units of the
  largest graph frequency); learning rate
  ``lr * lr_decay ** epoch`` with an optional linear warm-up (per step);
* loss ``MPJPE + w_n N-MPJPE + w_v velocity`` (metrics.training_loss), on clips of T frames;
* batches gathered from the frame arrays by an index of (sequence, start) windows
  (:meth:`PoseWindows.gather`): memory grows with frames, not with windows x T;
* horizontal flip augmentation (probability 1/2 per clip) and missing joints (``train.occlusion``:
  single joints and limbs hidden over short frame spans in a fraction of the clips, augment.py);
* validation MPJPE on the validation split after every epoch (never the test split); the model
  kept is the best on validation (``select: val``) or the last epoch (``select: last``);
* checkpoints written atomically with optimizer, scheduler and RNG state, at the end of every
  epoch and every ``checkpoint_every`` steps; ``resume`` continues an interrupted run to the same
  result (the per-epoch data order and augmentation draws come from a generator seeded by
  ``(seed, epoch)``, so a resumed epoch replays them and skips the steps already done);
* the component audit's training-time numbers: gradient-to-weight ratios of the new components
  every ``log_every`` steps, the initial values of their parameters and the factor by which weight
  decay alone shrinks a matrix (poseprompt/stages/groups.py);
* DVCLive metrics per epoch; progress in place when a person watches a terminal, one line per
  epoch when the output is a log (papermill under ``dvc repro``, CI);
* device chosen automatically (CUDA when present: bf16 autocast, fused AdamW, no host-device
  synchronisation inside a step except every ``log_every`` steps), and data-parallel training over
  several processes (``torchrun``; NCCL on GPUs, gloo on CPUs): each process takes its share of the
  same global batch, so the result does not depend on the number of processes.

Files in ``out_dir`` (models/<variant>/seed<k>/): ``model.pt`` (the selected model),
``train_summary.json``, and ``state/last.pt``, ``state/best.pt`` (resumable training state).

``fit`` reads in named steps: :func:`setup` (devices, data, fingerprint, model, optimiser),
:func:`restore` (resume), :func:`train_epoch`, :func:`end_epoch` (validation, selection,
checkpoint, logging) and :func:`export`.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
import torch.distributed as dist

from poseprompt.config.sections import ConfigError, ModelConfig, TrainConfig
from poseprompt.core.devices import autocast_for, pick_device, uses_bf16
from poseprompt.core.io import write_json
from poseprompt.core.metrics import mpjpe, training_loss
from poseprompt.core.paths import seed_dir
from poseprompt.data.augment import flip_pose, random_occlusion
from poseprompt.data.format import PoseSequences
from poseprompt.data.windows import PoseWindows, window_kwargs
from poseprompt.model.checkpoint import load_state, read_checkpoint, save_checkpoint
from poseprompt.model.lifter import PosePromptLifter, build_model
from poseprompt.stages import groups
from poseprompt.stages.optim import lr_factor, param_groups

log = logging.getLogger(__name__)


# ---- small helpers ----------------------------------------------------------------------------------

def file_digest(path: Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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


def shows_progress_bar(cfg: TrainConfig) -> bool:
    """A bar redrawn in place only when a person watches a terminal; under papermill or CI the
    output is a log, and a bar would print a line per refresh."""
    return cfg.progress and sys.stderr.isatty()


# ---- code and run fingerprints ----------------------------------------------------------------------

def code_digest() -> str:
    """Digest of the code a training run depends on (the import closure of this module in the
    package, computed by :mod:`poseprompt.core.closure`): a resumed or reused run must have the same code."""
    from poseprompt.core.closure import SRC, module_code
    h = hashlib.sha1()
    for rel in module_code("poseprompt.stages.train"):           # not __name__: "__main__" under python -m
        h.update(rel.encode())
        h.update((SRC / rel).read_bytes())
    return h.hexdigest()


def run_fingerprint(model_cfg: ModelConfig, train_cfg: TrainConfig, seed: int, data_digest: str,
                    window_kw: Mapping) -> str:
    """What makes two runs the same run: configuration, seed, data and code (not the device,
    thread count, number of seed processes, progress display or logging interval)."""
    skip = ("progress", "device", "threads", "seed_procs", "log_every", "compile")
    keep = {k: v for k, v in asdict(train_cfg).items() if k not in skip}
    blob = json.dumps([model_cfg.to_dict(), keep, seed, data_digest, dict(window_kw), code_digest()],
                      sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()


# ---- the state of a run -----------------------------------------------------------------------------

@dataclass
class TrainState:
    """Everything that changes during a run besides weights, optimiser and scheduler (checkpointed
    as plain containers, so a checkpoint loads with ``weights_only=True``)."""
    epoch: int = 0                      # epochs completed
    step_in_epoch: int = 0              # steps done in the unfinished epoch
    global_step: int = 0
    best_val: float = math.inf
    best_epoch: int = -1
    history: list = field(default_factory=list)
    finished: bool = False
    decay_product: float = 1.0          # prod_t (1 - lr_t wd): what decay alone does to a matrix
    epoch_sums: dict = field(default_factory=dict)   # running sums of the unfinished epoch

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> "TrainState":
        names = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in names})


def _fresh_sums() -> dict:
    return {"clips": 0, "steps": 0, "loss": 0.0, "mpjpe_mm": 0.0, "ratio_n": 0, "ratio": {}}


@dataclass
class Run:
    """What :func:`setup` builds for one training run."""
    cfg: TrainConfig
    model_cfg: ModelConfig
    seed: int
    out_dir: Path
    params: Mapping | None
    rank: int
    world: int
    device: torch.device
    autocast: Any
    train: PoseWindows
    val: PoseWindows
    steps_per_epoch: int
    fingerprint: str
    model: PosePromptLifter
    net: torch.nn.Module
    opt: torch.optim.Optimizer
    sched: Any
    init_state: dict

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def state_dir(self) -> Path:
        return self.out_dir / "state"


def init_model(model_cfg: ModelConfig, seed: int) -> PosePromptLifter:
    """The model at initialisation for ``seed`` (the text tower is seeded on its own)."""
    torch.manual_seed(seed)
    return build_model(model_cfg)


def setup(model_cfg, train_cfg, data_dir, out_dir, seed: int, window_kw: Mapping, params) -> Run:
    """Devices and processes, the data index, the run fingerprint, the model and its optimiser."""
    model_cfg, cfg = ModelConfig.from_dict(model_cfg), TrainConfig.from_dict(train_cfg)
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    rank, world = init_distributed()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = pick_device(cfg.device)
    if cfg.batch_size % world:
        raise ConfigError(f"train.batch_size = {cfg.batch_size} must be divisible by the {world} processes")
    paths = {s: data_dir / f"{s}.npz" for s in ("train", "val")}
    T = model_cfg.frames
    train_seqs = PoseSequences.load(paths["train"])
    train = PoseWindows(train_seqs, T, stride=cfg.stride, mode="train", **window_kw)
    # the checkpoint records the frame rate it was trained at (inference resamples a video to it);
    # None when the training sequences keep different rates
    rates = sorted({round(float(f), 6) for f in train_seqs.fps})
    params = {**(params or {}), "data": {**((params or {}).get("data") or {}),
                                         "fps": rates[0] if len(rates) == 1 else None}}
    val = PoseWindows(PoseSequences.load(paths["val"]), T, stride=T, mode="test", **window_kw)
    steps_per_epoch = len(train) // cfg.batch_size
    if steps_per_epoch < 1:
        raise ConfigError(f"{paths['train']}: {len(train)} training windows of T={T} frames (stride {cfg.stride}) "
                          f"are fewer than one batch of {cfg.batch_size}")
    fingerprint = run_fingerprint(model_cfg, cfg, seed, file_digest(paths["train"]) + file_digest(paths["val"]),
                                  window_kw)
    model = init_model(model_cfg, seed)
    init = groups.init_state(model)
    model = model.to(device)
    if model.cfg.uses_text and uses_bf16(device, cfg.precision):     # bf16 autocast: the frozen tower stored in bf16
        model.text.compute_in(torch.bfloat16)
    fused = {"fused": True} if device.type == "cuda" else {}
    opt = torch.optim.AdamW(param_groups(model, cfg), lr=cfg.lr, weight_decay=cfg.weight_decay, **fused)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(cfg, steps_per_epoch, s))
    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if cfg.compile:
        net = torch.compile(net)
    return Run(cfg, model_cfg, seed, out_dir, params, rank, world, device, autocast_for(device, cfg.precision),
               train, val, steps_per_epoch, fingerprint, model, net, opt, sched, init)


def restore(run: Run, resume: str | bool) -> TrainState:
    """The state to continue from: ``state/last.pt`` when it belongs to this run, else a fresh one.

    ``resume``: "auto" continues a matching checkpoint and starts afresh otherwise; True requires
    one; False ignores it."""
    last = run.state_dir / "last.pt"
    if not resume or not last.is_file():
        if resume is True:
            raise FileNotFoundError(f"{last}: nothing to resume")
        return TrainState()
    payload = read_checkpoint(last, map_location=run.device)
    ts = payload.get("train_state") or {}
    if ts.get("fingerprint") != run.fingerprint:
        if resume is True:
            raise RuntimeError(f"{last}: belongs to another run (configuration, seed, data or code differ); "
                               f"delete it or train with resume: auto")
        if run.main:
            log.info("%s belongs to another run: training from scratch", last)
        return TrainState()
    load_state(run.model, payload, str(last))
    run.opt.load_state_dict(payload["optimizer"])
    run.sched.load_state_dict(payload["scheduler"])
    set_rng_state(ts["rng"])
    state = TrainState.from_dict(ts)
    if run.main:
        log.info("resuming %s at epoch %d step %d", last, state.epoch, state.step_in_epoch)
    return state


def save(run: Run, state: TrainState, name: str) -> None:
    """Checkpoint the run (rank 0 only): weights, optimiser, scheduler, RNG and the state."""
    if not run.main:
        return
    ts = {**state.to_dict(), "rng": rng_state(), "fingerprint": run.fingerprint,
          "decay_change": 1.0 - state.decay_product}
    save_checkpoint(run.state_dir / name, run.model, optimizer=run.opt, scheduler=run.sched, train_state=ts,
                    params=run.params, init_state=run.init_state)


# ---- one epoch --------------------------------------------------------------------------------------

def _batch(run: Run, idx: torch.Tensor, flips: torch.Tensor, occ_seeds: torch.Tensor):
    b = run.train.gather(idx.numpy())
    x, y, mask = b["x"], b["y"], b["eval_mask"]
    f = flips[idx]
    x[f], y[f] = flip_pose(x[f], run.model.skeleton), flip_pose(y[f], run.model.skeleton)
    if run.cfg.occlusion.active:
        x = random_occlusion(x, occ_seeds[idx], run.cfg.occlusion, run.model.skeleton)
    if run.device.type == "cuda":
        x, y, mask = x.pin_memory(), y.pin_memory(), mask.pin_memory()
    nb = {"non_blocking": True}
    return x.to(run.device, **nb), y.to(run.device, **nb), mask.to(run.device, **nb), b["texts"]


def train_epoch(run: Run, state: TrainState, epoch: int, budget: "StepBudget", live=None) -> bool:
    """Train (the rest of) ``epoch``; returns True when the step budget stopped it early."""
    cfg, world, n = run.cfg, run.world, len(run.train)
    g = epoch_generator(run.seed, epoch)
    perm = torch.randperm(n, generator=g)
    flips = torch.rand(n, generator=g) < (0.5 if cfg.flip else 0.0)
    occ_seeds = torch.randint(0, 2**31 - 1, (n,), generator=g)
    first = state.step_in_epoch if epoch == state.epoch else 0
    sums = state.epoch_sums if first and state.epoch_sums else _fresh_sums()
    # loss and MPJPE summed on the device, folded into ``sums`` at the measuring steps only (the
    # same grouping in a resumed epoch: its logged means are bit-identical)
    dev_sums = torch.tensor(sums.pop("pending", [0.0, 0.0]), dtype=torch.float64, device=run.device)
    per_rank = cfg.batch_size // world
    bar = _Progress(run, epoch, first)
    t0, clips0 = time.time(), sums["clips"]

    def fold():                                                # the only host-device syncs of the loop
        s = dev_sums.tolist()
        sums["loss"] += s[0]
        sums["mpjpe_mm"] += s[1]
        dev_sums.zero_()
        sums["seconds"] = time.time() - t0                     # this call's share of the epoch
        sums["clips_now"] = sums["clips"] - clips0

    run.net.train()
    for step in range(first, run.steps_per_epoch):
        idx = perm[step * cfg.batch_size:(step + 1) * cfg.batch_size][run.rank * per_rank:(run.rank + 1) * per_rank]
        x, y, mask, texts = _batch(run, idx, flips, occ_seeds)
        with run.autocast():
            pred = run.net(x, texts)
        loss, terms = training_loss(pred.float(), y, cfg.w_nmpjpe, cfg.w_velocity, mask=mask)
        run.opt.zero_grad(set_to_none=True)
        loss.backward()
        # the epoch's last step: the end of the data, or of the run's budget (train.max_steps)
        done_epoch = step + 1 == run.steps_per_epoch or budget.capped(state.global_step + 1)
        measure = (state.global_step + 1) % cfg.log_every == 0 or done_epoch
        if measure and run.main:
            for k, v in groups.grad_ratios(run.model).items():
                sums["ratio"][k] = sums["ratio"].get(k, 0.0) + v
            sums["ratio_n"] += 1
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(run.model.parameters(), cfg.grad_clip)
        lr_now = run.opt.param_groups[0]["lr"]                 # the decayed group's learning rate
        run.opt.step()
        run.sched.step()
        state.decay_product *= 1.0 - lr_now * cfg.weight_decay
        state.global_step += 1
        state.step_in_epoch = step + 1
        dev_sums += torch.stack([terms["loss"], terms["mpjpe"] * 1000.0]).double()
        sums["clips"] += cfg.batch_size
        sums["steps"] += 1
        if measure:
            fold()
            bar.update(state.step_in_epoch, sums, sums["clips_now"] / max(sums["seconds"], 1e-9))
        stop = budget.spent(state)
        if not done_epoch and (stop or cfg.checkpoint_every and state.global_step % cfg.checkpoint_every == 0):
            state.epoch, state.epoch_sums = epoch, {**sums, "pending": dev_sums.tolist()}
            save(run, state, "last.pt")
            if stop:
                bar.close()
                return True
        if done_epoch:
            break
    bar.close()
    state.epoch_sums = sums                                    # folded at the last step (a measuring step)
    return False


class _Progress:
    """tqdm on a terminal; nothing per step in a log (the epoch line is printed by end_epoch)."""

    def __init__(self, run: Run, epoch: int, first: int):
        self.bar = None
        if run.main and shows_progress_bar(run.cfg):
            from tqdm import tqdm
            self.bar = tqdm(total=run.steps_per_epoch, initial=first, desc=f"epoch {epoch + 1}/{run.cfg.epochs}",
                            leave=False, mininterval=1.0)

    def update(self, step: int, sums: dict, clips_s: float):
        if self.bar is not None:
            self.bar.n = step
            self.bar.set_postfix(loss=f"{sums['loss'] / max(sums['steps'], 1):.4f}",
                                 mpjpe_mm=f"{sums['mpjpe_mm'] / max(sums['steps'], 1):.1f}", clips_s=f"{clips_s:.0f}")

    def close(self):
        if self.bar is not None:
            self.bar.close()


@dataclass
class StepBudget:
    """Two ways a run ends early. ``stop_after`` steps of this call: stop as if interrupted (a
    checkpoint, no model; the next call resumes); the smoke test's interruption. ``max_steps`` in
    all (``train.max_steps``): the run's budget, reached = the run is finished (the epoch in
    progress ends there with its validation, and the model is exported)."""
    start_step: int
    stop_after: int | None
    max_steps: int

    def spent(self, state: TrainState) -> bool:
        return self.stop_after is not None and state.global_step - self.start_step >= self.stop_after

    def capped(self, step: int) -> bool:
        return bool(self.max_steps) and step >= self.max_steps


# ---- end of an epoch --------------------------------------------------------------------------------

@torch.no_grad()
def validation_mpjpe(model: PosePromptLifter, windows: PoseWindows, batch_size: int, device, autocast) -> float:
    """Mean MPJPE (mm) over the scored frames of the validation windows."""
    model.eval()
    total, count = torch.zeros((), dtype=torch.float64, device=device), 0
    for i in range(0, len(windows), batch_size):
        b = windows.gather(range(i, min(len(windows), i + batch_size)))
        with autocast():
            pred = model(b["x"].to(device), b["texts"]).float()
        mask = b["eval_mask"].to(device)
        total += (mpjpe(pred, b["y"].to(device), reduce=False) * mask).sum().double()
        count += int(b["eval_mask"].sum())
    return float(total) * 1000.0 / max(count, 1)


def end_epoch(run: Run, state: TrainState, epoch: int, live=None, last: bool = False) -> None:
    """Validation, model selection, checkpoints and logging after ``epoch`` (rank 0); ``last``: the
    run's step budget ends with this epoch (``train.max_steps``)."""
    if run.main:
        val = validation_mpjpe(run.model, run.val, run.cfg.val_batch_size, run.device, run.autocast)
        if val < state.best_val:
            state.best_val, state.best_epoch = val, epoch
        sums = state.epoch_sums
        secs = sums.get("seconds", 0.0)
        rec = {"epoch": epoch + 1, "step": state.global_step, "train_loss": sums["loss"] / max(sums["steps"], 1),
               "train_mpjpe_mm": sums["mpjpe_mm"] / max(sums["steps"], 1), "val_mpjpe_mm": val,
               "lr": run.opt.param_groups[0]["lr"], "epoch_s": secs,
               "clips_per_s": sums.get("clips_now", 0) / max(secs, 1e-9),
               "grad_ratio": {k: v / max(sums["ratio_n"], 1) for k, v in sums["ratio"].items()}}
        state.history.append(rec)
        log.info("epoch %d: train loss %.4f, train MPJPE %.1f mm, val MPJPE %.1f mm (%.0f s)", epoch + 1,
                 rec["train_loss"], rec["train_mpjpe_mm"], val, secs)
        if run.cfg.progress:
            print(f"seed {run.seed} epoch {epoch + 1}/{run.cfg.epochs}: loss {rec['train_loss']:.4f}  train MPJPE "
                  f"{rec['train_mpjpe_mm']:.1f} mm  val MPJPE {val:.1f} mm  {rec['clips_per_s']:.0f} clips/s",
                  flush=True)
        if live is not None:
            _log_epoch(live, rec)
        state.epoch, state.step_in_epoch, state.epoch_sums = epoch + 1, 0, {}
        state.finished = epoch + 1 == run.cfg.epochs or last
        if state.best_epoch == epoch:
            save(run, state, "best.pt")
        save(run, state, "last.pt")
    _barrier(run.world)


LIVE_METRICS = ("train_loss", "train_mpjpe_mm", "val_mpjpe_mm", "lr")


def _log_epoch(live, rec: Mapping) -> None:
    for k in LIVE_METRICS:
        live.log_metric(k.replace("_", "/", 1) if k.startswith(("train_", "val_")) else k, rec[k])
    for g, v in (rec.get("grad_ratio") or {}).items():
        live.log_metric(f"grad_ratio/{g}", v)
    live.next_step()


def _race_free_dvclive_signal() -> None:
    """Make DVCLive's end-of-run cleanup safe when seeds train in parallel processes.

    Every ``Live.next_step`` writes a signal file for DVC's VS Code extension at one place per
    repository (``.dvc/tmp/exps/run/DVCLIVE_STEP_COMPLETED``), and ``Live.end`` removes it after
    checking that it exists. Two seed processes finishing together can both see it and one then
    fails on the removal (``FileNotFoundError``), losing a finished run. The removal is made
    tolerant of the file being gone already; the signal itself is kept."""
    import contextlib
    import dvclive.live as dl
    if getattr(dl.cleanup_dvclive_step_completed, "_race_free", False):
        return
    original = dl.cleanup_dvclive_step_completed

    def cleanup() -> None:
        with contextlib.suppress(FileNotFoundError):
            original()
    cleanup._race_free = True
    dl.cleanup_dvclive_step_completed = cleanup


def _open_live(live_dir: str | Path, model, seed: int, history: list):
    """A fresh DVCLive log that first replays the epochs already in the checkpoint's history.

    The logs are a function of the history alone: a resumed run (DVC deletes a stage's outputs
    before it runs it again) or a re-exported finished one writes the same curves as a run that
    was never interrupted."""
    from dvclive import Live
    _race_free_dvclive_signal()
    live = Live(dir=str(live_dir), resume=False, save_dvc_exp=False, dvcyaml=None, report=None)
    live.log_params({"variant_summary": model.summary().splitlines()[1].strip(), "seed": seed,
                     "trainable_parameters": model.parameter_counts()["trainable"]})
    for rec in history:
        _log_epoch(live, rec)
    return live


def export(run: Run, state: TrainState, resumed: bool) -> dict:
    """Copy the selected checkpoint to ``model.pt`` and write the summary (rank 0 only)."""
    cfg, state_dir = run.cfg, run.state_dir
    chosen = state_dir / ("best.pt" if cfg.select == "val" else "last.pt")
    if not chosen.is_file():
        chosen = state_dir / "last.pt"
    target = run.out_dir / "model.pt"
    tmp = target.with_name(".model.pt.tmp")
    shutil.copyfile(chosen, tmp)
    os.replace(tmp, target)
    summary = {"model": str(target), "seed": run.seed, "selected": cfg.select,
               "selected_epoch": int(state.best_epoch) + 1 if cfg.select == "val" else len(state.history),
               "best_val_mpjpe_mm": state.best_val, "epochs": cfg.epochs, "steps": state.global_step,
               "train_windows": len(run.train), "fingerprint": run.fingerprint, "history": state.history,
               "reused_finished_run": resumed, "decay_change": 1.0 - state.decay_product,
               "model_config": run.model_cfg.to_dict(), "selection_split": "val",
               "max_steps_reached": bool(cfg.max_steps) and state.global_step >= cfg.max_steps}
    write_json(run.out_dir / "train_summary.json", summary)
    return summary


# ---- the training run -------------------------------------------------------------------------------

def fit(model_cfg: ModelConfig | Mapping, train_cfg: TrainConfig | Mapping, data_dir: str | Path,
        out_dir: str | Path, *, seed: int = 0, window_kw: Mapping | None = None, live_dir: str | Path | None = None,
        resume: str | bool = "auto", stop_after: int | None = None, params: Mapping | None = None) -> dict:
    """Train one model; returns a summary (also written to ``out_dir/train_summary.json``).

    ``resume``: "auto" continues ``out_dir/state/last.pt`` when it belongs to the same run (same
    configuration, seed, data and code) and starts afresh otherwise; True requires it; False ignores it.
    ``stop_after``: stop (as if interrupted) after this many steps of this call, with a checkpoint.
    """
    run = setup(model_cfg, train_cfg, data_dir, out_dir, seed, dict(window_kw or {}), params)
    state = restore(run, resume)
    live = _open_live(live_dir, run.model, seed, state.history) if run.main and live_dir is not None else None
    if state.finished:                                  # DVC removed the stage's outputs: write them again
        if run.main:
            log.info("%s: this run is already complete; re-exporting its model and logs", run.state_dir / "last.pt")
        summary = export(run, state, resumed=True) if run.main else None
        if live is not None:
            live.end()
        _barrier(run.world)
        return summary
    budget = StepBudget(state.global_step, stop_after, run.cfg.max_steps)
    for epoch in range(state.epoch, run.cfg.epochs):
        if budget.capped(state.global_step):       # a budget already spent (a run resumed with a smaller one)
            state.finished = True
            if run.main:
                save(run, state, "last.pt")
            break
        if train_epoch(run, state, epoch, budget, live):
            _barrier(run.world)
            if live is not None:
                live.end()
            return {"stopped_at_step": state.global_step, "epoch": epoch}
        end_epoch(run, state, epoch, live, last=budget.capped(state.global_step))
        if state.finished:
            break
        if budget.spent(state) and epoch + 1 < run.cfg.epochs:
            if live is not None:
                live.end()
            return {"stopped_at_step": state.global_step, "epoch": epoch + 1}
    if live is not None:
        live.end()
    summary = export(run, state, resumed=False) if run.main else None
    _barrier(run.world)
    return summary


# ---- entry point for the notebook and torchrun ------------------------------------------------------

def run_variant(params: Mapping, variant: str, root: str | Path = ".", resume: str | bool = "auto",
                seeds=None) -> list[dict]:
    """Train ``variant`` for every seed of ``params["seeds"]``; paths relative to ``root``. On a
    CPU the seeds train side by side, one process each (``train.seed_procs``, see seedpool.py)."""
    from poseprompt.config.params import seeds_of, variant_config
    from poseprompt.stages.seedpool import map_seeds, seed_processes
    root = Path(root)
    data = params["data"]
    seeds = list(seeds if seeds is not None else seeds_of(params))
    cfg = TrainConfig.from_dict(params["train"])
    jobs = [dict(model_cfg=variant_config(params, variant).to_dict(), train_cfg=dict(params["train"]),
                 data_dir=str(root / data["out_dir"]), out_dir=str(seed_dir(root, variant, seed)), seed=seed,
                 window_kw=window_kwargs(data), live_dir=str(seed_dir(root, variant, seed, "dvclive/train")),
                 resume=resume,
                 params={"data": {k: data[k] for k in ("source", "out_dir", "windows") if k in data},
                         "model": params["model"], "train": params["train"], "variant": variant, "seed": seed})
            for seed in seeds]
    procs = seed_processes(cfg.seed_procs, len(seeds), cfg.device)
    if procs > 1:
        log.info("%s: %d seeds in %d processes", variant, len(seeds), procs)
    results = map_seeds(_fit_job, jobs, procs, cfg.threads)
    for job, res in zip(jobs, results):
        if res is None or "stopped_at_step" in res:
            raise RuntimeError(f"train@{variant} seed {job['seed']}: the run stopped before its end "
                               f"({res or 'no summary'}) and exported no model; run `dvc repro` again to resume "
                               f"it from {job['out_dir']}/state/last.pt")
    return results


def _fit_job(job: dict) -> dict:
    """One seed of :func:`run_variant` (module level: it runs in a worker process)."""
    if not logging.getLogger().handlers:           # a fresh worker: this package's progress, others' warnings
        logging.basicConfig(level=logging.WARNING, format=f"%(levelname)s seed {job['seed']} %(name)s: %(message)s")
        logging.getLogger("poseprompt").setLevel(logging.INFO)
    return fit(**job)


def launch(params_file: str | Path, variant: str, gpus: int, root: str | Path = ".") -> None:
    """Run training under torchrun with ``gpus`` processes (called by the notebook)."""
    import subprocess
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={gpus}",
           "-m", "poseprompt.stages.train", "--params", str(params_file), "--variant", variant, "--root", str(root)]
    subprocess.run(cmd, check=True)


def main(argv=None):
    from poseprompt.config.params import stage_command
    params, variant, root = stage_command("train one variant of params.yaml (every seed)", argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    run_variant(params, variant, root)
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
