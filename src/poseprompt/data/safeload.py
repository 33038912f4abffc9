"""Reading the field's pickled ``.npz`` files without running code from them.

The public Human3.6M, MPI-INF-3DHP and HumanEva-I files (VideoPose3D and its successors) and
VideoPose3D's custom 2D keypoints store dicts of arrays as pickled object arrays inside an npz.
``np.load(..., allow_pickle=True)`` would unpickle them with the standard unpickler, which calls
whatever the file names (any importable function with any arguments): opening a file from a
stranger would run the stranger's code.

:func:`load_npz` reads every array of an npz; plain arrays come through numpy's reader with
pickles disabled, object arrays through :class:`RestrictedUnpickler`, which builds only dicts,
lists, tuples, strings, bytes, numbers, booleans, None and numpy arrays (and numpy scalars). Any
other object that a pickle asks for (a function to call, a class to instantiate) stops the read
with :class:`UnsafeFileError` *before* it is looked up, so nothing named by the file is imported
or called. (Protocol-2 pickles, from Python 2 and old numpy, spell bytes as calls of
``_codecs.encode`` and ``bytes``: those two are answered by functions that only rebuild bytes.)
Checkpoints are the other way in: :mod:`poseprompt.model.checkpoint` reads them with
``torch.load(..., weights_only=True)``, PyTorch's own restricted unpickler.
"""
from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from poseprompt.data.format import DataFormatError

# What numpy's own pickles of arrays, dtypes and scalars refer to, resolved from the installed
# numpy (numpy 2 moved numpy.core to numpy._core; files written by either name the one they had).
_RECONSTRUCT = np.zeros(1).__reduce__()[0]           # numpy.(_)core.multiarray._reconstruct
_SCALAR = np.float64(0).__reduce__()[0]              # numpy.(_)core.multiarray.scalar
_FROMBUFFER = np.zeros(1).__reduce_ex__(5)[0]        # numpy.(_)core.numeric._frombuffer (protocol 5)
ALLOWED_GLOBALS = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    **{(f"numpy.{core}.multiarray", "_reconstruct"): _RECONSTRUCT for core in ("core", "_core")},
    **{(f"numpy.{core}.multiarray", "scalar"): _SCALAR for core in ("core", "_core")},
    **{(f"numpy.{core}.numeric", "_frombuffer"): _FROMBUFFER for core in ("core", "_core")},
}
PLAIN_TYPES = (dict, list, tuple, str, bytes, int, float, bool, type(None), np.ndarray, np.generic)
WHAT_IS_BUILT = "dicts, lists, tuples, strings, numbers and numpy arrays"


class UnsafeFileError(DataFormatError):
    """A file's pickle asks for something other than plain data (it could run code): refused."""


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler whose only reachable globals are numpy's array, dtype and scalar builders."""

    def __init__(self, file, where: str, encoding: str = "ASCII"):
        super().__init__(file, encoding=encoding)
        self.where = where

    def find_class(self, module: str, name: str):
        # protocol 2 (Python 2 era, old numpy) stores bytes as calls: _codecs.encode(str, "latin1"), bytes()
        if (module, name) == ("_codecs", "encode"):
            return self._latin1
        if name == "bytes" and module in ("builtins", "__builtin__"):
            return self._empty_bytes
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafeFileError(
                f"{self.where}: refused: the pickled data asks for '{module}.{name}'; only {WHAT_IS_BUILT} "
                f"are read from pickles (anything else could run code from the file). Nothing from the file "
                f"was run; if you trust its origin, convert it to plain arrays first") from None

    def _latin1(self, text, encoding="latin1"):
        """What protocol-2 pickles call ``_codecs.encode`` for: a str back to the bytes it holds (and
        nothing else: any other use of the codec machinery is refused)."""
        if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
            raise UnsafeFileError(f"{self.where}: refused: the pickled data calls '_codecs.encode' with "
                                  f"{type(text).__name__}, {encoding!r}; only latin-1 bytes are read")
        return text.encode("latin1")

    def _empty_bytes(self, *args):
        if args:
            raise UnsafeFileError(f"{self.where}: refused: the pickled data calls 'bytes' with arguments; "
                                  f"only bytes() (empty) is read")
        return b""

    def persistent_load(self, pid):
        raise UnsafeFileError(f"{self.where}: refused: the pickled data holds a persistent reference {pid!r}; "
                              f"only {WHAT_IS_BUILT} are read from pickles")


def check_plain(obj: Any, where: str, _depth: int = 0) -> Any:
    """``obj`` if it is made only of :data:`PLAIN_TYPES` (recursively), else :class:`UnsafeFileError`.

    The unpickler already cannot build anything else; this also catches, e.g., an ndarray subclass
    or an object array whose elements are not plain data."""
    if _depth > 100:
        raise UnsafeFileError(f"{where}: refused: pickled data nested more than 100 levels deep")
    if isinstance(obj, np.ndarray):
        if type(obj) is not np.ndarray:
            raise UnsafeFileError(f"{where}: refused: an array of type {type(obj).__name__}, expected numpy.ndarray")
        if obj.dtype == object:
            for v in obj.flat:
                check_plain(v, where, _depth + 1)
        return obj
    if not isinstance(obj, PLAIN_TYPES):
        raise UnsafeFileError(f"{where}: refused: pickled data holds a {type(obj).__name__}; expected only "
                              f"{WHAT_IS_BUILT}")
    if isinstance(obj, dict):
        for k, v in obj.items():
            check_plain(k, where, _depth + 1)
            check_plain(v, where, _depth + 1)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            check_plain(v, where, _depth + 1)
    return obj


def restricted_loads(data: bytes, where: str = "<bytes>", encoding: str = "ASCII") -> Any:
    """Unpickle ``data`` with :class:`RestrictedUnpickler`; the result is checked to be plain data."""
    try:
        obj = RestrictedUnpickler(io.BytesIO(data), where, encoding).load()
    except UnsafeFileError:
        raise
    except Exception as e:  # truncated or corrupt pickle
        raise DataFormatError(f"{where}: not a readable pickle ({type(e).__name__}: {e})") from e
    return check_plain(obj, where)


def _read_member(zf: zipfile.ZipFile, member: str, where: str, encoding: str) -> np.ndarray:
    with zf.open(member) as fp:
        version = np.lib.format.read_magic(fp)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp)
        else:  # 3.0 is for utf-8 field names of structured dtypes: never an object array here
            dtype = None
        if dtype is None or not dtype.hasobject:
            fp.seek(0)
            return np.lib.format.read_array(fp, allow_pickle=False)
        # An object array is stored as the pickle of the whole array after the header.
        arr = restricted_loads(fp.read(), where, encoding)
    if not isinstance(arr, np.ndarray) or arr.shape != tuple(shape):
        raise UnsafeFileError(f"{where}: the pickled data is not the array of shape {tuple(shape)} that its "
                              f"header announces")
    return arr


def load_npz(path: str | Path, encoding: str = "ASCII") -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` (key -> array), pickled object arrays read safely.

    Raises ``FileNotFoundError``, :class:`DataFormatError` (not an npz, corrupt member) or
    :class:`UnsafeFileError` (a pickle that asks for code); every message names the file and key.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    out = {}
    try:
        with zipfile.ZipFile(path) as zf:
            for member in zf.namelist():
                key = member[:-4] if member.endswith(".npy") else member
                out[key] = _read_member(zf, member, f"{path}: key '{key}'", encoding)
    except (UnsafeFileError, DataFormatError):
        raise
    except Exception as e:  # not a zip, bad header, truncated member
        raise DataFormatError(f"{path}: not a readable .npz file ({type(e).__name__}: {e})") from e
    return out


def load_pickled_dicts(path: str | Path, keys: tuple[str, ...], *, dataset: str, layout: str, how_to_get: str,
                       optional: tuple[str, ...] = ()) -> dict[str, dict | None]:
    """The dicts stored as pickled 0-d object arrays under ``keys`` (required) and ``optional``
    (None when absent) of one npz: the field's layout.

    ``dataset`` names the data for the not-found message, ``layout`` says what a required key
    should hold (for the wrong-content messages), ``how_to_get`` is appended to both."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {dataset} file not found. {how_to_get}")
    arrays = load_npz(path)
    out: dict[str, dict | None] = {}
    for key in keys + optional:
        if key not in arrays:
            if key in optional:
                out[key] = None
                continue
            raise DataFormatError(f"{path}: missing key '{key}' (found {sorted(arrays)}); expected {layout}. "
                                  f"{how_to_get}")
        obj = arrays[key]
        if obj.dtype != object or obj.ndim != 0 or not isinstance(obj.item(), dict):
            what = layout if key in keys else "a pickled dict"
            raise DataFormatError(f"{path}: key '{key}' must hold {what}, got an array of dtype {obj.dtype} "
                                  f"and shape {obj.shape}")
        out[key] = obj.item()
    return out


def load_pickled_dict(path: str | Path, key: str, *, dataset: str, layout: str, how_to_get: str) -> dict:
    """:func:`load_pickled_dicts` for one required key."""
    return load_pickled_dicts(path, (key,), dataset=dataset, layout=layout, how_to_get=how_to_get)[key]
