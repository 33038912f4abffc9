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
from poseprompt.config.params import SECTIONS, default_params, load_params, preset_names, preset_path
from poseprompt.config.presets import preset_overrides, preset_params, use_preset
from poseprompt.stages.evaluate import ALL_METRICS

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
    from poseprompt.config.params import variant_config
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


@pytest.mark.parametrize("name", ["paper", "study-bandai"])
def test_a_preset_s_params_yaml_keeps_every_comment_and_marks_what_it_changes(tmp_path, name):
    """`make paper-config` writes a params.yaml as readable as the default's: every comment of the
    default's body is still there, and each value the preset sets says so (with the default's value)."""
    target = tmp_path / "params.yaml"
    use_preset(name, target)
    text = target.read_text()
    assert load_params(target) == preset_params(name)
    body = preset_path("default").read_text().split("\n\n", 1)[1]          # after the default's header
    comments = [ln.split("#", 1)[1].strip() for ln in body.splitlines() if "#" in ln]
    assert len(comments) > 90 and [c for c in comments if c not in text] == []
    lines = {}
    for ln in text.splitlines():                                            # the first line of each key
        if ":" in ln:
            lines.setdefault(ln.split(":")[0].strip(), ln)
    if name == "paper":
        assert f"# {name}: was 6" in lines["epochs"] and f"# {name}: was 8; small batches" in lines["batch_size"]
        assert f"# {name}: added" in lines["full-refinement-only"]
        assert f"# {name}: was synthetic; synthetic | bvh" in lines["source"]
    # every changed leaf of the preset is marked once
    over = preset_overrides(name)
    assert text.count(f"# {name}:") >= 3 and text.count(f"# {name}:") <= len(str(over))


def test_committed_params_yaml_is_the_default():
    """The repository ships the default (`make default-config` restores it after a preset)."""
    assert load_params(ROOT / "params.yaml") == default_params()


def test_dvc_yaml_lists_every_stage_s_whole_import_closure():
    """Dependencies by construction: each stage's code list is its notebook's import closure."""
    from poseprompt.tools.deps import render_dvc_yaml, stage_code
    text = (ROOT / "dvc.yaml").read_text()
    assert render_dvc_yaml(text) == text, "dvc.yaml is stale: run `python -m poseprompt.tools.deps --write`"
    train = stage_code("train")
    assert "src/poseprompt/core/skeleton.py" in train and "src/poseprompt/data/format.py" in train
    assert "src/poseprompt/core/skeleton.py" in stage_code("prepare")
    assert not any("/plots/" in f for f in train), "the training stages must not depend on plotting code"
    assert not any("/plots/" in f for f in stage_code("evaluate"))
    assert not any("/model/" in f for f in stage_code("prepare"))
    # layout by role: no stage runs a command-line tool; prepare draws nothing; evaluation, method
    # and figures do not run the training loop
    from poseprompt.tools.deps import STAGE_NOTEBOOKS
    assert not [f for s in STAGE_NOTEBOOKS for f in stage_code(s) if "/tools/" in f]
    assert not any("/plots/" in f for f in stage_code("prepare"))
    assert not [f for s in ("evaluate", "method", "figures") for f in stage_code(s) if f.endswith("stages/train.py")]


@pytest.mark.slow
def test_whole_pipeline_through_papermill(tmp_path, monkeypatch):
    """prepare -> train@2 variants -> evaluate@2 variants, as dvc.yaml runs them; every key of
    params.yaml each stage reads is in its ``params:`` list (params deps by construction)."""
    from poseprompt.config.params import TRACE_ENV
    from poseprompt.tools.deps import uncovered_reads
    trace = tmp_path / "params.trace"
    monkeypatch.setenv(TRACE_ENV, str(trace))
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
        # no warning a reader has to decode (tqdm's "IProgress not found" without ipywidgets)
        shown = out.read_text()
        assert "IProgress" not in shown and "TqdmWarning" not in shown, out.name
    for variant in params["variants"]:
        m = json.loads((tmp_path / "metrics" / "variants" / f"{variant}.json").read_text())
        for key in ("variant", "checkpoint", "split", "input_2d", "action_label_given", "test", "test_flip",
                    "suites", "cross_domain", "main", "seeds", "std", "per_seed"):
            assert key in m, key
        assert set(ALL_METRICS) <= set(m["test"])
        for seed in params["seeds"]:
            assert (tmp_path / "models" / variant / f"seed{seed}" / "model.pt").is_file()
    read = {ln.split("\t")[0] for ln in trace.read_text().splitlines()}
    assert read == {"prepare", "train", "evaluate"}
    assert uncovered_reads(trace) == {}


#: an edited file -> the stages whose outputs it can change (written by hand from what each stage
#: runs, not computed by poseprompt.tools.deps: the test checks the computed lists against it)
RERUNS = {
    "plots/style.py": {"method", "figures"},                     # a plot style: the drawings only
    "plots/claims.py": {"method", "figures"},                    # a figure module
    "stages/train.py": {"train@*"},                              # the training loop: not evaluation, not figures
    "stages/evaluate.py": {"evaluate@*"},
    "model/fusion.py": {"train@*", "evaluate@*", "method", "figures"},
    "core/skeleton.py": {"prepare", "train@*", "evaluate@*", "method", "figures"},
    "data/h36m.py": {"prepare"},                                 # a data source
}


@pytest.mark.slow
def test_an_edit_re_runs_exactly_the_stages_whose_outputs_it_can_change(tmp_path):
    """In a copy of the project, a handful of files edited: `dvc status` lists each as a changed
    dependency of exactly the stages in RERUNS (``train@*``: every variant's training)."""
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
    for rel in RERUNS:
        f = tmp_path / "src" / "poseprompt" / rel
        f.write_text(f.read_text() + "\n# an edit\n")
    out = run(dvc, "status", "--json")
    assert out.returncode == 0, out.stderr
    status = json.loads(out.stdout or "{}")
    variants = default_params()["variants"]
    rows = []
    for rel, expected in RERUNS.items():
        path = f"src/poseprompt/{rel}"
        stale = {stage for stage, changes in status.items()
                 if any(path in (c.get("changed deps") or {}) for c in changes if isinstance(c, dict))}
        want = {f"{e[:-2]}@{v}" for e in expected if e.endswith("@*") for v in variants} | \
               {e for e in expected if not e.endswith("@*")}
        rows.append((rel, sorted(stale), sorted(want)))
    assert all(stale == want for _, stale, want in rows), [r for r in rows if r[1] != r[2]]


def test_typed_configurations_default_to_the_default_preset():
    """One configuration mechanism: every section is a typed, frozen configuration whose defaults
    are the default preset's values (a key missing from params.yaml means the default, not another
    number), and unknown keys are errors that list the known ones."""
    from poseprompt.config.sections import ConfigError, DataConfig, ModelConfig
    from poseprompt.config.sections import TrainConfig
    from poseprompt.data import bvh, h36m, mpi3dhp, synthetic
    from poseprompt.plots.figures import FigureConfig
    from poseprompt.stages.evaluate import EvalConfig
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
