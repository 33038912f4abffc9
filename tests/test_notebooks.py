"""The notebooks and dvc.yaml: clean notebooks, consistent parameters, and the whole pipeline
through papermill on a tiny configuration in a temporary folder."""
import json
import re
import shutil
from pathlib import Path

import nbformat
import papermill as pm
import pytest
import yaml

from conftest import tiny_params
from poseprompt.evaluate import ALL_METRICS
from poseprompt.params import SECTIONS, load_params, preset_path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_committed_notebooks_are_clean_and_parameterised():
    assert {p.name for p in NOTEBOOKS} >= {"01_prepare_data.ipynb", "02_train.ipynb", "03_evaluate.ipynb"}
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)                                   # includes cell ids (nbformat 4.5)
        assert all(c.get("id") for c in nb.cells), path.name
        assert not any(c.get("outputs") or c.get("execution_count") for c in nb.cells if c.cell_type == "code"), \
            f"{path.name} has outputs: the committed notebooks carry none"
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, f"{path.name}: expected one cell tagged 'parameters'"


def _stage_commands():
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    for name, stage in dvc["stages"].items():
        body = stage.get("do", stage)
        yield name, stage, body


def test_every_papermill_parameter_exists_in_its_notebook():
    params = load_params(ROOT / "params.yaml")
    for name, _, body in _stage_commands():
        cmd = body["cmd"]
        for nb_path in re.findall(r"papermill (\S+\.ipynb)", cmd):
            declared = pm.inspect_notebook(str(ROOT / nb_path))
            passed = set(re.findall(r"-p (\w+) ", cmd + " "))
            if "-f params.yaml" in cmd.replace("${pm}", "-f params.yaml") or "${pm}" in cmd:
                passed |= set(params)                          # every section is injected
            missing = passed - set(declared)
            assert not missing, f"stage {name}: {nb_path} lacks parameters {sorted(missing)}"


def _lookup(params, dotted):
    node = params
    for part in dotted.split("."):
        assert isinstance(node, dict) and part in node, dotted
        node = node[part]
    return node


def test_dvc_stage_params_and_deps_exist():
    params = load_params(ROOT / "params.yaml")
    for name, stage, body in _stage_commands():
        keys = list(params["variants"]) if "foreach" in stage else [None]
        for key in keys:
            for p in body.get("params", []):
                _lookup(params, p.replace("${key}", key or ""))
            for d in body.get("deps", []):
                d = d.replace("${key}", key or "")
                generated = d.split("/")[0] in ("models", "metrics", "reports") or d.startswith("data/processed")
                if not generated:                               # outputs of earlier stages
                    assert (ROOT / d).exists(), f"stage {name}: dependency {d} does not exist"
    assert "${variants}" in yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["train"]["foreach"]


def test_presets_have_the_structure_of_params_yaml():
    def shape(d):
        return {k: shape(v) if isinstance(v, dict) and k not in ("variants",) else None for k, v in d.items()}
    current = load_params(ROOT / "params.yaml")
    for name in ("default", "paper"):
        preset = load_params(preset_path(name))
        assert shape(preset) == shape(current), name
    assert load_params(preset_path("default")) == current, \
        "params.yaml differs from the default preset: update src/poseprompt/assets/params-default.yaml"
    assert set(SECTIONS) == set(current)


@pytest.mark.slow
def test_whole_pipeline_through_papermill(tmp_path):
    """prepare -> train@2 variants -> evaluate@2 variants, as dvc.yaml runs them."""
    params = tiny_params()
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    shutil.copy(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    runs = [("01_prepare_data", None)] + [(nb, v) for nb in ("02_train", "03_evaluate") for v in params["variants"]]
    for nb, variant in runs:
        parameters = dict(params) | ({"variant": variant} if variant else {})
        out = tmp_path / "reports" / "notebooks" / f"{nb}{'_' + variant if variant else ''}.ipynb"
        out.parent.mkdir(parents=True, exist_ok=True)
        pm.execute_notebook(str(ROOT / "notebooks" / f"{nb}.ipynb"), str(out), parameters=parameters,
                            cwd=str(tmp_path), progress_bar=False, kernel_name="python3")
        assert out.is_file()
    for variant in params["variants"]:
        m = json.loads((tmp_path / "metrics" / f"{variant}.json").read_text())
        for key in ("variant", "checkpoint", "split", "input_2d", "action_label_given", "test", "test_flip",
                    "suites", "cross_domain", "main"):
            assert key in m, key
        assert set(ALL_METRICS) <= set(m["test"])
        assert (tmp_path / "models" / variant / "model.pt").is_file()
