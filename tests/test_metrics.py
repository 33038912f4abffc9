import math

import torch

from poseprompt.core import metrics
from poseprompt.core.skeleton import H36M17
from poseprompt.data.augment import flip_pose


def _pose(seed=0, shape=(4, 17, 3)):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _rotation(axis, angle):
    axis = torch.tensor(axis, dtype=torch.float64)
    axis = axis / axis.norm()
    k = torch.tensor([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]], dtype=torch.float64)
    return torch.eye(3, dtype=torch.float64) + math.sin(angle) * k + (1 - math.cos(angle)) * k @ k


def test_mpjpe_hand_computed():
    target = torch.zeros(1, 3, 3, dtype=torch.float64)
    pred = target.clone()
    pred[0, 1] = torch.tensor([3.0, 4.0, 0.0])   # 5 away
    pred[0, 2] = torch.tensor([0.0, 0.0, 2.0])   # 2 away
    assert torch.isclose(metrics.mpjpe(pred, target), torch.tensor(7 / 3, dtype=torch.float64))
    # root-relative: moving the whole prediction changes nothing
    assert torch.isclose(metrics.mpjpe(pred + 10.0, target), torch.tensor(7 / 3, dtype=torch.float64))


def test_p_mpjpe_invariant_to_similarity_transform_and_mpjpe_not():
    target = _pose()
    rot = _rotation([0.3, -1.0, 0.5], 1.1)
    pred = 1.7 * target @ rot.T + torch.tensor([0.5, -2.0, 3.0], dtype=torch.float64)
    assert metrics.p_mpjpe(pred, target) < 1e-9
    assert metrics.mpjpe(pred, target) > 0.5


def test_procrustes_does_not_reflect():
    target = _pose(1)
    mirrored = target * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    # a mirror image cannot be aligned by a proper rotation
    assert metrics.p_mpjpe(mirrored, target) > 0.1


def test_n_mpjpe_fixes_scale_only():
    target = _pose(2)
    assert metrics.n_mpjpe(0.5 * target, target) < 1e-9
    assert metrics.mpjpe(0.5 * target, target) > 0.1
    rot = _rotation([0, 0, 1], 0.5)
    assert metrics.n_mpjpe(target @ rot.T, target) > 0.05


def test_velocity_and_acceleration_errors():
    t = torch.arange(5, dtype=torch.float64)
    target = torch.zeros(5, 2, 3, dtype=torch.float64)
    target[:, 1, 0] = t                       # joint 1 moves 1 per frame in x
    pred = target.clone()
    pred[:, 1, 0] = 2 * t                     # twice as fast: velocity error 1 on joint 1, 0 on root
    assert torch.isclose(metrics.mpjve(pred, target), torch.tensor(0.5, dtype=torch.float64))
    assert metrics.accel_error(pred, target) < 1e-12          # both constant velocity
    pred[:, 1, 0] = t ** 2                    # acceleration 2 on joint 1
    assert torch.isclose(metrics.accel_error(pred, target), torch.tensor(1.0, dtype=torch.float64))


def test_pck_and_auc():
    target = torch.zeros(1, 4, 3, dtype=torch.float64)
    pred = target.clone()
    pred[0, 1, 0], pred[0, 2, 0], pred[0, 3, 0] = 100.0, 149.0, 400.0
    assert metrics.pck(pred, target, 150.0).item() == 0.75      # root, 100, 149 within; 400 out
    # AUC over 0..150 step 5 (31 thresholds): root always in, 100 in from 100, 149 in from 150
    expected = (31 + 11 + 1 + 0) / (31 * 4)
    assert abs(metrics.auc(pred, target).item() - expected) < 1e-12


def test_limb_metrics_use_twelve_joints_centred_at_mid_hip():
    target = _pose(3)
    pred = target.clone()
    pred[..., 10, :] += 5.0                   # head top is not a limb joint
    assert metrics.limb_mpjpe(pred, target) < 1e-12
    assert metrics.mpjpe(pred, target) > 0.1
    assert metrics.limb_centred(target).shape[-2] == 12


def test_training_loss_terms_and_mask():
    target = _pose(4, (2, 5, 17, 3)).float()
    loss, terms = metrics.training_loss(target, target)
    assert loss.item() < 1e-6
    pred = target.clone()
    pred[:, 4, 5] += 1.0                       # last frame: one joint wrong
    mask = torch.ones(2, 5, dtype=torch.bool)
    full, _ = metrics.training_loss(pred, target, 0.0, 0.0)
    mask[:, 4] = False
    masked, _ = metrics.training_loss(pred, target, 0.0, 0.0, mask=mask)
    assert abs(full.item() - 3 ** 0.5 / 17 / 5) < 1e-6 and masked.item() < 1e-6


def test_flip_is_an_involution_and_mirrors():
    pose = _pose(5).float()
    flipped = flip_pose(pose, H36M17)
    assert torch.allclose(flip_pose(flipped, H36M17), pose)
    # left wrist of the flip = mirrored right wrist of the original
    assert torch.allclose(flipped[..., 13, 0], -pose[..., 16, 0])
    assert torch.allclose(flipped[..., 13, 1:], pose[..., 16, 1:])
