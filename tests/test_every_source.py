"""Every configuration runs to the end: the tiny pipeline (prepare, train, evaluate with the audit,
every figure and table) once per data source, each without a cross-domain set, so a figure or table
whose inputs are absent is skipped and says so instead of failing the stage."""
import json
from pathlib import Path

import pytest

from conftest import tiny_params

BANDAI = Path(__file__).resolve().parents[2] / "shared" / "data" / "bandai-1" / "bvh"
FAST = dict(dpi=40, attention_clips=2, qualitative_clips=1, cost_repeats=1, cost_threads=1)


def _source(name, raw: Path) -> dict:
    if name == "h36m":
        from test_h36m import write_fixture
        raw.mkdir(parents=True)
        write_fixture(raw)
        return {"source": "h36m", "h36m": {"dir": str(raw), "keypoints": "gt"}, "val": {"by": "sequence",
                                                                                          "fraction": 0.3}}
    if name == "humaneva":
        from test_humaneva import write_fixture
        raw.mkdir(parents=True)
        write_fixture(raw)
        return {"source": "humaneva", "humaneva": {"dir": str(raw), "keypoints": "gt"},
                "val": {"by": "sequence", "fraction": 0.3}}
    if name == "bvh":
        if not BANDAI.is_dir():
            pytest.skip("../shared/data/bandai-1 is not beside the project")
        return {"source": "bvh", "bvh": {"folder": str(BANDAI), "max_files": 18, "cameras": 1},
                "val": {"by": "sequence", "fraction": 0.2}}
    return {"source": "synthetic", "synthetic": {**tiny_params()["data"]["synthetic"], "shifts": [],
                                                 "shift_subjects": 0}}


@pytest.mark.slow
@pytest.mark.parametrize("source", ["synthetic", "h36m", "humaneva", "bvh"])
def test_tiny_pipeline_runs_to_the_end_for_every_source_without_cross_domain_sets(source, tmp_path):
    import yaml

    from poseprompt.config.sections import merge
    from poseprompt.plots.figures import FIGURES, make_all
    from poseprompt.stages import evaluate, train
    from poseprompt.stages.prepare import prepare
    params = tiny_params()
    params["seeds"] = [0]
    params["data"] = merge(params["data"], {**_source(source, tmp_path / "raw"), "cross_domain": []})
    params["train"].update(epochs=1)
    params["evaluate"].update(audit_clips=8)
    params["figures"] = {**(params.get("figures") or {}), **FAST}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    prepare(params["data"], tmp_path / params["data"]["out_dir"], params["seed"])
    for v in params["variants"]:
        train.run_variant(params, v, tmp_path)
        evaluate.run_variant(params, v, tmp_path, log=lambda *a: None)
    make_all(tmp_path, params, "figures", log=None)
    manifest = json.loads((tmp_path / "figures" / "manifest.json").read_text())
    assert "fig7_cross_domain" in manifest["skipped"] and "cross_domain" in manifest["skipped"]
    assert set(manifest["figures"]) | set(manifest["skipped"]) >= set(FIGURES)
    assert {"main_results", "ablation", "audit"} <= set(manifest["tables"])
    m = json.loads((tmp_path / "metrics" / "variants" / "full.json").read_text())
    assert m["source"] == source and m["cross_domain"] == {}
