"""MPI-INF-3DHP from the npz files that the field circulates (the usual cross-dataset test).

Files (key ``data``, a pickled dict, as prepared by the P-STMO / MixSTE line of work):

* ``data_test_3dhp.npz``: ``"TS1"`` .. ``"TS6"`` -> ``{"data_2d": (F, 17, 2) px, "data_3d": (F, 17, 3)
  mm in the camera frame, "valid": (F,) flags}``; images 2048x2048 (TS1-4, studio) and 1920x1080
  (TS5-6, outdoor).
* ``data_train_3dhp.npz`` (optional): ``"S1 Seq1"`` .. -> a list holding one dict camera ->
  ``{"data_2d", "data_3d"}``; images 2048x2048; no valid flags (all frames valid).

Joint order of the files: 0 head-top, 1 neck, 2 r-shoulder, 3 r-elbow, 4 r-wrist, 5 l-shoulder,
6 l-elbow, 7 l-wrist, 8 r-hip, 9 r-knee, 10 r-ankle, 11 l-hip, 12 l-knee, 13 l-ankle, 14 pelvis,
15 spine, 16 head. Mapped to the canonical H36M17 layout by :data:`H36M_FROM_3DHP`
(``canonical[j] = file[H36M_FROM_3DHP[j]]``). The two layouts define the upper joints differently;
the common convention, used here, is 3DHP *neck* (1) -> H36M *thorax* (8), 3DHP *head* (16) ->
H36M *neck/nose* (9), 3DHP *head-top* (0) -> H36M *head* (10), 3DHP *spine* (15) -> H36M *spine* (7).
Cross-dataset numbers should therefore also be reported on the 12 limb joints.

3D: millimetres -> metres, made root-relative at the pelvis; ``root3d`` is the pelvis in the camera
frame. 2D: pixels and ``normalize_screen(u, w, h)``; confidence 1 (ground-truth projections).

Which ground truth: two circulate (``univ_annot3``, the skeleton rescaled to a universal size, the
one the field's ~16-23 mm MPJPE numbers use; ``annot3``, metric). The npz does not say, so the
``ground_truth`` key records the user's statement in ``meta``; it changes no number.

Intrinsics: the npz has none. For each sequence ``fx, cx`` and ``fy, cy`` are fitted by linear least
squares to ``u = fx X/Z + cx``, ``v = fy Y/Z + cy`` over the valid frames (the 3D is camera-frame,
so this is exact for projected ground truth with ``annot3``, and a close estimate with the rescaled
``univ_annot3``); ``meta["intrinsics_fit"]`` keeps each fit and its RMS residual in pixels. A dict
``intrinsics`` in the configuration overrides the fit per sequence.

Frame rates (not in the npz): TS1-4 25 fps, TS5-6 50 fps, training sequences 25 fps (as published
with the dataset); override with ``fps``.

Configuration (``cfg`` dict; unknown keys are an error):

=================  ==========================  ============================================================
key                default                     meaning
=================  ==========================  ============================================================
dir                ``"data/3dhp"``             folder holding the files
test_file          ``"data_test_3dhp.npz"``    test file name (in ``dir``)
train_file         ``None``                    training file name (e.g. ``"data_train_3dhp.npz"``) or None
ground_truth       ``"univ_annot3"``           ``"univ_annot3"`` or ``"annot3"``: recorded in ``meta``
sequences          ``"*"``                     test sequences to keep: ``"*"`` or a list such as ["TS1"]
fps                ``None``                    None (published rates) or one number for all sequences
intrinsics         ``"fit"``                   ``"fit"`` or a dict sequence -> [fx, fy, cx, cy] (pixels)
action_label       ``"move"``                  action text for the prompt (the npz has no activity labels)
=================  ==========================  ============================================================

Invalid frames (``valid`` false) are kept (so that windows and frame indices stay aligned with the
video) and are excluded from scoring through ``PoseSequences.valid``. NaNs in invalid frames become
missing joints (0, confidence 0); NaNs in valid frames are a :class:`DataFormatError`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from poseprompt.config.sections import Options
from poseprompt.core.skeleton import H36M17
from poseprompt.data.format import DataFormatError, PoseSequences
from poseprompt.data.h36m import make_sequence
from poseprompt.data.safeload import load_pickled_dict

# canonical H36M17 joint j <- 3DHP file joint H36M_FROM_3DHP[j]
H36M_FROM_3DHP = [14, 8, 9, 10, 11, 12, 13, 15, 1, 16, 0, 5, 6, 7, 2, 3, 4]
TEST_SEQUENCES = ("TS1", "TS2", "TS3", "TS4", "TS5", "TS6")
IMAGE_SIZE = {"TS1": (2048, 2048), "TS2": (2048, 2048), "TS3": (2048, 2048), "TS4": (2048, 2048),
              "TS5": (1920, 1080), "TS6": (1920, 1080)}
TRAIN_IMAGE_SIZE = (2048, 2048)
TEST_FPS = {"TS1": 25.0, "TS2": 25.0, "TS3": 25.0, "TS4": 25.0, "TS5": 50.0, "TS6": 50.0}
TRAIN_FPS = 25.0
GROUND_TRUTHS = ("univ_annot3", "annot3")

@dataclass(frozen=True)
class Mpi3dhpOptions(Options):
    """``data.mpi3dhp`` (the source ``3dhp``): MPI-INF-3DHP test (and training) npz files."""
    SECTION: ClassVar[str] = "data.mpi3dhp"
    dir: str = "data/raw/3dhp"
    test_file: str = "data_test_3dhp.npz"
    train_file: str | None = None
    ground_truth: str = "univ_annot3"
    sequences: Any = "*"                             # "*" or a list of sequence names
    fps: float | None = None
    intrinsics: str = "fit"
    action_label: str = "move"


#: the defaults as a plain mapping (derived from :class:`Mpi3dhpOptions`)
DEFAULTS = Mpi3dhpOptions().to_dict()

HOW_TO_GET = ("Get MPI-INF-3DHP from its authors (https://vcai.mpi-inf.mpg.de/3dhp-dataset/) and convert the "
              "test set to data_test_3dhp.npz (and optionally the training set to data_train_3dhp.npz) as in the "
              "P-STMO / MixSTE data preparation instructions; put the files into the folder set as 3dhp 'dir' "
              "in params.yaml.")


def resolve_config(cfg: dict | None) -> dict:
    out = Mpi3dhpOptions.from_dict(cfg).to_dict()
    if out["ground_truth"] not in GROUND_TRUTHS:
        raise ValueError(f"3dhp config: 'ground_truth' must be one of {GROUND_TRUTHS}, got {out['ground_truth']!r}")
    seqs = out["sequences"]
    if seqs != "*":
        if isinstance(seqs, str) or not all(s in TEST_SEQUENCES for s in seqs):
            raise ValueError(f"3dhp config: 'sequences' must be '*' or a list drawn from {TEST_SEQUENCES}, got {seqs!r}")
    fps = out["fps"]
    if fps is not None and (isinstance(fps, bool) or not isinstance(fps, (int, float)) or fps <= 0):
        raise ValueError(f"3dhp config: 'fps' must be None or a positive number, got {fps!r}")
    intr = out["intrinsics"]
    if intr != "fit" and not (isinstance(intr, dict) and all(len(v) == 4 for v in intr.values())):
        raise ValueError(f"3dhp config: 'intrinsics' must be 'fit' or a dict sequence -> [fx, fy, cx, cy], got {intr!r}")
    if not isinstance(out["action_label"], str):
        raise ValueError(f"3dhp config: 'action_label' must be a string, got {out['action_label']!r}")
    out["dir"] = str(out["dir"])
    return out


def fit_intrinsics(px: np.ndarray, cam: np.ndarray, mask: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """Least-squares ``(fx, fy, cx, cy)`` from pixels (F, N, 2) and camera-frame points (F, N, 3).

    Each image axis is an independent line fit ``u = f * X/Z + c``. ``mask`` (F,) selects frames.
    Returns the intrinsics and the RMS residual in pixels; raises ``ValueError`` when the points do not
    determine a fit (fewer than 2 usable points or no spread in X/Z).
    """
    px = np.asarray(px, np.float64)
    cam = np.asarray(cam, np.float64)
    if mask is not None:
        px, cam = px[mask], cam[mask]
    px, cam = px.reshape(-1, 2), cam.reshape(-1, 3)
    ok = np.isfinite(px).all(1) & np.isfinite(cam).all(1) & (cam[:, 2] > 1e-6)
    px, cam = px[ok], cam[ok]
    if len(px) < 2:
        raise ValueError("fit_intrinsics: fewer than 2 usable points (finite, in front of the camera)")
    params, sq = [], 0.0
    for axis in (0, 1):
        ratio = cam[:, axis] / cam[:, 2]
        if np.ptp(ratio) < 1e-9:
            raise ValueError("fit_intrinsics: the points have no spread in X/Z or Y/Z")
        a = np.stack([ratio, np.ones_like(ratio)], 1)  # (P, 2)
        (f, c), *_ = np.linalg.lstsq(a, px[:, axis], rcond=None)
        sq += float(np.sum((a @ np.array([f, c]) - px[:, axis]) ** 2))
        params.append((f, c))
    (fx, cx), (fy, cy) = params
    return np.array([fx, fy, cx, cy]), float(np.sqrt(sq / len(px)))


def _load_data_dict(path: Path) -> dict:
    # The circulated files are pickled dicts inside an npz: read through the restricted unpickler
    # (poseprompt/data/safeload.py), which builds plain data only and never runs code from the file.
    return load_pickled_dict(path, "data", dataset="MPI-INF-3DHP", how_to_get=HOW_TO_GET,
                             layout="a pickled dict of sequences")


def _sequence_arrays(entry, path: Path, where: str, need_valid: bool):
    """Checked (data_2d (F,17,2), data_3d (F,17,3), valid (F,)) of one sequence entry, float64/bool."""
    keys = ("data_2d", "data_3d") + (("valid",) if need_valid else ())
    if not isinstance(entry, dict) or any(k not in entry for k in keys):
        found = sorted(entry) if isinstance(entry, dict) else type(entry).__name__
        raise DataFormatError(f"{path}: {where}: expected a dict with keys {list(keys)}, found {found}")
    d2, d3 = np.asarray(entry["data_2d"]), np.asarray(entry["data_3d"])
    if d2.ndim != 3 or d2.shape[1:] != (17, 2) or not np.issubdtype(d2.dtype, np.number):
        raise DataFormatError(f"{path}: {where}: 'data_2d' expected a numeric array (frames, 17, 2) in pixels, "
                              f"got shape {d2.shape} and dtype {d2.dtype}")
    if d3.ndim != 3 or d3.shape[1:] != (17, 3) or not np.issubdtype(d3.dtype, np.number):
        raise DataFormatError(f"{path}: {where}: 'data_3d' expected a numeric array (frames, 17, 3) in mm, "
                              f"got shape {d3.shape} and dtype {d3.dtype}")
    f = d2.shape[0]
    if d3.shape[0] != f:
        raise DataFormatError(f"{path}: {where}: 'data_2d' has {f} frames but 'data_3d' {d3.shape[0]}; "
                              f"expected equal lengths")
    if need_valid:
        valid = np.asarray(entry["valid"])
        if valid.size != f or valid.squeeze().ndim > 1:
            raise DataFormatError(f"{path}: {where}: 'valid' expected shape ({f},), got {valid.shape}")
        valid = valid.reshape(f).astype(bool)
    else:
        valid = np.ones(f, bool)
    d2, d3 = d2.astype(np.float64), d3.astype(np.float64)
    bad = ~(np.isfinite(d2).all(-1) & np.isfinite(d3).all(-1))  # (F, 17) joints with a NaN/inf
    if np.any(bad & valid[:, None]):
        fr, j = np.argwhere(bad & valid[:, None])[0]
        raise DataFormatError(f"{path}: {where}: expected finite values in valid frames, found NaN/inf at "
                              f"frame {fr}, joint {j}")
    if (d3[valid, 14, 2] <= 0).any():
        fr = np.flatnonzero(valid)[np.flatnonzero(d3[valid, 14, 2] <= 0)[0]]
        raise DataFormatError(f"{path}: {where}: expected the pelvis (joint 14) in front of the camera (z > 0) "
                              f"in every valid frame, frame {fr} has z = {d3[fr, 14, 2]}")
    bad[bad[:, 14]] = True  # without the root a frame's root-relative pose is undefined: all joints missing
    return d2, d3, valid, bad


def _to_sequence(d2, d3, valid, bad, w, h, *, subject, name, camera, fps, intrinsics, action):
    """Map to canonical order, mm -> m, root-relative; NaN joints of invalid frames become missing."""
    d2, d3, bad = d2[:, H36M_FROM_3DHP], d3[:, H36M_FROM_3DHP], bad[:, H36M_FROM_3DHP]
    d2[bad] = 0.0
    d3[bad] = 0.0
    root = d3[:, H36M17.root] / 1000.0  # (F, 3) metres
    pose = d3 / 1000.0 - root[:, None]
    pose[bad] = 0.0
    root[bad[:, H36M17.root]] = 0.0
    conf = (~bad).astype(np.float32)
    return make_sequence(kp2d_px=d2, pose3d=pose, root3d=root, w=w, h=h, subject=subject, name=name,
                         action=action, camera=camera, fps=fps, intrinsics=intrinsics, conf=conf, valid=valid)


def _intrinsics_for(key, d2, d3, valid, bad, cfg, path, where, fits):
    if isinstance(cfg["intrinsics"], dict):
        if key not in cfg["intrinsics"]:
            raise ValueError(f"3dhp config: 'intrinsics' has no entry for {key!r}")
        vals = np.asarray(cfg["intrinsics"][key], np.float64)
        fits[key] = {"intrinsics": vals.tolist(), "rms_px": None, "from": "config"}
        return vals
    use = valid & ~bad.any(1)
    try:
        intr, rms = fit_intrinsics(d2, d3, use)
    except ValueError as e:
        raise DataFormatError(f"{path}: {where}: cannot estimate intrinsics from the 2D/3D pairs ({e}); "
                              f"set 3dhp 'intrinsics' in params.yaml") from None
    fits[key] = {"intrinsics": intr.tolist(), "rms_px": rms, "from": "least-squares fit"}
    return intr


def build_splits(cfg: dict | None, seed: int = 0) -> dict[str, PoseSequences]:
    """``{"test": ...}`` and, when ``train_file`` is set, ``"train"``. Deterministic (``seed`` unused).

    Raises ``FileNotFoundError`` (with where to get the files), :class:`DataFormatError` (wrong keys,
    shapes, NaNs in valid frames; the message names file, sequence and what was expected) or
    ``ValueError`` (bad configuration).
    """
    del seed
    cfg = resolve_config(cfg)
    folder = Path(cfg["dir"])
    base_meta = {"source": "3dhp", "skeleton": H36M17.name, "input_2d": "gt", "ground_truth": cfg["ground_truth"],
                 "joint_map": "canonical[j] = 3dhp[H36M_FROM_3DHP[j]] (poseprompt.data.mpi3dhp)"}
    splits = {}

    path = folder / cfg["test_file"]
    data = _load_data_dict(path)
    wanted = TEST_SEQUENCES if cfg["sequences"] == "*" else tuple(cfg["sequences"])
    present = [s for s in wanted if s in data]
    if cfg["sequences"] != "*" and len(present) < len(wanted):
        missing = [s for s in wanted if s not in data]
        raise DataFormatError(f"{path}: 'data' has no sequences {missing} (found {sorted(data)}); expected "
                              f"every configured sequence")
    if not present:
        raise DataFormatError(f"{path}: 'data' holds none of {list(TEST_SEQUENCES)} (found {sorted(data)})")
    parts, fits = [], {}
    for seq in present:
        where = f"sequence {seq}"
        d2, d3, valid, bad = _sequence_arrays(data[seq], path, where, need_valid=True)
        intr = _intrinsics_for(seq, d2, d3, valid, bad, cfg, path, where, fits)
        w, h = IMAGE_SIZE[seq]
        parts.append(_to_sequence(d2, d3, valid, bad, w, h, subject=seq, name=seq, camera=seq,
                                  fps=cfg["fps"] or TEST_FPS[seq], intrinsics=intr, action=cfg["action_label"]))
    splits["test"] = PoseSequences.concatenate(parts, meta={
        **base_meta, "split": "test", "file": str(path), "intrinsics_fit": fits,
        "missing_joints_in_invalid_frames": int(sum((p.conf == 0).sum() for p in parts)),
    }).validate(f"3dhp test split ({path})")

    if cfg["train_file"]:
        splits["train"] = _build_train(folder / cfg["train_file"], cfg, base_meta)
    return splits


def _build_train(path: Path, cfg: dict, base_meta: dict) -> PoseSequences:
    data = _load_data_dict(path)
    parts, fits = [], {}
    for seq in sorted(data):
        entry = data[seq]
        cams = entry[0] if isinstance(entry, (list, tuple)) and entry else entry
        if not isinstance(cams, dict):
            raise DataFormatError(f"{path}: sequence {seq!r}: expected a list holding one dict camera -> "
                                  f"{{'data_2d', 'data_3d'}}, got {type(entry).__name__}")
        subject = str(seq).split(" ")[0]
        for cam in sorted(cams, key=str):
            where = f"sequence {seq!r}, camera {cam}"
            d2, d3, valid, bad = _sequence_arrays(cams[cam], path, where, need_valid=False)
            key = f"{seq}/{cam}"
            intr = _intrinsics_for(key, d2, d3, valid, bad, cfg, path, where, fits)
            w, h = TRAIN_IMAGE_SIZE
            parts.append(_to_sequence(d2, d3, valid, bad, w, h, subject=subject, name=key, camera=str(cam),
                                      fps=cfg["fps"] or TRAIN_FPS, intrinsics=intr, action=cfg["action_label"]))
    if not parts:
        raise DataFormatError(f"{path}: 'data' holds no sequences; expected 'S1 Seq1' .. entries")
    return PoseSequences.concatenate(parts, meta={**base_meta, "split": "train", "file": str(path),
                                                  "intrinsics_fit": fits}).validate(f"3dhp train split ({path})")
