"""Atomic file output: every file the project writes appears whole or not at all.

Each writer goes to a temporary file in the destination folder, flushes it, then renames it over
the target (``os.replace`` is atomic on POSIX within one file system). A failure half-way leaves
the previous version of the target untouched and removes the temporary file.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; rename it onto ``target`` if the block succeeds.

    ``suffix`` defaults to the target's own suffix, for writers that insist on one (``np.savez``
    appends ``.npz`` to names without it, matplotlib picks the format from it).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix if suffix is not None else target.suffix,
                               dir=target.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())   # mkstemp creates 0600; give the file the usual mode
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(target: str | os.PathLike, writer: Callable[[Path], Any]) -> Path:
    """Call ``writer(tmp_path)`` and move the result onto ``target``."""
    with atomic_path(target) as tmp:
        writer(tmp)
    return Path(target)


def write_text(target: str | os.PathLike, text: str) -> Path:
    return write_atomic(target, lambda p: p.write_text(text, encoding="utf-8"))


def write_json(target: str | os.PathLike, obj: Any) -> Path:
    return write_text(target, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(o: Any):
    # numpy scalars and arrays, Paths
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, os.PathLike):
        return os.fspath(o)
    raise TypeError(f"cannot write {type(o).__name__} as JSON")


#: the time stamp of every member of an npz written by :func:`save_npz` (the zip format's earliest)
NPZ_TIME = (1980, 1, 1, 0, 0, 0)


def save_npz(target: str | os.PathLike, arrays: Mapping[str, Any], compress: bool = True) -> Path:
    """``np.savez_compressed`` (``compress=False``: ``np.savez``) that writes the same bytes for
    the same arrays: numpy stamps each member of the zip with the current time, so a stage that
    writes identical data would change its outputs' hashes and re-run everything after it. Written
    atomically; read back with ``np.load`` as usual."""
    import zipfile

    import numpy as np

    def write(tmp: Path) -> None:
        mode = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        with zipfile.ZipFile(tmp, "w", compression=mode, allowZip64=True) as zf:
            for name, value in arrays.items():
                info = zipfile.ZipInfo(f"{name}.npy", date_time=NPZ_TIME)
                info.compress_type = mode
                info.external_attr = 0o600 << 16
                with zf.open(info, "w", force_zip64=True) as f:
                    np.lib.format.write_array(f, np.asanyarray(value), allow_pickle=False)
    return write_atomic(target, write)
