"""3D poses from the 2D keypoints of anyone's video: ``python -m poseprompt.tools.infer``.

A trained checkpoint and a keypoint file in, ``<name>_3d.npz`` and ``<name>_3d.gif`` out
(README, "Your own video"; ``make infer``; ``notebooks/05_inference.ipynb``)::

    python -m poseprompt.tools.infer video.json --checkpoint models/full --fps 30 --text action="walk"

Inputs (detected from the path, or ``--format``):

* ``coco``: a JSON list of per-frame person entries with ``keypoints`` (17 x [x, y, score], flat or
  nested, or [x, y] pairs with ``keypoint_scores``) and a frame (``image_id`` as a number or a file
  name with digits, ``frame_id``, ``frame`` or ``frame_index``), optionally a track id (``track_id``,
  ``idx``): what MMPose, Detectron2, AlphaPose and ViTPose write. Also a COCO annotation dict
  (``annotations`` + ``images``, which give the image size) and MMPose's ``instance_info`` dict.
  26 (Halpe) or 133 (COCO-WholeBody) keypoints are read as their first 17, which are COCO's.
* ``openpose``: OpenPose ``--write_json`` output, a folder of per-frame ``*_keypoints.json`` (the
  frame number is the last number in the file name) or one such file; BODY_25 (or COCO-18) in
  ``pose_keypoints_2d``, ``person_id`` as the track id.
* ``videopose3d``: a VideoPose3D custom npz (``positions_2d`` video -> {"custom": [(F, 17, 2|3)]},
  ``metadata["video_metadata"][video]`` = {"w", "h"}), read without running pickled code
  (poseprompt/data/safeload.py); ``--video`` picks one when the file holds several.

Each layout is mapped to the 17-joint skeleton by :data:`JOINT_SOURCES` (a canonical joint is the
mean of the listed source joints: pelvis = mid-hip, thorax = mid-shoulder or OpenPose's neck,
head = mid-eye, neck/nose = nose) and spine = the midpoint of pelvis and thorax. Detector scores
become the confidence channel (a mean joint takes the smallest score of its sources); a score below
``min_score`` or a joint at (0, 0) with score 0 is missing: coordinates 0, confidence 0.

Steps: one person per frame (``--track-id``, else the track, or per frame the person, with the
largest box around its confident keypoints); normalised 2D ``u / w * 2 - [1, h / w]`` with the
image size of the file or ``--width/--height``; resampled to the model's frame rate when ``--fps``
is given (the rate the checkpoint was trained at is read from its params, ``--model-fps``
otherwise); cut into windows of T frames every ``stride`` (default T // 2, shorter sequences padded
by repeating their edge frames, as in evaluation: data/windows.py), lifted (with test-time flip
averaging unless ``--no-flip``) and stitched back by a weighted mean in which each window's frames
count more towards its centre (weight ``min(i + 1, T - i)`` for slot i); resampled back to the
input's frames. Prompts: ``--text slot=words`` fills a slot for the whole video; the speed slot is
otherwise computed from the 2D motion as in training, every other slot uses its generic word.

Outputs (written atomically, together: either both files appear or neither does):

* ``<name>_3d.npz``: ``pose3d`` (F, 17, 3) camera-frame root-relative metres; ``kp2d`` (F, 17, 2) the
  2D used, pixels (0 where missing); ``conf`` (F, 17); ``frames`` (F,) the input's frame numbers;
  ``fps`` (the input's, or the model's when none was given); ``image_size``; ``joints`` (names);
  ``meta`` (JSON: checkpoint, input, layout, texts, stride, flip, resampling);
* ``<name>_3d.gif``: the 2D input beside the 3D skeleton (matplotlib's PillowWriter; at most
  ``gif_frames`` frames, evenly subsampled, at ``gif_dpi``).

Bad input raises :class:`KeypointFormatError` naming the file, the frame and the field.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from poseprompt.core.io import atomic_path
from poseprompt.core.skeleton import H36M17
from poseprompt.data.augment import predict_with_flip
from poseprompt.data.camera import normalize_screen
from poseprompt.data.format import DataFormatError
from poseprompt.data.h36m import make_sequence
from poseprompt.data.perturb import resample
from poseprompt.data.safeload import load_pickled_dicts
from poseprompt.data.windows import PoseWindows
from poseprompt.model.checkpoint import CheckpointError, model_from_payload, read_checkpoint

# ---- keypoint layouts and the joint mapping ----------------------------------------------------
LAYOUTS = {
    "coco17": ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
               "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
               "right_knee", "left_ankle", "right_ankle"),
    "body25": ("nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow",
               "left_wrist", "mid_hip", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee",
               "left_ankle", "right_eye", "left_eye", "right_ear", "left_ear", "left_big_toe", "left_small_toe",
               "left_heel", "right_big_toe", "right_small_toe", "right_heel"),
    "openpose18": ("nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow",
                   "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
                   "right_eye", "left_eye", "right_ear", "left_ear"),
}
_LIMBS = ("right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle", "left_shoulder",
          "left_elbow", "left_wrist", "right_shoulder", "right_elbow", "right_wrist")
#: layout -> canonical joint -> the source joints whose mean it is (spine: midpoint of pelvis and thorax)
JOINT_SOURCES = {
    "coco17": {"pelvis": ("left_hip", "right_hip"), "thorax": ("left_shoulder", "right_shoulder"),
               "neck": ("nose",), "head": ("left_eye", "right_eye"), **{j: (j,) for j in _LIMBS}},
    "body25": {"pelvis": ("mid_hip",), "thorax": ("neck",), "neck": ("nose",), "head": ("left_eye", "right_eye"),
               **{j: (j,) for j in _LIMBS}},
    "openpose18": {"pelvis": ("left_hip", "right_hip"), "thorax": ("neck",), "neck": ("nose",),
                   "head": ("left_eye", "right_eye"), **{j: (j,) for j in _LIMBS}},
}
DERIVED = {"spine": ("pelvis", "thorax")}
#: keypoint counts read as COCO-17 (their first 17 are COCO's): COCO, Halpe-26, COCO-WholeBody
COCO_SUPERSETS = (17, 26, 133)
FORMATS = ("auto", "coco", "openpose", "videopose3d")


class KeypointFormatError(DataFormatError):
    """A keypoint file does not hold what its format promises; the message names the file, the
    frame and the field."""


@dataclass
class Detections:
    """What a keypoint file holds: for every frame from the first to the last, the candidate people
    as (keypoints (K, 3) ``[x, y, score]`` in pixels, track id or None)."""
    path: Path
    layout: str
    frames: np.ndarray                                  # (F,) frame numbers, consecutive
    people: list[list[tuple[np.ndarray, str | None]]]
    image_size: tuple[int, int] | None = None
    name: str = ""


def to_skeleton(kp: np.ndarray, layout: str, min_score: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(F, K, 3) keypoints of ``layout`` -> pixels (F, 17, 2) and confidences (F, 17) of H36M17.

    A source joint with a score below ``min_score`` (or <= 0) is missing; a mean joint is missing
    when any of its sources is, and its confidence is the smallest of theirs."""
    names = LAYOUTS[layout]
    score = np.clip(np.nan_to_num(kp[..., 2]), 0.0, 1.0)
    ok = (score > 0) & (score >= min_score)
    f = kp.shape[0]
    px, conf = np.zeros((f, H36M17.num_joints, 2)), np.zeros((f, H36M17.num_joints))
    sources = JOINT_SOURCES[layout]
    for c, joint in enumerate(H36M17.joints):
        if joint in DERIVED:
            continue
        idx = [names.index(s) for s in sources[joint]]
        px[:, c] = kp[:, idx, :2].mean(1)
        conf[:, c] = np.where(ok[:, idx].all(1), score[:, idx].min(1), 0.0)
    for joint, (a, b) in DERIVED.items():
        c, ia, ib = (H36M17.joints.index(j) for j in (joint, a, b))
        px[:, c] = (px[:, ia] + px[:, ib]) / 2
        conf[:, c] = np.minimum(conf[:, ia], conf[:, ib])
    px[conf <= 0] = 0.0
    return px, conf


# ---- readers ------------------------------------------------------------------------------------
def _frame_number(value, path: Path, where: str, key: str) -> int:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    digits = re.findall(r"\d+", Path(str(value)).stem) if isinstance(value, str) else []
    if not digits:
        raise KeypointFormatError(f"{path}: {where}: field '{key}' = {value!r}: expected a frame number or a file "
                                  f"name with one")
    return int(digits[-1])


def _keypoint_array(value, scores, path: Path, where: str, key: str, counts: Sequence[int]) -> np.ndarray:
    """(K, 3) float ``[x, y, score]`` from a flat or nested list; K must be in ``counts``."""
    try:
        a = np.asarray(value, dtype=np.float64)
        if a.ndim == 1:
            a = a.reshape(-1, 2 if scores is not None else 3)
        if a.ndim != 2 or a.shape[1] not in (2, 3):
            raise ValueError
        if a.shape[1] == 2:
            s = np.ones(len(a)) if scores is None else np.asarray(scores, np.float64).reshape(len(a))
            a = np.concatenate([a, s[:, None]], 1)
    except (ValueError, TypeError):
        raise KeypointFormatError(f"{path}: {where}: field '{key}': expected {counts[0]} x [x, y, score] numbers "
                                  f"(flat or nested), got {_describe(value)}") from None
    if len(a) not in counts:
        raise KeypointFormatError(f"{path}: {where}: field '{key}': expected {' or '.join(map(str, counts))} "
                                  f"keypoints, got {len(a)}")
    bad = ~np.isfinite(a)
    if bad.any():
        j, c = np.argwhere(bad)[0]
        raise KeypointFormatError(f"{path}: {where}: field '{key}': keypoint {j} has a NaN/inf "
                                  f"{'xys'[c]}; expected finite numbers (a missing joint is 0, 0, 0)")
    return a


def _describe(value) -> str:
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)}"
    return type(value).__name__


def _collect(entries, path: Path, layout: str, counts, frame_keys=("image_id", "frame_id", "frame", "frame_index"),
             track_keys=("track_id", "idx"), image_size=None, name="") -> Detections:
    """Detections from (entry, default frame or None, file) triples in the COCO-style entry schema
    (``file`` is named in errors: the folder's file for OpenPose, else ``path``)."""
    per_frame: dict[int, list] = {}
    for i, (entry, default_frame, source) in enumerate(entries):
        where = f"entry {i}" if default_frame is None else \
            f"frame {default_frame}, person {len(per_frame.get(default_frame, []))}"
        if not isinstance(entry, dict):
            raise KeypointFormatError(f"{source}: {where}: expected a person entry (a dict with 'keypoints'), got "
                                      f"{type(entry).__name__}")
        if entry.get("category_id", 1) != 1:          # COCO: person only
            continue
        key = next((k for k in frame_keys if k in entry), None)
        if key is None and default_frame is None:
            raise KeypointFormatError(f"{source}: {where}: missing field 'image_id' (or {list(frame_keys[1:])}): "
                                      f"expected the frame of every entry")
        frame = default_frame if key is None else _frame_number(entry[key], source, where, key)
        if default_frame is None:
            where = f"frame {frame} ({where})"
        kp_key = next((k for k in ("keypoints", "pose_keypoints_2d", "pose_keypoints") if k in entry), None)
        if kp_key is None:
            raise KeypointFormatError(f"{source}: {where}: missing field 'keypoints' (OpenPose: 'pose_keypoints_2d'; "
                                      f"found {sorted(entry)})")
        scores = entry.get("keypoint_scores", entry.get("scores"))
        kp = _keypoint_array(entry[kp_key], scores, source, where, kp_key, counts)[:len(LAYOUTS[layout])]
        track = next((entry[k] for k in track_keys if k in entry), None)
        if isinstance(track, (list, tuple)):           # OpenPose's person_id is a list
            track = track[0] if track else None
        track = None if track is None or track == -1 else str(track)
        per_frame.setdefault(frame, []).append((kp, track))
    if not per_frame:
        raise KeypointFormatError(f"{path}: no person entry in any frame")
    first, last = min(per_frame), max(per_frame)
    frames = np.arange(first, last + 1)
    return Detections(path, layout, frames, [per_frame.get(int(f), []) for f in frames], image_size, name)


def read_coco(path: Path, data=None) -> Detections:
    """A COCO-style JSON: a list of person entries, a COCO annotation dict or MMPose's instance_info."""
    data = _read_json(path) if data is None else data
    size = None
    if isinstance(data, list):
        entries = [(e, None, path) for e in data]
    elif isinstance(data, dict) and "annotations" in data:
        images = data.get("images") or []
        sizes = {(int(im["width"]), int(im["height"])) for im in images if "width" in im and "height" in im}
        if len(sizes) > 1:
            raise KeypointFormatError(f"{path}: field 'images': the images have different sizes {sorted(sizes)}; "
                                      f"expected the frames of one video")
        size = sizes.pop() if sizes else None
        entries = [(e, None, path) for e in data["annotations"]]
    elif isinstance(data, dict) and "instance_info" in data:
        entries = []
        for i, fr in enumerate(data["instance_info"]):
            if not isinstance(fr, dict) or "instances" not in fr:
                raise KeypointFormatError(f"{path}: instance_info[{i}]: missing field 'instances'")
            frame = _frame_number(fr.get("frame_id", i), path, f"instance_info[{i}]", "frame_id")
            entries += [(e, frame, path) for e in fr["instances"]]
    else:
        keys = f" with keys {sorted(data)[:8]}" if isinstance(data, dict) else ""
        raise KeypointFormatError(f"{path}: expected a JSON list of person entries (COCO keypoint results), a COCO "
                                  f"dict with 'annotations', or MMPose's dict with 'instance_info'; got "
                                  f"{type(data).__name__}{keys}")
    return _collect(entries, path, "coco17", COCO_SUPERSETS, image_size=size, name=path.stem)


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise KeypointFormatError(f"{path}: not a readable JSON file ({e})") from None


_OPENPOSE_COUNTS = {25: "body25", 18: "openpose18"}     # keypoints per person -> layout


def read_openpose(path: Path, data=None) -> Detections:
    """OpenPose ``--write_json`` output: a folder of per-frame files, or one file."""
    files = sorted(path.glob("*.json")) if path.is_dir() else [path]
    if not files:
        raise KeypointFormatError(f"{path}: no OpenPose *.json files in this folder")
    numbers = [re.findall(r"\d+", f.stem) for f in files]
    by_name = all(numbers) and len({int(n[-1]) for n in numbers}) == len(files)
    frames = [int(n[-1]) for n in numbers] if by_name else list(range(len(files)))   # else: sorted order
    entries, counts, size = [], set(), None
    for f, frame in zip(files, frames):
        d = data if data is not None and f == path else _read_json(f)
        if not isinstance(d, dict) or not isinstance(d.get("people"), list):
            raise KeypointFormatError(f"{f}: frame {frame}: missing field 'people' (a list); expected OpenPose JSON "
                                      f"output")
        if "canvas_width" in d and "canvas_height" in d:
            size = (int(d["canvas_width"]), int(d["canvas_height"]))
        for person in d["people"]:
            kp = person.get("pose_keypoints_2d", person.get("pose_keypoints")) if isinstance(person, dict) else None
            if isinstance(kp, list) and len(kp) % 3 == 0:
                counts.add(len(kp) // 3)
            entries.append((person, frame, f))
    layout = next((_OPENPOSE_COUNTS[n] for n in sorted(counts, reverse=True) if n in _OPENPOSE_COUNTS), "body25")
    name = path.name if path.is_dir() else re.sub(r"_?\d*_keypoints$", "", path.stem) or path.stem
    return _collect(entries, path, layout, (len(LAYOUTS[layout]),), frame_keys=(), track_keys=("person_id",),
                    image_size=size, name=name)


def read_videopose3d(path: Path, video: str | None = None) -> Detections:
    """A VideoPose3D custom npz (``positions_2d`` + ``metadata``), read with the restricted unpickler."""
    d = load_pickled_dicts(path, ("positions_2d",), optional=("metadata",), dataset="keypoint",
                           layout="a pickled dict video -> {'custom': [(frames, 17, 2) array]} (VideoPose3D's "
                                  "custom layout)", how_to_get="Make it with VideoPose3D's prepare_data_2d_custom.py.")
    pos, meta = d["positions_2d"], d["metadata"] or {}
    names = sorted(pos)
    if video is None:
        if len(names) != 1:
            raise KeypointFormatError(f"{path}: field 'positions_2d' holds {len(names)} videos {names[:10]}; choose "
                                      f"one with --video")
        video = names[0]
    if video not in pos:
        raise KeypointFormatError(f"{path}: field 'positions_2d' has no video {video!r} (found {names[:10]})")
    entry = pos[video]
    if not isinstance(entry, dict) or "custom" not in entry or not entry["custom"]:
        raise KeypointFormatError(f"{path}: video {video!r}: missing field 'custom' (a list holding one "
                                  f"(frames, 17, 2) array)")
    kp = np.asarray(entry["custom"][0], dtype=np.float64)
    if kp.ndim != 3 or kp.shape[1] not in COCO_SUPERSETS or kp.shape[2] not in (2, 3):
        raise KeypointFormatError(f"{path}: video {video!r}: field 'custom': expected (frames, 17, 2) COCO "
                                  f"keypoints in pixels, got shape {kp.shape}")
    if kp.shape[2] == 2:
        kp = np.concatenate([kp, np.ones(kp.shape[:2] + (1,))], -1)
    bad = ~np.isfinite(kp)
    if bad.any():
        f, j, c = np.argwhere(bad)[0]
        raise KeypointFormatError(f"{path}: frame {f}: video {video!r}, field 'custom': keypoint {j} has a NaN/inf "
                                  f"{'xys'[c]}; expected finite numbers")
    vm = (meta.get("video_metadata") or {}).get(video) or {}
    size = (int(vm["w"]), int(vm["h"])) if "w" in vm and "h" in vm else None
    people = [[(k[:17], None)] for k in kp]
    return Detections(path, "coco17", np.arange(len(kp)), people, size, name=video)


def read_keypoints(path: str | Path, fmt: str = "auto", video: str | None = None) -> Detections:
    """The detections of a keypoint file or folder (``fmt``: one of :data:`FORMATS`)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: keypoint file not found")
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r}: expected one of {FORMATS}")
    data = _read_json(path) if path.suffix == ".json" and path.is_file() else None
    if fmt == "auto":
        if path.is_dir():
            fmt = "openpose"
        elif path.suffix == ".npz":
            fmt = "videopose3d"
        elif path.suffix == ".json":
            fmt = "openpose" if isinstance(data, dict) and "people" in data else "coco"
        else:
            raise KeypointFormatError(f"{path}: cannot tell the format from the name; expected a .json file, a "
                                      f".npz file or a folder of OpenPose .json files (or give --format)")
    if fmt == "coco":
        return read_coco(path, data)
    if fmt == "openpose":
        return read_openpose(path, data)
    return read_videopose3d(path, video)


# ---- the person -----------------------------------------------------------------------------------
def box_area(kp: np.ndarray, min_score: float) -> float:
    """Area (px^2) of the bounding box of the confident keypoints of one person (K, 3)."""
    ok = (kp[:, 2] > 0) & (kp[:, 2] >= min_score)
    if ok.sum() < 2:
        return 0.0
    span = np.ptp(kp[ok, :2], axis=0)
    return float(span[0] * span[1])


def select_person(det: Detections, track_id: str | None = None, min_score: float = 0.0) -> tuple[np.ndarray, dict]:
    """(F, K, 3) keypoints of one person and how it was chosen.

    ``track_id`` picks that track; else, when the file has track ids, the track with the largest
    summed box area; else, in every frame, the person with the largest box. A frame without the
    person is all zeros (missing)."""
    k = len(LAYOUTS[det.layout])
    out = np.zeros((len(det.frames), k, 3))
    tracks = sorted({t for people in det.people for _, t in people if t is not None})
    if track_id is not None and str(track_id) not in tracks:
        raise KeypointFormatError(f"{det.path}: field 'track_id': no person with track id {track_id!r} "
                                  f"(the file has {tracks[:20] if tracks else 'no track ids'})")
    if track_id is None and tracks:
        areas = {t: sum(box_area(kp, min_score) for people in det.people for kp, tt in people if tt == t)
                 for t in tracks}
        track_id, how = max(tracks, key=lambda t: (areas[t], t)), "the track with the largest summed box area"
    else:
        how = "track id given" if track_id is not None else "per frame, the person with the largest box"
    for f, people in enumerate(det.people):
        cands = [kp for kp, t in people if track_id is None or t == str(track_id)]
        if cands:
            out[f] = max(cands, key=lambda kp: box_area(kp, min_score))
    seen = np.array([box_area(kp, min_score) > 0 for kp in out])
    if not seen.any():
        raise KeypointFormatError(f"{det.path}: no person with at least two keypoints scored >= {min_score} in "
                                  f"any frame ({len(det.frames)} frames)")
    return out, {"track_id": track_id, "how": how, "frames_with_person": int(seen.sum())}


# ---- the model ----------------------------------------------------------------------------------
def training_fps(params: Mapping | None) -> float | None:
    """The frame rate a checkpoint was trained at, from its ``params`` (None when they do not say)."""
    from poseprompt.data import bvh, h36m, humaneva, mpi3dhp, synthetic
    from poseprompt.stages.prepare import SOURCE_SECTION
    data = dict((params or {}).get("data") or {})
    if "fps" in data:                                # recorded by training from its data
        return float(data["fps"]) if data["fps"] else None
    source = data.get("source")
    sec = dict(data.get(SOURCE_SECTION.get(source, ""), None) or {})
    if source == "synthetic":
        return float(sec.get("fps", synthetic.DEFAULTS["fps"]))
    if source in ("h36m", "humaneva"):
        return {"h36m": h36m.FPS, "humaneva": humaneva.FPS}[source] / int(sec.get("downsample", 1))
    if source == "3dhp":
        return float(sec.get("fps") or mpi3dhp.TRAIN_FPS)
    if source == "bvh":                              # None: each file kept its own rate
        v = sec.get("fps", bvh.DEFAULTS["fps"])
        return float(v) if v else None
    return None


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, or the ``model.pt`` of a model folder (``models/<variant>`` or its
    ``seed<k>`` sub-folders: the lowest seed)."""
    path = Path(path)
    if path.is_dir():
        if (path / "model.pt").is_file():
            return path / "model.pt"
        seeds = sorted(path.glob("seed*/model.pt"), key=lambda p: int(re.sub(r"\D", "", p.parent.name) or 0))
        if seeds:
            return seeds[0]
        raise FileNotFoundError(f"{path}: no model.pt in this folder or its seed*/ folders (train the variant "
                                f"first: `dvc repro train@<variant>`, or give a checkpoint file)")
    return path


def parse_texts(items: Sequence[str] | Mapping[str, str] | None) -> dict[str, str]:
    """``["action=walk", "speed=fast"]`` (or a dict) -> ``{"action": "walk", "speed": "fast"}``."""
    if isinstance(items, Mapping):
        return {str(k): str(v) for k, v in items.items()}
    out = {}
    for item in items or ():
        slot, sep, text = str(item).partition("=")
        if not sep or not slot.strip():
            raise ValueError(f"--text {item!r}: expected slot=words, e.g. action=\"walk\"")
        out[slot.strip()] = text.strip().strip("\"'")
    return out


def _batch_texts(model, user: Mapping[str, str], computed: Mapping[str, list[str]], b: int) -> dict[str, list[str]]:
    texts = {slot: [text] * b for slot, text in user.items()}
    if "speed" in model.cfg.slots and "speed" not in user:
        texts["speed"] = list(computed["speed"])    # from the 2D motion, as in training
    return texts


@torch.no_grad()
def lift(model, px: np.ndarray, conf: np.ndarray, width: float, height: float, *, fps: float | None = None,
         model_fps: float | None = None, texts: Mapping[str, str] | None = None, stride: int | None = None,
         flip: bool = True, batch_size: int = 64, window_kw: Mapping | None = None, progress: bool = False) -> np.ndarray:
    """3D poses (F, 17, 3), root-relative metres in the camera frame, of 2D keypoints ``px``
    (F, 17, 2) pixels with confidences ``conf`` (F, 17) (0 = missing) in a ``width`` x ``height`` image.

    With ``fps`` and ``model_fps`` both given and different, the sequence is resampled to the
    model's rate and the result back to the input's frames."""
    from tqdm import tqdm
    texts = dict(texts or {})
    f_in = len(px)
    clip = {"kp2d_px": np.asarray(px, np.float32), "conf": np.asarray(conf, np.float32)}
    clip.update(kp2d=normalize_screen(clip["kp2d_px"], width, height).astype(np.float32),
                pose3d=np.zeros((f_in, H36M17.num_joints, 3), np.float32), root3d=np.zeros((f_in, 3), np.float32),
                valid=np.ones(f_in, bool))
    rate = float(model_fps or fps or 50.0)
    resampled = fps is not None and model_fps is not None and abs(fps - model_fps) > 1e-6
    if resampled:
        clip = resample(clip, fps / model_fps)      # model frame i = input time i * fps / model_fps
    f = len(clip["conf"])
    # one sequence in the processed format (3D unknown: zeros), so that windows, padding and the
    # speed word are exactly those of evaluation; only the speed word is taken from its texts
    split = make_sequence(kp2d_px=clip["kp2d_px"], pose3d=clip["pose3d"], root3d=clip["root3d"], w=width, h=height,
                          subject="video", name="video", action="", camera="video", fps=rate,
                          intrinsics=[width, width, width / 2, height / 2], conf=clip["conf"])
    T = model.cfg.frames
    windows = PoseWindows(split, T, stride=stride or max(1, T // 2), mode="test", short="pad", **dict(window_kw or {}))
    device = next(model.parameters()).device
    slot_weight = torch.minimum(torch.arange(1, T + 1), torch.arange(T, 0, -1)).double()   # (T,) tent
    acc = torch.zeros(f, H36M17.num_joints, 3, dtype=torch.float64)
    wsum = torch.zeros(f, dtype=torch.float64)
    starts = windows.windows()[:, 1]
    batches = range(0, len(windows), batch_size)
    for lo in tqdm(batches, desc="lifting", unit="batch", disable=not progress, file=sys.stderr):
        idx = np.arange(lo, min(lo + batch_size, len(windows)))
        b = windows.gather(idx)
        x = b["x"].to(device)
        bt = _batch_texts(model, texts, b["texts"], len(idx))
        y = (predict_with_flip(model, x, bt, model.skeleton) if flip else model(x, slot_texts=bt)).double().cpu()
        local = torch.as_tensor(starts[idx])[:, None] + torch.arange(T)[None]                 # (B, T)
        real = (local >= 0) & (local < f)
        w = slot_weight[None].expand_as(local)[real]
        acc.index_add_(0, local[real], y[real] * w[:, None, None])
        wsum.index_add_(0, local[real], w)
    pose = (acc / wsum[:, None, None]).float().numpy()
    if resampled:                                   # back to the input's frames
        back = resample({"kp2d": pose[..., :2], "kp2d_px": pose[..., :2], "conf": np.ones(pose.shape[:2], np.float32),
                         "pose3d": pose, "root3d": pose[:, 0], "valid": np.ones(f, bool)}, model_fps / fps)["pose3d"]
        pose = np.concatenate([back, np.repeat(back[-1:], max(0, f_in - len(back)), 0)])[:f_in]
    return pose


# ---- the run ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class InferConfig:
    """Settings of one inference run (the CLI flags, the notebook's parameters)."""
    format: str = "auto"                 # auto | coco | openpose | videopose3d
    width: int | None = None             # image size in pixels (when the file does not say)
    height: int | None = None
    fps: float | None = None             # the video's frame rate (None: taken to be the model's)
    model_fps: float | None = None       # the model's (None: from the checkpoint's params)
    texts: Mapping[str, str] = field(default_factory=dict)   # slot -> words, e.g. {"action": "walk"}
    track_id: str | None = None
    video: str | None = None             # which video of a VideoPose3D npz
    min_score: float = 0.05              # keypoints scored lower are missing
    stride: int | None = None            # window stride (None: T // 2)
    batch_size: int = 64
    flip: bool = True                    # test-time flip averaging
    gif: bool = True
    gif_frames: int = 80                 # at most this many frames in the GIF (evenly subsampled)
    gif_dpi: int = 80                    # 6 x 3 inches: 480 x 240 pixels
    device: str = "auto"                 # auto | cpu | cuda
    progress: bool | None = None         # None: when stderr is a terminal

    def __post_init__(self):
        if self.format not in FORMATS:
            raise ValueError(f"format {self.format!r}: expected one of {FORMATS}")
        for key in ("width", "height", "fps", "model_fps"):
            v = getattr(self, key)
            if v is not None and not float(v) > 0:
                raise ValueError(f"{key} must be a positive number, got {v!r}")
        if (self.width is None) != (self.height is None):
            raise ValueError("give both width and height, or neither")
        if not 0.0 <= self.min_score <= 1.0:
            raise ValueError(f"min_score must be in [0, 1], got {self.min_score!r}")
        if self.stride is not None and self.stride < 1 or self.batch_size < 1 or self.gif_frames < 1:
            raise ValueError("stride, batch_size and gif_frames must be >= 1")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device {self.device!r}: expected auto, cpu or cuda")


def run(checkpoint: str | Path, keypoints: str | Path, out_dir: str | Path, cfg: InferConfig | None = None,
        log=print) -> dict[str, Any]:
    """Lift a keypoint file with a checkpoint; write ``<name>_3d.npz`` (and ``.gif``) into ``out_dir``.

    Returns a summary: the output paths, frames, fps, how the person was chosen, the texts and the
    seconds spent lifting."""
    import time
    cfg = cfg or InferConfig()
    ckpt = resolve_checkpoint(checkpoint)
    device = "cuda" if cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available()) else "cpu"
    payload = read_checkpoint(ckpt, map_location=device)
    model = model_from_payload(payload, str(ckpt), device)
    texts = parse_texts(cfg.texts)
    unknown = sorted(set(texts) - set(model.cfg.slots))
    if unknown:
        raise ValueError(f"--text: unknown slot(s) {unknown}; this model's slots are {list(model.cfg.slots)}")
    notes = []
    if texts and not model.cfg.uses_text:
        notes.append("this model has no prompts: --text is ignored")
    if "action" in texts and model.cfg.action_text == "generic":
        notes.append("this model uses the generic action word: --text action is ignored")
    params = payload.get("params") or {}
    model_fps = cfg.model_fps or training_fps(params)
    if cfg.fps is not None and model_fps is None:
        raise ValueError(f"{ckpt}: the checkpoint does not say at which frame rate it was trained; give --model-fps "
                         f"(or leave out --fps to lift the frames as they are)")

    det = read_keypoints(keypoints, cfg.format, cfg.video)
    size = (cfg.width, cfg.height) if cfg.width is not None else det.image_size
    if size is None:
        raise KeypointFormatError(f"{det.path}: the file does not give the image size; give --width and --height "
                                  f"(pixels of the video frames)")
    kp, chosen = select_person(det, cfg.track_id, cfg.min_score)
    px, conf = to_skeleton(kp, det.layout, cfg.min_score)
    progress = sys.stderr.isatty() if cfg.progress is None else cfg.progress
    window_kw = {k: (tuple(v) if isinstance(v, list) else v)
                 for k, v in ((params.get("data") or {}).get("windows") or {}).items()
                 if k in ("speed_thresholds", "speed_words", "speed_lag_s")}
    t0 = time.perf_counter()
    pose = lift(model, px, conf, size[0], size[1], fps=cfg.fps, model_fps=model_fps, texts=texts, stride=cfg.stride,
                flip=cfg.flip, batch_size=cfg.batch_size, window_kw=window_kw, progress=progress)
    seconds = time.perf_counter() - t0
    fps = float(cfg.fps or model_fps or np.nan)

    out_dir = Path(out_dir)
    name = re.sub(r"[^\w.-]+", "_", det.name or Path(keypoints).stem) or "video"
    npz_path, gif_path = out_dir / f"{name}_3d.npz", out_dir / f"{name}_3d.gif"
    meta = {"checkpoint": str(ckpt), "input": str(det.path), "format": cfg.format, "layout": det.layout,
            "person": chosen, "texts": texts, "model_fps": model_fps, "resampled": bool(
                cfg.fps and model_fps and abs(cfg.fps - model_fps) > 1e-6), "frames_per_window": model.cfg.frames,
            "stride": cfg.stride or max(1, model.cfg.frames // 2), "flip": cfg.flip, "min_score": cfg.min_score,
            "joint_sources": JOINT_SOURCES[det.layout], "notes": notes}
    with contextlib.ExitStack() as stack:           # both files appear together, or neither
        tmp_npz = stack.enter_context(atomic_path(npz_path, suffix=".npz"))
        tmp_gif = stack.enter_context(atomic_path(gif_path, suffix=".gif")) if cfg.gif else None
        np.savez_compressed(tmp_npz, pose3d=pose.astype(np.float32), kp2d=px.astype(np.float32),
                            conf=conf.astype(np.float32), frames=det.frames.astype(np.int64), fps=np.float32(fps),
                            image_size=np.array(size, np.int32), joints=np.array(H36M17.joints),
                            meta=np.array(json.dumps(meta)))
        if tmp_gif is not None:
            render_gif(tmp_gif, px, conf, pose, det.frames, size, fps, title=_title(texts), max_frames=cfg.gif_frames,
                       dpi=cfg.gif_dpi, progress=progress)
    for note in notes:
        log(f"note: {note}")
    summary = {"npz": str(npz_path), "gif": str(gif_path) if cfg.gif else None, "frames": len(pose), "fps": fps,
               "model_fps": model_fps, "person": chosen, "texts": texts, "seconds": seconds, "device": device,
               "checkpoint": str(ckpt), "notes": notes, "config": asdict(cfg)}
    log(f"{len(pose)} frames lifted in {seconds:.2f} s ({1000 * seconds / max(1, len(pose)):.2f} s per 1000 frames) "
        f"-> {npz_path}{' and ' + str(gif_path) if cfg.gif else ''}")
    return summary


def _title(texts: Mapping[str, str]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in texts.items()) or "generic prompt words"


# ---- the GIF -------------------------------------------------------------------------------------
def render_gif(path: str | Path, px: np.ndarray, conf: np.ndarray, pose3d: np.ndarray, frames: np.ndarray,
               image_size: tuple[int, int], fps: float, title: str = "", max_frames: int = 80, dpi: int = 80,
               progress: bool = False, skeleton=H36M17) -> Path:
    """An animated GIF: the 2D input (left, image coordinates, missing joints not drawn) beside the
    3D skeleton (right, upright: camera x, z, -y), bones coloured by side as in the paper figures.

    At most ``max_frames`` frames, evenly subsampled; played at the input's rate divided by the
    subsampling step. The artists are made once and moved frame by frame, each frame drawn once;
    written by matplotlib's PillowWriter (Pillow comes with matplotlib)."""
    from matplotlib.animation import PillowWriter
    from tqdm import tqdm

    from poseprompt.plots.skeleton import bone_side
    from poseprompt.plots.style import GREY, SIDE_COLOURS, plt

    step = max(1, int(np.ceil(len(px) / max_frames)))
    show = np.arange(0, len(px), step)
    vis = conf > 0
    pts = px[vis] if vis.any() else np.array([[0.0, 0.0], image_size], np.float64)
    lo, hi = pts.min(0), pts.max(0)
    pad = 0.08 * max(hi - lo) + 10
    up = np.stack([pose3d[..., 0], pose3d[..., 2], -pose3d[..., 1]], -1)       # (F, N, 3) plotted upright
    r = float(np.clip(np.abs(up).max(), 0.5, 1.2))

    fig = plt.figure(figsize=(6.0, 3.0), dpi=dpi)
    ax2 = fig.add_subplot(1, 2, 1)
    ax3 = fig.add_subplot(1, 2, 2, projection="3d")
    fig.suptitle(title, fontsize=8)
    ax2.set_xlim(lo[0] - pad, hi[0] + pad)
    ax2.set_ylim(hi[1] + pad, lo[1] - pad)                                      # image y points down
    ax2.set_aspect("equal")
    ax2.set_xticks([])
    ax2.set_yticks([])
    caption = ax2.set_title("", fontsize=7)
    # 3D: no panes, grid or ticks (drawing them costs most of a frame); grey axes through the root
    # (camera x to the right, depth into the page, up), 0.5 m long
    ax3.set_axis_off()
    ax3.set_xlim(-r, r)
    ax3.set_ylim(-r, r)
    ax3.set_zlim(-r, r)
    ax3.set_box_aspect((1, 1, 1))
    ax3.view_init(elev=10, azim=-70)
    for d in np.eye(3) * 0.5:
        ax3.plot([0, d[0]], [0, d[1]], [0, d[2]], color=GREY, lw=0.8)
    ax3.set_title("3D, root-relative (axes 0.5 m)", fontsize=7)
    colours = [SIDE_COLOURS[bone_side(skeleton, c)] for _, c in skeleton.bones]
    lines2 = [ax2.plot([], [], color=col, lw=2.0, solid_capstyle="round")[0] for col in colours]
    lines3 = [ax3.plot([], [], [], color=col, lw=2.0)[0] for col in colours]

    rate = fps / step if np.isfinite(fps) and fps > 0 else 10.0
    writer = PillowWriter(fps=max(1.0, min(rate, 50.0)))
    try:
        with writer.saving(fig, str(path), dpi):
            for i in tqdm(show, desc="GIF", unit="frame", disable=not progress, file=sys.stderr):
                for (a, b), l2, l3 in zip(skeleton.bones, lines2, lines3):
                    l2.set_data(px[i, [a, b], 0], px[i, [a, b], 1])
                    l2.set_visible(bool(vis[i, a] and vis[i, b]))
                    l3.set_data_3d(up[i, [a, b], 0], up[i, [a, b], 1], up[i, [a, b], 2])
                caption.set_text(f"2D input, frame {int(frames[i])}")
                writer.grab_frame()
    finally:
        plt.close(fig)
    return Path(path)


# ---- command line -------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m poseprompt.tools.infer", description=(
        "3D human poses from the 2D keypoints of a video (COCO-17 JSON, OpenPose BODY_25 JSON, VideoPose3D "
        "custom npz) with a trained poseprompt checkpoint. Writes <name>_3d.npz and <name>_3d.gif."))
    p.add_argument("keypoints", help="keypoint file (.json, .npz) or folder of OpenPose .json files")
    p.add_argument("--checkpoint", default="models/full",
                   help="checkpoint file, or a model folder (its model.pt or seed*/model.pt); default models/full")
    p.add_argument("--out", default="reports/infer", help="output folder (default reports/infer)")
    p.add_argument("--format", default="auto", choices=FORMATS)
    p.add_argument("--width", type=int, help="image width in pixels (when the file does not give it)")
    p.add_argument("--height", type=int, help="image height in pixels")
    p.add_argument("--fps", type=float, help="frame rate of the video: the sequence is resampled to the model's")
    p.add_argument("--model-fps", type=float, help="frame rate the model was trained at (default: from the checkpoint)")
    p.add_argument("--text", action="append", default=[], metavar="SLOT=WORDS",
                   help='prompt text of a slot for the whole video, e.g. --text action="walk" (repeatable)')
    p.add_argument("--track-id", help="the person to lift (default: the largest)")
    p.add_argument("--video", help="which video of a VideoPose3D npz holding several")
    p.add_argument("--min-score", type=float, default=InferConfig.min_score,
                   help=f"keypoints scored lower are missing (default {InferConfig.min_score})")
    p.add_argument("--stride", type=int, help="window stride in frames (default T // 2)")
    p.add_argument("--batch-size", type=int, default=InferConfig.batch_size)
    p.add_argument("--no-flip", action="store_true", help="no test-time flip averaging (twice as fast)")
    p.add_argument("--no-gif", action="store_true", help="write only the npz")
    p.add_argument("--gif-frames", type=int, default=InferConfig.gif_frames)
    p.add_argument("--gif-dpi", type=int, default=InferConfig.gif_dpi)
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    prog = p.add_mutually_exclusive_group()
    prog.add_argument("--progress", dest="progress", action="store_true", default=None, help="always show progress")
    prog.add_argument("--no-progress", dest="progress", action="store_false")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        cfg = InferConfig(format=args.format, width=args.width, height=args.height, fps=args.fps,
                          model_fps=args.model_fps, texts=parse_texts(args.text), track_id=args.track_id,
                          video=args.video, min_score=args.min_score, stride=args.stride, batch_size=args.batch_size,
                          flip=not args.no_flip, gif=not args.no_gif, gif_frames=args.gif_frames, gif_dpi=args.gif_dpi,
                          device=args.device, progress=args.progress)
        run(args.checkpoint, args.keypoints, args.out, cfg)
    except (DataFormatError, CheckpointError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
