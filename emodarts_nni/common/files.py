"""Atomic file writes: write to a temporary file beside the target, then rename.

An interrupted write never leaves a half-written file under the real name, which is what
lets every stage be resumed by checking whether its output exists.

Temporary files and folders are created with mode 0666 / 0777 *through the umask*, like
any other file the user creates (``tempfile.mkstemp``/``mkdtemp`` would give 0600 / 0700,
and the rename would carry that mode onto results meant to be shared).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import secrets
import stat
from collections.abc import Callable, Iterable, Iterator
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
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = _unique(path.parent, f".{path.name}.", suffix, _create_file)
    except OSError as exc:
        if is_disk_full(exc, path.parent):
            raise no_space_error(path.parent) from exc
        raise
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as exc:
        full = is_disk_full(exc, path.parent)  # before the unlink frees the space again
        tmp.unlink(missing_ok=True)
        if full:
            raise no_space_error(path.parent) from exc
        raise


def no_space_error(folder: str | os.PathLike) -> DataError:
    """The one-line error of a write that found the disk holding ``folder`` full."""
    return DataError(f"no space left on {folder}; free some space or write elsewhere")


def is_disk_full(exc: BaseException, folder: str | os.PathLike) -> bool:
    """Whether ``exc`` is a write that failed because the disk holding ``folder`` is full.

    An ``OSError`` says so itself (``ENOSPC``, or ``EDQUOT`` for a full quota);
    ``torch.save`` reports a short write as a ``RuntimeError`` (``enforce fail at
    inline_container.cc``) without the errno, so for any other error the folder's free
    space decides (less than 1 MiB left).
    """
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    if not isinstance(exc, RuntimeError):
        return False
    try:
        info = os.statvfs(folder)
    except OSError:
        return False
    return info.f_bavail * info.f_frsize < 2**20


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


#: Files that mark a results folder no other command may write into: a run folder holds
#: both ``config.yaml`` and ``environment.json`` (``RunFolder.start`` writes them), a study
#: folder ``study.json`` (``study.trial.CELLS_FILE``). tests/test_outputs_safe.py checks
#: that these names agree with their owners'.
RESULT_FOLDER_MARKERS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("config.yaml", "environment.json"), "run folder"),
    (("study.json",), "study folder"),
)


def result_folder_of(path: str | os.PathLike) -> tuple[Path, str] | None:
    """The run or study folder that holds ``path`` (at any depth) and its kind, or None."""
    folder = Path(os.path.realpath(os.fspath(path))).parent
    for candidate in (folder, *folder.parents):
        for markers, kind in RESULT_FOLDER_MARKERS:
            if all((candidate / name).is_file() for name in markers):
                return candidate, kind
    return None


def _same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` name one file: equal resolved paths, or one inode."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (or cannot be looked at)
        return False


def output_problem(path: str | os.PathLike, inputs: Iterable[str | os.PathLike] = ()) -> str | None:
    """Why a command must not write the file ``path``, or None (checks only, writes nothing).

    The policy every command's output follows (``docs/troubleshooting.md``):

    - an output never replaces one of the command's ``inputs`` (same resolved path or
      same inode, so a hard link or a symbolic link to an input counts too);
    - an output is never written inside a run or study folder (those folders hold what
      their own run wrote; :data:`RESULT_FOLDER_MARKERS`);
    - only a regular file, or a name that does not exist yet, is replaced: a folder, a
      symbolic link, a device, a FIFO or a socket is refused (``os.replace`` would put a
      regular file in its place);
    - its folder must exist or be creatable, and be writable.
    """
    path = Path(path)
    try:
        info = path.lstat()
    except FileNotFoundError:
        info = None
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    if info is not None:
        if stat.S_ISDIR(info.st_mode):
            return "is a folder, give a file name"
        if stat.S_ISLNK(info.st_mode):
            return "is a symbolic link; only a regular file or a new name is written"
        if not stat.S_ISREG(info.st_mode):
            return (
                "is not a regular file (a device, FIFO or socket); only a regular file is replaced"
            )
    for source in inputs:
        if _same_file(path, Path(source)):
            return f"output is an input of this command ({source}); write it elsewhere"
    holder = result_folder_of(path)
    if holder is not None:
        folder, kind = holder
        return f"is inside the {kind} {folder}, which only its own run writes; write it elsewhere"
    return writable_folder_problem(Path(os.path.abspath(path)).parent)


def check_output(
    path: str | os.PathLike, flag: str, inputs: Iterable[str | os.PathLike] = ()
) -> None:
    """Raise :class:`DataError` naming ``flag`` and ``path`` when :func:`output_problem` refuses it."""
    problem = output_problem(path, inputs)
    if problem is not None:
        raise DataError(f"{flag} {path}: {problem}")


#: The lock file of a run or study folder (see :func:`lock_folder`).
LOCK_FILE = ".emodarts.lock"

_HELD_LOCKS: dict[str, int] = {}  # folder -> descriptor, open for the process's lifetime


def lock_folder(folder: str | os.PathLike) -> int | None:
    """Lock ``folder`` (created if missing) for this process's lifetime; None on success,
    else the id of the process that holds it (0 when it is not known).

    An exclusive ``flock`` on ``folder/.emodarts.lock``, which the kernel releases when the
    process ends however it ends, so a crashed run never leaves a stale lock. Locking a
    folder this process holds already succeeds.
    """
    folder = Path(os.path.realpath(os.fspath(folder)))
    if str(folder) in _HELD_LOCKS:
        return None
    ensure_folder(folder, "folder")
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)  # trial processes don't inherit it
    fd = os.open(folder / LOCK_FILE, flags, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        try:
            holder = int(os.pread(fd, 32, 0).decode("ascii", "replace").strip() or 0)
        except ValueError:
            holder = 0
        os.close(fd)
        return holder
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
    _HELD_LOCKS[str(folder)] = fd
    return None


def unlock_folder(folder: str | os.PathLike) -> None:
    """Release this process's lock on ``folder`` (nothing when it holds none)."""
    fd = _HELD_LOCKS.pop(os.path.realpath(os.fspath(folder)), None)
    if fd is not None:
        os.close(fd)  # closing the descriptor releases the flock


def is_empty_folder(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` is missing, or a folder holding nothing but a lock file."""
    folder = Path(folder)
    if not folder.exists():
        return True
    return folder.is_dir() and all(p.name == LOCK_FILE for p in folder.iterdir())


__all__ = [
    "LOCK_FILE",
    "RESULT_FOLDER_MARKERS",
    "atomic_path",
    "atomic_write_json",
    "atomic_write_text",
    "check_output",
    "ensure_folder",
    "is_disk_full",
    "is_empty_folder",
    "lock_folder",
    "make_temp_dir",
    "no_space_error",
    "output_problem",
    "result_folder_of",
    "unlock_folder",
    "writable_folder_problem",
]
