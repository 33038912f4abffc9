"""Pinhole cameras: world -> camera frame, projection, back-projection, screen normalisation.

Conventions (those of Human3.6M and the field):

* a camera has rotation ``R`` (3, 3), world -> camera, and centre ``C`` (3,) in world
  coordinates; a world point ``X`` is ``Xc = R (X - C)`` in the camera frame (x right, y down,
  z forward, metres);
* intrinsics are ``(fx, fy, cx, cy)`` in pixels; ``u = f * Xc[:2] / Xc[2] + c`` (no lens
  distortion: the field's 2D-to-3D lifters ignore it too);
* normalised screen coordinates are ``u / w * 2 - [1, h / w]``: x spans [-1, 1], the aspect
  ratio is kept, so negating x mirrors the image about its vertical centre line.

For sources that have 3D motion but no video (synthetic, BVH), :func:`sample_cameras` places
Human3.6M-like virtual cameras around the subject and :func:`detection_noise` turns exact
projections into detector-like 2D keypoints with confidences.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def world_to_camera(x_world: np.ndarray, rotation: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """``R (X - C)`` for points (..., 3)."""
    return (np.asarray(x_world) - centre) @ np.asarray(rotation).T


def camera_to_world(x_cam: np.ndarray, rotation: np.ndarray, centre: np.ndarray) -> np.ndarray:
    return np.asarray(x_cam) @ np.asarray(rotation) + centre


def project(x_cam: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
    """Pixels (..., 2) of camera-frame points (..., 3) with ``z > 0``."""
    x_cam = np.asarray(x_cam)
    fx, fy, cx, cy = np.asarray(intrinsics, dtype=np.float64)
    z = x_cam[..., 2:3]
    if np.any(z <= 0):
        raise ValueError("project: points at or behind the camera (z <= 0)")
    return x_cam[..., :2] / z * np.array([fx, fy]) + np.array([cx, cy])


def back_project(uv: np.ndarray, depth: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
    """Camera-frame points (..., 3) of pixels (..., 2) at known depths ``z`` (...)."""
    fx, fy, cx, cy = np.asarray(intrinsics, dtype=np.float64)
    uv = np.asarray(uv, dtype=np.float64)
    z = np.asarray(depth, dtype=np.float64)[..., None]
    xy = (uv - np.array([cx, cy])) / np.array([fx, fy]) * z
    return np.concatenate([xy, z], axis=-1)


def normalize_screen(uv: np.ndarray, width: float, height: float) -> np.ndarray:
    """Pixels -> ``u / w * 2 - [1, h / w]``."""
    return np.asarray(uv) / width * 2.0 - np.array([1.0, height / width])


def unnormalize_screen(xy: np.ndarray, width: float, height: float) -> np.ndarray:
    return (np.asarray(xy) + np.array([1.0, height / width])) * width / 2.0


def quaternion_to_matrix(q: np.ndarray) -> np.ndarray:
    """Rotation matrix of a unit quaternion ``(w, x, y, z)``."""
    w, x, y, z = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def look_at(centre: np.ndarray, target: np.ndarray, up: np.ndarray = (0.0, 0.0, 1.0)) -> np.ndarray:
    """World -> camera rotation of a camera at ``centre`` looking at ``target`` (y down in the image).

    ``up`` is the world's up direction (z-up by default, as in Human3.6M's world frame).
    """
    centre, target, up = (np.asarray(v, dtype=np.float64) for v in (centre, target, up))
    fwd = target - centre
    fwd /= np.linalg.norm(fwd)
    right = np.cross(fwd, up)
    if np.linalg.norm(right) < 1e-8:
        raise ValueError("look_at: viewing direction is parallel to the up vector")
    right /= np.linalg.norm(right)
    down = np.cross(fwd, right)
    return np.stack([right, down, fwd])  # rows: camera x, y, z axes in world coordinates


# ---- virtual cameras and a 2D detector model (synthetic and BVH sources) -------------------------

@dataclass(frozen=True)
class VirtualCamera:
    """One pinhole camera: world -> camera ``rotation`` (3, 3), ``centre`` (3,) in world metres,
    ``intrinsics`` (fx, fy, cx, cy) in pixels, ``image_size`` (width, height) in pixels."""

    rotation: np.ndarray
    centre: np.ndarray
    intrinsics: np.ndarray
    image_size: tuple[int, int]

    def to_camera(self, x_world: np.ndarray) -> np.ndarray:
        return world_to_camera(x_world, self.rotation, self.centre)


def sample_cameras(rng: np.random.Generator, count: int, target: np.ndarray, *,
                   distance: tuple[float, float] = (3.5, 6.0), height: tuple[float, float] = (1.0, 2.0),
                   focal: tuple[float, float] = (1130.0, 1160.0),
                   principal: tuple[float, float] = (512.0, 512.0), principal_jitter: float = 4.0,
                   image_size: tuple[int, int] = (1000, 1000)) -> list[VirtualCamera]:
    """``count`` cameras around ``target`` (3,) (world, z-up), each looking at it.

    Human3.6M-like by default: focal about 1145 px, principal point ``principal`` +-
    ``principal_jitter`` px, 1000 x 1000 images, 3.5-6 m from the target horizontally, centre
    1-2 m above the ground. Azimuths are spread evenly around the circle from a random start,
    then jittered by up to a quarter of the spacing, so that ``count`` cameras give ``count``
    clearly different views.
    ``distance`` is measured in the ground plane from ``target``; a caller whose subject moves adds
    the extent of the motion to it so that the subject never comes closer than ``distance[0]``.
    """
    target = np.asarray(target, dtype=np.float64)
    w, h = int(image_size[0]), int(image_size[1])
    spacing = 2 * np.pi / count
    azimuth = rng.uniform(0, 2 * np.pi) + spacing * np.arange(count) + rng.uniform(-0.25, 0.25, count) * spacing
    dist = rng.uniform(*distance, count)
    z = rng.uniform(*height, count)
    f = rng.uniform(*focal, count)
    cams = []
    for i in range(count):
        centre = np.array([target[0] + dist[i] * np.cos(azimuth[i]),
                           target[1] + dist[i] * np.sin(azimuth[i]), z[i]])
        c = np.asarray(principal, dtype=np.float64) + rng.uniform(-principal_jitter, principal_jitter, 2)
        cams.append(VirtualCamera(rotation=look_at(centre, target), centre=centre,
                                  intrinsics=np.array([f[i], f[i], c[0], c[1]]), image_size=(w, h)))
    return cams


def detection_noise(uv: np.ndarray, rng: np.random.Generator, *, jitter_px: float = 3.0,
                    outlier_rate: float = 0.01, outlier_px: float = 40.0, dropout_rate: float = 0.005,
                    conf_scale_px: float = 10.0, conf_noise: float = 0.05, difficulty_sd: float = 0.5,
                    difficulty_corr: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    """A 2D keypoint detector's output from exact projections ``uv`` (..., N, 2) in pixels.

    Returns ``(uv_noisy, conf)`` with shapes (..., N, 2) and (..., N). The confidence is what a
    detector can know, never the error it actually made:

    * every joint of every frame has a latent difficulty ``s = exp(difficulty_sd * xi)`` (a wider
      heatmap: blur, small scale, clutter), with ``xi`` standard normal and, along the frames of a
      sequence (axis 0 of (F, N, 2) input), autocorrelated with ``difficulty_corr`` per frame;
    * the joint is displaced by Gaussian jitter of std ``jitter_px * s`` per axis;
    * the confidence is the detector's own expectation from its heatmap spread,
      ``exp(-E[e^2] / (2 conf_scale_px^2))`` with ``E[e^2] = 2 (jitter_px s)^2``, plus Gaussian noise of
      std ``conf_noise``, clipped to [0.05, 1]: it depends on ``s``, not on the drawn error;
    * a fraction ``outlier_rate`` of joints is thrown off by a random direction times
      ``outlier_px * U(0.5, 1.5)`` (a detector confusing limbs): the detector does not know, so
      the confidence of an outlier is drawn like any other;
    * a fraction ``dropout_rate`` of joints is missing: confidence 0 and coordinates 0, so that a
      missing joint never leaks where it was.
    """
    uv = np.asarray(uv, dtype=np.float64)
    shape = uv.shape[:-1]
    xi = rng.standard_normal(shape)
    if uv.ndim == 3 and difficulty_corr > 0 and shape[0] > 1:      # AR(1) over the frames
        c = float(difficulty_corr)
        for t in range(1, shape[0]):
            xi[t] = c * xi[t - 1] + np.sqrt(1.0 - c * c) * xi[t]
    sigma = jitter_px * np.exp(difficulty_sd * xi)                  # (..., N) per-axis std
    err = rng.standard_normal(uv.shape) * sigma[..., None]
    out = rng.random(shape) < outlier_rate
    if np.any(out):
        ang = rng.uniform(0, 2 * np.pi, int(out.sum()))
        mag = outlier_px * rng.uniform(0.5, 1.5, ang.shape)
        err[out] += np.stack([np.cos(ang), np.sin(ang)], -1) * mag[:, None]
    conf = np.exp(-(2.0 * sigma ** 2) / (2 * conf_scale_px ** 2)) + rng.normal(0.0, conf_noise, shape)
    conf = np.clip(conf, 0.05, 1.0)
    noisy = uv + err
    missing = rng.random(shape) < dropout_rate
    conf[missing] = 0.0
    noisy[missing] = 0.0
    return noisy, conf


def axis_rotation(axis: int, degrees: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) about coordinate axis ``axis`` (0 = x, 1 = y, 2 = z) by
    ``degrees`` (...), right-handed (counter-clockwise looking down the axis), acting on column
    vectors."""
    a = np.deg2rad(np.asarray(degrees, dtype=np.float64))
    c, s = np.cos(a), np.sin(a)
    m = np.zeros(a.shape + (3, 3))
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    m[..., axis, axis] = 1.0
    m[..., i, i] = c
    m[..., j, j] = c
    m[..., i, j] = -s
    m[..., j, i] = s
    return m
