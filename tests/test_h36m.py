"""Human3.6M loader on fixture files written in exactly the public VideoPose3D layout, plus checks of
the shipped camera calibration and its convention."""
import json
from importlib import resources

import numpy as np
import pytest

from poseprompt.data import h36m
from poseprompt.data.format import DataFormatError, PoseSequences

CAMERA_IDS = ["54138969", "55011271", "58860488", "60457274"]
SUBJECTS = ["S1", "S5", "S6", "S7", "S8", "S9", "S11"]
# 17 kept joints of a standing person, world metres, z up (pelvis at 0.95 m). Order = H36M17.
STANDING = np.array([
    [0.00, 0.00, 0.95], [-0.13, 0.00, 0.93], [-0.14, 0.02, 0.50], [-0.15, 0.00, 0.08],
    [0.13, 0.00, 0.93], [0.14, 0.02, 0.50], [0.15, 0.00, 0.08], [0.00, 0.01, 1.18],
    [0.00, 0.02, 1.43], [0.00, 0.03, 1.52], [0.00, 0.02, 1.70], [0.17, 0.02, 1.40],
    [0.20, 0.03, 1.12], [0.21, 0.05, 0.87], [-0.17, 0.02, 1.40], [-0.20, 0.03, 1.12],
    [-0.21, 0.05, 0.87],
])


def rotate(q, v):
    """Rotate vectors v (..., 3) by the unit quaternion q = (w, x, y, z) (Hamilton product form,
    written independently of poseprompt.data.camera.quaternion_to_matrix)."""
    q = np.asarray(q, np.float64) / np.linalg.norm(q)
    w, u = q[0], q[1:]
    uv = np.cross(u, v)
    return v + 2.0 * w * uv + 2.0 * np.cross(u, uv)


def to_camera(world, subject, cam_id):
    """The dataset's convention: orientation is camera->world, translation the camera centre (mm)."""
    cams = json.loads(resources.files("poseprompt").joinpath("assets/h36m_cameras.json").read_text())
    ext = cams["extrinsics"][subject][cam_id]
    q = np.array(ext["orientation"])
    q_conj = q * np.array([1, -1, -1, -1])
    return rotate(q_conj, world - np.array(ext["translation"]) / 1000.0)


def pixels(cam_pts, cam_id):
    cams = json.loads(resources.files("poseprompt").joinpath("assets/h36m_cameras.json").read_text())
    intr = cams["intrinsics"][cam_id]
    return cam_pts[..., :2] / cam_pts[..., 2:3] * np.array(intr["focal_length"]) + np.array(intr["center"])


def mocap(frames, shift):
    """(frames, 32, 3) world metres: the 17 kept joints start ``shift`` m along x and move 2 cm per
    frame; the 15 dropped joints are absurd (50 m away) so that selecting a wrong joint shows at once."""
    out = np.full((frames, 32, 3), 50.0)
    t = np.arange(frames)[:, None, None]
    out[:, h36m.KEEP_JOINTS] = STANDING[None] + np.array([0.02, 0.01, 0.0]) * t + np.array([shift, 0, 0])
    return out.astype(np.float32)


ACTIONS = {"Walking 1": 9, "SittingDown": 7}
S1_EXTRA = {"TakingPhoto": 8}


def write_fixture(folder, tag="gt", extra_2d=3, subjects=SUBJECTS):
    """data_3d_h36m.npz and data_2d_h36m_<tag>.npz with the public keys and pickled dicts; the 2D is
    the fixture 3D projected through the shipped cameras (dataset convention), ``extra_2d`` frames
    longer than the mocap (like CPN detections)."""
    pos3d, pos2d = {}, {}
    for si, s in enumerate(subjects):
        acts = dict(ACTIONS, **(S1_EXTRA if s == "S1" else {}))
        pos3d[s], pos2d[s] = {}, {}
        for ai, (a, n) in enumerate(acts.items()):
            world = mocap(n, 0.1 * si + 0.05 * ai)
            pos3d[s][a] = world
            views = []
            for c in CAMERA_IDS:
                px = pixels(to_camera(world[:, h36m.KEEP_JOINTS].astype(np.float64), s, c), c)
                pad = np.repeat(px[-1:], extra_2d, 0) + 7.0  # detections past the mocap end
                views.append(np.concatenate([px, pad]).astype(np.float32))
            pos2d[s][a] = views
    np.savez_compressed(folder / "data_3d_h36m.npz", positions_3d=pos3d)
    meta = {"layout_name": "h36m", "num_joints": 17,
            "keypoints_symmetry": [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]]}
    np.savez_compressed(folder / f"data_2d_h36m_{tag}.npz", positions_2d=pos2d, metadata=meta)
    return pos3d, pos2d


@pytest.fixture
def fixture_dir(tmp_path):
    write_fixture(tmp_path)
    return tmp_path


def cfg(folder, **kw):
    return {"dir": str(folder), "keypoints": "gt", **kw}


# ---- the shipped calibration ---------------------------------------------------------------------
def test_camera_file_has_the_published_cameras():
    cams = h36m.load_cameras()
    assert cams["camera_order"] == CAMERA_IDS
    sizes = [(cams["intrinsics"][c]["res_w"], cams["intrinsics"][c]["res_h"]) for c in CAMERA_IDS]
    assert sizes == [(1000, 1002), (1000, 1000), (1000, 1000), (1000, 1002)]
    assert "source" in cams and "VideoPose3D" in cams["source"]
    assert set(SUBJECTS) <= set(cams["extrinsics"])
    for s in SUBJECTS:
        for c in CAMERA_IDS:
            q = np.array(cams["extrinsics"][s][c]["orientation"])
            assert abs(np.linalg.norm(q) - 1.0) < 1e-6, (s, c)  # a mistyped digit breaks the unit norm
    # spot values transcribed from the public calibration
    assert cams["intrinsics"]["54138969"]["focal_length"] == [1145.0494384765625, 1143.7811279296875]
    assert cams["extrinsics"]["S9"]["55011271"]["translation"] == [1990.959716796875, -5123.810546875,
                                                                    1568.8048095703125]
    assert cams["extrinsics"]["S11"]["60457274"]["orientation"][0] == 0.5894251465797424


@pytest.mark.parametrize("subject", SUBJECTS)
def test_camera_convention_is_plausible(subject):
    """A person standing at the world origin is 3.5-6.5 m in front of every camera, upright in the
    image (head above feet) and inside it; checked with the loader's camera_parameters."""
    from poseprompt.data.camera import project, world_to_camera
    for c in CAMERA_IDS:
        cam = h36m.camera_parameters(subject, c)
        xc = world_to_camera(STANDING, cam["rotation"], cam["centre"])
        assert np.all((xc[:, 2] > 3.5) & (xc[:, 2] < 6.5)), (subject, c, xc[:, 2])
        uv = project(xc, cam["intrinsics"])
        w, h = cam["image_size"]
        assert np.all((uv > 0) & (uv < [w, h])), (subject, c)
        assert uv[10, 1] < uv[3, 1] - 200 and uv[10, 1] < uv[6, 1] - 200  # head top far above the ankles
        # the loader's rotation agrees with the independent quaternion rotation of the tests
        np.testing.assert_allclose(xc, to_camera(STANDING, subject, c), atol=1e-9)


def test_camera_centres_are_the_translations():
    cam = h36m.camera_parameters("S9", "54138969")
    np.testing.assert_allclose(cam["centre"], np.array([2044.45849609375, 4935.1171875, 1481.2275390625]) / 1000)
    # the camera centre maps to the camera-frame origin
    from poseprompt.data.camera import world_to_camera
    np.testing.assert_allclose(world_to_camera(cam["centre"], cam["rotation"], cam["centre"]), 0.0, atol=1e-12)


# ---- the loader ----------------------------------------------------------------------------------
def test_splits_shapes_subjects_and_trimming(fixture_dir):
    splits = h36m.build_splits(cfg(fixture_dir), seed=0)
    assert set(splits) == {"train", "test"}
    tr, te = splits["train"], splits["test"]
    assert sorted(set(tr.subject)) == sorted(["S1", "S5", "S6", "S7", "S8"])
    assert sorted(set(te.subject)) == ["S11", "S9"]
    # one sequence per (subject, action, camera); S1 has one more action
    assert tr.num_sequences == (5 * 2 + 1) * 4 and te.num_sequences == 2 * 2 * 4
    # 2D trimmed to the mocap length: 9 / 7 / 8 frames, never the +3 of the detections
    lengths = dict(zip(zip(tr.name, tr.camera), tr.lengths()))
    assert lengths[("S1/Walking 1", "54138969")] == 9
    assert lengths[("S1/SittingDown", "60457274")] == 7
    assert lengths[("S1/TakingPhoto", "55011271")] == 8
    assert tr.num_frames == 4 * (5 * 16 + 8)
    assert tr.kp2d.shape == (tr.num_frames, 17, 2) and tr.pose3d.shape == (tr.num_frames, 17, 3)
    assert np.all(tr.conf == 1) and np.all(tr.valid) and np.all(tr.fps == 50)
    assert tr.meta["source"] == "h36m" and tr.meta["skeleton"] == "h36m17" and tr.meta["input_2d"] == "gt"
    assert np.all(tr.kp2d_px.max(axis=(0, 1)) < 1000)  # the +7 px detections past the end are gone


def test_targets_match_a_hand_computation(fixture_dir):
    pos3d, pos2d = write_fixture(fixture_dir)
    te = h36m.build_splits(cfg(fixture_dir), seed=0)["test"]
    s = [i for i in range(te.num_sequences)
         if te.name[i] == "S11/SittingDown" and te.camera[i] == "58860488"][0]
    sl = te.frames(s)
    world = pos3d["S11"]["SittingDown"][:, h36m.KEEP_JOINTS].astype(np.float64)
    cam = to_camera(world, "S11", "58860488")                                     # (F, 17, 3)
    np.testing.assert_allclose(te.root3d[sl], cam[:, 0], atol=1e-5)
    np.testing.assert_allclose(te.pose3d[sl], cam - cam[:, :1], atol=1e-5)
    assert np.all(te.pose3d[:, 0] == 0)                                           # root-relative
    assert np.all((te.root3d[:, 2] > 4) & (te.root3d[:, 2] < 6.5))                # metres, in front
    # the 3D targets project onto the file's 2D through the stored intrinsics
    fx, fy, cx, cy = te.intrinsics[s]
    abs3d = te.pose3d[sl] + te.root3d[sl][:, None]
    uv = abs3d[..., :2] / abs3d[..., 2:] * [fx, fy] + [cx, cy]
    np.testing.assert_allclose(uv, pos2d["S11"]["SittingDown"][2][:len(uv)], atol=2e-3)
    # bone lengths survive the rigid transform (no joint mix-up)
    bones = h36m.H36M17.bone_lengths(te.pose3d[sl])
    np.testing.assert_allclose(bones, h36m.H36M17.bone_lengths(STANDING)[None].repeat(len(bones), 0), atol=1e-5)


def test_normalisation_and_image_sizes(fixture_dir):
    te = h36m.build_splits(cfg(fixture_dir), seed=0)["test"]
    for s in range(te.num_sequences):
        w, h = te.image_size[s]
        sl = te.frames(s)
        expect = te.kp2d_px[sl] / w * 2 - np.array([1, h / w])
        np.testing.assert_allclose(te.kp2d[sl], expect, atol=1e-6)
    sizes = {c: tuple(te.image_size[i]) for i, c in enumerate(te.camera)}
    assert sizes == {"54138969": (1000, 1002), "55011271": (1000, 1000), "58860488": (1000, 1000),
                     "60457274": (1000, 1002)}


def test_labels_and_evaluation_actions(fixture_dir):
    tr = h36m.build_splits(cfg(fixture_dir), seed=0)["train"]
    labels = dict(zip(tr.name, tr.action))
    assert labels["S1/Walking 1"] == "walk"
    assert labels["S1/TakingPhoto"] == "take photo"
    assert labels["S5/SittingDown"] == "sit down"
    assert h36m.evaluation_action("S1/TakingPhoto 1") == "Photo"
    assert h36m.evaluation_action("WalkingDog") == "WalkDog" and h36m.action_text("WalkDog 1") == "walk dog"
    assert len(h36m.ACTION_TEXT) == 15 and len(set(h36m.ACTION_TEXT.values())) == 15
    assert tr.meta["action_names"] == {"sit down": "SittingDown", "take photo": "Photo", "walk": "Walking"}
    assert set(tr.style) == {""}


def test_subject_action_and_downsample_options(fixture_dir):
    sp = h36m.build_splits(cfg(fixture_dir, train_subjects=["S1"], test_subjects=[], actions=["Photo"],
                               downsample=2), seed=0)
    assert set(sp) == {"train"}
    tr = sp["train"]
    assert set(tr.name) == {"S1/TakingPhoto"} and tr.num_sequences == 4
    assert list(tr.lengths()) == [4, 4, 4, 4] and np.all(tr.fps == 25)  # frames 0, 2, 4, 6 of 8


def test_round_trip_through_the_processed_format(fixture_dir, tmp_path):
    te = h36m.build_splits(cfg(fixture_dir), seed=0)["test"]
    back = PoseSequences.load(te.save(tmp_path / "out" / "test.npz"))
    assert list(back.name) == list(te.name) and np.array_equal(back.pose3d, te.pose3d)


# ---- bad input -----------------------------------------------------------------------------------
def test_missing_files_say_where_to_get_them(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"data_3d_h36m\.npz.*VideoPose3D"):
        h36m.build_splits(cfg(tmp_path), 0)
    write_fixture(tmp_path, tag="gt")
    with pytest.raises(FileNotFoundError, match=r"data_2d_h36m_cpn_ft_h36m_dbb\.npz.*VideoPose3D"):
        h36m.build_splits({"dir": str(tmp_path)}, 0)


def test_wrong_key_names_the_file(fixture_dir):
    np.savez(fixture_dir / "data_3d_h36m.npz", positions=np.zeros(3))
    with pytest.raises(DataFormatError, match=r"data_3d_h36m\.npz.*'positions_3d'"):
        h36m.build_splits(cfg(fixture_dir), 0)


def _rewrite(folder, which, fn):
    """Load a fixture file's dict, let fn modify it, write it back under the same key."""
    name, key = (("data_3d_h36m.npz", "positions_3d") if which == "3d" else ("data_2d_h36m_gt.npz", "positions_2d"))
    d = np.load(folder / name, allow_pickle=True)[key].item()
    fn(d)
    np.savez(folder / name, **{key: d})


@pytest.mark.parametrize("which, mutate, pattern", [
    ("3d", lambda d: d["S9"].__setitem__("Walking 1", np.zeros((9, 31, 3))),
     r"data_3d_h36m\.npz: subject S9, action 'Walking 1'.*\(frames, 32, 3\).*\(9, 31, 3\)"),
    ("3d", lambda d: d["S5"]["SittingDown"].__setitem__((2, 0, 1), np.nan),
     r"data_3d_h36m\.npz: subject S5, action 'SittingDown'.*NaN.*frame 2"),
    ("2d", lambda d: d["S9"]["SittingDown"][1].__setitem__((0, 3, 0), np.nan),
     r"data_2d_h36m_gt\.npz: subject S9, action 'SittingDown', camera 1 \(55011271\).*NaN"),
    ("2d", lambda d: d["S11"].__setitem__("Walking 1", d["S11"]["Walking 1"][:3]),
     r"data_2d_h36m_gt\.npz: subject S11, action 'Walking 1'.*list of 4 arrays"),
    ("2d", lambda d: d["S7"]["Walking 1"].__setitem__(0, np.zeros((12, 16, 2))),
     r"data_2d_h36m_gt\.npz: subject S7, action 'Walking 1', camera 0.*\(frames, 17, 2\)"),
    ("2d", lambda d: d["S8"]["Walking 1"].__setitem__(3, np.zeros((5, 17, 2))),
     r"data_2d_h36m_gt\.npz: subject S8, action 'Walking 1', camera 3.*5 frames of 2D but 9"),
    ("2d", lambda d: d["S6"].pop("SittingDown"),
     r"data_2d_h36m_gt\.npz: subject S6, action 'SittingDown' is missing"),
    ("2d", lambda d: d.pop("S11"), r"data_2d_h36m_gt\.npz: 'positions_2d' has no subject 'S11'"),
])
def test_bad_content_raises_a_named_error(fixture_dir, which, mutate, pattern):
    _rewrite(fixture_dir, which, mutate)
    with pytest.raises(DataFormatError, match=pattern):
        h36m.build_splits(cfg(fixture_dir), 0)


def test_not_a_dict_and_not_an_npz(fixture_dir):
    np.savez(fixture_dir / "data_2d_h36m_gt.npz", positions_2d=np.zeros((4, 17, 2)))
    with pytest.raises(DataFormatError, match=r"data_2d_h36m_gt\.npz: key 'positions_2d' must hold a pickled dict"):
        h36m.build_splits(cfg(fixture_dir), 0)
    (fixture_dir / "data_3d_h36m.npz").write_text("not a zip")
    with pytest.raises(DataFormatError, match=r"data_3d_h36m\.npz: not a readable"):
        h36m.build_splits(cfg(fixture_dir), 0)


def test_bad_config(fixture_dir):
    with pytest.raises(ValueError, match="unknown keys"):
        h36m.build_splits(cfg(fixture_dir, subjects=["S1"]), 0)
    with pytest.raises(ValueError, match="S2"):
        h36m.build_splits(cfg(fixture_dir, train_subjects=["S2"]), 0)
    with pytest.raises(ValueError, match="downsample"):
        h36m.build_splits(cfg(fixture_dir, downsample=0), 0)


def test_a_camera_without_detections_is_skipped_and_recorded(fixture_dir):
    _rewrite(fixture_dir, "2d", lambda d: d["S9"]["Walking 1"].__setitem__(2, np.zeros((0, 17, 2), np.float32)))
    te = h36m.build_splits(cfg(fixture_dir), 0)["test"]
    assert te.meta["skipped"] == ["S9/Walking 1/58860488"]
    cams = [c for n, c in zip(te.name, te.camera) if n == "S9/Walking 1"]
    assert cams == ["54138969", "55011271", "60457274"] and te.num_sequences == 15
