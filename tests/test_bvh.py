import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from poseprompt.core.skeleton import H36M17
from poseprompt.data import bvh
from poseprompt.data.format import DataFormatError

BANDAI = Path(__file__).resolve().parents[2] / "shared" / "data" / "bandai-1"
needs_bandai = pytest.mark.skipif(not (BANDAI / "bvh").is_dir(),
                                  reason=f"Bandai-1 data not found at {BANDAI} (shared data folder absent)")

# Two joints: A (root, 6 channels) and B (3 rotation channels), then an end site.
TINY = """HIERARCHY
ROOT A
{{
  OFFSET 5 5 5
  CHANNELS 6 Xposition Yposition Zposition {order_a}
  JOINT B
  {{
    OFFSET 0 1 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    End Site
    {{
      OFFSET 0 1 0
    }}
  }}
}}
MOTION
Frames: {frames}
Frame Time: 0.02
{rows}
"""


def write_tiny(tmp_path, order_a="Zrotation Xrotation Yrotation", rows=("10 20 30 90 90 0 90 0 0",),
               frames=None, name="tiny.bvh"):
    path = tmp_path / name
    n = len(rows) if frames is None else frames
    path.write_text(TINY.format(order_a=order_a, rows="\n".join(rows), frames=n))
    return path


def test_channel_order_and_position_channels_on_a_hand_written_chain(tmp_path):
    # A: translated to (10, 20, 30) (position channels replace the offset 5 5 5), rotated Z 90 then X 90.
    # B = A + Rz(90) Rx(90) (0, 1, 0) = A + Rz(90) (0, 0, 1) = (10, 20, 31)
    # End = B + Rz(90) Rx(90) Rz(90) (0, 1, 0) = B + Rz(90) Rx(90) (-1, 0, 0) = B + (0, -1, 0)
    hier, motion = bvh.read_bvh(write_tiny(tmp_path))
    assert hier.names == ["A", "B", "B_End"] and motion.fps == 50.0
    pos = bvh.forward_kinematics(hier, motion)
    np.testing.assert_allclose(pos[0], [[10, 20, 30], [10, 20, 31], [10, 19, 31]], atol=1e-12)
    # the same values in the order X then Z: B = A + Rx(90) Rz(90) (0, 1, 0) = A + Rx(90) (-1, 0, 0)
    hier, motion = bvh.read_bvh(write_tiny(tmp_path, order_a="Xrotation Zrotation Yrotation",
                                           rows=("10 20 30 90 90 0 0 0 0",)))
    pos = bvh.forward_kinematics(hier, motion)
    np.testing.assert_allclose(pos[0, 1], [9, 20, 30], atol=1e-12)


def test_up_axis_and_units():
    p = np.array([[1.0, 2.0, 3.0]])
    np.testing.assert_allclose(bvh.to_world(p, 0.01, "y"), [[0.01, -0.03, 0.02]])
    np.testing.assert_allclose(bvh.to_world(p, 1.0, "z"), p)
    # the y-up to z-up change is a proper rotation (no mirroring): it keeps handedness
    e = bvh.to_world(np.eye(3), 1.0, "y")
    assert np.linalg.det(e) == pytest.approx(1.0)


def test_resample_rate_and_values():
    x = np.arange(31, dtype=float)[:, None] * np.array([1.0, -2.0])  # 1 s at 30 fps, linear in time
    y = bvh.resample(x, 30.0, 50.0)
    assert len(y) == 51
    np.testing.assert_allclose(y[:, 0], np.arange(51) * 30 / 50, atol=1e-12)
    np.testing.assert_array_equal(bvh.resample(x, 30.0, 30.0), x)


def test_malformed_files_raise_errors_naming_the_file(tmp_path):
    truncated = write_tiny(tmp_path, rows=("10 20 30 90 90 0 90 0 0",) * 2, frames=3, name="truncated.bvh")
    with pytest.raises(DataFormatError, match=r"truncated\.bvh: line \d+.*Frames: 3"):
        bvh.read_bvh(truncated)
    short_row = write_tiny(tmp_path, rows=("10 20 30 90 90 0 90 0 0", "10 20 30 90"), name="short_row.bvh")
    with pytest.raises(DataFormatError, match=r"short_row\.bvh: line 20: expected 9 channel values, found 4"):
        bvh.read_bvh(short_row)
    nan = write_tiny(tmp_path, rows=("10 20 30 90 90 0 90 0 0", "10 20 30 90 nan 0 90 0 0"), name="nan.bvh")
    with pytest.raises(DataFormatError, match=r"nan\.bvh: line 20: frame 1: NaN .*Xrotation of joint 'A'"):
        bvh.read_bvh(nan)
    text = write_tiny(tmp_path).read_text()
    no_offset = tmp_path / "no_offset.bvh"
    no_offset.write_text(text.replace("OFFSET 0 1 0\n    CHANNELS", "CHANNELS", 1))
    with pytest.raises(DataFormatError, match=r"no_offset\.bvh: line 8: expected 'OFFSET'"):
        bvh.read_bvh(no_offset)
    cut = tmp_path / "cut.bvh"
    cut.write_text(text[: text.index("MOTION")])
    with pytest.raises(DataFormatError, match=r"cut\.bvh.*MOTION"):
        bvh.read_bvh(cut)
    with pytest.raises(FileNotFoundError, match="absent.bvh"):
        bvh.read_bvh(tmp_path / "absent.bvh")


def test_unknown_joint_names_are_listed(tmp_path):
    path = write_tiny(tmp_path)
    joint_map = {name: "A" for name in H36M17.joints}
    joint_map["head"] = {"lerp": ["Neck", "B"], "t": 2.5}
    joint_map["left_wrist"] = "Hand_L"
    with pytest.raises(DataFormatError) as err:
        bvh.bvh_to_h36m17(path, joint_map, 1.0, "z")
    msg = str(err.value)
    assert "tiny.bvh" in msg and "['Hand_L', 'Neck']" in msg and "['A', 'B', 'B_End']" in msg
    with pytest.raises(ValueError, match="right_knee"):
        bvh.resolve_joint_map({k: v for k, v in joint_map.items() if k != "right_knee"})
    # a complete map over the tiny file works, rules included
    joint_map["left_wrist"] = {"mean": ["A", "B_End"]}
    joint_map["head"] = {"lerp": ["A", "B"], "t": 2.0}
    out, fps = bvh.bvh_to_h36m17(path, joint_map, 1.0, "z")
    np.testing.assert_allclose(out[0, H36M17.joints.index("head")], [10, 20, 32], atol=1e-12)
    np.testing.assert_allclose(out[0, H36M17.joints.index("left_wrist")], [10, 19.5, 30.5], atol=1e-12)


def test_labels_from_file_names():
    cfg = bvh.resolve_config({"folder": "x"})
    assert bvh.clip_labels(Path("dataset-1_walk-back_not-confident_002.bvh"), cfg) == ("walk-back", "not-confident")
    with pytest.raises(DataFormatError, match="clip7.bvh"):
        bvh.clip_labels(Path("clip7.bvh"), cfg)
    assert bvh.clip_labels(Path("clip7.bvh"), {**cfg, "pattern": None}) == ("clip7", "")
    with pytest.raises(ValueError, match="splitby"):
        bvh.resolve_config({"folder": "x", "splitby": "style"})


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        bvh.build_splits({"folder": str(tmp_path / "nowhere")}, 0)
    with pytest.raises(FileNotFoundError, match="no .bvh files"):
        bvh.build_splits({"folder": str(tmp_path)}, 0)


@needs_bandai
def test_forward_kinematics_matches_reference_on_all_bandai_clips():
    ref = np.load(BANDAI / "reference_h36m17_mm.npz")
    files = sorted((BANDAI / "bvh").glob("*.bvh"))
    assert len(files) == 174
    body = [j for j in range(17) if j != 10]  # the head top is an extrapolation: excluded by the spec
    worst, worst_head, frames = 0.0, 0.0, 0
    t0 = time.perf_counter()
    for f in files:
        ours, fps = bvh.bvh_to_h36m17(f)  # metres, z up
        theirs = bvh.to_world(ref[f.stem], 0.001, "y")  # mm, y up -> the same frame
        assert ours.shape == theirs.shape and fps == 30.0
        err = np.linalg.norm(ours - theirs, axis=-1)
        worst = max(worst, err[:, body].max())
        worst_head = max(worst_head, err[:, 10].max())
        frames += len(ours)
    seconds = time.perf_counter() - t0
    print(f"bandai-1: {len(files)} clips, {frames} frames read and converted in {seconds:.2f} s; "
          f"max error {worst * 1000:.5f} mm (head top {worst_head * 1000:.5f} mm)")
    assert frames == 31914
    assert worst < 1e-3


@needs_bandai
def test_json_side_file_labels_agree_with_file_names():
    cfg = bvh.resolve_config({"folder": str(BANDAI / "bvh")})
    json_cfg = {**cfg, "labels": "json"}
    for f in sorted((BANDAI / "bvh").glob("*.bvh")):
        assert bvh.clip_labels(f, json_cfg) == bvh.clip_labels(f, cfg), f.name


@needs_bandai
def test_build_splits_by_style_on_a_few_bandai_clips(tmp_path):
    for pattern in ("dataset-1_walk_*_001", "dataset-1_bow_*_001", "dataset-1_kick_*"):
        for f in (BANDAI / "bvh").glob(pattern + ".bvh"):
            shutil.copy(f, tmp_path)
    cfg = {"folder": str(tmp_path), "split_by": "style", "test_values": ["old", "not-confident"],
           "cameras": 2, "fps": 50}
    splits = bvh.build_splits(cfg, seed=3)
    train, test = splits["train"].validate(), splits["test"].validate()
    assert set(test.style) == {"old", "not confident"}
    assert not set(train.style) & set(test.style)
    assert {"walk", "bow", "kick"} <= set(train.action) and set(test.action) == {"walk", "bow"}
    assert train.num_sequences == 2 * (15 + 15 + 1 - 4) and set(train.camera) == {"cam0", "cam1"}
    assert np.all(train.fps == 50.0) and train.meta["source"] == "bvh" and train.meta["skeleton"] == "h36m17"
    assert set(train.subject) == {tmp_path.name}
    # the 3D targets keep the actor's bone lengths (resampling interpolates positions: tiny changes)
    s = list(train.name).index("dataset-1_walk_normal_001")
    lengths = H36M17.bone_lengths(train.pose3d[train.frames(s)].astype(np.float64))
    assert np.ptp(lengths, axis=0).max() < 0.005
    # without fps the clip keeps its 30 fps frames; at 50 fps it spans the same time
    n30 = len(bvh.read_bvh(tmp_path / "dataset-1_walk_normal_001.bvh")[1].values)
    assert train.lengths()[s] == (n30 - 1) * 50 // 30 + 1
    again = bvh.build_splits({**cfg, "fps": None}, seed=3)["train"]
    assert again.lengths()[s] == n30 and np.all(again.fps == 30.0)
    # same seed: identical; another seed moves the cameras
    other = bvh.build_splits(cfg, seed=4)["train"]
    assert not np.array_equal(other.kp2d_px, train.kp2d_px)
    same = bvh.build_splits(cfg, seed=3)["train"]
    np.testing.assert_array_equal(same.kp2d_px, train.kp2d_px)
    by_file = bvh.build_splits({**cfg, "split_by": "file", "test_fraction": 0.25}, seed=0)
    assert by_file["test"].num_sequences == 2 * 8 and by_file["train"].num_sequences == 2 * (31 - 8)
    assert not set(by_file["test"].name) & set(by_file["train"].name)
    with pytest.raises(ValueError, match="sleepy"):  # a style the folder does not have
        bvh.build_splits({**cfg, "test_values": ["sleepy"]}, 0)
