"""Any folder of BVH motion capture files, mapped to the 17 canonical joints and seen by virtual cameras.

BVH (Biovision hierarchy) is the common interchange format of motion capture (CMU, Bandai Namco,
most studios). A file has two parts:

* ``HIERARCHY``: a tree of ``ROOT`` / ``JOINT`` blocks, each with an ``OFFSET`` (its position in
  the parent's frame at rest) and a ``CHANNELS`` line naming its per-frame values in order
  (``Xposition Yposition Zposition`` and ``Xrotation Yrotation Zrotation`` in any order), and
  ``End Site`` blocks (an offset only, e.g. the tip of the head);
* ``MOTION``: ``Frames: n``, ``Frame Time: dt`` and n rows of channel values in degrees and file
  units.

Forward kinematics (:func:`forward_kinematics`, vectorised over frames): a joint's local rotation
is the product of its elementary rotations *in the order its CHANNELS line lists them*
(``Zrotation Xrotation Yrotation`` gives ``R = Rz Rx Ry`` acting on column vectors); its local
translation is its position channels where it has them (they replace the offset: this is what
reproduces the independent reference conversion of Bandai-1, whose joints all have 6 channels),
else its ``OFFSET``. Then ``G_j = G_parent R_j`` and ``p_j = p_parent + G_parent t_j``.

The result is converted to the project's world frame: multiplied by ``unit_scale`` (0.01 for
centimetres) and, for ``up_axis: y``, rotated +90 degrees about x so that y-up becomes z-up
(``(x, y, z) -> (x, -z, y)``, a proper rotation: no mirroring).

**Joint maps.** A joint map says where each of the 17 canonical joints
(:data:`~poseprompt.core.skeleton.H36M17`, names like ``pelvis``, ``right_knee``, ``head``) comes from.
An entry is a BVH joint name, or a rule:

* ``{lerp: [A, B], t: x}``: ``A + x (B - A)`` (``t: 0.5`` is the midpoint; ``t: 2.5`` extrapolates
  past B by 1.5 times A->B);
* ``{mean: [A, B, ...]}``: the average of several joints.

An ``End Site`` is addressable as ``<parent name>_End``. The Bandai Namco map is built in
(``joint_map: bandai``, :data:`BANDAI_MAP`); another skeleton gets its own map in ``params.yaml``::

    bvh:
      joint_map:
        pelvis: Hips
        right_hip: RightUpLeg
        right_knee: RightLeg
        ...
        head: {lerp: [Neck, Head], t: 2.5}

Every one of the 17 names must be present; names the file lacks are reported together with the
names it has.

**Labels.** From the file name by a regular expression with named groups ``action`` and
(optionally) ``style`` (default: Bandai's ``dataset-1_{content}_{style}_{id}.bvh``), or, with
``labels: json``, from side files ``<stem>.json`` holding ``{"content": id, "style": id}`` that
index the lines of ``content_label.txt`` / ``style_label.txt`` in ``label_dir`` (default: the
``cfg`` folder next to the BVH folder; a line's prefix up to the first ``_`` is dropped, so
``dataset-1_walk-back`` is ``walk-back``). Hyphens become spaces in the texts: action
"walk back", style "not confident".

**Splits.** Bandai's three actors are not labelled, so splits never go by subject:
``split_by: style`` or ``content`` holds out the files whose label is in ``test_values``;
``split_by: file`` holds out a seeded random ``test_fraction`` of the files.

Configuration (the ``bvh`` section of the data config; unknown keys are an error):

==================  =====================================  =====================================
key                 default                                meaning
==================  =====================================  =====================================
folder              (required)                             folder of ``*.bvh`` files
pattern             Bandai's (see :data:`BANDAI_PATTERN`)  file-name regex; ``null``: action = stem
labels              filename                               ``filename`` or ``json`` (side files)
label_dir           ``<folder>/../cfg``                    label lists for ``labels: json``
joint_map           bandai                                 ``bandai`` or a mapping (see above)
unit_scale          0.01                                   file units -> metres
up_axis             y                                      ``y`` or ``z``: the file's up axis
fps                 null                                   resample to this rate (null: keep)
cameras             3                                      virtual cameras per clip
camera_distance     [3.5, 6.0]                             metres from the clip's centre (plus
                                                           the extent of its root track)
camera_height       [1.0, 2.0]                             camera centre above the floor, metres
focal               [1130.0, 1160.0]                       pixels
noise               as in the synthetic source             2D detector model (same keys)
split_by            style                                  ``style``, ``content`` or ``file``
test_values         [angry, childish, old]                 labels held out (style/content; the
                                                           default suits ``split_by: style``)
test_fraction       0.2                                    held-out share for ``split_by: file``
subject             null                                   subject id; null: the folder's name
                                                           (its parent's if it is called "bvh")
max_files           null                                   use only the first n files (sorted)
==================  =====================================  =====================================
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from poseprompt.config.sections import Options
from poseprompt.core.skeleton import H36M17
from poseprompt.data.camera import axis_rotation
from poseprompt.data.format import DataFormatError, PoseSequences
from poseprompt.data.synthetic import DetectorNoise, cameras_for, render_views, seeded_rng

BANDAI_PATTERN = r"^dataset-\d+_(?P<action>[^_]+)_(?P<style>[^_]+)_(?P<id>\d+)$"

BANDAI_MAP = {
    "pelvis": "Hips",
    "right_hip": "UpperLeg_R", "right_knee": "LowerLeg_R", "right_ankle": "Foot_R",
    "left_hip": "UpperLeg_L", "left_knee": "LowerLeg_L", "left_ankle": "Foot_L",
    "spine": "Spine",
    "thorax": "Neck",
    "neck": "Head",
    "head": {"lerp": ["Neck", "Head"], "t": 2.5},  # Head + 1.5 (Head - Neck): the end site has length 0
    "left_shoulder": "UpperArm_L", "left_elbow": "LowerArm_L", "left_wrist": "Hand_L",
    "right_shoulder": "UpperArm_R", "right_elbow": "LowerArm_R", "right_wrist": "Hand_R",
}
JOINT_MAPS = {"bandai": BANDAI_MAP}

@dataclass(frozen=True)
class BvhOptions(Options):
    """``data.bvh``: any folder of BVH motion capture seen by virtual cameras (defaults stated once)."""
    SECTION: ClassVar[str] = "data.bvh"
    folder: str | None = "data/raw/bvh"
    pattern: str = BANDAI_PATTERN
    labels: str = "filename"
    label_dir: str | None = None
    joint_map: Any = "bandai"
    unit_scale: float = 0.01
    up_axis: str = "y"
    fps: float | None = None
    cameras: int = 3
    camera_distance: tuple[float, float] = (3.5, 6.0)
    camera_height: tuple[float, float] = (1.0, 2.0)
    focal: tuple[float, float] = (1130.0, 1160.0)
    noise: DetectorNoise = field(default_factory=DetectorNoise)
    split_by: str = "style"
    test_values: tuple[str, ...] = ("angry", "childish", "old")
    test_fraction: float = 0.2
    subject: str | None = None
    max_files: int | None = None


#: the defaults as a plain mapping (derived from :class:`BvhOptions`)
DEFAULTS = BvhOptions().to_dict()

_AXES = {"X": 0, "Y": 1, "Z": 2}


# ---- reading ---------------------------------------------------------------------------------

@dataclass
class BvhJoint:
    name: str
    parent: int                 # index into the joint list, -1 for the root
    offset: np.ndarray          # (3,) file units
    channels: tuple[str, ...]   # e.g. ("Xposition", "Yposition", "Zposition", "Zrotation", ...)
    first_channel: int          # column of its first channel in the motion rows
    end_site: bool = False


@dataclass
class BvhHierarchy:
    joints: list[BvhJoint]
    path: str = "<memory>"

    @property
    def names(self) -> list[str]:
        return [j.name for j in self.joints]

    @property
    def num_channels(self) -> int:
        return sum(len(j.channels) for j in self.joints)


@dataclass
class BvhMotion:
    values: np.ndarray          # (F, C) channel values: file units and degrees
    frame_time: float           # seconds

    @property
    def fps(self) -> float:
        """``1 / frame_time``, snapped to a whole number when the file rounded it (0.0333333 -> 30)."""
        fps = 1.0 / self.frame_time
        return float(round(fps)) if abs(fps - round(fps)) < 1e-4 * fps else fps


@dataclass
class _Tokens:
    """Whitespace tokens of the hierarchy part with their line numbers, for error messages."""

    path: str
    items: list[tuple[str, int]]
    i: int = 0
    last_line: int = 1

    def next(self, expect: str | None = None) -> str:
        if self.i >= len(self.items):
            raise DataFormatError(f"{self.path}: line {self.last_line}: file ends inside the HIERARCHY "
                                  f"block" + (f" (expected {expect!r})" if expect else ""))
        tok, self.last_line = self.items[self.i]
        self.i += 1
        if expect is not None and tok != expect:
            raise DataFormatError(f"{self.path}: line {self.last_line}: expected {expect!r}, found {tok!r}")
        return tok

    def floats(self, n: int, what: str) -> np.ndarray:
        vals = []
        for _ in range(n):
            tok = self.next()
            try:
                vals.append(float(tok))
            except ValueError:
                raise DataFormatError(f"{self.path}: line {self.last_line}: expected a number in {what}, "
                                      f"found {tok!r}") from None
        return np.array(vals)


def _parse_joint(tk: _Tokens, joints: list[BvhJoint], parent: int, channel_count: list[int]) -> None:
    """After ROOT/JOINT: ``name { OFFSET x y z CHANNELS n ... (JOINT | End Site)* }``."""
    name = tk.next()
    line = tk.last_line
    tk.next("{")
    tk.next("OFFSET")
    offset = tk.floats(3, f"the OFFSET of {name!r}")
    tk.next("CHANNELS")
    n_tok = tk.next()
    if not n_tok.isdigit() or int(n_tok) not in (0, 1, 2, 3, 4, 5, 6):
        raise DataFormatError(f"{tk.path}: line {tk.last_line}: joint {name!r}: expected a channel count 0-6, "
                              f"found {n_tok!r}")
    channels = tuple(tk.next() for _ in range(int(n_tok)))
    for ch in channels:
        if len(ch) != 9 or ch[0] not in _AXES or ch[1:] not in ("position", "rotation"):
            raise DataFormatError(f"{tk.path}: line {tk.last_line}: joint {name!r}: unknown channel {ch!r} "
                                  f"(expected Xposition ... Zrotation)")
    if len(set(channels)) != len(channels):
        raise DataFormatError(f"{tk.path}: line {tk.last_line}: joint {name!r}: repeated channel in {channels}")
    if any(j.name == name for j in joints):
        raise DataFormatError(f"{tk.path}: line {line}: joint name {name!r} appears twice")
    me = len(joints)
    joints.append(BvhJoint(name, parent, offset, channels, channel_count[0]))
    channel_count[0] += len(channels)
    while True:
        tok = tk.next()
        if tok == "}":
            return
        if tok == "JOINT":
            _parse_joint(tk, joints, me, channel_count)
        elif tok == "End":
            tk.next("Site")
            tk.next("{")
            tk.next("OFFSET")
            end_offset = tk.floats(3, f"the End Site of {name!r}")
            tk.next("}")
            joints.append(BvhJoint(f"{name}_End", me, end_offset, (), channel_count[0], end_site=True))
        else:
            raise DataFormatError(f"{tk.path}: line {tk.last_line}: inside joint {name!r}: expected JOINT, "
                                  f"End Site or '}}', found {tok!r}")


def read_bvh(path: str | Path) -> tuple[BvhHierarchy, BvhMotion]:
    """Parse a BVH file. Errors name the file and the line; NaN or infinite values are errors."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: BVH file not found")
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    try:
        m = next(i for i, ln in enumerate(lines) if ln.strip() == "MOTION")
    except StopIteration:
        raise DataFormatError(f"{path}: no MOTION line: not a complete BVH file") from None
    items = [(tok, i + 1) for i, ln in enumerate(lines[:m]) for tok in ln.split()]
    tk = _Tokens(str(path), items)
    tk.next("HIERARCHY")
    tk.next("ROOT")
    joints: list[BvhJoint] = []
    count = [0]
    _parse_joint(tk, joints, -1, count)
    if tk.i != len(items):
        tok, line = items[tk.i]
        raise DataFormatError(f"{path}: line {line}: unexpected {tok!r} after the root joint's block "
                              f"(one ROOT per file is supported)")
    hier = BvhHierarchy(joints, str(path))

    def header(k: int, key: str) -> str:
        if k >= len(lines) or not lines[k].strip().startswith(key):
            found = lines[k].strip() if k < len(lines) else "end of file"
            raise DataFormatError(f"{path}: line {k + 1}: expected '{key} ...', found {found!r}")
        return lines[k].strip()[len(key):].strip()

    try:
        n_frames = int(header(m + 1, "Frames:"))
        frame_time = float(header(m + 2, "Frame Time:"))
    except ValueError as e:
        raise DataFormatError(f"{path}: lines {m + 2}-{m + 3}: bad Frames / Frame Time value ({e})") from None
    if n_frames < 1 or not frame_time > 0:
        raise DataFormatError(f"{path}: line {m + 2}: expected Frames >= 1 and Frame Time > 0, "
                              f"got {n_frames} and {frame_time}")
    first = m + 3
    rows = lines[first:]
    while rows and not rows[-1].strip():
        rows.pop()
    if len(rows) != n_frames:
        raise DataFormatError(f"{path}: line {first + len(rows)}: 'Frames: {n_frames}' but {len(rows)} data rows "
                              f"(file truncated or Frames wrong)")
    C = hier.num_channels
    try:
        values = np.loadtxt(rows, dtype=np.float64, ndmin=2, comments=None)  # numpy's C parser: fast
    except ValueError:
        values = None
    if values is None or values.shape != (n_frames, C):  # find the first bad row for the message
        for k, row in enumerate(rows):
            toks = row.split()
            if len(toks) != C:
                raise DataFormatError(f"{path}: line {first + k + 1}: expected {C} channel values, "
                                      f"found {len(toks)}")
            for tok in toks:
                try:
                    float(tok)
                except ValueError:
                    raise DataFormatError(f"{path}: line {first + k + 1}: not a number: {tok!r}") from None
        raise DataFormatError(f"{path}: line {first + 1}: could not read the {n_frames} x {C} motion values")
    if not np.all(np.isfinite(values)):
        f, c = np.argwhere(~np.isfinite(values))[0]
        joint = next(j for j in joints if j.first_channel <= c < j.first_channel + len(j.channels))
        raise DataFormatError(f"{path}: line {first + f + 1}: frame {f}: NaN or infinite value in channel "
                              f"{joint.channels[c - joint.first_channel]} of joint {joint.name!r}")
    return hier, BvhMotion(values, frame_time)


# ---- forward kinematics ------------------------------------------------------------------------

def forward_kinematics(hier: BvhHierarchy, motion: BvhMotion) -> np.ndarray:
    """World positions (F, J, 3) of every joint and end site, in file units and axes."""
    F = len(motion.values)
    J = len(hier.joints)
    pos = np.zeros((F, J, 3))
    rot = [None] * J  # world rotation of each joint's frame, (F, 3, 3)
    for j, joint in enumerate(hier.joints):  # parents come before their children
        t = np.broadcast_to(joint.offset, (F, 3)).copy()
        r = None
        for k, ch in enumerate(joint.channels):
            v = motion.values[:, joint.first_channel + k]
            axis = _AXES[ch[0]]
            if ch.endswith("position"):
                t[:, axis] = v  # position channels replace the offset
            else:
                e = axis_rotation(axis, v)
                r = e if r is None else r @ e  # in CHANNELS order: R = R_c1 R_c2 R_c3
        if joint.parent < 0:
            pos[:, j] = t
            rot[j] = r if r is not None else np.broadcast_to(np.eye(3), (F, 3, 3))
        else:
            g = rot[joint.parent]
            pos[:, j] = pos[:, joint.parent] + np.einsum("fij,fj->fi", g, t)
            rot[j] = g if r is None else g @ r
    return pos


def to_world(points: np.ndarray, unit_scale: float, up_axis: str) -> np.ndarray:
    """File coordinates (..., 3) -> project world frame (z up, metres)."""
    p = np.asarray(points, dtype=np.float64) * unit_scale
    if up_axis == "z":
        return p
    if up_axis == "y":  # +90 degrees about x: y -> z, z -> -y
        return np.stack([p[..., 0], -p[..., 2], p[..., 1]], -1)
    raise ValueError(f"up_axis must be 'y' or 'z', got {up_axis!r}")


# ---- joint maps --------------------------------------------------------------------------------

def resolve_joint_map(joint_map: str | dict) -> dict:
    """A named built-in map or a user mapping, checked to cover exactly the 17 canonical joints."""
    if isinstance(joint_map, str):
        if joint_map not in JOINT_MAPS:
            raise ValueError(f"unknown joint map {joint_map!r}; built in: {sorted(JOINT_MAPS)} "
                             f"(or give a mapping, see poseprompt.data.bvh)")
        return JOINT_MAPS[joint_map]
    missing = [n for n in H36M17.joints if n not in joint_map]
    extra = sorted(set(joint_map) - set(H36M17.joints))
    if missing or extra:
        raise ValueError(f"joint map: missing canonical joints {missing}, unknown keys {extra}; "
                         f"expected exactly {list(H36M17.joints)}")
    for k, v in joint_map.items():
        ok = isinstance(v, str) or (isinstance(v, dict) and (
            (set(v) == {"lerp", "t"} and len(v["lerp"]) == 2) or (set(v) == {"mean"} and len(v["mean"]) >= 1)))
        if not ok:
            raise ValueError(f"joint map entry {k!r}: expected a joint name, {{lerp: [A, B], t: x}} or "
                             f"{{mean: [A, ...]}}, got {v!r}")
    return joint_map


def _referenced(entry) -> list[str]:
    if isinstance(entry, str):
        return [entry]
    return list(entry.get("lerp") or entry.get("mean"))


def apply_joint_map(positions: np.ndarray, names: list[str], joint_map: dict, where: str = "<memory>") -> np.ndarray:
    """(F, J, 3) positions of named BVH joints -> (F, 17, 3) in H36M17 order."""
    index = {n: i for i, n in enumerate(names)}
    missing = sorted({n for e in joint_map.values() for n in _referenced(e) if n not in index})
    if missing:
        raise DataFormatError(f"{where}: joint map names {missing} are not joints of this file; "
                              f"it has {list(names)}")
    out = np.empty(positions.shape[:-2] + (H36M17.num_joints, 3))
    for j, joint in enumerate(H36M17.joints):
        e = joint_map[joint]
        if isinstance(e, str):
            out[..., j, :] = positions[..., index[e], :]
        elif "lerp" in e:
            a, b = (positions[..., index[n], :] for n in e["lerp"])
            out[..., j, :] = a + float(e["t"]) * (b - a)
        else:
            out[..., j, :] = np.mean([positions[..., index[n], :] for n in e["mean"]], axis=0)
    return out


def bvh_to_h36m17(path: str | Path, joint_map: str | dict = "bandai", unit_scale: float = 0.01,
                  up_axis: str = "y") -> tuple[np.ndarray, float]:
    """World joints (F, 17, 3) in metres, z up, and the file's frame rate."""
    hier, motion = read_bvh(path)
    pos = forward_kinematics(hier, motion)
    joints = apply_joint_map(pos, hier.names, resolve_joint_map(joint_map), str(path))
    return to_world(joints, unit_scale, up_axis), motion.fps


def resample(x: np.ndarray, fps_in: float, fps_out: float) -> np.ndarray:
    """Linear interpolation in time of (F, ...) samples to a new rate, over the same time span."""
    F = len(x)
    n = int(np.floor((F - 1) * fps_out / fps_in + 1e-9)) + 1
    s = np.arange(n) * fps_in / fps_out  # source frame positions
    i = np.minimum(np.floor(s).astype(int), F - 2) if F > 1 else np.zeros(n, int)
    w = (s - i).reshape((-1,) + (1,) * (x.ndim - 1))
    return x[i] * (1 - w) + x[np.minimum(i + 1, F - 1)] * w


# ---- labels, configuration and splits ------------------------------------------------------------

def _text(label: str) -> str:
    return label.replace("-", " ").replace("_", " ").strip()


def _read_label_list(path: Path) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: label list not found (needed by labels: json; set label_dir)")
    return [ln.strip().split("_", 1)[-1] for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]


def clip_labels(path: Path, cfg: dict) -> tuple[str, str]:
    """(content, style) words of a clip as in the file (e.g. "walk-back", "not-confident")."""
    if cfg["labels"] == "json":
        side = path.with_suffix(".json")
        if not side.is_file():
            raise FileNotFoundError(f"{side}: side file with content/style ids not found (labels: json)")
        label_dir = Path(cfg["label_dir"]) if cfg["label_dir"] else path.parent.parent / "cfg"
        contents = _read_label_list(label_dir / "content_label.txt")
        styles = _read_label_list(label_dir / "style_label.txt")
        ids = json.loads(side.read_text(encoding="utf-8"))
        try:
            return contents[int(ids["content"])], styles[int(ids["style"])]
        except (KeyError, IndexError, ValueError, TypeError) as e:
            raise DataFormatError(f"{side}: expected {{'content': id, 'style': id}} indexing "
                                  f"{label_dir}/content_label.txt and style_label.txt ({e!r})") from None
    if cfg["pattern"] is None:
        return path.stem, ""
    m = re.match(cfg["pattern"], path.stem)
    if m is None:
        raise DataFormatError(f"{path}: file name does not match the pattern {cfg['pattern']!r} "
                              f"(set bvh.pattern, or pattern: null to use the file name as the action)")
    groups = m.groupdict()
    return groups.get("action") or path.stem, groups.get("style") or ""


def resolve_config(cfg: dict | None) -> dict:
    out = BvhOptions.from_dict(cfg).to_dict()
    if out["folder"] is None:
        raise ValueError("bvh config: 'folder' is required (a folder of .bvh files)")
    if out["labels"] not in ("filename", "json"):
        raise ValueError(f"bvh config: labels must be 'filename' or 'json', got {out['labels']!r}")
    if out["split_by"] not in ("style", "content", "file"):
        raise ValueError(f"bvh config: split_by must be 'style', 'content' or 'file', got {out['split_by']!r}")
    if out["up_axis"] not in ("y", "z"):
        raise ValueError(f"bvh config: up_axis must be 'y' or 'z', got {out['up_axis']!r}")
    if not float(out["unit_scale"]) > 0:
        raise ValueError(f"bvh config: unit_scale must be positive, got {out['unit_scale']!r}")
    if out["fps"] is not None and not float(out["fps"]) > 0:
        raise ValueError(f"bvh config: fps must be positive or null, got {out['fps']!r}")
    if not isinstance(out["cameras"], int) or out["cameras"] < 1:
        raise ValueError(f"bvh config: cameras must be a positive integer, got {out['cameras']!r}")
    if not 0 < float(out["test_fraction"]) < 1:
        raise ValueError(f"bvh config: test_fraction must be in (0, 1), got {out['test_fraction']!r}")
    if out["pattern"] is not None:
        try:
            re.compile(out["pattern"])
        except re.error as e:
            raise ValueError(f"bvh config: pattern {out['pattern']!r} is not a regular expression ({e})") from None
    resolve_joint_map(out["joint_map"])
    return out


def list_clips(cfg: dict) -> list[Path]:
    folder = Path(cfg["folder"])
    if not folder.is_dir():
        raise FileNotFoundError(
            f"{folder}: BVH folder not found (set data.bvh.folder in params.yaml; Bandai Namco Research "
            f"Motion dataset 1 is published on GitHub by BandaiNamcoResearchInc)")
    files = sorted(folder.glob("*.bvh"))
    if cfg["max_files"] is not None:
        files = files[: int(cfg["max_files"])]
    if not files:
        raise FileNotFoundError(f"{folder}: no .bvh files in this folder")
    return files


def _subject(cfg: dict) -> str:
    if cfg["subject"]:
        return str(cfg["subject"])
    folder = Path(cfg["folder"]).resolve()
    return folder.parent.name if folder.name.lower() == "bvh" else folder.name


def build_splits(cfg: dict | None, seed: int) -> dict[str, PoseSequences]:
    """``train`` and ``test`` from a folder of BVH files (see the module doc for ``cfg``)."""
    cfg = resolve_config(cfg)
    files = list_clips(cfg)
    labels = [clip_labels(f, cfg) for f in files]
    if cfg["split_by"] == "file":
        rng = seeded_rng(seed, "bvh-split")
        n_test = max(1, int(round(cfg["test_fraction"] * len(files))))
        test = set(rng.permutation(len(files))[:n_test].tolist())
    else:
        col = 0 if cfg["split_by"] == "content" else 1
        present = sorted({lab[col] for lab in labels})
        wanted = [str(v) for v in cfg["test_values"]]
        absent = [v for v in wanted if v not in present]
        if absent:
            raise ValueError(f"bvh config: test_values {absent} are not {cfg['split_by']} labels of "
                             f"{cfg['folder']}; present: {present}")
        test = {i for i, lab in enumerate(labels) if lab[col] in wanted}
    if len(test) in (0, len(files)):
        raise ValueError(f"bvh config: the split by {cfg['split_by']} leaves an empty train or test set "
                         f"({len(files) - len(test)} train, {len(test)} test files)")
    subject = _subject(cfg)
    joint_map = resolve_joint_map(cfg["joint_map"])
    parts: dict[str, list[PoseSequences]] = {"train": [], "test": []}
    for i, (path, (content, style)) in enumerate(zip(files, labels)):
        world, fps = bvh_to_h36m17(path, joint_map, float(cfg["unit_scale"]), cfg["up_axis"])
        if cfg["fps"] is not None and abs(float(cfg["fps"]) - fps) > 1e-6:
            world, fps = resample(world, fps, float(cfg["fps"])), float(cfg["fps"])
        rng = seeded_rng(seed, "bvh", path.stem)
        cams = cameras_for(world, rng, cfg["cameras"], distance=cfg["camera_distance"],
                           height=cfg["camera_height"], focal=cfg["focal"])
        parts["test" if i in test else "train"].append(
            render_views(world, cams, rng, cfg["noise"], fps=fps, subject=subject, name=path.stem,
                         action=_text(content), style=_text(style)))
    out = {}
    for split, seqs in parts.items():
        meta = {"source": "bvh", "skeleton": H36M17.name, "input_2d": "synthetic-projection+noise",
                "split": split, "seed": int(seed), "folder": str(cfg["folder"]),
                "config": {k: v for k, v in cfg.items()}}
        out[split] = PoseSequences.concatenate(seqs, meta=meta)
    return out
