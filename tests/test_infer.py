"""Inference on your own video's keypoints: readers, joint mapping, person choice, windowing and
stitching, resampling, the CLI, `make infer` and notebook 05 on a COCO-JSON made from synthetic data."""
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from poseprompt import build_model, save_checkpoint
from poseprompt.config.sections import ModelConfig
from poseprompt.core.skeleton import H36M17
from poseprompt.data.camera import normalize_screen, project
from poseprompt.data.format import PoseSequences
from poseprompt.stages.prepare import prepare
from poseprompt.stages.train import fit
from poseprompt.tools import infer
from poseprompt.tools.infer import KeypointFormatError

ROOT = Path(__file__).resolve().parents[1]
J = H36M17.joints.index
COCO = infer.LAYOUTS["coco17"]
# COCO-17 keypoint <- H36M17 joint of the synthetic data (eyes and ears: offsets around the head)
COCO_FROM_H36M = {"nose": J("neck"), **{n: J(n) for n in COCO if n in H36M17.joints}}
FACE_OFFSETS = {"left_eye": 4.0, "right_eye": -4.0, "left_ear": 9.0, "right_ear": -9.0}
DATA = {"source": "synthetic", "out_dir": "data/processed", "val": {"by": "subject", "fraction": 0.34},
        "windows": {"short": "pad", "speed_thresholds": [0.6, 3.0]},
        "synthetic": dict(subjects_train=3, subjects_test=1, shift_subjects=1, speeds=[1.0], frames_per_sequence=40,
                          cameras=1, motions=["walk", "squat", "wave"], shifts=["camera"])}
MODEL = dict(frames=9, width=16, depth=1, heads=2, context_dim=8, slot_dim=8, spatial_heads=2, temporal_heads=2,
             temporal_radius=4, prompt_length=3, text_tokens=1)
TRAIN = dict(epochs=1, batch_size=8, stride=9, warmup_steps=0, progress=False)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny but really trained checkpoint (its params say: synthetic data at 50 fps) and its test split."""
    root = tmp_path_factory.mktemp("infer")
    prepare(DATA, root / "data", seed=0)
    fit(MODEL, TRAIN, root / "data", root / "models" / "full" / "seed0", seed=0,
        params={"data": DATA, "model": MODEL, "train": TRAIN})
    return root / "models" / "full", PoseSequences.load(root / "data" / "test.npz")


def coco_keypoints(split: PoseSequences, s: int) -> np.ndarray:
    """(F, 17, 3) COCO-17 [x, y, score] of sequence s: its 3D projected through its camera."""
    sl = split.frames(s)
    px = project(split.pose3d[sl] + split.root3d[sl][:, None], split.intrinsics[s])       # (F, 17, 2)
    out = np.zeros((len(px), 17, 3))
    for k, name in enumerate(COCO):
        out[:, k, :2] = px[:, COCO_FROM_H36M[name]] if name in COCO_FROM_H36M else \
            px[:, J("head")] + [FACE_OFFSETS[name], 0.0]
    out[:, :, 2] = np.clip(0.5 + 0.5 * np.sin(np.arange(len(px)))[:, None] * 0.5 + 0.2, 0.3, 1.0)
    return out


def write_coco_json(path: Path, kp: np.ndarray, small_person: bool = True, first_frame: int = 0) -> Path:
    """Detector-style results: one entry per person per frame, flat [x, y, score] x 17."""
    entries = []
    for f, k in enumerate(kp):
        entries.append({"image_id": first_frame + f, "category_id": 1, "keypoints": k.ravel().round(3).tolist(),
                        "score": 0.9})
        if small_person:                                  # a child in the corner: never the largest
            small = k.copy()
            small[:, :2] = small[:, :2] * 0.2 + 10
            entries.append({"image_id": first_frame + f, "category_id": 1, "keypoints": small.ravel().tolist(),
                            "score": 0.99})
    path.write_text(json.dumps(entries))
    return path


# ---- joint mapping ---------------------------------------------------------------------------------
def _named(layout, values):
    """(1, K, 3) keypoints of ``layout`` from {name: (x, y, score)} (others missing)."""
    names = infer.LAYOUTS[layout]
    kp = np.zeros((1, len(names), 3))
    for n, v in values.items():
        kp[0, names.index(n)] = v
    return kp


def test_coco17_and_body25_map_to_the_17_joints():
    full = {n: (10.0 * k, 100.0 + k, 0.9) for k, n in enumerate(COCO)}
    px, conf = infer.to_skeleton(_named("coco17", full), "coco17")
    hip = (np.array(full["left_hip"][:2]) + full["right_hip"][:2]) / 2
    sho = (np.array(full["left_shoulder"][:2]) + full["right_shoulder"][:2]) / 2
    np.testing.assert_allclose(px[0, J("pelvis")], hip)
    np.testing.assert_allclose(px[0, J("thorax")], sho)
    np.testing.assert_allclose(px[0, J("spine")], (hip + sho) / 2)
    np.testing.assert_allclose(px[0, J("neck")], full["nose"][:2])
    np.testing.assert_allclose(px[0, J("head")], (np.array(full["left_eye"][:2]) + full["right_eye"][:2]) / 2)
    for n in ("left_wrist", "right_knee", "right_shoulder", "left_ankle"):
        np.testing.assert_allclose(px[0, J(n)], full[n][:2])
    assert np.allclose(conf, 0.9)
    # a missing source makes its mean joints missing (0, 0, conf 0); scores below min_score count as missing
    low = dict(full, left_hip=(1.0, 1.0, 0.02))
    px, conf = infer.to_skeleton(_named("coco17", low), "coco17", min_score=0.05)
    for n in ("pelvis", "spine", "left_hip"):
        assert conf[0, J(n)] == 0 and np.all(px[0, J(n)] == 0), n
    assert conf[0, J("right_hip")] == 0.9
    body = {n: (5.0 * k, 50.0, 0.8) for k, n in enumerate(infer.LAYOUTS["body25"])}
    px, conf = infer.to_skeleton(_named("body25", body), "body25")
    np.testing.assert_allclose(px[0, J("pelvis")], body["mid_hip"][:2])
    np.testing.assert_allclose(px[0, J("thorax")], body["neck"][:2])
    np.testing.assert_allclose(px[0, J("spine")], (np.array(body["mid_hip"][:2]) + body["neck"][:2]) / 2)
    np.testing.assert_allclose(px[0, J("right_elbow")], body["right_elbow"][:2])


def test_the_documented_table_is_the_mapping_in_the_code():
    text = (ROOT / "docs" / "inference.md").read_text()
    section = text[text.index("## Joint mapping"):text.index("## Inputs")]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and re.match(r"^\d+$", cells[0]):
            rows[int(cells[0])] = cells[1:]
    assert sorted(rows) == list(range(17))

    def words(layout, joint):
        if joint == "spine":
            return "midpoint of pelvis and thorax"
        src = infer.JOINT_SOURCES[layout][joint]
        return " + ".join(src) if len(src) == 1 else "mean of " + ", ".join(src)
    for j, (name, coco, body) in rows.items():
        assert name.replace(" ", "_").replace("/nose", "") == H36M17.joints[j], (j, name)
        assert coco.replace("`", "") == words("coco17", H36M17.joints[j]), (j, coco)
        assert body.replace("`", "") == words("body25", H36M17.joints[j]), (j, body)


# ---- readers and the person ---------------------------------------------------------------------------
def test_readers_of_every_layout(tmp_path):
    kp = np.zeros((3, 17, 3))
    kp[..., 0] = np.arange(17) * 3 + 100
    kp[..., 1] = np.arange(17)[None] + 50 + np.arange(3)[:, None]
    kp[..., 2] = 0.8
    # COCO results with file-name image ids and nested [x, y] + keypoint_scores (MMPose style)
    entries = [{"image_id": f"frame_{10 + f:06d}.jpg", "keypoints": kp[f, :, :2].tolist(),
                "keypoint_scores": kp[f, :, 2].tolist(), "track_id": 3} for f in range(3)]
    (tmp_path / "a.json").write_text(json.dumps(entries))
    det = infer.read_keypoints(tmp_path / "a.json")
    assert det.layout == "coco17" and det.frames.tolist() == [10, 11, 12] and det.image_size is None
    np.testing.assert_allclose(det.people[1][0][0], kp[1])
    assert det.people[0][0][1] == "3"
    # a COCO annotation file gives the image size; MMPose's instance_info gives frames
    (tmp_path / "b.json").write_text(json.dumps({"images": [{"id": 0, "width": 640, "height": 360}],
                                                 "annotations": [{"image_id": 0, "keypoints": kp[0].ravel().tolist()}]}))
    assert infer.read_keypoints(tmp_path / "b.json").image_size == (640, 360)
    (tmp_path / "c.json").write_text(json.dumps({"meta_info": {}, "instance_info": [
        {"frame_id": f, "instances": [{"keypoints": kp[f % 3, :, :2].tolist(), "keypoint_scores": kp[f % 3, :, 2].tolist()}]}
        for f in (1, 3)]}))
    det = infer.read_keypoints(tmp_path / "c.json")
    assert det.frames.tolist() == [1, 2, 3] and det.people[1] == []      # frame 2 has nobody
    # an OpenPose folder: BODY_25, frame numbers from the file names, two people
    op = tmp_path / "openpose"
    op.mkdir()
    for f in (0, 1, 2):
        people = [{"person_id": [-1], "pose_keypoints_2d": np.tile([f + 1.0, 2.0, 0.5], 25).tolist()}]
        if f == 1:
            people.append({"person_id": [-1], "pose_keypoints_2d": np.tile([1.0, 1.0, 0.9], 25).tolist()})
        (op / f"clip_{f:012d}_keypoints.json").write_text(json.dumps({"version": 1.3, "people": people}))
    det = infer.read_keypoints(op)
    assert det.layout == "body25" and det.name == "openpose" and det.frames.tolist() == [0, 1, 2]
    assert [len(p) for p in det.people] == [1, 2, 1]
    # a VideoPose3D custom npz, with the image size in its metadata
    np.savez_compressed(tmp_path / "data_2d_custom_myvideos.npz",
                        positions_2d={"walk.mp4": {"custom": [kp[..., :2].astype(np.float32)]},
                                      "run.mp4": {"custom": [kp[..., :2].astype(np.float32)]}},
                        metadata={"layout_name": "coco", "num_joints": 17,
                                  "video_metadata": {"walk.mp4": {"w": 1280, "h": 720}, "run.mp4": {"w": 1, "h": 1}}})
    with pytest.raises(KeypointFormatError, match=r"holds 2 videos.*--video"):
        infer.read_keypoints(tmp_path / "data_2d_custom_myvideos.npz")
    det = infer.read_keypoints(tmp_path / "data_2d_custom_myvideos.npz", video="walk.mp4")
    assert det.image_size == (1280, 720) and det.name == "walk.mp4" and len(det.frames) == 3
    np.testing.assert_allclose(det.people[2][0][0][:, :2], kp[2, :, :2])


def test_the_largest_person_or_the_chosen_track(tmp_path):
    big, small = np.zeros((17, 3)), np.zeros((17, 3))
    big[:, 0], big[:, 1], big[:, 2] = np.linspace(0, 200, 17), np.linspace(0, 400, 17), 0.9
    small[:, 0], small[:, 1], small[:, 2] = np.linspace(0, 50, 17), np.linspace(0, 80, 17), 0.9
    entries = [{"image_id": f, "keypoints": (big if f % 2 else small).ravel().tolist(), "track_id": 1}
               for f in range(4)] + [{"image_id": f, "keypoints": (small if f % 2 else big).ravel().tolist(),
                                      "track_id": 2} for f in range(4)]
    det = infer.read_coco(write_json(tmp_path / "t.json", entries))
    kp, how = infer.select_person(det)                     # equal summed areas: one track throughout
    assert how["track_id"] in ("1", "2") and how["how"].startswith("the track")
    kp, how = infer.select_person(det, track_id="1")
    assert np.allclose(kp[1], big) and np.allclose(kp[0], small)
    with pytest.raises(KeypointFormatError, match=r"t\.json: field 'track_id': no person with track id '7'"):
        infer.select_person(det, track_id="7")
    untracked = [{k: v for k, v in e.items() if k != "track_id"} for e in entries]
    kp, how = infer.select_person(infer.read_coco(write_json(tmp_path / "u.json", untracked)))
    assert all(np.allclose(k, big) for k in kp) and how["how"].startswith("per frame")


def write_json(path, obj):
    path.write_text(json.dumps(obj))
    return path


GOOD = np.tile([100.0, 200.0, 0.9], 17).tolist()


@pytest.mark.parametrize("content, pattern", [
    ([{"image_id": 0, "keypoints": GOOD}, {"image_id": 1, "keypoints": GOOD[:-6]}],
     r"bad\.json: frame 1 \(entry 1\): field 'keypoints': expected 17 or 26 or 133 keypoints, got 15"),
    ([{"image_id": 0, "keypoints": GOOD}, {"image_id": 4, "bbox": [0, 0, 1, 1]}],
     r"bad\.json: frame 4 \(entry 1\): missing field 'keypoints'"),
    ([{"keypoints": GOOD}], r"bad\.json: entry 0: missing field 'image_id'"),
    ([{"image_id": 2, "keypoints": GOOD[:4] + [float("nan")] + GOOD[5:]}],
     r"bad\.json: frame 2 \(entry 0\): field 'keypoints': keypoint 1 has a NaN/inf y"),
    ([{"image_id": 0, "keypoints": [0.0] * 51}, {"image_id": 1, "keypoints": [5.0, 5.0, 0.01] * 17}],
     r"bad\.json: no person with at least two keypoints scored >= 0.05 in any frame \(2 frames\)"),
    ([], r"bad\.json: no person entry in any frame"),
    ({"people": [{"pose_keypoints_2d": [1.0, 2.0, 0.5] * 20}]},
     r"bad\.json: frame 0, person 0: field 'pose_keypoints_2d': expected 25 keypoints, got 20"),
    ({"frames": []}, r"bad\.json: expected a JSON list of person entries"),
])
def test_bad_keypoint_files_name_the_file_frame_and_field(tmp_path, content, pattern):
    path = write_json(tmp_path / "bad.json", content)
    with pytest.raises(KeypointFormatError, match=pattern):
        det = infer.read_keypoints(path)
        infer.select_person(det, min_score=0.05)


# ---- windows, stitching and resampling (a stand-in model whose output is known) -------------------------
class Echo(nn.Module):
    """Returns each frame's own input as its "3D" (x, y, confidence): any windowing or stitching
    error, off-by-one or misaligned resampling shows as a difference from the input."""

    def __init__(self, frames, slots=("person", "speed", "action")):
        super().__init__()
        self.cfg = ModelConfig.from_dict({"frames": frames, "slots": list(slots)})
        self.skeleton = H36M17
        self.w = nn.Parameter(torch.zeros(()))
        self.seen = []

    def forward(self, x, slot_texts=None):
        self.seen.append(dict(slot_texts or {}))
        return x + 0 * self.w


@pytest.mark.parametrize("frames, T, stride", [(50, 9, None), (9, 9, None), (4, 9, None), (23, 8, 3), (31, 5, 5)])
@pytest.mark.parametrize("flip", [False, True])
def test_windows_are_stitched_back_frame_by_frame(frames, T, stride, flip):
    rng = np.random.default_rng(frames)
    px = rng.uniform(100, 900, (frames, 17, 2))
    conf = rng.uniform(0.2, 1.0, (frames, 17))
    model = Echo(T)
    out = infer.lift(model, px, conf, 1000, 800, stride=stride, flip=flip, batch_size=4, texts={"action": "walk"})
    np.testing.assert_allclose(out[..., :2], normalize_screen(px, 1000, 800), atol=1e-5)
    np.testing.assert_allclose(out[..., 2], conf, atol=1e-6)
    texts = model.seen[0]
    assert texts["action"] == ["walk"] * len(texts["action"])
    assert set(texts["speed"]) <= {"slow", "normal", "fast"} and "person" not in texts   # generic word


@pytest.mark.parametrize("fps, model_fps", [(25.0, 50.0), (60.0, 50.0), (30.0, 45.0)])
def test_frame_rate_is_resampled_to_the_model_and_back(fps, model_fps):
    frames = 40
    t = np.arange(frames)[:, None, None]
    px = 300 + 4.0 * t + np.arange(17)[None, :, None] * [3.0, 7.0]                   # linear motion
    conf = np.full((frames, 17), 0.8)
    model = Echo(9)
    out = infer.lift(model, px, conf, 1000, 1000, fps=fps, model_fps=model_fps, flip=False)
    assert out.shape == (frames, 17, 3)
    # linear motion survives linear resampling there and back (the last frames may extrapolate flat)
    inside = int(np.floor((frames - 1) * model_fps / fps) * fps / model_fps) + 1
    np.testing.assert_allclose(out[:inside, :, :2], normalize_screen(px, 1000, 1000)[:inside], atol=1e-5)
    np.testing.assert_allclose(out[inside:, :, :2], np.repeat(out[inside - 1:inside, :, :2], frames - inside, 0))
    # the model saw the sequence at its own rate: windows over floor((F - 1) * model_fps / fps) + 1 frames
    assert model.seen and all(len(s["speed"]) <= 64 for s in model.seen)


# ---- the real thing: a trained checkpoint, the CLI, make infer, notebook 05 ----------------------------
def _expected_2d(kp):
    return infer.to_skeleton(kp, "coco17", infer.InferConfig.min_score)


def test_cli_lifts_a_coco_json_made_from_synthetic_data(trained, tmp_path):
    ckpt_dir, test = trained
    kp = coco_keypoints(test, 0).round(3)                  # as written to the file
    src = write_coco_json(tmp_path / "walker.json", kp, first_frame=100)
    out = tmp_path / "out"
    rc = infer.main([str(src), "--checkpoint", str(ckpt_dir), "--out", str(out), "--width", "1000", "--height",
                     "1000", "--fps", "25", "--text", 'action="walk"', "--gif-frames", "12", "--no-progress"])
    assert rc == 0
    z = np.load(out / "walker_3d.npz")
    f = len(kp)
    assert z["pose3d"].shape == (f, 17, 3) and np.isfinite(z["pose3d"]).all() and np.all(z["pose3d"][:, 0] == 0)
    px, conf = _expected_2d(kp)
    np.testing.assert_allclose(z["kp2d"], px, atol=1e-3)          # the large person, mapped to the 17 joints
    np.testing.assert_allclose(z["conf"], conf, atol=1e-6)
    assert z["frames"].tolist() == list(range(100, 100 + f)) and float(z["fps"]) == 25.0
    assert z["joints"].tolist() == list(H36M17.joints) and z["image_size"].tolist() == [1000, 1000]
    meta = json.loads(str(z["meta"]))
    assert meta["texts"] == {"action": "walk"} and meta["resampled"] and meta["model_fps"] == 50.0
    assert meta["checkpoint"].endswith("seed0/model.pt") and meta["layout"] == "coco17"
    from PIL import Image
    with Image.open(out / "walker_3d.gif") as gif:
        assert gif.n_frames == 10 and gif.size[0] <= 480               # 40 frames, every 4th: small
    assert sorted(p.name for p in out.iterdir()) == ["walker_3d.gif", "walker_3d.npz"]


def test_bad_input_is_refused_and_nothing_is_written(trained, tmp_path, capsys):
    ckpt_dir, test = trained
    kp = coco_keypoints(test, 0)
    kp[5, 3, 0] = np.nan
    entries = [{"image_id": f, "keypoints": k.ravel().tolist()} for f, k in enumerate(kp)]
    (tmp_path / "nan.json").write_text(json.dumps(entries))           # Python's json writes NaN as NaN
    out = tmp_path / "out"
    assert infer.main([str(tmp_path / "nan.json"), "--checkpoint", str(ckpt_dir), "--out", str(out),
                       "--width", "1000", "--height", "1000"]) == 2
    err = capsys.readouterr().err
    assert "nan.json: frame 5 (entry 5): field 'keypoints': keypoint 3 has a NaN/inf x" in err
    src = write_coco_json(tmp_path / "nosize.json", coco_keypoints(test, 0))
    assert infer.main([str(src), "--checkpoint", str(ckpt_dir), "--out", str(out)]) == 2
    assert "nosize.json: the file does not give the image size; give --width and --height" in capsys.readouterr().err
    assert infer.main([str(src), "--checkpoint", str(ckpt_dir), "--out", str(out), "--width", "1000", "--height",
                       "1000", "--text", "mood=happy"]) == 2
    assert "unknown slot(s) ['mood']" in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())


def test_a_checkpoint_that_does_not_say_its_frame_rate_needs_model_fps(tmp_path, tiny_cfg):
    path = save_checkpoint(tmp_path / "m.pt", build_model({**tiny_cfg, "prompt": "none"}))
    src = write_coco_json(tmp_path / "v.json", np.tile([[100.0, 200.0, 0.9]], (12, 17, 1)) +
                          np.arange(17)[None, :, None] * [1.0, 5.0, 0.0])
    with pytest.raises(ValueError, match=r"m\.pt: the checkpoint does not say at which frame rate.*--model-fps"):
        infer.run(path, src, tmp_path / "out", infer.InferConfig(width=500, height=500, fps=30.0), log=lambda *a: None)
    summary = infer.run(path, src, tmp_path / "out", infer.InferConfig(width=500, height=500, fps=30.0, model_fps=50.0,
                                                                       gif=False, texts={"action": "run"}),
                        log=lambda *a: None)
    assert summary["gif"] is None and "this model has no prompts: --text is ignored" in summary["notes"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["v_3d.npz"]


def test_make_infer_runs_the_cli(trained, tmp_path):
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    ckpt_dir, test = trained
    src = write_coco_json(tmp_path / "clip.json", coco_keypoints(test, 0))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    res = subprocess.run(["make", "-s", "infer", f"CHECKPOINT={ckpt_dir}", f"KEYPOINTS={src}", f"OUT={tmp_path / 'o'}",
                          "ARGS=--width 1000 --height 1000 --no-flip --gif-frames 5"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (tmp_path / "o" / "clip_3d.npz").is_file() and (tmp_path / "o" / "clip_3d.gif").is_file()
    res = subprocess.run(["make", "-s", "infer"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode != 0 and "KEYPOINTS" in res.stderr


@pytest.mark.slow
def test_notebook_05_runs_with_its_parameters(trained, tmp_path):
    import papermill as pm
    ckpt_dir, test = trained
    src = write_coco_json(tmp_path / "nb.json", coco_keypoints(test, 0))
    out = tmp_path / "executed.ipynb"
    pm.execute_notebook(str(ROOT / "notebooks" / "05_inference.ipynb"), str(out), progress_bar=False,
                        kernel_name="python3", cwd=str(ROOT / "notebooks"),
                        parameters={"checkpoint": str(ckpt_dir), "keypoints": str(src), "out_dir": str(tmp_path / "nb"),
                                    "width": 1000, "height": 1000, "fps": 50.0, "texts": {"action": "walk"},
                                    "gif_frames": 5})
    assert (tmp_path / "nb" / "nb_3d.npz").is_file() and (tmp_path / "nb" / "nb_3d.gif").is_file()
