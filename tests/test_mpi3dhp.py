"""MPI-INF-3DHP loader on fixture files written in the circulated npz layout (key 'data', pickled dict)."""
import numpy as np
import pytest

from poseprompt.core.skeleton import H36M17
from poseprompt.data import mpi3dhp
from poseprompt.data.format import DataFormatError

# A person in the camera frame (x right, y down, z forward), canonical H36M17 order, metres.
CANONICAL = np.array([
    [0.00, 0.00, 0.0], [-0.13, 0.02, 0.0], [-0.14, 0.45, 0.02], [-0.15, 0.87, 0.0],
    [0.13, 0.02, 0.0], [0.14, 0.45, 0.02], [0.15, 0.87, 0.0], [0.00, -0.23, 0.01],
    [0.00, -0.48, 0.02], [0.00, -0.57, 0.03], [0.00, -0.75, 0.02], [0.17, -0.45, 0.02],
    [0.20, -0.17, 0.03], [0.21, 0.08, 0.05], [-0.17, -0.45, 0.02], [-0.20, -0.17, 0.03],
    [-0.21, 0.08, 0.05],
])
INTR = {"TS1": (1500.0, 1500.0, 1024.0, 1020.0), "TS5": (1680.0, 1680.0, 960.0, 540.0)}


def file_order(canonical):
    """Canonical (..., 17, 3) -> the 3DHP file's joint order."""
    out = np.empty_like(canonical)
    out[..., mpi3dhp.H36M_FROM_3DHP, :] = canonical
    return out


def make_sequence(frames, root_mm, intr, seed):
    rng = np.random.default_rng(seed)
    t = np.arange(frames)[:, None, None]
    can = CANONICAL[None] * 1000.0 + np.asarray(root_mm) + np.array([15.0, 0.0, 10.0]) * t
    can = can + rng.normal(0, 5.0, can.shape)               # some articulation, mm
    d3 = file_order(can)                                      # (F, 17, 3) mm, file order
    fx, fy, cx, cy = intr
    d2 = d3[..., :2] / d3[..., 2:] * [fx, fy] + [cx, cy]
    return d2.astype(np.float32), d3.astype(np.float32)


def write_test_file(folder, name="data_test_3dhp.npz", n_frames=12):
    data = {}
    for i, ts in enumerate(mpi3dhp.TEST_SEQUENCES):
        intr = INTR["TS5"] if ts in ("TS5", "TS6") else INTR["TS1"]
        d2, d3 = make_sequence(n_frames + i, [100.0 * i, 200.0, 4500.0], intr, i)
        valid = np.ones(n_frames + i, dtype=np.float32)
        valid[[1, 4]] = 0                                    # two invalid frames per sequence
        data[ts] = {"data_2d": d2, "data_3d": d3, "valid": valid}
    np.savez_compressed(folder / name, data=data)
    return data


def write_train_file(folder, name="data_train_3dhp.npz"):
    data = {}
    for k, seq in enumerate(["S1 Seq1", "S2 Seq2"]):
        cams = {}
        for cam in (0, 2):
            d2, d3 = make_sequence(10, [0.0, 150.0, 4000.0 + 100 * cam], INTR["TS1"], 10 * k + cam)
            cams[cam] = {"data_2d": d2, "data_3d": d3}
        data[seq] = [cams]
    np.savez_compressed(folder / name, data=data)
    return data


@pytest.fixture
def fixture_dir(tmp_path):
    write_test_file(tmp_path)
    return tmp_path


def test_joint_map_is_a_permutation_with_the_stated_convention():
    m = mpi3dhp.H36M_FROM_3DHP
    assert sorted(m) == list(range(17))
    j = H36M17.joints
    # 3DHP pelvis -> root, neck(1) -> thorax, head(16) -> neck/nose, head-top(0) -> head, spine(15) -> spine
    assert m[j.index("pelvis")] == 14 and m[j.index("thorax")] == 1 and m[j.index("neck")] == 16
    assert m[j.index("head")] == 0 and m[j.index("spine")] == 15
    assert m[j.index("right_hip")] == 8 and m[j.index("left_wrist")] == 7 and m[j.index("right_shoulder")] == 2


def test_test_split_mapping_units_and_flags(fixture_dir):
    data = mpi3dhp.build_splits({"dir": str(fixture_dir)}, seed=0)
    assert set(data) == {"test"}
    te = data["test"]
    assert list(te.name) == list(mpi3dhp.TEST_SEQUENCES) and list(te.lengths()) == [12, 13, 14, 15, 16, 17]
    raw = np.load(fixture_dir / "data_test_3dhp.npz", allow_pickle=True)["data"].item()
    s = 2
    sl = te.frames(s)
    d3 = raw["TS3"]["data_3d"].astype(np.float64)
    # mm -> m, pelvis (file joint 14) is the root, root-relative targets in canonical order
    np.testing.assert_allclose(te.root3d[sl], d3[:, 14] / 1000, atol=1e-6)
    np.testing.assert_allclose(te.pose3d[sl][:, H36M17.joints.index("neck")], (d3[:, 16] - d3[:, 14]) / 1000, atol=1e-6)
    np.testing.assert_allclose(te.pose3d[sl][:, H36M17.joints.index("thorax")], (d3[:, 1] - d3[:, 14]) / 1000, atol=1e-6)
    np.testing.assert_allclose(te.pose3d[sl][:, H36M17.joints.index("head")], (d3[:, 0] - d3[:, 14]) / 1000, atol=1e-6)
    np.testing.assert_allclose(te.pose3d[sl][:, H36M17.joints.index("left_knee")], (d3[:, 12] - d3[:, 14]) / 1000, atol=1e-6)
    assert np.all(te.pose3d[:, 0] == 0)
    # the canonical pose is recovered (up to the fixture's 5 mm articulation noise)
    assert np.abs(te.pose3d[sl] - (CANONICAL - CANONICAL[0])).max() < 0.03
    # 2D follows the same joint map
    np.testing.assert_allclose(te.kp2d_px[sl][:, 9], raw["TS3"]["data_2d"][:, 16], atol=1e-3)
    # valid flags: frames 1 and 4 of every sequence are not scored
    for k in range(te.num_sequences):
        assert np.flatnonzero(~te.valid[te.frames(k)]).tolist() == [1, 4]
    assert te.meta["ground_truth"] == "univ_annot3" and te.meta["source"] == "3dhp"
    assert np.all(te.conf == 1)


def test_image_sizes_fps_normalisation_and_intrinsics(fixture_dir):
    te = mpi3dhp.build_splits({"dir": str(fixture_dir), "ground_truth": "annot3"}, seed=0)["test"]
    assert te.meta["ground_truth"] == "annot3"
    assert [tuple(v) for v in te.image_size] == [(2048, 2048)] * 4 + [(1920, 1080)] * 2
    assert list(te.fps) == [25, 25, 25, 25, 50, 50]
    sl = te.frames(5)
    np.testing.assert_allclose(te.kp2d[sl], te.kp2d_px[sl] / 1920 * 2 - [1, 1080 / 1920], atol=1e-6)
    # least-squares intrinsics recover the projection of the fixture
    np.testing.assert_allclose(te.intrinsics[0], INTR["TS1"], rtol=1e-4)
    np.testing.assert_allclose(te.intrinsics[4], INTR["TS5"], rtol=1e-4)
    assert te.meta["intrinsics_fit"]["TS5"]["rms_px"] < 0.05


def test_intrinsics_override_and_sequence_selection(fixture_dir):
    te = mpi3dhp.build_splits({"dir": str(fixture_dir), "sequences": ["TS2", "TS6"],
                               "intrinsics": {"TS2": [1, 2, 3, 4], "TS6": [5, 6, 7, 8]}}, 0)["test"]
    assert list(te.name) == ["TS2", "TS6"]
    np.testing.assert_array_equal(te.intrinsics, [[1, 2, 3, 4], [5, 6, 7, 8]])


def test_train_file(fixture_dir):
    write_train_file(fixture_dir)
    sp = mpi3dhp.build_splits({"dir": str(fixture_dir), "train_file": "data_train_3dhp.npz"}, 0)
    tr = sp["train"]
    assert list(tr.name) == ["S1 Seq1/0", "S1 Seq1/2", "S2 Seq2/0", "S2 Seq2/2"]
    assert list(tr.subject) == ["S1", "S1", "S2", "S2"] and list(tr.camera) == ["0", "2", "0", "2"]
    assert tr.num_frames == 40 and np.all(tr.valid) and np.all(tr.pose3d[:, 0] == 0)
    assert tr.meta["split"] == "train"


def test_nan_in_invalid_frame_becomes_missing_but_in_valid_frame_is_an_error(tmp_path):
    data = write_test_file(tmp_path)
    data["TS2"]["data_3d"][4, 3] = np.nan               # frame 4 is invalid: tolerated
    np.savez(tmp_path / "data_test_3dhp.npz", data=data)
    te = mpi3dhp.build_splits({"dir": str(tmp_path)}, 0)["test"]
    sl = te.frames(1)
    j = mpi3dhp.H36M_FROM_3DHP.index(3)                 # file joint 3 (r-elbow) in canonical order
    assert te.conf[sl][4, j] == 0 and np.all(te.kp2d[sl][4, j] == 0) and np.all(te.pose3d[sl][4, j] == 0)
    assert te.conf[sl].sum() == te.lengths()[1] * 17 - 1
    data["TS2"]["data_2d"][5, 3, 0] = np.nan            # frame 5 is valid: an error
    np.savez(tmp_path / "data_test_3dhp.npz", data=data)
    with pytest.raises(DataFormatError, match=r"data_test_3dhp\.npz: sequence TS2.*NaN.*frame 5"):
        mpi3dhp.build_splits({"dir": str(tmp_path)}, 0)


def test_missing_file_says_where_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"data_test_3dhp\.npz.*MPI-INF-3DHP.*3dhp 'dir'"):
        mpi3dhp.build_splits({"dir": str(tmp_path)}, 0)
    write_test_file(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"data_train_3dhp\.npz"):
        mpi3dhp.build_splits({"dir": str(tmp_path), "train_file": "data_train_3dhp.npz"}, 0)


@pytest.mark.parametrize("mutate, pattern", [
    (lambda d: d["TS1"].pop("valid"), r"sequence TS1: expected a dict with keys \['data_2d', 'data_3d', 'valid'\]"),
    (lambda d: d["TS4"].__setitem__("data_3d", np.zeros((15, 16, 3))), r"sequence TS4: 'data_3d' expected .*\(frames, 17, 3\)"),
    (lambda d: d["TS5"].__setitem__("data_2d", np.zeros((16, 17, 3))), r"sequence TS5: 'data_2d' expected .*\(frames, 17, 2\)"),
    (lambda d: d["TS6"].__setitem__("valid", np.ones(3)), r"sequence TS6: 'valid' expected shape \(17,\)"),
    (lambda d: d["TS3"].__setitem__("data_2d", d["TS3"]["data_2d"][:-2]), r"sequence TS3: 'data_2d' has 12 frames but 'data_3d' 14"),
])
def test_bad_content_raises_a_named_error(fixture_dir, mutate, pattern):
    data = np.load(fixture_dir / "data_test_3dhp.npz", allow_pickle=True)["data"].item()
    mutate(data)
    np.savez(fixture_dir / "data_test_3dhp.npz", data=data)
    with pytest.raises(DataFormatError, match=r"data_test_3dhp\.npz: " + pattern):
        mpi3dhp.build_splits({"dir": str(fixture_dir)}, 0)


def test_wrong_key_and_missing_sequence(fixture_dir):
    data = np.load(fixture_dir / "data_test_3dhp.npz", allow_pickle=True)["data"].item()
    data.pop("TS4")
    np.savez(fixture_dir / "data_test_3dhp.npz", data=data)
    with pytest.raises(DataFormatError, match=r"data_test_3dhp\.npz: 'data' has no sequences \['TS4'\]"):
        mpi3dhp.build_splits({"dir": str(fixture_dir), "sequences": ["TS1", "TS4"]}, 0)
    np.savez(fixture_dir / "data_test_3dhp.npz", positions=data)
    with pytest.raises(DataFormatError, match=r"data_test_3dhp\.npz: missing key 'data'"):
        mpi3dhp.build_splits({"dir": str(fixture_dir)}, 0)


def test_bad_config(fixture_dir):
    with pytest.raises(ValueError, match="ground_truth"):
        mpi3dhp.build_splits({"dir": str(fixture_dir), "ground_truth": "annot2"}, 0)
    with pytest.raises(ValueError, match="unknown keys"):
        mpi3dhp.build_splits({"dir": str(fixture_dir), "subjects": ["TS1"]}, 0)


def test_fit_intrinsics_is_exact_on_projections():
    rng = np.random.default_rng(0)
    pts = rng.uniform([-1, -1, 3], [1, 1, 6], size=(50, 17, 3))
    uv = pts[..., :2] / pts[..., 2:] * [1400, 1390] + [1000, 980]
    intr, rms = mpi3dhp.fit_intrinsics(uv, pts)
    np.testing.assert_allclose(intr, [1400, 1390, 1000, 980], rtol=1e-9)
    assert rms < 1e-6
