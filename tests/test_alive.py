"""The new components act: each one changes the output at initialisation, and the audit's tools
tell a live component from a dead one (issue "The method, alive")."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from poseprompt import build_model
from poseprompt.config.sections import ConfigError
from poseprompt.data.format import PoseSequences
from poseprompt.data.windows import PoseWindows
from poseprompt.model.backbone import frame_difference
from poseprompt.stages.audit import clip_errors, component_groups, group_of, knockout_effects, movement


def _model(tiny_cfg, x=None, **over):
    """A fresh model in eval mode; with clips ``x``, after one training-mode forward pass on them
    (no parameter changes): the state at the first step, where the context standardisation has
    the statistics of the first batch."""
    torch.manual_seed(0)
    model = build_model({**tiny_cfg, **over})
    if x is not None:
        with torch.no_grad():
            model.train()(x)
    return model.eval()


def _capture(model, x, texts=None):
    with torch.no_grad(), model.capture() as st:
        y = model(x, texts)
    return y, st


@pytest.fixture
def poses():
    """Eight clips of a smooth random motion: different poses, realistic scale."""
    g = torch.Generator().manual_seed(1)
    base = torch.randn(8, 1, 17, 2, generator=g) * 0.3
    drift = torch.cumsum(torch.randn(8, 9, 17, 2, generator=g) * 0.01, dim=1)
    x = torch.cat([base + drift, torch.ones(8, 9, 17, 1)], dim=-1)
    return x


def test_poolings_are_not_a_scaled_mean(tiny_cfg, poses):
    """Before the fix every Laplacian head had cosine 1.0000 with the plain mean over joints."""
    model = _model(tiny_cfg)
    _, st = _capture(model, poses)
    v = st[""]["v_s_heads"]                                           # (B, H, C)
    with torch.no_grad(), model.knockout("spatial_heads"), model.capture() as st0:
        model(poses)
    plain = st0[""]["v_s_heads"]
    rel = ((v - plain).norm(dim=-1) / plain.norm(dim=-1)).mean(0)
    assert rel.max() > 0.2, rel                                       # the high-band heads differ a lot
    c = v - v.mean(0, keepdim=True)                                   # between-sample variation per head
    cos = F.cosine_similarity(c[:, 0].flatten(), c[:, -1].flatten(), dim=0)
    assert cos < 0.95


def test_adaptation_starts_at_the_scale_of_the_context_and_changes_the_prompt(tiny_cfg, poses):
    model = _model(tiny_cfg, poses)
    _, st = _capture(model, poses)
    e = st[""]
    ratio = (e["delta_p"].norm(dim=(-1, -2)) / model.prompts.context.norm(dim=(-1, -2))[None]).mean()
    assert 0.3 < ratio < 3.0, ratio                                   # was 0.0015
    same_text = {"action": ["walk"] * len(poses)}
    _, st = _capture(model, poses, same_text)
    P = st[""]["P_prime"]
    rel = (P[0] - P[1]).norm() / P[0].norm()
    assert rel > 0.01, rel                                            # was 3e-5 between two poses


def test_prompt_sequence_has_no_foreign_tokens(tiny_cfg, poses):
    """A slot text shorter than t tokens keeps only its own tokens; padding sits after [end], where
    nothing real sees it: filling the padding with anything changes no output."""
    model = _model(tiny_cfg, text_tokens=2, prompt_length=4)
    texts = {"action": ["walk"] * 4 + ["sit down"] * 4}                 # 1 and 2 word tokens
    ids, lengths = model.text.word_ids(["speed", "sit down", "a person"], 2)
    assert lengths.tolist() == [1, 2, 2]
    _, st = _capture(model, poses, texts)
    seq, valid = st[""]["prompt_sequence"], st[""]["prompt_valid"]
    K, L, t = model.cfg.num_slots, model.cfg.prompt_length, model.cfg.text_tokens
    n_words = torch.tensor([[len(model.text._word_ids(s, t)[0][:model.text._word_ids(s, t)[1]])
                             for s in col] for col in zip(*model.slot_texts_for(texts, len(poses)))])
    assert valid.sum(1).tolist() == (2 + (L - t) * K + n_words.sum(1)).tolist()
    pad_embedding = model.text.embed(torch.tensor([0]))[0]                  # the real token "!"
    for b in range(len(poses)):
        real = seq[b, valid[b]]
        assert not torch.isclose(real, pad_embedding, atol=1e-7).all(-1).any(), "token id 0 inside the prompt"
    # the padding is invisible: P' of a sample does not depend on how long the others' prompts are
    a = _capture(model, poses[:1], {"action": ["walk"]})[1][""]["P_prime"]
    b = _capture(model, poses[:2], {"action": ["walk", "sit down"]})[1][""]["P_prime"][:1]
    assert torch.allclose(a, b, atol=1e-5)


def test_motion_stream_starts_from_the_motion_of_the_joints(tiny_cfg):
    model = _model(tiny_cfg, prompt="none")
    still = torch.randn(1, 1, 17, 3).expand(2, 9, 17, 3).contiguous()      # nobody moves
    X, V = model.embed.streams(still)
    assert torch.allclose(V, torch.zeros_like(V), atol=1e-7)                 # no positional noise
    assert not torch.allclose(frame_difference(X), torch.zeros_like(X), atol=1e-4)


def test_motion_stream_carries_weight_from_the_start(tiny_cfg, poses):
    model = _model(tiny_cfg, prompt="none")
    y, st = _capture(model, poses)
    w = [v["weight_motion"] for v in st.values() if "weight_motion" in v]
    assert all(0.3 < a < 0.7 for a in w), w                                 # was 0.018
    with torch.no_grad(), model.knockout("motion_stream"):
        y_cut = model(poses)
    assert (y_cut - y).norm() / y.norm() > 0.05


def test_every_knockout_changes_the_output_of_a_fresh_model(tiny_cfg, poses):
    model = _model(tiny_cfg, poses, inject="both")
    texts = {"action": ["walk", "run"] * 4}
    model.set_reference_adaptation(poses, texts)
    y, _ = _capture(model, poses, texts)
    for name in model.knockouts():
        with torch.no_grad(), model.knockout(name):
            y_ko = model(poses, texts)
        assert (y_ko - y).abs().max() > 1e-6, f"knocking out {name} changes nothing"
    with pytest.raises(ValueError, match="not components of this variant"):
        with _model(tiny_cfg, prompt="none").knockout("delta_p"):
            pass


def _spread(v):
    v = v.flatten(1)
    return float((v - v.mean(0)).norm(dim=1).mean() / v.norm(dim=1).mean())


def test_standardised_context_makes_the_adaptation_depend_on_the_pose(tiny_cfg, poses):
    """Pooled contexts of different clips are alike (z varies by about 3 % of its norm between
    them); normalised per sample, Delta p_k inherits that and is nearly a constant (the earlier
    design: 0.3-3.6 % in the trained default). Standardised across samples, it varies by its
    own size between poses."""
    spread = {}
    for norm in ("batch", "sample"):
        _, st = _capture(_model(tiny_cfg, poses, context_norm=norm), poses)
        spread[norm] = (_spread(st[""]["z"]), _spread(st[""]["delta_p"]))
    assert spread["batch"][0] == pytest.approx(spread["sample"][0]) and spread["batch"][0] < 0.1
    assert spread["sample"][1] < 0.1, spread
    assert spread["batch"][1] > 0.5, spread


def test_mean_adaptation_knockout_tells_a_constant_adaptation_from_a_pose_dependent_one(tiny_cfg, poses):
    """``delta_p_mean`` gives every sample the mean Delta p_k of the reference clips: it changes
    nothing when Delta p_k does not depend on the pose (f_k's input weights zeroed by hand, so that
    f_k is a constant), while Delta p_k := 0 still does; for a live adaptation it changes the output."""
    model = _model(tiny_cfg, poses)
    with pytest.raises(ValueError, match="set_reference_adaptation"):
        with model.knockout("delta_p_mean"):
            pass
    model.set_reference_adaptation(poses[:4])
    y, _ = _capture(model, poses)
    with torch.no_grad(), model.knockout("delta_p_mean"):
        live = (model(poses) - y).abs().max()
    assert live > 1e-3, live
    with torch.no_grad():                                           # f_k(z_k) = f_k(0) != 0 for every sample
        f = model.prompts.adapt
        f.w1.zero_()
        f.b1.normal_(generator=torch.Generator().manual_seed(5))
        f.b2.copy_(model.prompts.context.flatten(1))
    model.set_reference_adaptation(poses[4:])
    y, st = _capture(model, poses)
    assert _spread(st[""]["delta_p"]) < 1e-6
    with torch.no_grad(), model.knockout("delta_p_mean"):
        assert torch.allclose(model(poses), y, atol=1e-6)
    with torch.no_grad(), model.knockout("delta_p"):
        assert (model(poses) - y).abs().max() > 1e-3


def test_context_standardiser_statistics():
    """Training batches: their own statistics (the first sets the running ones); eval and
    one-sample batches: the running ones, so eval samples do not depend on each other."""
    from poseprompt.model.context import SampleStandardiser
    g = torch.Generator().manual_seed(0)
    z = torch.randn(16, 5, generator=g) * 3.0 + 7.0
    s = SampleStandardiser(5).train()
    out = s(z)
    assert torch.allclose(out.mean(0), torch.zeros(5), atol=1e-5)
    assert torch.allclose(out.std(0, unbiased=False), torch.ones(5), atol=1e-3)
    assert torch.allclose(s.running_mean, z.mean(0)) and torch.allclose(s.running_var, z.var(0))
    one = s(z[:1])                                                  # one sample: the running statistics
    assert torch.allclose(one, (z[:1] - z.mean(0)) / torch.sqrt(z.var(0) + 1e-5), atol=1e-5)
    s(z + 1.0)                                                      # later batches: rate 0.1
    assert torch.allclose(s.running_mean, z.mean(0) + 0.1, atol=1e-5)
    s.eval()
    assert torch.allclose(s(z)[:3], s(z[:3]), atol=1e-6)
    assert int(s.batches) == 2


def test_context_from_layer1_pools_the_evolving_pose_state(tiny_cfg, poses):
    emb, lay = _model(tiny_cfg), _model(tiny_cfg, context_from="layer1")
    lay.load_state_dict(emb.state_dict())
    z_emb, z_lay = _capture(emb, poses)[1][""]["z"], _capture(lay, poses)[1][""]["z"]
    assert not torch.allclose(z_emb, z_lay, atol=1e-4)
    with torch.no_grad():                                            # a change of layer 1 reaches z only then
        g = torch.Generator().manual_seed(3)
        kick = torch.randn(lay.layers[0].pose_spatial.mlp.fc2.weight.shape, generator=g) * 0.5
        for m in (emb, lay):
            m.layers[0].pose_spatial.mlp.fc2.weight.add_(kick)
    assert torch.allclose(_capture(emb, poses)[1][""]["z"], z_emb, atol=1e-6)
    assert not torch.allclose(_capture(lay, poses)[1][""]["z"], z_lay, atol=1e-4)
    with pytest.raises(ConfigError, match="depth >= 2"):
        build_model({**tiny_cfg, "depth": 1, "context_from": "layer1"})


def test_groups_cover_the_new_components(tiny_cfg):
    model = _model(tiny_cfg)
    groups = component_groups(model)
    for g in ("spatial.mu", "spatial.sigma", "spatial.alpha", "gate.beta_s", "gate.beta_t", "temporal.sigma",
              "slot_mlp", "f_k", "r_k", "prompt_gates", "cross_attention", "fusion"):
        assert g in groups, g
    assert group_of("layers.1.fuse_temporal.mix.weight") == "fusion"
    assert group_of("add_prompt.motion.gate") == "prompt_gates"
    assert group_of("layers.0.pose_spatial.mixer.qkv.weight") == "backbone"


def test_movement_reports_change_against_weight_decay(tiny_cfg):
    model = _model(tiny_cfg)
    init = {n: p.detach().clone() for n, p in model.named_parameters()}
    with torch.no_grad():
        model.spatial_pool.mu.add_(0.5)
    mv = movement(model, init, decay_change=0.01)
    assert mv["spatial.mu"]["relative_change"] == pytest.approx(
        float((torch.full_like(init["spatial_pool.mu"], 0.5)).norm() / init["spatial_pool.mu"].norm()), rel=1e-5)
    assert mv["spatial.sigma"]["relative_change"] == 0.0
    assert mv["spatial.mu"]["ratio_to_wd"] > 5


def test_noise_walk_is_the_random_walk_adamw_makes_of_a_pure_noise_gradient(tiny_cfg):
    """AdamW on i.i.d. noise moves each coordinate by about sqrt(sum_t lr_t^2): the simulated
    reference must match that estimate, scale with the group's learning rate, follow the run's
    groups (lr_context for the pooling parameters) and be reported beside the movement."""
    import math
    from poseprompt.config.sections import TrainConfig
    from poseprompt.stages.audit import POOLING_AND_GATES, init_state, noise_walk
    from poseprompt.stages.optim import lr_factor
    model = _model(tiny_cfg)
    init = init_state(model)
    cfg = TrainConfig(lr=0.004, lr_context=10.0, warmup_steps=5, epochs=2)
    steps, per_epoch = 200, 100
    walk = noise_walk(model, init, cfg, per_epoch, steps, reps=64)
    assert set(walk) <= set(POOLING_AND_GATES) and {"spatial.mu", "temporal.sigma", "gate.beta_s"} <= set(walk)
    lam_max = float(model.spatial_pool.eigvals.max())          # the band centres' step unit
    lr_rms = math.sqrt(sum((cfg.lr * cfg.lr_context * lam_max * lr_factor(cfg, per_epoch, t)) ** 2
                           for t in range(steps)))
    mu0 = init["spatial_pool.mu"]
    d = mu0.numel()
    expected_norm = math.sqrt(2) * math.gamma((d + 1) / 2) / math.gamma(d / 2)       # E|N(0, I_d)|
    assert walk["spatial.mu"] == pytest.approx(lr_rms * expected_norm / float(mu0.norm()), rel=0.3)
    slower = noise_walk(model, init, TrainConfig(lr=0.004, lr_context=5.0, warmup_steps=5, epochs=2), per_epoch,
                        steps, reps=64)
    assert slower["spatial.mu"] == pytest.approx(walk["spatial.mu"] / 2, rel=0.15)
    # the prompt gates are not context parameters: lr_context does not move them
    assert slower["prompt_gates"] == pytest.approx(walk["prompt_gates"], rel=1e-6)
    assert noise_walk(model, init, cfg, per_epoch, steps, reps=64) == walk                # seeded: reproducible
    mv = movement(model, init, decay_change=0.01, walk=walk)
    assert mv["spatial.mu"]["noise_walk"] == walk["spatial.mu"]
    assert mv["spatial.mu"]["noise_walk_ratio_to_wd"] == pytest.approx(walk["spatial.mu"] / 0.01)
    assert "noise_walk" not in mv["r_k"]


def test_band_centres_step_in_units_of_the_largest_graph_frequency(tiny_cfg):
    """mu_h lives on [0, lambda_max]; its optimiser step is lr_context x lr x lambda_max (for Adam the
    same as learning mu_h / lambda_max), while the pool's other parameters keep lr_context x lr."""
    from poseprompt.config.sections import TrainConfig
    from poseprompt.stages.optim import param_groups
    model = _model(tiny_cfg)
    lam_max = float(model.spatial_pool.eigvals.max())
    assert lam_max > 2.0
    cfg = TrainConfig(lr=0.004, lr_context=10.0)
    groups = param_groups(model, cfg)
    lr_of = {id(p): o.get("lr", cfg.lr) for o in groups for p in o["params"]}
    assert lr_of[id(model.spatial_pool.mu)] == pytest.approx(cfg.lr * cfg.lr_context * lam_max)
    for p in (model.spatial_pool.sigma_raw, model.spatial_pool.alpha, model.temporal_pool.sigma_raw):
        assert lr_of[id(p)] == pytest.approx(cfg.lr * cfg.lr_context)
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert sum(p.numel() for o in groups for p in o["params"]) == n_params            # each parameter once
    # one AdamW step on any gradient moves every centre by its learning rate: lambda_max x the alphas' step
    opt = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    mu0, a0 = model.spatial_pool.mu.detach().clone(), model.spatial_pool.alpha.detach().clone()
    for p in model.parameters():
        p.grad = torch.full_like(p, 1e-3) if p.requires_grad else None
    opt.step()
    step_mu = (model.spatial_pool.mu.detach() - mu0).abs()
    step_a = (model.spatial_pool.alpha.detach() - a0).abs()
    assert torch.allclose(step_mu, step_a * lam_max, rtol=1e-3)


# ---- the audit on tiny models: a dead component shows nothing, a live one shows something -------

def _windows(frames=9, sequences=6, length=30):
    g = np.random.default_rng(0)
    F_ = sequences * length
    pose = g.normal(0, 0.2, (F_, 17, 3)).astype(np.float32)
    pose -= pose[:, :1]
    kp = pose[..., :2] + g.normal(0, 0.01, (F_, 17, 2)).astype(np.float32)
    split = PoseSequences(
        kp2d=kp, kp2d_px=kp * 500 + 500, conf=np.ones((F_, 17), np.float32), pose3d=pose,
        root3d=np.zeros((F_, 3), np.float32), valid=np.ones(F_, bool),
        starts=np.arange(0, F_ + 1, length, dtype=np.int64),
        subject=np.array(["S"] * sequences), name=np.array([f"s{i}" for i in range(sequences)]),
        action=np.array(["walk", "run"] * (sequences // 2)), style=np.array([""] * sequences),
        camera=np.array(["c"] * sequences), fps=np.full(sequences, 50.0), intrinsics=np.ones((sequences, 4)),
        image_size=np.full((sequences, 2), 1000.0), meta={"source": "test", "skeleton": "h36m17"})
    return PoseWindows(split, frames, stride=frames, mode="test")


def test_audit_sees_no_effect_of_a_component_zeroed_by_hand_and_an_effect_of_a_live_one(tiny_cfg):
    model = _model(tiny_cfg, inject="both")
    with torch.no_grad():
        model.add_prompt["motion"].gate.zero_()             # dead by hand: P' never reaches the motion stream
    w = _windows()
    res = knockout_effects(model, {"test": w})
    dead = res["effects"]["scale_motion"]["test"]
    live = res["effects"]["add_pose"]["test"]
    assert dead["mean"] == 0.0 and dead["lo"] == 0.0 and dead["hi"] == 0.0 and not dead["significant"]
    assert abs(live["mean"]) > 0.1 and live["significant"]
    assert res["clips"]["test"] == len(w)
    assert "text:action" in res["effects"]                     # the label slot's text replaced by "action"
    e = clip_errors(model, w, np.arange(len(w)))
    assert e.shape == (len(w),) and np.all(e > 0)


def test_head_knockouts_with_reestimated_statistics_leave_the_model_as_it_was(tiny_cfg):
    """``spatial_heads+stats``: the heads replaced and the standardisation's statistics taken from
    the knocked-out model on the reference clips; afterwards the trained statistics are back."""
    w = _windows()
    model = _model(tiny_cfg, w.gather(np.arange(len(w)))["x"])
    st = model.slot_mlp.standardise
    before = st.running_mean.clone(), st.running_var.clone()
    res = knockout_effects(model, {"val": w, "test": w})
    for k in ("spatial_heads", "temporal_heads"):
        plain, fair = res["effects"][k]["test"]["mean"], res["effects"][f"{k}+stats"]["test"]["mean"]
        assert fair != plain, k                                     # other statistics, another output
        assert "re-estimated" in res["effects"][f"{k}+stats"]["what"]
    assert torch.equal(st.running_mean, before[0]) and torch.equal(st.running_var, before[1])
    sample = knockout_effects(_model(tiny_cfg, context_norm="sample"), {"test": w})
    assert "spatial_heads" in sample["effects"] and "spatial_heads+stats" not in sample["effects"]


def test_parameters_back_at_init_knockouts_show_what_training_changed_and_only_that(tiny_cfg):
    """``init:*`` puts a group back at its initial value: a change that does not alter the function
    (gate logits shifted by a constant: the same softmax) costs exactly nothing, a moved band costs
    something; groups that did not move are not audited, and afterwards the trained values are back."""
    from poseprompt.stages.audit import init_state
    w = _windows()
    model = _model(tiny_cfg, w.gather(np.arange(len(w)))["x"])
    init = init_state(model)
    assert knockout_effects(model, {"val": w, "test": w}, init=init)["effects"].keys().isdisjoint(
        {"init:spatial", "init:temporal", "init:gates"})                  # nothing moved: nothing to audit
    with torch.no_grad():
        model.gate.a_s += 3.0                      # moved, but beta^s = softmax(a_s) is the same
        model.gate.a_t += 3.0
        model.spatial_pool.mu += 0.8               # a moved band: other masks, another context
    trained = {n: p.detach().clone() for n, p in model.named_parameters()}
    res = knockout_effects(model, {"val": w, "test": w}, init=init)
    gates, bands = res["effects"]["init:gates"]["test"], res["effects"]["init:spatial"]["test"]
    assert abs(gates["mean"]) < 1e-4 and not gates["significant"]
    assert abs(bands["mean"]) > 0.01 and abs(bands["mean"]) > 100 * abs(gates["mean"])
    assert "init:temporal" not in res["effects"]                          # the kernels did not move
    assert "initial values" in res["effects"]["init:spatial"]["what"]
    assert all(torch.equal(p, trained[n]) for n, p in model.named_parameters())


def test_every_variant_starts_from_the_same_backbone_for_the_same_seed(tiny_cfg):
    """Paired comparisons: the prompt path is built after the backbone is initialised."""
    torch.manual_seed(5)
    base = build_model({**tiny_cfg, "prompt": "none"}).state_dict()
    torch.manual_seed(5)
    full = build_model({**tiny_cfg, "prompt": "adaptive"}).state_dict()
    for k, v in base.items():
        assert torch.equal(v, full[k]), k
