import numpy as np
import pytest

from poseprompt.data.camera import (axis_rotation, back_project, detection_noise, look_at, normalize_screen,
                                    project, quaternion_to_matrix, sample_cameras, unnormalize_screen,
                                    world_to_camera)


def test_project_then_back_project_with_known_depth_returns_points():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(-1.5, 1.5, (50, 17, 2)), rng.uniform(2.0, 9.0, (50, 17, 1))], -1)
    k = np.array([1145.0, 1143.5, 512.5, 515.0])
    uv = project(x, k)
    assert uv.shape == (50, 17, 2)
    np.testing.assert_allclose(back_project(uv, x[..., 2], k), x, atol=1e-9)
    # a point on the optical axis lands on the principal point
    np.testing.assert_allclose(project(np.array([0.0, 0.0, 4.0]), k), [512.5, 515.0])
    with pytest.raises(ValueError):
        project(np.array([0.1, 0.2, -1.0]), k)


def test_look_at_is_a_rotation_with_the_target_on_the_optical_axis():
    rng = np.random.default_rng(1)
    for _ in range(20):
        centre = rng.uniform(-6, 6, 3)
        target = rng.uniform(-1, 1, 3)
        r = look_at(centre, target)
        assert abs(np.linalg.det(r) - 1.0) < 1e-12
        np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
        xc = world_to_camera(target, r, centre)
        np.testing.assert_allclose(xc[:2], 0.0, atol=1e-12)
        assert xc[2] == pytest.approx(np.linalg.norm(target - centre))
        # image y points down: a point above the target projects higher up (smaller v)
        above = world_to_camera(target + [0, 0, 0.5], r, centre)
        assert above[1] < 0


def test_normalize_screen_round_trip_and_values():
    uv = np.array([[0.0, 0.0], [1000.0, 1002.0], [500.0, 501.0]])
    xy = normalize_screen(uv, 1000, 1002)
    np.testing.assert_allclose(xy[0], [-1.0, -1.002])
    np.testing.assert_allclose(xy[1], [1.0, 1.002])
    np.testing.assert_allclose(xy[2], [0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(unnormalize_screen(xy, 1000, 1002), uv, atol=1e-9)


def test_axis_rotation_and_quaternion_agree():
    np.testing.assert_allclose(axis_rotation(2, 90.0) @ [1, 0, 0], [0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(axis_rotation(0, 90.0) @ [0, 1, 0], [0, 0, 1], atol=1e-12)
    np.testing.assert_allclose(axis_rotation(1, 90.0) @ [0, 0, 1], [1, 0, 0], atol=1e-12)
    half = np.deg2rad(30.0) / 2  # 30 degrees about z as a quaternion (w, x, y, z)
    np.testing.assert_allclose(quaternion_to_matrix([np.cos(half), 0, 0, np.sin(half)]), axis_rotation(2, 30.0),
                               atol=1e-12)
    batch = axis_rotation(1, np.array([[10.0, 20.0], [30.0, 40.0]]))
    assert batch.shape == (2, 2, 3, 3)


def test_sample_cameras_look_at_the_target_from_the_requested_ranges():
    rng = np.random.default_rng(2)
    target = np.array([0.3, -0.2, 0.95])
    cams = sample_cameras(rng, 4, target, distance=(3.5, 6.0), height=(1.0, 2.0), focal=(1130, 1160))
    azimuths = []
    for cam in cams:
        assert 3.5 <= np.linalg.norm(cam.centre[:2] - target[:2]) <= 6.0
        assert 1.0 <= cam.centre[2] <= 2.0
        assert 1130 <= cam.intrinsics[0] <= 1160 and cam.intrinsics[0] == cam.intrinsics[1]
        assert abs(cam.intrinsics[2] - 512) <= 4 and abs(cam.intrinsics[3] - 512) <= 4
        np.testing.assert_allclose(cam.to_camera(target)[:2], 0.0, atol=1e-9)
        d = cam.centre[:2] - target[:2]
        azimuths.append(np.arctan2(d[1], d[0]))
    gaps = np.diff(np.sort(np.mod(azimuths, 2 * np.pi)))
    assert gaps.min() > np.pi / 4  # four clearly different views (spacing 90 degrees +- 22.5 each)


def test_detection_noise_missing_joints_have_zero_conf_and_coordinates():
    rng = np.random.default_rng(3)
    uv = rng.uniform(100, 900, (4000, 17, 2))
    noisy, conf = detection_noise(uv, rng, jitter_px=3.0, outlier_rate=0.02, outlier_px=40.0,
                                  dropout_rate=0.05, conf_scale_px=10.0, difficulty_sd=0.0)
    missing = conf == 0
    assert 0.045 < missing.mean() < 0.055
    assert np.all(noisy[missing] == 0.0)
    seen = ~missing
    assert np.all((conf[seen] >= 0.05) & (conf[seen] <= 1.0))
    err = np.linalg.norm(noisy - uv, axis=-1)
    inliers = seen & (err < 20)
    # jitter: per-axis std 3 px -> mean squared error per joint 2 * 9
    assert np.mean(err[inliers] ** 2) == pytest.approx(18.0, rel=0.05)
    outliers = seen & (err > 15)
    assert 0.015 < outliers.mean() < 0.025


def test_detection_confidence_is_not_an_error_oracle():
    """The detector's confidence follows its own (latent) difficulty, never the error it drew: an
    outlier is as confident as any joint, and the confidences do not change when only the error
    draws do."""
    rng = np.random.default_rng(5)
    uv = rng.uniform(100, 900, (3000, 17, 2))
    noisy, conf = detection_noise(uv, np.random.default_rng(1), outlier_rate=0.05, dropout_rate=0.0)
    err = np.linalg.norm(noisy - uv, axis=-1)
    outliers = err > 25
    assert outliers.mean() > 0.03
    assert abs(conf[outliers].mean() - conf[~outliers].mean()) < 0.02
    # harder joints (larger latent spread) are less confident and err more on average: the
    # confidence is informative, through the difficulty
    low = conf < np.quantile(conf, 0.2)
    high = conf > np.quantile(conf, 0.8)
    assert np.median(err[low & ~outliers]) > 1.5 * np.median(err[high & ~outliers])
    # the confidences are the same whatever the input positions (the error draws come after them)
    _, conf2 = detection_noise(uv + 50.0, np.random.default_rng(1), outlier_rate=0.05, dropout_rate=0.0)
    np.testing.assert_array_equal(conf, conf2)


def test_detection_noise_without_noise_is_exact():
    rng = np.random.default_rng(4)
    uv = rng.uniform(0, 1000, (10, 17, 2))
    noisy, conf = detection_noise(uv, rng, jitter_px=0.0, outlier_rate=0.0, dropout_rate=0.0, conf_noise=0.0)
    np.testing.assert_array_equal(noisy, uv)
    np.testing.assert_array_equal(conf, 1.0)
