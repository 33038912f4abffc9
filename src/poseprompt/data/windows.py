"""Windows of T frames cut from a split at loading time: the training and evaluation samples.

``PoseWindows(split, frames=T, stride=S, mode=...)`` is a ``torch.utils.data.Dataset``.

* ``mode="train"``: windows start every ``S`` frames and lie fully inside their sequence.
* ``mode="test"``: every frame of the split is scored exactly once. Windows start every ``S`` frames
  (``S <= T``; ``S = T`` gives the usual non-overlapping tiling); each window scores only the frames
  that the previous window of its sequence did not reach; when the last window ends before the
  sequence does, one more window is aligned to the sequence end and scores just the remainder.
  ``eval_mask`` marks the scored frames (and is AND-ed with ``split.valid``).
* Sequences shorter than T: ``short="pad"`` centres the sequence in the window and replicates its
  first frame to the left and its last frame to the right (``left = (T - L) // 2`` slots, the rest on
  the right); padded slots have ``eval_mask`` False. ``short="reject"`` raises
  :class:`~poseprompt.data.format.DataFormatError` naming the sequence and its length.

A window is ``(seq, start)``: ``start`` is the sequence-local index of its first slot (negative for a
padded window); slot ``i`` shows local frame ``clip(start + i, 0, L - 1)``. :meth:`windows` lists
them, for reproducibility and for stitching predictions back (each item also carries ``frame``, the
split-global frame index of every slot).

Item (a dict; torch's ``default_collate`` batches it as is: tensors stack, ints and floats become
tensors, the ``texts`` dict of strings becomes a dict of lists of strings, so no custom collate
function is needed):

============  ====================  =============================================================
key           type, shape           meaning
============  ====================  =============================================================
x             float32 (T, N, 3)     ``[kp2d x, kp2d y, conf]`` (normalised 2D + confidence)
y             float32 (T, N, 3)     ``pose3d``: camera-frame root-relative 3D, metres
eval_mask     bool (T,)             slots to score (test) / real, valid slots (train)
seq           int                   sequence index in the split
frame         int64 (T,)            split-global frame index of each slot
texts         dict[str, str]        prompt slot texts: ``action``, ``speed``, ``person`` (+ overrides)
speed_value   float                 the raw speed behind ``texts["speed"]`` (body scales per second)
============  ====================  =============================================================

The speed word is computed from the window's *2D input* only, so it is available at test time:
``speed_value`` = mean 2D displacement of the joints visible at both ends of a lag of ``speed_lag_s``
seconds (0.2 s: long enough that detector jitter of a few pixels barely counts), divided by the lag,
divided by the body scale (the root-mean-square distance of the visible joints from their centroid,
averaged over the window; about 0.5 m for an adult). Units: body scales per second; a person walking
across the image at 1.3 m/s gives about 2.5, standing activities well below 0.5, running 4-7.
``speed_thresholds=(a, b)`` maps ``< a`` to "slow", ``[a, b)`` to "normal", ``>= b`` to "fast".
The defaults (0.6, 3.0) were set on the synthetic default data (81-frame windows): about a third of
the windows are slow (waving, boxing guard, turning on the spot, slow kicks), half normal (squats,
sitting down, walking, jumping) and a sixth fast (running, brisk walking).
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import torch
from torch.utils.data import Dataset

from poseprompt.data.format import DataFormatError, PoseSequences

SPEED_THRESHOLDS = (0.6, 3.0)  # body scales per second
SPEED_WORDS = ("slow", "normal", "fast")
SPEED_LAG_S = 0.2


def speed_word(value: float, thresholds=SPEED_THRESHOLDS, words=SPEED_WORDS) -> str:
    """Word for a speed value: ``words[number of thresholds <= value]``."""
    return words[int(np.searchsorted(np.asarray(thresholds), value, side="right"))]


def person_text(style: str) -> str:
    """The person slot: ``"a person"``, or ``"a <style> person"`` when the source has a style label."""
    style = str(style).strip()
    return f"a {style} person" if style else "a person"


class PoseWindows(Dataset):
    def __init__(self, split: PoseSequences, frames: int, stride: int | None = None, mode: str = "train",
                 short: str = "pad", speed_thresholds=SPEED_THRESHOLDS, speed_words=SPEED_WORDS,
                 slot_labels: dict[str, str] | None = None, speed_lag_s: float = SPEED_LAG_S):
        """``stride`` defaults to ``frames`` (in test mode it must be <= ``frames``).

        ``slot_labels`` fixes slot texts for every item (e.g. ``{"action": "move"}`` for an
        action-agnostic ablation, or extra slots such as ``{"body": "a human body"}``).
        """
        T = int(frames)
        S = T if stride is None else int(stride)
        if T < 1 or S < 1:
            raise ValueError(f"PoseWindows: frames and stride must be >= 1, got frames={frames}, stride={stride}")
        if mode not in ("train", "test"):
            raise ValueError(f"PoseWindows: mode must be 'train' or 'test', got {mode!r}")
        if mode == "test" and S > T:
            raise ValueError(f"PoseWindows: a test stride ({S}) larger than the window ({T}) would skip frames")
        if short not in ("pad", "reject"):
            raise ValueError(f"PoseWindows: short must be 'pad' or 'reject', got {short!r}")
        th = tuple(float(v) for v in speed_thresholds)
        if len(th) != len(speed_words) - 1 or any(b <= a for a, b in zip(th, th[1:])):
            raise ValueError(f"PoseWindows: speed_thresholds {speed_thresholds} must be increasing, one fewer "
                             f"than speed_words {speed_words}")
        self.split, self.frames, self.stride, self.mode, self.short = split, T, S, mode, short
        self.speed_thresholds, self.speed_words = th, tuple(speed_words)
        self.slot_labels = dict(slot_labels or {})

        # float32 copies once, so that items are cheap views + one gather
        self._kp = np.ascontiguousarray(split.kp2d, dtype=np.float32)       # (F, N, 2)
        self._conf = np.ascontiguousarray(split.conf, dtype=np.float32)     # (F, N)
        self._pose = np.ascontiguousarray(split.pose3d, dtype=np.float32)   # (F, N, 3)
        self._valid = np.asarray(split.valid, dtype=bool)                   # (F,)
        self._starts = np.asarray(split.starts, dtype=np.int64)

        seq, start, cover = self._layout()
        self._seq, self._start, self._cover = seq, start, cover          # (W,) each
        self.speed_values = self._speed_values(float(speed_lag_s))        # (W,) float64

    # ---- layout ------------------------------------------------------------------------------
    def _layout(self):
        """(seq, start, cover_from) per window; a window scores local frames >= cover_from."""
        T, S = self.frames, self.stride
        lengths = np.diff(self._starts)
        seqs, starts, covers = [], [], []
        for s, L in enumerate(lengths.tolist()):
            if L < T:
                if self.short == "reject" or L == 0:
                    raise DataFormatError(
                        f"sequence {s} ({self.split.subject[s]}/{self.split.name[s]}, camera {self.split.camera[s]}) "
                        f"has {L} frames, fewer than the window of {T}; set short='pad' or a shorter window")
                st = np.array([-((T - L) // 2)])
                cv = np.array([0])
            else:
                st = np.arange(0, L - T + 1, S)
                if self.mode == "train":
                    cv = st.copy()
                else:
                    cv = np.concatenate([[0], st[:-1] + T])  # frames the previous window did not reach
                    end = int(st[-1]) + T
                    if end < L:  # remainder: a window aligned to the end scores only what is left
                        st = np.append(st, L - T)
                        cv = np.append(cv, end)
            seqs.append(np.full(len(st), s))
            starts.append(st)
            covers.append(cv)
        return (np.concatenate(seqs).astype(np.int64), np.concatenate(starts).astype(np.int64),
                np.concatenate(covers).astype(np.int64))

    def windows(self) -> np.ndarray:
        """(W, 2) int64 ``[seq, start]`` of every window, in item order."""
        return np.stack([self._seq, self._start], axis=1)

    def __len__(self) -> int:
        return len(self._seq)

    # ---- speed -------------------------------------------------------------------------------
    def _speed_values(self, lag_s: float) -> np.ndarray:
        """Speed (body scales / s) of every window from the 2D input, vectorised with cumulative sums."""
        F = len(self._conf)
        seq_of_frame = np.repeat(np.arange(len(self._starts) - 1), np.diff(self._starts))  # (F,)
        fps = np.asarray(self.split.fps, dtype=np.float64)
        lag = np.maximum(1, np.round(lag_s * fps).astype(np.int64))                       # (S,) frames
        vis = self._conf > 0                                                               # (F, N)

        # displacement over the lag, summed over joints visible at both ends (pairs inside a sequence)
        partner = np.arange(F) + lag[seq_of_frame]
        has_pair = partner < self._starts[seq_of_frame + 1]
        p = np.where(has_pair, partner, 0)
        both = vis & vis[p] & has_pair[:, None]
        dist = np.linalg.norm(self._kp[p] - self._kp, axis=-1)                             # (F, N)
        d_sum = np.where(both, dist, 0.0).sum(1)
        d_cnt = both.sum(1)

        # body scale: RMS distance of visible joints from their centroid (frames with >= 2 visible)
        n_vis = vis.sum(1)
        centroid = (self._kp * vis[..., None]).sum(1) / np.maximum(n_vis, 1)[:, None]    # (F, 2)
        sq = (((self._kp - centroid[:, None]) ** 2).sum(-1) * vis).sum(1)
        has_scale = n_vis >= 2
        scale = np.where(has_scale, np.sqrt(sq / np.maximum(n_vis, 1)), 0.0)

        def window_sum(values, lo, hi):  # sum of values[lo:hi] per window, via a cumulative sum
            c = np.concatenate([[0.0], np.cumsum(values, dtype=np.float64)])
            return c[np.maximum(hi, lo)] - c[lo]

        L = np.diff(self._starts)[self._seq]
        g0 = self._starts[self._seq] + np.clip(self._start, 0, L)          # first real frame (global)
        g1 = self._starts[self._seq] + np.clip(self._start + self.frames, 0, L)
        k = lag[self._seq]
        d = window_sum(d_sum, g0, g1 - k) / np.maximum(window_sum(d_cnt, g0, g1 - k), 1)
        sc = window_sum(scale, g0, g1) / np.maximum(window_sum(has_scale, g0, g1), 1)
        seconds = k / fps[self._seq]
        return np.where(sc > 0, d / seconds / np.where(sc > 0, sc, 1.0), 0.0)

    # ---- batches gathered from the frame arrays ------------------------------------------------
    def texts(self, idx) -> dict[str, list[str]]:
        """Slot texts of the windows ``idx``: slot -> list of strings (one per window)."""
        idx = np.asarray(idx, dtype=np.int64)
        seq = self._seq[idx]
        words = np.asarray(self.speed_words)[np.searchsorted(np.asarray(self.speed_thresholds),
                                                             self.speed_values[idx], side="right")]
        out = {"action": [str(a) for a in np.asarray(self.split.action)[seq]],
               "speed": [str(w) for w in words],
               "person": [person_text(st) for st in np.asarray(self.split.style)[seq]]}
        for k, v in self.slot_labels.items():
            out[k] = [v] * len(idx)
        return out

    def gather(self, idx) -> dict:
        """The windows ``idx`` as one batch, gathered from the frame arrays (no copy per window):
        ``x`` (B, T, N, 3), ``y`` (B, T, N, 3), ``eval_mask`` (B, T), ``frame`` (B, T), ``seq`` (B,),
        ``texts`` (slot -> B strings). Equal to stacking ``self[i]`` for ``i in idx`` (tested)."""
        idx = np.asarray(idx, dtype=np.int64)
        seq, start, cover = self._seq[idx], self._start[idx], self._cover[idx]
        L = (self._starts[seq + 1] - self._starts[seq])[:, None]
        local = start[:, None] + np.arange(self.frames)[None, :]                  # (B, T)
        frame = self._starts[seq][:, None] + np.clip(local, 0, L - 1)
        real = (local >= 0) & (local < L)
        eval_mask = real & (local >= cover[:, None]) & self._valid[frame]
        x = np.concatenate([self._kp[frame], self._conf[frame][..., None]], axis=-1)
        return {"x": torch.from_numpy(x), "y": torch.from_numpy(self._pose[frame]),
                "eval_mask": torch.from_numpy(eval_mask), "frame": torch.from_numpy(frame),
                "seq": torch.from_numpy(seq), "texts": self.texts(idx)}

    # ---- items -------------------------------------------------------------------------------
    def __getitem__(self, i: int) -> dict:
        if not -len(self) <= i < len(self):
            raise IndexError(f"window {i} out of range ({len(self)} windows)")
        s, a, cover = int(self._seq[i]), int(self._start[i]), int(self._cover[i])
        L = int(self._starts[s + 1] - self._starts[s])
        local = a + np.arange(self.frames)                                     # (T,) may leave [0, L)
        frame = self._starts[s] + np.clip(local, 0, L - 1)                     # (T,) global indices
        real = (local >= 0) & (local < L)
        eval_mask = real & (local >= cover) & self._valid[frame]
        x = np.concatenate([self._kp[frame], self._conf[frame][..., None]], axis=-1)  # (T, N, 3)
        speed = float(self.speed_values[i])
        texts = {
            "action": str(self.split.action[s]),
            "speed": speed_word(speed, self.speed_thresholds, self.speed_words),
            "person": person_text(self.split.style[s]),
            **self.slot_labels,
        }
        return {
            "x": torch.from_numpy(x),
            "y": torch.from_numpy(self._pose[frame]),
            "eval_mask": torch.from_numpy(eval_mask),
            "seq": s,
            "frame": torch.from_numpy(frame.astype(np.int64)),
            "texts": texts,
            "speed_value": speed,
        }


def window_kwargs(data_section: Mapping) -> dict:
    """The ``data.windows`` options (typed and checked: :class:`~poseprompt.config.sections.WindowConfig`) as
    keyword arguments of :class:`~poseprompt.data.windows.PoseWindows`."""
    from poseprompt.config.sections import WindowConfig
    return WindowConfig.from_dict(data_section.get("windows")).kwargs()
