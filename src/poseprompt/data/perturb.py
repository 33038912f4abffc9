"""Robustness perturbations: occlusion, irregular motion (speed, frame drops, timestamp jitter), 2D noise.

Each perturbation is a pure function of a *clip* and a strength, seeded through the ``rng``
(``numpy.random.Generator``) it is given: the same clip, strength and seed give the same result, and
the input is never modified. They serve the evaluation suites (``perturb_sequences`` over a whole
split, looped over ``kind, strengths`` from ``params.yaml`` via :data:`PERTURBATIONS`) and can be
used as training augmentation on single clips.

A clip is a plain dict of numpy arrays for one sequence (T frames, N joints), the per-frame fields of
:class:`~poseprompt.data.format.PoseSequences`:

=========  ==========  =========================================================
key        shape       meaning
=========  ==========  =========================================================
kp2d       (T, N, 2)   normalised 2D: ``u / w * 2 - [1, h / w]`` (0 where missing)
kp2d_px    (T, N, 2)   2D in pixels (0 where missing)
conf       (T, N)      confidence in [0, 1]; 0 = missing
pose3d     (T, N, 3)   camera-frame root-relative 3D, metres
root3d     (T, 3)      camera-frame root position, metres
valid      (T,)        frame is scored
=========  ==========  =========================================================

What each does, and to which fields:

* ``occlude``: the 2D *input* loses joints (conf 0 and coordinates 0 in both 2D fields, so nothing
  leaks); the 3D targets stay, the model has to infer the hidden joints.
* ``resample`` / ``drop_frames`` / ``jitter_timestamps``: the *motion* changes, so input and targets
  change alike (the 3D of a resampled clip is the 3D at the new sampling times).
* ``add_noise``: the 2D input is displaced and its confidence lowered (by the detector's expected
  error, never the drawn one); targets stay.
"""
from __future__ import annotations

from dataclasses import fields
from typing import Any, Callable

import numpy as np

from poseprompt.core.skeleton import H36M17, Skeleton, get_skeleton
from poseprompt.data.camera import normalize_screen
from poseprompt.data.format import FRAME_KEYS, PoseSequences

CLIP_KEYS = tuple(FRAME_KEYS)  # kp2d, kp2d_px, conf, pose3d, root3d, valid


def sequence_clip(split: PoseSequences, s: int) -> dict[str, np.ndarray]:
    """The per-frame arrays of sequence ``s`` of a split as a clip (views, not copies)."""
    sl = split.frames(s)
    return {k: getattr(split, k)[sl] for k in CLIP_KEYS}


def _copy(clip: dict) -> dict:
    return {k: np.array(v, copy=True) for k, v in clip.items()}


def _length(clip: dict) -> int:
    return len(clip["conf"])


def _take(clip: dict, idx: np.ndarray) -> dict:
    """Frames ``idx`` of every per-frame array (other entries copied unchanged)."""
    return {k: (v[idx] if k in CLIP_KEYS else np.array(v, copy=True)) for k, v in clip.items()}


# ---- occlusion ---------------------------------------------------------------------------------
_ARM_WORDS = ("shoulder", "elbow", "wrist", "hand")
_LEG_WORDS = ("hip", "knee", "ankle", "foot")
_HEAD_WORDS = ("neck", "nose", "head")


#: The joint-group modes of :func:`occlusion_groups`, in the order the error messages list them.
from poseprompt.config.sections import OCCLUSION_MODES  # noqa: E402  (the patterns occlude() knows)


def occlusion_groups(skeleton: Skeleton = H36M17, mode: str = "joints") -> np.ndarray:
    """Boolean (G, N) matrix: the joint groups that ``occlude`` hides together, read off the skeleton.

    * ``joints``: each joint alone;
    * ``limbs``: each arm (shoulder, elbow, wrist) and each leg (hip, knee, ankle), by joint names and
      the skeleton's left/right lists;
    * ``parts``: larger regions that an object or the body itself hides: lower body (legs and root),
      upper body (everything else), left side, right side, head (neck and head joints);
    * ``side``: a whole body side, the arm and the leg of one side together (the skeleton's left or
      right list), as when a person is seen in profile;
    * ``all``: every joint at once, so that a span of frames has no 2D input at all (a detector
      losing the person, a cut in the video).
    """
    n = skeleton.num_joints
    names = [j.lower() for j in skeleton.joints]
    if mode == "joints":
        return np.eye(n, dtype=bool)
    if mode == "all":
        return np.ones((1, n), dtype=bool)
    arm = np.array([any(w in nm for w in _ARM_WORDS) for nm in names])
    leg = np.array([any(w in nm for w in _LEG_WORDS) for nm in names])
    left = np.zeros(n, bool)
    left[list(skeleton.left)] = True
    right = np.zeros(n, bool)
    right[list(skeleton.right)] = True
    if mode == "limbs":
        groups = [arm & left, arm & right, leg & left, leg & right]
    elif mode == "side":
        groups = [(arm | leg) & left, (arm | leg) & right]
    elif mode == "parts":
        root = np.arange(n) == skeleton.root
        lower = leg | root
        head = np.array([any(w in nm for w in _HEAD_WORDS) for nm in names])
        groups = [lower, ~lower, left, right, head]
    else:
        raise ValueError(f"occlude: mode must be one of {list(OCCLUSION_MODES)}, got {mode!r}")
    groups = np.array([g for g in groups if g.any()])
    if len(groups) == 0:
        raise ValueError(f"occlude: skeleton {skeleton.name!r} has no joints named like limbs for mode {mode!r}")
    return groups


def occlusion_mask(t: int, n: int, rng: np.random.Generator, target: int, groups: np.ndarray,
                   span: tuple[int, int], group_p: np.ndarray | None = None) -> np.ndarray:
    """Boolean (T, N) mask of about ``target`` hidden (frame, joint) entries, made of events.

    An event is a group (a row of ``groups`` (G, N), uniform or drawn with probabilities
    ``group_p`` (G,)), a length drawn uniformly from ``span`` frames (clipped to T) and a uniform
    start. Events are added until the count reaches ``target``; the last one is shortened so the
    count ends within one group size of it (overlaps make an exact count impossible for groups).
    Shared by the evaluation's ``occlude`` and the training augmentation (poseprompt/data/augment.py).
    """
    lo, hi = int(span[0]), int(span[1])
    if not 1 <= lo <= hi:
        raise ValueError(f"occlude: span must be (min, max) frames with 1 <= min <= max, got {span}")
    lo, hi = min(lo, t), min(hi, t)
    if target > int(groups.any(0).sum()) * t:
        raise ValueError(f"occlude: {target} hidden entries asked of {t} frames, but the groups reach only "
                         f"{int(groups.any(0).sum())} of the {n} joints")

    def pick(size=None):                       # uniform draws stay those of the uniform case
        if group_p is None:
            return rng.integers(len(groups), size=size)
        return rng.choice(len(groups), size=size, p=group_p)

    mask = np.zeros((t, n), bool)
    hidden = 0
    most = hi * int(groups.sum(1).max())  # the most entries one event can add
    # Bulk phase: batches of events that together cannot overshoot (each adds at most `most`);
    # drawn and applied at once through a per-group difference array over time.
    while (k := (target - hidden) // most) >= 8:
        g = pick(k)
        length = rng.integers(lo, hi + 1, size=k)
        start = (rng.random(k) * (t - length + 1)).astype(np.int64)
        diff = np.zeros((t + 1, len(groups)), np.int64)
        np.add.at(diff, (start, g), 1)
        np.add.at(diff, (start + length, g), -1)
        active = np.cumsum(diff[:-1], axis=0) > 0  # (T, G) group hidden at frame
        mask |= (active[:, :, None] & groups[None]).any(1)  # (T, G, N) -> (T, N)
        hidden = int(mask.sum())
    # Tail: one event at a time; the last one is shortened to land nearest to the target. Landing
    # nearest may mean adding nothing (the event's first new entries overshoot by more than what
    # remains); on a short clip with few entries left no event may ever land nearer, so after
    # STALLED_EVENTS events in a row that added nothing, the next one that can add is kept at its
    # smallest gain (overshooting by less than one group).
    stalled = 0
    while hidden < target:
        remaining = target - hidden
        g = int(pick())
        length = int(rng.integers(lo, hi + 1))
        start = int(rng.integers(0, t - length + 1))
        block = ~mask[start:start + length] & groups[g]  # (L, N) entries this event newly hides
        gain = np.cumsum(block.sum(1))  # new entries after 1..L frames of the event
        if gain[-1] > remaining:
            cut = int(np.argmin(np.abs(gain - remaining)))
            if gain[cut] == 0 and stalled >= STALLED_EVENTS:
                cut = int(np.argmax(gain > 0))
            block[cut + 1:] = False
        added = int(block.sum())
        stalled = stalled + 1 if added == 0 else 0
        mask[start:start + length] |= block
        hidden += added
    return mask


#: events in a row that add nothing before the occlusion tail accepts a small overshoot
STALLED_EVENTS = 10_000


def occlude(clip: dict, rng: np.random.Generator, fraction: float, mode: str = "joints",
            span: tuple[int, int] = (5, 30), skeleton: Skeleton = H36M17) -> dict:
    """Hide joint groups over random frame spans until ``fraction`` of the (frame, joint) 2D entries are hidden.

    Events (a group from :func:`occlusion_groups`, a span length drawn uniformly from ``span``
    frames, a uniform start) are added until the hidden count reaches ``round(fraction * T * N)``;
    the last event is shortened so the count ends within one group size of the target (overlaps make
    an exact count impossible for groups). The fraction counts what this call hides (entries already
    missing in the input may be hidden again). Hidden entries get conf 0 and coordinates 0 in
    ``kp2d`` and ``kp2d_px``; 3D targets and ``valid`` are untouched.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"occlude: fraction must be in [0, 1], got {fraction}")
    out = _copy(clip)
    t, n = out["conf"].shape
    groups = occlusion_groups(skeleton, mode)  # (G, N)
    reachable = groups.any(0).sum() / n  # 'limbs' and 'side' never hide the torso and head
    if fraction > reachable + 1e-9:
        raise ValueError(f"occlude: mode {mode!r} can hide at most {reachable:.3f} of the entries "
                         f"(joints outside every group stay visible), asked for {fraction}")
    mask = occlusion_mask(t, n, rng, int(round(fraction * t * n)), groups, span)
    out["conf"][mask] = 0.0
    out["kp2d"][mask] = 0.0
    out["kp2d_px"][mask] = 0.0
    return out


# ---- temporal resampling -----------------------------------------------------------------------
def _interpolate(clip: dict, times: np.ndarray) -> dict:
    """The clip sampled at fractional frame times (M,) in [0, T-1], by linear interpolation.

    2D, 3D and root interpolate linearly; a joint's confidence is the smaller of its two neighbours
    (a joint missing on either side stays missing, with coordinates 0: interpolating towards a
    missing joint's zeros would invent a position); ``valid`` needs both neighbours valid. At integer
    times the frame is copied exactly.
    """
    t = _length(clip)
    times = np.clip(np.asarray(times, np.float64), 0.0, t - 1)
    i0 = np.floor(times).astype(np.int64)
    frac = times - i0
    i1 = np.minimum(i0 + 1, t - 1)
    exact = frac == 0.0  # (M,)
    out = {}
    for key in ("kp2d", "kp2d_px", "pose3d", "root3d"):
        a = clip[key]
        w = frac.reshape((-1,) + (1,) * (a.ndim - 1)).astype(a.dtype)
        out[key] = a[i0] + w * (a[i1] - a[i0])
        out[key][exact] = a[i0[exact]]  # bit-identical where no interpolation is needed
    conf = np.where(exact[:, None], clip["conf"][i0], np.minimum(clip["conf"][i0], clip["conf"][i1]))
    missing = conf <= 0
    out["kp2d"][missing] = 0.0
    out["kp2d_px"][missing] = 0.0
    out["conf"] = conf.astype(clip["conf"].dtype)
    out["valid"] = np.where(exact, clip["valid"][i0], clip["valid"][i0] & clip["valid"][i1])
    for key, v in clip.items():  # non-frame entries (if any) pass through
        if key not in out:
            out[key] = np.array(v, copy=True)
    return out


def resample(clip: dict, factor: float) -> dict:
    """Play the clip ``factor`` times faster at the same frame rate: new frame i is time ``i * factor``.

    The output has ``floor((T - 1) / factor) + 1`` frames (every time that lies inside the clip):
    factor 2.0 keeps ``ceil(T / 2)`` frames and doubles the per-frame displacement; factor 0.5 nearly
    doubles the length (slow motion by interpolation). Factor 1.0 returns an exact copy.
    """
    if not factor > 0:
        raise ValueError(f"resample: factor must be > 0, got {factor}")
    if factor == 1.0:
        return _copy(clip)
    t = _length(clip)
    m = int(np.floor((t - 1) / factor + 1e-9)) + 1
    return _interpolate(clip, np.arange(m) * factor)


def drop_frames(clip: dict, rng: np.random.Generator, rate: float) -> dict:
    """Remove each frame independently with probability ``rate`` (irregular gaps), from input and
    targets alike: the kept frames play back-to-back, so the motion jumps where frames are missing.
    The first frame is always kept, so a clip never becomes empty."""
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"drop_frames: rate must be in [0, 1), got {rate}")
    keep = rng.random(_length(clip)) >= rate
    keep[0] = True
    return _take(clip, np.flatnonzero(keep))


def jitter_timestamps(clip: dict, rng: np.random.Generator, sigma: float) -> dict:
    """Sample frame i at time ``i + e_i``, ``e_i ~ N(0, sigma)`` frames, sorted (time never runs
    backwards) and clipped to the clip, then interpolate: irregular sampling at the same length."""
    if sigma < 0:
        raise ValueError(f"jitter_timestamps: sigma must be >= 0, got {sigma}")
    t = _length(clip)
    if sigma == 0:
        return _copy(clip)
    times = np.sort(np.arange(t) + rng.normal(0.0, sigma, size=t))
    return _interpolate(clip, times)


def add_noise(clip: dict, rng: np.random.Generator, sigma_px: float, width: float, height: float,
              conf_scale_px: float = 20.0, difficulty_sd: float = 0.5) -> dict:
    """Gaussian 2D noise of about ``sigma_px`` pixels per coordinate on the visible joints.

    ``kp2d`` is recomputed from the noisy pixels with the clip's image size (``width``, ``height``).
    A noisier detector is also less sure, but it cannot know the error it makes: each visible joint
    of each frame has a latent difficulty ``s = exp(difficulty_sd * xi)``, its noise has std
    ``sigma_px * s`` per axis, and its confidence is multiplied by the detector's expectation
    ``exp(-(2 (sigma_px s)^2) / (2 conf_scale_px^2))``, a function of ``s``, never of the drawn
    error. Missing joints stay missing (0, conf 0).
    """
    if sigma_px < 0:
        raise ValueError(f"add_noise: sigma_px must be >= 0, got {sigma_px}")
    out = _copy(clip)
    if sigma_px == 0:
        return out
    vis = out["conf"] > 0  # (T, N)
    sigma = sigma_px * np.exp(difficulty_sd * rng.standard_normal(vis.shape))       # (T, N)
    e = rng.standard_normal(out["kp2d_px"].shape) * sigma[..., None]               # (T, N, 2)
    px = out["kp2d_px"].astype(np.float64) + e
    out["kp2d_px"] = np.where(vis[..., None], px, 0.0).astype(clip["kp2d_px"].dtype)
    out["kp2d"] = np.where(vis[..., None], normalize_screen(px, width, height), 0.0).astype(clip["kp2d"].dtype)
    expected = np.exp(-(2.0 * sigma ** 2) / (2 * conf_scale_px ** 2))
    out["conf"] = (out["conf"] * np.where(vis, expected, 1.0)).astype(clip["conf"].dtype)
    return out


# ---- registry and whole splits -----------------------------------------------------------------
def _occlusion(clip, rng, strength, *, occlusion_mode="joints", occlusion_span=(5, 30), skeleton=H36M17, **_):
    return occlude(clip, rng, strength, mode=occlusion_mode, span=tuple(occlusion_span), skeleton=skeleton)


def _speed(clip, rng, strength, **_):
    return resample(clip, strength)


def _drop(clip, rng, strength, **_):
    return drop_frames(clip, rng, strength)


def _jitter(clip, rng, strength, **_):
    return jitter_timestamps(clip, rng, strength)


def _noise(clip, rng, strength, *, width, height, conf_scale_px=20.0, **_):
    return add_noise(clip, rng, strength, width, height, conf_scale_px)


# perturbation kind -> f(clip, rng, strength, **context). Strength: occlusion = hidden fraction, speed = factor
# (1.0 = unchanged), drop = frame drop rate, jitter = timestamp sigma in frames, noise = sigma in pixels.
# context: width, height (pixels), fps, skeleton, and the options occlusion_mode, occlusion_span,
# conf_scale_px; a function ignores what it does not use.
PERTURBATIONS: dict[str, Callable[..., dict]] = {
    "occlusion": _occlusion,
    "speed": _speed,
    "drop": _drop,
    "jitter": _jitter,
    "noise": _noise,
}

#: What a suite entry of ``evaluate.suites`` may set for each kind, besides ``kind`` and
#: ``strengths``: option name -> (keyword of :func:`perturb_sequences`, default). Suites of one kind
#: differ only by these (e.g. ``occlusion`` with mode limbs, ``occlusion-side`` with mode side).
SUITE_OPTIONS: dict[str, dict[str, tuple[str, Any]]] = {
    "occlusion": {"mode": ("occlusion_mode", "joints"), "span": ("occlusion_span", [5, 30])},
    "speed": {},
    "drop": {},
    "jitter": {},
    "noise": {"conf_scale_px": ("conf_scale_px", 20.0)},
}


def perturb_sequences(split: PoseSequences, kind: str, strength: float, seed: int, **options) -> PoseSequences:
    """Apply perturbation ``kind`` at ``strength`` to every sequence of ``split``; a new, validated split.

    Sequence ``s`` draws from ``numpy.random.default_rng([seed, s])``, so a sequence's perturbation
    does not depend on the others. Per-sequence fields are kept (fps unchanged: a speed perturbation
    is the same clip played faster); ``meta["perturbation"]`` records kind, strength, seed and options.
    ``options`` go to the function (e.g. ``occlusion_mode="limbs"``); the image size and fps come
    from the split.
    """
    if kind not in PERTURBATIONS:
        raise ValueError(f"unknown perturbation {kind!r}; known: {sorted(PERTURBATIONS)}")
    fn = PERTURBATIONS[kind]
    skeleton = get_skeleton(split.meta.get("skeleton", H36M17.name))
    clips = []
    for s in range(split.num_sequences):
        w, h = (float(v) for v in split.image_size[s])
        context = {"width": w, "height": h, "fps": float(split.fps[s]), "skeleton": skeleton, **options}
        clips.append(fn(sequence_clip(split, s), np.random.default_rng([seed, s]), strength, **context))
    lengths = np.array([_length(c) for c in clips], np.int64)
    out = {}
    for f in fields(split):
        if f.name in CLIP_KEYS:
            out[f.name] = np.concatenate([c[f.name] for c in clips], axis=0).astype(getattr(split, f.name).dtype)
        elif f.name == "starts":
            out[f.name] = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        elif f.name == "meta":
            record = {"kind": kind, "strength": float(strength), "seed": int(seed),
                      **{k: (list(v) if isinstance(v, tuple) else v) for k, v in options.items()
                         if isinstance(v, (str, int, float, bool, list, tuple))}}
            prior = split.meta.get("perturbation")  # perturbations can stack: keep them in order
            history = [] if prior is None else (prior if isinstance(prior, list) else [prior])
            out[f.name] = {**split.meta, "perturbation": record if not history else history + [record]}
        else:
            out[f.name] = np.array(getattr(split, f.name), copy=True)
    return PoseSequences(**out).validate(f"{kind} perturbation (strength {strength})")
