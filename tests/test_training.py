"""Training: resume to the same result, data-parallel equivalence, checkpoint selection, errors."""
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from conftest import tiny_params
from poseprompt.config.params import variant_config
from poseprompt.config.sections import ConfigError
from poseprompt.model.checkpoint import load_checkpoint, read_checkpoint
from poseprompt.stages.prepare import prepare
from poseprompt.stages.train import fit


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    params = tiny_params()
    root = tmp_path_factory.mktemp("train")
    prepare(params["data"], root / "data", params["seed"])
    return root, params


def _cfgs(params, variant="full", **train_over):
    model = variant_config(params, variant).replace(drop_path=0.1)   # exercise the RNG state too
    train = {**params["train"], "epochs": 2, "batch_size": 8, **train_over}
    return model, train


def _weights(path):
    return read_checkpoint(path)["state_dict"]


def _assert_same(a, b, atol=0.0):
    assert a.keys() == b.keys()
    for k in a:
        if atol == 0.0:
            assert torch.equal(a[k], b[k]), k
        else:
            assert torch.allclose(a[k], b[k], atol=atol), (k, (a[k] - b[k]).abs().max())


def test_interrupted_run_resumes_to_the_same_weights(tiny_data, tmp_path):
    root, params = tiny_data
    model, train = _cfgs(params)
    whole = fit(model, train, root / "data", tmp_path / "whole", seed=3)
    # interrupt mid-epoch after 5 steps, then resume to the end
    stopped = fit(model, train, root / "data", tmp_path / "resumed", seed=3, stop_after=5)
    assert stopped["stopped_at_step"] == 5
    assert not (tmp_path / "resumed" / "model.pt").exists()
    resumed = fit(model, train, root / "data", tmp_path / "resumed", seed=3, resume=True)
    assert resumed["steps"] == whole["steps"]
    _assert_same(_weights(tmp_path / "whole" / "model.pt"), _weights(tmp_path / "resumed" / "model.pt"))
    assert [h["val_mpjpe_mm"] for h in resumed["history"]] == [h["val_mpjpe_mm"] for h in whole["history"]]


def _curves(live_dir):
    """DVCLive's logged curves as {metric: [(step, value), ...]} (timestamps dropped)."""
    import csv
    out = {}
    for f in sorted((live_dir / "plots" / "metrics").rglob("*.tsv")):
        rows = list(csv.DictReader(f.open(), delimiter="\t"))
        out[str(f.relative_to(live_dir))] = [(int(r["step"]), float(r[f.stem])) for r in rows]
    return out


def test_resumed_and_reexported_runs_write_the_whole_training_curves(tiny_data, tmp_path):
    """DVC deletes a stage's outputs before it runs it again: the logs must come back complete."""
    import json
    import shutil
    root, params = tiny_data
    model, train = _cfgs(params, epochs=3)
    whole = fit(model, train, root / "data", tmp_path / "whole", seed=3, live_dir=tmp_path / "live_whole")
    reference = _curves(tmp_path / "live_whole")
    assert reference and all(len(v) == 3 for v in reference.values()), reference
    # interrupted in the second epoch, the logs deleted, resumed
    per_epoch = whole["steps"] // 3
    live = tmp_path / "live_resumed"
    fit(model, train, root / "data", tmp_path / "resumed", seed=3, live_dir=live, stop_after=per_epoch + 1)
    shutil.rmtree(live)
    fit(model, train, root / "data", tmp_path / "resumed", seed=3, live_dir=live, resume=True)
    assert _curves(live) == reference
    # a finished run asked again (e.g. `dvc repro -f`) re-exports model, summary and logs
    shutil.rmtree(live)
    (tmp_path / "resumed" / "model.pt").unlink()
    again = fit(model, train, root / "data", tmp_path / "resumed", seed=3, live_dir=live)
    assert again["reused_finished_run"] and (tmp_path / "resumed" / "model.pt").is_file()
    assert _curves(live) == reference
    assert json.loads((live / "metrics.json").read_text())["val"]["mpjpe_mm"] == \
        pytest.approx(whole["history"][-1]["val_mpjpe_mm"])


def test_resume_refuses_another_run(tiny_data, tmp_path):
    root, params = tiny_data
    model, train = _cfgs(params)
    fit(model, train, root / "data", tmp_path / "run", seed=3, stop_after=2)
    with pytest.raises(RuntimeError, match="belongs to another run"):
        fit(model, {**train, "lr": 0.123}, root / "data", tmp_path / "run", seed=3, resume=True)
    # resume="auto" starts afresh instead (and says so in the log)
    out = fit(model, {**train, "lr": 0.123, "epochs": 1}, root / "data", tmp_path / "run", seed=3)
    assert out["steps"] > 2


def test_training_is_deterministic_and_seed_dependent(tiny_data, tmp_path):
    root, params = tiny_data
    model, train = _cfgs(params, "gatfun", epochs=1)
    fit(model, train, root / "data", tmp_path / "a", seed=1)
    fit(model, train, root / "data", tmp_path / "b", seed=1)
    fit(model, train, root / "data", tmp_path / "c", seed=2)
    a, b, c = (_weights(tmp_path / n / "model.pt") for n in "abc")
    _assert_same(a, b)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_seeds_in_parallel_processes_train_exactly_as_one_after_another(tiny_data, tmp_path):
    """train.seed_procs: two seeds in two one-thread worker processes give the same weights, curves
    and summaries as the same seeds trained one after another in this process with one thread."""
    import shutil

    from poseprompt.stages.seedpool import seed_processes
    from poseprompt.stages.train import run_variant, seed_dir
    root, params = tiny_data
    for name in ("serial", "parallel"):
        (tmp_path / name).mkdir()
        shutil.copytree(root / "data", tmp_path / name / "data")
    p = {**params, "data": {**params["data"], "out_dir": "data"}}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        serial = run_variant({**p, "train": {**p["train"], "epochs": 1, "seed_procs": 1}}, "full", tmp_path / "serial")
    finally:
        torch.set_num_threads(threads)
    parallel = run_variant({**p, "train": {**p["train"], "epochs": 1, "seed_procs": 2, "threads": 1}}, "full",
                           tmp_path / "parallel")
    assert [s["seed"] for s in parallel] == [0, 1]
    timing = ("epoch_s", "clips_per_s")
    for a, b in zip(serial, parallel):
        assert a["best_val_mpjpe_mm"] == b["best_val_mpjpe_mm"]
        assert [{k: v for k, v in h.items() if k not in timing} for h in a["history"]] == \
            [{k: v for k, v in h.items() if k not in timing} for h in b["history"]]
    for seed in (0, 1):
        _assert_same(_weights(seed_dir(tmp_path / "serial", "full", seed) / "model.pt"),
                     _weights(seed_dir(tmp_path / "parallel", "full", seed) / "model.pt"))
        assert (seed_dir(tmp_path / "parallel", "full", seed, "dvclive/train") / "metrics.json").is_file()
    assert serial[0]["best_val_mpjpe_mm"] != serial[1]["best_val_mpjpe_mm"]
    cores = len(os.sched_getaffinity(0))
    assert seed_processes(0, 2 * cores, "cpu") == cores            # whole rounds: one process per core
    assert seed_processes(0, cores + 1, "cpu") == (cores + 1 if cores >= 2 else 1)   # no round with idle cores
    assert seed_processes(0, 1, "cpu") == 1 and seed_processes(5, 2, "cpu") == 2
    with pytest.raises(ValueError, match="seed_procs"):
        seed_processes(-1, 2, "cpu")


def test_dvclive_end_survives_a_parallel_seed_removing_the_shared_signal_file(tmp_path, monkeypatch):
    """Seeds training in parallel share DVCLive's per-repository signal file: one seed's Live.end can
    find it present and then gone (removed by the other). That must not fail a finished run (it did,
    with FileNotFoundError, in a two-seed study)."""
    import types

    import dvclive.live
    import dvclive.vscode

    from poseprompt.stages.train import _race_free_dvclive_signal
    monkeypatch.setattr(dvclive.live, "cleanup_dvclive_step_completed", dvclive.vscode.cleanup_dvclive_step_completed)
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    # the other seed removes the file between this process's existence check and its removal
    raced = types.SimpleNamespace(path=types.SimpleNamespace(exists=lambda f: True, join=os.path.join),
                                  remove=os.remove, getenv=os.getenv)
    monkeypatch.setattr(dvclive.vscode, "os", raced)
    with pytest.raises(FileNotFoundError):
        dvclive.live.cleanup_dvclive_step_completed()                 # DVCLive alone
    _race_free_dvclive_signal()
    dvclive.live.cleanup_dvclive_step_completed()                     # ours: the file is gone, the run goes on
    _race_free_dvclive_signal()                                       # idempotent: wrapped once
    assert dvclive.live.cleanup_dvclive_step_completed._race_free
    monkeypatch.setattr(dvclive.vscode, "os", os)
    dvclive.vscode.mark_dvclive_step_completed(3)                     # the signal itself still works
    signal = tmp_path / ".dvc/tmp/exps/run/DVCLIVE_STEP_COMPLETED"
    assert signal.is_file()
    dvclive.live.cleanup_dvclive_step_completed()
    assert not signal.exists()


def test_a_failing_seed_worker_raises_in_the_parent(tmp_path):
    from poseprompt.stages.seedpool import map_seeds
    with pytest.raises(ZeroDivisionError):
        map_seeds(_divide, [1, 0], procs=2)
    assert map_seeds(_divide, [1, 2, 4], procs=2) == [1.0, 0.5, 0.25]


def _divide(x):
    return 1 / x


def test_bad_training_config_is_explained(tiny_data, tmp_path):
    root, params = tiny_data
    model, train = _cfgs(params)
    with pytest.raises(ConfigError, match="train: unknown keys \\['epoch'\\]"):
        fit(model, {**train, "epoch": 3}, root / "data", tmp_path / "x")
    with pytest.raises(ConfigError, match="fewer than one batch"):
        fit(model, {**train, "batch_size": 100000}, root / "data", tmp_path / "x")
    with pytest.raises(FileNotFoundError, match="run the data preparation stage"):
        fit(model, train, tmp_path / "nodata", tmp_path / "x")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank, world, port, model, train, data, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    fit(model, train, data, out, seed=5)
    torch.distributed.destroy_process_group()


def test_two_process_gloo_training_matches_one_process(tiny_data, tmp_path):
    root, params = tiny_data
    model, train = _cfgs(params, "full", epochs=1, batch_size=8)
    model = model.replace(drop_path=0.0)   # stochastic depth draws differ per process by design
    fit(model, train, root / "data", tmp_path / "single", seed=5)
    mp.start_processes(_ddp_worker, args=(2, _free_port(), model, train, root / "data", tmp_path / "ddp"),
                       nprocs=2, join=True, start_method="spawn")
    a, b = _weights(tmp_path / "single" / "model.pt"), _weights(tmp_path / "ddp" / "model.pt")
    diffs = {k: (a[k].float() - b[k].float()).abs().max().item() for k in a}
    # the all-reduce sums in another order than one process does: agreement to round-off, amplified
    # a little by Adam (whose update of a near-zero gradient is about the learning rate)
    assert max(diffs.values()) < 1e-4, sorted(diffs.items(), key=lambda kv: -kv[1])[:3]
    ma, mb = load_checkpoint(tmp_path / "single" / "model.pt"), load_checkpoint(tmp_path / "ddp" / "model.pt")
    x = torch.randn(4, ma.cfg.frames, 17, 3)
    with torch.no_grad():
        assert (ma(x) - mb(x)).abs().max() < 1e-4          # metres


def test_seed_rounds_prefers_shared_cores_only_where_a_round_would_leave_cores_idle():
    """seedpool.seed_rounds: whole rounds while the processes fit the cores; more processes than
    cores time-share them at the measured cost, so 3 seeds on 2 cores run at once (1.77 runs of
    wall time, not 2), 4 seeds on 2 cores in two rounds (2, not 2.36)."""
    from poseprompt.stages.seedpool import OVERSUBSCRIBED_COST, seed_rounds
    assert seed_rounds(3, 2, 2) == 2.0 and seed_rounds(4, 2, 2) == 2.0 and seed_rounds(1, 4, 2) == 1.0
    assert seed_rounds(3, 3, 2) == pytest.approx(1.5 * OVERSUBSCRIBED_COST) and seed_rounds(3, 3, 2) < 2.0
    assert seed_rounds(4, 4, 2) == pytest.approx(2 * OVERSUBSCRIBED_COST) and seed_rounds(4, 4, 2) > 2.0
    assert seed_rounds(7, 7, 4) > seed_rounds(7, 4, 4) == 2.0


def test_every_train_key_that_ends_a_run_exports_a_model(tiny_data, tmp_path):
    """`train.epochs` and `train.max_steps` both end a run with a model: the step budget is not an
    interruption. Reached mid-epoch, that epoch ends there with its validation; the schedule is
    the budget's (cosine to 0 at the last step)."""
    root, params = tiny_data
    model, train = _cfgs(params)
    whole = fit(model, train, root / "data", tmp_path / "epochs", seed=1)
    per_epoch = whole["steps"] // 2
    assert whole["steps"] == 2 * per_epoch and not whole["max_steps_reached"]
    cap = per_epoch + 3                                                  # mid-way through the second epoch
    capped = fit(model, {**train, "max_steps": cap}, root / "data", tmp_path / "capped", seed=1)
    assert capped["steps"] == cap and capped["max_steps_reached"]
    assert (tmp_path / "capped" / "model.pt").is_file() and len(capped["history"]) == 2
    assert capped["history"][-1]["step"] == cap
    assert read_checkpoint(tmp_path / "capped" / "state" / "last.pt")["train_state"]["finished"]
    # the cosine schedule ends at 0 on the budget's last step, not on the epochs'
    assert capped["history"][-1]["lr"] == pytest.approx(0.0, abs=1e-12) and whole["history"][0]["lr"] > 0
    # asked again (dvc repro after the outputs were removed): the finished run is re-exported, not retrained
    again = fit(model, {**train, "max_steps": cap}, root / "data", tmp_path / "capped", seed=1)
    assert again["reused_finished_run"] and again["steps"] == cap
    # a budget inside the first epoch
    short = fit(model, {**train, "max_steps": 3}, root / "data", tmp_path / "short", seed=1)
    assert short["steps"] == 3 and len(short["history"]) == 1 and (tmp_path / "short" / "model.pt").is_file()


def test_a_run_that_stops_before_its_end_is_a_clear_error_not_a_key_error(tiny_data, monkeypatch):
    """The training notebook's summaries: a seed that stopped without a model (an interruption)
    fails with what happened and how to go on."""
    from poseprompt.stages import train as T
    root, params = tiny_data
    monkeypatch.setattr(T, "fit", lambda **job: {"stopped_at_step": 7, "epoch": 0})
    p = {**params, "seeds": [0], "train": {**params["train"], "seed_procs": 1}}
    with pytest.raises(RuntimeError, match=r"train@full seed 0: the run stopped before its end.*stopped_at_step.*7.*"
                                           r"dvc repro"):
        T.run_variant(p, "full", root)
