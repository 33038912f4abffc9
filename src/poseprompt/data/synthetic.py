"""The embedded default data source: a synthetic articulated body, made offline from a seed.

This is *synthetic* data. It exists so that a new user with no dataset can run the whole pipeline
(and the tests can train end to end) in minutes on a CPU; it is not a substitute for Human3.6M in
any reported number. What it does model:

* **Body.** The 17-joint Human3.6M skeleton (:data:`~poseprompt.core.skeleton.H36M17`) with adult bone
  lengths in metres (pelvis-hip 0.13, thigh 0.44, shin 0.44, pelvis-spine 0.23, spine-thorax 0.25,
  thorax-neck 0.10, neck-head top 0.12, thorax-shoulder 0.15, upper arm 0.28, forearm 0.25). Each
  subject gets a height and per-segment proportions (legs, arms, torso, head, hip and shoulder
  width). Poses come from forward kinematics of joint angles, so bone lengths are exactly constant
  within a sequence.
* **Joint angles** (degrees, per frame), one rotation per bone in its parent's frame, composed as
  ``R_y(flex) R_x(side) R_z(twist)`` in a body frame x forward, y left, z up. Every angle is
  clipped to :data:`ANGLE_LIMITS` after the per-sequence variation is added: knees and elbows
  bend one way only (0 to 150 degrees), hips, shoulders, back and neck stay in anatomical ranges.
* **Motions** (:data:`MOTIONS`): walk, run, jump, squat, wave, box, kick, turn, sit down, each a
  small function of time with its own kinematics (gait cycles with opposite arm swing, a
  crouch-flight-landing jump, squat and sit-to-stand cycles, alternating punches, a chambered front
  kick, waving with a raised arm, stepping on the spot while the heading turns). The speed factor
  scales the cadence and the walking/running speed; every sequence draws its own amplitudes,
  phase, side (which arm waves, which leg kicks) and a smooth low-frequency wobble on all angles.
  Walking and running follow circular arcs of 1.5-2.5 m radius (a capture volume like Human3.6M's);
  the other motions stay in place with the feet pinned; the lowest ankle stays 8 cm (scaled with
  the body) above the ground z = 0 except in a jump's flight. World frame: z up, metres. The feet
  of walking and running may slide a little: the root moves at the gait's nominal speed rather
  than being driven by the stance foot.
* **Cameras and 2D.** Several Human3.6M-like virtual cameras per sequence
  (:func:`~poseprompt.data.camera.sample_cameras`), exact projection, then a detector model
  (:func:`~poseprompt.data.camera.detection_noise`): jitter, outliers, error-dependent
  confidences, dropouts (confidence 0, coordinates 0).
* **Splits.** ``train`` and ``test`` use disjoint subjects drawn from the same distribution.
  Cross-domain test sets use further held-out subjects, one kind of shift each (:data:`SHIFTS`):
  ``camera`` (cameras above the training rig, closer, wider lens), ``body`` (bodies outside the
  training range of height and proportions), ``noise`` (a much noisier detector). Each kind comes at
  the strengths ``shift_strengths`` s in (0, 1], as the set ``shift_<kind>-<s>`` (``shift_camera-0.25``,
  ``shift_camera-1``): s = 1 is the full shift, a smaller s interpolates every parameter from the
  training distribution towards it (:func:`shift_parameters`), so that models still work on the
  mild sets and the strengths trace how fast each one degrades. The sets of one kind share their
  subjects and random generators (same motions, cameras at the same quantiles of their ranges).

Labels: ``action`` is the motion word ("walk", "sit down"), ``style`` is "" (no style is
modelled), ``subject`` is "SYN01", "SYN02", ...; the sequence name carries the speed factor
(``SYN03_sit-down_x1.4_0``). Everything is a function of ``(cfg, seed)``: each subject's body
and each sequence draw from their own ``numpy`` generator seeded by the seed and their names,
so splits are independent and the same configuration gives bit-identical arrays.

Configuration (the ``synthetic`` section of the data config; unknown keys are an error):

======================  ==========================  ============================================
key                     default                     meaning
======================  ==========================  ============================================
subjects_train          5                           training subjects (SYN01, ...)
subjects_test           1                           test subjects, disjoint from training
shift_subjects          1                           held-out subjects per kind of shift (0: no shift sets)
motions                 all of :data:`MOTIONS`      motion kinds to generate
speeds                  [0.7, 1.0, 1.4]             speed factors (cadence and travel speed)
sequences_per_combo     1                           sequences per subject, motion and speed
frames_per_sequence     120                         frames per sequence (2.4 s at 50 fps)
fps                     50.0                        frame rate
cameras                 2                           virtual cameras per sequence
height_m                [1.55, 1.90]                range of subject heights (uniform), metres
proportion_sd           0.03                        relative std of segment proportions
camera_distance         [3.5, 6.0]                  camera distance from the subject, metres
camera_height           [1.0, 2.0]                  camera centre above the ground, metres
focal                   [1130.0, 1160.0]            focal length range, pixels
noise.jitter_px         3.0                         2D jitter std per axis, pixels
noise.outlier_rate      0.01                        fraction of joints thrown off
noise.outlier_px        40.0                        typical outlier offset, pixels
noise.dropout_rate      0.005                       fraction of joints missing (conf 0)
noise.conf_scale_px     10.0                        expected rms error at which confidence is 0.61
shifts                  [camera, body, noise]       which kinds of shifted test sets to build
shift_strengths         [0.25, 0.5, 1.0]            strengths s in (0, 1] of each kind (1 = full shift)
======================  ==========================  ============================================

With the defaults: train 32,400 frames (5 subjects x 27 sequences x 2 cameras, of which the
validation split takes one subject), test 6,480, each of the nine shift sets (3 kinds x 3
strengths) 6,480 (about 97k frames in all); building everything takes about 1-3 s on a 2-core CPU.

The default strengths were chosen by measurement (README, "Data"): at 0.25 and 0.5 a model
trained on the default still works on every kind (under half of the mean-pose floor), s = 1 is
the hard shift.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from poseprompt.config.sections import Options
from poseprompt.core.skeleton import H36M17
from poseprompt.data.camera import (VirtualCamera, axis_rotation, detection_noise, normalize_screen, project,
                                    sample_cameras)
from poseprompt.data.format import PoseSequences

MOTIONS = ("walk", "run", "jump", "squat", "wave", "box", "kick", "turn", "sit down")

@dataclass(frozen=True)
class DetectorNoise(Options):
    """The detector model of the 2D input (``noise`` of the synthetic and bvh sources): Gaussian
    jitter, outliers, dropped joints, and the confidence that follows the error's scale."""
    SECTION: ClassVar[str] = "data.<source>.noise"
    jitter_px: float = 3.0
    outlier_rate: float = 0.01
    outlier_px: float = 40.0
    dropout_rate: float = 0.005
    conf_scale_px: float = 10.0


@dataclass(frozen=True)
class SyntheticOptions(Options):
    """``data.synthetic``: the embedded default source (the defaults stated once, here)."""
    SECTION: ClassVar[str] = "data.synthetic"
    subjects_train: int = 5
    subjects_test: int = 1
    shift_subjects: int = 1
    motions: tuple[str, ...] = MOTIONS
    speeds: tuple[float, ...] = (0.7, 1.0, 1.4)
    sequences_per_combo: int = 1
    frames_per_sequence: int = 120
    fps: float = 50.0
    cameras: int = 2
    height_m: tuple[float, float] = (1.55, 1.90)
    proportion_sd: float = 0.03
    camera_distance: tuple[float, float] = (3.5, 6.0)
    camera_height: tuple[float, float] = (1.0, 2.0)
    focal: tuple[float, float] = (1130.0, 1160.0)
    noise: DetectorNoise = field(default_factory=DetectorNoise)
    shifts: tuple[str, ...] = ("camera", "body", "noise")
    shift_strengths: tuple[float, ...] = (0.25, 0.5, 1.0)


#: the defaults as a plain mapping (derived from :class:`SyntheticOptions`)
DEFAULTS = SyntheticOptions().to_dict()

# Cross-domain test sets: what each one changes relative to the training distribution, at full
# strength (s = 1). A set at strength s in (0, 1) interpolates from the training distribution to
# these values (shift_parameters).
SHIFTS = {
    # cameras 2.8-3.6 m up (looking down 25-50 degrees), closer, with a wide-angle lens
    "camera": {"camera_height": [2.8, 3.6], "camera_distance": [2.5, 3.5], "focal": [700.0, 900.0]},
    # bodies outside the training range: a very tall one with long limbs, a short one with short
    # limbs and a long torso (alternating over the shift subjects)
    "body": {"bodies": [
        {"height": 2.02, "leg": 1.10, "arm": 1.12, "torso": 0.94, "head": 1.0, "hip": 1.0, "shoulder": 1.05},
        {"height": 1.42, "leg": 0.88, "arm": 0.88, "torso": 1.08, "head": 1.08, "hip": 1.15, "shoulder": 1.10},
    ]},
    # a detector three times noisier, with many more outliers and dropouts
    "noise": {"noise": {"jitter_px": 9.0, "outlier_rate": 0.06, "outlier_px": 60.0, "dropout_rate": 0.04,
                        "conf_scale_px": 10.0}},
}

def shift_name(kind: str, strength: float) -> str:
    """The split name of shift ``kind`` at ``strength``: ``shift_camera-0.25``, ``shift_camera-1``."""
    return f"shift_{kind}-{float(strength):g}"


def _towards(train, shifted, s: float):
    """``(1 - s) train + s shifted``, element-wise: exactly ``train`` at s = 0, ``shifted`` at s = 1."""
    return [float((1.0 - s) * a + s * b) for a, b in zip(train, shifted)]


def shift_parameters(kind: str, strength: float, cfg: dict) -> dict:
    """What the set of shift ``kind`` at ``strength`` s in (0, 1] changes (the form of :data:`SHIFTS`),
    interpolated from the training distribution of ``cfg`` (a resolved config) to the full shift:

    * ``camera``: each end of the camera height, distance and focal-length ranges;
    * ``body``: each shifted body's height from the training mean height (middle of ``height_m``)
      and its segment factors from 1 (the training mean proportions);
    * ``noise``: every detector parameter from the training detector (``noise``).

    s = 1 gives :data:`SHIFTS` exactly; a small s is close to the training distribution."""
    s = float(strength)
    if not 0.0 < s <= 1.0:
        raise ValueError(f"synthetic config: shift_strengths must lie in (0, 1], got {strength!r}")
    full = SHIFTS[kind]
    if kind == "camera":
        return {k: _towards(cfg[k], full[k], s) for k in ("camera_height", "camera_distance", "focal")}
    if kind == "body":
        mean_height = float(np.mean(cfg["height_m"]))
        return {"bodies": [{k: (_towards([mean_height], [v], s)[0] if k == "height" else _towards([1.0], [v], s)[0])
                            for k, v in body.items()} for body in full["bodies"]]}
    if kind == "noise":
        train, shifted = cfg["noise"], full["noise"]
        return {"noise": {k: _towards([train[k]], [shifted.get(k, train[k])], s)[0] for k in train}}
    raise ValueError(f"synthetic config: unknown shift {kind!r}; known: {sorted(SHIFTS)}")


# ---- the body ------------------------------------------------------------------------------

# Rest pose (standing, arms hanging): for each non-root joint, the direction of the bone from its
# parent in the parent's rest frame (x forward, y left, z up) and its length in metres.
_REST_BONES = {
    1: ((0.0, -1.0, -0.1), 0.13),   # right hip
    2: ((0.0, 0.0, -1.0), 0.44),    # right knee (thigh)
    3: ((0.0, 0.0, -1.0), 0.44),    # right ankle (shin)
    4: ((0.0, 1.0, -0.1), 0.13),    # left hip
    5: ((0.0, 0.0, -1.0), 0.44),
    6: ((0.0, 0.0, -1.0), 0.44),
    7: ((0.0, 0.0, 1.0), 0.23),     # spine
    8: ((0.0, 0.0, 1.0), 0.25),     # thorax
    9: ((0.25, 0.0, 1.0), 0.10),    # neck/nose: a little in front of the thorax
    10: ((-0.05, 0.0, 1.0), 0.12),  # head top
    11: ((-0.05, 1.0, -0.12), 0.15),  # left shoulder
    12: ((0.0, 0.0, -1.0), 0.28),   # left elbow (upper arm)
    13: ((0.0, 0.0, -1.0), 0.25),   # left wrist (forearm)
    14: ((-0.05, -1.0, -0.12), 0.15),
    15: ((0.0, 0.0, -1.0), 0.28),
    16: ((0.0, 0.0, -1.0), 0.25),
}
_SEGMENTS = {"leg": (2, 3, 5, 6), "arm": (12, 13, 15, 16), "torso": (7, 8), "head": (9, 10),
             "hip": (1, 4), "shoulder": (11, 14)}
ANKLE_HEIGHT = 0.08  # ankle joint above the sole, metres, for the reference body (1.67 m tall)

# Per bone (child joint): angle-name prefix, the angles of its rotation about (y, x, z) of the
# parent frame, and the signs that make positive angles mean the anatomical direction (flexion
# forward, abduction away from the midline, internal rotation, back/neck bending to the left).
_DOF = {
    2: ("r_hip", ("flex", "abd", "rot"), (-1, -1, 1)),
    3: ("r_knee", ("flex",), (1,)),          # positive flexion moves the shin backwards
    5: ("l_hip", ("flex", "abd", "rot"), (-1, 1, -1)),
    6: ("l_knee", ("flex",), (1,)),
    7: ("lback", ("flex", "side", "rot"), (1, -1, 1)),
    8: ("uback", ("flex", "side", "rot"), (1, -1, 1)),
    9: ("neck", ("flex", "side", "rot"), (1, -1, 1)),
    10: ("head", ("flex", "side", "rot"), (1, -1, 1)),
    12: ("l_sh", ("flex", "abd", "rot"), (-1, 1, -1)),
    13: ("l_elbow", ("flex",), (-1,)),       # positive flexion moves the forearm forwards
    15: ("r_sh", ("flex", "abd", "rot"), (-1, -1, 1)),
    16: ("r_elbow", ("flex",), (-1,)),
}

# Anatomical ranges (degrees). The root's pitch/roll tilt the whole body; its yaw is free.
ANGLE_LIMITS = {"root_pitch": (-20.0, 45.0), "root_roll": (-20.0, 20.0)}
for _s in ("r", "l"):
    ANGLE_LIMITS.update({
        f"{_s}_hip_flex": (-30.0, 125.0), f"{_s}_hip_abd": (-25.0, 45.0), f"{_s}_hip_rot": (-40.0, 45.0),
        f"{_s}_knee_flex": (0.0, 150.0),
        f"{_s}_sh_flex": (-60.0, 180.0), f"{_s}_sh_abd": (-10.0, 170.0), f"{_s}_sh_rot": (-90.0, 90.0),
        f"{_s}_elbow_flex": (0.0, 150.0),
    })
for _p, _flex in (("lback", (-20.0, 50.0)), ("uback", (-20.0, 40.0)), ("neck", (-40.0, 50.0)),
                  ("head", (-30.0, 30.0))):
    ANGLE_LIMITS.update({f"{_p}_flex": _flex, f"{_p}_side": (-25.0, 25.0), f"{_p}_rot": (-40.0, 40.0)})


@dataclass(frozen=True)
class Body:
    """One subject: bone offsets (17, 3) in the rest frame, metres, and the ankle height."""

    subject: str
    offsets: np.ndarray
    ankle_height: float
    height: float

    @property
    def leg_length(self) -> float:
        return float(np.linalg.norm(self.offsets[2]) + np.linalg.norm(self.offsets[3]))


def _rest_offsets(factors: dict[str, float]) -> np.ndarray:
    off = np.zeros((H36M17.num_joints, 3))
    for j, (d, length) in _REST_BONES.items():
        d = np.asarray(d) / np.linalg.norm(d)
        off[j] = d * length
    for seg, joints in _SEGMENTS.items():
        off[list(joints)] *= factors.get(seg, 1.0)
    return off


def _standing_height(offsets: np.ndarray, ankle_height: float) -> float:
    rest = np.zeros((H36M17.num_joints, 3))
    for j in range(1, H36M17.num_joints):
        rest[j] = rest[H36M17.parents[j]] + offsets[j]
    return float(rest[:, 2].max() - rest[[3, 6], 2].min() + ankle_height)


def make_body(subject: str, height: float, factors: dict[str, float]) -> Body:
    """A body with the given standing height (sole to head top) and segment factors."""
    off = _rest_offsets(factors)
    scale = height / _standing_height(off, ANKLE_HEIGHT)
    return Body(subject, off * scale, ANKLE_HEIGHT * scale, height)


def sample_body(rng: np.random.Generator, subject: str, height_m=(1.55, 1.90), proportion_sd: float = 0.03) -> Body:
    """A subject from the training distribution: uniform height, segment factors N(1, sd) within 2 sd."""
    factors = {seg: float(np.clip(rng.normal(1.0, proportion_sd), 1 - 2 * proportion_sd, 1 + 2 * proportion_sd))
               for seg in _SEGMENTS}
    return make_body(subject, float(rng.uniform(*height_m)), factors)


# ---- forward kinematics --------------------------------------------------------------------

def forward_kinematics(angles: dict[str, np.ndarray], yaw_deg: np.ndarray, body: Body) -> np.ndarray:
    """Joint positions (F, 17, 3) relative to the root (root at the origin), world axes.

    ``angles`` maps names of :data:`ANGLE_LIMITS` to (F,) arrays in degrees (absent = 0);
    ``yaw_deg`` (F,) is the heading (rotation about the world z axis).
    """
    F = len(yaw_deg)
    zero = np.zeros(F)
    get = lambda k: angles.get(k, zero)  # noqa: E731
    glob = [None] * H36M17.num_joints    # world rotation of each joint's frame, (F, 3, 3)
    glob[0] = axis_rotation(2, yaw_deg) @ axis_rotation(1, get("root_pitch")) @ axis_rotation(0, get("root_roll"))
    pos = np.zeros((F, H36M17.num_joints, 3))
    for j in range(1, H36M17.num_joints):
        p = H36M17.parents[j]
        g = glob[p]
        if j in _DOF:  # local rotation of the bone p -> j: R_y(flex) R_x(side) R_z(twist)
            prefix, names, signs = _DOF[j]
            local = None
            for axis, name, sign in zip((1, 0, 2), names, signs):
                r = axis_rotation(axis, sign * get(f"{prefix}_{name}"))
                local = r if local is None else local @ r
            g = g @ local
        glob[j] = g
        pos[:, j] = pos[:, p] + g @ body.offsets[j]
    return pos


# ---- motions -------------------------------------------------------------------------------

@dataclass
class Motion:
    """Joint angles over time plus what the root does."""

    angles: dict[str, np.ndarray]        # degrees, (F,) each
    yaw: np.ndarray                      # heading, degrees, (F,)
    root_xy: np.ndarray | None = None    # prescribed path (F, 2); None: in place, feet pinned
    right_support: np.ndarray | float = 0.5  # weight of the right ankle in the pinned foot point
    lift: np.ndarray | float = 0.0       # root height above ground contact (flight), metres


def _u(rng, lo=0.85, hi=1.15):
    return float(rng.uniform(lo, hi))


def _bump(c, centre, width):
    """Gaussian bump on a cycle coordinate ``c`` in [0, 1) (wraps around)."""
    d = (c - centre + 0.5) % 1.0 - 0.5
    return np.exp(-(d / width) ** 2)


def _wrap(x):
    """Angles in radians wrapped to [-pi, pi)."""
    return (x + np.pi) % (2 * np.pi) - np.pi


def _smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _circle_path(t, v, rng):
    """Walk/run along a circle of radius 1.5-2.5 m at ``v`` m/s: path (F, 2), heading (F,) deg."""
    radius, turn = rng.uniform(1.5, 2.5), rng.choice([-1.0, 1.0])
    theta = rng.uniform(0, 2 * np.pi) + turn * v * t / radius
    xy = radius * np.stack([np.cos(theta), np.sin(theta)], -1)
    yaw = np.rad2deg(theta + turn * np.pi / 2)
    lean = -turn * min(np.rad2deg(np.arctan(v * v / (9.81 * radius))) / 2, 12.0)  # into the turn
    return xy, yaw, lean


def _gait(t, speed, rng, body, run: bool) -> Motion:
    f = (1.4 if run else 0.95) * speed * _u(rng, 0.92, 1.08)  # stride frequency, Hz
    phi = 2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)
    hip_amp, knee_amp, arm_amp = (38, 85, 35) if run else (24, 55, 16)
    hip_amp, knee_amp, arm_amp = hip_amp * _u(rng), knee_amp * _u(rng), arm_amp * _u(rng, 0.7, 1.3)
    a = {}
    for side, ph in (("r", phi), ("l", phi + np.pi)):
        # ph = pi/2 is heel strike (hip flexion at its peak), ph = -pi/2 the hip's peak extension
        # just before toe-off; the knee peaks in mid-swing (ph ~ -0.2, about 70% of the cycle
        # as in clinical gait curves), with a smaller flexion while loading (ph ~ 2.5, larger
        # when running)
        a[f"{side}_hip_flex"] = (18 if run else 8) + hip_amp * np.sin(ph)
        loading = np.exp(-(_wrap(ph - 2.5) / 0.5) ** 2)
        a[f"{side}_knee_flex"] = 5 + knee_amp * ((1 + np.cos(ph + 0.2)) / 2) ** 3 + (25 if run else 10) * loading
        a[f"{side}_hip_abd"] = 3 + 2 * np.cos(ph)
        opp = ph + np.pi  # the arm swings with the opposite leg
        a[f"{side}_sh_flex"] = (5 if run else 0) + arm_amp * np.sin(opp)
        a[f"{side}_sh_abd"] = 8 + (8 if run else 0)
        a[f"{side}_elbow_flex"] = (85 if run else 15) + (15 if run else 8) * (1 + np.sin(opp)) / 2
    a["lback_rot"] = 5 * np.sin(phi)
    a["uback_rot"] = -7 * np.sin(phi)  # the thorax counter-rotates against the pelvis
    a["root_roll"] = 3 * np.sin(phi)
    a["lback_flex"] = np.full_like(t, (10 if run else 3) * _u(rng, 0.5, 1.5))
    stride = (2.4 if run else 1.6) * body.leg_length  # metres per stride (two steps)
    xy, yaw, lean = _circle_path(t, stride * f, rng)
    a["root_roll"] = a["root_roll"] + lean
    a["root_pitch"] = np.full_like(t, 6.0 if run else 0.0)
    lift = 0.05 * _u(rng) * np.clip(np.sin(2 * phi - 0.4), 0, None) if run else 0.0  # flight phases
    return Motion(a, yaw, root_xy=xy, lift=lift)


def _walk(t, speed, rng, body):
    return _gait(t, speed, rng, body, run=False)


def _run(t, speed, rng, body):
    return _gait(t, speed, rng, body, run=True)


def _jump(t, speed, rng, body):
    """Repeated vertical jumps: crouch with arms back, take off swinging the arms up, fly, land."""
    c = (t * speed / (1.3 * _u(rng, 0.9, 1.1)) + rng.uniform()) % 1.0
    crouch = _bump(c, 0.25, 0.10) + 0.8 * _bump(c, 0.85, 0.07)
    u = np.clip((c - 0.45) / 0.25, 0, 1)  # flight from c = 0.45 to 0.70
    flight = 4 * u * (1 - u)
    depth = _u(rng)
    a = {}
    for s in ("r", "l"):
        a[f"{s}_hip_flex"] = 70 * depth * crouch + 15 * flight
        a[f"{s}_knee_flex"] = 5 + 100 * depth * crouch + 25 * flight
        a[f"{s}_hip_abd"] = np.full_like(t, 6.0)
        a[f"{s}_sh_flex"] = -40 * _bump(c, 0.25, 0.1) + 150 * _u(rng) * _bump(c, 0.52, 0.1)
        a[f"{s}_sh_abd"] = np.full_like(t, 10.0)
        a[f"{s}_elbow_flex"] = 20 + 20 * crouch
    a["lback_flex"] = 30 * depth * crouch
    a["root_pitch"] = 15 * depth * crouch
    return Motion(a, np.full_like(t, rng.uniform(0, 360)), lift=0.3 * _u(rng, 0.6, 1.2) * flight)


def _squat(t, speed, rng, body):
    """Squat down and up, arms reaching forward as a counterweight."""
    c = t * speed / (2.4 * _u(rng, 0.9, 1.1)) + rng.uniform()
    d = _u(rng, 0.7, 1.1) * (1 - np.cos(2 * np.pi * c)) / 2
    a = {}
    for s in ("r", "l"):
        a[f"{s}_hip_flex"] = 105 * d
        a[f"{s}_knee_flex"] = 3 + 125 * d
        a[f"{s}_hip_abd"] = np.full_like(t, 12.0)
        a[f"{s}_hip_rot"] = np.full_like(t, -10.0)  # toes out
        a[f"{s}_sh_flex"] = 85 * d
        a[f"{s}_elbow_flex"] = 10 + 10 * d
    a["lback_flex"] = 20 * d
    a["root_pitch"] = 15 * d
    return Motion(a, np.full_like(t, rng.uniform(0, 360)))


def _wave(t, speed, rng, body):
    """Raise one arm (sometimes both) to the side, forearm waving in the frontal plane."""
    sides = ["r", "l"] if rng.uniform() < 0.3 else [str(rng.choice(["r", "l"]))]
    osc = np.sin(2 * np.pi * 1.5 * speed * _u(rng) * t + rng.uniform(0, 2 * np.pi))
    a = {}
    for s in ("r", "l"):
        if s in sides:
            a[f"{s}_sh_abd"] = np.full_like(t, 130 * _u(rng, 0.9, 1.1))
            a[f"{s}_sh_flex"] = np.full_like(t, 20.0)
            a[f"{s}_sh_rot"] = np.full_like(t, -80.0)  # external rotation: the forearm points up
            a[f"{s}_elbow_flex"] = 45 + 30 * _u(rng) * osc
        else:
            a[f"{s}_sh_abd"] = np.full_like(t, 6.0)
            a[f"{s}_elbow_flex"] = np.full_like(t, 10.0)
        a[f"{s}_knee_flex"] = np.full_like(t, 4.0)
        a[f"{s}_hip_abd"] = np.full_like(t, 4.0)
    a["lback_side"] = 4 * osc * (1 if sides == ["r"] else -1 if sides == ["l"] else 0)
    return Motion(a, np.full_like(t, rng.uniform(0, 360)))


def _guard(t):
    a = {}
    for s in ("r", "l"):
        a[f"{s}_sh_flex"] = np.full_like(t, 45.0)
        a[f"{s}_sh_abd"] = np.full_like(t, 25.0)
        a[f"{s}_sh_rot"] = np.full_like(t, 40.0)
        a[f"{s}_elbow_flex"] = np.full_like(t, 120.0)
    return a


def _box(t, speed, rng, body):
    """Boxing guard with alternating straight punches, the trunk turning into each punch."""
    c = (t * speed / (0.9 * _u(rng, 0.9, 1.1)) + rng.uniform()) % 1.0
    a = _guard(t)
    punch = {"r": _bump(c, 0.25, 0.08), "l": _bump(c, 0.75, 0.08)}
    for s in ("r", "l"):
        p = punch[s] * _u(rng)
        a[f"{s}_sh_flex"] = a[f"{s}_sh_flex"] + 45 * p
        a[f"{s}_sh_abd"] = a[f"{s}_sh_abd"] - 20 * p
        a[f"{s}_sh_rot"] = a[f"{s}_sh_rot"] - 40 * p
        a[f"{s}_elbow_flex"] = a[f"{s}_elbow_flex"] - 112 * p
        a[f"{s}_knee_flex"] = 20 + 5 * np.sin(4 * np.pi * c)
        a[f"{s}_hip_abd"] = np.full_like(t, 10.0)
    a["l_hip_flex"] = 30 + 0 * t  # left foot forward (orthodox stance)
    a["r_hip_flex"] = 5 + 0 * t
    a["uback_rot"] = 20 * (punch["r"] - punch["l"])  # a right punch turns the chest to the left
    a["lback_flex"] = np.full_like(t, 10.0)
    return Motion(a, np.full_like(t, rng.uniform(0, 360)))


def _kick(t, speed, rng, body):
    """Front kicks with one leg: chamber the knee, extend, retract, rest; arms in guard."""
    k = str(rng.choice(["r", "l"]))
    sup = "l" if k == "r" else "r"
    c = (t * speed / (1.6 * _u(rng, 0.9, 1.1)) + rng.uniform()) % 1.0
    u = np.clip(c / 0.6, 0, 1)
    lift = np.sin(np.pi * u) ** 2
    a = _guard(t)
    a[f"{k}_hip_flex"] = 85 * _u(rng) * lift
    a[f"{k}_knee_flex"] = np.clip(5 + 95 * lift - 90 * np.exp(-((u - 0.5) / 0.1) ** 2), 0, None)
    a[f"{sup}_knee_flex"] = 12 + 10 * lift
    a[f"{sup}_hip_flex"] = 5 + 5 * lift
    a["lback_flex"] = -12 * lift  # lean back to balance
    return Motion(a, np.full_like(t, rng.uniform(0, 360)), right_support=1.0 if sup == "r" else 0.0)


def _turn(t, speed, rng, body):
    """Turning on the spot, stepping; the head leads into the turn."""
    direction = rng.choice([-1.0, 1.0])
    yaw = rng.uniform(0, 360) + direction * 90 * speed * _u(rng, 0.8, 1.2) * t
    phi = 2 * np.pi * 0.9 * speed * t + rng.uniform(0, 2 * np.pi)
    a = {}
    for s, ph in (("r", phi), ("l", phi + np.pi)):
        a[f"{s}_hip_flex"] = 5 + 12 * np.sin(ph)
        a[f"{s}_knee_flex"] = 5 + 30 * ((1 + np.cos(ph + 0.2)) / 2) ** 3
        a[f"{s}_hip_abd"] = 5 + 3 * np.cos(ph)
        a[f"{s}_sh_abd"] = np.full_like(t, 10.0)
        a[f"{s}_sh_flex"] = 8 * np.sin(ph + np.pi)
        a[f"{s}_elbow_flex"] = np.full_like(t, 20.0)
    a["neck_rot"] = np.full_like(t, direction * 20.0)
    a["uback_rot"] = np.full_like(t, direction * 8.0)
    return Motion(a, yaw, root_xy=np.zeros((len(t), 2)))


def _sit_down(t, speed, rng, body):
    """Sit down on a (not modelled) chair, stay, stand up, stay: leaning forward to rise."""
    c = (t * speed / (3.2 * _u(rng, 0.9, 1.1)) + rng.uniform()) % 1.0
    s = _smoothstep((c - 0.15) / 0.2) - _smoothstep((c - 0.65) / 0.2)  # 0 standing, 1 seated
    lean = np.sin(np.pi * s)  # largest half-way through each transition
    a = {}
    for side in ("r", "l"):
        a[f"{side}_hip_flex"] = 90 * s
        a[f"{side}_knee_flex"] = 3 + 92 * s
        a[f"{side}_hip_abd"] = 5 + 5 * s
        a[f"{side}_sh_flex"] = 25 * s + 25 * lean
        a[f"{side}_elbow_flex"] = 15 + 45 * s
    a["lback_flex"] = 35 * _u(rng) * lean + 5 * s
    a["root_pitch"] = 15 * lean
    return Motion(a, np.full_like(t, rng.uniform(0, 360)))


_MOTION_FNS = {"walk": _walk, "run": _run, "jump": _jump, "squat": _squat, "wave": _wave, "box": _box,
               "kick": _kick, "turn": _turn, "sit down": _sit_down}


def _wobble(rng, t, count, amplitude_deg=2.0):
    """Smooth per-sequence variation of ``count`` angles: two random low-frequency sinusoids
    each, (count, F) degrees."""
    freq = rng.uniform(0.1, 0.8, (count, 2, 1))
    phase = rng.uniform(0, 2 * np.pi, (count, 2, 1))
    return amplitude_deg / np.sqrt(2) * np.sin(2 * np.pi * freq * t + phase).sum(1)


def simulate(motion: str, speed: float, body: Body, rng: np.random.Generator, frames: int,
             fps: float) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """World joints (F, 17, 3) in metres (z up) of one sequence, and its clipped joint angles."""
    t = np.arange(frames) / fps
    m = _MOTION_FNS[motion](t, speed, rng, body)
    wobble = _wobble(rng, t, len(ANGLE_LIMITS))  # rows in the fixed order of ANGLE_LIMITS
    angles = {name: np.clip(m.angles.get(name, 0.0) + wobble[k], lo, hi)
              for k, (name, (lo, hi)) in enumerate(ANGLE_LIMITS.items())}
    rel = forward_kinematics(angles, m.yaw, body)  # (F, 17, 3), root at the origin
    if m.root_xy is None:  # pin the feet: the root moves so that the support point stays put
        w = np.broadcast_to(m.right_support, t.shape)[:, None]
        foot = w * rel[:, 3, :2] + (1 - w) * rel[:, 6, :2]
        root_xy = foot.mean(0) - foot
    else:
        root_xy = m.root_xy
    root_z = body.ankle_height - rel[:, [3, 6], 2].min(1) + m.lift
    world = rel + np.concatenate([root_xy, root_z[:, None]], -1)[:, None, :]
    return world, angles


# ---- cameras, 2D and the processed format (shared with the BVH source) ------------------------

def render_views(world: np.ndarray, cameras: list[VirtualCamera], rng: np.random.Generator, noise: dict, *,
                 fps: float, subject: str, name: str, action: str, style: str = "",
                 root: int = 0) -> PoseSequences:
    """One sequence per camera of world joints (F, N, 3) in metres: exact 3D in each camera's
    frame, detector-like 2D. Missing joints have confidence 0 and coordinates 0 in both 2D arrays."""
    parts = []
    for i, cam in enumerate(cameras):
        xc = cam.to_camera(world)                    # (F, N, 3)
        if np.any(xc[..., 2] < 0.1):
            raise ValueError(f"{name}: camera {i} sees joints behind or at the camera")
        uv, conf = detection_noise(project(xc, cam.intrinsics), rng, **noise)  # (F, N, 2), (F, N)
        w, h = cam.image_size
        kp2d = normalize_screen(uv, w, h)
        kp2d[conf == 0] = 0.0
        F = len(world)
        parts.append(PoseSequences(
            kp2d=kp2d.astype(np.float32), kp2d_px=uv.astype(np.float32), conf=conf.astype(np.float32),
            pose3d=(xc - xc[:, root:root + 1]).astype(np.float32), root3d=xc[:, root].astype(np.float32),
            valid=np.ones(F, bool), starts=np.array([0, F], np.int64),
            subject=np.array([subject]), name=np.array([name]), action=np.array([action]),
            style=np.array([style]), camera=np.array([f"cam{i}"]), fps=np.array([fps], np.float32),
            intrinsics=cam.intrinsics[None].astype(np.float32),
            image_size=np.array([[w, h]], np.int32), meta={"skeleton": H36M17.name}))
    return PoseSequences.concatenate(parts)


def cameras_for(world: np.ndarray, rng: np.random.Generator, count: int, *, distance, height, focal,
                root: int = 0, margin_px: float = 10.0) -> list[VirtualCamera]:
    """Cameras around a clip (F, N, 3), aimed at the centre of the root's ground track at mean root
    height. The track's radius is added to the distance so the subject never comes closer than
    ``distance[0]``; a camera that would still lose joints out of the image (a long run seen from
    the end of the track) is moved back along its optical axis until all fit, ``margin_px`` inside
    the border, as a fixed camera framing the whole capture would be."""
    xy = world[:, root, :2]
    centre = (xy.min(0) + xy.max(0)) / 2
    extent = float(np.linalg.norm(xy - centre, axis=-1).max())
    target = np.array([centre[0], centre[1], world[:, root, 2].mean()])
    cams = sample_cameras(rng, count, target, distance=(distance[0] + extent, distance[1] + extent),
                          height=tuple(height), focal=tuple(focal))
    pts = world.reshape(-1, 3)
    out = []
    for cam in cams:
        w, h = cam.image_size
        for _ in range(200):  # 0.25 m steps: at most 50 m back
            xc = cam.to_camera(pts)
            if np.all(xc[:, 2] > 0.1):
                uv = xc[:, :2] / xc[:, 2:] * cam.intrinsics[:2] + cam.intrinsics[2:]
                if np.all((uv >= margin_px) & (uv <= np.array([w, h]) - margin_px)):
                    break
            cam = VirtualCamera(cam.rotation, cam.centre - 0.25 * cam.rotation[2], cam.intrinsics, cam.image_size)
        out.append(cam)
    return out


# ---- configuration and splits --------------------------------------------------------------

def resolve_config(cfg: dict | None) -> dict:
    """Defaults updated with ``cfg``; unknown keys and bad values raise ``ValueError``."""
    out = SyntheticOptions.from_dict(cfg).to_dict()
    for k in ("subjects_train", "subjects_test", "shift_subjects", "sequences_per_combo", "cameras"):
        if not isinstance(out[k], int) or out[k] < (0 if k == "shift_subjects" else 1):
            raise ValueError(f"synthetic config: {k} must be a positive integer, got {out[k]!r}")
    if not isinstance(out["frames_per_sequence"], int) or out["frames_per_sequence"] < 2:
        raise ValueError(f"synthetic config: frames_per_sequence must be an integer >= 2, "
                         f"got {out['frames_per_sequence']!r}")
    bad = [m for m in out["motions"] if m not in MOTIONS]
    if bad or not out["motions"]:
        raise ValueError(f"synthetic config: unknown motion(s) {bad}; known: {list(MOTIONS)}")
    if not out["speeds"] or any(float(s) <= 0 for s in out["speeds"]):
        raise ValueError(f"synthetic config: speeds must be positive factors, got {out['speeds']!r}")
    bad = [s for s in out["shifts"] if s not in SHIFTS]
    if bad:
        raise ValueError(f"synthetic config: unknown shift(s) {bad}; known: {sorted(SHIFTS)}")
    strengths = out["shift_strengths"]
    if (not isinstance(strengths, (list, tuple)) or not strengths
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= 1 for v in strengths)):
        raise ValueError(f"synthetic config: shift_strengths must be a non-empty list of numbers in (0, 1] "
                         f"(1 = the full shift), got {strengths!r}")
    names = [shift_name("x", v) for v in strengths]
    if len(set(names)) != len(names):
        raise ValueError(f"synthetic config: shift_strengths {strengths!r} repeat a strength (set names {names})")
    for k in ("height_m", "camera_distance", "camera_height", "focal"):
        v = out[k]
        if len(v) != 2 or not 0 < float(v[0]) <= float(v[1]):
            raise ValueError(f"synthetic config: {k} must be a range [low, high] of positive numbers, got {v!r}")
    if float(out["fps"]) <= 0:
        raise ValueError(f"synthetic config: fps must be positive, got {out['fps']!r}")
    for k, v in out["noise"].items():
        if float(v) < 0:
            raise ValueError(f"synthetic config: noise.{k} must be >= 0, got {v!r}")
    return out


def seeded_rng(seed: int, *keys) -> np.random.Generator:
    """A generator that depends only on the seed and the names (stable across runs and platforms)."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF] + [zlib.crc32(str(k).encode()) for k in keys])


def _build_split(split: str, subjects: list[str], cfg: dict, seed: int, bodies: dict[str, Body],
                 shift: dict, draws: str | None = None, shift_kind: str | None = None,
                 shift_strength: float | None = None) -> PoseSequences:
    """One split; its sequences draw from generators named by ``draws`` (default: the split): the
    sets of one shift at several strengths share their draws, so they differ by the shift alone."""
    cam = {k: shift.get(k, cfg[k]) for k in ("camera_distance", "camera_height", "focal")}
    noise = shift.get("noise", cfg["noise"])
    fps = float(cfg["fps"])
    parts = []
    for subject in subjects:
        body = bodies[subject]
        for motion in cfg["motions"]:
            for speed in cfg["speeds"]:
                for k in range(cfg["sequences_per_combo"]):
                    name = f"{subject}_{motion.replace(' ', '-')}_x{float(speed):g}_{k}"
                    rng = seeded_rng(seed, draws or split, name)
                    world, _ = simulate(motion, float(speed), body, rng, cfg["frames_per_sequence"], fps)
                    cams = cameras_for(world, rng, cfg["cameras"], distance=cam["camera_distance"],
                                       height=cam["camera_height"], focal=cam["focal"])
                    parts.append(render_views(world, cams, rng, noise, fps=fps, subject=subject, name=name,
                                              action=motion))
    meta = {"source": "synthetic", "skeleton": H36M17.name, "input_2d": "synthetic-projection+noise",
            "split": split, "seed": int(seed), "config": cfg, "noise": noise, "cameras": cam,
            "shift": shift_kind, "shift_strength": None if shift_strength is None else float(shift_strength),
            "subject_heights_m": {s: round(bodies[s].height, 4) for s in subjects}}
    return PoseSequences.concatenate(parts, meta=meta)


def build_splits(cfg: dict | None, seed: int) -> dict[str, PoseSequences]:
    """``train``, ``test`` and, per entry of ``cfg['shifts']`` and of ``cfg['shift_strengths']``, the
    set ``shift_<kind>-<strength>`` (see module doc). The sets of one kind share their held-out
    subjects and generators (same motions, cameras at the same quantiles of their ranges), so along
    the strengths the shift is what changes; at strength 1 the set is the full shift of :data:`SHIFTS`."""
    cfg = resolve_config(cfg)
    n_train, n_test, n_shift = cfg["subjects_train"], cfg["subjects_test"], cfg["shift_subjects"]
    ids = iter(f"SYN{i + 1:02d}" for i in range(n_train + n_test + n_shift * len(cfg["shifts"])))
    plan = {"train": [next(ids) for _ in range(n_train)], "test": [next(ids) for _ in range(n_test)]}
    held_out = {kind: [next(ids) for _ in range(n_shift)] for kind in cfg["shifts"]}
    sampled = {s: sample_body(seeded_rng(seed, "body", s), s, cfg["height_m"], cfg["proportion_sd"])
               for subjects in (*plan.values(), *held_out.values()) for s in subjects}
    out = {split: _build_split(split, subjects, cfg, seed, sampled, {}) for split, subjects in plan.items()}
    for kind, subjects in held_out.items():
        if not subjects:
            continue
        for strength in cfg["shift_strengths"]:
            shift = shift_parameters(kind, strength, cfg)
            bodies = sampled
            if kind == "body":                  # the shifted bodies alternate over the subjects
                presets = shift["bodies"]
                bodies = {}
                for i, s in enumerate(subjects):
                    preset = dict(presets[i % len(presets)])
                    bodies[s] = make_body(s, preset.pop("height"), preset)
            name = shift_name(kind, strength)
            out[name] = _build_split(name, subjects, cfg, seed, bodies, shift, draws=f"shift_{kind}",
                                     shift_kind=kind, shift_strength=float(strength))
    return out
