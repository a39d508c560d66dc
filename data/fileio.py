"""Atomic writes and a pickle loader that refuses anything but plain data and numpy arrays."""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any, Iterator

from data.errors import DatasetError, UserError

# (module, name) pairs a dataset pickle may reference. numpy moved its internals from
# numpy.core to numpy._core in 2.0; both spellings appear in real files.
_ALLOWED_GLOBALS = {
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "complex"),
    ("builtins", "slice"),
    ("collections", "OrderedDict"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),  # protocol-2 pickles of bytes written by Python 2
}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def safe_load_pickle(path: Path) -> Any:
    """Unpickle `path`, allowing only builtins and numpy arrays. Raises DatasetError otherwise."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise DatasetError(f"{path}: cannot read ({e.strerror}); check the path and its permissions") from e
    try:
        return _SafeUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except pickle.UnpicklingError as e:
        if "refusing" in str(e):
            raise DatasetError(
                f"{path}: {e}; dataset files may hold only plain data and numpy arrays "
                "(re-create it with `cli.py extract` or `cli.py import`)"
            ) from e
        raise DatasetError(f"{path}: not a dataset pickle ({e}); pass a file written by `cli.py extract` or `cli.py import`") from e
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, ImportError, MemoryError) as e:
        raise DatasetError(f"{path}: not a readable dataset pickle ({type(e).__name__}: {e}); pass a file written by `cli.py extract` or `cli.py import`") from e


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it over `path`, on failure delete it.

    Readers never see a half-written file, and an interrupted write leaves the old file intact.
    """
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path}: is a folder; pass a file path to write")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise UserError(f"{path}: cannot write here ({e.strerror or e}); pick a writable location") from e
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def check_writable(path: str | os.PathLike, what: str = "output") -> Path:
    """Refuse, before any work, an output file that could not be written: a folder, or a place where no file
    can be created. Creates the parent folders (as the final write would). Returns the path."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{what} {path}: is a folder; pass a file path to write")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".check", dir=path.parent)
    except OSError as e:
        raise UserError(f"{what} {path}: cannot write here ({e.strerror or e}); pick a writable location") from e
    os.close(fd)
    os.unlink(tmp)
    return path


def atomic_write_bytes(path: str | os.PathLike, payload: bytes) -> None:
    """Write `payload` to `path` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
