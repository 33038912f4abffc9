"""Robustness perturbations: requested strengths are met, nothing leaks, pure and seeded."""
import numpy as np
import pytest

from poseprompt.core.skeleton import H36M17
from poseprompt.data import perturb
from poseprompt.data.camera import normalize_screen
from poseprompt.data.format import PoseSequences

W, H = 1000.0, 1002.0


def linear_clip(t=243, n=17, seed=0):
    """Joints move on straight lines at constant speed: px = base + v * frame."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(300, 700, size=(n, 2))
    vel = rng.uniform(-1.5, 1.5, size=(n, 2))
    frame = np.arange(t, dtype=np.float64)[:, None, None]
    px = base + vel * frame                                         # (T, N, 2)
    pose = rng.normal(0, 0.3, size=(n, 3)) + 0.001 * frame * np.arange(1, 4)
    pose[:, 0] = 0.0                                                 # root-relative
    root = np.stack([0.01 * np.arange(t), np.zeros(t), 5 + 0.002 * np.arange(t)], 1)
    return {
        "kp2d": normalize_screen(px, W, H).astype(np.float32),
        "kp2d_px": px.astype(np.float32),
        "conf": np.ones((t, n), np.float32),
        "pose3d": pose.astype(np.float32),
        "root3d": root.astype(np.float32),
        "valid": np.ones(t, bool),
    }


def same(a, b):
    return all(np.array_equal(a[k], b[k]) and a[k].dtype == b[k].dtype for k in perturb.CLIP_KEYS)


# ---- occlusion -----------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["joints", "limbs", "parts"])
@pytest.mark.parametrize("fraction", [0.05, 0.3, 0.6])
def test_occlusion_hides_the_requested_fraction_without_leaks(mode, fraction):
    clip = linear_clip()
    before = {k: v.copy() for k, v in clip.items()}
    out = occluded = perturb.occlude(clip, np.random.default_rng(1), fraction, mode=mode)
    hidden = out["conf"] == 0
    # within one group (at most 11 of the 4131 entries for 'parts') of the target
    assert abs(hidden.mean() - fraction) <= 11 / hidden.size
    assert np.all(occluded["kp2d"][hidden] == 0) and np.all(occluded["kp2d_px"][hidden] == 0)
    assert np.array_equal(out["kp2d_px"][~hidden], clip["kp2d_px"][~hidden])
    for k in ("pose3d", "root3d", "valid"):
        assert np.array_equal(out[k], clip[k])                       # targets untouched
    assert same(clip, before)                                        # the input is not modified


def test_limb_occlusion_hides_whole_limbs_only():
    out = perturb.occlude(linear_clip(), np.random.default_rng(3), 0.4, mode="limbs")
    hidden = out["conf"] == 0
    limbs = perturb.occlusion_groups(H36M17, "limbs")
    assert [list(np.flatnonzero(g)) for g in limbs] == [[11, 12, 13], [14, 15, 16], [4, 5, 6], [1, 2, 3]]
    for g in limbs:
        part = hidden[:, g]
        assert np.all(part.all(1) | ~part.any(1))                    # a limb is hidden whole or not at all
    assert not hidden[:, [0, 7, 8, 9, 10]].any()                      # the torso and head are never hidden


def test_occlusion_spans_are_runs_of_frames():
    out = perturb.occlude(linear_clip(t=400), np.random.default_rng(5), 0.1, mode="joints", span=(10, 20))
    hidden = out["conf"] == 0
    # runs of hidden frames per joint: all but the possibly shortened last event are >= 10 frames
    runs = []
    for j in range(17):
        d = np.diff(np.concatenate([[0], hidden[:, j].astype(int), [0]]))
        runs += list(np.flatnonzero(d == -1) - np.flatnonzero(d == 1))
    assert len(runs) > 5 and sum(r < 10 for r in runs) <= 1


def test_occlusion_is_deterministic_for_a_seed():
    clip = linear_clip()
    a = perturb.occlude(clip, np.random.default_rng(7), 0.3, mode="parts")
    b = perturb.occlude(clip, np.random.default_rng(7), 0.3, mode="parts")
    c = perturb.occlude(clip, np.random.default_rng(8), 0.3, mode="parts")
    assert same(a, b) and not np.array_equal(a["conf"], c["conf"])
    assert same(perturb.occlude(clip, np.random.default_rng(7), 0.0), clip)


# ---- temporal ------------------------------------------------------------------------------------
def test_resample_identity_and_halving():
    clip = linear_clip(t=243)
    assert same(perturb.resample(clip, 1.0), clip)
    fast = perturb.resample(clip, 2.0)
    assert len(fast["conf"]) == 122                                  # ceil(243 / 2)
    assert len(perturb.resample(linear_clip(t=10), 2.0)["conf"]) == 5
    # per-frame displacement of a linear motion doubles, in the input and in the targets
    np.testing.assert_allclose(np.diff(fast["kp2d_px"], axis=0), 2 * np.diff(clip["kp2d_px"], axis=0)[:121], atol=1e-3)
    np.testing.assert_allclose(np.diff(fast["root3d"], axis=0), 2 * np.diff(clip["root3d"], axis=0)[:121], atol=1e-5)
    np.testing.assert_allclose(fast["kp2d"], normalize_screen(fast["kp2d_px"], W, H), atol=1e-5)
    slow = perturb.resample(clip, 0.5)
    assert len(slow["conf"]) == 485                                   # 2 * 243 - 1
    np.testing.assert_allclose(np.diff(slow["kp2d_px"], axis=0)[:10], 0.5 * np.diff(clip["kp2d_px"], axis=0)[:5].repeat(2, 0), atol=1e-3)


def test_interpolation_does_not_invent_missing_joints():
    clip = linear_clip(t=20)
    clip["conf"][6, 4] = 0
    clip["kp2d"][6, 4] = 0
    clip["kp2d_px"][6, 4] = 0
    slow = perturb.resample(clip, 0.5)                                # times 0, 0.5, 1, ...
    assert np.flatnonzero(slow["conf"][:, 4] == 0).tolist() == [11, 12, 13]   # times 5.5, 6, 6.5
    assert np.all(slow["kp2d_px"][11:14, 4] == 0) and np.all(slow["kp2d"][11:14, 4] == 0)


def test_drop_frames_removes_about_the_rate_from_input_and_targets():
    clip = linear_clip(t=3000)
    out = perturb.drop_frames(clip, np.random.default_rng(0), 0.3)
    kept = len(out["conf"]) / 3000
    assert abs(kept - 0.7) < 0.03
    idx = np.round(out["root3d"][:, 0] / 0.01).astype(int)            # root x identifies the source frame
    assert idx[0] == 0 and np.all(np.diff(idx) >= 1) and np.any(np.diff(idx) > 1)
    np.testing.assert_array_equal(out["kp2d_px"], clip["kp2d_px"][idx])
    np.testing.assert_array_equal(out["pose3d"], clip["pose3d"][idx])
    assert same(perturb.drop_frames(clip, np.random.default_rng(0), 0.3), out)
    assert same(perturb.drop_frames(clip, np.random.default_rng(0), 0.0), clip)


def test_jitter_keeps_length_and_time_order():
    clip = linear_clip(t=100)
    assert same(perturb.jitter_timestamps(clip, np.random.default_rng(0), 0.0), clip)
    out = perturb.jitter_timestamps(clip, np.random.default_rng(0), 0.8)
    assert len(out["conf"]) == 100
    times = out["root3d"][:, 0] / 0.01                                 # root x is linear in time
    assert np.all(np.diff(times) >= -1e-4) and times.min() >= -1e-4 and times.max() <= 99 + 1e-4
    assert 0.3 < np.std(times - np.arange(100)) < 1.5


def test_noise_displaces_pixels_and_lowers_confidence():
    clip = linear_clip(t=500)
    clip["conf"][10, 2] = 0
    clip["kp2d"][10, 2] = 0
    clip["kp2d_px"][10, 2] = 0
    out = perturb.add_noise(clip, np.random.default_rng(0), 5.0, W, H, difficulty_sd=0.0)
    vis = clip["conf"] > 0
    e = (out["kp2d_px"] - clip["kp2d_px"])[vis]
    assert abs(e.std() - 5.0) < 0.1 and abs(e.mean()) < 0.1
    np.testing.assert_allclose(out["kp2d"][vis], normalize_screen(out["kp2d_px"], W, H)[vis], atol=1e-5)
    assert out["conf"][10, 2] == 0 and np.all(out["kp2d_px"][10, 2] == 0)
    assert np.all(out["conf"] <= clip["conf"]) and 0.9 < out["conf"][vis].mean() < 0.99
    assert np.array_equal(out["pose3d"], clip["pose3d"])


def test_noise_confidence_follows_the_detectors_expectation_not_the_drawn_error():
    clip = linear_clip(t=2000)
    out = perturb.add_noise(clip, np.random.default_rng(0), 8.0, W, H)
    moved = clip.copy()
    moved["kp2d_px"] = clip["kp2d_px"] + 3.0
    out2 = perturb.add_noise(moved, np.random.default_rng(0), 8.0, W, H)
    np.testing.assert_array_equal(out["conf"], out2["conf"])          # independent of where the joints are
    err = np.linalg.norm(out["kp2d_px"] - clip["kp2d_px"], axis=-1)
    c = out["conf"]
    assert err[c < np.quantile(c, 0.3)].mean() > 1.5 * err[c > np.quantile(c, 0.7)].mean()


# ---- whole splits --------------------------------------------------------------------------------
def small_split():
    clips = [linear_clip(t, seed=t) for t in (50, 80, 31)]
    cat = {k: np.concatenate([c[k] for c in clips]) for k in perturb.CLIP_KEYS}
    return PoseSequences(
        **cat, starts=np.array([0, 50, 130, 161]), subject=np.array(["a", "a", "b"]),
        name=np.array(["x", "y", "z"]), action=np.array(["walk"] * 3), style=np.array([""] * 3),
        camera=np.array(["c0"] * 3), fps=np.full(3, 50, np.float32),
        intrinsics=np.tile(np.array([1145, 1145, 500, 500], np.float32), (3, 1)),
        image_size=np.tile(np.array([1000, 1002], np.int32), (3, 1)), meta={"skeleton": "h36m17", "source": "t"},
    ).validate()


@pytest.mark.parametrize("kind, strength", [("occlusion", 0.3), ("speed", 2.0), ("drop", 0.2), ("jitter", 0.5),
                                            ("noise", 3.0)])
def test_perturb_sequences_keeps_a_valid_split(kind, strength):
    split = small_split()
    out = perturb.perturb_sequences(split, kind, strength, seed=3)
    assert out.num_sequences == 3 and list(out.name) == ["x", "y", "z"]
    assert out.meta["perturbation"] == {"kind": kind, "strength": strength, "seed": 3}
    assert out.meta["source"] == "t"
    again = perturb.perturb_sequences(split, kind, strength, seed=3)
    assert all(np.array_equal(getattr(out, k), getattr(again, k)) for k in perturb.CLIP_KEYS)
    if kind == "speed":
        assert list(out.lengths()) == [25, 40, 16]
    if kind == "occlusion":
        assert abs((out.conf == 0).mean() - 0.3) < 0.01


def test_registry_and_stacked_metadata():
    assert set(perturb.PERTURBATIONS) == {"occlusion", "speed", "drop", "jitter", "noise"}
    split = small_split()
    once = perturb.perturb_sequences(split, "occlusion", 0.2, seed=0, occlusion_mode="limbs")
    assert once.meta["perturbation"]["occlusion_mode"] == "limbs"
    twice = perturb.perturb_sequences(once, "noise", 2.0, seed=0)
    assert [p["kind"] for p in twice.meta["perturbation"]] == ["occlusion", "noise"]
    with pytest.raises(ValueError, match="unknown perturbation"):
        perturb.perturb_sequences(split, "blur", 1.0, seed=0)


def test_occlusion_refuses_unreachable_fractions():
    with pytest.raises(ValueError, match="at most 0.706"):
        perturb.occlude(linear_clip(), np.random.default_rng(0), 0.8, mode="limbs")
    out = perturb.occlude(linear_clip(t=30), np.random.default_rng(0), 1.0, mode="joints")
    assert np.all(out["conf"] == 0)


def test_side_and_all_modes_hide_a_body_side_or_whole_frames():
    """``side``: the arm and the leg of one side together (the skeleton's left/right lists); ``all``:
    every joint, so that spans of frames carry no 2D input at all (a gap)."""
    side = perturb.occlusion_groups(H36M17, "side")
    assert [list(np.flatnonzero(g)) for g in side] == [sorted(H36M17.left), sorted(H36M17.right)]
    out = perturb.occlude(linear_clip(), np.random.default_rng(4), 0.3, mode="side")
    hidden = out["conf"] == 0
    assert abs(hidden.mean() - 0.3) <= 6 / hidden.size
    for g in side:
        assert np.all(hidden[:, g].all(1) | ~hidden[:, g].any(1))     # a side is hidden whole or not at all
    assert not hidden[:, [0, 7, 8, 9, 10]].any()
    gap = perturb.occlude(linear_clip(t=300), np.random.default_rng(5), 0.25, mode="all", span=(2, 6))
    hidden = gap["conf"] == 0
    frames = hidden.all(1)
    assert np.array_equal(hidden.any(1), frames)                       # whole frames only
    assert abs(frames.mean() - 0.25) <= 1 / 300
    d = np.diff(np.concatenate([[0], frames.astype(int), [0]]))
    runs = np.flatnonzero(d == -1) - np.flatnonzero(d == 1)
    assert len(runs) > 5 and np.median(runs) <= 6                      # many short gaps, not one long one
    with pytest.raises(ValueError, match="at most 0.706"):
        perturb.occlude(linear_clip(), np.random.default_rng(0), 0.75, mode="side")
    with pytest.raises(ValueError, match="'side', 'all'\\], got 'sides'"):
        perturb.occlusion_groups(H36M17, "sides")


def test_occlusion_on_a_short_clip_reaches_its_target_without_stalling():
    """A 9-frame clip, limbs over spans longer than the clip, a target a few entries short of all
    that limbs reach: landing nearest to the target can mean adding nothing forever (the paper's
    spans on the rehearsal's short clips); the tail then accepts an overshoot below one group."""
    import time

    from poseprompt.core.skeleton import H36M17
    from poseprompt.data.perturb import occlusion_groups, occlusion_mask
    groups = occlusion_groups(H36M17, "limbs")
    reach = int(groups.any(0).sum()) * 9
    t0 = time.perf_counter()
    for seed in range(40):
        rng = np.random.default_rng(seed)
        target = reach - 1 - seed % 3
        mask = occlusion_mask(9, H36M17.num_joints, rng, target, groups, (5, 25))
        assert target <= mask.sum() < target + int(groups.sum(1).max())
    assert time.perf_counter() - t0 < 30
