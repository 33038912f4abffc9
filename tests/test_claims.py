"""The claims table, the two-baseline comparison tables and Figures 5 and 7, built from small
fixture metrics, audits and per-clip errors (no training): every verdict rule (supported,
contradicted, not shown, not run), both paths of the degradation change, the long robustness and
cross-domain tables with Δ against both baselines, and the figures with only real, only graded or
both kinds of cross-domain sets."""
import json
import math

import numpy as np
import pytest

from poseprompt.core.stats import Interval, crossed_interval, t_quantile
from poseprompt.plots import claims as CL
from poseprompt.plots.tables import Results, cross_domain, cross_sets, robustness

S, C = 3, 40                                # seeds, clean test clips
SPEED_C, CROSS_C = 30, 35                   # clips of a resampled suite and of a cross-domain set
SETTINGS = {"test": C, "suite/occlusion/0.4": C, "suite/occlusion-side/0.25": C, "suite/speed/2.0": SPEED_C,
            "suite/speed/1.0": C, "cross/shift_camera-0.5": CROSS_C, "cross/shift_camera-1": CROSS_C,
            "cross/shift_3dhp": C}
CONFIGS = {"gatfun": {"prompt": "none"}, "gatfun-wide": {"prompt": "none"}, "static": {"prompt": "static"},
           "full": {"prompt": "adaptive", "action_text": "label"},
           "full-generic-action": {"prompt": "adaptive", "action_text": "generic"},
           "context-direct": {"prompt": "direct"}}


def noise(seed, shape, sd=1.0, centred=False):
    """Gaussian noise; ``centred``: its mean over seeds and clips is exactly 0, so that a difference
    made of it alone has an interval around 0 (a "not shown" that cannot turn significant by chance)."""
    n = np.random.default_rng(seed).normal(0.0, sd, shape)
    return n - n.mean() if centred else n


def make_clips():
    """Per-clip errors (S, W) of every variant in every setting. gatfun is the reference; the other
    variants add a known shift plus noise, so each verdict is known in advance:

    * full-generic-action: 5 mm better than gatfun everywhere, and under occlusion 0.4 its error grows
      8 mm less (per clip: supported); on shift_camera-1 it grows 8 mm more (contradicted);
    * gatfun-wide: as good as full-generic-action (their difference: not shown);
    * full: 3 mm worse than static (contradicted); context-direct: 0.2 mm worse than full (not shown)."""
    base = {k: np.random.default_rng(i).uniform(40, 80, (S, n)) for i, (k, n) in enumerate(SETTINGS.items())}
    base["suite/occlusion/0.4"] = base["test"] + 30 + noise(1, (S, C), 2.0)      # the same windows, degraded
    base["suite/occlusion-side/0.25"] = base["test"] + 20 + noise(2, (S, C), 2.0)
    base["suite/speed/1.0"] = base["test"].copy()
    clips = {"gatfun": base}
    gfa = {k: a - 5.0 + noise(10, a.shape, 0.5) for k, a in base.items()}
    gfa["suite/occlusion/0.4"] = gfa["test"] + (base["suite/occlusion/0.4"] - base["test"]) - 8.0 + noise(11, (S, C), 0.5)
    gfa["suite/occlusion-side/0.25"] = gfa["test"] + (base["suite/occlusion-side/0.25"] - base["test"]) + \
        noise(13, (S, C), 2.0, centred=True)
    gfa["cross/shift_camera-1"] = base["cross/shift_camera-1"] - 5.0 + 8.0 + noise(12, (S, CROSS_C), 0.5)
    clips["full-generic-action"] = gfa
    clips["gatfun-wide"] = {k: a + noise(20, a.shape, 3.0, centred=True) for k, a in gfa.items()}
    clips["static"] = {k: a - 6.0 + noise(30, a.shape, 0.5) for k, a in base.items()}
    clips["full"] = {k: a + 3.0 + noise(40, a.shape, 0.5) for k, a in clips["static"].items()}
    clips["context-direct"] = {k: a + 0.2 + noise(50, a.shape, 4.0, centred=True) for k, a in clips["full"].items()}
    return clips


def make_metrics(clips):
    def entry(a):
        return {"mpjpe": float(a.mean()), "p_mpjpe": float(a.mean()) * 0.7}

    def sd(a):
        return {"mpjpe": float(a.mean(1).std(ddof=1)), "p_mpjpe": float(a.mean(1).std(ddof=1)) * 0.7}
    out = {}
    for v, c in clips.items():
        suites, suites_sd, cross, cross_sd = {}, {}, {}, {}
        for k, a in c.items():
            if k.startswith("suite/"):
                _, s, st = k.split("/")
                suites.setdefault(s, {})[st] = entry(a)
                suites_sd.setdefault(s, {})[st] = sd(a)
            elif k.startswith("cross/"):
                name = k.split("/", 1)[1]
                graded = name.startswith("shift_camera")
                cross[name] = {**entry(a), "source": "synthetic" if graded else "3dhp",
                               "input_2d": "projection" if graded else "ground-truth 2D",
                               "shift": "camera" if graded else None,
                               "shift_strength": float(name.split("-")[1]) if graded else None}
                cross_sd[name] = sd(a)
        out[v] = {"variant": v, "split": "test", "source": "synthetic", "input_2d": "projection",
                  "action_label_given": CONFIGS[v].get("action_text") == "label", "flip_in_suites": False,
                  "seeds": list(range(S)), "main": {"setting": "test", **entry(c["test"])}, "test": entry(c["test"]),
                  "std": {"test": sd(c["test"]), "suites": suites_sd, "cross_domain": cross_sd},
                  "suites": suites, "cross_domain": cross,
                  "suite_specs": {"occlusion": {"kind": "occlusion", "mode": "limbs"},
                                  "occlusion-side": {"kind": "occlusion", "mode": "side"},
                                  "speed": {"kind": "speed"}},
                  "parameters": {"trainable": 1000 if v == "gatfun" else 1500,
                                 "text_encoder": 0 if CONFIGS[v]["prompt"] in ("none", "direct") else 10}}
    return out


def audit_entry(mean, lo, hi, what="removed"):
    return {"what": what, "test": {"interval": {"mean": mean, "lo": lo, "hi": hi, "se": 1.0, "df": 10.0, "seeds": S,
                                                "clips": 64, "how": "seeds x clips", "significant": lo > 0 or hi < 0}}}


AUDITS = {"full": {"seeds": [0, 1, 2], "summary": {"knockout": {
    "delta_p_mean": audit_entry(4.0, 1.0, 7.0, "Δp replaced by its mean"),     # supported
    "add_pose": audit_entry(0.5, -1.0, 2.0),                                     # not shown
    "xattn_pose": audit_entry(-3.0, -5.0, -1.0),                                 # contradicted
    "scale_motion": audit_entry(2.0, 0.5, 3.5), "xattn_motion": audit_entry(1.0, -0.5, 2.5),
    "spatial_heads": audit_entry(2.0, 1.0, 3.0), "temporal_heads": audit_entry(1.0, 0.2, 1.8)}}}}
# no init:spatial / init:temporal knock-outs: those rows are "not run"


@pytest.fixture(scope="module")
def results():
    clips = make_clips()
    return Results(make_metrics(clips), CONFIGS, clips, "gatfun", "gatfun-wide")


@pytest.fixture(scope="module")
def rows(results):
    return CL.claim_rows(results, AUDITS, CL.Roles())


def row(rows, test_start):
    found = [r for r in rows if r.test.startswith(test_start)]
    assert len(found) == 1, (test_start, [r.test for r in rows])
    return found[0]


def iv(lo, hi):
    return Interval((lo + hi) / 2, lo, hi, 1.0, 5.0, 3, 40, "seeds x clips")


def test_the_verdict_rule_in_both_directions():
    assert CL.verdict(iv(-3, -1), -1) == CL.SUPPORTED and CL.verdict(iv(1, 3), -1) == CL.CONTRADICTED
    assert CL.verdict(iv(1, 3), +1) == CL.SUPPORTED and CL.verdict(iv(-3, -1), +1) == CL.CONTRADICTED
    assert CL.verdict(iv(-1, 1), -1) == CL.NOT_SHOWN == CL.verdict(iv(-1, 1), +1)
    assert CL.verdict(Interval(-2.0, math.nan, math.nan, math.nan, 0.0, 1, 1, "clips"), -1) == CL.NOT_SHOWN
    assert CL.verdict(None, -1) == CL.NOT_SHOWN


def test_differences_give_every_verdict(rows, results):
    r = row(rows, "MPJPE full-generic-action − gatfun,")
    assert r.verdict == CL.SUPPORTED and r.interval.hi < 0 and r.claimed == -1
    expect = crossed_interval(results.clips["full-generic-action"]["test"] - results.clips["gatfun"]["test"])
    assert r.interval.mean == pytest.approx(expect.mean) and r.interval.lo == pytest.approx(expect.lo)
    assert "seeds 0, 1, 2 × 40 clips" in r.data and "2D input projection" in r.data and "test split" in r.data
    assert "full-generic-action not given" in r.data and "gatfun no prompt" in r.data
    assert row(rows, "MPJPE full-generic-action − gatfun-wide").verdict == CL.NOT_SHOWN
    assert row(rows, "MPJPE full − static").verdict == CL.CONTRADICTED
    assert row(rows, "MPJPE full − context-direct").verdict == CL.NOT_SHOWN
    assert "context-direct no text" in row(rows, "MPJPE full − context-direct").data
    enc = row(rows, "MPJPE full-encoding-only − gatfun")
    assert enc.verdict == CL.NOT_RUN and "full-encoding-only not trained" in enc.missing


def test_knockouts_are_claimed_positive(rows):
    assert row(rows, "knock-out delta_p_mean of full").verdict == CL.SUPPORTED
    assert row(rows, "knock-out add_pose of full").verdict == CL.NOT_SHOWN
    assert row(rows, "knock-out xattn_pose of full").verdict == CL.CONTRADICTED
    r = row(rows, "knock-out init:spatial of full")
    assert r.verdict == CL.NOT_RUN and "has no knock-out init:spatial" in r.missing
    assert row(rows, "knock-out delta_p_mean of full").claimed == +1


def test_a_missing_role_or_audit_is_not_run(results):
    rows = CL.claim_rows(results, {}, CL.Roles(matched=None, method="full-generic-action"))
    r = row(rows, "MPJPE full-generic-action − (no matched baseline)")
    assert r.verdict == CL.NOT_RUN and "figures.matched_baseline" in r.missing
    assert "no audit of full" in row(rows, "knock-out delta_p_mean of full").missing
    gone = CL.claim_rows(results, AUDITS, CL.Roles(method="nope"))
    occl = [r for r in gone if r.claim_key == "occlusion"]
    assert occl and all(r.verdict == CL.NOT_RUN and "nope not trained" in r.missing for r in occl)


def test_degradation_change_per_clip_when_the_windows_are_the_same(rows, results):
    r = row(rows, "degradation change full-generic-action vs gatfun: occlusion 0.4")
    c = results.clips
    v, b = c["full-generic-action"], c["gatfun"]
    d = (v["suite/occlusion/0.4"] - v["test"]) - (b["suite/occlusion/0.4"] - b["test"])
    expect = crossed_interval(d)
    assert r.combined == "per clip" and r.interval.mean == pytest.approx(-8.0, abs=0.5)
    assert (r.interval.mean, r.interval.lo, r.interval.hi) == pytest.approx((expect.mean, expect.lo, expect.hi))
    assert r.verdict == CL.SUPPORTED
    side = row(rows, "degradation change full-generic-action vs gatfun: occlusion-side 0.25")   # a second suite
    assert side.combined == "per clip" and side.verdict == CL.NOT_SHOWN
    assert not [r for r in rows if r.setting == "suite/speed/1.0"]            # speed 1.0 is the clean split


def test_degradation_change_on_other_clips_pairs_the_seeds(rows, results):
    r = row(rows, "degradation change full-generic-action vs gatfun: speed ×2")
    c = results.clips
    d1 = c["full-generic-action"]["suite/speed/2.0"] - c["gatfun"]["suite/speed/2.0"]     # (S, C_speed)
    d2 = c["full-generic-action"]["test"] - c["gatfun"]["test"]                             # (S, C)
    S = d1.shape[0]
    terms = [(d1.mean(0).var(ddof=1) / d1.shape[1], d1.shape[1] - 1), (d2.mean(0).var(ddof=1) / d2.shape[1],
             d2.shape[1] - 1), ((d1.mean(1) - d2.mean(1)).var(ddof=1) / S, S - 1)]
    se2 = sum(t for t, _ in terms)
    df = se2 ** 2 / sum(t ** 2 / k for t, k in terms)
    q = t_quantile(0.975, df)
    assert r.combined == "seed-paired"
    assert r.interval.mean == pytest.approx(d1.mean() - d2.mean()) and r.interval.se == pytest.approx(math.sqrt(se2))
    assert r.interval.df == pytest.approx(df) and r.interval.hi == pytest.approx(d1.mean() - d2.mean() + q * se2 ** 0.5)
    # cross-domain sets are other clips than the test split: seed-paired even with the same clip count
    real = row(rows, "degradation change full-generic-action vs gatfun: 3dhp")
    assert real.combined == "seed-paired" and real.interval.clips == 2 * C
    assert "shift_3dhp (source 3dhp)" in real.data and "2D input ground-truth 2D" in real.data
    assert f"× ({SPEED_C} perturbed + {C} clean) clips" in r.data
    hard = row(rows, "degradation change full-generic-action vs gatfun: camera 1 ")
    assert hard.verdict == CL.CONTRADICTED and hard.interval.mean == pytest.approx(8.0, abs=0.5)
    # a stronger level of a graded shift is measured against its mildest level: the same held-out
    # subject and windows, per clip (the test split is another subject)
    v, b = c["full-generic-action"], c["gatfun"]
    per_clip = crossed_interval((v["cross/shift_camera-1"] - v["cross/shift_camera-0.5"])
                                - (b["cross/shift_camera-1"] - b["cross/shift_camera-0.5"]))
    assert "camera 1 vs camera 0.5" in hard.test and hard.combined == "per clip"
    assert (hard.interval.mean, hard.interval.hi) == pytest.approx((per_clip.mean, per_clip.hi))
    assert "against shift_camera-0.5, the same subject" in hard.data
    mild = row(rows, "degradation change full-generic-action vs gatfun: camera 0.5 ")
    assert mild.combined == "seed-paired" and "against the test split (another subject)" in mild.data


def test_crossed_change_cancels_a_shared_seed_effect():
    """Three seeds whose models are better or worse on every clip by the same amount: that shift
    cancels in the change (a paired design), where combining the two intervals as independent keeps it."""
    rng = np.random.default_rng(0)
    seed_shift = np.array([-10.0, 0.0, 12.0])[:, None]
    d1 = seed_shift + 2.0 + rng.normal(0, 1.0, (3, 40))
    d2 = seed_shift + rng.normal(0, 1.0, (3, 50))
    iv = CL.crossed_change(d1, d2)
    assert iv.mean == pytest.approx(2.0, abs=0.5) and iv.lo > 0          # the change is seen
    loose = CL.independent_difference(crossed_interval(d1), crossed_interval(d2))
    assert loose.lo < 0 < loose.hi                                        # lost in the seed spread
    with pytest.raises(ValueError, match="same seeds"):
        CL.crossed_change(d1[:2], d2)


def test_independent_difference_arithmetic():
    a = Interval(3.0, 1.0, 5.0, 1.0, 8.0, 3, 30, "x")
    b = Interval(1.0, 0.0, 2.0, 0.5, 20.0, 3, 40, "x")
    d = CL.independent_difference(a, b)
    se = math.sqrt(1.25)
    assert d.mean == 2.0 and d.se == pytest.approx(se) and d.df == 8.0
    assert d.lo == pytest.approx(2.0 - t_quantile(0.975, 8.0) * se) and d.clips == 70
    flat = CL.independent_difference(Interval(1.0, 1.0, 1.0, 0.0, math.inf, 3, 5, "x"),
                                     Interval(0.5, 0.5, 0.5, 0.0, math.inf, 3, 5, "x"))
    assert (flat.lo, flat.hi) == (0.5, 0.5)


def test_claims_table_files_and_counts(results, tmp_path):
    paths, rows = CL.claims_table(results, AUDITS, CL.Roles(), tmp_path)
    assert {p.name for p in paths} == {"claims.md", "claims.tex", "claims.json"}
    md = (tmp_path / "claims.md").read_text()
    assert "supported = the 95 % interval excludes 0 in the claimed direction" in md
    assert "not run: full-encoding-only not trained" in md and "| contradicted |" in md
    assert "seeds paired and the two clip sets independent" in md   # the note of the second path
    claims_shown = [ln.split("|")[1].strip() for ln in md.splitlines() if ln.startswith("| ")][1:]
    assert claims_shown.count(CL.CLAIMS[0].text) == 1             # grouped: the claim once, above its rows
    data = json.loads((tmp_path / "claims.json").read_text())
    assert len(data["rows"]) == len(rows) and data["roles"]["method"] == "full-generic-action"
    assert data["counts"] == CL.verdict_counts(rows) and sum(data["counts"].values()) == len(rows)
    assert all(data["counts"][k] > 0 for k in CL.VERDICTS)
    assert {r["claim_key"] for r in data["rows"]} == {c.key for c in CL.CLAIMS}
    tex = (tmp_path / "claims.tex").read_text()
    assert r"\begin{table*}" in tex and "p{3.6cm}" in tex


def test_comparison_tables_report_both_baselines(results, tmp_path):
    variants = list(CONFIGS)
    _, rob = robustness(results, variants, tmp_path)
    md = (tmp_path / "robustness.md").read_text()
    assert "ΔMPJPE vs gatfun [95 % CI]" in md and "ΔMPJPE vs gatfun-wide [95 % CI]" in md
    assert [r["setting"] for r in rob][::len(variants)] == ["clean", "occlusion 0.4", "occlusion-side 0.25",
                                                            "speed ×1", "speed ×2"]
    occ = next(r for r in rob if r["setting"] == "occlusion 0.4" and r["variant"] == "full-generic-action")
    expect = results.paired("full-generic-action", "gatfun", "suite/occlusion/0.4")
    assert occ["delta:gatfun"].iv.mean == pytest.approx(expect.mean) and occ["delta:gatfun"].bold
    assert occ["delta:gatfun-wide"].iv is not None
    assert "occlusion-side: fraction of 2D joints hidden (a whole body side)" in md
    line = next(ln for ln in md.splitlines() if ln.startswith("| occlusion 0.4 | full-generic-action |"))
    assert line.count("**") == 2                                   # Δ vs gatfun bold, vs gatfun-wide not
    _, cross = cross_domain(results, variants, tmp_path)
    assert [r["setting"] for r in cross][::len(variants)] == ["test (clean)", "camera 0.5", "camera 1", "3dhp"]
    assert "capacity-matched" in (tmp_path / "cross_domain.md").read_text()
    alone = Results(results.metrics, CONFIGS, results.clips, "gatfun", "not-trained")
    _, rob1 = robustness(alone, variants, tmp_path)
    assert all("delta:not-trained" not in r for r in rob1)
    assert "not-trained (figures.matched_baseline) was not trained" in (tmp_path / "robustness.md").read_text()


def test_cross_sets_order_graded_then_real(results):
    assert cross_sets(results.metrics, list(CONFIGS)) == [("shift_camera-0.5", "camera", 0.5),
                                                          ("shift_camera-1", "camera", 1.0),
                                                          ("shift_3dhp", None, None)]
    bare = {"v": {"cross_domain": {"shift_body-0.25": {}, "shift_body-1": {}, "shift_humaneva": {}}}}
    assert cross_sets(bare, ["v"]) == [("shift_body-0.25", "body", 0.25), ("shift_body-1", "body", 1.0),
                                       ("shift_humaneva", None, None)]


def _keep_sets(metrics, keep):
    return {v: {**m, "cross_domain": {s: d for s, d in m["cross_domain"].items() if keep(s)}}
            for v, m in metrics.items()}


@pytest.mark.parametrize("which", ["both", "graded", "real"])
def test_figure7_draws_graded_curves_and_real_sets(results, tmp_path, which):
    from poseprompt.plots.evidence import fig7_cross_domain
    keep = {"both": lambda s: True, "graded": lambda s: "camera" in s, "real": lambda s: "3dhp" in s}[which]
    metrics = _keep_sets(results.metrics, keep)
    floors = {"test": 150.0, "shift_camera-1": 180.0, "shift_3dhp": 170.0}
    res = fig7_cross_domain(metrics, tmp_path, dpi=30, floors=floors)
    d = res["data"]
    assert (tmp_path / "fig7_cross_domain.png").stat().st_size > 0
    assert bool(d["graded"]) == (which != "real") and bool(d["real"]) == (which != "graded")
    if d["graded"]:
        xs, ys = d["graded"]["camera"]["full"]
        assert list(xs) == [0.0, 0.5, 1.0]
        assert ys[0] == pytest.approx(metrics["full"]["test"]["mpjpe"])
        assert ys[2] == pytest.approx(metrics["full"]["cross_domain"]["shift_camera-1"]["mpjpe"])
    if d["real"]:
        assert d["real"]["gatfun"][1] == pytest.approx(metrics["gatfun"]["cross_domain"]["shift_3dhp"]["mpjpe"])


def test_figure5_one_panel_per_occlusion_suite_with_the_training_range(results, tmp_path):
    from poseprompt.plots.evidence import fig5_occlusion
    train = {"prob": 0.5, "max_rate": 0.25, "modes": ["joints", "limbs"], "span": [2, 8]}
    res = fig5_occlusion(results.metrics, tmp_path, dpi=30, floor=150.0, train_occlusion=train)
    assert {s for s, _ in res["data"]} == {"occlusion", "occlusion-side"}
    assert res["shaded"] == {"occlusion": 0.25}                    # the side suite's pattern was never trained
    xs, ys = res["data"][("occlusion", "full")]
    assert list(xs) == [0.0, 0.4] and ys[0] == pytest.approx(results.metrics["full"]["test"]["mpjpe"])
    assert fig5_occlusion(results.metrics, tmp_path, dpi=30)["shaded"] == {}        # no train.occlusion: no mark


def test_pooling_heads_use_the_knockout_with_reestimated_statistics_when_the_audit_has_it(results):
    """The plain heads' knock-out also pays for pushing the standardised context out of range
    (docs/audit.md): where the audit has the +stats version, the claims table uses it."""
    audits = {"full": {"seeds": [0, 1, 2], "summary": {"knockout": {
        **AUDITS["full"]["summary"]["knockout"], "spatial_heads+stats": audit_entry(0.1, -0.5, 0.7)}}}}
    rows = CL.claim_rows(results, audits, CL.Roles())
    lap = [r for r in rows if r.claim_key == "laplacian" and r.test.startswith("knock-out spatial")]
    assert len(lap) == 1 and lap[0].test.startswith("knock-out spatial_heads+stats of full")
    assert lap[0].verdict == CL.NOT_SHOWN and lap[0].interval.mean == pytest.approx(0.1)
    gau = [r for r in rows if r.claim_key == "gaussian" and r.test.startswith("knock-out temporal")]
    assert gau[0].test.startswith("knock-out temporal_heads of full")    # no +stats in this audit: the plain one
