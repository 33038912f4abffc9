import itertools

import pytest
import torch

from poseprompt import build_model
from poseprompt.config.sections import ConfigError, ModelConfig
from poseprompt.core.metrics import training_loss
from poseprompt.core.skeleton import H36M17
from poseprompt.data.augment import flip_pose, predict_with_flip
from poseprompt.model.backbone import AdaptiveMotionFusion, frame_difference
from poseprompt.model.spatial_pool import LaplacianContextPool
from poseprompt.model.temporal_pool import GaussianTemporalPool

VARIANTS = [dict(prompt="none")] + [
    dict(prompt=p, spatial_pool=s, temporal_pool=t, inject=i)
    for p, s, t, i in itertools.product(["static", "adaptive"], ["laplacian", "mean"], ["gaussian", "mean"],
                                        ["encoding", "refinement", "both"])
    if p == "adaptive" or (s, t) == ("laplacian", "gaussian")
] + [dict(prompt="direct", inject=i) for i in ("encoding", "refinement", "both")]


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "-".join(v.values()))
def test_output_shape_and_root_relative_for_every_variant(tiny_cfg, clip_batch, variant):
    model = build_model({**tiny_cfg, **variant}).eval()
    y = model(clip_batch, {"action": ["walk", "run", "sit down"]})
    assert y.shape == clip_batch.shape
    assert torch.all(y[..., 0, :] == 0)                 # root at the origin
    assert torch.isfinite(y).all()


def test_variants_are_configuration_not_classes(tiny_cfg):
    kinds = {type(build_model({**tiny_cfg, **v})) for v in VARIANTS[:3]}
    assert len(kinds) == 1


def test_bad_config_names_the_key(tiny_cfg):
    with pytest.raises(ConfigError, match="model.prompt"):
        build_model({**tiny_cfg, "prompt": "dynamic"})
    with pytest.raises(ConfigError, match="unknown keys \\['widht'\\]"):
        build_model({**tiny_cfg, "widht": 3})
    with pytest.raises(ConfigError, match="text_tokens"):
        ModelConfig(prompt_length=4, text_tokens=4)


def test_wrong_input_shape_is_explained(tiny_cfg):
    model = build_model({**tiny_cfg, "prompt": "none"})
    with pytest.raises(ValueError, match="expected \\(B, T=9, N=17, C=3\\)"):
        model(torch.zeros(1, 8, 17, 3))


def test_flip_averaging_path(tiny_cfg, clip_batch):
    model = build_model({**tiny_cfg, "prompt": "none"}).eval()
    with torch.no_grad():
        y = model(clip_batch)
        y_flip_back = flip_pose(model(flip_pose(clip_batch, H36M17)), H36M17)
        avg = predict_with_flip(model, clip_batch)
    assert torch.allclose(avg, 0.5 * (y + y_flip_back), atol=1e-6)
    assert not torch.allclose(y, y_flip_back)            # the model is not flip-equivariant by itself
    # flip-averaging makes the prediction exactly flip-equivariant
    avg_of_flip = predict_with_flip(model, flip_pose(clip_batch, H36M17))
    assert torch.allclose(flip_pose(avg_of_flip, H36M17), avg, atol=1e-5)


# ---- spectral Laplacian pooling (eq. 3-7) -------------------------------------------------------

def test_all_pass_mask_with_unit_gate_returns_input():
    pool = LaplacianContextPool(H36M17, width=8, context_dim=8, heads=2)
    with torch.no_grad():
        pool.sigma_raw.fill_(1e4)                   # w_h(lambda) = 1 everywhere
        pool.alpha.fill_(1.0)
        pool.rho.weight.copy_(torch.eye(8))
    assert torch.allclose(pool.band_masks(), torch.ones(2, 17), atol=1e-6)
    x = torch.randn(2, 5, 17, 8)
    filtered = pool.filtered(x)                     # (B, H, T, N, Dc)
    assert torch.allclose(filtered, x.unsqueeze(1).expand_as(filtered), atol=1e-5)


def test_zero_gate_is_identity_and_low_band_smooths_over_joints():
    pool = LaplacianContextPool(H36M17, width=4, context_dim=4, heads=2)
    with torch.no_grad():
        pool.rho.weight.copy_(torch.eye(4))
        pool.alpha.copy_(torch.tensor([0.0, 1.0]))
        pool.mu.copy_(torch.tensor([0.0, 0.0]))
        pool.sigma_raw.fill_(-20.0)                 # sigma -> 1e-3: keep lambda = 0 only
    x = torch.randn(1, 3, 17, 4)
    out = pool.filtered(x)
    assert torch.allclose(out[:, 0], x, atol=1e-6)  # alpha = 0: the input
    # lambda = 0 only: every joint gets the mean over joints
    assert torch.allclose(out[:, 1], x.mean(2, keepdim=True).expand_as(x), atol=1e-5)


def test_band_position_changes_the_pooled_context():
    """With the nonlinearity before pooling, each head's band shapes its context vector."""
    torch.manual_seed(0)
    pool = LaplacianContextPool(H36M17, width=8, context_dim=8, heads=2)
    x = torch.randn(2, 5, 17, 8)
    with torch.no_grad():
        pool.mu.copy_(torch.tensor([0.0, 5.0]))
        pool.sigma_raw.fill_(0.0)
        v = pool(x)
    assert (v[:, 0] - v[:, 1]).abs().max() > 1e-3


# ---- Gaussian temporal pooling (eq. 8-10) -------------------------------------------------------

def test_temporal_filter_keeps_a_constant_sequence():
    pool = GaussianTemporalPool(width=4, context_dim=4, heads=3, radius=5, learn_shift=True)
    with torch.no_grad():
        pool.eta.weight.copy_(torch.eye(4))
        pool.mu.copy_(torch.tensor([0.0, 2.0, -3.0]))
    const = torch.randn(1, 1, 17, 4).expand(2, 11, 17, 4)
    out = pool.filtered(const)
    assert torch.allclose(out, const.unsqueeze(1).expand_as(out), atol=1e-6)
    rows = pool.filters(11).sum(-1)
    assert torch.allclose(rows, torch.ones_like(rows), atol=1e-6)


def test_temporal_kernels_scale_with_sigma():
    pool = GaussianTemporalPool(width=4, context_dim=4, heads=3, radius=8)
    g = pool.kernels()
    assert torch.allclose(g.sum(-1), torch.ones(3), atol=1e-6)
    # wider sigma -> flatter kernel: the centre tap decreases from head 0 to head 2
    centre = g[:, 8]
    assert centre[0] > centre[1] > centre[2]
    # an impulse in time is spread by the kernel of each head
    with torch.no_grad():
        pool.eta.weight.copy_(torch.eye(4))
    x = torch.zeros(1, 17, 1, 4)
    x[0, 8] = 1.0
    out = pool.filtered(x)[0, :, :, 0, 0]           # (H, T)
    assert torch.allclose(out[:, 8], centre, atol=1e-6)


def test_detail_filter_removes_a_constant_sequence_and_keeps_a_jump():
    pool = GaussianTemporalPool(width=4, context_dim=4, heads=3, radius=5, filter="detail")
    with torch.no_grad():
        pool.eta.weight.copy_(torch.eye(4))
    const = torch.randn(1, 1, 17, 4).expand(2, 11, 17, 4)
    assert pool.filtered(const).abs().max() < 1e-6               # a still pose: nothing is left
    rows = pool.filters(11).sum(-1)
    assert torch.allclose(rows, torch.zeros_like(rows), atol=1e-6)
    x = torch.zeros(1, 11, 1, 4)
    x[0, 5] = 1.0                                                # an impulse keeps 1 - g_h(0) at t = 5
    out = pool.filtered(x)[0, :, 5, 0, 0]
    assert torch.allclose(out, 1 - pool.kernels()[:, 5], atol=1e-6)
    assert (out > 0.05).all()


def test_detail_scale_is_a_running_buffer_set_in_training_and_frozen_in_eval():
    torch.manual_seed(0)
    pool = GaussianTemporalPool(width=4, context_dim=4, heads=2, radius=3, filter="detail")
    x = torch.randn(3, 9, 5, 4)
    pool.train()
    pool(x)
    first = pool.filtered(x).detach().pow(2).mean(dim=(0, 2, 3, 4))
    assert bool(pool.seen) and torch.allclose(pool.u_ms, first, rtol=1e-5)
    pool(2 * x)                                                  # moves 1 % of the way to 4 x
    assert torch.allclose(pool.u_ms, first * (0.99 + 0.01 * 4), rtol=1e-5)
    pool.eval()
    kept = pool.u_ms.clone()
    slow, fast = pool(0.5 * x), pool(3 * x)
    assert torch.equal(pool.u_ms, kept)
    # one scale for all samples: a faster motion gives another context (a LayerNorm per token would not)
    assert (slow - fast).abs().max() > 1e-2


def test_detail_filter_leaves_the_mean_ablation_and_the_knockout_as_they_were():
    torch.manual_seed(0)
    x = torch.randn(2, 9, 5, 6)
    plain = GaussianTemporalPool(width=6, context_dim=4, heads=1, radius=3, mode="mean")
    detail_mean = GaussianTemporalPool(width=6, context_dim=4, heads=1, radius=3, mode="mean", filter="detail")
    detail_mean.load_state_dict(plain.state_dict())
    assert torch.allclose(plain(x), detail_mean(x))
    heads = GaussianTemporalPool(width=6, context_dim=4, heads=3, radius=3, filter="detail")
    with torch.no_grad():
        heads.eta.weight.copy_(plain.eta.weight)
    live = heads(x)
    heads.knocked_out = True
    out = heads(x)
    assert torch.allclose(out, plain(x).expand_as(out), atol=1e-6)   # knock-out = the plain mean
    assert (live - out).abs().max() > 1e-2


def test_only_the_detail_filter_adds_state_so_smooth_checkpoints_keep_their_keys():
    keys = {"eta.weight", "eta_bias", "sigma_raw", "mu", "offsets"}
    assert set(GaussianTemporalPool(width=4, context_dim=4, heads=2, radius=3).state_dict()) == keys
    assert set(GaussianTemporalPool(width=4, context_dim=4, heads=1, radius=3, mode="mean",
                                    filter="detail").state_dict()) == {"eta.weight", "eta_bias", "offsets"}
    detail = GaussianTemporalPool(width=4, context_dim=4, heads=2, radius=3, filter="detail")
    assert set(detail.state_dict()) == keys | {"u_ms", "seen"}


def test_a_checkpoint_from_before_context_norm_loads_as_the_per_sample_norm_it_was_trained_with(tmp_path, tiny_cfg,
                                                                                                 clip_batch):
    from poseprompt.model.checkpoint import load_checkpoint, save_checkpoint
    torch.manual_seed(0)
    model = build_model({**tiny_cfg, "context_norm": "sample"}).eval()
    path = save_checkpoint(tmp_path / "m.pt", model)
    payload = torch.load(path, weights_only=True)
    del payload["model_config"]["context_norm"]                       # as written before the option existed
    torch.save(payload, tmp_path / "old.pt")
    old = load_checkpoint(tmp_path / "old.pt")
    assert old.cfg.context_norm == "sample"
    with torch.no_grad():
        assert torch.equal(old(clip_batch), model(clip_batch))
    with pytest.raises(ConfigError, match="context_norm"):
        ModelConfig.from_dict({"context_norm": "layer"})


def test_unknown_temporal_filter_is_an_error_naming_the_key():
    with pytest.raises(ConfigError, match="temporal_filter"):
        ModelConfig.from_dict({"temporal_filter": "sharpen"})


# ---- backbone -----------------------------------------------------------------------------------

def test_fusion_choosing_pose_velocity_is_the_identity():
    fuse = AdaptiveMotionFusion()
    with torch.no_grad():
        fuse.mix.weight.zero_()
        fuse.mix.bias.copy_(torch.tensor([-30.0, 30.0]))  # a -> 0: v_fused = diff(x)
    x, v = torch.randn(2, 6, 17, 8), torch.randn(2, 6, 17, 8)
    x_new, v_new = fuse(x, v)
    assert torch.allclose(x_new, x, atol=1e-5)
    assert torch.allclose(v_new, frame_difference(x), atol=1e-5)


def test_samples_in_a_batch_are_independent(tiny_cfg, clip_batch):
    """GAtFuN's public prompt encoder attends across the batch; ours must not."""
    for prompt in ("static", "adaptive"):
        model = build_model({**tiny_cfg, "prompt": prompt}).eval()
        texts = {"action": ["walk", "run", "jump"]}
        with torch.no_grad():
            y = model(clip_batch, texts)
            changed = clip_batch.clone()
            changed[2] = torch.randn_like(changed[2])
            y2 = model(changed, {"action": ["walk", "run", "box"]})
        assert torch.allclose(y[:2], y2[:2], atol=1e-6), prompt
        assert not torch.allclose(y[2], y2[2], atol=1e-4)


# ---- prompts (eq. 14-16) ------------------------------------------------------------------------

def _prompts(model, x, texts=None):
    model.eval()
    with torch.no_grad(), model.capture() as probe:
        model(x, texts)
    return probe[""]


def test_adaptive_prompts_depend_on_the_pose_static_do_not(tiny_cfg, clip_batch):
    for prompt, should_differ in (("adaptive", True), ("static", False)):
        model = build_model({**tiny_cfg, "prompt": prompt})
        seq = _prompts(model, clip_batch)["prompt_sequence"]
        if seq.shape[0] == 1:                       # static, one distinct text tuple: computed once
            assert not should_differ
            continue
        differ = (seq[0] - seq[1]).abs().max() > 1e-6
        assert bool(differ) == should_differ, prompt
    adaptive = build_model({**tiny_cfg, "prompt": "adaptive"})
    p = _prompts(adaptive, clip_batch)
    assert (p["P_prime"][0] - p["P_prime"][1]).abs().max() > 1e-6


def test_pooled_prompt_changes_with_the_samples_own_text(tiny_cfg, clip_batch):
    model = build_model({**tiny_cfg, "prompt": "static"})
    a = _prompts(model, clip_batch, {"action": ["walk", "walk", "walk"]})["P_prime"]
    b = _prompts(model, clip_batch, {"action": ["walk", "kick", "walk"]})["P_prime"]
    assert torch.allclose(a[0], b[0], atol=1e-5) and torch.allclose(a[2], b[2], atol=1e-5)
    assert (a[1] - b[1]).abs().max() > 1e-4


def test_generic_action_ignores_the_label(tiny_cfg, clip_batch):
    model = build_model({**tiny_cfg, "prompt": "static", "action_text": "generic"})
    a = _prompts(model, clip_batch, {"action": ["walk", "walk", "walk"]})["P_prime"]
    b = _prompts(model, clip_batch, {"action": ["kick", "run", "box"]})["P_prime"]
    assert torch.equal(a, b)
    assert model.slot_texts_for({"action": ["kick"]}, 1)[model.cfg.slots.index("action")] == ["action"]


def test_training_step_updates_prompt_context_adapters_and_pooling_not_the_text_tower(tiny_cfg, clip_batch):
    torch.manual_seed(0)
    model = build_model({**tiny_cfg, "prompt": "adaptive"}).train()
    frozen = {k: v.clone() for k, v in model.text.state_dict().items()}
    watched = {
        "r_k": model.prompts.context, "f_k": model.prompts.adapt.w1,
        "mu_s": model.spatial_pool.mu, "sigma_s": model.spatial_pool.sigma_raw, "alpha_s": model.spatial_pool.alpha,
        "rho": model.spatial_pool.rho.weight, "sigma_t": model.temporal_pool.sigma_raw,
        "eta": model.temporal_pool.eta.weight, "gate": model.gate.a_s, "slot_mlp": model.slot_mlp.mlp.w1,
    }
    before = {k: p.detach().clone() for k, p in watched.items()}
    assert all(not p.requires_grad for p in model.text.parameters())
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    target = torch.randn(3, tiny_cfg["frames"], 17, 3) * 0.2
    loss, _ = training_loss(model(clip_batch, {"action": ["walk", "run", "jump"]}), target)
    loss.backward()
    for k, p in watched.items():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient reaches {k}"
    opt.step()
    for k, p in watched.items():
        assert not torch.equal(p.detach(), before[k]), f"{k} did not change"
    for k, v in model.text.state_dict().items():
        assert torch.equal(v, frozen[k]), f"frozen text weight {k} changed"
    assert not model.text.training                  # stays in eval mode under model.train()


def test_text_width_is_independent_of_pose_width(tiny_cfg, clip_batch):
    model = build_model({**tiny_cfg, "width": 16, "heads": 2})   # text tower is 64 wide
    assert model.text.width == 64
    assert model(clip_batch).shape == clip_batch.shape


def test_capture_records_attention_and_fusion(tiny_cfg, clip_batch):
    model = build_model({**tiny_cfg, "prompt": "adaptive"}).eval()
    with torch.no_grad(), model.capture() as probe:
        model(clip_batch)
    att = probe["cross_attn.pose"]["attn"]           # (T*N, S) averaged over batch and heads
    assert att.shape == (9 * 17, model.cfg.prompt_sequence_length)
    assert torch.allclose(att.sum(-1), torch.ones(9 * 17), atol=1e-5)
    assert 0.0 < probe["layers.0.fuse_spatial"]["weight_motion"] < 1.0
    assert probe["layers.1.pose_temporal.mixer"]["attn"].shape == (9, 9)
    assert model.layers[0].pose_spatial.mixer.probe is None      # capture is switched off again


@pytest.mark.parametrize("depth", [1, 2])
@pytest.mark.parametrize("prompt", ["none", "static", "adaptive", "direct"])
def test_every_trainable_parameter_gets_a_gradient(tiny_cfg, clip_batch, depth, prompt):
    """No dead weights (data-parallel training requires it, and a dead injection point is a bug)."""
    model = build_model({**tiny_cfg, "depth": depth, "prompt": prompt})
    y = model(clip_batch, {"action": ["walk", "run", "jump"]})
    (y * torch.randn_like(y)).sum().backward()
    dead = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.any())]
    assert not dead
