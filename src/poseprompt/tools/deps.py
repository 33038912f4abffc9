"""Stage dependencies by construction: the code each DVC stage runs, computed from the imports.

A stage runs one notebook; the notebook imports modules of the package, which import others. The
stage's code is the **import closure** of its notebook within ``src/poseprompt`` (every
``import``/``from ... import`` statement, at module level or inside functions, followed
transitively, with the ``__init__.py`` of every package on the way), plus the data files of
``src/poseprompt/assets`` that the code reads. Nothing is listed by hand:

* ``python -m poseprompt.tools.deps`` prints each stage's code; ``--write`` puts it into ``dvc.yaml``
  (between the ``# code:`` markers of every stage) and ``--check`` fails when ``dvc.yaml`` differs;
  a test runs the check, so a new import can never be missing from a stage;
* the training fingerprint (:func:`poseprompt.stages.train.code_digest`) hashes the same closure, so a
  resumed ``state/last.pt`` always belongs to the current code.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from poseprompt.core.closure import PACKAGE, ROOT, _files, closure_of_module, imports_of


#: stage -> the notebook it runs
STAGE_NOTEBOOKS = {
    "prepare": "notebooks/01_prepare_data.ipynb",
    "train": "notebooks/02_train.ipynb",
    "evaluate": "notebooks/03_evaluate.ipynb",
    "method": "notebooks/00_method.ipynb",
    "figures": "notebooks/04_figures.ipynb",
}


def notebook_source(path: str | Path) -> str:
    """The code cells of a notebook as one Python source (IPython magics dropped)."""
    nb = json.loads(Path(path).read_text())
    lines = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        src = "".join(cell["source"])
        lines += [ln for ln in src.splitlines() if not ln.lstrip().startswith(("%", "!"))]
    return "\n".join(lines)


def stage_modules(stage: str, root: str | Path = ROOT) -> frozenset[str]:
    src = notebook_source(Path(root) / STAGE_NOTEBOOKS[stage])
    mods: set[str] = set()
    for m in imports_of(src):
        mods |= closure_of_module(m)
    return frozenset(mods)


def stage_code(stage: str, root: str | Path = ROOT) -> list[str]:
    """The files of the package a stage runs, relative to the project folder, sorted."""
    return [f"src/{PACKAGE}/{f}" for f in _files(stage_modules(stage, root))]


# ---- params ----------------------------------------------------------------------------------------

def stage_params() -> dict[str, list[str]]:
    """The keys of params.yaml each stage reads (its ``params:`` list in dvc.yaml), built from the
    typed sections: a stage that reads a whole section lists it (``prepare`` validates the whole
    data section, sources and windows included, so it lists ``data``: a new source is listed without
    a hand edit, and since its outputs are bit-reproducible, an edit that changes no split re-runs
    it alone). ``${key}`` is the variant of a foreach stage. A test runs every stage's notebook with
    :data:`poseprompt.config.params.TRACE_ENV` set and checks that each key read is listed here."""
    return {
        "prepare": ["seed", "data"],
        "train": ["seeds", "model", "train", "variants.${key}", "data.source", "data.out_dir", "data.windows"],
        "evaluate": ["seeds", "evaluate", "variants.${key}", "data.out_dir", "data.windows"],
        "method": ["seed", "seeds", "model", "variants", "figures", "data.out_dir", "data.windows"],
        "figures": ["seed", "seeds", "model", "variants", "figures", "evaluate.seed", "evaluate.suites", "train",
                    "data.source", "data.out_dir", "data.windows", "data.cross_domain"],
    }


def covered(key: str, declared: list[str], variant: str | None = None) -> bool:
    """Whether reading ``key`` (dotted) is covered by a declared key: itself or a section above it."""
    import re
    for d in declared:
        if variant is not None:
            d = d.replace("${key}", variant)
        pattern = re.escape(d).replace(re.escape("${key}"), r"[^.]+")
        if re.fullmatch(pattern + r"(\..*)?", key):
            return True
    return False


def uncovered_reads(trace: str | Path) -> dict[str, list[str]]:
    """From a trace file (``stage<TAB>key`` lines): per stage, the keys read that its ``params:``
    list does not cover (a key read whole as ``*`` means: the whole params)."""
    declared = stage_params()
    out: dict[str, list[str]] = {}
    for line in Path(trace).read_text().splitlines():
        stage, key = line.split("\t")
        if not covered(key, declared[stage]):
            out.setdefault(stage, []).append(key)
    return {k: sorted(set(v)) for k, v in out.items()}


# ---- dvc.yaml --------------------------------------------------------------------------------------

BEGIN, END = "# code: begin (python -m poseprompt.tools.deps --write)", "# code: end"


def render_dvc_yaml(text: str, root: str | Path = ROOT) -> str:
    """``dvc.yaml`` with every stage's code block between the markers replaced by its closure and
    its ``params:`` list replaced by :func:`stage_params`.

    A block sits in the stage's ``deps`` list; its indentation is that of the BEGIN marker."""
    lines = text.splitlines()
    out, stage, i = [], None, 0
    params = stage_params()
    while i < len(lines):
        ln = lines[i]
        stripped = ln.strip()
        if ln.startswith("  ") and not ln.startswith("   ") and stripped.endswith(":") and not stripped.startswith("#"):
            stage = stripped[:-1]
        if stripped == "params:" and stage in params:
            indent = ln[:len(ln) - len(ln.lstrip())]
            out.append(ln)
            out += [f"{indent}  - {k}" for k in params[stage]]
            i += 1
            while i < len(lines) and lines[i].startswith(indent + "  ") and \
                    lines[i].strip().startswith(("- ", "#")):
                i += 1
            continue
        if stripped == BEGIN:
            if stage not in STAGE_NOTEBOOKS:
                raise ValueError(f"dvc.yaml: a code block in stage {stage!r}, which runs no known notebook")
            indent = ln[:len(ln) - len(ln.lstrip())]
            out.append(ln)
            out += [f"{indent}- {f}" for f in stage_code(stage, root)]
            i += 1
            while i < len(lines) and lines[i].strip() != END:
                i += 1
            if i == len(lines):
                raise ValueError(f"dvc.yaml: stage {stage!r}: code block without '{END}'")
            out.append(lines[i])
        else:
            out.append(ln)
        i += 1
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="the code every DVC stage depends on (its import closure)")
    ap.add_argument("--write", action="store_true", help="update the code blocks of dvc.yaml")
    ap.add_argument("--check", action="store_true", help="exit 1 when dvc.yaml's code blocks are stale")
    ap.add_argument("--root", default=str(ROOT))
    args = ap.parse_args(argv)
    path = Path(args.root) / "dvc.yaml"
    if args.write or args.check:
        old = path.read_text()
        new = render_dvc_yaml(old, args.root)
        if args.check:
            if new != old:
                print(f"{path}: stage code or params lists are stale; run `python -m poseprompt.tools.deps --write`",
                      file=sys.stderr)
                return 1
            print(f"{path}: every stage lists its whole import closure and the params it reads")
            return 0
        if new != old:
            from poseprompt.core.io import write_text
            write_text(path, new)
            print(f"{path}: code lists updated")
        return 0
    for stage in STAGE_NOTEBOOKS:
        print(f"{stage}:")
        for f in stage_code(stage, args.root):
            print(f"  {f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
