"""The statistics of the tables on small hand-made cases: spread, intervals, the bold rule."""
import math

import numpy as np
import pytest

from poseprompt.core.stats import crossed_interval, paired_interval, spread, t_quantile
from poseprompt.plots.tables import Cell, Column, Delta, Results, render
from poseprompt.stages.evaluate import over_seeds


def test_t_quantiles_match_the_tables():
    for df, q in ((1, 12.7062), (2, 4.3027), (4, 2.7764), (10, 2.2281), (30, 2.0423)):
        assert t_quantile(0.975, df) == pytest.approx(q, abs=1e-4)
    assert t_quantile(0.025, 10) == pytest.approx(-2.2281, abs=1e-4)
    assert t_quantile(0.975, 1e6) == pytest.approx(1.95996, abs=1e-4)


def test_spread_is_mean_and_sample_sd():
    s = spread([1.0, 2.0, 6.0])
    assert s.mean == 3.0 and s.std == pytest.approx(math.sqrt(7.0)) and s.n == 3
    one = spread([4.0])
    assert one.mean == 4.0 and one.std is None


def test_paired_interval_by_hand():
    d = [1.0, 2.0, 3.0, 4.0]                    # mean 2.5, sd 1.2910, se 0.6455, t(3) = 3.1824
    iv = paired_interval(d)
    assert iv.mean == 2.5
    assert iv.hi - iv.mean == pytest.approx(3.18245 * 1.290994 / 2.0, rel=1e-4)
    assert iv.significant
    assert not paired_interval([-1.0, 1.0, -2.0, 2.0]).significant


def test_crossed_interval_by_hand():
    d = np.array([[1.0, 3.0, 2.0],               # seeds x clips
                  [2.0, 4.0, 3.0]])
    # per-seed means 2, 3 -> var 0.5 / 2 = 0.25; per-clip means 1.5, 3.5, 2.5 -> var 1 / 3
    a, b = 0.5 / 2, 1.0 / 3
    df = (a + b) ** 2 / (a ** 2 / 1 + b ** 2 / 2)
    iv = crossed_interval(d)
    assert iv.mean == 2.5 and iv.se == pytest.approx(math.sqrt(a + b))
    assert iv.df == pytest.approx(df)
    assert iv.hi - iv.mean == pytest.approx(t_quantile(0.975, df) * math.sqrt(a + b))
    one = crossed_interval(d[:1])
    assert one.seeds == 1 and "1 seed" in one.how and one.mean == 2.0


def test_over_seeds_gives_means_sds_and_every_seed():
    r = {0: {"test": {"mpjpe": 10.0}, "input_2d": "x", "action_label_given": True},
         1: {"test": {"mpjpe": 14.0}, "input_2d": "x", "action_label_given": True}}
    o = over_seeds(r)
    assert o["test"]["mpjpe"] == 12.0 and o["std"]["test"]["mpjpe"] == pytest.approx(math.sqrt(8.0))
    assert o["seeds"] == [0, 1] and o["per_seed"]["1"]["test"]["mpjpe"] == 14.0
    assert o["input_2d"] == "x" and o["action_label_given"] is True
    assert over_seeds({3: r[0]})["std"] == {}


def _results(diff_a, diff_b, seeds=(0, 1, 2)):
    """Three variants; ``a`` and ``b`` differ from the baseline by the given per-clip amounts."""
    rng = np.random.default_rng(0)
    base = rng.uniform(50, 60, (len(seeds), 40))
    clips = {"base": {"test": base}, "a": {"test": base + diff_a}, "b": {"test": base + diff_b}}
    metrics = {v: {"test": {"mpjpe": float(c["test"].mean())}, "std": {"test": {"mpjpe": 0.5}},
                   "seeds": list(seeds), "main": {"setting": "test"}, "source": "s", "input_2d": "i", "split": "test",
                   "parameters": {"trainable": 1, "text_encoder": 0}} for v, c in clips.items()}
    return Results(metrics, {v: {"prompt": "none"} for v in clips}, clips, "base")


def test_bold_only_where_the_interval_excludes_zero():
    rng = np.random.default_rng(1)
    R = _results(-5.0 + rng.normal(0, 1, (3, 40)), rng.normal(0, 1, (3, 40)))
    a, b, base = R.cell("a", ("test", "mpjpe"), "test"), R.cell("b", ("test", "mpjpe"), "test"), \
        R.cell("base", ("test", "mpjpe"), "test")
    assert a.bold and not b.bold and not base.bold
    assert R.delta("a", "test").bold and not R.delta("b", "test").bold
    md, tex = render("t", "c", [Column("variant", "V", align="l"), Column("m", "MPJPE"), Column("d", "Δ")],
                     [{"variant": v, "m": R.cell(v, ("test", "mpjpe"), "test"), "d": R.delta(v, "test")}
                      for v in ("base", "a", "b")], ["note"])
    lines = {ln.split("|")[1].strip(): ln for ln in md.splitlines() if ln.startswith("| ")}
    assert "**" in lines["a"] and "**" not in lines["b"] and "**" not in lines["base"]
    assert " ± 0.5" in lines["a"] and "[" in lines["a"]
    assert r"\textbf" in tex


def test_one_seed_says_so():
    R = _results(1.0, 2.0, seeds=(0,))
    assert "1 seed" in R.seeds_note(["a", "b"])
    assert Cell(3.0, None).text() == "3.0" and Cell(3.0, 0.25).text() == "3.0 ± 0.2"
    assert Delta(None).text() == "–"
