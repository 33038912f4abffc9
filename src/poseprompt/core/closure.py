"""The import closure of a module within the package: every module that importing it runs (the
``__init__.py`` of every package on the way included), and the asset files that code reads. It is
the code a DVC stage depends on (:mod:`poseprompt.tools.deps` writes it into dvc.yaml) and the code
a training run's fingerprint hashes (:func:`poseprompt.stages.train.code_digest`): kept apart from
the command line, so that editing the command's params lists re-runs no training."""
from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

from poseprompt import _WHERE as _LAZY

PACKAGE = "poseprompt"
SRC = Path(__file__).resolve().parents[1]           # src/poseprompt
ROOT = SRC.parent.parent                            # the project folder (when run from a checkout)

#: asset files and the module that reads them (a module in the closure brings its assets along)
ASSETS = {
    "model/text_encoder.py": ("assets/pp-text-tiny.json",),
    "data/h36m.py": ("assets/h36m_cameras.json",),
}


def module_file(name: str) -> Path | None:
    """The file of module ``poseprompt.a.b`` (a package's ``__init__.py``), or None outside the package."""
    if name != PACKAGE and not name.startswith(PACKAGE + "."):
        return None
    parts = name.split(".")[1:]
    base = SRC.joinpath(*parts) if parts else SRC
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = [PACKAGE, *rel.parts]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(source: str, module: str | None = None, is_package: bool = False) -> set[str]:
    """Module names of the package imported anywhere in ``source`` (relative imports resolved
    against ``module``). ``from a import b`` yields ``a.b`` when that is a module, else ``a``."""
    tree = ast.parse(source)
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if module is None:
                    continue
                pkg = module if is_package else module.rsplit(".", 1)[0]
                for _ in range(node.level - 1):
                    pkg = pkg.rsplit(".", 1)[0]
                base = f"{pkg}.{node.module}" if node.module else pkg
            else:
                base = node.module or ""
            out.add(base)
            for a in node.names:
                if module_file(f"{base}.{a.name}") is not None:
                    out.add(f"{base}.{a.name}")
                elif base == PACKAGE and a.name in _LAZY:        # poseprompt/__init__.py's lazy names
                    out.add(PACKAGE + _LAZY[a.name])
    return {m for m in out if module_file(m) is not None}


def _parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


@lru_cache(maxsize=None)
def closure_of_module(name: str) -> frozenset[str]:
    """Every module of the package that importing ``name`` runs (its parents' ``__init__`` too)."""
    if module_file(name) is None:
        raise ValueError(f"{name!r} is not a module of the {PACKAGE} package")
    seen: set[str] = set()
    todo = [name]
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        path = module_file(m)
        todo.extend(_parents(m))
        todo.extend(imports_of(path.read_text(), m, path.name == "__init__.py"))
    return frozenset(seen)


def _files(modules) -> list[str]:
    files = set()
    for m in modules:
        rel = module_file(m).relative_to(SRC).as_posix()
        files.add(rel)
        files.update(ASSETS.get(rel, ()))
    return sorted(files)


def module_code(name: str) -> list[str]:
    """The package files (relative to ``src/poseprompt``) that importing module ``name`` runs or reads."""
    return _files(closure_of_module(name))
