"""A restricted unpickler: numpy arrays and plain containers only, never code.

``pickle.load`` runs whatever callable a file names (``os.system``, ``subprocess.Popen``, ...), so a
motion or model file found on the internet could run code on a robot workstation. This loader
resolves only an allow-list of globals:

* numpy array / dtype / scalar reconstruction (``numpy.ndarray``, ``numpy.dtype``,
  ``numpy._core.multiarray._reconstruct`` / ``scalar``, ``numpy._core.numeric._frombuffer``, and the
  ``numpy.core`` spellings of numpy 1.x), ``_codecs.encode`` (bytes in protocol-2 pickles);
* ``collections.OrderedDict``, ``builtins.set``, ``frozenset``, ``complex``, ``slice``, ``bytearray``;
* with ``allow_model_stubs=True`` (MANO model files): ``chumpy`` objects and ``scipy.sparse`` matrices
  are rebuilt as inert stubs that only store their pickled state, then converted to numpy arrays
  (a chumpy ``Ch`` becomes its stored value ``x``; a sparse matrix becomes a dense array). Chumpy
  *expressions* (objects without a stored ``x``) cannot be evaluated without chumpy and are refused.

Anything else raises :class:`handx_robot.errors.UnsafePickleError` naming the global, before any of
the file's requested callables runs.
"""

from __future__ import annotations

import importlib
import io
import logging
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from handx_robot.errors import MotionFormatError, UnsafePickleError

__all__ = ["safe_load_pickle", "safe_loads_pickle", "RestrictedUnpickler"]

log = logging.getLogger(__name__)


def _np_attr(modules: tuple[str, ...], name: str):
    for mod in modules:
        try:
            return getattr(importlib.import_module(mod), name)
        except (ImportError, AttributeError):
            continue
    raise ImportError(name)  # pragma: no cover


_MULTIARRAY = ("numpy._core.multiarray", "numpy.core.multiarray")
_NUMERIC = ("numpy._core.numeric", "numpy.core.numeric")

_SAFE_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("collections", "OrderedDict"): __import__("collections").OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "complex"): complex,
    ("builtins", "slice"): slice,
    ("builtins", "bytearray"): bytearray,
    ("__builtin__", "set"): set,
    ("__builtin__", "frozenset"): frozenset,
    ("__builtin__", "complex"): complex,
}
for _mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _SAFE_GLOBALS[(_mod, "_reconstruct")] = _np_attr(_MULTIARRAY, "_reconstruct")
    _SAFE_GLOBALS[(_mod, "scalar")] = _np_attr(_MULTIARRAY, "scalar")
for _mod in ("numpy.core.numeric", "numpy._core.numeric"):
    _SAFE_GLOBALS[(_mod, "_frombuffer")] = _np_attr(_NUMERIC, "_frombuffer")


def _codecs_encode(obj, encoding="utf-8", errors="strict"):
    """``_codecs.encode`` limited to text -> bytes with latin-1 / utf-8 (what protocol 2 emits)."""
    if not isinstance(obj, str) or encoding not in ("latin1", "latin-1", "utf-8", "utf8"):
        raise UnsafePickleError(f"_codecs.encode called with unexpected arguments ({type(obj).__name__}, {encoding!r})")
    return obj.encode(encoding, errors)


_SAFE_GLOBALS[("_codecs", "encode")] = _codecs_encode


class _Stub:
    """An inert stand-in for a chumpy / scipy object: stores the pickled state, runs nothing."""

    _origin = "?"

    def __new__(cls, *args, **kwargs):
        obj = object.__new__(cls)
        obj._state = None
        obj._args = args
        return obj

    def __setstate__(self, state):
        self._state = state

    def __reduce__(self):  # pragma: no cover - stubs are never re-pickled
        raise TypeError("stub objects cannot be pickled")


class _ChumpyStub(_Stub):
    pass


class _SparseStub(_Stub):
    pass


_STUB_CLASSES: dict[tuple[str, str], type] = {}


def _stub_class(base: type, module: str, name: str) -> type:
    key = (module, name)
    if key not in _STUB_CLASSES:
        _STUB_CLASSES[key] = type(f"{name}Stub", (base,), {"_origin": f"{module}.{name}"})
    return _STUB_CLASSES[key]


def _safe_reconstructor(cls, base, state):
    """``copyreg._reconstructor`` restricted to our stubs (Python-2 style object pickles)."""
    if not (isinstance(cls, type) and issubclass(cls, _Stub)) or base is not object or state is not None:
        raise UnsafePickleError(f"copyreg._reconstructor on {cls!r} is not allowed")
    return cls.__new__(cls)


_SPARSE_CLASSES = {"csc_matrix", "csr_matrix", "coo_matrix", "csc_array", "csr_array", "coo_array"}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler resolving only allow-listed globals (see the module docstring)."""

    def __init__(self, file, source: str = "<bytes>", allow_model_stubs: bool = False):
        super().__init__(file, encoding="latin1")
        self.source = source
        self.allow_model_stubs = allow_model_stubs

    def find_class(self, module: str, name: str):
        key = (module, name)
        if key in _SAFE_GLOBALS:
            return _SAFE_GLOBALS[key]
        if self.allow_model_stubs:
            if key in (("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor")):
                return _safe_reconstructor
            if module == "chumpy" or module.startswith("chumpy."):
                return _stub_class(_ChumpyStub, module, name)
            if (module == "scipy.sparse" or module.startswith("scipy.sparse.")) and name in _SPARSE_CLASSES:
                return _stub_class(_SparseStub, module, name)
        raise UnsafePickleError(
            f"{self.source}: refusing to load pickle: it asks for '{module}.{name}', which is not a numpy "
            "array or plain container (a pickle can run arbitrary code, so only numpy arrays, dicts, lists, "
            "tuples, str and numbers are allowed). Re-save the data with numpy (np.save / np.savez) "
            "or as a pickle of plain numpy arrays."
        )

    def persistent_load(self, pid):
        raise UnsafePickleError(f"{self.source}: refusing to load pickle with persistent ids ({pid!r})")


def _sparse_to_dense(stub: _SparseStub, source: str) -> np.ndarray:
    state = stub._state
    if not isinstance(state, dict):
        raise UnsafePickleError(f"{source}: sparse matrix {stub._origin} has no readable state")
    shape = state.get("_shape", state.get("shape"))
    fmt = str(state.get("format", stub._origin.rsplit(".", 1)[-1][:3]))
    try:
        import scipy.sparse as sp

        if fmt in ("csc", "csr"):
            cls = sp.csc_matrix if fmt == "csc" else sp.csr_matrix
            mat = cls((np.asarray(state["data"]), np.asarray(state["indices"]), np.asarray(state["indptr"])), shape=shape)
        elif fmt == "coo":
            rows = np.asarray(state.get("row", state.get("coords", [None, None])[0]))
            cols = np.asarray(state.get("col", state.get("coords", [None, None])[1]))
            mat = sp.coo_matrix((np.asarray(state["data"]), (rows, cols)), shape=shape)
        else:
            raise KeyError(fmt)
        return np.asarray(mat.toarray())
    except (KeyError, TypeError, ValueError) as exc:
        raise UnsafePickleError(f"{source}: cannot rebuild sparse matrix {stub._origin} ({exc})") from exc


def _resolve(obj: Any, source: str, depth: int = 0) -> Any:
    """Replace stubs by numpy arrays, recursively through dicts, lists and tuples."""
    if depth > 100:
        raise UnsafePickleError(f"{source}: pickle nests containers deeper than 100 levels")
    if isinstance(obj, _ChumpyStub):
        state = obj._state if isinstance(obj._state, dict) else {}
        if "x" in state:
            return np.asarray(_resolve(state["x"], source, depth + 1))
        raise UnsafePickleError(
            f"{source}: chumpy object {obj._origin} is an expression without a stored value; it cannot be "
            "evaluated without chumpy. Convert the model file to plain numpy arrays first."
        )
    if isinstance(obj, _SparseStub):
        return _sparse_to_dense(obj, source)
    if isinstance(obj, _Stub):  # pragma: no cover
        raise UnsafePickleError(f"{source}: unexpected object {obj._origin}")
    if isinstance(obj, dict):
        return type(obj)((k, _resolve(v, source, depth + 1)) for k, v in obj.items())
    if isinstance(obj, list):
        return [_resolve(v, source, depth + 1) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_resolve(v, source, depth + 1) for v in obj)
    if isinstance(obj, np.ndarray) and obj.dtype == object:
        flat = [_resolve(v, source, depth + 1) for v in obj.reshape(-1)]
        out = np.empty(len(flat), dtype=object)
        out[:] = flat
        return out.reshape(obj.shape)
    return obj


def safe_loads_pickle(data: bytes, source: str = "<bytes>", allow_model_stubs: bool = False) -> Any:
    """Unpickle ``data`` with :class:`RestrictedUnpickler`; see :func:`safe_load_pickle`."""
    try:
        obj = RestrictedUnpickler(io.BytesIO(data), source, allow_model_stubs).load()
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as exc:
        raise MotionFormatError(f"{source}: not a readable pickle ({type(exc).__name__}: {exc})") from exc
    return _resolve(obj, source)


def safe_load_pickle(path: str | os.PathLike, allow_model_stubs: bool = False) -> Any:
    """Load a pickle file allowing only numpy arrays and plain containers (never runs code from the file).

    allow_model_stubs: also rebuild chumpy ``Ch`` values and scipy sparse matrices as numpy arrays
    (for MANO model files). Raises :class:`UnsafePickleError` for anything else.
    """
    path = Path(path)
    if not path.is_file():
        raise MotionFormatError(f"{path}: file not found")
    return safe_loads_pickle(path.read_bytes(), str(path), allow_model_stubs)
