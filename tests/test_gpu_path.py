"""The GPU path, run on the CPU: the smoke run of the paper configuration (tiny), the cost plan,
the parallel runner, and the gather of training batches from the frame arrays."""
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import tiny_params
from poseprompt.data.format import PoseSequences
from poseprompt.data.windows import PoseWindows

ROOT = Path(__file__).resolve().parents[1]


def test_smoke_runs_tiny_on_the_cpu(tmp_path):
    from poseprompt.tools.smoke import run
    r = run(tmp_path, tiny=True, steps=8, device="cpu", check_resume=True, log=lambda *a: None)
    assert r["stopped_at"] == 4 and r["resumed_to"] == 8
    assert r["resume_max_weight_diff"] == 0.0                     # resumed = uninterrupted
    assert r["steps_per_s"] > 0 and r["peak_mem_mb"] > 0
    assert np.isfinite(r["loss_bf16"]) and abs(r["loss_bf16"] - r["loss_fp32"]) < 0.05 * r["loss_fp32"]
    assert json.loads((tmp_path / "smoke.json").read_text())["steps"] == 8


def test_plan_counts_windows_and_steps(tiny_pipeline):
    from poseprompt.tools.plan import plan
    root, params = tiny_pipeline
    out = plan(params, root, gpus=2, step_s=0.5, log=lambda *a: None)
    train = PoseSequences.load(root / "data/processed/train.npz")
    windows = len(PoseWindows(train, params["model"]["frames"], stride=params["train"]["stride"]))
    assert out["train_windows"] == windows
    assert out["steps_per_epoch"] == windows // params["train"]["batch_size"]
    assert out["steps_per_run"] == out["steps_per_epoch"] * params["train"]["epochs"]
    assert out["runs"] == len(params["variants"]) * len(params["seeds"])
    assert out["hours_whole_2_devices"] <= out["hours_whole_1_device"]
    assert out["hours_per_run"] >= out["steps_per_run"] * 0.5 / 3600


def test_plan_times_the_training_loop_at_the_run_s_batch_and_counts_seeds_side_by_side(tiny_pipeline):
    """Without --step-s the plan times the real training loop of every variant at the run's batch
    (warm-up steps untimed), on a CPU with one thread per seed process and the thread's CPU time
    (another job does not stretch it), and counts the seeds as train.seed_procs runs them."""
    from poseprompt.stages.seedpool import cpu_cores
    from poseprompt.tools.plan import TIMED_STEPS, WARMUP_STEPS, plan
    root, params = tiny_pipeline
    out = plan(params, root, gpus=1, device="cpu", log=lambda *a: None)
    assert out["measured_batch"] == params["train"]["batch_size"] and out["warmup_steps"] == WARMUP_STEPS
    assert set(out["per_variant"]) == set(params["variants"]) and TIMED_STEPS >= 10
    assert all(e["step_s"] > 0 and isinstance(e["busy"], bool) for e in out["per_variant"].values())
    assert out["seed_processes"] == min(len(params["seeds"]), cpu_cores())
    if out["seed_processes"] > 1:
        assert out["clock"] == "thread CPU time"
    runs = sum(len(params["seeds"]) * e["run_h"] for e in out["per_variant"].values())
    train = sum(e["train_h"] for e in out["per_variant"].values())
    assert train < runs + len(params["variants"]) * out["startup_s"] / 3600 + 1e-9
    assert 0 < out["eval_share"] < 1 and out["hours_whole_1_device"] > train
    quick = plan(params, root, gpus=1, device="cpu", log=lambda *a: None, quick=True)
    assert len({e["step_s"] for e in quick["per_variant"].values()}) == 1


def test_parallel_runner_trains_variants_concurrently_like_one_after_another(tiny_pipeline, tmp_path):
    """Two variants on two CPU 'devices' give the checkpoints the sequential pipeline gave."""
    import shutil
    import yaml
    src, params = tiny_pipeline
    params = dict(params, seeds=[0])
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    shutil.copytree(src / "data", tmp_path / "data")
    t0 = time.time()
    code = subprocess.run([sys.executable, "-m", "poseprompt.tools.parallel", "--devices", "cpu,cpu", "--stages", "train",
                           "--no-commit", "--root", str(tmp_path)], cwd=tmp_path, capture_output=True, text=True)
    assert code.returncode == 0, code.stdout + code.stderr
    assert time.time() - t0 < 300
    for v in params["variants"]:
        a = torch.load(tmp_path / f"models/{v}/seed0/model.pt", weights_only=True)["state_dict"]
        b = torch.load(src / f"models/{v}/seed0/model.pt", weights_only=True)["state_dict"]
        assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-5) for k in a), v
        assert (tmp_path / "reports/parallel" / f"train_{v}.log").is_file()


def _big_split(frames: int, seq_len: int) -> PoseSequences:
    n = frames // seq_len
    F = n * seq_len
    z = np.zeros((F, 17, 2), np.float32)
    return PoseSequences(kp2d=z, kp2d_px=z, conf=np.ones((F, 17), np.float32), pose3d=np.zeros((F, 17, 3), np.float32),
                         root3d=np.zeros((F, 3), np.float32), valid=np.ones(F, bool),
                         starts=np.arange(0, F + 1, seq_len, dtype=np.int64), subject=np.array(["S"] * n),
                         name=np.array([f"s{i}" for i in range(n)]), action=np.array(["walk"] * n),
                         style=np.array([""] * n), camera=np.array(["c"] * n), fps=np.full(n, 50.0),
                         intrinsics=np.ones((n, 4)), image_size=np.full((n, 2), 1000.0),
                         meta={"source": "test", "skeleton": "h36m17"})


def test_training_batches_come_from_the_frame_arrays_not_a_copy_per_window():
    """200,000 frames at T=243 and stride 1: about 190,000 windows, indexed in seconds with memory
    that grows with frames (a copy per window would need tens of GB)."""
    split = _big_split(200_000, 2000)
    t0 = time.time()
    w = PoseWindows(split, 243, stride=1, mode="train")
    assert time.time() - t0 < 20
    assert len(w) == 100 * (2000 - 243 + 1)
    b = w.gather(np.arange(0, len(w), len(w) // 16)[:16])
    assert b["x"].shape == (16, 243, 17, 3)
    index_bytes = sum(a.nbytes for a in (w._seq, w._start, w._cover, w.speed_values))
    assert index_bytes < 64 * len(w)                              # a few numbers per window


def test_the_first_gpu_hour_script_writes_its_json_on_the_cpu(tmp_path):
    """`make gpu-hour` with small models: the smoke run (resume to the same weights, bf16 vs fp32),
    steps/s of gatfun and full at the paper batch, peak memory, and the plan of the whole paper
    from those step times, in one JSON."""
    from poseprompt.config.presets import preset_params
    from poseprompt.tools.gpu_hour import run
    from poseprompt.tools.smoke import H36M_TRAIN_FRAMES
    res = run(tmp_path, tiny=True, device="cpu", smoke_steps=8, log=lambda *a: None)
    saved = json.loads((tmp_path / "gpu_hour.json").read_text())
    assert saved["speed"].keys() == {"gatfun", "full"} and saved["smoke"]["resume_max_weight_diff"] < 1e-5
    paper = preset_params("paper")
    for v, r in res["speed"].items():
        assert r["batch"] == paper["train"]["batch_size"] and r["steps_per_s"] > 0 and r["peak_mem_mb"] > 0
    assert res["speed"]["full"]["step_s"] > res["speed"]["gatfun"]["step_s"]       # prompts cost something
    plan = res["plan"]
    tc = paper["train"]
    assert plan["steps_per_run"] == H36M_TRAIN_FRAMES // tc["stride"] // tc["batch_size"] * tc["epochs"]
    assert plan["variants"] == len(paper["variants"]) and plan["seeds"] == len(paper["seeds"])
    assert plan["hours_8_gpus"] < plan["hours_1_gpu"] and 0 < plan["eval_share"] < 1
    per_run_s = plan["steps_per_run"] * res["speed"]["gatfun"]["step_s"] + \
        tc["epochs"] * plan["val_windows"] * plan["forward_s_per_clip"]            # training + validation
    assert plan["per_variant"]["gatfun"]["train_h"] == pytest.approx(len(paper["seeds"]) * per_run_s / 3600)
