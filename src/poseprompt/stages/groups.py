"""Parameter groups of the new components, their initial values and gradient-to-weight ratios.

What training records for the component audit (:mod:`poseprompt.stages.audit`): the initial values of the
new components' parameters (stored in every checkpoint as ``init_state``) and the
gradient-to-weight ratio of every group during training. A module of its own, so that the training
stages depend on what training computes, not on the audit's analyses (a change of the knock-outs
re-runs the evaluation, not the training).
"""
from __future__ import annotations

import math

import torch

#: Parameter groups of the new components: group -> parameter-name prefixes (exact names end
#: without a dot). ``backbone`` (everything else) is the reference.
GROUPS: dict[str, tuple[str, ...]] = {
    "spatial.mu": ("spatial_pool.mu",),
    "spatial.sigma": ("spatial_pool.sigma_raw",),
    "spatial.alpha": ("spatial_pool.alpha",),
    "spatial.rho": ("spatial_pool.rho.", "spatial_pool.rho_bias"),
    "gate.beta_s": ("gate.a_s",),
    "gate.beta_t": ("gate.a_t",),
    "temporal.sigma": ("temporal_pool.sigma_raw",),
    "temporal.mu": ("temporal_pool.mu",),
    "temporal.eta": ("temporal_pool.eta.", "temporal_pool.eta_bias"),
    "slot_mlp": ("slot_mlp.",),
    "f_k": ("prompts.adapt.",),
    "r_k": ("prompts.context",),
    "prompt_gates": ("add_prompt.pose.gate", "add_prompt.motion.gate", "cross_attn.pose.gate",
                     "cross_attn.motion.gate"),
    "prompt_addition": ("add_prompt.",),
    "cross_attention": ("cross_attn.",),
    "prompt_encoder": ("prompt_encoder.",),
    "direct": ("direct.",),                 # the control without text (prompt: direct)
    "fusion": ("layers.*.fuse_",),
}
#: Groups whose criterion is "moves at least 5 x what weight decay alone gives" (issue: pooling and gates).
POOLING_AND_GATES = ("spatial.mu", "spatial.sigma", "spatial.alpha", "gate.beta_s", "gate.beta_t",
                     "temporal.sigma", "prompt_gates", "fusion")


def _matches(name: str, prefix: str) -> bool:
    if "*" in prefix:                                  # layers.*.fuse_
        head, tail = prefix.split("*", 1)
        if not name.startswith(head):
            return False
        rest = name[len(head):]
        return "." in rest and rest.split(".", 1)[1].startswith(tail.lstrip("."))
    return name == prefix or (prefix.endswith(".") and name.startswith(prefix)) or \
        (not prefix.endswith(".") and name.startswith(prefix + "."))


def group_of(name: str) -> str:
    """The audit group of a parameter name (first match in :data:`GROUPS`, else ``backbone``)."""
    for g, prefixes in GROUPS.items():
        if any(_matches(name, p) for p in prefixes):
            return g
    return "backbone"


def component_groups(model: torch.nn.Module) -> dict[str, list[tuple[str, torch.nn.Parameter]]]:
    """Trainable parameters by audit group (only groups the model has)."""
    out: dict[str, list] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            out.setdefault(group_of(name), []).append((name, p))
    if "temporal.mu" in out and not any(p.requires_grad for _, p in out["temporal.mu"]):
        out.pop("temporal.mu")
    return out


def init_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Initial values of the new components' parameters (stored in checkpoints for the audit)."""
    return {n: p.detach().cpu().clone() for g, ps in component_groups(model).items() if g != "backbone"
            for n, p in ps}


# ---- gradient-to-weight ratios (during training) -------------------------------------------------

@torch.no_grad()
def grad_ratios(model: torch.nn.Module) -> dict[str, float]:
    """``|grad| / |w|`` per audit group (after ``backward``)."""
    out = {}
    for g, ps in component_groups(model).items():
        grads = [p.grad for _, p in ps if p.grad is not None]
        if not grads:
            continue
        gn = math.sqrt(sum(float(x.float().pow(2).sum()) for x in grads))
        wn = math.sqrt(sum(float(p.float().pow(2).sum()) for _, p in ps))
        out[g] = gn / max(wn, 1e-12)
    return out
