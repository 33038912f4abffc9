"""Did a re-run reproduce every number? Compare the pipeline's outputs with those of a git revision.

A change that should move no number (a refactor, a new figure style, a faster loader) is shown to
move none by re-running the pipeline and comparing what it wrote with what a revision committed::

    python -m poseprompt.tools.same_numbers a95ca5c          # metrics/, figures/tables/, dvclive/
    python -m poseprompt.tools.same_numbers HEAD metrics/variants

Rules, per file present in the revision or in the working tree:

* ``.json``: parsed and compared value by value, **exactly** (floats too: a bit-reproducible run
  writes the same digits); keys that hold a measured time or speed (names ending in ``_s``, ``_ms``,
  ``seconds``) or name where it was measured (:data:`TIMING_KEYS`) are left out, because a wall
  clock never repeats;
* other text (``.md``, ``.tex``, ``.tsv``): the same bytes, except the files of :data:`TIMED_FILES`,
  whose numbers are measured times (the cost table);
* a file in one and not the other is a difference.

Exit status 0 when everything is equal, 1 with one line per difference otherwise.
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

#: what is compared when no path is given
DEFAULT_PATHS = ("metrics", "figures/tables", "dvclive")
#: measured times and speeds: every key ending in _s, _ms or seconds (eval_seconds, latency_ms,
#: steps_per_s, ...), and the keys naming where a time was measured (TIMING_KEYS)
_TIMING = re.compile(r"(_s|_ms|seconds)$")
TIMING_KEYS = frozenset({"device_name", "threads"})
#: files made of measured times: their text is not compared (their JSON twin is, timing keys aside)
TIMED_FILES = frozenset({"figures/tables/cost.md", "figures/tables/cost.tex"})


def is_timing_key(key: str) -> bool:
    return key in TIMING_KEYS or bool(_TIMING.search(key))


def json_differences(a, b, where: str = "") -> list[str]:
    """Every place where two parsed JSON values differ, timing keys aside (``where`` is a path)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            if is_timing_key(str(k)):
                continue
            if k not in a or k not in b:
                out.append(f"{where}/{k}: only in {'the revision' if k in a else 'the working tree'}")
            else:
                out.extend(json_differences(a[k], b[k], f"{where}/{k}"))
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{where}: {len(a)} items in the revision, {len(b)} now"]
        out = []
        for i, (x, y) in enumerate(zip(a, b)):
            out.extend(json_differences(x, y, f"{where}[{i}]"))
        return out
    if a != b or type(a) is not type(b):
        return [f"{where or '/'}: {a!r} in the revision, {b!r} now"]
    return []


def _git(root: Path, *args: str) -> bytes:
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True).stdout


def files_at(root: Path, rev: str, paths) -> dict[str, bytes]:
    """path -> bytes of every file under ``paths`` in revision ``rev``."""
    names = _git(root, "ls-tree", "-r", "--name-only", rev, "--", *paths).decode().splitlines()
    return {n: _git(root, "show", f"{rev}:{n}") for n in names}


def files_now(root: Path, paths) -> dict[str, bytes]:
    out = {}
    for p in paths:
        base = root / p
        found = [base] if base.is_file() else sorted(q for q in base.rglob("*") if q.is_file())
        for q in found:
            out[q.relative_to(root).as_posix()] = q.read_bytes()
    return out


def differences(before: dict[str, bytes], after: dict[str, bytes]) -> list[str]:
    """One line per difference between two sets of files (see the module's rules)."""
    out = []
    for name in sorted(set(before) | set(after)):
        if name not in after:
            out.append(f"{name}: missing now")
            continue
        if name not in before:
            out.append(f"{name}: not in the revision")
            continue
        if name.endswith(".json"):
            try:
                a, b = json.loads(before[name]), json.loads(after[name])
            except ValueError as e:
                out.append(f"{name}: not valid JSON ({e})")
                continue
            out.extend(f"{name}{d}" for d in json_differences(a, b))
        elif name not in TIMED_FILES and before[name] != after[name]:
            out.append(f"{name}: the text differs")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("rev", help="the git revision whose committed outputs are the reference")
    ap.add_argument("paths", nargs="*", default=list(DEFAULT_PATHS),
                    help=f"folders or files to compare (default: {' '.join(DEFAULT_PATHS)})")
    ap.add_argument("--root", default=".", help="the repository (default: here)")
    a = ap.parse_args(argv)
    root = Path(a.root).resolve()
    before, after = files_at(root, a.rev, a.paths), files_now(root, a.paths)
    diff = differences(before, after)
    for line in diff:
        print(line)
    n = len(set(before) | set(after))
    print(f"{n} files compared with {a.rev}: "
          + ("every number equal (timings aside)" if not diff else f"{len(diff)} difference(s)"))
    return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main())
