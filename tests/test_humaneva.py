"""HumanEva-I loader on fixture files written in VideoPose3D's public layout (pickled dicts in npz),
cameras estimated from the files or read from their metadata, and HumanEva-I as a cross-domain set."""
import numpy as np
import pytest

from poseprompt.core.skeleton import H36M17
from poseprompt.data import humaneva
from poseprompt.data.camera import look_at, quaternion_to_matrix
from poseprompt.data.format import DataFormatError, PoseSequences
from poseprompt.stages.prepare import prepare

# A standing person, world metres, z up, in HumanEva-15 order (pelvis, thorax, L arm, R arm, L leg,
# R leg, head). The person faces -y, so its left is +x.
STANDING = np.array([
    [0.00, 0.00, 0.95], [0.00, 0.02, 1.45], [0.18, 0.02, 1.42], [0.21, 0.04, 1.14], [0.23, 0.06, 0.88],
    [-0.18, 0.02, 1.42], [-0.21, 0.04, 1.14], [-0.23, 0.06, 0.88], [0.12, 0.00, 0.93], [0.13, 0.02, 0.50],
    [0.14, 0.00, 0.08], [-0.12, 0.00, 0.93], [-0.13, 0.02, 0.50], [-0.14, 0.00, 0.08], [0.00, 0.03, 1.75],
])
PERSONS = ("S1", "S2", "S3")
ACTIONS = {"Walking 1 chunk0": 14, "Jog 1 chunk0": 10, "Box 1 chunk0": 9, "Gestures 1 chunk0": 8}
INTRINSICS = {"C1": (760.0, 755.0, 322.0, 241.0), "C2": (740.0, 742.0, 318.0, 236.0), "C3": (752.0, 750.0, 325.0, 244.0)}


def cameras(person):
    """Three cameras around the capture volume, a little different per person (world -> camera R, centre)."""
    k = PERSONS.index(person)
    out = {}
    for i, cam in enumerate(humaneva.CAMERAS):
        az = np.deg2rad(30 + 120 * i + 5 * k)
        centre = np.array([3.5 * np.cos(az), 3.5 * np.sin(az), 1.6 + 0.1 * i])
        out[cam] = (look_at(centre, np.array([0.0, 0.0, 1.0])), centre)
    return out


def motion(frames, seed):
    """(frames, 15, 3): the person walks along x and turns, with articulated limbs and 1 cm noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames)[:, None]
    pose = np.repeat(STANDING[None], frames, 0).copy()
    swing = 0.15 * np.sin(0.6 * t)
    pose[:, [4, 10], 1] += swing                      # left wrist and ankle forward and back
    pose[:, [7, 13], 1] -= swing
    yaw = 0.08 * t[:, 0]
    c, s = np.cos(yaw), np.sin(yaw)
    rot = np.stack([np.stack([c, -s, 0 * c], -1), np.stack([s, c, 0 * c], -1), np.stack([0 * c, 0 * c, 1 + 0 * c], -1)], 1)
    pose = np.einsum("fij,fnj->fni", rot, pose) + np.array([0.03, 0.01, 0.0]) * t[:, :, None] - [0.3, 0.2, 0.0]
    return pose + rng.normal(0.0, 0.01, pose.shape)


def project(world, person, cam):
    r, centre = cameras(person)[cam]
    xc = (world - centre) @ r.T
    fx, fy, cx, cy = INTRINSICS[cam]
    return xc[..., :2] / xc[..., 2:] * [fx, fy] + [cx, cy]


def write_fixture(folder, tag="gt", metadata_cameras=None):
    """data_3d_humaneva15.npz and data_2d_humaneva15_<tag>.npz with the public keys and layout."""
    pos3d, pos2d = {}, {}
    for split in ("Train", "Validate"):
        for pi, person in enumerate(PERSONS):
            subject = f"{split}/{person}"
            pos3d[subject], pos2d[subject] = {}, {}
            for ai, (action, n) in enumerate(ACTIONS.items()):
                world = motion(n + (split == "Validate"), seed=100 * pi + 10 * ai + (split == "Validate"))
                pos3d[subject][action] = world.astype(np.float32)
                pos2d[subject][action] = [project(world, person, c).astype(np.float32) for c in humaneva.CAMERAS]
    np.savez_compressed(folder / "data_3d_humaneva15.npz", positions_3d=pos3d)
    meta = {"layout_name": "humaneva15", "num_joints": 15,
            "keypoints_symmetry": [[2, 3, 4, 8, 9, 10], [5, 6, 7, 11, 12, 13]]}
    if metadata_cameras is not None:
        meta["cameras"] = metadata_cameras
    np.savez_compressed(folder / f"data_2d_humaneva15_{tag}.npz", positions_2d=pos2d, metadata=meta)
    return pos3d, pos2d


def expected_camera_frame(world, person, cam):
    """The loader's target, computed independently: canonical joints in the camera frame, root-relative."""
    r, centre = cameras(person)[cam]
    canon = humaneva.to_h36m17(np.asarray(world, np.float64))
    xc = (canon - centre) @ r.T
    return xc - xc[:, :1], xc[:, 0]


@pytest.fixture
def fixture_dir(tmp_path):
    write_fixture(tmp_path)
    return tmp_path


def test_joint_map_follows_the_documented_order():
    m = humaneva.H36M_FROM_HUMANEVA
    assert m.shape == (17, 15) and np.allclose(m.sum(1), 1.0)
    j, h = H36M17.joints.index, humaneva.JOINTS.index
    one_to_one = {"pelvis": 0, "thorax": 1, "left_shoulder": 2, "left_elbow": 3, "left_wrist": 4, "right_shoulder": 5,
                  "right_elbow": 6, "right_wrist": 7, "left_hip": 8, "left_knee": 9, "left_ankle": 10, "right_hip": 11,
                  "right_knee": 12, "right_ankle": 13, "head": 14}
    for name, k in one_to_one.items():
        assert m[j(name), k] == 1.0, name
    assert m[j("spine"), [h("pelvis"), h("thorax")]].tolist() == [0.5, 0.5]
    assert m[j("neck"), [h("thorax"), h("head")]].tolist() == [0.5, 0.5]
    # VideoPose3D's humaneva_skeleton: left joints [2, 3, 4, 8, 9, 10], right [5, 6, 7, 11, 12, 13]
    assert sorted(int(np.argmax(m[c])) for c in H36M17.left) == [2, 3, 4, 8, 9, 10]
    assert sorted(int(np.argmax(m[c])) for c in H36M17.right) == [5, 6, 7, 11, 12, 13]
    assert [H36M17.joints[c] for c in np.flatnonzero(~humaneva.SCORED)] == ["spine", "neck", "head"]


def test_fit_camera_recovers_a_projection_exactly():
    rng = np.random.default_rng(1)
    xyz = rng.uniform([-1, -1, 0], [1, 1, 2], (200, 3))
    r, centre = cameras("S2")["C3"]
    uv = project(xyz, "S2", "C3")
    fit = humaneva.fit_camera(uv, xyz)
    np.testing.assert_allclose(fit["rotation"], r, atol=1e-8)
    np.testing.assert_allclose(fit["centre"], centre, atol=1e-7)
    np.testing.assert_allclose(fit["intrinsics"], INTRINSICS["C3"], rtol=1e-8)
    assert abs(fit["skew"]) < 1e-6 and fit["rms_px"] < 1e-6
    with pytest.raises(ValueError, match="at least 6"):
        humaneva.fit_camera(uv[:5], xyz[:5])
    flat = xyz.copy()
    flat[:, 2] = 1.0
    with pytest.raises(ValueError, match="degenerate"):
        humaneva.fit_camera(project(flat, "S2", "C3"), flat)


def test_splits_targets_and_cameras_estimated_from_the_file(fixture_dir):
    pos3d, pos2d = write_fixture(fixture_dir)
    sp = humaneva.build_splits({"dir": str(fixture_dir)}, seed=0)
    assert set(sp) == {"train", "test"}
    te = sp["test"]
    # default actions Walking, Jog, Box (not Gestures); 3 persons x 3 actions x 3 cameras
    assert te.num_sequences == 27 and not any("Gestures" in n for n in te.name)
    assert sorted(set(te.action)) == ["box", "jog", "walk"] and sorted(set(te.subject)) == list(PERSONS)
    assert set(te.camera) == set(humaneva.CAMERAS) and np.all(te.fps == 60) and np.all(te.image_size == [640, 480])
    s = list(zip(te.name, te.camera)).index(("Validate/S2/Jog 1 chunk0", "C2"))
    sl = te.frames(s)
    world = pos3d["Validate/S2"]["Jog 1 chunk0"]
    pose, root = expected_camera_frame(world, "S2", "C2")
    np.testing.assert_allclose(te.pose3d[sl], pose, atol=2e-4)
    np.testing.assert_allclose(te.root3d[sl], root, atol=2e-4)
    np.testing.assert_allclose(te.intrinsics[s], INTRINSICS["C2"], rtol=1e-3)
    np.testing.assert_allclose(te.kp2d_px[sl], humaneva.to_h36m17(pos2d["Validate/S2"]["Jog 1 chunk0"][1]), atol=1e-3)
    np.testing.assert_allclose(te.kp2d[sl], te.kp2d_px[sl] / 640 * 2 - [1, 480 / 640], atol=1e-6)
    assert np.all(te.conf == 1) and np.all(te.pose3d[:, 0] == 0)
    # spine, neck/nose and head are not scored; every other joint of every sequence is
    assert np.array_equal(te.scored_joints, np.repeat(humaneva.SCORED[None], te.num_sequences, 0))
    assert te.scored_mask().sum() == te.num_frames * 14
    fit = te.meta["camera_fit"]["S2/C2"]
    assert fit["from"].startswith("DLT") and fit["rms_px"] < 1e-3
    assert te.meta["source"] == "humaneva" and te.meta["unscored_joints"] == ["spine", "neck", "head"]
    assert te.meta["action_names"] == {"box": "Box", "jog": "Jog", "walk": "Walking"}
    tr = sp["train"]
    assert all(n.startswith("Train/") for n in tr.name) and tr.num_sequences == 27


def test_cameras_from_the_files_metadata(tmp_path):
    full = {p: {c: {"rotation": r.tolist(), "centre": centre.tolist(), "intrinsics": list(INTRINSICS[c])}
                for c, (r, centre) in cameras(p).items()} for p in PERSONS}
    write_fixture(tmp_path, metadata_cameras=full)
    te = humaneva.build_splits({"dir": str(tmp_path), "train_subjects": [], "actions": ["Walk"]}, 0)["test"]
    assert sorted(set(te.action)) == ["walk"] and te.meta["camera_fit"]["S1/C1"]["from"] == "metadata"
    pos3d = np.load(tmp_path / "data_3d_humaneva15.npz", allow_pickle=True)["positions_3d"].item()
    s = list(zip(te.name, te.camera)).index(("Validate/S3/Walking 1 chunk0", "C1"))
    np.testing.assert_allclose(te.pose3d[te.frames(s)],
                               expected_camera_frame(pos3d["Validate/S3"]["Walking 1 chunk0"], "S3", "C1")[0], atol=1e-5)
    np.testing.assert_allclose(te.intrinsics[s], INTRINSICS["C1"])

    # the Human3.6M / VideoPose3D convention: quaternion camera -> world, centre in mm; intrinsics fitted
    def quaternion(m):   # rotation matrix -> unit quaternion (w, x, y, z), for a proper rotation
        w = np.sqrt(max(1e-12, 1 + np.trace(m))) / 2
        return np.array([w, (m[2, 1] - m[1, 2]) / (4 * w), (m[0, 2] - m[2, 0]) / (4 * w), (m[1, 0] - m[0, 1]) / (4 * w)])
    vp3d = {f"Validate/{p}": {c: {"orientation": quaternion(r.T).tolist(), "translation": (centre * 1000).tolist()}
                              for c, (r, centre) in cameras(p).items()} for p in PERSONS}
    assert np.allclose(quaternion_to_matrix(vp3d["Validate/S1"]["C2"]["orientation"]).T, cameras("S1")["C2"][0])
    write_fixture(tmp_path, metadata_cameras=vp3d)
    te = humaneva.build_splits({"dir": str(tmp_path), "train_subjects": [], "cameras": ["C2"]}, 0)["test"]
    assert set(te.camera) == {"C2"}
    np.testing.assert_allclose(te.intrinsics[0], INTRINSICS["C2"], rtol=1e-5)
    assert te.meta["camera_fit"]["S1/C2"]["from"].startswith("metadata extrinsics")


def test_downsample_and_processed_round_trip(fixture_dir, tmp_path):
    te = humaneva.build_splits({"dir": str(fixture_dir), "train_subjects": [], "downsample": 2}, 0)["test"]
    walk = list(te.name).index("Validate/S1/Walking 1 chunk0")
    assert np.all(te.fps == 30) and te.lengths()[walk] == 8        # 15 frames -> every second one
    back = PoseSequences.load(te.save(tmp_path / "out" / "shift_humaneva.npz"))
    assert np.array_equal(back.scored_joints, te.scored_joints) and np.array_equal(back.pose3d, te.pose3d)
    # a split whose joints are all scored is written as before (no extra key) and loads as all scored
    path = back.select([0]).save(tmp_path / "out" / "one.npz")
    full = PoseSequences.load(path)
    full.scored_joints[:] = True
    path = full.save(tmp_path / "out" / "all_scored.npz")
    assert "scored_joints" not in np.load(path).files
    assert PoseSequences.load(path).scored_joints.all()


def test_cross_domain_entry_train_on_one_source_test_on_humaneva(fixture_dir, tmp_path):
    data = {"source": "synthetic", "out_dir": "data/processed", "val": {"by": "subject", "fraction": 0.34},
            "synthetic": dict(subjects_train=3, subjects_test=1, shift_subjects=0, speeds=[1.0], frames_per_sequence=30,
                              cameras=1, motions=["walk"], shifts=[]),
            "cross_domain": [{"name": "humaneva", "source": "humaneva", "dir": str(fixture_dir)}]}
    summary = prepare(data, tmp_path / "processed", seed=0)
    assert summary["splits"]["shift_humaneva"]["sequences"] == 27
    shift = PoseSequences.load(tmp_path / "processed" / "shift_humaneva.npz")
    assert shift.meta["cross_domain_source"] == "humaneva" and shift.meta["split"] == "shift_humaneva"
    assert all(n.startswith("Validate/") for n in shift.name) and not shift.scored_joints[:, 7].any()
    # as the data.source, with the section of params.yaml
    summary = prepare({"source": "humaneva", "val": {"by": "sequence", "fraction": 0.2},
                       "humaneva": {"dir": str(fixture_dir)}}, tmp_path / "he", seed=0)
    assert summary["source"] == "humaneva" and summary["splits"]["test"]["sequences"] == 27


def test_missing_files_say_where_to_get_them(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"data_3d_humaneva15\.npz: HumanEva-I file not found.*humaneva 'dir'"):
        humaneva.build_splits({"dir": str(tmp_path)}, 0)
    write_fixture(tmp_path, tag="gt")
    with pytest.raises(FileNotFoundError, match=r"data_2d_humaneva15_cpn\.npz.*VideoPose3D"):
        humaneva.build_splits({"dir": str(tmp_path), "keypoints": "cpn"}, 0)


def _rewrite(folder, which, fn):
    name, key = (("data_3d_humaneva15.npz", "positions_3d") if which == "3d" else
                 ("data_2d_humaneva15_gt.npz", "positions_2d"))
    z = np.load(folder / name, allow_pickle=True)
    arrays = {k: z[k].item() for k in z.files}       # every key of these files is a pickled dict
    fn(arrays[key])
    np.savez(folder / name, **arrays)


@pytest.mark.parametrize("which, mutate, pattern", [
    ("3d", lambda d: d["Validate/S1"].__setitem__("Box 1 chunk0", np.zeros((9, 14, 3))),
     r"data_3d_humaneva15\.npz: subject Validate/S1, action 'Box 1 chunk0'.*\(frames, 15, 3\).*\(9, 14, 3\)"),
    ("3d", lambda d: d["Validate/S2"]["Jog 1 chunk0"].__setitem__((3, 0, 1), np.nan),
     r"data_3d_humaneva15\.npz: subject Validate/S2, action 'Jog 1 chunk0'.*NaN.*frame 3"),
    ("2d", lambda d: d["Validate/S3"]["Walking 1 chunk0"][2].__setitem__((4, 5, 0), np.nan),
     r"data_2d_humaneva15_gt\.npz: subject Validate/S3, action 'Walking 1 chunk0', camera C3.*NaN.*frame 4"),
    ("2d", lambda d: d["Validate/S1"]["Walking 1 chunk0"].pop(),
     r"data_2d_humaneva15_gt\.npz: subject Validate/S1, action 'Walking 1 chunk0'.*list of 3 arrays"),
    ("2d", lambda d: d["Validate/S1"]["Jog 1 chunk0"].__setitem__(0, np.zeros((4, 15, 2), np.float32)),
     r"camera C1: 4 frames of 2D but 11 of mocap"),
    ("2d", lambda d: d["Validate/S2"].pop("Box 1 chunk0"),
     r"data_2d_humaneva15_gt\.npz: subject Validate/S2, action 'Box 1 chunk0' is missing"),
    ("2d", lambda d: d.pop("Validate/S3"), r"data_2d_humaneva15_gt\.npz: 'positions_2d' has no subject 'Validate/S3'"),
])
def test_bad_content_raises_a_named_error(fixture_dir, which, mutate, pattern):
    _rewrite(fixture_dir, which, mutate)
    with pytest.raises(DataFormatError, match=pattern):
        humaneva.build_splits({"dir": str(fixture_dir)}, 0)


def test_a_view_without_2d_is_skipped_and_recorded(fixture_dir):
    _rewrite(fixture_dir, "2d", lambda d: d["Validate/S1"]["Box 1 chunk0"].__setitem__(1, None))
    te = humaneva.build_splits({"dir": str(fixture_dir), "train_subjects": []}, 0)["test"]
    assert te.meta["skipped"] == ["Validate/S1/Box 1 chunk0/C2"] and te.num_sequences == 26


def test_metadata_cameras_must_be_complete(tmp_path):
    write_fixture(tmp_path, metadata_cameras={"S1": {"C1": {"rotation": np.eye(3).tolist()}}})
    with pytest.raises(DataFormatError, match=r"metadata 'cameras', person S1, camera C1: expected 'rotation'"):
        humaneva.build_splits({"dir": str(tmp_path), "test_subjects": ["Validate/S1"], "train_subjects": [],
                               "cameras": ["C1"]}, 0)
    with pytest.raises(DataFormatError, match=r"metadata 'cameras' has no camera C1 for person S2"):
        humaneva.build_splits({"dir": str(tmp_path), "test_subjects": ["Validate/S2"], "train_subjects": []}, 0)


def test_bad_config(fixture_dir):
    with pytest.raises(ValueError, match=r"data.humaneva: unknown keys \[.subjects.\]"):
        humaneva.build_splits({"dir": str(fixture_dir), "subjects": ["S1"]}, 0)
    with pytest.raises(ValueError, match="cameras"):
        humaneva.build_splits({"dir": str(fixture_dir), "cameras": ["C4"]}, 0)
    with pytest.raises(ValueError, match="downsample"):
        humaneva.build_splits({"dir": str(fixture_dir), "downsample": 0}, 0)


def test_joints_a_source_lacks_are_left_out_of_the_score():
    """An error on an unscored joint (HumanEva's spine, neck, head top) changes no metric; the
    same error on a scored joint does."""
    from poseprompt.stages.evaluate import per_frame_errors
    g = np.random.default_rng(0)
    F_, S = 40, 2
    pose = g.normal(0, 0.2, (F_, 17, 3)).astype(np.float32)
    pose -= pose[:, :1]
    z2 = np.zeros((F_, 17, 2), np.float32)
    scored = np.ones((S, 17), bool)
    scored[:, [7, 9, 10]] = False
    split = PoseSequences(kp2d=z2, kp2d_px=z2, conf=np.ones((F_, 17), np.float32), pose3d=pose,
                          root3d=np.zeros((F_, 3), np.float32), valid=np.ones(F_, bool),
                          starts=np.array([0, 20, 40]), subject=np.array(["S1", "S2"]), name=np.array(["a", "b"]),
                          action=np.array(["walk", "walk"]), style=np.array(["", ""]), camera=np.array(["c", "c"]),
                          fps=np.full(S, 60.0), intrinsics=np.ones((S, 4)), image_size=np.full((S, 2), 1000.0),
                          meta={"source": "test", "skeleton": "h36m17"}, scored_joints=scored)
    off_unscored = pose.copy()
    off_unscored[:, 10] += 0.3                                        # head top 300 mm off
    e = per_frame_errors(off_unscored, split)
    for k in ("mpjpe", "p_mpjpe", "n_mpjpe", "mpjve", "accel"):
        assert np.nanmax(np.abs(e[k])) < 1e-6, k
    off_scored = pose.copy()
    off_scored[:, 13, 0] += 0.3                                       # a wrist 300 mm off
    e = per_frame_errors(off_scored, split)
    assert np.allclose(e["mpjpe"], 300.0 / 14, atol=1e-3)             # over the 14 scored joints
