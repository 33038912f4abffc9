"""Presets: small files of overrides of the default configuration, never a second copy of it.

The default ships with the package (``poseprompt/assets/params-default.yaml``; the project's
params.yaml starts as a copy of it). A preset is ``poseprompt/assets/presets/<name>.yaml``
(``paper``, ``study``, ``study-bandai``, ``gpu-smoke``), merged recursively onto the default (a mapping
updates a mapping key by key; lists and scalars replace):

* ``python -m poseprompt.config.presets use paper`` writes default + overrides into params.yaml (the
  previous file is kept as params.yaml.bak); ``use default`` restores the default (``make
  paper-config`` / ``make default-config``);
* ``python -m poseprompt.config.presets overrides paper`` prints the overrides as ``-S key=value``
  arguments for ``dvc exp run`` (an experiment with the preset, params.yaml untouched);
* ``python -m poseprompt.config.presets show study`` prints the merged configuration.

Every preset is validated by building the typed configuration of every section from the merged
parameters (:func:`validate`): a misspelt key is an error that names it.
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any, Mapping

import yaml

from poseprompt.config.params import SECTIONS, default_params, preset_names, preset_path, seeds_of, variant_config
from poseprompt.config.sections import merge
from poseprompt.core.io import write_text


def preset_overrides(name: str, _seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """The overrides of a preset ({} for the default), checked against the default's sections. A
    preset that starts with ``extends: <other>`` is the other preset's overrides with its own merged
    on top (the ``rehearsal`` preset is the paper's at a CPU size)."""
    if name == "default":
        return {}
    path = preset_path(name)
    over = yaml.safe_load(path.read_text()) or {}
    base = over.pop("extends", None)
    unknown = sorted(set(over) - set(SECTIONS))
    if unknown:
        raise ValueError(f"{path.name}: unknown sections {unknown}; known: {list(SECTIONS)} (and extends)")
    if base is not None:
        if base in _seen + (name,):
            raise ValueError(f"{path.name}: extends {base!r} in a cycle ({' -> '.join(_seen + (name, base))})")
        over = merge(preset_overrides(base, _seen + (name,)), over)
    return over


def validate(params: Mapping[str, Any], where: str = "params") -> None:
    """Build the typed configuration of every section (unknown keys and bad values are errors that
    name them): the data section and its source, every variant's model, training, evaluation and
    figures."""
    from poseprompt.config.sections import TrainConfig
    from poseprompt.plots.figures import FigureConfig
    from poseprompt.stages.evaluate import EvalConfig
    from poseprompt.stages.prepare import validate_config
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


HEADER = ("# Parameters of the whole pipeline: the {name!r} preset, written by\n"
          "# `python -m poseprompt.config.presets use {name}` as the default configuration plus the overrides\n"
          "# of src/poseprompt/assets/presets/{name}.yaml; each value the preset sets is marked `# {name}:`.\n"
          "# Change a value and run `dvc repro` (or `dvc exp run -S section.key=value`): exactly the stages\n"
          "# that depend on it run again. `make default-config` restores the default.\n")


def use_preset(name: str, target: str | Path = "params.yaml") -> Path:
    """Write the default + a preset's overrides into ``target`` (the previous file is kept as
    ``<target>.bak``). The default is written byte for byte as shipped (with its comments)."""
    target = Path(target)
    if target.exists():
        shutil.copyfile(target, target.with_name(target.name + ".bak"))
    if name == "default":
        return write_text(target, preset_path("default").read_text())
    return write_text(target, preset_text(name))


MARK_COLUMN = 32                                          # where the default's comments start


def preset_text(name: str) -> str:
    """The default's params.yaml, comments kept, with the preset's values in place: every value the
    preset changes carries ``# <name>: was <default>`` before the default's own comment, every key it
    adds ``# <name>: added``. A round trip through ruamel.yaml (the YAML library DVC itself uses)."""
    import io

    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap, CommentedSeq
    rt = YAML()
    rt.width = 110
    rt.indent(mapping=2, sequence=4, offset=2)
    doc = rt.load(preset_path("default").read_text())
    merged = preset_params(name)

    def styled(v):
        """Plain data as ruamel nodes: mappings block style, lists of scalars flow style."""
        if isinstance(v, Mapping):
            m = CommentedMap()
            for k, x in v.items():
                m[k] = styled(x)
            return m
        if isinstance(v, (list, tuple)):
            seq = CommentedSeq(styled(x) for x in v)
            if not any(isinstance(x, (Mapping, list, tuple)) for x in v):
                seq.fa.set_flow_style()
            return seq
        return v

    def short(v) -> str:
        text = yaml.safe_dump(v, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()
        return text if len(text) <= 40 else text[:37] + "..."

    def mark(node: CommentedMap, key, note: str) -> None:
        item = node.ca.items.get(key)
        tok = item[2] if item and len(item) > 2 else None
        if tok is not None:                          # keep the default's comment and what follows it
            first, nl, rest = tok.value.partition("\n")
            own = first.strip().lstrip("#").strip()
            tok.value = f"# {note}" + (f"; {own}" if own else "") + nl + rest
        else:
            node.yaml_add_eol_comment(note, key, column=MARK_COLUMN)

    def overlay(node: CommentedMap, new: Mapping, base: Mapping) -> None:
        last = list(node)[-1] if len(node) else None
        added = []
        for k, v in new.items():
            if k in base and isinstance(v, Mapping) and isinstance(node.get(k), CommentedMap) and v \
                    and not node[k].fa.flow_style():
                overlay(node[k], v, base[k])
            elif k not in base:
                node[k] = styled(v)
                mark(node, k, f"{name}: added")
                added.append(k)
            elif v != base[k]:
                flow = isinstance(node.get(k), CommentedMap) and node[k].fa.flow_style()
                node[k] = styled(v)
                if flow:
                    node[k].fa.set_flow_style()
                if isinstance(v, Mapping) and isinstance(base[k], Mapping):     # say what changed in it
                    keys = [kk for kk in {**base[k], **v} if v.get(kk) != base[k].get(kk)]
                    mark(node, k, f"{name}: " + ", ".join(
                        f"{kk} was {short(base[k][kk])}" if kk in base[k] else f"{kk} added" for kk in keys))
                else:
                    mark(node, k, f"{name}: was {short(base[k])}")
        # what followed the mapping's last key (comment lines, the blank line before the next
        # section) moves below the keys the preset added
        if added and last is not None and node.ca.items.get(last) and node.ca.items[last][2] is not None:
            tok = node.ca.items[last][2]
            first, nl, rest = tok.value.partition("\n")
            if rest:
                tok.value = first + nl
                at, key = node, added[-1]                    # the last line the added keys write
                while isinstance(at[key], CommentedMap) and len(at[key]) and not at[key].fa.flow_style():
                    at, key = at[key], list(at[key])[-1]
                item = at.ca.items.setdefault(key, [None, None, None, None])
                if item[2] is None:
                    from ruamel.yaml.error import CommentMark
                    from ruamel.yaml.tokens import CommentToken
                    item[2] = CommentToken("\n", CommentMark(0), None)
                item[2].value = item[2].value.rstrip("\n") + "\n" + rest

    overlay(doc, merged, default_params())
    buf = io.StringIO()
    rt.dump(doc, buf)
    lines = buf.getvalue().splitlines(keepends=True)
    while lines and lines[0].startswith("#"):          # the default's own header: replaced by this one
        lines.pop(0)
    return HEADER.format(name=name) + "".join(lines)


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
