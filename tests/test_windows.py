"""Windows of T frames: training layout, each test frame scored exactly once, padding, speed words."""
import time

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from poseprompt.data import perturb
from poseprompt.data.format import DataFormatError, PoseSequences
from poseprompt.data.windows import PoseWindows, person_text, speed_word

W, H = 1000.0, 1000.0
# a standing figure in pixels (17 joints), spread about 100 px around its centroid
FIGURE = np.array([
    [500, 500], [487, 502], [486, 545], [485, 587], [513, 502], [514, 545], [515, 587], [500, 477],
    [500, 452], [500, 443], [500, 425], [517, 455], [520, 483], [521, 508], [483, 455], [480, 483],
    [479, 508],
], dtype=np.float64)
FIGURE = (FIGURE - FIGURE.mean(0)) * 1.4 + 500


def split_from(clips, fps=50.0, styles=None, actions=None):
    """A PoseSequences from clips given as (T, N, 2) pixel arrays (conf 1, valid everywhere)."""
    n = len(clips)
    px = np.concatenate(clips).astype(np.float32)
    f = len(px)
    lengths = [len(c) for c in clips]
    return PoseSequences(
        kp2d=(px / W * 2 - np.array([1, H / W])).astype(np.float32), kp2d_px=px,
        conf=np.ones(px.shape[:2], np.float32),
        pose3d=np.random.default_rng(0).normal(size=(f, 17, 3)).astype(np.float32),
        root3d=np.zeros((f, 3), np.float32), valid=np.ones(f, bool),
        starts=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        subject=np.array(["s"] * n), name=np.array([f"seq{i}" for i in range(n)]),
        action=np.array(actions or ["walk"] * n), style=np.array(styles or [""] * n),
        camera=np.array(["c"] * n), fps=np.full(n, fps, np.float32),
        intrinsics=np.tile(np.array([1145, 1145, 500, 500], np.float32), (n, 1)),
        image_size=np.tile(np.array([1000, 1000], np.int32), (n, 1)), meta={"skeleton": "h36m17"},
    ).validate()


def walking(t, px_per_frame=1.0, seed=0):
    """The figure translating along x with a small articulation."""
    rng = np.random.default_rng(seed)
    k = np.arange(t)[:, None, None]
    sway = 2.0 * np.sin(k / 7.0 + rng.uniform(0, 6, size=(1, 17, 1)))
    return FIGURE[None] + np.array([px_per_frame, 0.0]) * k + sway


def coverage(ds):
    """How often each split frame is scored over all windows."""
    count = np.zeros(ds.split.num_frames, int)
    for i in range(len(ds)):
        item = ds[i]
        np.add.at(count, item["frame"][item["eval_mask"]].numpy(), 1)
    return count


def test_train_window_count_and_starts():
    split = split_from([walking(100), walking(27), walking(26)])
    ds = PoseWindows(split, frames=27, stride=5, mode="train")
    # (100 - 27) // 5 + 1 = 15 windows, 1 exactly fitting, 1 padded
    assert len(ds) == 17
    w = ds.windows()
    assert w.shape == (17, 2) and w.dtype == np.int64
    assert w[:15, 1].tolist() == list(range(0, 71, 5)) and w[15].tolist() == [1, 0] and w[16].tolist() == [2, 0]
    for i in range(15):                                                # fully inside the sequence
        assert ds[i]["frame"].tolist() == list(range(w[i, 1], w[i, 1] + 27))
        assert bool(ds[i]["eval_mask"].all())


@pytest.mark.parametrize("length", [8, 9, 21])                        # T - 1 (padded), T, 2T + 3
def test_test_mode_scores_every_frame_exactly_once(length):
    split = split_from([walking(length), walking(30, seed=1)])
    ds = PoseWindows(split, frames=9, stride=9, mode="test")
    assert np.all(coverage(ds) == 1)


def test_test_mode_with_smaller_stride_and_invalid_frames():
    split = split_from([walking(40), walking(5, seed=2), walking(17, seed=3)])
    split.valid[[3, 41, 50]] = False
    ds = PoseWindows(split, frames=9, stride=4, mode="test")
    np.testing.assert_array_equal(coverage(ds), split.valid.astype(int))


def test_padding_rule_replicates_the_edges():
    split = split_from([walking(5)])
    item = PoseWindows(split, frames=9, stride=9, mode="test")[0]
    # (9 - 5) // 2 = 2 slots of the first frame on the left, 2 of the last on the right
    assert item["frame"].tolist() == [0, 0, 0, 1, 2, 3, 4, 4, 4]
    assert item["eval_mask"].tolist() == [False, False, True, True, True, True, True, False, False]
    assert PoseWindows(split, frames=9, mode="test").windows().tolist() == [[0, -2]]


def test_reject_names_the_short_sequence():
    split = split_from([walking(30), walking(7)])
    with pytest.raises(DataFormatError, match=r"sequence 1 \(s/seq1, camera c\) has 7 frames, fewer than the window of 9"):
        PoseWindows(split, frames=9, stride=1, mode="train", short="reject")


def test_item_contents_and_default_collate():
    split = split_from([walking(40), walking(40, seed=1)], styles=["", "angry"], actions=["walk", "box"])
    ds = PoseWindows(split, frames=16, stride=8, mode="train")
    item = ds[len(ds) - 1]
    assert item["x"].dtype == torch.float32 and item["x"].shape == (16, 17, 3)
    assert item["y"].dtype == torch.float32 and item["y"].shape == (16, 17, 3)
    assert item["eval_mask"].dtype == torch.bool and item["frame"].dtype == torch.int64
    f = item["frame"].numpy()
    np.testing.assert_array_equal(item["x"][..., :2].numpy(), split.kp2d[f])
    np.testing.assert_array_equal(item["x"][..., 2].numpy(), split.conf[f])
    np.testing.assert_array_equal(item["y"].numpy(), split.pose3d[f])
    assert item["seq"] == 1
    assert item["texts"] == {"action": "box", "speed": item["texts"]["speed"], "person": "a angry person"}
    assert person_text("") == "a person"
    batch = next(iter(DataLoader(ds, batch_size=4, shuffle=False)))
    assert batch["x"].shape == (4, 16, 17, 3)
    assert batch["texts"]["action"] == ["walk"] * 4 and batch["texts"]["person"] == ["a person"] * 4
    assert batch["speed_value"].shape == (4,) and batch["seq"].tolist() == [0, 0, 0, 0]
    fixed = PoseWindows(split, frames=16, stride=8, slot_labels={"action": "move", "body": "a body"})[0]["texts"]
    assert fixed["action"] == "move" and fixed["body"] == "a body"


def test_speed_value_units_and_word_ordering():
    # a pure translation of v px per frame at 50 fps: speed = 50 v / RMS spread (body scales per second)
    spread = np.sqrt(((FIGURE - FIGURE.mean(0)) ** 2).sum(1).mean())
    pure = FIGURE[None] + np.array([1.0, 0.0]) * np.arange(60)[:, None, None]
    ds = PoseWindows(split_from([pure]), frames=60, mode="test")
    assert np.isclose(ds.speed_values[0], 50 * 1.0 / spread, rtol=1e-4)
    # the same motion played slower and faster gets slower and faster words
    base = {k: v for k, v in perturb.sequence_clip(split_from([walking(600, 2.0)]), 0).items()}
    clips = [perturb.resample(base, f)["kp2d_px"][:120] for f in (0.2, 1.0, 4.0)]
    ds = PoseWindows(split_from(clips), frames=120, mode="test")
    v = ds.speed_values
    assert v[0] < v[1] < v[2] and np.isclose(v[2] / v[1], 4.0, rtol=0.1)
    assert [ds[i]["texts"]["speed"] for i in range(3)] == ["slow", "normal", "fast"]
    assert speed_word(0.1) == "slow" and speed_word(1.0) == "normal" and speed_word(10.0) == "fast"


def test_missing_joints_do_not_count_as_motion():
    split = split_from([walking(60, 0.0)])
    still = PoseWindows(split, frames=60, mode="test").speed_values[0]
    split.conf[::2, 3] = 0                                              # a flickering detection
    split.kp2d[::2, 3] = 0
    split.kp2d_px[::2, 3] = 0
    assert np.isclose(PoseWindows(split, frames=60, mode="test").speed_values[0], still, rtol=0.15)


def test_building_windows_over_100k_frames_is_fast():
    rng = np.random.default_rng(0)
    clips = [FIGURE[None] + rng.normal(0, 3, size=(500, 17, 2)) for _ in range(200)]
    split = split_from(clips)
    t0 = time.perf_counter()
    ds = PoseWindows(split, frames=243, stride=1, mode="train")
    elapsed = time.perf_counter() - t0
    assert len(ds) == 200 * (500 - 243 + 1)
    assert elapsed < 1.0, elapsed


def test_bad_arguments():
    split = split_from([walking(30)])
    with pytest.raises(ValueError, match="mode"):
        PoseWindows(split, frames=9, stride=1, mode="eval")
    with pytest.raises(ValueError, match="skip frames"):
        PoseWindows(split, frames=9, stride=10, mode="test")
    with pytest.raises(ValueError, match="speed_thresholds"):
        PoseWindows(split, frames=9, stride=1, speed_thresholds=(2.0, 1.0))
