import time

import numpy as np
import pytest

from poseprompt.core.skeleton import H36M17
from poseprompt.data import synthetic as syn
from poseprompt.data.camera import normalize_screen, project
from poseprompt.data.format import PoseSequences

SMALL = {"subjects_train": 2, "subjects_test": 1, "shift_subjects": 1, "speeds": [0.7, 1.4],
         "frames_per_sequence": 60, "cameras": 2, "shift_strengths": [0.25, 1.0]}
SHIFT_SETS = {f"shift_{k}-{s}" for k in ("camera", "body", "noise") for s in ("0.25", "1")}
ARRAYS = ("kp2d", "kp2d_px", "conf", "pose3d", "root3d", "intrinsics")


@pytest.fixture(scope="module")
def small():
    return syn.build_splits(SMALL, seed=7)


def test_same_seed_identical_other_seed_different(small):
    again = syn.build_splits(SMALL, seed=7)
    other = syn.build_splits(SMALL, seed=8)
    assert set(small) == set(again) == {"train", "test"} | SHIFT_SETS
    for split in small:
        for key in ARRAYS:
            a, b, c = getattr(small[split], key), getattr(again[split], key), getattr(other[split], key)
            assert a.dtype == np.float32
            np.testing.assert_array_equal(a, b, err_msg=f"{split}.{key}")
            assert a.shape != c.shape or not np.array_equal(a, c), f"{split}.{key} ignores the seed"
        assert list(small[split].name) == list(again[split].name)


def test_bone_lengths_constant_within_each_sequence_and_plausible(small):
    child = [c for _, c in H36M17.bones]
    plausible = {2: (0.35, 0.55), 3: (0.35, 0.55), 12: (0.22, 0.35), 13: (0.19, 0.31), 1: (0.10, 0.17),
                 7: (0.18, 0.29), 8: (0.20, 0.31), 11: (0.11, 0.19), 10: (0.09, 0.15)}
    for split in ("train", "test"):
        data = small[split]
        for s in range(data.num_sequences):
            lengths = H36M17.bone_lengths(data.pose3d[data.frames(s)].astype(np.float64))  # (F, 16)
            assert np.ptp(lengths, axis=0).max() < 1e-5, f"{split} {data.name[s]}: bone lengths vary"
            mean = dict(zip(child, lengths.mean(0)))
            for j, (lo, hi) in plausible.items():
                assert lo < mean[j] < hi, f"{data.name[s]}: bone to {H36M17.joints[j]} is {mean[j]:.3f} m"
            # left and right limbs have equal lengths
            assert abs(mean[2] - mean[5]) < 1e-5 and abs(mean[13] - mean[16]) < 1e-5


def _angle(a, b):
    cos = np.sum(a * b, -1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


@pytest.mark.parametrize("motion", syn.MOTIONS)
def test_joint_angle_limits_and_one_way_knees(motion):
    for seed in range(3):
        rng = np.random.default_rng(seed)
        body = syn.sample_body(rng, "T")
        for speed in (0.7, 1.4):
            world, angles = syn.simulate(motion, speed, body, rng, frames=150, fps=50.0)
            for name, (lo, hi) in syn.ANGLE_LIMITS.items():
                assert angles[name].min() >= lo and angles[name].max() <= hi, name
            left = world[:, 4] - world[:, 1]  # the pelvis frame's left axis
            left /= np.linalg.norm(left, axis=-1, keepdims=True)
            for hip, knee, ankle in ((1, 2, 3), (4, 5, 6)):
                thigh, shin = world[:, knee] - world[:, hip], world[:, ankle] - world[:, knee]
                flexion = _angle(thigh, shin)  # 0 = straight leg
                assert flexion.max() <= 150 + 1e-6
                # bending knees move the shin backwards: thigh x shin points to the body's left
                bent = flexion > 15
                hinge = np.cross(thigh[bent], shin[bent])
                hinge /= np.linalg.norm(hinge, axis=-1, keepdims=True)
                assert np.all(np.sum(hinge * left[bent], -1) > 0.3), f"{motion}: a knee bends forwards"
            for sh, el, wr in ((11, 12, 13), (14, 15, 16)):
                assert _angle(world[:, el] - world[:, sh], world[:, wr] - world[:, el]).max() <= 150 + 1e-6
            # feet on the ground: the lowest ankle at ankle height (except in flight)
            lowest = world[:, [3, 6], 2].min(1)
            if motion == "jump":
                assert lowest.min() == pytest.approx(body.ankle_height) and lowest.max() > 0.15
            elif motion == "run":
                assert lowest.min() == pytest.approx(body.ankle_height) and lowest.max() < body.ankle_height + 0.1
            else:
                np.testing.assert_allclose(lowest, body.ankle_height, atol=1e-9)


def test_speed_scales_walking_speed_and_motions_differ():
    body = syn.make_body("T", 1.75, {})
    speeds = []
    for speed in (0.7, 1.0, 1.4):
        world, _ = syn.simulate("walk", speed, body, np.random.default_rng(0), frames=200, fps=50.0)
        speeds.append(np.linalg.norm(np.diff(world[:, 0, :2], axis=0), axis=-1).mean() * 50)
    assert 0.9 < speeds[1] < 1.8 and speeds[2] / speeds[0] == pytest.approx(2.0, rel=0.01)

    def features(world):  # heading-free: joint distances to the root, heights, their spread, root speed
        rel = world - world[:, :1]
        f = np.concatenate([np.linalg.norm(rel, axis=-1), rel[..., 2]], -1)
        speed = np.linalg.norm(np.diff(world[:, 0, :2], axis=0), axis=-1).mean() * 50
        return np.concatenate([f.mean(0), f.std(0), [speed]])

    feats = {m: features(syn.simulate(m, 1.0, body, np.random.default_rng(0), 200, 50.0)[0]) for m in syn.MOTIONS}
    for a in syn.MOTIONS:
        for b in syn.MOTIONS:
            if a < b:
                assert np.abs(feats[a] - feats[b]).mean() > 0.01, f"{a} and {b} look alike"


def test_labels_subjects_and_splits(small):
    train, test = small["train"], small["test"]
    for data in (train, test):
        assert set(data.action) == set(syn.MOTIONS)
        assert set(data.style) == {""}
    assert "sit down" in set(train.action)
    assert not set(train.subject) & set(test.subject)
    for split in SHIFT_SETS:
        assert not set(small[split].subject) & (set(train.subject) | set(test.subject))
    n_seq = 2 * len(syn.MOTIONS) * 2 * 2  # subjects x motions x speeds x cameras
    assert train.num_sequences == n_seq and train.num_frames == n_seq * 60
    assert len(set(zip(train.name, train.camera))) == n_seq
    assert train.meta["source"] == "synthetic" and train.meta["split"] == "train" and train.meta["seed"] == 7
    assert small["shift_noise-0.25"].meta["split"] == "shift_noise-0.25"
    assert small["shift_noise-0.25"].meta["shift"] == "noise" and small["shift_noise-0.25"].meta["shift_strength"] == 0.25
    assert train.meta["shift"] is None and train.meta["shift_strength"] is None


def test_shift_sets_differ_from_training(small):
    train = small["train"]
    heights = list(train.meta["subject_heights_m"].values())
    assert all(1.55 <= h <= 1.90 for h in heights)
    assert all(h > 1.95 or h < 1.5 for h in small["shift_body-1"].meta["subject_heights_m"].values())
    assert train.intrinsics[:, 0].min() > 1100 and small["shift_camera-1"].intrinsics[:, 0].max() < 950
    assert (small["shift_noise-1"].conf == 0).mean() > 4 * (train.conf == 0).mean()
    # the mild sets lie in between: closer to the training distribution
    assert all(1.6 < h < 1.85 for h in small["shift_body-0.25"].meta["subject_heights_m"].values())
    assert 1000 < small["shift_camera-0.25"].intrinsics[:, 0].min() < 1100
    assert (train.conf == 0).mean() < (small["shift_noise-0.25"].conf == 0).mean() < (small["shift_noise-1"].conf == 0).mean()


def test_graded_sets_of_one_kind_share_subjects_and_draws(small):
    """Along the strengths only the shift changes: the same subjects, motions and camera draws."""
    for kind in ("camera", "body", "noise"):
        a, b = small[f"shift_{kind}-0.25"], small[f"shift_{kind}-1"]
        assert list(a.subject) == list(b.subject) and list(a.name) == list(b.name)
    a, b = small["shift_noise-0.25"], small["shift_noise-1"]
    np.testing.assert_array_equal(a.pose3d, b.pose3d)
    np.testing.assert_array_equal(a.intrinsics, b.intrinsics)
    errors = []
    for split in (small["test"], a, b):                  # 2D error of the seen joints grows with the shift
        exact = np.concatenate([project(split.pose3d[split.frames(i)].astype(np.float64)
                                        + split.root3d[split.frames(i), None], split.intrinsics[i])
                                for i in range(split.num_sequences)])
        seen = split.conf > 0
        errors.append(np.median(np.linalg.norm(split.kp2d_px - exact, axis=-1)[seen]))
    assert errors[0] < errors[1] < errors[2]
    a, b = small["shift_camera-0.25"], small["shift_camera-1"]
    assert not np.array_equal(a.intrinsics, b.intrinsics)
    # other cameras on the same bodies: the 3D differs by viewpoint only, bone lengths are the same
    np.testing.assert_allclose(H36M17.bone_lengths(a.pose3d.astype(np.float64)),
                               H36M17.bone_lengths(b.pose3d.astype(np.float64)), atol=1e-5)


def test_shift_strengths_interpolate_from_training_to_the_full_shift():
    cfg = syn.resolve_config({})
    for kind in syn.SHIFTS:
        assert syn.shift_parameters(kind, 1.0, cfg) == syn.SHIFTS[kind]             # exactly today's shift
    cam = syn.shift_parameters("camera", 0.5, cfg)
    for key in ("camera_height", "camera_distance", "focal"):
        np.testing.assert_allclose(cam[key], (np.array(cfg[key]) + syn.SHIFTS["camera"][key]) / 2)
        np.testing.assert_allclose(syn.shift_parameters("camera", 1e-9, cfg)[key], cfg[key])
    near = syn.shift_parameters("noise", 1e-9, cfg)["noise"]
    assert near == pytest.approx(cfg["noise"])
    assert syn.shift_parameters("noise", 0.5, cfg)["noise"]["jitter_px"] == pytest.approx(6.0)
    bodies = syn.shift_parameters("body", 1e-9, cfg)["bodies"]
    mean_height = sum(cfg["height_m"]) / 2
    for body in bodies:                                   # the training mean body: mean height, factors 1
        assert body["height"] == pytest.approx(mean_height)
        assert all(v == pytest.approx(1.0) for k, v in body.items() if k != "height")
    half = syn.shift_parameters("body", 0.5, cfg)["bodies"][0]
    assert half["height"] == pytest.approx((mean_height + 2.02) / 2) and half["leg"] == pytest.approx(1.05)
    # interpolation starts from this configuration's training distribution, not the defaults
    other = syn.resolve_config({"camera_height": [0.5, 1.0]})
    assert syn.shift_parameters("camera", 0.5, other)["camera_height"] == pytest.approx([1.65, 2.3])
    assert syn.shift_name("camera", 1.0) == "shift_camera-1" and syn.shift_name("body", 0.25) == "shift_body-0.25"


def test_output_validates_round_trips_and_hides_missing_joints(small, tmp_path):
    data = small["train"].validate()
    assert np.all(data.pose3d[:, 0] == 0) and np.all(data.root3d[:, 2] > 3.0)
    missing = data.conf == 0
    assert 0.001 < missing.mean() < 0.02
    assert np.all(data.kp2d[missing] == 0) and np.all(data.kp2d_px[missing] == 0)
    # seen joints: pixels are the projection of the 3D target plus detector noise
    for s in range(0, data.num_sequences, 7):
        fr = data.frames(s)
        exact = project(data.pose3d[fr].astype(np.float64) + data.root3d[fr, None], data.intrinsics[s])
        seen = data.conf[fr] > 0
        err = np.linalg.norm(data.kp2d_px[fr] - exact, axis=-1)[seen]
        assert np.median(err) < 6.0
        w, h = data.image_size[s]
        np.testing.assert_allclose(data.kp2d[fr][seen], normalize_screen(data.kp2d_px[fr][seen], w, h), atol=1e-5)
    path = data.save(tmp_path / "train.npz")
    back = PoseSequences.load(path)
    for key in ARRAYS + ("starts", "valid", "fps", "image_size"):
        np.testing.assert_array_equal(getattr(back, key), getattr(data, key))
    for key in ("subject", "name", "action", "style", "camera"):
        assert list(getattr(back, key)) == list(getattr(data, key))
    assert back.meta["source"] == "synthetic" and back.meta["config"]["frames_per_sequence"] == 60


def test_bad_config_is_rejected_by_name():
    with pytest.raises(ValueError, match="frames_per_seq"):
        syn.build_splits({"frames_per_seq": 10}, 0)
    with pytest.raises(ValueError, match="jitter"):
        syn.build_splits({"noise": {"jitter": 1.0}}, 0)
    with pytest.raises(ValueError, match="moonwalk"):
        syn.build_splits({"motions": ["walk", "moonwalk"]}, 0)
    with pytest.raises(ValueError, match="fog"):
        syn.build_splits({"shifts": ["fog"]}, 0)
    for bad in ([], [0.0], [1.5], ["mild"], 0.5, [0.5, 0.5]):
        with pytest.raises(ValueError, match="shift_strengths"):
            syn.build_splits({"shift_strengths": bad}, 0)
    with pytest.raises(ValueError, match="shift_strength"):
        syn.build_splits({"shift_strength": [0.5]}, 0)


def test_default_size_builds_quickly():
    t0 = time.perf_counter()
    splits = syn.build_splits({}, seed=0)
    seconds = time.perf_counter() - t0
    sizes = {k: v.num_frames for k, v in splits.items()}
    print(f"synthetic default build: {seconds:.2f} s, frames per split {sizes}")
    assert seconds < 30
    assert sizes["train"] == 32_400 and sizes["test"] == 6_480          # the documented default sizes
    assert set(splits) == {"train", "test"} | {syn.shift_name(k, s) for k in syn.SHIFTS
                                               for s in syn.DEFAULTS["shift_strengths"]}
    assert all(sizes[syn.shift_name(k, 1.0)] == 6_480 for k in syn.SHIFTS)
