"""params.yaml: loading, the training seeds, the variant configurations, the packaged default.

The notebooks receive every top-level section of params.yaml from papermill (``-f params.yaml``);
when a notebook is run by hand (JupyterLab) the sections it was not given are read from the
project's params.yaml, so both ways run the same configuration. The default configuration ships
with the package (``poseprompt/assets/params-default.yaml``); presets are overrides of it
(poseprompt/config/presets.py).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import yaml

from poseprompt.config.sections import ModelConfig, merge

SECTIONS = ("seed", "seeds", "data", "model", "variants", "train", "evaluate", "figures")
ASSETS = Path(__file__).resolve().parent.parent / "assets"


def project_root(start: str | Path | None = None) -> Path:
    """The nearest folder at or above ``start`` (default: the working directory) holding
    params.yaml and dvc.yaml. Notebooks run from notebooks/ (JupyterLab) or the root (papermill)."""
    here = Path(start or Path.cwd()).resolve()
    for p in (here, *here.parents):
        if (p / "params.yaml").is_file() and (p / "dvc.yaml").is_file():
            return p
    raise FileNotFoundError(f"no params.yaml with a dvc.yaml beside it at or above {here}")


def load_params(path: str | Path | None = None) -> dict[str, Any]:
    path = Path(path) if path else project_root() / "params.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: parameters file not found")
    try:
        params = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: not valid YAML: {e}") from e
    missing = [s for s in SECTIONS if s not in params]
    if missing:
        raise ValueError(f"{path}: missing top-level sections {missing}")
    return params


def default_params() -> dict[str, Any]:
    """The packaged default configuration (``poseprompt/assets/params-default.yaml``), a fresh copy."""
    return load_params(preset_path("default"))


def complete(given: Mapping[str, Any], stage: str | None = None) -> dict[str, Any]:
    """The notebook's parameters with every section that is None filled from params.yaml.

    ``stage``: the DVC stage the notebook runs. With the environment variable
    ``POSEPROMPT_PARAMS_TRACE`` set to a file, every key the stage then reads is appended to that
    file (``stage<TAB>dotted.key``): the test that checks each stage's ``params:`` list in
    dvc.yaml against what the stage really reads (poseprompt/tools/deps.py)."""
    out = {k: given.get(k) for k in SECTIONS}
    if any(v is None for v in out.values()):
        stored = load_params()
        out = {k: (stored[k] if v is None else v) for k, v in out.items()}
    trace = os.environ.get(TRACE_ENV)
    if trace and stage:
        return Traced(out, "", _TraceLog(trace, stage))
    return out


TRACE_ENV = "POSEPROMPT_PARAMS_TRACE"


class _TraceLog:
    def __init__(self, path: str, stage: str):
        self.path, self.stage, self.seen = path, stage, set()

    def add(self, key: str) -> None:
        if key and key not in self.seen:
            self.seen.add(key)
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(f"{self.stage}\t{key}\n")


class Traced(dict):
    """A params mapping that records every key read: a value looked up (``[]``, ``get``) or a key
    tested (``in``) under its dotted path, a whole mapping iterated or copied under its own path.
    Nested mappings come back traced (only what is read in them counts); values as they are."""

    def __init__(self, data: Mapping, path: str, log: _TraceLog):
        super().__init__(data)
        self._path, self._log = path, log

    def _key(self, k) -> str:
        return f"{self._path}.{k}" if self._path else str(k)

    def _read(self, k, v):
        """A mapping comes back traced (what is read in it is recorded), anything else is recorded."""
        if isinstance(v, Mapping) and not isinstance(v, Traced):
            return Traced(v, self._key(k), self._log)
        self._log.add(self._key(k))
        return v

    def __getitem__(self, k):
        return self._read(k, super().__getitem__(k))

    def get(self, k, default=None):
        return self._read(k, super().get(k, default))

    def __contains__(self, k):
        self._log.add(self._key(k))
        return super().__contains__(k)

    def _whole(self):
        self._log.add(self._path or "*")

    def __reduce__(self):                   # pickled (a worker process): a plain dict, read whole
        self._whole()
        return dict, (dict(dict.items(self)),)


def _reads_whole(name: str):
    method = getattr(dict, name)

    def read(self, *args):
        self._whole()
        return method(self, *args)
    read.__name__ = name
    return read


for _name in ("__iter__", "keys", "items", "values"):     # iterating or copying reads the whole mapping
    setattr(Traced, _name, _reads_whole(_name))


def stage_command(description: str, argv=None) -> tuple[dict[str, Any], str, str]:
    """The command line of a foreach stage run outside its notebook (``python -m
    poseprompt.stages.train|evaluate --variant v``): the params of ``--params``, the variant, the root."""
    import argparse
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--variant", required=True)
    ap.add_argument("--root", default=".")
    args = ap.parse_args(argv)
    return load_params(args.params), args.variant, args.root


def seeds_of(params: Mapping[str, Any]) -> list[int]:
    """The training seeds (``seeds: [0, 1, 2]``): every variant is trained and evaluated for each."""
    seeds = params.get("seeds")
    if seeds is None:
        raise ValueError("params.yaml: missing 'seeds' (a list of training seeds, e.g. [0, 1, 2])")
    if isinstance(seeds, int) or not seeds or not all(isinstance(s, int) and s >= 0 for s in seeds) \
            or len(set(seeds)) != len(seeds):
        raise ValueError(f"params.yaml: seeds = {seeds!r}; expected a list of distinct non-negative integers")
    return [int(s) for s in seeds]


def variant_config(params: Mapping[str, Any], variant: str) -> ModelConfig:
    """The model of a variant: the ``model`` section plus the variant's overrides."""
    variants = params.get("variants") or {}
    if variant not in variants:
        raise KeyError(f"params.yaml: variant {variant!r} not in variants {sorted(variants)}")
    return ModelConfig.from_dict(merge(params["model"], variants[variant] or {}))


PRESETS = ASSETS / "presets"


def preset_names() -> list[str]:
    return ["default"] + sorted(p.stem for p in PRESETS.glob("*.yaml"))


def preset_path(name: str) -> Path:
    """The packaged default (``name == "default"``) or a preset's overrides file."""
    path = ASSETS / "params-default.yaml" if name == "default" else PRESETS / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(f"unknown preset {name!r}; known: {preset_names()}")
    return path
