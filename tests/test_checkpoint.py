import pytest
import torch

from poseprompt import build_model, load_checkpoint, save_checkpoint
from poseprompt.model.checkpoint import CheckpointError, read_checkpoint


def test_round_trip_rebuilds_the_model_from_the_file_alone(tmp_path, tiny_cfg, clip_batch):
    model = build_model({**tiny_cfg, "prompt": "adaptive"}).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.01 * torch.randn_like(p))
    path = save_checkpoint(tmp_path / "m.pt", model, train_state={"epoch": 3}, params={"seed": 1})
    loaded = load_checkpoint(path)
    assert loaded.cfg == model.cfg
    texts = {"action": ["walk", "run", "jump"]}
    with torch.no_grad():
        assert torch.equal(loaded(clip_batch, texts), model(clip_batch, texts))
    payload = read_checkpoint(path)
    assert payload["train_state"] == {"epoch": 3} and payload["params"] == {"seed": 1}
    assert payload["text_weights_included"]          # random offline tower: stored, to be reproducible


def test_corrupt_and_foreign_files_are_explained(tmp_path, tiny_cfg):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="bad.pt: not a readable checkpoint"):
        load_checkpoint(bad)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(CheckpointError, match="foreign.pt: not a poseprompt checkpoint"):
        load_checkpoint(foreign)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_checkpoint(tmp_path / "missing.pt")
    # truncated file
    good = save_checkpoint(tmp_path / "good.pt", build_model({**tiny_cfg, "prompt": "none"}))
    data = good.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cut.pt"):
        load_checkpoint(tmp_path / "cut.pt")


def test_mismatched_weights_are_explained(tmp_path, tiny_cfg):
    path = save_checkpoint(tmp_path / "m.pt", build_model({**tiny_cfg, "prompt": "none"}))
    payload = torch.load(path, weights_only=False)
    payload["model_config"]["prompt"] = "static"        # config says prompts, weights have none
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="weights do not match"):
        load_checkpoint(path)


def test_failed_save_leaves_the_previous_file(tmp_path, tiny_cfg, monkeypatch):
    model = build_model({**tiny_cfg, "prompt": "none"})
    path = save_checkpoint(tmp_path / "m.pt", model)
    before = path.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError):
        save_checkpoint(path, model)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]     # no temporary file left behind
