"""File boundaries: inputs that are regular files, outputs checked before work starts and never written over an
input, atomic writes with the user's umask, JSON without NaN, and a pickle loader that refuses anything but
plain data and numpy arrays."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import pickle
import stat
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

from core.errors import DatasetError, UserError

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
    path = input_file(path, error=DatasetError)
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
        # mkstemp makes the file 0600; give it the mode a plain open() would (the file's own when it is replaced)
        os.chmod(tmp_path, stat.S_IMODE(path.stat().st_mode) if path.is_file() else 0o666 & ~current_umask())
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def current_umask() -> int:
    """This process's umask (read from /proc where it is, since os.umask can only read it by changing it)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _nearest_existing(path: Path) -> Path:
    for parent in (path, *path.parents):
        if os.path.lexists(parent):
            return parent
    return Path(".")


def check_writable(path: str | os.PathLike, what: str = "output") -> Path:
    """Refuse, before any work, an output file that could not be written: a folder, or a place where no file can
    be created (a parent that is a file, a read-only or full file system). Leaves nothing behind: the folders the
    final write would create are not created here. Returns the path."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{what} {path}: is a folder; pass a file path to write")
    _check_can_create(path, what)
    return path


def check_writable_folder(path: str | os.PathLike, what: str = "output folder") -> Path:
    """Refuse, before any work, an output folder that could not be created or written into. Returns the path."""
    path = Path(path)
    if os.path.lexists(path) and not path.is_dir():
        raise UserError(f"{what} {path}: is a file; pass a folder")
    _check_can_create(path / "x", what, shown=path)
    return path


def _check_can_create(path: Path, what: str, shown: Path | None = None) -> None:
    shown = path if shown is None else shown
    base = _nearest_existing(path.parent)
    if not base.is_dir():
        raise UserError(f"{what} {shown}: cannot write here ({base} is not a folder); pick a writable location")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".check", dir=base)
    except OSError as e:
        raise UserError(f"{what} {shown}: cannot write here ({e.strerror or e}); pick a writable location") from e
    os.close(fd)
    os.unlink(tmp)


def _identity(path: Path) -> tuple[str, tuple[int, int] | None]:
    """(resolved path, (device, inode) when it exists): two names of one file share one of them."""
    try:
        st = os.stat(path)
        ident = (st.st_dev, st.st_ino)
    except OSError:
        ident = None
    return os.path.realpath(path), ident


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name the same file: equal once resolved (symbolic links too), or one inode (hard links)."""
    ra, ia = _identity(Path(a))
    rb, ib = _identity(Path(b))
    return ra == rb or (ia is not None and ia == ib)


def refuse_overwrite(output: str | os.PathLike, inputs: Iterable[str | os.PathLike], what: str = "output") -> None:
    """Refuse an output that is one of the command's inputs (as given, through a symbolic link or a hard link):
    UserError naming both, before anything is written."""
    real, ident = _identity(Path(output))
    for i in inputs:
        r, other = _identity(Path(i))
        if r == real or (ident is not None and other == ident):
            same = "" if Path(i) == Path(output) else f" ({i})"
            raise UserError(f"{what} {output} is one of this command's inputs{same}; write to a new file")


def input_file(path: str | os.PathLike, what: str = "", *, error: type[UserError] = UserError, fix: str = "",
               folder_fix: str = "") -> Path:
    """`path` when it is an existing regular file this process can open; else `error` naming the path and what it
    is instead: missing, a broken symbolic link, a folder, a FIFO, socket or device (which would block or never
    end a read), unreadable. `what` prefixes the path (e.g. "--checkpoint"); `fix` ends the message."""
    path = Path(path)
    name = f"{what} {path}" if what else str(path)
    end = f"; {fix}" if fix else ""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise error(f"{name}: a symbolic link to {os.readlink(path)}, which does not exist; fix the link or pass the file itself") from None
        raise error(f"{name}: no such file{end}") from None
    except PermissionError:
        raise error(f"{name}: cannot reach it (Permission denied); check the permissions of its folders") from None
    except OSError as e:
        raise error(f"{name}: cannot read ({e.strerror or e}){end}") from None
    if stat.S_ISDIR(st.st_mode):
        raise error(f"{name}: is a folder; {folder_fix or 'pass a file'}")
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{name}: is {file_kind(st.st_mode)}, not a regular file; pass a file")
    if not os.access(path, os.R_OK):
        raise error(f"{name}: cannot read (Permission denied); check its permissions")
    return path


def file_kind(mode: int) -> str:
    """What a non-regular file is, in words."""
    for test, kind in ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a folder")):
        if test(mode):
            return kind
    return "not a regular file"


def finite_json(obj: Any) -> Any:
    """`obj` with every NaN or infinite float replaced by None, so json.dumps writes strict JSON (null)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_json(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", 1) == 0:  # numpy / torch scalars
        return finite_json(obj.item())
    return obj


def json_text(obj: Any, indent: int | None = 2) -> str:
    """Strict JSON (no NaN or Infinity tokens: they become null)."""
    return json.dumps(finite_json(obj), indent=indent, allow_nan=False, ensure_ascii=False)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write `obj` as strict JSON (non-finite numbers as null), atomically."""
    atomic_write_bytes(path, (json_text(obj) + "\n").encode("utf-8"))


def atomic_write_bytes(path: str | os.PathLike, payload: bytes) -> None:
    """Write `payload` to `path` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
