"""The claims table: every claim of the paper's abstract and every reviewer demand, tested on this
run's metrics and component audits, each with a verdict by one fixed rule (``figures/tables/claims``
as ``.md``, ``.tex`` and ``.json``; written by the figures stage, never by hand).

A claim is served by one or more tests, each its own row (no aggregate is invented):

* a **difference** ``MPJPE(a) - MPJPE(b)``: two variants trained with the same seeds, scored on the
  same test clips, paired over seeds x clips (:func:`poseprompt.core.stats.crossed_interval`); claimed
  direction: below zero (``a``, the method, has the lower error);
* a **knock-out** of the component audit (``metrics/audit/<variant>.json``): the MPJPE change when
  the trained model loses one component; claimed direction: above zero (removing it costs accuracy);
* a **degradation change** under a perturbation or domain shift:
  ``(v_perturbed - v_clean) - (b_perturbed - b_clean)``; claimed direction: below zero (the method
  degrades less than the baseline). When the perturbed setting keeps the clean clips (occlusion,
  jitter, noise: the same windows, equal per-clip arrays) it is computed per clip and paired over
  seeds x clips; otherwise (speed, drop, every cross-domain set: other clips) the two paired
  differences ``v - b`` (perturbed, clean) are combined with the seeds paired and the clip sets
  independent (:func:`crossed_change`): the same seeds' models score both splits, so
  the seed-to-seed spread, which dominates at three seeds, cancels as it does in a paired difference.
  (:func:`independent_difference` treats the two intervals as wholly independent: conservative.)

Verdict (:func:`verdict`): *supported* when the 95 % interval excludes zero in the claimed direction,
*contradicted* when it excludes zero the other way, *not shown* otherwise; a test whose inputs are
absent (a variant not trained, no audit, no such suite) is *not run*, with what is missing.

Who is who (:class:`Roles`, from the ``figures`` section): ``baseline`` (gatfun, no prompt),
``matched`` (gatfun-wide: no prompt, the capacity-matched baseline), ``proposed`` (full: the paper's
model, action label given) and ``method`` (``figures.claim_variant``, full-generic-action: the
label-free model the robustness and label-free claims are about). The other variants a test names
(static, context-direct, the single-pooling and single-entry ablations) are part of the claim's
definition: :data:`CLAIMS`.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import NormalDist
from typing import Mapping, Sequence

import numpy as np

from poseprompt.core.io import write_json
from poseprompt.core.stats import INTERVAL_NOTE, Interval, crossed_interval, t_quantile
from poseprompt.plots.tables import (CLEAN_STRENGTH, SAME_WINDOWS, Column, Delta, Results, _get, clean_setting,
                                     cross_sets, data_notes, knockout_delta, label_status, set_label, suite_label,
                                     suite_settings, write_table)

SUPPORTED, CONTRADICTED, NOT_SHOWN, NOT_RUN = "supported", "contradicted", "not shown", "not run"
VERDICTS = (SUPPORTED, CONTRADICTED, NOT_SHOWN, NOT_RUN)

RULE = ("Verdict: supported = the 95 % interval excludes 0 in the claimed direction; contradicted = it "
        "excludes 0 the other way; not shown = it contains 0 (or has no width); not run = an input is absent "
        "(named). Claimed direction: < 0 for differences and degradation changes (the method's error is lower, "
        "or grows less), > 0 for knock-outs (removing the component costs accuracy).")


@dataclass(frozen=True)
class Roles:
    """The variants the claims are about (the ``figures`` section names them)."""
    baseline: str = "gatfun"
    matched: str | None = "gatfun-wide"
    proposed: str = "full"
    method: str = "full-generic-action"

    def resolve(self, name: str) -> str | None:
        """A role in braces (``{method}``) or a variant name; None for an unset role."""
        if name.startswith("{") and name.endswith("}"):
            return getattr(self, name[1:-1])
        return name


@dataclass(frozen=True)
class Diff:
    """``MPJPE(a) - MPJPE(b)`` in ``a``'s main setting; claimed below zero."""
    a: str
    b: str
    why: str = ""                  # what ``b`` lacks, when its name does not say it


@dataclass(frozen=True)
class Knockout:
    """The audit's knock-out ``label`` of ``variant`` (``fallback`` when the audit has no ``label``);
    claimed above zero."""
    variant: str
    label: str
    fallback: str | None = None


@dataclass(frozen=True)
class Degradation:
    """The method's degradation change against the baseline in every setting of the suites of
    ``kinds``, or of every cross-domain set (``kinds`` None); claimed below zero."""
    kinds: tuple[str, ...] | None


@dataclass(frozen=True)
class Claim:
    key: str
    text: str
    tests: tuple


P = "{proposed}"
#: Every claim of the abstract and every reviewer demand, with the tests that serve it, in order.
CLAIMS: tuple[Claim, ...] = (
    Claim("label-free", "Pose-adaptive prompting improves accuracy with no action label",
          (Diff("{method}", "{baseline}"), Diff("{method}", "{matched}", "capacity-matched"))),
    Claim("adaptation", "The gain comes from adapting the prompt to the pose",
          (Diff(P, "static", "prompts not adapted to the pose"), Knockout(P, "delta_p_mean"))),
    Claim("prompt", "The gain needs the prompt, not only the pose context",
          (Diff("{method}", "context-direct", "the same pose context mapped to P' without text"),
           Diff(P, "context-direct", "the same pose context mapped to P' without text; only the first is "
                                     "given the action label: label-confounded"))),
    Claim("encoding", "The prompt influences attention-based encoding (pose stream)",
          (Knockout(P, "add_pose"), Knockout(P, "xattn_pose"), Diff("full-encoding-only", "{baseline}"))),
    Claim("refinement", "The prompt influences velocity-driven refinement (motion stream)",
          (Knockout(P, "scale_motion"), Knockout(P, "xattn_motion"), Diff("full-refinement-only", "{baseline}"))),
    Claim("occlusion", "More robust to occlusion than the baseline", (Degradation(("occlusion",)),)),
    Claim("irregular", "More robust to irregular motion than the baseline",
          (Degradation(("speed", "drop", "jitter")),)),
    Claim("shift", "More robust to domain shift than the baseline",
          (Degradation(("noise",)), Degradation(None))),      # the 2D-noise suite: a detector shift on the test clips
    Claim("laplacian", "The spectral Laplacian pooling matters",
          (Knockout(P, "spatial_heads+stats", "spatial_heads"), Knockout(P, "init:spatial"),
           Diff(P, "adaptive-temporal", "mean spatial pooling"))),
    Claim("gaussian", "The multi-scale Gaussian pooling matters",
          (Knockout(P, "temporal_heads+stats", "temporal_heads"), Knockout(P, "init:temporal"),
           Diff(P, "adaptive-spatial", "mean temporal pooling"))),
    Claim("pooling", "Both learned poolings together beat mean pooling",
          (Diff(P, "adaptive-mean", "mean pooling on both axes"),)),
)


@dataclass
class ClaimRow:
    """One test of one claim and its verdict."""
    claim_key: str
    claim: str
    test: str
    kind: str                          # difference | knock-out | degradation
    claimed: int                       # -1: below zero is claimed, +1: above zero
    interval: Interval | None = None
    data: str = ""
    missing: str | None = None         # what is absent (then the verdict is "not run")
    combined: str | None = None        # degradation changes: "per clip" | "seed-paired"
    variants: tuple[str, ...] = ()
    setting: str | None = None
    verdict: str = field(init=False)

    def __post_init__(self):
        self.verdict = NOT_RUN if self.missing else verdict(self.interval, self.claimed)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["interval"] = self.interval.as_dict() if self.interval is not None else None
        d["variants"] = list(self.variants)
        d["claimed"] = "< 0" if self.claimed < 0 else "> 0"
        return d


def verdict(iv: Interval | None, claimed: int) -> str:
    """The rule (:data:`RULE`) for one interval and the claimed sign (-1 or +1)."""
    if iv is None or not (math.isfinite(iv.lo) and math.isfinite(iv.hi)):
        return NOT_SHOWN
    if iv.lo > 0.0:
        return SUPPORTED if claimed > 0 else CONTRADICTED
    if iv.hi < 0.0:
        return SUPPORTED if claimed < 0 else CONTRADICTED
    return NOT_SHOWN


def independent_difference(first: Interval, second: Interval, level: float = 0.95) -> Interval:
    """``first - second`` of two intervals taken as independent: ``se = sqrt(se_1^2 + se_2^2)``, the
    smaller of the two degrees of freedom (conservative), Student's t."""
    m = first.mean - second.mean
    se = math.hypot(first.se, second.se)
    df = min(first.df, second.df)
    how = "independent: (perturbed) - (clean) paired differences"
    if not math.isfinite(se):
        return Interval(m, math.nan, math.nan, se, df, min(first.seeds, second.seeds), first.clips + second.clips, how)
    if se == 0.0:
        q = 0.0
    elif math.isfinite(df) and df > 0:
        q = t_quantile(0.5 + level / 2.0, df)
    else:
        q = NormalDist().inv_cdf(0.5 + level / 2.0)
    return Interval(m, m - q * se, m + q * se, se, df, min(first.seeds, second.seeds), first.clips + second.clips,
                    how)


def crossed_change(d1: np.ndarray, d2: np.ndarray, level: float = 0.95) -> Interval:
    """Interval of ``mean(d1) - mean(d2)`` for two (S seeds, C_i clips) arrays of the *same* seeds on
    *different* clips (a paired difference on a perturbed split that has other windows than the clean
    one, minus the same paired difference on the clean split). Seeds are paired, clip sets
    independent: ``se^2 = var_s(m1_s - m2_s) / S + var_c(d1) / C_1 + var_c(d2) / C_2`` (``m_i_s`` the
    seed means, the clip terms over the seed-averaged clips), Satterthwaite df."""
    d1, d2 = (np.asarray(d, dtype=np.float64) for d in (d1, d2))
    d1, d2 = (d[None, :] if d.ndim == 1 else d for d in (d1, d2))
    if d1.shape[0] != d2.shape[0]:
        raise ValueError(f"crossed_change: the two arrays need the same seeds, got {d1.shape[0]} and {d2.shape[0]}")
    d1, d2 = d1[:, np.isfinite(d1).all(axis=0)], d2[:, np.isfinite(d2).all(axis=0)]
    S, C1, C2 = d1.shape[0], d1.shape[1], d2.shape[1]
    if C1 < 2 or C2 < 2:
        raise ValueError("crossed_change: need at least 2 clips on each side")
    terms = [(float(d1.mean(0).var(ddof=1)) / C1, C1 - 1), (float(d2.mean(0).var(ddof=1)) / C2, C2 - 1)]
    if S > 1:
        terms.append((float((d1.mean(1) - d2.mean(1)).var(ddof=1)) / S, S - 1))
    se2 = sum(t for t, _ in terms)
    m = float(d1.mean() - d2.mean())
    how = "seeds paired, clips independent" if S > 1 else "clips independent (1 seed)"
    if se2 == 0.0:
        return Interval(m, m, m, 0.0, float("inf"), S, C1 + C2, how)
    df = se2 ** 2 / sum(t ** 2 / k for t, k in terms if t)
    q = t_quantile(0.5 + level / 2.0, df)
    se = math.sqrt(se2)
    return Interval(m, m - q * se, m + q * se, se, float(df), S, C1 + C2, how)


def degradation_change(R: Results, v: str, b: str, perturbed: str, clean: str, same_clips: bool
                       ) -> tuple[Interval | None, str | None, str | None]:
    """``(v_perturbed - v_clean) - (b_perturbed - b_clean)`` with its interval, how it was combined
    ("per clip" | "seed-paired") and what is missing (None when computed)."""
    arrays = {(x, s): _get(R.clips, (x, s)) for x in (v, b) for s in (perturbed, clean)}
    absent = [f"{x} in {s}" for (x, s), a in arrays.items() if a is None]
    if absent:
        return None, None, "no per-clip errors of " + ", ".join(absent)
    vp, vc, bp, bc = arrays[(v, perturbed)], arrays[(v, clean)], arrays[(b, perturbed)], arrays[(b, clean)]
    if same_clips and vp.shape == vc.shape == bp.shape == bc.shape and vp.shape[1] >= 2:
        return crossed_interval((vp - vc) - (bp - bc)), "per clip", None
    if not (vp.shape == bp.shape and vc.shape == bc.shape and vp.shape[0] == vc.shape[0]
            and min(vp.shape[1], vc.shape[1]) >= 2):
        return None, None, f"{v} and {b} are not paired (other seeds or clips)"
    return crossed_change(vp - bp, vc - bc), "seed-paired", None


# ---- the rows ---------------------------------------------------------------------------------------

_LABEL = {"yes": "given", "no (generic)": "not given", "no text": "no text", "no prompt": "no prompt"}


def _seeds(R: Results, variants: Sequence[str]) -> str:
    seeds = [tuple(R.metrics[v].get("seeds") or []) for v in variants]
    if len(set(seeds)) > 1:
        return "seeds " + "; ".join(f"{v}: {', '.join(map(str, s))}" for v, s in zip(variants, seeds))
    return f"seeds {', '.join(map(str, seeds[0]))}" if seeds and seeds[0] else "seeds ?"


def _data(R: Results, variants: Sequence[str], iv: Interval | None, where: str | None = None,
          inputs: str | None = None, clips: str | None = None) -> str:
    """Split, 2D input, seeds (x clips) and whether the action label was given, of one test."""
    ms = [R.metrics[v] for v in variants]
    where = where or ", ".join(sorted({f"{m.get('split')} split of {m.get('source')}" for m in ms}))
    inputs = inputs or ", ".join(sorted({str(m.get("input_2d")) for m in ms}))
    clips = f" × {clips or f'{iv.clips} clips'}" if iv is not None else ""
    label = ", ".join(f"{v} {_LABEL[label_status(R.metrics[v], R.configs.get(v))]}" for v in variants)
    return f"{where}; 2D input {inputs}; {_seeds(R, variants)}{clips}; action label: {label}"


#: The figures key that names each role.
ROLE_KEYS = {"baseline": "figures.baseline", "matched": "figures.matched_baseline", "proposed": "figures.proposed",
             "method": "figures.claim_variant"}


def _absent(R: Results, names: Sequence[str | None], raw: Sequence[str]) -> str | None:
    """What is absent among the variants ``names`` (resolved from ``raw``), or None."""
    out = []
    for n, r in zip(names, raw):
        if n is None:
            out.append(f"no variant configured ({ROLE_KEYS.get(r.strip('{}'), r)}: null)")
        elif n not in R.metrics:
            out.append(f"{n} not trained (not in params.yaml variants)")
    return "; ".join(out) or None


def _flip_text(setting: str) -> str:
    return "test split, flip averaging" if setting == "test_flip" else "test split, no flip averaging"


def _difference(R: Results, claim: Claim, t: Diff, roles: Roles) -> ClaimRow:
    a, b = roles.resolve(t.a), roles.resolve(t.b)
    shown = [x if x is not None else f"(no {r.strip('{}')} baseline)" for x, r in ((a, t.a), (b, t.b))]
    test = f"MPJPE {shown[0]} − {shown[1]}" + (f" ({b}: {t.why})" if t.why and b else "")
    missing = _absent(R, (a, b), (t.a, t.b))
    if missing:
        return ClaimRow(claim.key, claim.text, test, "difference", -1, missing=missing,
                        variants=tuple(x for x in (a, b) if x))
    setting = R.metrics[a]["main"]["setting"]
    iv = R.paired(a, b, setting)
    return ClaimRow(claim.key, claim.text, f"{test}, {_flip_text(setting)}", "difference", -1, iv,
                    _data(R, (a, b), iv), None if iv is not None else
                    f"no paired per-clip errors of {a} and {b} in {setting} (other seeds or clips)",
                    variants=(a, b), setting=setting)


def _knockout(R: Results, audits: Mapping, claim: Claim, t: Knockout, roles: Roles) -> ClaimRow:
    v = roles.resolve(t.variant)
    entry = _get(audits, (v, "summary", "knockout", t.label)) or {}
    if not entry and t.fallback and _get(audits, (v, "summary", "knockout", t.fallback)):
        # the heads' knock-out with the context statistics re-estimated is the fair one (docs/audit.md);
        # a model without the standardisation has only the plain knock-out
        t = Knockout(t.variant, t.fallback)
        entry = _get(audits, (v, "summary", "knockout", t.label)) or {}
    what = entry.get("what")
    test = f"knock-out {t.label} of {v}" + (f": {what}" if what else "")
    missing = _absent(R, (v,), (t.variant,))
    if missing is None and v not in audits:
        missing = f"no audit of {v} (evaluate.audit)"
    elif missing is None and not entry:
        missing = f"the audit of {v} has no knock-out {t.label}"
    iv = knockout_delta(audits, v, t.label).iv if missing is None else None
    if missing is None and iv is None:
        missing = f"the knock-out {t.label} of {v} has no interval on the test split"
    if missing:
        return ClaimRow(claim.key, claim.text, test, "knock-out", +1, missing=missing, variants=(v,) if v else ())
    seeds = _get(audits, (v, "seeds")) or R.metrics[v].get("seeds") or []
    m = R.metrics[v]
    span = " (interval over the seeds' means)" if iv.how == "seed means" else f" × {iv.clips} clips"
    data = (f"{m.get('split')} split of {m.get('source')}; 2D input {m.get('input_2d')}; audit seeds "
            f"{', '.join(map(str, seeds))}{span}, no flip averaging; action label: {v} "
            f"{_LABEL[label_status(m, R.configs.get(v))]}")
    return ClaimRow(claim.key, claim.text, test + " (ΔMPJPE when removed)", "knock-out", +1, iv, data,
                    variants=(v,), setting="test")


def _degradation(R: Results, claim: Claim, t: Degradation, roles: Roles) -> list[ClaimRow]:
    v, b = roles.method, roles.baseline
    pool = [x for x in (v, b) if x in R.metrics] or list(R.metrics)
    missing = _absent(R, (v, b), ("{method}", "{baseline}"))
    if t.kinds is not None:
        settings = [(suite_label(s, k, st), f"suite/{s}/{st}", k in SAME_WINDOWS, None, None)
                    for s, k, st in suite_settings(R.metrics, pool, t.kinds) if float(st) != CLEAN_STRENGTH.get(k)]
        none = f"no suite of kind {', '.join(t.kinds)} was evaluated (evaluate.suites)"
    else:
        # A graded shift's sets share their held-out subject, motions and cameras (only the shift
        # differs), but not the test split's subject: each stronger level is compared with the mildest
        # level of its kind (same windows: per clip), the mildest level and the real sets with the
        # test split (other clips and another subject: seed-paired).
        sets = cross_sets(R.metrics, pool)
        mildest = {}
        for s_, k_, st_ in sets:
            if k_ is not None and (k_ not in mildest or st_ < mildest[k_][1]):
                mildest[k_] = (s_, st_)
        settings = []
        for s_, k_, st_ in sets:
            ref = mildest.get(k_) if k_ is not None else None
            if ref is not None and ref[0] != s_:
                settings.append((f"{set_label(s_, k_, st_)} vs {set_label(ref[0], k_, ref[1])}", f"cross/{s_}", True,
                                 s_, f"cross/{ref[0]}"))
            else:
                settings.append((set_label(s_, k_, st_), f"cross/{s_}", False, s_, None))
        none = "no cross-domain set in this run (data.cross_domain, data.synthetic.shifts)"
    if not settings:
        return [ClaimRow(claim.key, claim.text, f"degradation change {v} vs {b}", "degradation", -1,
                         missing=none, variants=(v, b))]
    rows = []
    for label, perturbed, same, cross, reference in settings:
        test = f"degradation change {v} vs {b}: {label}"
        if missing:
            rows.append(ClaimRow(claim.key, claim.text, test, "degradation", -1, missing=missing, variants=(v, b),
                                 setting=perturbed))
            continue
        clean = reference or clean_setting(R.metrics[v])
        iv, how, absent = degradation_change(R, v, b, perturbed, clean, same)
        where = inputs = clips = None
        if how == "seed-paired":
            clips = f"({R.clips[v][perturbed].shape[1]} perturbed + {R.clips[v][clean].shape[1]} clean) clips"
        if cross is not None:
            d = (R.metrics[v].get("cross_domain") or {}).get(cross) or {}
            where = (f"{cross} (source {d.get('source')}) against {reference.removeprefix('cross/')}, the same "
                     f"subject and windows" if reference else
                     f"{cross} (source {d.get('source')}) against the test split (another subject)")
            inputs = str(d.get("input_2d"))
        flip = ("flip averaging" if clean_setting(R.metrics[v]) == "test_flip" else "no flip averaging") \
            if reference else f"{_flip_text(clean)} for clean"
        rows.append(ClaimRow(claim.key, claim.text, f"{test} ({how}; {flip})" if how else test,
                             "degradation", -1, iv, _data(R, (v, b), iv, where, inputs, clips), absent, how, (v, b),
                             perturbed))
    return rows


def claim_rows(R: Results, audits: Mapping, roles: Roles, claims: Sequence[Claim] = CLAIMS) -> list[ClaimRow]:
    """Every test of every claim, in order."""
    rows: list[ClaimRow] = []
    for c in claims:
        for t in c.tests:
            if isinstance(t, Diff):
                rows.append(_difference(R, c, t, roles))
            elif isinstance(t, Knockout):
                rows.append(_knockout(R, audits, c, t, roles))
            else:
                rows += _degradation(R, c, t, roles)
    return rows


def verdict_counts(rows: Sequence[ClaimRow]) -> dict[str, int]:
    return {k: sum(r.verdict == k for r in rows) for k in VERDICTS}


# ---- the table --------------------------------------------------------------------------------------

def recipe_note(params: Mapping, steps: int | None = None) -> str:
    """Which training recipe and budget the verdicts hold for (from ``params``; ``steps`` per model as
    trained, from a training summary)."""
    tr, mo = params.get("train") or {}, params.get("model") or {}
    occ = tr.get("occlusion") or {}
    te = (mo.get("text_encoder") or {})
    return (f"Recipe and budget the verdicts hold for: {tr.get('epochs')} epochs"
            + (f" = {steps:,} AdamW steps per model" if steps else "")
            + f" of {tr.get('batch_size')} clips, lr {tr.get('lr')} ({tr.get('schedule')} schedule), "
            f"loss MPJPE + {tr.get('w_nmpjpe')} N-MPJPE + {tr.get('w_velocity')} velocity, checkpoint by "
            f"{tr.get('select')}; T = {mo.get('frames')}, width {mo.get('width')}, depth {mo.get('depth')}; "
            f"text tower {te.get('arch')} ({te.get('pretrained') or 'random, frozen'}); missing joints in "
            f"training: {occ.get('prob', 0)} of the clips, up to {occ.get('max_rate', 0)} of their entries. "
            "A gain can shrink as the baseline gets stronger: the verdicts say nothing about other budgets.")


def claims_table(R: Results, audits: Mapping, roles: Roles, out_dir: str | Path,
                 claims: Sequence[Claim] = CLAIMS, recipe: str | None = None) -> tuple[list[Path], list[ClaimRow]]:
    """Write ``claims.md``, ``claims.tex`` and ``claims.json`` into ``out_dir``; ``recipe`` (see
    :func:`recipe_note`) says which training budget the verdicts hold for."""
    rows = claim_rows(R, audits, roles, claims)
    shown, last = [], None
    for r in rows:
        shown.append({"claim": r.claim if r.claim_key != last else "", "test": r.test,
                      "claimed": "< 0" if r.claimed < 0 else "> 0", "value": Delta(r.interval),
                      "data": r.data if not r.missing else "–",
                      "verdict": r.verdict if not r.missing else f"{NOT_RUN}: {r.missing}"})
        last = r.claim_key
    cols = [Column("claim", "Claim", align="p{2.6cm}"), Column("test", "Test", align="p{3.6cm}"),
            Column("claimed", "Claimed", align="c"), Column("value", "Value [95 % CI] (mm)", align="r"),
            Column("data", "Split, 2D input, seeds, action label", align="p{4.2cm}"),
            Column("verdict", "Verdict", align="p{2.2cm}")]
    independent = any(r.combined == "seed-paired" for r in rows)
    counts = verdict_counts(rows)
    prop = R.metrics.get(roles.proposed)
    prop_label = (_LABEL.get(label_status(prop, R.configs.get(roles.proposed)), "?") if prop else "not trained")
    clean = clean_setting(R.metrics[roles.method]) if roles.method in R.metrics else "test"
    notes = [RULE,
             f"Roles (figures section of params.yaml): baseline {roles.baseline}; capacity-matched baseline "
             f"{roles.matched or 'none'}; proposed model {roles.proposed} (action label {prop_label}); label-free "
             f"method {roles.method} (figures.claim_variant), the method of the robustness and domain-shift rows."]
    if recipe:
        notes.append(recipe)
    notes += [
             "Differences: MPJPE of the first variant minus the second's, in the first's main setting, paired "
             "over seeds x test clips. Knock-outs: the component audit (poseprompt/stages/audit.py), the same trained "
             "model on the same test clips with one component removed, MPJPE change without flip averaging; the "
             "pooling heads' knock-outs with the context statistics re-estimated under them (+stats, "
             "docs/audit.md) where the model standardises its context.",
             "Degradation change = (method perturbed − method reference) − (baseline perturbed − baseline "
             f"reference); reference = the clean test split ({_flip_text(clean)}, as the perturbed settings), for a "
             "graded shift above its mildest level that mildest level (the same held-out subject and windows). "
             "Per clip (same windows: occlusion, jitter, noise, graded shift levels): the crossed interval over "
             "seeds x clips of the per-clip values." +
             (" Seed-paired (speed, drop, the mildest shift level and real cross-domain sets: other clips than the "
              "reference): the per-clip differences method − baseline on the perturbed and on the reference clips, "
              "with the seeds paired and the two clip sets independent (se² = var_seed(m_pert − m_ref) / S + "
              "var_clip(pert) / C_pert + var_clip(ref) / C_ref, Satterthwaite's degrees of freedom); the mildest "
              "shift level also changes the subject." if independent else ""),
             INTERVAL_NOTE,
             "Caveats: the clip term treats the test windows as independent, but windows of one sequence and its "
             "camera views are correlated, so intervals whose seed term is small (high degrees of freedom) are "
             "too narrow; and the table makes many tests: at 95 % about one in twenty rows without a true effect "
             "still gets a verdict other than 'not shown'. Read a lone verdict among its neighbours "
             "(strengths, seeds, the Bandai study)."] + data_notes(R.metrics, R.configs, list(R.metrics)) + [
             R.seeds_note(list(R.metrics)),
             "Count: " + ", ".join(f"{n} {k}" for k, n in counts.items()) + "."]
    paths = write_table(out_dir, "claims", "The paper's claims, each tested on this run's results.", cols, shown,
                        notes, wide=True)
    paths.append(write_json(Path(out_dir) / "claims.json",
                            {"rule": RULE, "roles": asdict(roles), "counts": counts, "recipe": recipe,
                             "rows": [r.as_dict() for r in rows]}))
    return paths, rows
