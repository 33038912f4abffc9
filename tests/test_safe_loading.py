"""Files from strangers: checkpoints and the field's pickled npz files that carry a pickled call are
refused with a clear error and the call never runs; every real layout still loads."""
import io
import pickle
import zipfile

import numpy as np
import pytest
import torch

from poseprompt import build_model, load_checkpoint, save_checkpoint
from poseprompt.data import h36m, humaneva, mpi3dhp
from poseprompt.data.safeload import UnsafeFileError, load_npz, restricted_loads
from poseprompt.model.checkpoint import CheckpointError, read_checkpoint
from poseprompt.tools.infer import read_keypoints

CALLS: list[str] = []


def record_call(tag: str) -> str:
    """The harmless function a malicious file calls: it only leaves a trace."""
    CALLS.append(tag)
    return tag


class Payload:
    """Pickles as a call ``record_call(tag)``: what an attacker's file does with os.system instead."""

    def __init__(self, tag):
        self.tag = tag

    def __reduce__(self):
        return record_call, (self.tag,)


@pytest.fixture(autouse=True)
def no_calls():
    CALLS.clear()
    yield
    CALLS.clear()


QUALNAME = f"{record_call.__module__}.record_call"


# ---- checkpoints -------------------------------------------------------------------------------
def test_a_checkpoint_that_carries_a_call_is_refused_and_the_call_never_runs(tmp_path, tiny_cfg):
    path = save_checkpoint(tmp_path / "m.pt", build_model({**tiny_cfg, "prompt": "none"}), train_state={"epoch": 1})
    payload = torch.load(path, weights_only=True)
    payload["train_state"]["note"] = Payload("checkpoint")
    torch.save(payload, tmp_path / "evil.pt")
    torch.load(tmp_path / "evil.pt", weights_only=False)             # the payload is live: an unsafe load runs it
    assert CALLS == ["checkpoint"]
    CALLS.clear()
    for load in (read_checkpoint, load_checkpoint):
        with pytest.raises(CheckpointError, match=rf"evil\.pt: refused to load: its pickle asks for '{QUALNAME}'"):
            load(tmp_path / "evil.pt")
    assert CALLS == []


def test_checkpoints_written_by_training_and_by_older_code_load_with_weights_only(tmp_path, tiny_cfg):
    from poseprompt.stages.prepare import prepare
    from poseprompt.stages.train import fit
    data = {"source": "synthetic", "val": {"by": "subject", "fraction": 0.34},
            "synthetic": dict(subjects_train=3, subjects_test=1, shift_subjects=0, speeds=[1.0], frames_per_sequence=40,
                              cameras=1, motions=["walk", "squat", "wave"], shifts=[])}
    prepare(data, tmp_path / "data", seed=0)
    model = dict(frames=9, width=16, depth=1, heads=2, context_dim=8, slot_dim=8, spatial_heads=2, temporal_heads=2,
                 temporal_radius=4, prompt_length=3, text_tokens=1)
    fit(model, dict(epochs=2, batch_size=8, stride=9, warmup_steps=0, progress=False), tmp_path / "data",
        tmp_path / "run", seed=0, stop_after=2)                     # interrupted: state/last.pt mid-run
    last = read_checkpoint(tmp_path / "run" / "state" / "last.pt")  # optimizer, scheduler, RNG state
    assert last["optimizer"]["state"] and isinstance(last["train_state"]["rng"]["torch"], torch.Tensor)
    assert type(last["torch_version"]) is str
    # a checkpoint written before torch_version became a plain str (it held a TorchVersion) still loads
    old = torch.load(tmp_path / "run" / "state" / "last.pt", weights_only=True)
    old["torch_version"] = torch.__version__
    assert type(old["torch_version"]) is not str
    torch.save(old, tmp_path / "old.pt")
    back = read_checkpoint(tmp_path / "old.pt")
    assert torch.equal(back["train_state"]["rng"]["torch"], last["train_state"]["rng"]["torch"])
    assert back["train_state"]["global_step"] == last["train_state"]["global_step"] == 2


# ---- the field's pickled npz files -----------------------------------------------------------------
def _h36m(folder, payload):
    from test_h36m import write_fixture
    pos3d, pos2d = write_fixture(folder)
    pos3d["S9"]["Walking 1"] = [pos3d["S9"]["Walking 1"], payload]
    np.savez(folder / "data_3d_h36m.npz", positions_3d=pos3d)
    return lambda: h36m.build_splits({"dir": str(folder), "keypoints": "gt"}, 0), folder / "data_3d_h36m.npz"


def _mpi3dhp(folder, payload):
    from test_mpi3dhp import write_test_file
    data = write_test_file(folder)
    data["TS2"]["note"] = {"deep": (1, payload)}
    np.savez(folder / "data_test_3dhp.npz", data=data)
    return lambda: mpi3dhp.build_splits({"dir": str(folder)}, 0), folder / "data_test_3dhp.npz"


def _humaneva(folder, payload):
    from test_humaneva import write_fixture
    write_fixture(folder)
    z = np.load(folder / "data_2d_humaneva15_gt.npz", allow_pickle=True)
    meta = z["metadata"].item()
    meta["cameras"] = payload
    np.savez(folder / "data_2d_humaneva15_gt.npz", positions_2d=z["positions_2d"].item(), metadata=meta)
    return lambda: humaneva.build_splits({"dir": str(folder)}, 0), folder / "data_2d_humaneva15_gt.npz"


def _custom_keypoints(folder, payload):
    kp = np.zeros((5, 17, 2), np.float32)
    np.savez(folder / "data_2d_custom_x.npz", positions_2d={"x.mp4": {"custom": [kp]}},
             metadata={"layout_name": "coco", "video_metadata": {"x.mp4": {"w": 10, "h": 10, "why": payload}}})
    return lambda: read_keypoints(folder / "data_2d_custom_x.npz"), folder / "data_2d_custom_x.npz"


@pytest.mark.parametrize("make", [_h36m, _mpi3dhp, _humaneva, _custom_keypoints])
def test_an_npz_that_carries_a_call_is_refused_and_the_call_never_runs(tmp_path, make):
    load, path = make(tmp_path, Payload(make.__name__))
    with np.load(path, allow_pickle=True) as z:                # an unsafe load runs the payload
        [z[k] for k in z.files]
    assert CALLS == [make.__name__]
    CALLS.clear()
    with pytest.raises(UnsafeFileError, match=rf"{path.name}: key '\w+': refused: the pickled data asks for "
                                              rf"'{QUALNAME}'.*Nothing from the file was run"):
        load()
    assert CALLS == []


def test_the_unpickler_refuses_before_looking_anything_up(tmp_path):
    # GLOBAL 'os system' + REDUCE, hand-written: refused at the name, os.system is never touched
    evil = b"cos\nsystem\n(S'echo pwned > " + str(tmp_path / "pwned").encode() + b"'\ntR."
    with pytest.raises(UnsafeFileError, match=r"asks for 'os.system'"):
        restricted_loads(evil, "evil bytes")
    assert not (tmp_path / "pwned").exists()
    with pytest.raises(UnsafeFileError, match=r"asks for 'builtins.eval'"):
        restricted_loads(pickle.dumps(eval), "eval")


def _write_npy(zf, name, array, protocol):
    """An .npy member as numpy writes it, with the pickle protocol of older numpy versions / other writers."""
    buf = io.BytesIO()
    if array.dtype.hasobject:
        np.lib.format.write_array_header_1_0(buf, np.lib.format.header_data_from_array_1_0(array))
        pickle.dump(array, buf, protocol=protocol)
    else:
        np.lib.format.write_array(buf, array)
    zf.writestr(name + ".npy", buf.getvalue())


def _same(a, b):
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape and \
            (all(_same(x, y) for x, y in zip(a.flat, b.flat)) if a.dtype == object else np.array_equal(a, b))
    return type(a) is type(b) and (a == b or (a != a and b != b))


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_every_plain_layout_loads_as_numpy_would(tmp_path, protocol):
    rng = np.random.default_rng(0)
    content = {
        "S1": {"Walking 1": rng.normal(size=(4, 32, 3)).astype(np.float32), "empty": np.zeros((0, 17, 2)),
               "views": [rng.normal(size=(3, 17, 2)), None, np.arange(6, dtype=np.int16).reshape(2, 3)]},
        "TS1": {"valid": np.array([1, 0, 1], bool), "fortran": np.asfortranarray(rng.normal(size=(3, 4))),
                "scalars": (np.float64(1.5), np.int64(3), 2.5, 7, True, "text", b"bytes", float("nan"))},
        3: [{"nested": ("a", ["b", {"c": np.array(["x", "yz"])}])}],
    }
    path = tmp_path / "plain.npz"
    with zipfile.ZipFile(path, "w") as zf:
        _write_npy(zf, "data", np.array(content, dtype=object), protocol)
        _write_npy(zf, "plain", rng.normal(size=(5, 2)), protocol)
        _write_npy(zf, "strings", np.array(["a", "bc"]), protocol)
        _write_npy(zf, "table", np.array([(1, 2.0)], dtype=[("i", "i4"), ("f", "f8")]), protocol)
    ours, theirs = load_npz(path), dict(np.load(path, allow_pickle=True))
    assert ours.keys() == theirs.keys()
    for k in ours:
        assert _same(ours[k], theirs[k]), k
    # np.savez / np.savez_compressed as the field writes them
    for save in (np.savez, np.savez_compressed):
        save(tmp_path / "f.npz", positions_3d=content, metadata={"layout_name": "h36m"}, arr=np.ones(3))
        ours, theirs = load_npz(tmp_path / "f.npz"), dict(np.load(tmp_path / "f.npz", allow_pickle=True))
        assert all(_same(ours[k], theirs[k]) for k in theirs)


def test_a_corrupt_npz_is_explained(tmp_path):
    (tmp_path / "x.npz").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(Exception, match=r"x\.npz: not a readable \.npz file"):
        load_npz(tmp_path / "x.npz")
    np.savez(tmp_path / "y.npz", data={"a": 1})
    cut = tmp_path / "z.npz"
    with zipfile.ZipFile(tmp_path / "y.npz") as zin, zipfile.ZipFile(cut, "w") as zout:
        zout.writestr("data.npy", zin.read("data.npy")[:-5])        # a truncated pickle
    with pytest.raises(Exception, match=r"z\.npz: key 'data': not a readable pickle"):
        load_npz(cut)
