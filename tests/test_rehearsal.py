"""The rehearsal of the paper: the `rehearsal` preset (the paper preset with every path kept, at a
CPU size) run by `dvc repro` end to end on small files in the VideoPose3D layout (Human3.6M,
MPI-INF-3DHP, HumanEva-I), in a copy of the project. When it passes, a paper run can only fail on
what needs a GPU. Not part of `make test` (it takes minutes): `make rehearsal`, and CI runs it."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.rehearsal
def test_the_paper_rehearsal_runs_dvc_repro_to_the_end(tmp_path):
    from test_h36m import write_fixture as write_h36m
    from test_humaneva import write_fixture as write_humaneva
    from test_mpi3dhp import write_test_file

    from poseprompt.config.presets import preset_params, use_preset
    from poseprompt.config.sections import TrainConfig
    for name in ("src", "notebooks", "dvc.yaml", ".dvcignore"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        elif src.is_file():
            shutil.copy(src, tmp_path / name)
    raw = tmp_path / "data" / "raw"
    for sub, write in (("h36m", write_h36m), ("3dhp", write_test_file), ("humaneva", write_humaneva)):
        (raw / sub).mkdir(parents=True)
        write(raw / sub)
    use_preset("rehearsal", tmp_path / "params.yaml")
    params = preset_params("rehearsal")
    paper = preset_params("paper")
    # every path of the paper is kept: only sizes differ
    assert list(params["variants"]) == list(paper["variants"]) and params["seeds"] == paper["seeds"]
    assert params["evaluate"]["suites"] == paper["evaluate"]["suites"] and params["evaluate"]["audit_clips"] == 0
    for key in ("select", "schedule", "lr_decay", "w_velocity", "occlusion"):
        assert params["train"][key] == paper["train"][key], key
    assert params["data"]["source"] == "h36m" and {e["source"] for e in params["data"]["cross_domain"]} >= {"3dhp"}

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    dvc = shutil.which("dvc", path=env["PATH"])
    run = lambda *a: subprocess.run(a, cwd=tmp_path, env=env, capture_output=True, text=True)  # noqa: E731
    assert run(dvc, "init", "--no-scm", "-q").returncode == 0
    out = run(dvc, "repro")
    assert out.returncode == 0, f"dvc repro failed:\n{out.stderr[-3000:]}\n--- stdout ---\n{out.stdout[-1500:]}"

    variants = list(params["variants"])
    for v in variants:
        m = json.loads((tmp_path / "metrics" / "variants" / f"{v}.json").read_text())
        assert m["seeds"] == params["seeds"] and m["split"] == "test"
        assert set(m["cross_domain"]) == {f"shift_{e['name']}" for e in params["data"]["cross_domain"]}
        assert set(m["suites"]) == set(params["evaluate"]["suites"])
        audit = json.loads((tmp_path / "metrics" / "audit" / f"{v}.json").read_text())
        clips = audit["per_seed"]["0"]["knockout"]["clips"]
        assert clips["test"] == m["per_seed"]["0"]["test"]["windows"] if "windows" in m["per_seed"]["0"]["test"] \
            else clips["test"] > 0                                         # audit_clips 0: every clip
        summary = json.loads((tmp_path / "models" / v / "seed0" / "train_summary.json").read_text())
        assert summary["selected"] == "last" and summary["epochs"] == params["train"]["epochs"]
        # train.max_steps: the budget ends the run inside its last epoch, and the run is finished
        assert summary["steps"] == params["train"]["max_steps"] and summary["max_steps_reached"]
        assert len(summary["history"]) == params["train"]["epochs"]
        # the exp schedule: the learning rate after each epoch (the one the next step would use) is
        # lr x lr_decay per finished epoch; the last epoch ends at the step budget, inside epoch 2
        tc = TrainConfig.from_dict(params["train"])
        spe = summary["train_windows"] // tc.batch_size
        lrs = [h["lr"] for h in summary["history"]]
        assert lrs[0] == pytest.approx(tc.lr * tc.lr_decay, rel=1e-6)
        ends = [min((i + 1) * spe, tc.max_steps) for i in range(tc.epochs)]
        assert lrs == pytest.approx([tc.lr * tc.lr_decay ** (e // spe) for e in ends], rel=1e-6)
    manifest = json.loads((tmp_path / "figures" / "manifest.json").read_text())
    assert "fig7_cross_domain" in manifest["figures"] and "cross_domain" in manifest["tables"]
    assert not {k for k in manifest["skipped"] if k.startswith("fig")}, manifest["skipped"]
    claims = json.loads((tmp_path / "figures" / "tables" / "claims.json").read_text())
    assert claims["rows"] and json.loads((tmp_path / "metrics" / "summary.json").read_text())
    status = run(dvc, "status", "--json")
    assert json.loads(status.stdout or "{}") == {}, status.stdout[-2000:]
