"""Human3.6M from the VideoPose3D npz files, with the public camera calibration shipped in the package.

What users of the field already have (VideoPose3D's data preparation instructions,
``https://github.com/facebookresearch/VideoPose3D/blob/main/DATASETS.md``) is two files in one folder:

* ``data_3d_h36m.npz``, key ``positions_3d``: a pickled dict subject -> action -> (frames, 32, 3)
  float array, world coordinates in metres (z up), 50 fps;
* ``data_2d_h36m_<tag>.npz``, key ``positions_2d``: a pickled dict subject -> action -> list of 4
  arrays (frames, 17, 2) in pixels, one per camera in the order of ``camera_order`` of
  ``assets/h36m_cameras.json`` (54138969, 55011271, 58860488, 60457274). ``<tag>`` is e.g.
  ``cpn_ft_h36m_dbb`` (CPN detections), ``sh_ft_h36m`` (stacked hourglass) or ``gt`` (projected
  ground truth). Detections can be a few frames longer than the mocap: they are trimmed.

Neither file holds cameras. The public calibration (4 intrinsics, per-subject extrinsics) is read
from ``poseprompt/assets/h36m_cameras.json``, whose convention is the dataset's: the quaternion
``q`` (w, x, y, z) rotates camera to world and ``t`` is the camera centre in world millimetres, so
``Xc = R(q)^T (X - t)``; in :mod:`poseprompt.data.camera` terms the world -> camera rotation is
``R(q)^T`` and the centre ``t / 1000`` metres. The tests check the convention numerically (people at
the world origin are 4-6 m in front of every camera, upright and inside the image).

Output: one sequence per (subject, action, camera). 3D targets are the 17 kept joints moved into the
camera frame and made root-relative (``pose3d``), plus the root's camera-frame position
(``root3d``); 2D is the file's pixels (``kp2d_px``) and ``normalize_screen(u, w, h)`` (``kp2d``);
confidence is 1 (the files carry no scores; distortion is ignored as by the field's lifters).
The ``action`` field is readable text for the prompt (``"WalkDog 1"`` -> ``"walk dog"``); the
evaluation action is recoverable from ``name`` = ``"<subject>/<action name>"`` with
:func:`evaluation_action`, and ``meta["action_names"]`` maps each label text to its H36M action.

Configuration (``cfg`` dict; unknown keys are an error):

=================  =====================================  =================================================
key                default                                meaning
=================  =====================================  =================================================
dir                ``"data/h36m"``                        folder holding the two npz files
keypoints          ``"cpn_ft_h36m_dbb"``                  2D file tag: ``data_2d_h36m_<keypoints>.npz``
train_subjects     ``["S1", "S5", "S6", "S7", "S8"]``     subjects of the ``train`` split ([] = no split)
test_subjects      ``["S9", "S11"]``                      subjects of the ``test`` split ([] = no split)
actions            ``"*"``                                ``"*"`` or a list; an entry matches an action name
                                                          exactly (``"Walking 1"``) or by its evaluation
                                                          action (``"Walking"``, ``"Photo"``)
downsample         ``1``                                  keep every k-th frame (fps becomes 50 / k)
=================  =====================================  =================================================

``seed`` is accepted for the common ``build_splits(cfg, seed)`` interface; nothing here is random.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from poseprompt.config.sections import Options
from poseprompt.core.skeleton import H36M17
from poseprompt.data.camera import normalize_screen, quaternion_to_matrix, world_to_camera
from poseprompt.data.format import DataFormatError, PoseSequences
from poseprompt.data.safeload import load_pickled_dict

FPS = 50.0
# The 17 of the 32 mocap joints that make the canonical H36M17 layout (VideoPose3D's selection).
KEEP_JOINTS = [0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27]

@dataclass(frozen=True)
class H36mOptions(Options):
    """``data.h36m``: Human3.6M in the VideoPose3D npz layout (defaults stated once)."""
    SECTION: ClassVar[str] = "data.h36m"
    dir: str = "data/raw/h36m"
    keypoints: str = "cpn_ft_h36m_dbb"
    train_subjects: tuple[str, ...] = ("S1", "S5", "S6", "S7", "S8")
    test_subjects: tuple[str, ...] = ("S9", "S11")
    actions: Any = "*"                               # "*" or a list of action names
    downsample: int = 1


#: the defaults as a plain mapping (derived from :class:`H36mOptions`)
DEFAULTS = H36mOptions().to_dict()

# Evaluation action (name.split(' ')[0], aliases merged) -> readable label text for the prompt.
ACTION_TEXT = {
    "Directions": "give directions",
    "Discussion": "discuss",
    "Eating": "eat",
    "Greeting": "greet",
    "Phoning": "talk on the phone",
    "Photo": "take photo",
    "Posing": "pose",
    "Purchases": "purchase",
    "Sitting": "sit",
    "SittingDown": "sit down",
    "Smoking": "smoke",
    "Waiting": "wait",
    "WalkDog": "walk dog",
    "Walking": "walk",
    "WalkTogether": "walk together",
}
TEXT_TO_ACTION = {v: k for k, v in ACTION_TEXT.items()}
# S1 (and a few other files) spell three actions differently.
ACTION_ALIASES = {"TakingPhoto": "Photo", "WalkingDog": "WalkDog", "WalkingTogether": "WalkTogether"}

HOW_TO_GET = ("Get the Human3.6M files as described in VideoPose3D's data preparation instructions "
              "(https://github.com/facebookresearch/VideoPose3D/blob/main/DATASETS.md): "
              "data_3d_h36m.npz and data_2d_h36m_<keypoints>.npz (e.g. data_2d_h36m_cpn_ft_h36m_dbb.npz, "
              "data_2d_h36m_gt.npz) go into the folder set as h36m 'dir' in params.yaml.")


def evaluation_action(action_name: str) -> str:
    """The evaluation action (one of the 15) of a Human3.6M action name or of a sequence ``name``
    ``"S9/Walking 1"``: ``"Walking"``. Sub-actions (``"Walking 1"``) merge, aliases (``"TakingPhoto"``)
    map to the usual spelling (``"Photo"``)."""
    base = action_name.split("/")[-1].split(" ")[0]
    return ACTION_ALIASES.get(base, base)


def action_text(action_name: str) -> str:
    """Readable label text of an action name: ``"SittingDown 2"`` -> ``"sit down"``. Names outside
    the 15 actions get their CamelCase split into lower-case words."""
    base = evaluation_action(action_name)
    if base in ACTION_TEXT:
        return ACTION_TEXT[base]
    words, cur = [], ""
    for ch in base:
        if ch.isupper() and cur:
            words.append(cur)
            cur = ""
        cur += ch.lower()
    return " ".join(words + [cur]) if cur else base.lower()


# ---- cameras -----------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def load_cameras() -> dict:
    """The shipped calibration (``assets/h36m_cameras.json``) as a dict (see its ``convention``)."""
    text = resources.files("poseprompt").joinpath("assets/h36m_cameras.json").read_text(encoding="utf-8")
    return json.loads(text)


def camera_parameters(subject: str, camera_id: str) -> dict:
    """One calibrated camera in the package's conventions.

    Returns ``rotation`` (3, 3) world -> camera, ``centre`` (3,) metres, ``intrinsics``
    (fx, fy, cx, cy) pixels and ``image_size`` (w, h).
    """
    cams = load_cameras()
    if subject not in cams["extrinsics"]:
        raise ValueError(f"h36m: no camera extrinsics for subject {subject!r} in assets/h36m_cameras.json; "
                         f"calibrated subjects: {sorted(cams['extrinsics'])}")
    ext = cams["extrinsics"][subject][camera_id]
    intr = cams["intrinsics"][camera_id]
    r_cam_to_world = quaternion_to_matrix(np.asarray(ext["orientation"], dtype=np.float64))
    return {
        "rotation": r_cam_to_world.T,  # world -> camera
        "centre": np.asarray(ext["translation"], dtype=np.float64) / 1000.0,
        "intrinsics": np.array(intr["focal_length"] + intr["center"], dtype=np.float64),
        "image_size": (int(intr["res_w"]), int(intr["res_h"])),
    }


# ---- configuration -----------------------------------------------------------------------------
def resolve_config(cfg: dict | None) -> dict:
    """Defaults filled in and every value checked; raises ``ValueError`` naming the bad key."""
    out = check_file_options(H36mOptions.from_dict(cfg).to_dict(), "h36m", "'cpn_ft_h36m_dbb' or 'gt'")
    known_subjects = sorted(load_cameras()["extrinsics"])
    for key in ("train_subjects", "test_subjects"):
        subs = out[key]
        if isinstance(subs, str) or not all(isinstance(s, str) for s in subs):
            raise ValueError(f"h36m config: '{key}' must be a list of subject ids such as ['S9', 'S11'], got {subs!r}")
        bad = [s for s in subs if s not in known_subjects]
        if bad:
            raise ValueError(f"h36m config: '{key}' has subjects {bad} without published camera "
                             f"extrinsics; calibrated subjects: {known_subjects}")
        out[key] = list(subs)
    return out


def check_file_options(out: dict, source: str, example_tags: str) -> dict:
    """The options that the VideoPose3D-layout sources share (Human3.6M, HumanEva-I), checked:
    ``keypoints`` (a 2D file tag such as ``example_tags``), ``actions`` ("*" or a list),
    ``downsample`` (an integer >= 1) and ``dir`` (made a str). Returns ``out``."""
    if not isinstance(out["keypoints"], str) or not out["keypoints"] or "/" in out["keypoints"]:
        raise ValueError(f"{source} config: 'keypoints' must be a file tag such as {example_tags}, "
                         f"got {out['keypoints']!r}")
    acts = out["actions"]
    if acts != "*" and (isinstance(acts, str) or not all(isinstance(a, str) for a in acts)):
        raise ValueError(f"{source} config: 'actions' must be '*' or a list of action names, got {acts!r}")
    ds = out["downsample"]
    if isinstance(ds, bool) or not isinstance(ds, (int, np.integer)) or ds < 1:
        raise ValueError(f"{source} config: 'downsample' must be an integer >= 1, got {ds!r}")
    out["dir"] = str(out["dir"])
    return out


def _action_selected(name: str, actions) -> bool:
    return actions == "*" or name in actions or evaluation_action(name) in actions


# ---- raw files ---------------------------------------------------------------------------------
def _load_pickled_dict(path: Path, key: str) -> dict:
    # The public files are pickled dicts inside an npz: read through the restricted unpickler
    # (poseprompt/data/safeload.py), which builds plain data only and never runs code from the file.
    return load_pickled_dict(path, key, dataset="Human3.6M", how_to_get=HOW_TO_GET,
                             layout="a pickled dict subject -> action -> arrays (the VideoPose3D layout)")


def check_array(arr, path: Path, where: str, shape_desc: str, joints: tuple[int, ...], dims: int) -> np.ndarray:
    """``arr`` must be (frames, J, dims) with J in ``joints`` and finite; returns float64."""
    a = np.asarray(arr)
    if a.ndim != 3 or a.shape[1] not in joints or a.shape[2] != dims or not np.issubdtype(a.dtype, np.number):
        raise DataFormatError(f"{path}: {where}: expected a numeric array {shape_desc}, "
                              f"got shape {a.shape} and dtype {a.dtype}")
    a = a.astype(np.float64)
    if not np.all(np.isfinite(a)):
        f, j = np.argwhere(~np.isfinite(a))[0][:2]
        raise DataFormatError(f"{path}: {where}: expected finite values, found NaN/inf at frame {f}, joint {j}")
    return a


# ---- the loader --------------------------------------------------------------------------------
def build_splits(cfg: dict | None, seed: int = 0) -> dict[str, PoseSequences]:
    """Read the two npz files of ``cfg['dir']`` and return ``{"train": ..., "test": ...}``.

    A split is left out when its subject list is empty. Raises ``FileNotFoundError`` (missing file,
    with where to get it), :class:`DataFormatError` (wrong keys, shapes, NaNs, missing subjects or
    actions: the message names the file, subject/action and what was expected) or ``ValueError``
    (bad configuration).
    """
    del seed  # deterministic: nothing to draw
    cfg = resolve_config(cfg)
    folder = Path(cfg["dir"])
    path3d = folder / "data_3d_h36m.npz"
    path2d = folder / f"data_2d_h36m_{cfg['keypoints']}.npz"
    pos3d = _load_pickled_dict(path3d, "positions_3d")
    pos2d = _load_pickled_dict(path2d, "positions_2d")

    splits = {}
    for split, subjects in (("train", cfg["train_subjects"]), ("test", cfg["test_subjects"])):
        if not subjects:
            continue
        parts, skipped = [], []
        for subject in subjects:
            parts += _subject_sequences(subject, pos3d, pos2d, path3d, path2d, cfg, skipped)
        if not parts:
            raise DataFormatError(f"{path3d}: no sequences for split '{split}' (subjects {subjects}, "
                                  f"actions {cfg['actions']!r}); expected at least one matching action")
        labels = sorted({p.action[0] for p in parts})
        meta = {
            "source": "h36m",
            "skeleton": H36M17.name,
            "input_2d": cfg["keypoints"],
            "split": split,
            "subjects": subjects,
            "fps": FPS / cfg["downsample"],
            "downsample": cfg["downsample"],
            "files": {"3d": str(path3d), "2d": str(path2d)},
            "cameras": "public Human3.6M calibration (poseprompt/assets/h36m_cameras.json)",
            "action_names": {t: TEXT_TO_ACTION.get(t, t) for t in labels},
            "skipped": skipped,
        }
        splits[split] = PoseSequences.concatenate(parts, meta=meta).validate(f"h36m {split} split")
    return splits


def _subject_sequences(subject, pos3d, pos2d, path3d, path2d, cfg, skipped) -> list[PoseSequences]:
    if subject not in pos3d:
        raise DataFormatError(f"{path3d}: 'positions_3d' has no subject {subject!r} (found {sorted(pos3d)}); "
                              f"expected every configured subject")
    if subject not in pos2d:
        raise DataFormatError(f"{path2d}: 'positions_2d' has no subject {subject!r} (found {sorted(pos2d)}); "
                              f"expected every configured subject")
    camera_order = load_cameras()["camera_order"]
    cams = [camera_parameters(subject, c) for c in camera_order]
    k = cfg["downsample"]
    out = []
    for action in sorted(pos3d[subject]):
        if not _action_selected(action, cfg["actions"]):
            continue
        world = check_array(pos3d[subject][action], path3d, f"subject {subject}, action {action!r}",
                             "(frames, 32, 3) in metres", (32, 17), 3)
        if world.shape[1] == 32:  # the raw mocap layout; a 17-joint file is taken as already selected
            world = world[:, KEEP_JOINTS]
        n = world.shape[0]
        views = camera_views(pos2d, subject, action, camera_order, path2d, path3d)
        for ci, (cam_id, cam) in enumerate(zip(camera_order, cams)):
            where = f"subject {subject}, action {action!r}, camera {ci} ({cam_id})"
            px = view_pixels(views[ci], n, 17, path2d, path3d, where, skipped, f"{subject}/{action}/{cam_id}")
            if px is None:
                continue
            px = px[::k]
            xc = world_to_camera(world[::k], cam["rotation"], cam["centre"])  # (F, 17, 3) metres
            root = xc[:, H36M17.root]
            w, h = cam["image_size"]
            out.append(make_sequence(
                kp2d_px=px, pose3d=xc - root[:, None], root3d=root, w=w, h=h, subject=subject,
                name=f"{subject}/{action}", action=action_text(action), camera=cam_id,
                fps=FPS / k, intrinsics=cam["intrinsics"]))
    return out


def camera_views(pos2d: dict, subject: str, action: str, cameras, path2d: Path, path3d: Path) -> list:
    """The per-camera 2D arrays of one action of a ``positions_2d`` dict (VideoPose3D layout), checked
    to be there and to be a list with one entry per camera of ``cameras``."""
    if action not in pos2d[subject]:
        raise DataFormatError(f"{path2d}: subject {subject}, action {action!r} is missing from 'positions_2d'; "
                              f"expected the same actions as {path3d.name}")
    views = pos2d[subject][action]
    if not isinstance(views, (list, tuple)) or len(views) != len(cameras):
        raise DataFormatError(f"{path2d}: subject {subject}, action {action!r}: expected a list of "
                              f"{len(cameras)} arrays (one per camera {list(cameras)}), got "
                              f"{type(views).__name__} of length {len(views) if hasattr(views, '__len__') else '?'}")
    return list(views)


def view_pixels(raw, n: int, joints: int, path2d: Path, path3d: Path, where: str, skipped: list,
                skip_key: str) -> np.ndarray | None:
    """One camera's 2D of an action, (n, joints, 2) pixels: checked, trimmed to the ``n`` mocap
    frames (detections can run a few frames longer). A camera without 2D (None or empty: a known gap
    in some 2D files) gives None and is recorded in ``skipped`` as ``skip_key``."""
    if raw is None or np.asarray(raw).size == 0:
        skipped.append(skip_key)
        return None
    px = check_array(raw, path2d, where, f"(frames, {joints}, 2) in pixels", (joints,), 2)
    if px.shape[0] < n:
        raise DataFormatError(f"{path2d}: {where}: {px.shape[0]} frames of 2D but {n} of mocap in "
                              f"{path3d.name}; expected at least as many 2D frames as mocap frames")
    return px[:n]


def make_sequence(kp2d_px, pose3d, root3d, w, h, subject, name, action, camera, fps, intrinsics,
                  conf=None, valid=None, style="", meta=None) -> PoseSequences:
    """A one-sequence :class:`PoseSequences` from per-frame arrays (also used by the 3DHP loader).

    ``kp2d_px`` (F, N, 2) pixels, ``pose3d`` (F, N, 3) root-relative metres, ``root3d`` (F, 3);
    ``kp2d`` is normalised here; joints with ``conf <= 0`` get 0 in both 2D fields.
    """
    f, n = kp2d_px.shape[:2]
    conf = np.ones((f, n), np.float32) if conf is None else conf.astype(np.float32)
    kp2d = normalize_screen(kp2d_px, w, h)
    missing = conf <= 0
    kp2d[missing] = 0.0  # a missing joint is 0 in both 2D fields (format.py)
    kp2d_px = kp2d_px.copy()
    kp2d_px[missing] = 0.0
    return PoseSequences(
        kp2d=kp2d.astype(np.float32), kp2d_px=kp2d_px.astype(np.float32), conf=conf,
        pose3d=pose3d.astype(np.float32), root3d=root3d.astype(np.float32),
        valid=np.ones(f, bool) if valid is None else valid.astype(bool),
        starts=np.array([0, f], np.int64),
        subject=np.array([subject]), name=np.array([name]), action=np.array([action]),
        style=np.array([style]), camera=np.array([camera]),
        fps=np.array([fps], np.float32), intrinsics=np.asarray(intrinsics, np.float32)[None],
        image_size=np.array([[w, h]], np.int32), meta=dict(meta or {"skeleton": H36M17.name}),
    )
