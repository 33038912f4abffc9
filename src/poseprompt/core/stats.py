"""Statistics of the tables: spread over seeds and paired differences with 95 % intervals.

Every number of a table is the mean over the seeds with its sample standard deviation; every
comparison with the baseline is a paired difference with a 95 % confidence interval. Two kinds of
pairs occur:

* **over clips** (one model, two conditions, e.g. the component audit's knock-outs): the
  differences ``d_c`` of the same test clip under both conditions; the interval is Student's
  ``mean(d) +- t_{0.975, C-1} sd(d) / sqrt(C)``;
* **over seeds and clips** (two variants trained with the same seeds, scored on the same clips):
  ``d_sc = e_variant(s, c) - e_baseline(s, c)``. Seeds and clips are crossed random factors: the
  standard error of the mean difference is ``sqrt(s2_seed / S + s2_clip / C)`` with ``s2_seed`` the
  variance of the per-seed mean differences and ``s2_clip`` that of the per-clip mean differences
  (averaged over seeds), and the quantile is Student's with Satterthwaite's degrees of freedom.
  With one seed only the clip term remains (and the tables say "1 seed").

A difference is **significant** (bold in the tables) when its interval excludes zero.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np


# ---- Student's t quantile (no SciPy) ------------------------------------------------------------

def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularised incomplete beta function (modified Lentz)."""
    tiny, eps = 1e-300, 1e-15
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    lbeta = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(lbeta) * _betacf(a, b, x) / a
    return 1.0 - math.exp(lbeta) * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom (df may be fractional)."""
    x = df / (df + t * t)
    tail = 0.5 * _betainc(df / 2.0, 0.5, x)
    return 1.0 - tail if t > 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t (bisection on :func:`t_cdf`; 1e-10 accurate)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"t_quantile: p must be in (0, 1), got {p}")
    if df <= 0 or not math.isfinite(df):
        raise ValueError(f"t_quantile: degrees of freedom must be positive and finite, got {df}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12:
            break
    return 0.5 * (lo + hi)


# ---- spread and intervals ----------------------------------------------------------------------

@dataclass(frozen=True)
class Spread:
    """Mean and sample standard deviation (ddof 1; None with one value) over ``n`` values."""
    mean: float
    std: float | None
    n: int

    def as_dict(self) -> dict:
        return asdict(self)


def spread(values: Sequence[float]) -> Spread:
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=np.float64)
    if len(v) == 0:
        return Spread(float("nan"), None, 0)
    return Spread(float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else None, len(v))


@dataclass(frozen=True)
class Interval:
    """A mean difference with its 95 % interval; ``how`` says what it is paired over."""
    mean: float
    lo: float
    hi: float
    se: float
    df: float
    seeds: int
    clips: int
    how: str

    @property
    def significant(self) -> bool:
        """The interval excludes zero."""
        return bool(self.lo > 0.0 or self.hi < 0.0)

    def as_dict(self) -> dict:
        return {**asdict(self), "significant": self.significant}


def paired_interval(d: Sequence[float], level: float = 0.95) -> Interval:
    """Interval of the mean of paired differences ``d`` (one value per clip)."""
    d = np.asarray(d, dtype=np.float64)
    d = d[np.isfinite(d)]
    n = len(d)
    if n < 2:
        m = float(d.mean()) if n else float("nan")
        return Interval(m, float("nan"), float("nan"), float("nan"), 0.0, 1, n, "clips")
    se = float(d.std(ddof=1) / math.sqrt(n))
    q = t_quantile(0.5 + level / 2.0, n - 1)
    m = float(d.mean())
    return Interval(m, m - q * se, m + q * se, se, float(n - 1), 1, n, "clips")


def crossed_interval(d: np.ndarray, level: float = 0.95) -> Interval:
    """Interval of the mean of ``d`` (S seeds, C clips) with seeds and clips as crossed random
    factors: ``se^2 = var_s(mean_c d) / S + var_c(mean_s d) / C``, Satterthwaite df."""
    d = np.asarray(d, dtype=np.float64)
    if d.ndim == 1:
        d = d[None, :]
    keep = np.isfinite(d).all(axis=0)
    d = d[:, keep]
    S, C = d.shape
    if S == 1:
        iv = paired_interval(d[0], level)
        return Interval(iv.mean, iv.lo, iv.hi, iv.se, iv.df, 1, iv.clips, "clips (1 seed)")
    if C < 2:
        raise ValueError("crossed_interval: need at least 2 clips")
    a = float(d.mean(axis=1).var(ddof=1)) / S           # seed term
    b = float(d.mean(axis=0).var(ddof=1)) / C           # clip term
    se2 = a + b
    m = float(d.mean())
    if se2 == 0.0:
        return Interval(m, m, m, 0.0, float("inf"), S, C, "seeds x clips")
    df = se2 ** 2 / ((a ** 2 / (S - 1) if a else 0.0) + (b ** 2 / (C - 1) if b else 0.0))
    q = t_quantile(0.5 + level / 2.0, df)
    se = math.sqrt(se2)
    return Interval(m, m - q * se, m + q * se, se, float(df), S, C, "seeds x clips")


INTERVAL_NOTE = ("Differences to the baseline are paired: the same seeds and the same test clips (windows "
                 "of T frames) for both models; 95 % interval with seeds and clips as crossed random factors "
                 "(se^2 = s^2_seed / S + s^2_clip / C, Student's t with Satterthwaite's degrees of freedom). "
                 "Bold: the interval excludes zero.")
