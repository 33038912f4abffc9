"""The equal-budget study command on real motion capture, shrunk to a smoke size (the real study
takes about an hour: `make study-bandai`)."""
import json
from pathlib import Path

import pytest
import yaml

BANDAI = Path(__file__).resolve().parents[2] / "shared" / "data" / "bandai-1" / "bvh"


@pytest.mark.slow
@pytest.mark.skipif(not BANDAI.is_dir(), reason="../shared/data/bandai-1 is not beside the project")
def test_study_runs_and_reports_every_variant_with_its_audit(tmp_path):
    from poseprompt.tools.study import run
    tiny = {"data": {"bvh": {"max_files": 12, "cameras": 1}},
            "model": dict(frames=9, width=16, depth=2, heads=2, context_dim=8, slot_dim=8, spatial_heads=2,
                          temporal_heads=2, temporal_radius=4, prompt_length=3, text_tokens=1),
            "variants": {"gatfun": {"prompt": "none"}, "full": {}, "full-layer1": {"context_from": "layer1"}},
            "train": {"batch_size": 8, "stride": 27, "warmup_steps": 0, "seed_procs": 1},
            "evaluate": {"suites": {}, "audit_clips": 8},
            "figures": {"ablation": ["gatfun", "full", "full-layer1"], "injection": ["full"]}}
    res = run(BANDAI, tmp_path / "run", seeds=[0, 1], epochs=1, log=lambda *a: None, overrides=tiny,
              record=tmp_path / "record")
    tmp_path = tmp_path / "run"
    assert set(res["variants"]) == {"gatfun", "full", "full-layer1"}
    assert len({res["steps"][v] for v in res["variants"]}) == 1             # the same steps for every variant
    full = res["variants"]["full"]
    assert full["interval"] is not None and len(full["seed_mpjpe"]) == 2
    assert "motion_stream" in full["audit"]["knockout"] and "delta_p" in full["audit"]["knockout"]
    text = (tmp_path / "study.md").read_text()
    assert "held-out styles" in text and "Δ vs gatfun" in text
    assert json.loads((tmp_path / "study.json").read_text())["seeds"] == [0, 1]
    # the record: the results without the models, the same bytes as in the run's folder
    rec = tmp_path.parent / "record"
    for f in ("study.md", "study.json", "params.yaml", "tables/main_results.md", "tables/audit.tex"):
        assert (rec / f).read_bytes() == (tmp_path / f).read_bytes(), f
    assert not list(rec.rglob("*.pt")) and (tmp_path / "models").is_dir()
    # and what pooling more seeds later needs: metrics, audits, per-seed summaries and per-clip errors
    for recorded, source in (("runs/metrics/variants/full.json", "metrics/variants/full.json"),
                             ("runs/metrics/audit/full.json", "metrics/audit/full.json"),
                             ("runs/full/seed1/clip_errors.npz", "reports/eval/full/seed1/clip_errors.npz"),
                             ("runs/gatfun/seed0/train_summary.json", "models/gatfun/seed0/train_summary.json")):
        assert (rec / recorded).read_bytes() == (tmp_path / source).read_bytes(), recorded
    assert not list(rec.rglob("predictions.npz"))
    # evaluated again from the trained models: the same numbers, nothing trained
    stamp = {f: f.stat().st_mtime_ns for f in (tmp_path / "models").rglob("model.pt")}
    again = run(BANDAI, tmp_path, seeds=[0, 1], epochs=1, log=lambda *a: None, overrides=tiny, train_models=False)
    assert again["variants"]["full"]["seed_mpjpe"] == full["seed_mpjpe"]
    assert again["complete"] and not again["pending"]
    # cut short after the second variant: the record holds what finished, marked incomplete

    class Cut(Exception):
        pass

    def log(msg):
        if msg.startswith("study: full-layer1"):
            raise Cut
    with pytest.raises(Cut):
        run(BANDAI, tmp_path, seeds=[0, 1], epochs=1, log=log, overrides=tiny, train_models=False,
            record=tmp_path.parent / "record")
    partial = json.loads((rec / "study.json").read_text())
    assert not partial["complete"] and partial["pending"] == ["full-layer1"]
    assert set(partial["variants"]) == {"gatfun", "full"} and "INCOMPLETE" in (rec / "study.md").read_text()
    assert "full-layer1" not in (rec / "tables" / "main_results.md").read_text()
    assert not list((rec / "runs").rglob("*full-layer1*")) and (rec / "runs" / "full" / "seed0").is_dir()
    assert stamp and all(f.stat().st_mtime_ns == t for f, t in stamp.items())
    with pytest.raises(ValueError, match="params.yaml"):                  # another budget than the models'
        run(BANDAI, tmp_path, seeds=[0, 1], epochs=2, log=lambda *a: None, overrides=tiny, train_models=False)
    with pytest.raises(FileNotFoundError, match="no trained model"):
        run(BANDAI, tmp_path.parent / "empty", seeds=[0], epochs=1, log=lambda *a: None, overrides=tiny,
            train_models=False)


@pytest.mark.slow
@pytest.mark.skipif(not BANDAI.is_dir(), reason="../shared/data/bandai-1 is not beside the project")
def test_pooled_seeds_equal_one_run_of_all_seeds(tmp_path):
    """``--pool``: seed 1 run later and pooled with the record of seed 0 gives the tables of one run
    of seeds 0 and 1 (the same per-seed results, the audit's intervals over seeds x clips)."""
    from poseprompt.tools.study import run
    tiny = {"data": {"bvh": {"max_files": 16, "cameras": 1}},
            "model": dict(frames=9, width=16, depth=1, heads=2, context_dim=8, slot_dim=8, spatial_heads=2,
                          temporal_heads=2, temporal_radius=4, prompt_length=3, text_tokens=1),
            "variants": {"gatfun": {"prompt": "none"}, "full": {}},
            "train": {"batch_size": 8, "stride": 27, "warmup_steps": 0, "seed_procs": 1},
            "evaluate": {"suites": {}, "audit_clips": 8},
            "figures": {"ablation": ["gatfun", "full"], "injection": ["full"], "matched_baseline": None}}
    quiet = dict(epochs=1, log=lambda *a: None, overrides=tiny)
    both = run(BANDAI, tmp_path / "both", seeds=[0, 1], **quiet)
    run(BANDAI, tmp_path / "first", seeds=[0], record=tmp_path / "record", **quiet)
    assert (tmp_path / "record" / "runs" / "full" / "seed0" / "audit_deltas.npz").is_file()
    pooled = run(BANDAI, tmp_path / "later", seeds=[1], record=tmp_path / "record", pool=tmp_path / "record",
                 **quiet)
    assert pooled["seeds"] == [0, 1] and pooled["pooled"]["seeds"] == [0] and pooled["pooled"]["seeds_run"] == [1]
    for v in ("gatfun", "full"):
        assert pooled["variants"][v]["seed_mpjpe"] == pytest.approx(both["variants"][v]["seed_mpjpe"], rel=1e-4)
    assert pooled["variants"]["full"]["interval"]["lo"] == pytest.approx(both["variants"]["full"]["interval"]["lo"],
                                                                      rel=1e-3)
    ko, ko_both = (r["variants"]["full"]["audit"]["knockout"]["delta_p"]["test"]["interval"] for r in (pooled, both))
    assert "over" not in ko and ko["mean"] == pytest.approx(ko_both["mean"], rel=1e-3)
    rec = tmp_path / "record"
    assert json.loads((rec / "study.json").read_text())["seeds"] == [0, 1]
    assert yaml.safe_load((rec / "params.yaml").read_text())["seeds"] == [0, 1]
    assert (rec / "runs" / "full" / "seed0" / "clip_errors.npz").is_file()
    assert "pooled with seeds [1]" in (rec / "study.md").read_text()
    # a record without per-clip audit effects (made before they were kept): intervals over the seeds
    for f in rec.rglob("audit_deltas.npz"):
        f.unlink()
    old = run(BANDAI, tmp_path / "old", seeds=[2], pool=rec, **quiet)
    assert old["variants"]["full"]["audit"]["knockout"]["delta_p"]["test"]["interval"]["over"] == "seeds"
    # ... and the claims table says so, never counting the seeds as clips
    rows = json.loads((tmp_path / "old" / "tables" / "claims.json").read_text())["rows"]
    knockouts = [r for r in rows if r["kind"] == "knock-out" and r.get("interval")]
    assert knockouts and all("interval over the seeds' means" in r["data"] and r["interval"]["seeds"] == 3
                             and r["interval"]["how"] == "seed means" for r in knockouts)
    assert "95 % interval over the seeds' means" in (tmp_path / "old" / "tables" / "audit.md").read_text()
    assert "interval over seeds x clips" in (tmp_path / "later" / "tables" / "audit.md").read_text()
    with pytest.raises(ValueError, match="seeds \\[1\\] are in"):
        run(BANDAI, tmp_path / "again", seeds=[1], pool=rec, **quiet)
    with pytest.raises(ValueError, match="differs from this study in train"):
        run(BANDAI, tmp_path / "other", seeds=[3], pool=rec, **{**quiet, "epochs": 2})
    # a record written before a train key existed pools with a run that leaves the key at its default
    stored = yaml.safe_load((rec / "params.yaml").read_text())
    assert stored["train"].pop("max_steps") == 0
    (rec / "params.yaml").write_text(yaml.safe_dump(stored))
    from poseprompt.tools.study import Pool, study_params
    newer = study_params(BANDAI, tmp_path / "newer", [3], quiet["epochs"], tiny)
    assert Pool(rec, tmp_path / "newer", newer).seeds == [0, 1]
    with pytest.raises(ValueError, match="differs from this study in train"):
        Pool(rec, tmp_path / "newer", {**newer, "train": {**newer["train"], "max_steps": 5}})
