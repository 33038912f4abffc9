"""The component audit: does each new part of the model train, and does it matter?

For one trained checkpoint (``audit_checkpoint``, run by the evaluate stage for every variant and
seed; written to ``metrics/audit/<variant>.json``):

* ``movement``: for every parameter group of the new components (:func:`component_groups`), the
  relative change from initialisation ``|theta - theta_0| / |theta_0|`` next to the change that
  weight decay alone would have produced at the run's learning-rate schedule
  (``1 - prod_t (1 - lr_t wd)``), and their ratio. The initial values are stored in the checkpoint
  (``init_state``). The softmax gates are compared as ``beta`` (their logits start at 0). Beside
  them, for the pooling parameters and gates, the change a *pure-noise* gradient would have
  produced (:func:`noise_walk`): AdamW moves a parameter by about its learning rate per step
  whatever its gradient's size, so movement alone, even many times weight decay's, does not show
  that a group learned (measured: a noise walk of the band centres is 9x weight decay's in the
  default run); the knock-outs show whether it matters;
* ``knockout``: the same trained model on the same validation and test clips with one component
  removed at a time (:data:`poseprompt.model.lifter.KNOCKOUTS`, and each slot's text replaced by
  its default word): the MPJPE change in mm with a 95 % interval paired over clips. Two knock-outs
  of the adaptation: ``delta_p`` (``Delta p_k := 0``) removes it, ``delta_p_mean`` gives every sample
  its mean over the validation clips; only the second tests that the prompt *adapts to the pose*
  (a constant ``Delta p_k`` is a second static context, and removing it costs whatever a static
  context is worth). With the context standardised across samples the head knock-outs are also
  run with the standardisation's statistics re-estimated on the validation clips under the
  knock-out (``spatial_heads+stats``, ``temporal_heads+stats``): the plain knock-out shifts ``z``
  away from the statistics it was trained with, and the standardisation amplifies that shift.
  Knock-outs of *training* (:data:`AT_INIT`: ``init:spatial``, ``init:temporal``, ``init:gates``):
  the Laplacian bands, the Gaussian kernels or the head gates of the trained model put back at
  their initial values (statistics re-estimated likewise); movement shows that a group changed,
  these show whether the model uses what the group learned;
* ``context``: the between-sample spread of ``v_s``, ``v_t``, ``z``, ``z_k``, ``Delta p_k`` and ``P'``
  (mean distance of a sample from the batch mean, over the mean norm), how distinct the heads are
  (cosine between two heads' between-sample variation, mean over pairs), ``|Delta p_k| / |r_k|``,
  and how far each head's context is from the plain mean;
* ``fusion``: the mean weight ``a`` of the motion stream in every adaptive fusion;
* ``grad_ratio``: gradient-to-weight norm ratios per group during training (from the training
  history; also logged to DVCLive).

Everything here is measured on clips a deployed model could see (validation and test inputs); no
quantity is computed from a sample's true error except the reported error itself.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from poseprompt.core.metrics import mpjpe
from poseprompt.core.stats import crossed_interval, paired_interval, spread
from poseprompt.data.format import PoseSequences
from poseprompt.data.windows import PoseWindows
from poseprompt.model.lifter import KNOCKOUTS, PosePromptLifter

# parameter groups, initial values and gradient ratios: what training records (poseprompt/stages/groups.py)
from poseprompt.stages.groups import (GROUPS, POOLING_AND_GATES, component_groups, grad_ratios,  # noqa: F401
                                      group_of, init_state)


# ---- movement from initialisation ------------------------------------------------------------------

def _softmax_groups():
    return {"gate.beta_s": "gate.a_s", "gate.beta_t": "gate.a_t"}


def _group_vector(group: str, tensors: Sequence[torch.Tensor], batch_dims: int = 0) -> torch.Tensor:
    """One group's parameters as the audit compares them (the first ``batch_dims`` dimensions kept):
    the softmax gates as ``beta``, every other group as one flat vector."""
    if group in _softmax_groups():
        return torch.softmax(tensors[0].float(), -1)
    return torch.cat([t.float().reshape(*t.shape[:batch_dims], -1) for t in tensors], -1)


def movement(model: PosePromptLifter, init: Mapping[str, torch.Tensor], decay_change: float,
             decayed_groups: Sequence[str] = (), walk: Mapping[str, float] | None = None) -> dict[str, dict]:
    """Relative change of every group from ``init``; ``decay_change`` = ``1 - prod(1 - lr_t wd)``;
    ``walk``: :func:`noise_walk`'s reference per group, reported beside it where given.

    ``wd_alone`` is what weight decay alone would have done to the group at the run's schedule
    (``decay_change``); the context parameters and vectors are not decayed in training (train.py),
    so for them it is the reference of the decayed matrices, which the criterion compares against.
    """
    out = {}
    params = dict(model.named_parameters())
    for g, ps in component_groups(model).items():
        if g == "backbone":
            continue
        names = [n for n, _ in ps if n in init]
        if not names:
            continue
        now = _group_vector(g, [params[n].detach().cpu() for n in names])
        was = _group_vector(g, [init[n] for n in names])
        rel = float((now - was).norm() / max(float(was.norm()), 1e-12))
        out[g] = {"relative_change": rel, "wd_alone": float(decay_change),
                  "ratio_to_wd": rel / decay_change if decay_change > 0 else float("inf"),
                  "decayed": g in decayed_groups, "numel": int(now.numel())}
        if walk and g in walk:
            out[g]["noise_walk"] = walk[g]
            out[g]["noise_walk_ratio_to_wd"] = walk[g] / decay_change if decay_change > 0 else float("inf")
    return out


#: The noise walk skips groups with more values than this (it is meant for the pooling parameters
#: and gates, which have a few each).
WALK_MAX_NUMEL = 4096


@torch.no_grad()
def noise_walk(model: torch.nn.Module, init: Mapping[str, torch.Tensor], train_cfg, steps_per_epoch: int,
               steps: int, reps: int = 16, seed: int = 0, groups: Sequence[str] = POOLING_AND_GATES) -> dict[str, float]:
    """Relative change each of ``groups`` would show if its gradient were pure noise.

    AdamW normalises every coordinate's step by a running gradient scale, so a parameter whose
    gradient carries no signal at all still moves about ``sqrt(sum_t lr_t^2)`` per coordinate: a
    random walk. This simulates it: ``reps`` copies of the group's initial values, trained by
    AdamW with the run's optimiser groups (learning rate, ``lr_context``, weight decay), schedule
    and step count (``train_cfg``, ``steps``), on i.i.d. N(0, 1) gradients; the mean relative
    change (softmax gates compared as ``beta``, as in :func:`movement`). A measured change near or
    below this reference does not show that the group learned anything; the knock-outs do."""
    from poseprompt.stages.optim import lr_factor, param_groups
    # each parameter's learning rate and decay exactly as training sets them (train.param_groups)
    setting = {id(p): (o.get("lr", train_cfg.lr), o.get("weight_decay", train_cfg.weight_decay))
               for o in param_groups(model, train_cfg) for p in o["params"]}
    g = torch.Generator().manual_seed(seed)
    copies, opt_groups, members = {}, [], {}
    for grp, ps in component_groups(model).items():
        ps = [(n, p) for n, p in ps if n in init]
        if grp not in groups or not ps or sum(init[n].numel() for n, _ in ps) > WALK_MAX_NUMEL:
            continue
        members[grp] = [n for n, _ in ps]
        for n, p in ps:
            copies[n] = init[n].float().unsqueeze(0).repeat(reps, *([1] * init[n].ndim)).requires_grad_(True)
            lr, wd = setting[id(p)]
            opt_groups.append({"params": [copies[n]], "lr": lr, "base_lr": lr, "weight_decay": wd})
    if not opt_groups:
        return {}
    opt = torch.optim.AdamW(opt_groups)
    for step in range(steps):
        f = lr_factor(train_cfg, steps_per_epoch, step)
        for o in opt.param_groups:
            o["lr"] = o["base_lr"] * f
        for t in copies.values():
            t.grad = torch.randn(t.shape, generator=g)
        opt.step()
    out = {}
    for grp, names in members.items():
        now = _group_vector(grp, [copies[n].detach() for n in names], batch_dims=1)
        was = _group_vector(grp, [init[n] for n in names])
        out[grp] = float(((now - was).norm(dim=1) / was.norm().clamp_min(1e-12)).mean())
    return out


def walk_reference(audits: Mapping[str, Mapping], variants: Sequence[str], groups: Sequence[str]) -> dict[str, float]:
    """Each group's noise walk as a multiple of weight decay alone (mean over seeds), for the tables
    and Figure 12: from the first of ``variants`` whose audit has it (the walk depends only on the
    group's initial values and the run's schedule, so the variants differ by its sampling error)."""
    out = {}
    for g in groups:
        for v in variants:
            e = (((audits.get(v) or {}).get("summary") or {}).get("movement") or {}).get(g) or {}
            if "noise_walk_ratio_to_wd" in e:
                out[g] = e["noise_walk_ratio_to_wd"]["mean"]
                break
    return out


# ---- knock-outs --------------------------------------------------------------------------------------

@torch.no_grad()
def clip_errors(model: PosePromptLifter, windows: PoseWindows, idx: np.ndarray, batch_size: int = 128,
                device="cpu", texts_override: Mapping[str, str] | None = None) -> np.ndarray:
    """MPJPE (mm) of every clip (window) ``idx``: the mean over its scored frames."""
    model.eval()
    out = np.empty(len(idx), dtype=np.float64)
    for i in range(0, len(idx), batch_size):
        b = windows.gather(idx[i:i + batch_size])
        texts = dict(b["texts"])
        for k, v in (texts_override or {}).items():
            texts[k] = [v] * len(b["seq"])
        pred = model(b["x"].to(device), texts).float()
        e = mpjpe(pred, b["y"].to(device), reduce=False).cpu().double() * 1000.0     # (B, T)
        m = b["eval_mask"].double()
        out[i:i + batch_size] = ((e * m).sum(1) / m.sum(1).clamp(min=1)).numpy()
    return out


def slot_text_knockouts(model: PosePromptLifter, windows: PoseWindows) -> dict[str, str]:
    """Slots whose text comes from the data (label or 2D speed), with the default word that
    replaces it in the knock-out; slots that always use their default word are left out."""
    if not model.cfg.uses_text:
        return {}
    cfg, out = model.cfg, {}
    sample = windows.texts(np.arange(min(len(windows), 256)))
    for slot in cfg.slots:
        generic = (slot == "action" and cfg.action_text == "generic") or \
                  (slot == "person" and cfg.person_text == "generic")
        if generic or slot not in sample:
            continue
        if any(t != cfg.slot_words[slot] for t in sample[slot]):
            out[slot] = cfg.slot_words[slot]
    return out


def set_reference(model: PosePromptLifter, windows: PoseWindows, idx: np.ndarray | int = 64, batch_size: int = 128,
                  device="cpu") -> None:
    """Give an adaptive model the reference adaptation of its ``delta_p_mean`` knock-out: the mean
    ``Delta p_k`` over the clips ``idx`` of ``windows`` (or that many clips spread over them; the
    audit uses validation clips). Other variants are left as they are."""
    if "delta_p_mean" not in model.knockouts():
        return
    if isinstance(idx, (int, np.integer)):
        idx = np.linspace(0, len(windows) - 1, min(int(idx), len(windows))).round().astype(int)
    ref = windows.gather(idx)
    model.set_reference_adaptation(ref["x"].to(device), ref["texts"], batch_size)


#: Knock-outs of training itself: a group of pooling parameters or gates back at its initial
#: value (``init_state``) in the trained model, the context standardisation's statistics re-estimated
#: under it. Movement shows that a group changed; only this shows that the change is used.
AT_INIT = {
    "init:spatial": (("spatial.mu", "spatial.sigma", "spatial.alpha"),
                     "Laplacian bands mu_h, sigma_h, alpha_h back at their initial values"),
    "init:temporal": (("temporal.sigma", "temporal.mu"), "Gaussian kernels sigma_h (mu_h) back at their initial values"),
    "init:gates": (("gate.beta_s", "gate.beta_t"), "head gates beta^s, beta^t back at their initial values (uniform)"),
}


def _what(label: str, override: Mapping[str, str]) -> str:
    """What a knock-out removes, for the tables."""
    if label in KNOCKOUTS:
        return KNOCKOUTS[label]
    if label in AT_INIT:
        return (f"{AT_INIT[label][1]}, the context standardisation's statistics re-estimated on the validation "
                "clips under it (compared with the whole model under the same re-estimation)")
    if label.endswith("+stats"):
        return (f"{KNOCKOUTS[label[:-len('+stats')]]}, the context standardisation's statistics re-estimated on "
                "the validation clips under the knock-out (compared with the whole model under the same re-estimation)")
    return f"the {label[5:]} slot's text replaced by its default word {next(iter(override.values()))!r}"


@contextlib.contextmanager
def _at_init(model: torch.nn.Module, init: Mapping[str, torch.Tensor], groups: Sequence[str]):
    """Inside the block, the parameters of the audit ``groups`` hold their initial values ``init``."""
    params = [(p, init[n]) for g, ps in component_groups(model).items() if g in groups for n, p in ps if n in init]
    keep = [p.detach().clone() for p, _ in params]
    try:
        with torch.no_grad():
            for p, v in params:
                p.copy_(v.to(p.device, p.dtype))
        yield
    finally:
        with torch.no_grad():
            for (p, _), k in zip(params, keep):
                p.copy_(k)


def _at_init_labels(model: PosePromptLifter, init: Mapping[str, torch.Tensor] | None) -> list[str]:
    """The :data:`AT_INIT` knock-outs that apply: an adaptive model (the poolings feed the prompt) whose
    checkpoint stores initial values for the group and where the group has moved."""
    if not init or not model.cfg.pools_context:
        return []
    groups = component_groups(model)
    out = []
    for label, (names, _) in AT_INIT.items():
        ps = [(n, p) for g in names for n, p in groups.get(g, []) if n in init]
        if ps and any(not torch.equal(p.detach().cpu(), init[n].to(p.dtype)) for n, p in ps):
            out.append(label)
    return out


@contextlib.contextmanager
def _restandardised(model: PosePromptLifter, windows: PoseWindows, idx: np.ndarray, batch_size: int, device,
                    active: bool = True):
    """Inside the block (if ``active``), the context standardisation of ``model`` uses the mean and
    variance of ``z`` over the clips ``idx`` as the model is now (with its knock-outs): a knock-out of
    the pooling heads then costs what the heads carry, not also the shift of ``z`` away from the
    statistics it was trained with (which the standardisation amplifies)."""
    if not active:
        yield
        return
    st = model.slot_mlp.standardise
    keep = st.running_mean.clone(), st.running_var.clone()
    ref = windows.gather(idx)
    z = torch.cat([st_[""]["z"].double() for st_ in model.captures(ref["x"].to(device), ref["texts"], batch_size)])
    try:
        st.running_mean.copy_(z.mean(0).to(st.running_mean.dtype))
        st.running_var.copy_(z.var(0).to(st.running_var.dtype))
        yield
    finally:
        st.running_mean.copy_(keep[0])
        st.running_var.copy_(keep[1])


def knockout_effects(model: PosePromptLifter, splits: Mapping[str, PoseWindows], clips: int = 0, seed: int = 0,
                     batch_size: int = 128, device="cpu", init: Mapping[str, torch.Tensor] | None = None) -> dict[str, Any]:
    """MPJPE change (mm, 95 % interval paired over clips) of every knock-out on every split; with the
    initial values ``init`` (a checkpoint's ``init_state``) also the :data:`AT_INIT` knock-outs."""
    out: dict[str, Any] = {"clips": {}, "base_mpjpe": {}, "effects": {}}
    rng = np.random.default_rng(seed)
    chosen = {}
    for name, w in splits.items():
        idx = np.arange(len(w))
        if clips and len(w) > clips:
            idx = np.sort(rng.choice(len(w), clips, replace=False))
        chosen[name] = idx
        out["clips"][name] = int(len(idx))
    base = {n: clip_errors(model, w, chosen[n], batch_size, device) for n, w in splits.items()}
    out["base_mpjpe"] = {n: float(v.mean()) for n, v in base.items()}
    removals: list[tuple[str, tuple[str, ...], dict]] = [(k, (k,), {}) for k in model.knockouts()]
    first_name, first = next(iter(splits.items()))
    # the adaptation every sample gets in the knock-out delta_p_mean: its mean over the first
    # split's (validation) clips, the same value for every split
    set_reference(model, first, chosen[first_name], batch_size, device)
    removals += [(f"text:{slot}", (), {slot: word}) for slot, word in slot_text_knockouts(model, first).items()]
    standardised = model.cfg.pools_context and model.slot_mlp.standardise is not None
    removals += [(f"{k}+stats", (k,), {}) for k in ("spatial_heads", "temporal_heads")
                 if standardised and k in model.knockouts()]
    at_init = _at_init_labels(model, init)
    removals += [(k, (), {}) for k in at_init]
    # the knock-outs with re-estimated statistics are compared with the whole model under the same
    # re-estimation: their effect is the component's, not also the change from the training
    # statistics to the validation clips' (reported as base_mpjpe_restandardised)
    restat = base
    if standardised:
        with _restandardised(model, first, chosen[first_name], batch_size, device):
            restat = {n: clip_errors(model, w, chosen[n], batch_size, device) for n, w in splits.items()}
        out["base_mpjpe_restandardised"] = {n: float(v.mean()) for n, v in restat.items()}
    out["_deltas"] = {}
    for label, names, override in removals:
        eff = {}
        reset = AT_INIT[label][0] if label in at_init else ()
        again = label.endswith("+stats") or (bool(reset) and standardised)
        ref = restat if again else base
        with model.knockout(*names), _at_init(model, init or {}, reset), \
                _restandardised(model, first, chosen[first_name], batch_size, device, again):
            for n, w in splits.items():
                e = clip_errors(model, w, chosen[n], batch_size, device, override)
                eff[n] = paired_interval(e - ref[n]).as_dict()
                out["_deltas"].setdefault(label, {})[n] = e - ref[n]
        out["effects"][label] = {"what": _what(label, override), **eff}
    return out


# ---- context statistics ------------------------------------------------------------------------------

def _spread(v: torch.Tensor) -> float:
    v = v.flatten(1).double()
    return float((v - v.mean(0)).norm(dim=1).mean() / v.norm(dim=1).mean().clamp(min=1e-12))


def _head_cosines(v: torch.Tensor) -> list[list[float]]:
    """Cosine between heads' between-sample variation: v (B, H, C)."""
    c = (v - v.mean(0, keepdim=True)).double()
    H = v.shape[1]
    return [[float(F.cosine_similarity(c[:, i].flatten(), c[:, j].flatten(), dim=0)) for j in range(H)]
            for i in range(H)]


@torch.no_grad()
def context_stats(model: PosePromptLifter, windows: PoseWindows, clips: int = 128, device="cpu") -> dict:
    """Spread and distinctness of the pooled contexts and adaptations on ``clips`` windows."""
    if model.cfg.prompt != "adaptive":
        return {}
    idx = np.linspace(0, len(windows) - 1, min(clips, len(windows))).round().astype(int)
    b = windows.gather(idx)
    x = b["x"].to(device)
    with model.capture() as st:
        model(x, b["texts"])
    e = st[""]
    out: dict[str, Any] = {"clips": int(len(idx))}
    out["spread"] = {k: _spread(e[k]) for k in ("v_s_heads", "v_t_heads", "z", "z_k", "delta_p", "P_prime")
                     if k in e}
    r = model.prompts.context.detach()
    ratio = (e["delta_p"].norm(dim=(-1, -2)) / r.norm(dim=(-1, -2))[None]).mean(0)        # (K,)
    out["delta_p_over_r"] = {s: float(v) for s, v in zip(model.cfg.slots, ratio.tolist())}
    out["delta_p_over_r_mean"] = float(ratio.mean())
    for kind, pool, key in (("spatial", model.spatial_pool, "v_s_heads"), ("temporal", model.temporal_pool, "v_t_heads")):
        v = e[key]
        entry: dict[str, Any] = {"heads": int(v.shape[1])}
        if v.shape[1] > 1:
            cos = _head_cosines(v)
            off = [cos[i][j] for i in range(len(cos)) for j in range(len(cos)) if i != j]
            entry["variation_cosine"] = cos
            entry["variation_cosine_mean"] = float(np.mean(off))
            with model.knockout(f"{kind}_heads"), model.capture() as st0:
                model(x, b["texts"])
            v0 = st0[""][key]
            entry["distance_to_plain_mean"] = ((v - v0).norm(dim=-1) / v0.norm(dim=-1).clamp(min=1e-12)).mean(0).tolist()
        out[kind] = entry
    return out


@torch.no_grad()
def fusion_weights(model: PosePromptLifter, windows: PoseWindows, clips: int = 64, device="cpu") -> dict:
    """Mean weight ``a`` of the motion stream in every adaptive fusion (layer, stage)."""
    idx = np.linspace(0, len(windows) - 1, min(clips, len(windows))).round().astype(int)
    b = windows.gather(idx)
    with model.capture() as st:
        model(b["x"].to(device), b["texts"])
    per = {k: v["weight_motion"] for k, v in st.items() if "weight_motion" in v}
    return {"per_stage": per, "mean": float(np.mean(list(per.values()))) if per else float("nan")}


def _walk_of(payload: Mapping, model: torch.nn.Module, init: Mapping[str, torch.Tensor], seed: int) -> dict:
    """:func:`noise_walk` for a checkpoint: its run's training section and the step of its weights
    (the selected epoch's), or nothing where the checkpoint does not record them."""
    from poseprompt.config.sections import TrainConfig
    ts = payload.get("train_state") or {}
    hist, train = ts.get("history") or [], (payload.get("params") or {}).get("train")
    if not init or not hist or not train:
        return {}
    best = ts.get("best_epoch", -1)
    steps = int(hist[best]["step"] if 0 <= best < len(hist) else ts.get("global_step", hist[-1]["step"]))
    per_epoch = int(hist[0]["step"])
    return noise_walk(model, init, TrainConfig.from_dict(train), per_epoch, steps, seed=seed)


# ---- one checkpoint ----------------------------------------------------------------------------------

def audit_checkpoint(checkpoint: str | Path, data_dir: str | Path, *, window_kw: Mapping | None = None,
                     clips: int = 0, seed: int = 0, batch_size: int = 128, device="cpu") -> dict:
    """The whole audit of one trained checkpoint (see the module docstring)."""
    from poseprompt.model.checkpoint import load_checkpoint, read_checkpoint
    payload = read_checkpoint(checkpoint)
    model = load_checkpoint(checkpoint, map_location=device)
    T = model.cfg.frames
    kw = dict(window_kw or {})
    data_dir = Path(data_dir)
    splits = {s: PoseWindows(PoseSequences.load(data_dir / f"{s}.npz"), T, stride=T, mode="test", **kw)
              for s in ("val", "test")}
    ts = payload.get("train_state") or {}
    decay_change = float(ts.get("decay_change", float("nan")))
    result: dict[str, Any] = {"checkpoint": str(checkpoint), "variant_config": {
        k: model.cfg.to_dict()[k] for k in ("prompt", "spatial_pool", "temporal_pool", "inject", "action_text",
                                            "context_from")},
        "steps": ts.get("global_step")}
    init = payload.get("init_state") or {}
    walk = _walk_of(payload, model, init, seed)
    result["movement"] = movement(model, init, decay_change, decayed_groups=("r_k", "f_k", "slot_mlp"), walk=walk)
    result["knockout"] = knockout_effects(model, splits, clips, seed, batch_size, device, init=init)
    result["context"] = context_stats(model, splits["val"], device=device)
    result["fusion"] = fusion_weights(model, splits["val"], device=device)
    hist = ts.get("history") or []
    result["grad_ratio"] = {"per_epoch": [h.get("grad_ratio", {}) for h in hist]}
    return result


# ---- over seeds ----------------------------------------------------------------------------------------

def _leaf_spread(values: list) -> dict:
    sp = spread(values)
    return {"mean": sp.mean, "std": sp.std, "n": sp.n}


def over_seeds(variant: str, audits: Mapping[int, dict]) -> dict:
    """The audits of one variant's seeds and their summary: every movement ratio, knock-out effect
    (with a 95 % interval over seeds x clips: the same clips for every seed), context spread and
    fusion weight as mean and standard deviation over the seeds. Per-clip deltas are dropped."""
    seeds = sorted(audits)
    per_seed = {}
    deltas = {}
    for s in seeds:
        a = dict(audits[s])
        ko = dict(a["knockout"])
        deltas[s] = ko.pop("_deltas", {})
        a["knockout"] = ko
        per_seed[str(s)] = a
    first = per_seed[str(seeds[0])]
    summary: dict[str, Any] = {"movement": {}, "knockout": {}, "context": {}, "fusion": {}}
    for g in first["movement"]:
        summary["movement"][g] = {k: _leaf_spread([per_seed[str(s)]["movement"][g][k] for s in seeds
                                                   if g in per_seed[str(s)]["movement"]])
                                  for k in ("relative_change", "wd_alone", "ratio_to_wd", "noise_walk",
                                            "noise_walk_ratio_to_wd") if k in first["movement"][g]}
    for label, eff in first["knockout"]["effects"].items():
        entry = {"what": eff["what"]}
        for split in first["knockout"]["clips"]:
            means = [per_seed[str(s)]["knockout"]["effects"][label][split]["mean"] for s in seeds]
            d = [deltas[s].get(label, {}).get(split) for s in seeds]
            iv = None
            if all(x is not None for x in d) and len({len(x) for x in d}) == 1:
                iv = crossed_interval(np.stack(d)).as_dict()
            elif len(means) > 1:
                # seeds pooled from an earlier record without per-clip effects: over the seeds' means
                iv = {**paired_interval(means).as_dict(), "over": "seeds"}
            entry[split] = {**_leaf_spread(means), "interval": iv}
        summary["knockout"][label] = entry
    ctx = first.get("context") or {}
    if ctx:
        summary["context"]["delta_p_over_r"] = _leaf_spread([per_seed[str(s)]["context"]["delta_p_over_r_mean"]
                                                            for s in seeds])
        summary["context"]["spread"] = {k: _leaf_spread([per_seed[str(s)]["context"]["spread"][k] for s in seeds])
                                        for k in ctx["spread"]}
        for kind in ("spatial", "temporal"):
            if "variation_cosine_mean" in ctx.get(kind, {}):
                summary["context"][f"{kind}_head_cosine"] = _leaf_spread(
                    [per_seed[str(s)]["context"][kind]["variation_cosine_mean"] for s in seeds])
    summary["fusion"]["motion_weight"] = _leaf_spread([per_seed[str(s)]["fusion"]["mean"] for s in seeds])
    return {"variant": variant, "seeds": seeds, "summary": summary, "per_seed": per_seed}


# ---- a readable report -------------------------------------------------------------------------------

def _pm(e: Mapping | None, digits: int = 1, scale: float = 1.0) -> str:
    if not e or e.get("mean") is None or not np.isfinite(e["mean"]):
        return "–"
    m = e["mean"] * scale
    sd = e.get("std")
    return f"{m:.{digits}f}" + (f" ± {sd * scale:.{digits}f}" if sd is not None else "")


def _iv(e: Mapping | None) -> str:
    iv = (e or {}).get("interval")
    if not iv or not np.isfinite(iv.get("lo", float("nan"))):
        return _pm(e)
    star = " *" if iv["significant"] else ""
    return f"{iv['mean']:+.1f} [{iv['lo']:+.1f}, {iv['hi']:+.1f}]{star}"


def audit_markdown(path: str | Path) -> str:
    """The summary of ``metrics/audit/<variant>.json`` as Markdown (for the evaluate notebook)."""
    import json
    a = json.loads(Path(path).read_text())
    s, n = a["summary"], len(a["seeds"])
    lines = [f"**{a['variant']}**, {n} seed{'s' if n > 1 else ''} ({a['seeds']}).", "",
             "| parameter group | relative change | weight decay alone | ratio | pure-noise walk (ratio) |",
             "|---|---:|---:|---:|---:|"]
    for g, e in s["movement"].items():
        lines.append(f"| {g} | {_pm(e['relative_change'], 3)} | {_pm(e['wd_alone'], 4)} | {_pm(e['ratio_to_wd'], 0)} "
                     f"| {_pm(e.get('noise_walk_ratio_to_wd'), 0)} |")
    splits = [k for k in next(iter(s["knockout"].values()), {}) if k != "what"]
    lines += ["", "| removed | " + " | ".join(f"Δ MPJPE {k} (mm)" for k in splits) + " |",
              "|---|" + "---:|" * len(splits)]
    for label, e in s["knockout"].items():
        lines.append(f"| {label}: {e['what']} | " + " | ".join(_iv(e[k]) for k in splits) + " |")
    lines += ["", "Pure-noise walk: the ratio a group would show if its gradient were pure noise (AdamW moves "
              "every coordinate by about its learning rate per step); a change at or below it does not show learning.",
              "", "Δ: mean change with its 95 % interval over seeds x clips; * the interval excludes 0."]
    c = s.get("context") or {}
    if c:
        lines.append(f"|Δp_k| / |r_k| = {_pm(c['delta_p_over_r'], 2)}; between-sample spread: " +
                     ", ".join(f"{k} {_pm(v, 3)}" for k, v in c["spread"].items()) + ".")
        for kind in ("spatial", "temporal"):
            if f"{kind}_head_cosine" in c:
                lines.append(f"{kind} heads: mean cosine of their between-sample variation "
                             f"{_pm(c[f'{kind}_head_cosine'], 2)} (1 = the heads see the same variation).")
    lines.append(f"Motion-stream fusion weight a: {_pm(s['fusion']['motion_weight'], 3)}.")
    return "\n".join(lines)
