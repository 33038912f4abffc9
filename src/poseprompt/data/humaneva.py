"""HumanEva-I from VideoPose3D's npz files: the field's second classic cross-domain target.

What users of the field already have (VideoPose3D's data preparation, ``DATASETS.md``, section
HumanEva) is two files in one folder:

* ``data_3d_humaneva15.npz``, key ``positions_3d``: a pickled dict subject -> action -> (frames, 15, 3)
  float array, world coordinates in metres, 60 fps. Subjects are ``"Train/S1"`` .. ``"Train/S3"`` and
  ``"Validate/S1"`` .. ``"Validate/S3"``: the frames of each trial that the dataset assigns to its
  training and validation sets (the field tests on ``Validate``). Actions are ``"<Action> <trial>
  chunk<k>"``, e.g. ``"Walking 1 chunk0"``, ``"Jog 1 chunk2"``, ``"Box 1 chunk0"``: a trial is cut into
  chunks where the motion capture drops out.
* ``data_2d_humaneva15_<tag>.npz``, key ``positions_2d``: subject -> action -> list of 3 arrays
  (frames, 15, 2) in pixels, one per colour camera C1, C2, C3 (640 x 480); key ``metadata``: a dict
  (``layout_name``, ``num_joints``, ``keypoints_symmetry``). ``<tag>`` is ``gt`` (the ground truth
  projected through the dataset's calibration) or another 15-joint 2D file.

Joint order of the files, as written by VideoPose3D's converter (``data/tools/ConvertHumanEva.m``,
``ExtractPose15``) and consistent with its ``humaneva_skeleton`` (parents ``[-1, 0, 1, 2, 3, 1, 5, 6,
0, 8, 9, 0, 11, 12, 1]``, left ``[2, 3, 4, 8, 9, 10]``, right ``[5, 6, 7, 11, 12, 13]``): 0 pelvis
(``torsoDistal``), 1 thorax (mean of ``torsoProximal`` and ``headProximal``), 2 left shoulder,
3 left elbow, 4 left wrist, 5 right shoulder, 6 right elbow, 7 right wrist, 8 left hip, 9 left knee,
10 left ankle, 11 right hip, 12 right knee, 13 right ankle, 14 head (``headDistal``, the top of the
head).

Mapping to the canonical H36M17 layout (:data:`H36M_FROM_HUMANEVA`, a (17, 15) matrix:
``canonical = H36M_FROM_HUMANEVA @ file``): pelvis, thorax, the six arm and six leg joints one to
one; HumanEva *head* (top of the head) -> H36M *head*; H36M *spine* = midpoint of pelvis and thorax,
H36M *neck/nose* = midpoint of thorax and head. The 2D input gets all 17 (so a model trained on
the 17-joint layout sees a complete body), but **spine, neck/nose and head are not scored**
(``PoseSequences.scored_joints``): the first two do not exist in HumanEva and are stand-ins, and
the head joints are defined differently (top of the head against Human3.6M's head joint). Scored
are pelvis, thorax and the 12 limb joints; the limb metrics compare across datasets as they are.

Cameras. The npz files hold none. When the 2D file's ``metadata`` has a ``cameras`` entry it is
used: ``metadata["cameras"][person][camera]`` with ``person`` ``"S1"`` .. (or the full subject
``"Validate/S1"``) and ``camera`` ``"C1"`` .., each a dict with the extrinsics either as
``rotation`` (3 x 3, world -> camera) and ``centre`` (3,, metres), or as ``orientation``
(quaternion w, x, y, z, camera -> world) and ``translation`` (camera centre in millimetres): the
Human3.6M convention, in which VideoPose3D publishes HumanEva's extrinsics; ``intrinsics`` (fx, fy,
cx, cy) when known, else they are fitted by least squares to the 2D and the camera-frame 3D; an
optional ``image_size`` (w, h). Otherwise (the public files) each camera of each person is
**estimated from the file's own 2D-3D pairs**: a direct linear transform over every frame of every
action of that person (Train and Validate share the calibration), normalised as Hartley's, the
3 x 4 projection split into intrinsics, rotation and centre by an RQ decomposition. For projected
ground truth this recovers the calibration up to the lens distortion that the dataset's projection
applies (``meta["camera_fit"]`` keeps each fit and its RMS reprojection residual in pixels); with a
detector's 2D the fit is correspondingly noisier, so fit on ``gt`` where possible.

3D targets are the 17 canonical joints in the camera frame, root-relative at the pelvis
(``pose3d``), plus the pelvis's camera-frame position (``root3d``); 2D is the file's pixels and
``normalize_screen(u, 640, 480)``; confidence 1.

Configuration (``cfg`` dict; unknown keys are an error):

=================  ==================================================  =================================
key                default                                             meaning
=================  ==================================================  =================================
dir                ``"data/raw/humaneva"``                             folder holding the two npz files
keypoints          ``"gt"``                                            2D file tag: ``data_2d_humaneva15_<keypoints>.npz``
train_subjects     ``["Train/S1", "Train/S2", "Train/S3"]``            subjects of the ``train`` split ([] = none)
test_subjects      ``["Validate/S1", "Validate/S2", "Validate/S3"]``   subjects of the ``test`` split ([] = none)
actions            ``["Walking", "Jog", "Box"]``                       ``"*"`` or a list; an entry matches an action
                                                                       name (``"Walking 1 chunk0"``), a trial
                                                                       (``"Walking 1"``) or an action (``"Walking"``,
                                                                       also ``"Walk"``)
cameras            ``["C1", "C2", "C3"]``                              cameras to use
downsample         ``1``                                               keep every k-th frame (fps becomes 60 / k)
=================  ==================================================  =================================

The default actions are the three that the field reports on HumanEva-I (Walk, Jog, Box).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from poseprompt.config.sections import Options
from poseprompt.core.skeleton import H36M17
from poseprompt.data.camera import quaternion_to_matrix, world_to_camera
from poseprompt.data.format import DataFormatError, PoseSequences
from poseprompt.data.h36m import camera_views, check_array, check_file_options, make_sequence, view_pixels
from poseprompt.data.mpi3dhp import fit_intrinsics
from poseprompt.data.safeload import load_pickled_dict, load_pickled_dicts

FPS = 60.0
IMAGE_SIZE = (640, 480)
CAMERAS = ("C1", "C2", "C3")
JOINTS = ("pelvis", "thorax", "left_shoulder", "left_elbow", "left_wrist", "right_shoulder", "right_elbow",
          "right_wrist", "left_hip", "left_knee", "left_ankle", "right_hip", "right_knee", "right_ankle", "head")
# canonical joint -> the file joint(s) it is made of (two: their midpoint stands in)
_SOURCE_OF = {"spine": ("pelvis", "thorax"), "neck": ("thorax", "head")}
H36M_FROM_HUMANEVA = np.zeros((H36M17.num_joints, len(JOINTS)))
for _c, _name in enumerate(H36M17.joints):
    _parts = _SOURCE_OF.get(_name, (_name,))
    H36M_FROM_HUMANEVA[_c, [JOINTS.index(p) for p in _parts]] = 1.0 / len(_parts)
#: canonical joints left out of the score (stand-ins, or defined differently in HumanEva)
UNSCORED = ("spine", "neck", "head")
SCORED = np.array([j not in UNSCORED for j in H36M17.joints])

ACTION_TEXT = {"Walking": "walk", "Jog": "jog", "Box": "box", "Gestures": "gesture", "ThrowCatch": "throw and catch"}
TEXT_TO_ACTION = {v: k for k, v in ACTION_TEXT.items()}
ACTION_ALIASES = {"Walk": "Walking"}

@dataclass(frozen=True)
class HumanEvaOptions(Options):
    """``data.humaneva``: HumanEva-I in the VideoPose3D npz layout (defaults stated once)."""
    SECTION: ClassVar[str] = "data.humaneva"
    dir: str = "data/raw/humaneva"
    keypoints: str = "gt"
    train_subjects: tuple[str, ...] = ("Train/S1", "Train/S2", "Train/S3")
    test_subjects: tuple[str, ...] = ("Validate/S1", "Validate/S2", "Validate/S3")
    actions: Any = ("Walking", "Jog", "Box")          # "*" or a list of action names
    cameras: tuple[str, ...] = tuple(CAMERAS)
    downsample: int = 1


#: the defaults as a plain mapping (derived from :class:`HumanEvaOptions`)
DEFAULTS = HumanEvaOptions().to_dict()

HOW_TO_GET = ("Get HumanEva-I from its authors (http://humaneva.is.tue.mpg.de) and convert it as described in "
              "VideoPose3D's data preparation instructions "
              "(https://github.com/facebookresearch/VideoPose3D/blob/main/DATASETS.md, HumanEva): "
              "data_3d_humaneva15.npz and data_2d_humaneva15_gt.npz go into the folder set as humaneva 'dir' "
              "in params.yaml.")


def action_parts(name: str) -> tuple[str, str]:
    """``"Walking 1 chunk0"`` (or ``"Validate/S1/Walking 1 chunk0"``) -> (trial ``"Walking 1"``,
    action ``"Walking"``)."""
    base = name.split("/")[-1]
    words = base.split(" ")
    trial = " ".join(w for w in words if not w.startswith("chunk"))
    return trial, ACTION_ALIASES.get(words[0], words[0])


def action_text(name: str) -> str:
    """Readable label text for the prompt: ``"Walking 1 chunk0"`` -> ``"walk"``."""
    action = action_parts(name)[1]
    return ACTION_TEXT.get(action, action.lower())


def person_of(subject: str) -> str:
    """``"Validate/S1"`` -> ``"S1"``: the person (cameras are calibrated per person)."""
    return subject.split("/")[-1]


def to_h36m17(a: np.ndarray) -> np.ndarray:
    """(F, 15, D) HumanEva-15 joints -> (F, 17, D) canonical joints (:data:`H36M_FROM_HUMANEVA`)."""
    return np.einsum("cj,fjd->fcd", H36M_FROM_HUMANEVA, a)


# ---- configuration -----------------------------------------------------------------------------
def resolve_config(cfg: dict | None) -> dict:
    """Defaults filled in and every value checked; raises ``ValueError`` naming the bad key."""
    out = check_file_options(HumanEvaOptions.from_dict(cfg).to_dict(), "humaneva", "'gt'")
    for key in ("train_subjects", "test_subjects", "cameras"):
        v = out[key]
        if isinstance(v, str) or not all(isinstance(s, str) for s in v):
            raise ValueError(f"humaneva config: '{key}' must be a list of strings, got {v!r}")
        out[key] = list(v)
    bad = [c for c in out["cameras"] if c not in CAMERAS]
    if bad or not out["cameras"]:
        raise ValueError(f"humaneva config: 'cameras' must be a non-empty list drawn from {list(CAMERAS)}, got {bad or []}")
    return out


def _action_selected(name: str, actions) -> bool:
    if actions == "*":
        return True
    trial, action = action_parts(name)
    wanted = {ACTION_ALIASES.get(a, a) for a in actions}
    return name in wanted or trial in wanted or action in wanted


# ---- cameras -----------------------------------------------------------------------------------
def _rq(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``m = K R`` with K upper triangular (positive diagonal) and R orthogonal (3 x 3)."""
    flip = np.eye(3)[::-1]
    q, r = np.linalg.qr((flip @ m).T)
    k, rot = flip @ r.T @ flip, flip @ q.T
    signs = np.diag(np.sign(np.diag(k)))
    return k @ signs, signs @ rot


def _normaliser(points: np.ndarray) -> np.ndarray:
    """Similarity (D+1, D+1) that moves points (P, D) to their centroid and scales their mean
    distance to sqrt(D) (Hartley's normalisation)."""
    d = points.shape[1]
    centre = points.mean(0)
    scale = np.sqrt(d) / max(np.linalg.norm(points - centre, axis=1).mean(), 1e-12)
    t = np.eye(d + 1)
    t[:d, :d] *= scale
    t[:d, d] = -scale * centre
    return t


def fit_camera(uv: np.ndarray, xyz: np.ndarray) -> dict:
    """A pinhole camera from pixels (P, 2) and world points (P, 3) by the direct linear transform.

    Returns ``rotation`` (3, 3) world -> camera, ``centre`` (3,), ``intrinsics`` (fx, fy, cx, cy),
    ``skew`` (pixels; 0 for a real camera) and ``rms_px``, the RMS reprojection residual. Raises
    ``ValueError`` when the points do not determine a camera (fewer than 6, or all in one plane).
    """
    uv, xyz = np.asarray(uv, np.float64), np.asarray(xyz, np.float64)
    if len(uv) < 6:
        raise ValueError(f"fit_camera: {len(uv)} point pairs, at least 6 are needed")
    t2, t3 = _normaliser(uv), _normaliser(xyz)
    u = uv @ t2[:2, :2].T + t2[:2, 2]
    x = np.concatenate([xyz @ t3[:3, :3].T + t3[:3, 3], np.ones((len(xyz), 1))], 1)   # (P, 4)
    zero = np.zeros_like(x)
    a = np.concatenate([np.concatenate([x, zero, -u[:, :1] * x], 1),
                        np.concatenate([zero, x, -u[:, 1:] * x], 1)], 0)               # (2P, 12)
    _, sv, vt = np.linalg.svd(a, full_matrices=False)
    if sv[-2] < 1e-9 * sv[0]:
        raise ValueError("fit_camera: the points do not determine a camera (degenerate: coplanar or collinear)")
    p = np.linalg.inv(t2) @ vt[-1].reshape(3, 4) @ t3                                  # (3, 4), up to scale
    if np.linalg.det(p[:, :3]) < 0:
        p = -p                                        # points in front of the camera get positive depth
    k, rot = _rq(p[:, :3])
    centre = -np.linalg.solve(p[:, :3], p[:, 3])
    k = k / k[2, 2]
    proj = (xyz - centre) @ rot.T @ k.T
    rms = float(np.sqrt(np.mean(np.sum((proj[:, :2] / proj[:, 2:] - uv) ** 2, 1))))
    return {"rotation": rot, "centre": centre, "intrinsics": np.array([k[0, 0], k[1, 1], k[0, 2], k[1, 2]]),
            "skew": float(k[0, 1]), "rms_px": rms}


def _camera_from_metadata(entry, path2d: Path, where: str) -> dict:
    """A camera of ``metadata["cameras"]`` in the package's conventions (intrinsics may be None)."""
    if not isinstance(entry, dict):
        raise DataFormatError(f"{path2d}: metadata 'cameras', {where}: expected a dict, got {type(entry).__name__}")
    try:
        if "rotation" in entry and "centre" in entry:
            rot = np.asarray(entry["rotation"], np.float64).reshape(3, 3)
            centre = np.asarray(entry["centre"], np.float64).reshape(3)
        elif "orientation" in entry and "translation" in entry:
            rot = quaternion_to_matrix(np.asarray(entry["orientation"], np.float64).reshape(4)).T
            centre = np.asarray(entry["translation"], np.float64).reshape(3) / 1000.0
        else:
            raise KeyError("rotation + centre, or orientation + translation")
        intr = entry.get("intrinsics")
        intr = None if intr is None else np.asarray(intr, np.float64).reshape(4)
        size = tuple(int(v) for v in entry.get("image_size", IMAGE_SIZE))
    except (KeyError, ValueError, TypeError) as e:
        raise DataFormatError(f"{path2d}: metadata 'cameras', {where}: expected 'rotation' (3 x 3, world -> camera) "
                              f"and 'centre' (metres), or 'orientation' (w, x, y, z) and 'translation' (mm); "
                              f"optional 'intrinsics' [fx, fy, cx, cy] and 'image_size' [w, h] ({e})") from None
    return {"rotation": rot, "centre": centre, "intrinsics": intr, "image_size": size}


def _pairs(person: str, cam_index: int, pos3d: dict, pos2d: dict) -> tuple[np.ndarray, np.ndarray]:
    """Every (2D, world 3D) point pair of one person and camera over all subjects/actions (finite only)."""
    uv, xyz = [], []
    for subject in sorted(pos3d):
        if person_of(subject) != person or subject not in pos2d:
            continue
        for action, world in pos3d[subject].items():
            views = pos2d[subject].get(action)
            if not isinstance(views, (list, tuple)) or len(views) <= cam_index or views[cam_index] is None:
                continue
            px, w3 = np.asarray(views[cam_index], np.float64), np.asarray(world, np.float64)
            if px.ndim != 3 or w3.ndim != 3 or px.shape[1:] != (15, 2) or w3.shape[1:] != (15, 3) \
                    or len(px) < len(w3):
                continue        # malformed: left out of the fit, reported by name when the sequence is read
            n = len(w3)
            ok = np.isfinite(px[:n]).all(-1) & np.isfinite(w3).all(-1)
            uv.append(px[:n][ok])
            xyz.append(w3[ok])
    if not uv:
        return np.zeros((0, 2)), np.zeros((0, 3))
    return np.concatenate(uv), np.concatenate(xyz)


def resolve_cameras(persons, cameras, pos3d, pos2d, metadata, path2d: Path) -> tuple[dict, dict, str]:
    """``{(person, camera): camera dict}``, the fit record and a sentence saying where they came from."""
    given = (metadata or {}).get("cameras")
    out, fits = {}, {}
    for person in persons:
        for cam_id in cameras:
            ci = CAMERAS.index(cam_id)
            key = f"{person}/{cam_id}"
            if given is not None:
                per = given.get(person, next((v for k, v in given.items() if person_of(str(k)) == person), None))
                if not isinstance(per, dict) or cam_id not in per:
                    raise DataFormatError(f"{path2d}: metadata 'cameras' has no camera {cam_id} for person {person} "
                                          f"(found {sorted(given)}); expected every configured camera of every subject")
                cam = _camera_from_metadata(per[cam_id], path2d, f"person {person}, camera {cam_id}")
                if cam["intrinsics"] is None:
                    uv, xyz = _pairs(person, ci, pos3d, pos2d)
                    try:
                        cam["intrinsics"], rms = fit_intrinsics(uv[None], world_to_camera(xyz, cam["rotation"],
                                                                                          cam["centre"])[None])
                    except ValueError as e:
                        raise DataFormatError(f"{path2d}: person {person}, camera {cam_id}: cannot fit intrinsics "
                                              f"({e}); add 'intrinsics' to metadata 'cameras'") from None
                    fits[key] = {"intrinsics": cam["intrinsics"].tolist(), "rms_px": rms, "from": "metadata extrinsics, "
                                 "intrinsics fitted", "points": len(uv)}
                else:
                    fits[key] = {"intrinsics": cam["intrinsics"].tolist(), "rms_px": None, "from": "metadata"}
            else:
                uv, xyz = _pairs(person, ci, pos3d, pos2d)
                try:
                    fit = fit_camera(uv, xyz)
                except ValueError as e:
                    raise DataFormatError(f"{path2d}: person {person}, camera {cam_id}: the file has no cameras and "
                                          f"they cannot be estimated from its 2D-3D pairs ({e}); add metadata "
                                          f"'cameras' (poseprompt/data/humaneva.py)") from None
                cam = {**fit, "image_size": IMAGE_SIZE}
                fits[key] = {"intrinsics": fit["intrinsics"].tolist(), "skew": fit["skew"], "rms_px": fit["rms_px"],
                             "centre_m": fit["centre"].tolist(), "from": "DLT fit to the file's 2D-3D pairs",
                             "points": len(uv)}
            out[(person, cam_id)] = cam
    source = ("the 2D file's metadata 'cameras'" if given is not None else
              "estimated per person and camera from the 2D file's own 2D-3D pairs (direct linear transform; "
              "meta['camera_fit'])")
    return out, fits, source


# ---- the loader --------------------------------------------------------------------------------
def build_splits(cfg: dict | None, seed: int = 0) -> dict[str, PoseSequences]:
    """Read the two npz files of ``cfg['dir']`` and return ``{"train": ..., "test": ...}``.

    A split is left out when its subject list is empty. Raises ``FileNotFoundError`` (missing file,
    with where to get it), :class:`DataFormatError` (wrong keys, shapes, NaNs, missing subjects,
    actions or cameras: the message names the file, subject/action/camera and what was expected) or
    ``ValueError`` (bad configuration). Deterministic (``seed`` unused).
    """
    del seed
    cfg = resolve_config(cfg)
    folder = Path(cfg["dir"])
    path3d = folder / "data_3d_humaneva15.npz"
    path2d = folder / f"data_2d_humaneva15_{cfg['keypoints']}.npz"
    pos3d = load_pickled_dict(path3d, "positions_3d", dataset="HumanEva-I", how_to_get=HOW_TO_GET,
                              layout="a pickled dict subject -> action -> (frames, 15, 3) arrays (the VideoPose3D layout)")
    d2 = load_pickled_dicts(path2d, ("positions_2d",), optional=("metadata",), dataset="HumanEva-I",
                            how_to_get=HOW_TO_GET, layout="a pickled dict subject -> action -> list of 3 camera "
                                                          "arrays (frames, 15, 2) (the VideoPose3D layout)")
    pos2d, metadata = d2["positions_2d"], d2["metadata"]
    wanted = [("train", cfg["train_subjects"]), ("test", cfg["test_subjects"])]
    for _, subjects in wanted:
        for subject in subjects:
            for d, p, key in ((pos3d, path3d, "positions_3d"), (pos2d, path2d, "positions_2d")):
                if subject not in d:
                    raise DataFormatError(f"{p}: '{key}' has no subject {subject!r} (found {sorted(d)}); expected "
                                          f"every configured subject")
    persons = sorted({person_of(s) for _, subjects in wanted for s in subjects})
    cams, fits, cam_source = resolve_cameras(persons, cfg["cameras"], pos3d, pos2d, metadata, path2d)

    splits = {}
    for split, subjects in wanted:
        if not subjects:
            continue
        parts, skipped = [], []
        for subject in subjects:
            parts += _subject_sequences(subject, pos3d, pos2d, path3d, path2d, cfg, cams, skipped)
        if not parts:
            raise DataFormatError(f"{path3d}: no sequences for split '{split}' (subjects {subjects}, actions "
                                  f"{cfg['actions']!r}); expected at least one matching action")
        labels = sorted({str(p.action[0]) for p in parts})
        meta = {
            "source": "humaneva", "skeleton": H36M17.name, "input_2d": cfg["keypoints"], "split": split,
            "subjects": subjects, "fps": FPS / cfg["downsample"], "downsample": cfg["downsample"],
            "files": {"3d": str(path3d), "2d": str(path2d)}, "cameras": cam_source, "camera_fit": fits,
            "joint_map": "canonical = H36M_FROM_HUMANEVA @ humaneva15 (poseprompt.data.humaneva); spine and "
                         "neck/nose are midpoints",
            "unscored_joints": list(UNSCORED),
            "action_names": {t: TEXT_TO_ACTION.get(t, t) for t in labels},
            "skipped": skipped,
        }
        splits[split] = PoseSequences.concatenate(parts, meta=meta).validate(f"humaneva {split} split")
    return splits


def _subject_sequences(subject, pos3d, pos2d, path3d, path2d, cfg, cams, skipped) -> list[PoseSequences]:
    person, k = person_of(subject), cfg["downsample"]
    out = []
    for action in sorted(pos3d[subject]):
        if not _action_selected(action, cfg["actions"]):
            continue
        where = f"subject {subject}, action {action!r}"
        world = check_array(pos3d[subject][action], path3d, where, "(frames, 15, 3) in metres", (15,), 3)
        n = world.shape[0]
        views = camera_views(pos2d, subject, action, CAMERAS, path2d, path3d)
        canon_world = to_h36m17(world[::k])
        for cam_id in cfg["cameras"]:
            cwhere = f"{where}, camera {cam_id}"
            px = view_pixels(views[CAMERAS.index(cam_id)], n, len(JOINTS), path2d, path3d, cwhere, skipped,
                             f"{subject}/{action}/{cam_id}")
            if px is None:
                continue
            cam = cams[(person, cam_id)]
            xc = world_to_camera(canon_world, cam["rotation"], cam["centre"])   # (F, 17, 3) metres
            root = xc[:, H36M17.root]
            if np.any(root[:, 2] <= 0):
                f = int(np.flatnonzero(root[:, 2] <= 0)[0])
                raise DataFormatError(f"{path2d}: {cwhere}: the pelvis is behind camera {cam_id} at frame {f} "
                                      f"(z = {root[f, 2]:.2f} m); expected cameras in the conventions of "
                                      f"poseprompt/data/humaneva.py")
            w, h = cam["image_size"]
            seq = make_sequence(kp2d_px=to_h36m17(px[::k]), pose3d=xc - root[:, None], root3d=root, w=w, h=h,
                                subject=person, name=f"{subject}/{action}", action=action_text(action),
                                camera=cam_id, fps=FPS / k, intrinsics=cam["intrinsics"])
            seq.scored_joints[:] = SCORED
            out.append(seq)
    return out
