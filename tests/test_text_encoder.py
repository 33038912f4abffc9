import time

import open_clip
import pytest
import torch

from poseprompt.config import TextEncoderConfig
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
