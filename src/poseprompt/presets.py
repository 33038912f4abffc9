"""Presets: small files of overrides of the default configuration, never a second copy of it.

The default ships with the package (``poseprompt/assets/params-default.yaml``; the project's
params.yaml starts as a copy of it). A preset is ``poseprompt/assets/presets/<name>.yaml``
(``paper``, ``study``, ``study-bandai``, ``gpu-smoke``), merged recursively onto the default (a mapping
updates a mapping key by key; lists and scalars replace):

* ``python -m poseprompt.presets use paper`` writes default + overrides into params.yaml (the
  previous file is kept as params.yaml.bak); ``use default`` restores the default (``make
  paper-config`` / ``make default-config``);
* ``python -m poseprompt.presets overrides paper`` prints the overrides as ``-S key=value``
  arguments for ``dvc exp run`` (an experiment with the preset, params.yaml untouched);
* ``python -m poseprompt.presets show study`` prints the merged configuration.

Every preset is validated by building the typed configuration of every section from the merged
parameters (:func:`validate`): a misspelt key is an error that names it.
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any, Mapping

import yaml

from .config import merge
from .io import write_text
from .params import SECTIONS, default_params, preset_names, preset_path, seeds_of, variant_config


def preset_overrides(name: str) -> dict[str, Any]:
    """The overrides of a preset ({} for the default), checked against the default's keys."""
    if name == "default":
        return {}
    path = preset_path(name)
    over = yaml.safe_load(path.read_text()) or {}
    unknown = sorted(set(over) - set(SECTIONS))
    if unknown:
        raise ValueError(f"{path.name}: unknown sections {unknown}; known: {list(SECTIONS)}")
    return over


def validate(params: Mapping[str, Any], where: str = "params") -> None:
    """Build the typed configuration of every section (unknown keys and bad values are errors that
    name them): the data section and its source, every variant's model, training, evaluation and
    figures."""
    from .data.prepare import validate_config
    from .evaluate import EvalConfig
    from .plots.figures import FigureConfig
    from .train import TrainConfig
    try:
        seeds_of(params)
        validate_config(params["data"])
        for v in params["variants"]:
            variant_config(params, v)
        TrainConfig.from_dict(params["train"])
        EvalConfig.from_dict(params["evaluate"])
        FigureConfig.from_dict(params.get("figures"))
    except (ValueError, TypeError, KeyError) as e:
        raise ValueError(f"{where}: {e}") from e


def preset_params(name: str, check: bool = True) -> dict[str, Any]:
    """The default configuration with a preset's overrides applied (validated)."""
    params = merge(default_params(), preset_overrides(name))
    if check:
        validate(params, f"preset {name!r}")
    return params


def dvc_set_arguments(name: str) -> list[str]:
    """The preset's overrides as ``-S key=value`` arguments of ``dvc exp run`` (leaves flattened;
    lists and variant entries as YAML flow values)."""
    out: list[str] = []

    def walk(d, prefix):
        for k, v in d.items():
            key = f"{prefix}{k}"
            if isinstance(v, Mapping) and v and not key.startswith("variants."):
                walk(v, key + ".")
            else:
                value = yaml.safe_dump(v, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()
                out.extend(["-S", f"{key}={value}"])
    walk(preset_overrides(name), "")
    return out


HEADER = ("# Parameters of the whole pipeline (written by `python -m poseprompt.presets use {name}`: the default\n"
          "# configuration{plus}). Change a value and run `dvc repro` (or `dvc exp run -S section.key=value`):\n"
          "# exactly the stages that depend on it run again. `make default-config` restores the default.\n")


def use_preset(name: str, target: str | Path = "params.yaml") -> Path:
    """Write the default + a preset's overrides into ``target`` (the previous file is kept as
    ``<target>.bak``). The default is written byte for byte as shipped (with its comments)."""
    target = Path(target)
    if target.exists():
        shutil.copyfile(target, target.with_name(target.name + ".bak"))
    if name == "default":
        return write_text(target, preset_path("default").read_text())
    text = HEADER.format(name=name, plus=f" plus the overrides of presets/{name}.yaml") + "\n" + \
        yaml.safe_dump(preset_params(name), sort_keys=False, width=110)
    return write_text(target, text)


def main(argv=None):
    ap = argparse.ArgumentParser(description="the default configuration and its presets (overrides)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    use = sub.add_parser("use", help="write the default + a preset's overrides into params.yaml")
    use.add_argument("preset", help=" | ".join(preset_names()))
    use.add_argument("--file", default="params.yaml")
    ov = sub.add_parser("overrides", help="print a preset's overrides as `dvc exp run -S` arguments")
    ov.add_argument("preset")
    show = sub.add_parser("show", help="print the default + a preset's overrides")
    show.add_argument("preset")
    args = ap.parse_args(argv)
    if args.cmd == "use":
        path = use_preset(args.preset, args.file)
        print(f"{path}: now the {args.preset!r} configuration (previous version in {path.name}.bak)")
    elif args.cmd == "overrides":
        import shlex
        print(" ".join(shlex.quote(a) for a in dvc_set_arguments(args.preset)))
    else:
        print(yaml.safe_dump(preset_params(args.preset), sort_keys=False, width=110), end="")


if __name__ == "__main__":
    main()
