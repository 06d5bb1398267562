"""Atomic file writes: write to a temporary file beside the target, then rename.

An interrupted write never leaves a half-written file under the real name, which is what
lets every stage be resumed by checking whether its output exists.

Temporary files and folders are created with mode 0666 / 0777 *through the umask*, like
any other file the user creates (``tempfile.mkstemp``/``mkdtemp`` would give 0600 / 0700,
and the rename would carry that mode onto results meant to be shared).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from emodarts_nni.common.errors import DataError

_ATTEMPTS = 100  # random names to try before giving up (a clash is ~impossible)


def _unique(parent: Path, prefix: str, suffix: str, create: Callable[[Path], Any]) -> Path:
    """``parent/prefix<random>suffix`` made by ``create(path)``; retries on a name clash."""
    for _ in range(_ATTEMPTS):
        candidate = parent / f"{prefix}{secrets.token_hex(6)}{suffix}"
        try:
            create(candidate)
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"no unused temporary name {prefix}*{suffix} in {parent}")


def _create_file(path: Path) -> None:
    # O_EXCL: never reuse someone else's file; 0o666 & ~umask, as open() would give.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    os.close(os.open(path, flags, 0o666))


def make_temp_dir(parent: str | os.PathLike, prefix: str) -> Path:
    """A new, empty folder ``parent/prefix<random>`` with the umask's mode (0777 & ~umask).

    The replacement for ``tempfile.mkdtemp`` (0700) for folders that become results.
    """
    return _unique(Path(parent), prefix, "", lambda p: os.mkdir(p, 0o777))


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder; rename it onto ``path`` on success.

    The temporary file exists (empty, mode 0666 & ~umask) when yielded; writers open it
    again by name, which keeps that mode. On an exception (or Ctrl-C) the temporary file
    is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _unique(path.parent, f".{path.name}.", suffix, _create_file)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8", newline="")
    return Path(path)


def _json_default(value: Any) -> Any:
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # numpy / torch scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def atomic_write_json(path: str | os.PathLike, data: Any) -> Path:
    """Write ``data`` as indented JSON atomically (numpy values and paths converted)."""
    return atomic_write_text(path, json.dumps(data, indent=2, default=_json_default) + "\n")


def writable_folder_problem(path: str | os.PathLike, *, check_access: bool = True) -> str | None:
    """Why ``path`` cannot be (or become) a folder this process writes into, or None.

    Checks without creating anything: ``path`` must be a folder or not exist yet, and its
    nearest existing ancestor must be a folder (with ``check_access``, one we may write
    into). Used to refuse a bad output or cache location before any expensive work;
    config validation passes ``check_access=False``, since a read-only cache of finished
    features is fine to read and ``emodarts plan`` writes nothing.
    """
    path = Path(os.path.abspath(os.fspath(path)))
    if path.exists() and not path.is_dir():
        return "exists and is not a folder"
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    if check_access and not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable"
    return None


def ensure_folder(path: str | os.PathLike, what: str) -> Path:
    """Create the folder ``path`` (and parents) or raise :class:`DataError` naming ``what``
    and ``path`` in one line (a file in the way, no permission, a read-only disk)."""
    path = Path(path)
    problem = writable_folder_problem(path)
    if problem is None:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            problem = exc.strerror or type(exc).__name__
    if problem is not None:
        raise DataError(f"{what} {path}: {problem}")
    return path


__all__ = [
    "atomic_path",
    "atomic_write_json",
    "atomic_write_text",
    "ensure_folder",
    "make_temp_dir",
    "writable_folder_problem",
]
