"""The pipeline's Python functions end to end on a tiny configuration (the notebooks call these)."""
import json

import numpy as np
import pytest
import torch

from poseprompt import load_checkpoint
from poseprompt.model.checkpoint import read_checkpoint
from poseprompt.stages.evaluate import ALL_METRICS


def test_tiny_pipeline_writes_every_output(tiny_pipeline):
    root, params = tiny_pipeline
    for name in ("train", "val", "test", "shift_camera-0.5", "shift_camera-1"):
        assert (root / "data/processed" / f"{name}.npz").is_file()
    for variant in params["variants"]:
        for seed in params["seeds"]:
            d = root / "models" / variant / f"seed{seed}"
            assert (d / "model.pt").is_file()
            summary = json.loads((d / "train_summary.json").read_text())
            assert summary["selection_split"] == "val" and len(summary["history"]) == 2 and summary["seed"] == seed
            for f in ("per_action.csv", "suites.csv", "cross_domain.csv", "predictions.npz", "clip_errors.npz"):
                assert (root / "reports/eval" / variant / f"seed{seed}" / f).is_file()
            assert (root / "dvclive/train" / variant / f"seed{seed}" / "metrics.json").is_file()
        m = json.loads((root / "metrics/variants" / f"{variant}.json").read_text())
        assert m["seeds"] == params["seeds"] and set(m["per_seed"]) == {str(s) for s in params["seeds"]}
        for setting in ("test", "test_flip"):
            assert set(ALL_METRICS) <= set(m[setting]), setting
            assert np.isfinite([m[setting][k] for k in ALL_METRICS]).all()
            # the reported number is the mean over seeds, with its standard deviation
            per = [m["per_seed"][str(s)][setting]["mpjpe"] for s in params["seeds"]]
            assert m[setting]["mpjpe"] == pytest.approx(np.mean(per))
            assert m["std"][setting]["mpjpe"] == pytest.approx(np.std(per, ddof=1))
        assert set(m["suites"]) == {"occlusion", "occlusion-gap", "speed"}
        assert m["suite_specs"] == {
            "occlusion": {"kind": "occlusion", "mode": "limbs", "span": [5, 30], "strengths": [0.2]},
            "occlusion-gap": {"kind": "occlusion", "mode": "all", "span": [2, 4], "strengths": [0.2]},
            "speed": {"kind": "speed", "strengths": [2.0]}}
        assert set(m["cross_domain"]) == {"shift_camera-0.5", "shift_camera-1"}
        assert [(m["cross_domain"][s]["shift"], m["cross_domain"][s]["shift_strength"])
                for s in ("shift_camera-0.5", "shift_camera-1")] == [("camera", 0.5), ("camera", 1.0)]
        for seed in params["seeds"]:
            report = root / "reports/eval" / variant / f"seed{seed}"
            assert set(np.load(report / "predictions.npz")) == {"test", "occlusion_0.2", "occlusion-gap_0.2"}
            assert {"suite/occlusion/0.2", "suite/occlusion-gap/0.2", "suite/speed/2.0",
                    "cross/shift_camera-1"} <= set(np.load(report / "clip_errors.npz"))
        assert m["input_2d"] and m["split"] == "test"
        assert m["action_label_given"] is (variant == "full")
        audit = json.loads((root / "metrics/audit" / f"{variant}.json").read_text())
        assert audit["seeds"] == params["seeds"] and "motion_stream" in audit["summary"]["knockout"]


def test_metrics_match_a_recomputation_from_the_predictions(tiny_pipeline):
    """The stored MPJPE is the mean over actions of the frame-weighted per-action MPJPE."""
    from poseprompt.data.format import PoseSequences
    root, params = tiny_pipeline
    test = PoseSequences.load(root / "data/processed/test.npz")
    pred = np.load(root / "reports/eval/full/seed0/predictions.npz")["test"].astype(np.float64)
    err = np.linalg.norm(pred - test.pose3d, axis=-1).mean(-1) * 1000          # (F,) mm, root at 0 in both
    acts = np.repeat(test.action, test.lengths())
    expected = np.mean([err[acts == a].mean() for a in np.unique(acts)])
    m = json.loads((root / "metrics/variants/full.json").read_text())["per_seed"]["0"]
    main = m["main"]["setting"]
    assert abs(m[main]["mpjpe"] - expected) < 0.5       # float16 storage of the predictions
    clips = np.load(root / "reports/eval/full/seed0/clip_errors.npz")[main]
    assert abs(clips.mean() - err[test.valid].mean()) < 2.0   # clips of (nearly) equal length


def test_selected_checkpoint_is_the_best_on_validation(tiny_pipeline):
    root, _ = tiny_pipeline
    summary = json.loads((root / "models/full/seed0/train_summary.json").read_text())
    vals = [h["val_mpjpe_mm"] for h in summary["history"]]
    assert summary["selected_epoch"] == int(np.argmin(vals)) + 1
    ts = read_checkpoint(root / "models/full/seed0/model.pt")["train_state"]
    assert ts["best_val"] == pytest.approx(min(vals))
    model = load_checkpoint(root / "models/full/seed0/model.pt")
    assert model.cfg.width == 16
    with torch.no_grad():
        assert model(torch.zeros(1, 9, 17, 3)).shape == (1, 9, 17, 3)


def test_seeds_differ_and_share_the_data(tiny_pipeline):
    root, params = tiny_pipeline
    a, b = (read_checkpoint(root / f"models/full/seed{s}/model.pt")["state_dict"] for s in params["seeds"])
    assert not torch.equal(a["head.fc.weight"], b["head.fc.weight"])
    sa, sb = (json.loads((root / f"models/full/seed{s}/train_summary.json").read_text()) for s in params["seeds"])
    assert sa["train_windows"] == sb["train_windows"] and sa["fingerprint"] != sb["fingerprint"]
