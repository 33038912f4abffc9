"""Capacity matching: the controls get the trainable parameter count of the adaptive model.

The first question about any gain of a larger model is whether it is the parameters. Two controls
answer it (``model.match_params: adaptive``):

* ``gatfun-wide`` (``prompt: none``): the backbone width ``D`` is solved, in steps of ``heads``;
* ``context-direct`` (``prompt: direct``): the hidden width ``H`` of its map ``z -> P'`` is solved
  (the backbone stays ``full``'s).

Either way the target is the trainable parameter count of the *same* configuration with
``prompt: adaptive`` (and ``match_params: none``): computed from the configuration, never typed by
hand, so it follows every change of the model section. The count grows monotonically with the free
size; a bisection finds the smallest size at or above the target and the nearer of it and the size
below wins. The solved configuration has ``match_params: none`` and the size written in, so a
checkpoint rebuilds exactly the model that was trained.
"""
from __future__ import annotations

import functools
import json
import logging

import torch

from poseprompt.config.sections import ModelConfig

#: Largest factor by which the free size may grow before the search gives up (a config error).
MAX_GROWTH = 64


@functools.lru_cache(maxsize=64)
def _count(cfg_json: str) -> int:
    from poseprompt.model.lifter import PosePromptLifter
    cfg = ModelConfig.from_dict(json.loads(cfg_json))
    # Building consumes the global RNG (parameter init): counting must not change the model that is
    # built afterwards from the same seed. No text tower is downloaded: pretrained weights do not
    # change the number of trainable parameters.
    if cfg.uses_text:
        cfg = cfg.replace(text_encoder=cfg.text_encoder.__class__(arch=cfg.text_encoder.arch))
    quiet = logging.getLogger("poseprompt.model.text_encoder")
    level = quiet.level
    quiet.setLevel(logging.ERROR)                          # the random tower's warning is not news here
    try:
        with torch.random.fork_rng(devices=[]):
            model = PosePromptLifter(cfg)
    finally:
        quiet.setLevel(level)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def trainable_parameters(cfg: ModelConfig) -> int:
    """Trainable parameters of the model ``cfg`` describes (built once per configuration, cached)."""
    return _count(json.dumps(cfg.to_dict(), sort_keys=True))


def free_size(cfg: ModelConfig) -> tuple[str, int]:
    """The field that capacity matching solves for this configuration and its step."""
    return ("width", cfg.heads) if cfg.prompt == "none" else ("direct_hidden", 1)


def match_capacity(cfg: ModelConfig) -> ModelConfig:
    """``cfg`` with its free size solved so that its trainable parameters are nearest to those of the
    adaptive model (``match_params: adaptive``); ``cfg`` itself when ``match_params`` is ``none``."""
    if cfg.match_params == "none":
        return cfg
    target = trainable_parameters(cfg.replace(prompt="adaptive", match_params="none"))
    key, step = free_size(cfg)
    base = cfg.replace(match_params="none")

    def count(units: int) -> int:
        return trainable_parameters(base.replace(**{key: units * step}))

    lo, hi = 1, max(2, getattr(cfg, key) // step)
    while count(hi) < target:                               # grow until the target is passed
        lo, hi = hi, hi * 2
        if hi * step > MAX_GROWTH * max(getattr(cfg, key), step):
            raise ValueError(f"model.match_params: {key} would have to exceed {hi * step} to reach the adaptive "
                             f"model's {target:,} trainable parameters")
    if count(lo) >= target:
        lo = 1
    while hi - lo > 1:                                      # count(lo) < target <= count(hi)
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if count(mid) < target else (lo, mid)
    best = min((lo, hi), key=lambda u: (abs(count(u) - target), u))
    return base.replace(**{key: best * step})


def capacity_report(cfg: ModelConfig) -> dict:
    """What matching did: the solved field and size, the count and the adaptive target."""
    solved = match_capacity(cfg)
    key, _ = free_size(cfg)
    target = trainable_parameters(cfg.replace(prompt="adaptive", match_params="none"))
    n = trainable_parameters(solved)
    return {"field": key, "size": getattr(solved, key), "trainable": n, "target": target,
            "relative_gap": (n - target) / target}
