"""The one processed format that every stage after data preparation reads.

A *split* (train, val, test, or a cross-domain test set) is a :class:`PoseSequences`: S sequences
concatenated along the frame axis, with ``starts`` giving their boundaries, plus one row of
metadata per sequence. It is stored as a single ``.npz`` file (no pickles: strings are unicode
arrays, the free-form metadata a JSON string), written atomically.

Per-frame arrays (F = total frames, N = joints):

==============  ================  ==========================================================
key             shape, dtype      meaning
==============  ================  ==========================================================
kp2d            (F, N, 2) f4      2D keypoints, normalised: ``u / w * 2 - [1, h / w]``
kp2d_px         (F, N, 2) f4      2D keypoints in pixels
conf            (F, N) f4         per-joint confidence in [0, 1]; 0 = missing (coordinates 0)
pose3d          (F, N, 3) f4      camera-frame 3D, root-relative (root joint = 0), metres
root3d          (F, 3) f4         camera-frame position of the root joint, metres
valid           (F,) bool         frame counts in evaluation (MPI-INF-3DHP flags; else True)
==============  ================  ==========================================================

Per-sequence arrays (S sequences):

==============  ================  ==========================================================
starts          (S + 1,) i8       sequence s spans frames ``starts[s]:starts[s+1]``
subject         (S,) str          subject / actor id
name            (S,) str          sequence name (unique within the split with camera)
action          (S,) str          action label (text for the prompt's action slot)
style           (S,) str          style label, "" if the source has none
camera          (S,) str          camera id
fps             (S,) f4           frame rate
intrinsics      (S, 4) f4         fx, fy, cx, cy in pixels
image_size      (S, 2) i4         width, height in pixels
scored_joints   (S, N) bool       optional: joint j of sequence s is scored (False where the
                                  source does not define the joint, e.g. HumanEva-I's spine,
                                  neck/nose and head; their ``pose3d`` is only a stand-in)
==============  ================  ==========================================================

``scored_joints`` is optional and backward compatible: a file without it (every file written
before it existed) loads with all joints scored, and it is written only when some joint is not
scored, so the files of sources that define every joint are unchanged. :meth:`PoseSequences.scored_mask`
combines it with ``valid`` into the per-frame, per-joint mask that metrics should average over.

``meta`` (JSON) holds at least ``source``, ``skeleton``, ``input_2d`` (which 2D input: e.g.
``gt-projection+noise``, ``cpn``, ``gt``), ``split`` and ``format_version``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from poseprompt.core.io import save_npz

FORMAT_VERSION = 1

FRAME_KEYS = {"kp2d": (2,), "kp2d_px": (2,), "conf": (), "pose3d": (3,), "root3d": None, "valid": None}
SEQ_STR_KEYS = ("subject", "name", "action", "style", "camera")
OPTIONAL_KEYS = ("scored_joints",)   # may be absent from a file (then: all joints scored)


class DataFormatError(ValueError):
    """A processed or raw data file does not have the expected content. The message names the
    file, the field and what was expected."""


@dataclass
class PoseSequences:
    kp2d: np.ndarray
    kp2d_px: np.ndarray
    conf: np.ndarray
    pose3d: np.ndarray
    root3d: np.ndarray
    valid: np.ndarray
    starts: np.ndarray
    subject: np.ndarray
    name: np.ndarray
    action: np.ndarray
    style: np.ndarray
    camera: np.ndarray
    fps: np.ndarray
    intrinsics: np.ndarray
    image_size: np.ndarray
    meta: dict = field(default_factory=dict)
    scored_joints: np.ndarray | None = None     # (S, N) bool; None = every joint scored

    def __post_init__(self):
        if self.scored_joints is None:
            self.scored_joints = np.ones((len(self.starts) - 1, self.kp2d.shape[1]), bool)
        else:
            self.scored_joints = np.asarray(self.scored_joints, dtype=bool)

    # ---- sizes -------------------------------------------------------------------------
    @property
    def num_sequences(self) -> int:
        return len(self.starts) - 1

    @property
    def num_frames(self) -> int:
        return int(self.starts[-1])

    @property
    def num_joints(self) -> int:
        return self.kp2d.shape[1]

    def lengths(self) -> np.ndarray:
        return np.diff(self.starts)

    def frames(self, s: int) -> slice:
        return slice(int(self.starts[s]), int(self.starts[s + 1]))

    # ---- construction ------------------------------------------------------------------
    @classmethod
    def concatenate(cls, parts: list["PoseSequences"], meta: dict | None = None) -> "PoseSequences":
        """Join splits (or single-sequence pieces) into one; ``meta`` defaults to the first's."""
        if not parts:
            raise ValueError("cannot concatenate an empty list of PoseSequences")
        out = {}
        for f in fields(cls):
            if f.name in ("starts", "meta"):
                continue
            out[f.name] = np.concatenate([getattr(p, f.name) for p in parts], axis=0)
        lengths = np.concatenate([p.lengths() for p in parts])
        out["starts"] = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        out["meta"] = dict(parts[0].meta if meta is None else meta)
        return cls(**out)

    def select(self, seq_idx) -> "PoseSequences":
        """A new split holding the given sequences (in that order)."""
        seq_idx = np.asarray(seq_idx, dtype=np.int64)
        frame_idx = np.concatenate([np.arange(self.starts[s], self.starts[s + 1]) for s in seq_idx]) \
            if len(seq_idx) else np.zeros(0, dtype=np.int64)
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name in FRAME_KEYS:
                out[f.name] = v[frame_idx]
            elif f.name == "starts":
                out[f.name] = np.concatenate([[0], np.cumsum(self.lengths()[seq_idx])]).astype(np.int64)
            elif f.name == "meta":
                out[f.name] = dict(v)
            else:
                out[f.name] = v[seq_idx]
        return type(self)(**out)

    def scored_mask(self) -> np.ndarray:
        """(F, N) bool: frame scored (``valid``) and joint scored in its sequence (``scored_joints``)."""
        seq_of_frame = np.repeat(np.arange(self.num_sequences), self.lengths())
        return self.valid[:, None] & self.scored_joints[seq_of_frame]

    def sequence_texts(self, s: int) -> dict[str, str]:
        return {"action": str(self.action[s]), "style": str(self.style[s])}

    # ---- validation --------------------------------------------------------------------
    def validate(self, where: str = "<memory>") -> "PoseSequences":
        """Check shapes, dtypes and values; raise :class:`DataFormatError` naming ``where``."""
        def fail(key, msg):
            raise DataFormatError(f"{where}: field '{key}': {msg}")

        st = np.asarray(self.starts)
        if st.ndim != 1 or len(st) < 1 or st[0] != 0 or np.any(np.diff(st) < 0):
            fail("starts", "expected a non-decreasing 1-D offset array starting at 0")
        F, S = int(st[-1]), len(st) - 1
        if self.kp2d.ndim != 3 or self.kp2d.shape[0] != F or self.kp2d.shape[2] != 2:
            fail("kp2d", f"expected shape ({F}, N, 2), got {self.kp2d.shape}")
        N = self.kp2d.shape[1]
        expect = {"kp2d_px": (F, N, 2), "conf": (F, N), "pose3d": (F, N, 3), "root3d": (F, 3), "valid": (F,),
                  "fps": (S,), "intrinsics": (S, 4), "image_size": (S, 2), "scored_joints": (S, N)}
        expect.update({k: (S,) for k in SEQ_STR_KEYS})
        for key, shape in expect.items():
            v = getattr(self, key)
            if tuple(v.shape) != shape:
                fail(key, f"expected shape {shape}, got {tuple(v.shape)}")
        for key in ("kp2d", "kp2d_px", "conf", "pose3d", "root3d", "fps", "intrinsics"):
            v = getattr(self, key)
            if not np.all(np.isfinite(v)):
                bad = np.argwhere(~np.isfinite(v))[0]
                fail(key, f"expected finite values, found NaN/inf at index {tuple(int(i) for i in bad)}")
        if np.any((self.conf < 0) | (self.conf > 1)):
            fail("conf", "expected confidences in [0, 1]")
        if "skeleton" not in self.meta:
            fail("meta", "expected a 'skeleton' entry")
        return self

    # ---- storage -----------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the split as one ``.npz`` (atomic: the file appears whole or not at all)."""
        self.validate(str(path))
        arrays = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "meta":
                arrays["meta"] = np.array(json.dumps({**v, "format_version": FORMAT_VERSION}))
            elif f.name in OPTIONAL_KEYS:
                if not np.all(v):   # written only when it says something (files stay as they were)
                    arrays[f.name] = np.asarray(v)
            elif f.name in SEQ_STR_KEYS:
                arrays[f.name] = np.asarray(v, dtype=str)
            else:
                arrays[f.name] = np.asarray(v)
        path = Path(path)
        save_npz(path, arrays)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "PoseSequences":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"{path}: processed split not found; run the data preparation stage first "
                f"(`dvc repro prepare`, or notebooks/01_prepare_data.ipynb)")
        try:
            z = np.load(path, allow_pickle=False)
        except Exception as e:  # zip or header corruption
            raise DataFormatError(f"{path}: not a readable .npz file ({e})") from e
        with z:
            missing = [f.name for f in fields(cls) if f.name not in z.files and f.name not in OPTIONAL_KEYS]
            if missing:
                raise DataFormatError(f"{path}: missing fields {missing}; expected the processed format "
                                      f"(poseprompt.data.format)")
            kw = {f.name: z[f.name] for f in fields(cls) if f.name != "meta" and f.name in z.files}
            meta = json.loads(str(z["meta"]))
        if meta.get("format_version") != FORMAT_VERSION:
            raise DataFormatError(f"{path}: field 'meta.format_version' is {meta.get('format_version')!r}, "
                                  f"expected {FORMAT_VERSION}; prepare the data again")
        for k in SEQ_STR_KEYS:
            kw[k] = kw[k].astype(str)
        kw["valid"] = kw["valid"].astype(bool)
        return cls(**kw, meta=meta).validate(str(path))
