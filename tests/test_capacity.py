"""The capacity-matched controls: gatfun-wide (no prompt, widened) and context-direct (no text)."""
import pytest
import torch

from poseprompt import build_model
from poseprompt.config.params import default_params, variant_config
from poseprompt.config.presets import preset_params
from poseprompt.config.sections import ConfigError, ModelConfig
from poseprompt.model.capacity import capacity_report, match_capacity, trainable_parameters
from poseprompt.model.checkpoint import load_checkpoint, save_checkpoint
from poseprompt.model.lifter import PosePromptLifter

CONTROLS = ("gatfun-wide", "context-direct")


def _within(report, tol=0.05):
    return abs(report["relative_gap"]) <= tol


@pytest.mark.parametrize("preset", ["default", "paper", "study-bandai"])
def test_controls_match_full_within_5_percent_in_every_preset(preset):
    p = default_params() if preset == "default" else preset_params(preset, check=False)
    p["model"]["text_encoder"] = {**p["model"]["text_encoder"], "pretrained": None}   # counts need no weights
    full = trainable_parameters(variant_config(p, "full"))
    for v in CONTROLS:
        assert v in p["variants"], f"{preset} lacks {v}"
        r = capacity_report(variant_config(p, v))
        assert r["target"] == full
        assert _within(r), (preset, v, r)
    # without matching the controls are far from full: the solved size is what closes the gap
    gatfun = trainable_parameters(variant_config(p, "gatfun"))
    assert gatfun < 0.9 * full


def test_the_solved_size_follows_the_configuration(tiny_cfg):
    """Not a hand-typed width: a larger prompt path gives a wider control."""
    small = match_capacity(ModelConfig.from_dict({**tiny_cfg, "prompt": "none", "match_params": "adaptive"}))
    big = match_capacity(ModelConfig.from_dict({**tiny_cfg, "prompt": "none", "match_params": "adaptive",
                                                "prompt_encoder_layers": 3}))
    assert big.width > small.width > tiny_cfg["width"]
    assert small.width % small.heads == 0 and small.match_params == "none"
    direct = match_capacity(ModelConfig.from_dict({**tiny_cfg, "prompt": "direct", "match_params": "adaptive"}))
    assert _within(capacity_report(ModelConfig.from_dict({**tiny_cfg, "prompt": "direct", "match_params": "adaptive"})),
                   0.01)
    assert direct.width == tiny_cfg["width"]          # the backbone stays full's


def test_matching_leaves_the_seed_alone_and_checkpoints_rebuild_the_solved_model(tmp_path, tiny_cfg, clip_batch):
    for over in ({"prompt": "none", "match_params": "adaptive"}, {"prompt": "direct", "match_params": "adaptive"}):
        cfg = ModelConfig.from_dict({**tiny_cfg, **over})
        torch.manual_seed(0)
        a = build_model(cfg)
        torch.manual_seed(0)
        b = PosePromptLifter(match_capacity(cfg))
        assert a.cfg == b.cfg and a.cfg.match_params == "none"
        assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
        path = save_checkpoint(tmp_path / f"{over['prompt']}.pt", a)
        c = load_checkpoint(path)
        with torch.no_grad():
            assert torch.equal(a.eval()(clip_batch), c(clip_batch))


def test_match_params_needs_a_free_size():
    with pytest.raises(ConfigError, match="model.match_params"):
        ModelConfig(prompt="adaptive", match_params="adaptive")
    with pytest.raises(ConfigError, match="model.match_params"):
        ModelConfig(prompt="none", match_params="twice")


def test_context_direct_has_no_text_and_adapts_to_the_pose(tiny_cfg, clip_batch):
    model = build_model({**tiny_cfg, "prompt": "direct", "match_params": "adaptive"}).eval()
    assert not hasattr(model, "text") and model.parameter_counts()["text_encoder"] == 0
    assert not model.cfg.uses_text and model.cfg.pools_context
    with torch.no_grad(), model.capture() as probe:
        y = model(clip_batch, {"action": ["walk", "run", "jump"]})
    p = probe[""]
    assert (p["P_prime"][0] - p["P_prime"][1]).abs().max() > 1e-6       # P' depends on the sample's pose
    assert p["prompt_tokens"].shape[1] == model.cfg.num_slots * model.cfg.context_tokens
    with torch.no_grad():
        y = model(clip_batch, {"action": ["walk", "run", "jump"]})
        assert torch.equal(y, model(clip_batch, {"action": ["box", "box", "box"]}))   # texts are ignored
        with model.knockout("prompt"):
            cut = model(clip_batch)
    assert (cut - y).abs().max() > 1e-6
    assert "delta_p" not in model.knockouts() and {"spatial_heads", "prompt", "add_pose"} <= set(model.knockouts())
