"""The figures stage on the tiny pipeline: notebooks/04_figures.ipynb through papermill writes every
figure and table; images are non-blank and of the size their figure declares; every variant is in
every table it belongs to, with the data it comes from; a variant named by a figures key that was
not trained is skipped with its reason; the claims table's numbers are those of the per-clip errors;
Figure 3 shows the band masks stored in the checkpoint; notebooks/00_method.ipynb runs; missing
inputs give an error that names the stage."""
import json
import os
from pathlib import Path

import numpy as np
import papermill as pm
import pytest
import torch
import torch.nn.functional as F
import yaml

from poseprompt.config.sections import ConfigError
from poseprompt.plots.figures import FIGURES, TABLES, FigureConfig, make_all

ROOT = Path(__file__).resolve().parents[1]
#: Quick settings for the tests (low resolution, few clips, one timed repeat).
FAST = dict(dpi=60, attention_clips=2, qualitative_clips=1, cost_repeats=1, cost_threads=1)


def project_copy(src: Path, dst: Path, params: dict) -> Path:
    """A project root at ``dst`` that sees the tiny pipeline's outputs (symlinks) and has its own
    params.yaml and dvc.yaml, so that project_root() finds it and figures land in ``dst``."""
    dst.mkdir(parents=True, exist_ok=True)
    for name in ("data", "models", "metrics", "reports"):
        os.symlink(src / name, dst / name)
    (dst / "params.yaml").write_text(yaml.safe_dump(params))
    (dst / "dvc.yaml").write_text("stages: {}\n")
    return dst


def run_notebook(name: str, root: Path, params: dict, **extra) -> Path:
    """Run a stage's notebook as dvc.yaml does; the keys of params.yaml it reads are traced into
    ``<root>/reports/notebooks_test/<name>.trace`` (poseprompt.config.params.TRACE_ENV)."""
    from poseprompt.config.params import TRACE_ENV
    out = root / "reports" / "notebooks_test" / f"{name}.ipynb"
    out.parent.mkdir(parents=True, exist_ok=True)
    trace = out.with_suffix(".trace")
    trace.unlink(missing_ok=True)
    old = os.environ.get(TRACE_ENV)
    os.environ[TRACE_ENV] = str(trace)
    try:
        pm.execute_notebook(str(ROOT / "notebooks" / f"{name}.ipynb"), str(out), parameters=dict(params) | extra,
                            cwd=str(root), progress_bar=False, kernel_name="python3")
    finally:
        if old is None:
            os.environ.pop(TRACE_ENV, None)
        else:
            os.environ[TRACE_ENV] = old
    return out


def test_figures_and_method_read_only_the_params_dvc_yaml_lists_for_them(figures_run):
    """Params deps by construction: every key of params.yaml the figures and method stages read is
    in their ``params:`` list (a key read but not listed would serve stale figures after an edit)."""
    from poseprompt.tools.deps import uncovered_reads
    root, params, _ = figures_run
    run_notebook("00_method", root, params)
    for name, stage in (("04_figures", "figures"), ("00_method", "method")):
        trace = root / "reports" / "notebooks_test" / f"{name}.trace"
        assert stage in trace.read_text(), "the notebook traced nothing"
        assert uncovered_reads(trace) == {}


@pytest.fixture(scope="module")
def figures_run(tiny_pipeline, tmp_path_factory):
    """notebooks/04_figures.ipynb on the tiny pipeline, as the figures stage runs it."""
    src, params = tiny_pipeline
    params = dict(params, figures={**(params.get("figures") or {}), **FAST})
    root = project_copy(src, tmp_path_factory.mktemp("figures_project"), params)
    run_notebook("04_figures", root, params)
    return root, params, root / "figures"


def test_every_figure_and_table_is_written(figures_run):
    _, _, out = figures_run
    names = {p.name for p in out.iterdir() if p.is_file()}
    assert names >= {f"{f}.{ext}" for f in FIGURES for ext in ("png", "pdf")}
    tables = {p.name for p in (out / "tables").iterdir()}
    assert tables >= {f"{t}.{ext}" for t in TABLES for ext in ("md", "tex")} | {"cost.json"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["figures"]) == set(FIGURES) and set(manifest["tables"]) == set(TABLES)
    for name in FIGURES:
        assert (out / f"{name}.pdf").read_bytes()[:5] == b"%PDF-"
    # the executed notebook carries no library warning a reader cannot act on (fontTools' font dates)
    shown = (out.parent / "reports" / "notebooks_test" / "04_figures.ipynb").read_text()
    assert "fontTools" not in shown and "timestamp seems very low" not in shown


def test_images_are_not_blank_and_have_their_declared_size(figures_run):
    from PIL import Image
    _, params, out = figures_run
    manifest = json.loads((out / "manifest.json").read_text())
    for name, entry in manifest["figures"].items():
        with Image.open(out / f"{name}.png") as im:
            px = np.asarray(im.convert("L"), dtype=np.float64) / 255.0
            size = im.size
        assert px.var() > 2e-3, f"{name}.png looks blank (pixel variance {px.var():.2e})"
        assert (px < 0.5).mean() > 0.002, f"{name}.png has almost no dark pixels (no text or lines)"
        w, h = (s * FAST["dpi"] for s in entry["size_in"])
        assert abs(size[0] - w) <= 0.12 * w and abs(size[1] - h) <= 0.12 * h, \
            f"{name}.png is {size} px; its figure is {entry['size_in']} in at {FAST['dpi']} dpi"


def test_every_variant_appears_in_the_tables_it_belongs_to(figures_run):
    _, params, out = figures_run
    variants = list(params["variants"])
    cfg = FigureConfig.from_dict(params["figures"])
    expected = {"main_results": variants, "robustness": variants, "cross_domain": variants, "cost": variants,
                "ablation": [v for v in cfg.ablation if v in variants],
                "injection": [v for v in cfg.injection if v in variants]}
    long = {"robustness", "cross_domain"}                # one row per setting and variant: variant 2nd
    for table, wanted in expected.items():
        assert wanted, table
        for ext in ("md", "tex"):
            text = (out / "tables" / f"{table}.{ext}").read_text()
            col = 1 if table in long else 0
            rows = [line.split("|")[1 + col].strip() if ext == "md" else line.split("&")[col].strip()
                    for line in text.splitlines() if line.startswith("| ") or (" & " in line and "\\\\" in line)]
            for v in wanted:
                assert v.replace("_", r"\_") in rows or v in rows, f"{v} missing from {table}.{ext}"
            low = text.lower()
            assert "2d input" in low and "split" in low and "action label" in low, f"{table}.{ext}: data not stated"
        if table in ("ablation", "injection"):
            missing = [v for v in getattr(cfg, table) if v not in variants]
            assert all(v in text for v in missing), "variants not trained must be named in a note"
    main = (out / "tables" / "main_results.md").read_text()
    assert "no prompt: gatfun" in main and "yes: full" in main       # per variant, from the metrics files
    assert "over 2 training seeds (0, 1)" in main and " ± " in main and "Mean-pose floor" in main
    for table in ("audit", "audit_movement"):
        text = (out / "tables" / f"{table}.md").read_text()
        assert "| full |" in text, table
    assert "| noise walk |" in (out / "tables" / "audit_movement.md").read_text()   # the pure-noise reference row
    audit = (out / "tables" / "audit.md").read_text()
    assert "motion stream" in audit and "[" in audit                  # knock-outs with their intervals
    for table in ("main_results", "ablation", "injection", "robustness", "cross_domain"):
        text = (out / "tables" / f"{table}.md").read_text()
        assert "ΔMPJPE vs gatfun [95 % CI]" in text, table
        assert "capacity-matched baseline gatfun-wide (figures.matched_baseline) was not trained" in text, table
    robust = (out / "tables" / "robustness.md").read_text()
    assert "| clean | full |" in robust and "| occlusion 0.2 | full |" in robust and "| speed ×2 | full |" in robust
    summary = json.loads((out.parent / "metrics" / "summary.json").read_text())
    assert summary["seeds"] == 2 and {"mpjpe", "mpjpe_sd", "d_vs_gatfun", "d_lo", "d_hi"} <= set(summary["full"])
    claims = json.loads((out / "tables" / "claims.json").read_text())
    assert summary["claims"] == claims["counts"] and sum(claims["counts"].values()) == len(claims["rows"])
    label_free = [r for r in claims["rows"] if r["claim_key"] == "label-free"]
    assert all(r["verdict"] == "not run" and "full-generic-action not trained" in r["missing"] for r in label_free)
    skipped = json.loads((out / "manifest.json").read_text())["skipped"]
    assert "gatfun-wide" in skipped["matched_baseline"] and "full-generic-action" in skipped["claim_variant"]
    assert "\\toprule" in (out / "tables" / "cost.tex").read_text()
    cost = json.loads((out / "tables" / "cost.json").read_text())
    assert set(cost) == set(variants)
    assert cost["full"]["frozen"] > 0 == cost["gatfun"]["frozen"]
    assert cost["full"]["flops_per_frame"] > cost["gatfun"]["flops_per_frame"] > 0


def test_claims_of_the_tiny_run_use_its_per_clip_errors(tiny_pipeline, tmp_path):
    """With full as the label-free method: the occlusion row is the per-clip degradation change of
    the clip_errors files, the speed row combines two paired intervals, the knock-outs are the audit's."""
    from poseprompt.core.stats import crossed_interval
    from poseprompt.plots import claims as CL
    from poseprompt.plots.figures import Outputs
    from poseprompt.plots.tables import Results
    root, params = tiny_pipeline
    o = Outputs(root, params)
    clips = {v: o.clip_errors(v) for v in o.variants}
    R = Results(o.metrics, o.configs, clips, "gatfun", None)
    _, rows = CL.claims_table(R, o.audits, CL.Roles(matched=None, method="full"), tmp_path)
    occ = next(r for r in rows if r.setting == "suite/occlusion/0.2")
    f, g = clips["full"], clips["gatfun"]
    expect = crossed_interval((f["suite/occlusion/0.2"] - f["test"]) - (g["suite/occlusion/0.2"] - g["test"]))
    assert occ.combined == "per clip" and occ.interval.mean == pytest.approx(expect.mean)
    assert occ.interval.hi == pytest.approx(expect.hi) and occ.verdict != CL.NOT_RUN
    speed = next(r for r in rows if r.setting == "suite/speed/2.0")
    assert speed.combined == "seed-paired" and speed.verdict != CL.NOT_RUN
    ko = next(r for r in rows if r.test.startswith("knock-out add_pose of full"))
    assert ko.interval.mean == pytest.approx(o.audits["full"]["summary"]["knockout"]["add_pose"]["test"]["interval"]["mean"])
    shift = [r for r in rows if r.claim_key == "shift"]
    # the tiny run has shift strengths 0.5 and 1: the mildest level against the test split (another
    # subject, seed-paired), the stronger one against the mildest (same subject and windows, per clip)
    graded = {r.setting: r for r in shift if (r.setting or "").startswith("cross/shift_")}
    assert graded["cross/shift_camera-0.5"].combined == "seed-paired"
    assert graded["cross/shift_camera-1"].combined == "per clip" and "vs camera 0.5" in graded["cross/shift_camera-1"].test
    assert "seeds 0, 1" in occ.data and "action label: full given, gatfun no prompt" in occ.data


def test_the_study_writes_robustness_and_claims_and_records_them(tiny_pipeline, tmp_path):
    """The study's tables (poseprompt.tools.study.write_tables) on the tiny run: main results, robustness
    (an occlusion suite was evaluated), audit and claims, against gatfun only (no gatfun-wide
    trained); the record copies every table and claims.json."""
    from poseprompt.plots.figures import Outputs
    from poseprompt.tools import study
    root, params = tiny_pipeline
    out = tmp_path / "run"
    R, rows, floor = study.write_tables(Outputs(root, params), params, out / "tables")
    assert R.baseline == "gatfun" and R.matched is None and rows and floor > 0
    names = {f.name for f in (out / "tables").iterdir()}
    assert {f"{t}.{e}" for t in ("main_results", "robustness", "audit", "audit_movement", "claims")
            for e in ("md", "tex")} | {"claims.json"} <= names
    assert "| occlusion 0.2 | full |" in (out / "tables" / "robustness.md").read_text()
    for f in ("study.md", "study.json", "params.yaml"):
        (out / f).write_text(f)
    study._record(out, tmp_path / "record")
    for f in ("tables/claims.json", "tables/claims.md", "tables/robustness.tex", "study.md"):
        assert (tmp_path / "record" / f).read_bytes() == (out / f).read_bytes(), f


def test_figure12_marks_the_noise_walk_of_the_audit(tiny_pipeline, tmp_path):
    """Figure 12a draws each pooling and gate group's pure-noise walk, the value of the audit files
    (the same reference as the movement table's row), and nothing for groups the walk skips."""
    from poseprompt.plots.evidence import fig12_component_audit
    from poseprompt.stages.audit import walk_reference
    root, _ = tiny_pipeline
    audits = {p.stem: json.loads(p.read_text()) for p in sorted((root / "metrics" / "audit").glob("*.json"))}
    res = fig12_component_audit(audits, tmp_path)
    groups = list(dict.fromkeys(g for a in audits.values() for g in a["summary"]["movement"]))   # the figure's rows
    drawn = dict(zip(groups, res["data"]["movement"]["noise walk"]))
    ref = walk_reference(audits, list(audits), groups)
    assert {"spatial.mu", "temporal.sigma", "gate.beta_s"} <= set(ref)
    for g in groups:
        if g in ref:
            assert drawn[g] == pytest.approx(ref[g]) and drawn[g] > 0
        else:
            assert np.isnan(drawn[g]), g


def test_figure3_shows_the_band_masks_stored_in_the_checkpoint(tiny_pipeline, tmp_path):
    """Move the checkpoint's mu_h: the plotted curves must move with it, and equal eq. 5 computed from
    the stored mu_h and sigma_h."""
    from poseprompt.data.format import PoseSequences
    from poseprompt.model.checkpoint import load_checkpoint
    from poseprompt.plots.method import fig3_laplacian_pooling
    root, params = tiny_pipeline
    test = PoseSequences.load(root / params["data"]["out_dir"] / "test.npz")
    payload = torch.load(root / "models" / "full" / "seed0" / "model.pt", weights_only=True)

    def plotted(state):
        payload["state_dict"] = state
        path = tmp_path / "model.pt"
        torch.save(payload, path)
        d = fig3_laplacian_pooling(load_checkpoint(path), test, tmp_path / "fig", dpi=30, formats=("png",))["data"]
        return d["plotted_lambda"], d["plotted_masks"]

    state = dict(payload["state_dict"])
    lam, before = plotted(state)
    d = fig3_laplacian_pooling(load_checkpoint(root / "models/full/seed0/model.pt"), test, tmp_path / "f0", dpi=30,
                               formats=("png",), init_state=payload["init_state"])["data"]
    mu0 = payload["init_state"]["spatial_pool.mu"].double().numpy()        # dashed: the masks at initialisation
    assert d["init_masks"].shape == before.shape
    assert np.allclose(d["lambda_grid"][np.argmax(d["init_masks"], axis=1)], mu0, atol=lam[1] - lam[0] + 1e-9)
    moved = state["spatial_pool.mu"].clone()
    moved[:] = torch.linspace(1.0, 4.0, len(moved))
    lam2, after = plotted(dict(state, **{"spatial_pool.mu": moved}))
    assert np.allclose(lam, lam2) and not np.allclose(before, after)
    sigma = (F.softplus(state["spatial_pool.sigma_raw"]) + 1e-3).double().numpy()
    expect = np.exp(-(lam[None] - moved.double().numpy()[:, None]) ** 2 / (2 * sigma[:, None] ** 2))
    assert np.allclose(after, expect, atol=1e-6)
    assert np.allclose(lam[np.argmax(after, axis=1)], moved.numpy(), atol=lam[1] - lam[0] + 1e-9)  # peaks at mu_h


def test_figure4_draws_what_the_detail_filter_keeps(tiny_pipeline, tmp_path):
    """With temporal_filter: detail, panel (b) draws X - g_h * X of the joint's trajectory."""
    from poseprompt import build_model
    from poseprompt.data.format import PoseSequences
    from poseprompt.model.checkpoint import read_checkpoint
    from poseprompt.plots.method import fig4_gaussian_pooling
    root, params = tiny_pipeline
    test = PoseSequences.load(root / params["data"]["out_dir"] / "test.npz")
    cfg = dict(read_checkpoint(root / "models" / "full" / "seed0" / "model.pt")["model_config"])
    torch.manual_seed(0)
    model = build_model({**cfg, "temporal_filter": "detail"}).eval()
    d = fig4_gaussian_pooling(model, test, tmp_path, dpi=30, formats=("png",))["data"]
    g, x = d["kernels"], d["trajectory"]
    R, T = (g.shape[1] - 1) // 2, len(x)
    smooth = np.array([[sum(g[h, k] * x[min(max(t - (k - R), 0), T - 1)] for k in range(2 * R + 1))
                        for t in range(T)] for h in range(len(g))])
    assert d["filter"] == "detail"
    assert np.allclose(d["filtered"], x[None] - smooth, atol=1e-9)
    assert (tmp_path / "fig4_gaussian_pooling.png").stat().st_size > 0


def test_method_notebook_runs(figures_run):
    root, params, _ = figures_run
    out = run_notebook("00_method", root, params)
    text = out.read_text()
    assert "eq. 4-6 by hand equal the module's output: True" in text and "equals the model's: True" in text
    assert "eq. 8-9 by hand equal the module's output: True" in text and "without motion_stream" in text


def test_missing_inputs_and_bad_settings_are_clear_errors(tiny_pipeline, tmp_path):
    root, params = tiny_pipeline
    with pytest.raises(FileNotFoundError, match=r"models/static/seed0/model\.pt.*train@static"):
        make_all(root, dict(params, variants={**params["variants"], "static": {"prompt": "static"}}), tmp_path)
    with pytest.raises(ConfigError, match="figures: unknown keys"):
        make_all(root, dict(params, figures={"dpi": 100, "colour": "red"}), tmp_path)
    with pytest.raises(ConfigError, match="figures.proposed"):
        make_all(root, dict(params, figures={"proposed": "nope"}), tmp_path)
    assert not any(tmp_path.iterdir())
