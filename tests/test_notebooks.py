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
from poseprompt.params import SECTIONS, default_params, load_params, preset_names, preset_path
from poseprompt.presets import preset_params, use_preset

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
    params = default_params()
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
    params = default_params()
    for name, stage, body in _stage_commands():
        keys = list(params["variants"]) if "foreach" in stage else [None]
        for key in keys:
            for p in body.get("params", []):
                _lookup(params, p.replace("${key}", key or ""))
            for d in body.get("deps", []):
                d = d.replace("${key}", key or "").replace("${figures.proposed}", params["figures"]["proposed"])
                generated = d.split("/")[0] in ("models", "metrics", "reports") or d.startswith("data/processed")
                if not generated:                               # outputs of earlier stages
                    assert (ROOT / d).exists(), f"stage {name}: dependency {d} does not exist"
    assert "${variants}" in yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["train"]["foreach"]


def test_presets_are_overlays_of_the_default():
    """A preset is a small file of overrides; applying it gives a complete configuration whose
    sections are those of the default, and whose model and variants build."""
    from poseprompt.params import variant_config
    default = default_params()
    assert set(SECTIONS) == set(default)
    assert {"paper", "study", "study-bandai", "gpu-smoke"} <= set(preset_names())
    for name in preset_names():
        merged = preset_params(name)
        assert set(merged) == set(default), name
        for v in merged["variants"]:
            variant_config(merged, v)                       # every variant is a valid model
        text = preset_path(name).read_text()
        if name != "default":                               # overrides only: no copy of whole sections
            assert len(text.splitlines()) < 0.6 * len(preset_path("default").read_text().splitlines()), name
    assert preset_params("paper")["model"]["frames"] == 243
    assert preset_params("paper")["train"]["stride"] == 81 and preset_params("paper")["data"]["windows"] == \
        default["data"]["windows"]                                            # untouched sections stay


def test_use_preset_writes_default_plus_overrides_and_back(tmp_path):
    target = tmp_path / "params.yaml"
    use_preset("default", target)
    assert target.read_text() == preset_path("default").read_text()
    use_preset("paper", target)
    assert load_params(target) == preset_params("paper")
    assert (tmp_path / "params.yaml.bak").read_text() == preset_path("default").read_text()
    use_preset("default", target)
    assert load_params(target) == default_params()


def test_committed_params_yaml_is_the_default():
    """The repository ships the default (`make default-config` restores it after a preset)."""
    assert load_params(ROOT / "params.yaml") == default_params()


def test_dvc_yaml_lists_every_stage_s_whole_import_closure():
    """Dependencies by construction: each stage's code list is its notebook's import closure."""
    from poseprompt.deps import render_dvc_yaml, stage_code
    text = (ROOT / "dvc.yaml").read_text()
    assert render_dvc_yaml(text) == text, "dvc.yaml is stale: run `python -m poseprompt.deps --write`"
    train = stage_code("train")
    assert "src/poseprompt/skeleton.py" in train and "src/poseprompt/data/format.py" in train
    assert "src/poseprompt/skeleton.py" in stage_code("prepare")
    assert not any("/plots/" in f for f in train), "the training stages must not depend on plotting code"
    assert not any("/plots/" in f for f in stage_code("evaluate"))
    assert not any("/model/" in f for f in stage_code("prepare"))


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
        m = json.loads((tmp_path / "metrics" / "variants" / f"{variant}.json").read_text())
        for key in ("variant", "checkpoint", "split", "input_2d", "action_label_given", "test", "test_flip",
                    "suites", "cross_domain", "main", "seeds", "std", "per_seed"):
            assert key in m, key
        assert set(ALL_METRICS) <= set(m["test"])
        for seed in params["seeds"]:
            assert (tmp_path / "models" / variant / f"seed{seed}" / "model.pt").is_file()


@pytest.mark.slow
def test_an_edited_skeleton_makes_every_stage_that_runs_it_stale(tmp_path):
    """Dependencies by construction, end to end: in a copy of the project, `dvc status` lists
    skeleton.py as a changed dependency of prepare, every training and everything after them."""
    import subprocess
    for name in ("src", "notebooks", "dvc.yaml", "dvc.lock", "params.yaml", ".dvcignore"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        elif src.is_file():
            shutil.copy(src, tmp_path / name)
    (tmp_path / "data" / "raw").mkdir(parents=True)
    shutil.copy(ROOT / "data" / "raw" / "README.md", tmp_path / "data" / "raw" / "README.md")
    import sys
    dvc = shutil.which("dvc") or str(Path(sys.executable).parent / "dvc")
    run = lambda *a: subprocess.run(a, cwd=tmp_path, capture_output=True, text=True)      # noqa: E731
    assert run(dvc, "init", "--no-scm", "-q").returncode == 0
    skel = tmp_path / "src/poseprompt/skeleton.py"
    skel.write_text(skel.read_text() + "\n# an edit\n")
    out = run(dvc, "status", "--json")
    assert out.returncode == 0, out.stderr
    status = json.loads(out.stdout or "{}")
    stale = {stage for stage, changes in status.items()
             if any("src/poseprompt/skeleton.py" in (c.get("changed deps") or {}) for c in changes
                    if isinstance(c, dict))}
    variants = default_params()["variants"]
    expected = {"prepare", "method", "figures"} | {f"{s}@{v}" for s in ("train", "evaluate") for v in variants}
    assert expected <= stale, sorted(expected - stale)


def test_typed_configurations_default_to_the_default_preset():
    """One configuration mechanism: every section is a typed, frozen configuration whose defaults
    are the default preset's values (a key missing from params.yaml means the default, not another
    number), and unknown keys are errors that list the known ones."""
    from poseprompt.config import ConfigError, DataConfig, ModelConfig
    from poseprompt.data import bvh, h36m, mpi3dhp, synthetic
    from poseprompt.evaluate import EvalConfig
    from poseprompt.plots.figures import FigureConfig
    from poseprompt.train import TrainConfig
    d = default_params()
    assert ModelConfig.from_dict(d["model"]) == ModelConfig()
    assert TrainConfig.from_dict(d["train"]) == TrainConfig()
    assert EvalConfig.from_dict(d["evaluate"]) == EvalConfig()
    assert FigureConfig.from_dict(d["figures"]) == FigureConfig()
    data = DataConfig.from_dict(d["data"])
    for key in ("source", "out_dir", "val", "windows", "cross_domain"):
        assert getattr(data, key) == getattr(DataConfig(), key), key
    for module, section in ((synthetic, "synthetic"), (bvh, "bvh"), (h36m, "h36m"), (mpi3dhp, "mpi3dhp")):
        for k, v in d["data"][section].items():
            assert module.DEFAULTS[k] == v, f"data.{section}.{k}: default {module.DEFAULTS[k]!r} vs preset {v!r}"
    for section, cls in (("model", ModelConfig), ("train", TrainConfig), ("evaluate", EvalConfig)):
        with pytest.raises(ConfigError, match="known keys"):
            cls.from_dict({**d[section], "nonsense": 1})
    with pytest.raises(ConfigError, match="known keys"):
        DataConfig.from_dict({**d["data"], "windows": {"shortt": "pad"}})
