"""Missing joints in training (``train.occlusion``): rate, spans, groups, seeding, config errors."""
import numpy as np
import pytest
import torch

from conftest import tiny_params
from poseprompt.config.sections import OcclusionConfig
from poseprompt.config.sections import ConfigError
from poseprompt.config.sections import TrainConfig
from poseprompt.core.skeleton import H36M17
from poseprompt.data.augment import occlusion_masks, random_occlusion
from poseprompt.data.perturb import occlusion_groups


def _seeds(n, seed=0):
    return torch.randint(0, 2**31 - 1, (n,), generator=torch.Generator().manual_seed(seed))


def _runs(column: np.ndarray) -> np.ndarray:
    d = np.diff(np.concatenate([[0], column.astype(int), [0]]))
    return np.flatnonzero(d == -1) - np.flatnonzero(d == 1)


def test_hidden_fraction_averages_prob_times_half_the_max_rate():
    cfg = OcclusionConfig(prob=0.5, max_rate=0.25, modes=("joints", "limbs"), span=(2, 8))
    masks = occlusion_masks(_seeds(4000).tolist(), 16, cfg)                     # (B, T, N)
    per_clip = masks.mean((1, 2))
    assert per_clip.mean() == pytest.approx(0.5 * 0.25 / 2, rel=0.08)
    assert (per_clip == 0).mean() == pytest.approx(0.5, abs=0.04)             # the clips left alone
    # a clip's rate is U(0, max_rate): never above it by more than one group (the last event)
    assert per_clip.max() <= 0.25 + 3 / (16 * 17)
    hit = per_clip[per_clip > 0]
    assert np.mean(hit > 0.125) == pytest.approx(0.5, abs=0.05)                # uniform: half above the middle
    never = occlusion_masks(_seeds(200).tolist(), 16, OcclusionConfig(prob=0.0))
    assert not never.any()


def test_events_last_the_configured_span_clipped_to_the_clip():
    # joints over 400 frames at a low rate: events rarely touch, so runs are single events
    cfg = OcclusionConfig(prob=1.0, max_rate=0.02, modes=("joints",), span=(3, 7))
    masks = occlusion_masks(_seeds(40, 1).tolist(), 400, cfg)
    short_per_clip, runs = [], []
    for m in masks:
        r = np.concatenate([_runs(m[:, j]) for j in range(17)])
        short_per_clip.append(int((r < 3).sum()))
        runs.append(r)
    runs = np.concatenate(runs)
    assert max(short_per_clip) <= 1                   # only the last event of a clip may be shortened
    assert np.mean((runs >= 3) & (runs <= 7)) > 0.95 and len(runs) > 400
    # spans longer than the clip are clipped to it: a hidden joint is hidden in every frame
    long = occlusion_masks(_seeds(50, 2).tolist(), 12, OcclusionConfig(prob=1.0, max_rate=0.2, modes=("joints",),
                                                                         span=(20, 30)))
    per_joint = long.sum(1)                                                    # (B, N) hidden frames
    assert (per_joint == 12).any()
    assert np.all(((per_joint > 0) & (per_joint < 12)).sum(1) <= 1)           # but the shortened last event


def test_limbs_hide_whole_limb_groups_and_never_the_torso():
    cfg = OcclusionConfig(prob=1.0, max_rate=0.3, modes=("limbs",), span=(2, 8))
    masks = occlusion_masks(_seeds(300, 3).tolist(), 16, cfg)
    assert masks.any()
    for g in occlusion_groups(H36M17, "limbs"):
        part = masks[..., g]                                                  # (B, T, 3)
        assert np.all(part.all(-1) | ~part.any(-1))
    assert not masks[..., [0, 7, 8, 9, 10]].any()
    # both modes drawn: single joints (a hidden torso joint) and whole limbs
    mixed = occlusion_masks(_seeds(300, 3).tolist(), 16, OcclusionConfig(prob=1.0, modes=("joints", "limbs")))
    assert mixed[..., [0, 7, 8, 9, 10]].any()


def test_same_seed_same_mask_whatever_the_batch():
    cfg = OcclusionConfig(prob=1.0)
    seeds = _seeds(8, 4).tolist()
    batch = occlusion_masks(seeds, 16, cfg)
    alone = occlusion_masks([seeds[5]], 16, cfg)
    other = occlusion_masks([seeds[1], seeds[5], 12345], 16, cfg)
    assert np.array_equal(batch[5], alone[0]) and np.array_equal(batch[5], other[1])
    assert np.array_equal(batch, occlusion_masks(seeds, 16, cfg))
    assert not np.array_equal(batch[0], batch[1])


def test_hidden_entries_are_missing_detections_and_nothing_else_changes():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 16, 17, 3, generator=g)
    x[..., 2] = torch.rand(16, 16, 17, generator=g) * 0.9 + 0.1              # confidences in (0.1, 1]
    before = x.clone()
    seeds = _seeds(16, 5)
    out = random_occlusion(x, seeds, OcclusionConfig(prob=1.0))
    assert torch.equal(x, before)                                              # the input is not modified
    hidden = torch.from_numpy(occlusion_masks(seeds.tolist(), 16, OcclusionConfig(prob=1.0)))
    assert hidden.any() and torch.equal(out[..., 2] == 0, hidden)
    assert torch.all(out[hidden] == 0)                                         # x, y and confidence
    assert torch.equal(out[~hidden], before[~hidden])                          # confidences kept as they were


def test_training_batches_get_missing_joints_and_untouched_targets(tmp_path):
    """Through the training loop's own batch function: 2D inputs lose joints, 3D targets do not."""
    from poseprompt.config.params import variant_config
    from poseprompt.stages.prepare import prepare
    from poseprompt.stages.train import _batch, setup
    params = tiny_params()
    prepare(params["data"], tmp_path / "data", params["seed"])
    train = {**params["train"], "occlusion": {"prob": 1.0, "max_rate": 0.3}}
    run = setup(variant_config(params, "gatfun"), train, tmp_path / "data", tmp_path / "out", 0, {}, None)
    idx = torch.arange(8)
    no_flip = torch.zeros(len(run.train), dtype=torch.bool)
    seeds = _seeds(len(run.train), 6)
    x, y, mask, _ = _batch(run, idx, no_flip, seeds)
    clean = run.train.gather(idx.numpy())
    assert torch.equal(y, clean["y"]) and torch.equal(mask, clean["eval_mask"])
    hidden = (x[..., 2] == 0) & (clean["x"][..., 2] > 0)
    assert hidden.float().mean() > 0.02 and torch.all(x[hidden] == 0)
    assert torch.equal(x[~hidden], clean["x"][~hidden])
    run_off = setup(variant_config(params, "gatfun"), {**train, "occlusion": {"prob": 0.0}}, tmp_path / "data",
                    tmp_path / "off", 0, {}, None)
    assert torch.equal(_batch(run_off, idx, no_flip, seeds)[0], clean["x"])


def test_occlusion_config_is_typed_and_its_errors_name_the_key():
    cfg = TrainConfig.from_dict({"occlusion": {"prob": 0.3, "modes": ["limbs"], "span": [4, 9]}})
    assert cfg.occlusion == OcclusionConfig(prob=0.3, max_rate=0.25, modes=("limbs",), span=(4, 9))
    assert TrainConfig.from_dict({}).occlusion == OcclusionConfig()
    bad = [({"rate": 0.1}, r"train.occlusion: unknown keys \['rate'\]; known keys: \['max_rate', 'modes', 'prob', 'span'\]"),
           ({"prob": 1.5}, r"train.occlusion.prob = 1.5; expected a probability"),
           ({"max_rate": -0.1}, r"train.occlusion.max_rate = -0.1"),
           ({"prob": "half"}, r"train.occlusion.prob = 'half'; expected a probability"),
           ({"modes": ["limb"]}, r"train.occlusion.modes = \['limb'\]; expected a non-empty list of \['joints'"),
           ({"modes": []}, r"train.occlusion.modes = \[\]"),
           ({"modes": "limbs"}, r"train.occlusion.modes = 'limbs'; expected a list"),
           ({"span": [8, 2]}, r"train.occlusion.span = \[8, 2\]; expected \[min, max\] frames"),
           ({"span": [2.5, 8]}, r"train.occlusion.span"),
           (0.5, r"train.occlusion: expected a mapping with keys \['max_rate', 'modes', 'prob', 'span'\]")]
    for value, message in bad:
        with pytest.raises(ConfigError, match=message):
            TrainConfig.from_dict({"occlusion": value})
    with pytest.raises(ConfigError, match="train.occlusion_prob was replaced by the section train.occlusion"):
        TrainConfig.from_dict({"occlusion_prob": 0.2})
    with pytest.raises(ConfigError, match="train.occlusion.max_rate = 0.8: modes \\['limbs'\\] can hide at most 0.706"):
        occlusion_masks([0], 16, OcclusionConfig(max_rate=0.8, modes=("limbs",)))
