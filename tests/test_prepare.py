"""Data preparation: validation carved from training data, atomic output, errors, timing."""
import time

import numpy as np
import pytest

from conftest import tiny_params
from poseprompt.data.format import PoseSequences
from poseprompt.stages.prepare import prepare, split_validation


def test_prepare_writes_every_split_with_disjoint_subjects(tmp_path):
    params = tiny_params()
    summary = prepare(params["data"], tmp_path / "out", seed=0)
    assert set(summary["splits"]) == {"train", "val", "test", "shift_camera-0.5", "shift_camera-1"}
    splits = {n: PoseSequences.load(tmp_path / "out" / f"{n}.npz") for n in summary["splits"]}
    tr, va, te = (set(splits[n].subject.tolist()) for n in ("train", "val", "test"))
    assert tr and va and te and not (tr & va) and not (tr & te) and not (va & te)
    assert splits["val"].meta["split"] == "val" and splits["val"].meta["val_rule"]["by"] == "subject"
    assert summary["splits"]["test"]["frames"] == splits["test"].num_frames


def test_prepare_writes_the_same_bytes_twice(tmp_path):
    """Bit-reproducible outputs: the same inputs give byte-identical files (no time stamp inside the
    npz), so preparing again invalidates nothing downstream."""
    params = tiny_params()
    prepare(params["data"], tmp_path / "a", seed=0)
    time.sleep(2.1)                                          # the zip format's time stamps have 2 s steps
    prepare(params["data"], tmp_path / "b", seed=0)
    a = {p.name: p.read_bytes() for p in (tmp_path / "a").iterdir()}
    b = {p.name: p.read_bytes() for p in (tmp_path / "b").iterdir()}
    assert sorted(a) == sorted(b) and len(a) >= 4
    assert all(a[n] == b[n] for n in a), [n for n in a if a[n] != b[n]]


def test_validation_by_sequence_keeps_all_views_of_a_recording_together(tmp_path):
    params = tiny_params()
    params["data"]["synthetic"]["cameras"] = 2
    summary = prepare({**params["data"], "val": {"by": "sequence", "fraction": 0.3}}, tmp_path / "out", seed=0)
    tr = PoseSequences.load(tmp_path / "out" / "train.npz")
    va = PoseSequences.load(tmp_path / "out" / "val.npz")
    key = lambda s: {f"{a}|{b}" for a, b in zip(s.subject, s.name)}  # noqa: E731
    assert key(va) and not (key(tr) & key(va))
    assert summary["splits"]["val"]["sequences"] >= 2                   # both camera views


def test_failed_preparation_leaves_the_previous_output(tmp_path, monkeypatch):
    params = tiny_params()
    out = tmp_path / "out"
    prepare(params["data"], out, seed=0)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def broken_save(self, path):
        raise OSError("disk full")
    monkeypatch.setattr(PoseSequences, "save", broken_save)
    with pytest.raises(OSError):
        prepare(params["data"], out, seed=1)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]        # no temporary folder left


def test_bad_data_config_is_explained(tmp_path):
    params = tiny_params()
    with pytest.raises(ValueError, match="data.source = 'mocap'"):
        prepare({**params["data"], "source": "mocap"}, tmp_path / "x")
    with pytest.raises(ValueError, match="data: unknown keys \\['sources'\\]"):
        prepare({**params["data"], "sources": 1}, tmp_path / "x")
    with pytest.raises(FileNotFoundError, match="data_3d_h36m.npz"):
        prepare({**params["data"], "source": "h36m", "h36m": {"dir": str(tmp_path / "nothing")}}, tmp_path / "x")
    with pytest.raises(ValueError, match="val.subjects \\['S99'\\]"):
        prepare({**params["data"], "val": {"by": "subject", "subjects": ["S99"]}}, tmp_path / "x")


def test_default_synthetic_preparation_is_quick(tmp_path):
    """The embedded default is prepared in seconds (issue target: under a minute)."""
    from poseprompt.config.params import load_params, preset_path
    data = load_params(preset_path("default"))["data"]
    t0 = time.time()
    summary = prepare(data, tmp_path / "out", seed=0)
    elapsed = time.time() - t0
    print(f"default synthetic data prepared in {elapsed:.1f} s: "
          f"{ {k: v['frames'] for k, v in summary['splits'].items()} }")
    assert elapsed < 60
    assert summary["splits"]["train"]["actions"] >= 8
