"""The optimiser of every training run: AdamW parameter groups and the learning-rate schedule
(used by training and by the audit, which measures how far each group moved)."""
from __future__ import annotations

import math

import torch

from poseprompt.config.sections import TrainConfig


#: Parameters that shape the context pooling: band centres and widths, residual gates, temporal
#: scales and shifts, head gates. They get ``train.lr_context`` x the learning rate and no decay.
#: (The prompt's entry gates stay at the base rate; what lr_context did to them is measured in the
#: README's model decisions.)
CONTEXT_PARAMS = ("spatial_pool.mu", "spatial_pool.sigma_raw", "spatial_pool.alpha", "temporal_pool.sigma_raw",
                  "temporal_pool.mu", "gate.a_s", "gate.a_t")


def decays(name: str, p: torch.Tensor) -> bool:
    """Weight decay on matrices only: not on vectors, norms, gates or grouped biases (b1, b2)."""
    return p.ndim >= 2 and not name.endswith((".b1", ".b2")) and name not in CONTEXT_PARAMS


def param_groups(model: torch.nn.Module, cfg: TrainConfig) -> list[dict]:
    """AdamW groups: matrices decay; vectors and scalars (biases, norms, gates) do not (decaying a
    band centre towards 0 or a gate towards 0 has no meaning); the context-pooling parameters have
    their own learning rate (``lr_context`` x ``lr``) and no decay. A module may give some of its
    parameters a unit (``step_units()``: pairs of parameter and unit): their step is then
    ``lr_context`` x ``lr`` x unit, which for Adam is the same as learning the parameter divided
    by its unit (the Laplacian band centres: in units of the largest graph frequency)."""
    groups = {"decay": [], "no_decay": [], "context": []}
    scaled: dict[float, list] = {}                    # context parameters with a unit of their own
    units = {id(p): u for m in model.modules() if hasattr(m, "step_units") for p, u in m.step_units()}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if name in CONTEXT_PARAMS and id(p) in units:
            scaled.setdefault(units[id(p)], []).append(p)
            continue
        key = "context" if name in CONTEXT_PARAMS else ("decay" if decays(name, p) else "no_decay")
        groups[key].append(p)
    return [{"params": groups["decay"], "name": "decay"},
            {"params": groups["no_decay"], "name": "no_decay", "weight_decay": 0.0},
            {"params": groups["context"], "name": "context", "weight_decay": 0.0, "lr": cfg.lr * cfg.lr_context}] + \
        [{"params": ps, "name": f"context_x{u:.3g}", "weight_decay": 0.0, "lr": cfg.lr * cfg.lr_context * u}
         for u, ps in scaled.items()]


def lr_factor(cfg: TrainConfig, steps_per_epoch: int, step: int) -> float:
    """Learning-rate factor of ``step``: linear warm-up, then ``lr_decay`` per epoch (``exp``) or a
    half cosine from 1 to 0 over the remaining steps of the run (``cosine``)."""
    warm = min(1.0, (step + 1) / cfg.warmup_steps) if cfg.warmup_steps else 1.0
    if cfg.schedule == "cosine":
        total = steps_per_epoch * cfg.epochs
        if cfg.max_steps:
            total = min(total, cfg.max_steps)
        span = max(1, total - cfg.warmup_steps)
        done = min(max(0, step - cfg.warmup_steps), span)
        return warm * 0.5 * (1.0 + math.cos(math.pi * done / span))
    return warm * cfg.lr_decay ** (step // steps_per_epoch)


