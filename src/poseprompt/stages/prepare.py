"""Data preparation: one source in, the processed splits out (notebooks/01_prepare_data.ipynb).

``prepare(data_cfg, out_dir, seed)`` reads the source named by ``data.source`` (``synthetic``,
``bvh``, ``h36m``, ``3dhp`` or ``humaneva``), carves a validation split out of the training data
(never out of the test split), adds cross-domain test sets, and writes into ``out_dir``:

* ``train.npz``, ``val.npz``, ``test.npz``: :class:`~poseprompt.data.format.PoseSequences`;
* ``shift_<name>.npz``: cross-domain test sets, from the source itself (the synthetic source's
  graded shifts ``shift_camera-<s>``, ``shift_body-<s>``, ``shift_noise-<s>`` for every strength s of
  ``data.synthetic.shift_strengths``) and from ``data.cross_domain`` entries, each a
  whole other source (e.g. train on Human3.6M, test on MPI-INF-3DHP or on HumanEva-I; train on
  synthetic, test on BVH motion capture). An entry ``{name, source, ...}`` configures the other
  source with its remaining keys (``{name: humaneva, source: humaneva, dir: data/raw/humaneva}``),
  or with that source's own section of ``data`` when it gives none; the set is the source's
  ``test`` split (HumanEva-I: the ``Validate`` subjects);
* ``summary.json``: sequences, frames, subjects and actions per split, which 2D input, the source.

The folder is replaced as a whole: everything is written into a temporary sibling folder that is
renamed over ``out_dir`` only when every file is complete, so a failed run leaves the previous
output untouched and nothing half-written.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from poseprompt.config.sections import SOURCE_SECTIONS, DataConfig
from poseprompt.core.io import _umask, write_json
from poseprompt.data import bvh, h36m, humaneva, mpi3dhp, synthetic
from poseprompt.data.format import PoseSequences

BUILDERS: dict[str, Callable[[dict, int], dict[str, PoseSequences]]] = {
    "synthetic": synthetic.build_splits,
    "bvh": bvh.build_splits,
    "h36m": h36m.build_splits,
    "3dhp": mpi3dhp.build_splits,
    "humaneva": humaneva.build_splits,
}
#: The params.yaml sub-section that configures each source.
SOURCE_SECTION = SOURCE_SECTIONS
RESOLVERS = {"synthetic": synthetic.resolve_config, "bvh": bvh.resolve_config, "h36m": h36m.resolve_config,
             "3dhp": mpi3dhp.resolve_config, "humaneva": humaneva.resolve_config}


def validate_config(cfg: Mapping[str, Any]) -> DataConfig:
    """The whole ``data`` section as a typed, frozen :class:`~poseprompt.config.sections.DataConfig`, checked
    without reading any file: top-level keys, validation and window options, the source's section
    and every cross-domain entry (unknown keys are errors that name them and list the known ones)."""
    return DataConfig.from_dict(cfg, resolve=RESOLVERS)


def build_source(source: str, cfg: Mapping[str, Any], seed: int) -> dict[str, PoseSequences]:
    if source not in BUILDERS:
        raise ValueError(f"unknown data source {source!r}; expected one of {sorted(BUILDERS)}")
    return BUILDERS[source](dict(cfg.get(SOURCE_SECTION[source]) or {}), seed)


def split_validation(train: PoseSequences, val_cfg: Mapping[str, Any], seed: int) -> tuple[PoseSequences, PoseSequences]:
    """(train, val) from the training split.

    ``by: subject`` holds out whole subjects (``subjects`` lists them, else ``fraction`` of them,
    at least one, drawn with ``seed``); ``by: sequence`` holds out ``fraction`` of the recordings,
    keeping all camera views of one recording on the same side (no view of a validation
    recording is seen in training).
    """
    by = val_cfg.get("by", "subject")
    frac = float(val_cfg.get("fraction", 0.15))
    rng = np.random.default_rng([seed, 7])
    if by == "subject":
        subjects = sorted(set(train.subject.tolist()))
        chosen = list(val_cfg.get("subjects") or [])
        if not chosen:
            if len(subjects) < 2:
                raise ValueError(f"data.val.by = subject needs at least two training subjects, found {subjects}; "
                                 f"use by: sequence")
            k = min(len(subjects) - 1, max(1, round(frac * len(subjects))))
            chosen = sorted(rng.choice(subjects, size=k, replace=False).tolist())
        missing = [s for s in chosen if s not in subjects]
        if missing:
            raise ValueError(f"data.val.subjects {missing} are not training subjects {subjects}")
        is_val = np.isin(train.subject, chosen)
    elif by == "sequence":
        keys = np.array([f"{s}|{n}" for s, n in zip(train.subject, train.name)])
        uniq = np.unique(keys)
        k = max(1, round(frac * len(uniq)))
        chosen = rng.choice(uniq, size=k, replace=False)
        is_val = np.isin(keys, chosen)
    else:
        raise ValueError(f"data.val.by = {by!r}; expected 'subject' or 'sequence'")
    if is_val.all() or not is_val.any():
        raise ValueError(f"data.val: the validation split would hold {int(is_val.sum())} of {len(is_val)} sequences")
    tr, va = train.select(np.flatnonzero(~is_val)), train.select(np.flatnonzero(is_val))
    tr.meta = {**train.meta, "split": "train"}
    va.meta = {**train.meta, "split": "val", "val_rule": {"by": by, "held_out": sorted(map(str, np.unique(
        va.subject if by == "subject" else va.name)))}}
    return tr, va


def describe(split: PoseSequences) -> dict[str, Any]:
    actions, counts = np.unique(split.action, return_counts=True)
    frames_per_action = {str(a): int(split.lengths()[split.action == a].sum()) for a in actions}
    return {"sequences": split.num_sequences, "frames": split.num_frames,
            "subjects": sorted(set(map(str, split.subject))), "actions": len(actions),
            "frames_per_action": frames_per_action, "input_2d": split.meta.get("input_2d"),
            "source": split.meta.get("source"), "valid_frames": int(split.valid.sum())}


def prepare(cfg: Mapping[str, Any], out_dir: str | Path, seed: int = 0) -> dict[str, Any]:
    """Build every split of ``cfg`` (the ``data`` section of params.yaml) and write them."""
    validate_config(cfg)
    source = cfg["source"]
    splits = build_source(source, cfg, seed)
    if "train" not in splits or "test" not in splits:
        raise ValueError(f"data.source = {source}: the source gave splits {sorted(splits)}, expected train and test")
    out = {"train": None, "val": None, "test": splits.pop("test")}
    out["train"], out["val"] = split_validation(splits.pop("train"), cfg.get("val") or {}, seed)
    for name, split in splits.items():                     # the source's own cross-domain sets
        if name.startswith("shift_"):
            out[name] = split
    for entry in cfg.get("cross_domain") or []:
        entry = dict(entry)
        name, other = entry.pop("name"), entry.pop("source")
        other_splits = build_source(other, {SOURCE_SECTION[other]: entry or (cfg.get(SOURCE_SECTION[other]) or {})},
                                    seed)
        test = other_splits.get("test") or PoseSequences.concatenate(list(other_splits.values()))
        test.meta = {**test.meta, "split": f"shift_{name}", "cross_domain_source": other}
        out[f"shift_{name}"] = test

    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    os.chmod(tmp, 0o777 & ~_umask())                       # mkdtemp creates 0700
    try:
        summary = {"source": source, "seed": seed, "splits": {}}
        for name, split in out.items():
            split.meta = {**split.meta, "split": name}
            split.save(tmp / f"{name}.npz")
            summary["splits"][name] = describe(split)
        write_json(tmp / "summary.json", summary)
        old = None
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(out_dir, old)
        os.replace(tmp, out_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return summary


def summary_table(summary: Mapping[str, Any]) -> str:
    """A Markdown table of the splits (for the notebook and the README)."""
    rows = ["| split | sequences | frames | subjects | actions | 2D input |", "|---|---:|---:|---|---:|---|"]
    for name, s in summary["splits"].items():
        rows.append(f"| {name} | {s['sequences']:,} | {s['frames']:,} | {', '.join(s['subjects'])} | "
                    f"{s['actions']} | {s['input_2d']} |")
    return "\n".join(rows)
