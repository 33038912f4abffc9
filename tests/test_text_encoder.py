import time

import open_clip
import pytest
import torch

from poseprompt.config.sections import TextEncoderConfig
from poseprompt.model.text_encoder import FrozenTextEncoder, PretrainedWeightsUnavailable, create_clip


def test_adapter_reproduces_open_clip_encode_text():
    cfg = TextEncoderConfig()
    clip = create_clip(cfg).eval()
    enc = FrozenTextEncoder(cfg)
    ids = enc.tokenize(["a person walking", "sit down", "a fast kick to the left"])
    with torch.no_grad():
        ours = enc.encode_text(ids)
        theirs = clip.encode_text(ids)
    assert ours.shape == (3, enc.embed_dim)
    assert torch.allclose(ours, theirs, atol=1e-5)
    # same seed, same tower: the offline default is reproducible
    assert enc.fingerprint() == FrozenTextEncoder(cfg).fingerprint()


def test_adapter_matches_a_builtin_architecture():
    """Same check on open_clip's own ViT-B-32 text tower (random weights, offline)."""
    cfg = TextEncoderConfig(arch="ViT-B-32")
    enc = FrozenTextEncoder(cfg)
    clip = create_clip(cfg).eval()
    ids = open_clip.get_tokenizer("ViT-B-32")(["a photo of a person", "leg"])
    with torch.no_grad():
        assert torch.allclose(enc.encode_text(ids), clip.encode_text(ids), atol=1e-4)
    assert enc.width == 512 and enc.context_length == 77


def test_word_ids_strip_special_tokens_and_count_the_real_tokens():
    enc = FrozenTextEncoder(TextEncoderConfig())
    ids, lengths = enc.word_ids(["walk", "a very long description of a motion"], 3)
    assert ids.shape == (2, 3) and lengths.tolist() == [1, 3]   # the rectangle's rest is never placed
    assert enc.sot_id not in ids.tolist()[1] and enc.eot_id not in ids.tolist()[1]
    full = enc.tokenize(["walk"])[0]
    assert ids[0, 0] == full[1]                                # first word token


def test_gradients_flow_through_the_frozen_tower():
    enc = FrozenTextEncoder(TextEncoderConfig())
    emb = torch.randn(2, 10, enc.width, requires_grad=True)
    out = enc(emb)[:, -1]
    # a random read-out: a plain sum of a LayerNorm output is constant and has no gradient
    (out * torch.randn_like(out)).sum().backward()
    assert emb.grad is not None and emb.grad.abs().sum() > 0
    assert all(p.grad is None for p in enc.parameters())


def test_tower_stored_in_bf16_matches_float32_and_keeps_its_fingerprint(tmp_path):
    """compute_in(bf16) (what training does under bf16 autocast): outputs close to float32, float32
    gradients into the prompt embeddings, the same fingerprint, and a checkpoint of the bf16 tower
    loads into a float32 model that computes the same outputs."""
    from poseprompt.config.sections import ModelConfig
    from poseprompt.model.checkpoint import load_checkpoint, save_checkpoint
    from poseprompt.model.lifter import build_model
    from conftest import TINY
    enc32, enc16 = FrozenTextEncoder(TextEncoderConfig()), FrozenTextEncoder(TextEncoderConfig())
    fp = enc32.fingerprint()
    enc16.compute_in(torch.bfloat16)
    assert enc16.compute_dtype == torch.bfloat16 and enc16.transformer.resblocks[0].mlp.c_fc.weight.dtype == torch.bfloat16
    assert enc16.token_embedding.weight.dtype == torch.float32          # the prompt context is built in float32
    assert enc16.fingerprint() == fp
    emb = torch.randn(3, 12, enc32.width, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a, b = enc32(emb), enc16(emb)
    assert b.dtype == torch.float32
    rel = float((a - b).norm() / a.norm())
    assert 0 < rel < 0.05, rel                                           # bf16 rounding, not another function
    e = emb.clone().requires_grad_(True)
    out = enc16(e)[:, -1]
    (out * torch.randn_like(out)).sum().backward()
    assert e.grad.dtype == torch.float32 and torch.isfinite(e.grad).all() and e.grad.abs().sum() > 0
    # a model trained with the bf16 tower, saved, then loaded in float32 (evaluation on any device)
    torch.manual_seed(0)
    model = build_model(ModelConfig.from_dict(TINY)).eval()
    model.text.compute_in(torch.bfloat16)
    x = torch.randn(2, TINY["frames"], 17, 3, generator=torch.Generator().manual_seed(1)) * 0.3
    x[..., 2] = 1.0
    texts = {"action": ["walk", "sit"]}
    with torch.no_grad():
        before = model(x, texts)
    save_checkpoint(tmp_path / "m.pt", model)
    loaded = load_checkpoint(tmp_path / "m.pt")
    assert loaded.text.compute_dtype == torch.float32
    with torch.no_grad():
        after = loaded(x, texts)
    assert torch.allclose(before, after, atol=2e-3), (before - after).abs().max()


def test_pretrained_weights_offline_fail_fast_with_instructions(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.time()
    with pytest.raises(PretrainedWeightsUnavailable, match="make weights") as err:
        FrozenTextEncoder(TextEncoderConfig(arch="ViT-B-32", pretrained="openai"))
    assert time.time() - t0 < 10
    assert "model.text_encoder.checkpoint" in str(err.value)


def test_unknown_tag_and_missing_checkpoint_are_explained(tmp_path):
    with pytest.raises(PretrainedWeightsUnavailable, match="not a known tag"):
        FrozenTextEncoder(TextEncoderConfig(arch="ViT-B-32", pretrained="nonexistent"))
    with pytest.raises(PretrainedWeightsUnavailable, match="file not found"):
        FrozenTextEncoder(TextEncoderConfig(arch="ViT-B-32", checkpoint=str(tmp_path / "nope.bin")))


def test_local_checkpoint_is_loaded(tmp_path):
    """A local open_clip checkpoint (here: a saved random ViT-B-32) is accepted as the weights."""
    cfg = TextEncoderConfig(arch="ViT-B-32", init_seed=3)
    clip = create_clip(cfg)
    path = tmp_path / "vitb32.pt"
    torch.save(clip.state_dict(), path)
    enc = FrozenTextEncoder(TextEncoderConfig(arch="ViT-B-32", checkpoint=str(path)))
    assert torch.equal(enc.token_embedding.weight, clip.token_embedding.weight)
