"""Atomic writes: a file or folder that a run writes is complete under its name, or absent.

Every writer goes through here. The new content is written under a temporary name in the same
folder (so the final rename never crosses file systems) and moved into place with ``os.replace``
(a file) or ``os.rename`` (a folder); an exception on the way removes the temporary and leaves any
earlier copy untouched. Standard library only: every layer may use it.
"""

from __future__ import annotations

import contextlib
import errno as _errno
import json
import os
import re as _re
import shutil
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: the lock is the lock file's existence (O_EXCL)
    fcntl = None

LOCK_NAME = ".reweightlab.lock"
_CATCHABLE = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


# A write that fails because of the machine, not the program: said in one line, never a traceback.
STORAGE_ERRNOS = {_errno.ENOSPC, _errno.EROFS, _errno.EACCES, _errno.EPERM, _errno.EDQUOT, _errno.EIO,
                  _errno.ENAMETOOLONG, _errno.EFBIG}


class StorageError(OSError):
    """The disk refused a write (full, read-only, no permission): a one-line error."""


def storage_reason(exc: BaseException) -> str | None:
    """Why the disk refused, when ``exc`` is such a failure: an OSError with one of STORAGE_ERRNOS,
    or a library's error that wraps one ('... (os error 28)', as safetensors raises); else None."""
    if isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS:
        return exc.strerror or os.strerror(exc.errno)
    m = _re.search(r"os error (\d+)", str(exc))
    if m and int(m.group(1)) in STORAGE_ERRNOS:
        return os.strerror(int(m.group(1)))
    return None


class FolderError(ValueError):
    """A folder a run would write into is not its own: it holds others' files, or another run holds it."""


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """SIGINT/SIGTERM/SIGHUP held back for the few system calls inside (a rename pair): they are
    delivered, and raise, right after. Only the main thread can block signals for the process."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _CATCHABLE)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on a clean exit it replaces ``path`` in one step."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # a name of our own, not mkstemp's: the file keeps the permissions of an ordinary new file
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


@contextlib.contextmanager
def atomic_folder(dest: str | Path) -> Iterator[Path]:
    """Yield an empty temporary folder next to ``dest``; on a clean exit it becomes ``dest``.

    An earlier ``dest`` is kept until the new one is in place, then removed: at every moment a
    complete copy exists under ``dest`` or under its hidden ``.old`` name.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.tmp-{os.getpid()}"
    old = dest.parent / f".{dest.name}.old-{os.getpid()}"
    try:
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        yield tmp
        with signals_deferred():  # never a moment with neither copy under dest
            if dest.exists():
                os.rename(dest, old)
            os.rename(tmp, dest)
    except BaseException:
        with signals_deferred():  # a second Ctrl-C must not stop the clean-up half-way
            shutil.rmtree(tmp, ignore_errors=True)
            if old.exists() and not dest.exists():
                os.rename(old, dest)
        raise
    if old.exists():
        shutil.rmtree(old, ignore_errors=True)


def _sweep(folder: str | Path, whose) -> list[Path]:
    """Clean the hidden entries of interrupted atomic writes in ``folder`` and below whose writer pid
    ``whose(pid)`` selects: a ``.NAME.tmp-PID`` is removed; a ``.NAME.old-PID`` (the earlier copy, moved
    aside in the instant before the new one took its name) is put back when NAME is missing, else
    removed. Returns what was cleaned."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    cleaned = []
    for p in sorted(folder.rglob(".*")):
        m = _re.fullmatch(r"\.(.+)\.(tmp|old)-(\d+)", p.name)
        if m is None or not whose(int(m.group(3))):
            continue
        dest = p.with_name(m.group(1))
        if m.group(2) == "old" and not dest.exists():
            os.rename(p, dest)
        elif p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        cleaned.append(p)
    return cleaned


def remove_temporaries(folder: str | Path, pid: int | None = None) -> list[Path]:
    """What this process's (or ``pid``'s) interrupted atomic writes left in ``folder`` (``_sweep``)."""
    pid = os.getpid() if pid is None else pid
    return _sweep(folder, lambda p: p == pid)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Debris of processes that were killed (SIGKILL, power loss) in the middle of an atomic write in
    ``folder`` (``_sweep``); entries of live processes are left alone."""
    return _sweep(folder, lambda p: not _pid_alive(p))


def _describe(entries: list[Path]) -> str:
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in entries)
    return ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")


def check_new_folder(path: str | Path, key: str) -> Path:
    """The folder a run will own: absent or empty (a lock left by a killed run aside). Anything else
    is a FolderError naming ``key`` (the setting or flag that chose the folder) and what is there:
    a run never writes among files it did not make."""
    if not str(path).strip():
        raise FolderError(f"{key} is empty: name the folder the run should create (it would write into the "
                          "current folder)")
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise FolderError(f"{key} {folder} is a file, not a folder")
    if not folder.is_dir():
        return folder
    entries = [p for p in folder.iterdir() if p.name != LOCK_NAME]
    if not entries:
        return folder
    names = {p.name for p in entries}
    if "final" in names:
        raise FolderError(f"{key} {folder} already holds a finished run (final/); choose another folder")
    if "metrics.jsonl" in names:
        raise FolderError(f"{key} {folder} holds an earlier (interrupted?) run's metrics.jsonl; choose another "
                          "folder (its checkpoints/ can be passed as model.path to continue from them)")
    if "config.json" in names and any(n.endswith((".safetensors", ".bin")) for n in names):
        raise FolderError(f"{key} {folder} is a model folder ({_describe(entries)}); a run writes only into a "
                          "new or empty folder, never into a model's")
    raise FolderError(f"{key} {folder} is not empty (it holds {_describe(entries)}); a run writes only into a "
                      "new or empty folder")


def _try_lock(fd: int, shared: bool = False) -> bool:
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


class FolderLock:
    """Ownership of a run folder for the life of a run: ``acquire`` creates the folder, takes an
    exclusive lock on its ``.reweightlab.lock`` (released by the OS if the process dies, so a killed
    run never leaves a folder locked) and checks again that the folder is empty, which closes the race
    between two runs started together. ``release`` removes the lock file."""

    def __init__(self, folder: str | Path, key: str) -> None:
        self.folder, self.key, self._fd = Path(folder), key, None

    def acquire(self, existing: bool = False) -> FolderLock:
        """``existing``: the folder is this run's own from an earlier start (a resume): it is locked
        but not required to be empty."""
        self.refuse_if_locked()
        if not existing:
            check_new_folder(self.folder, self.key)
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / LOCK_NAME
        if fcntl is None:  # pragma: no cover
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
            except FileExistsError:
                raise FolderError(f"{self.key} {self.folder} is in use by another run ({LOCK_NAME})") from None
        else:
            fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
            if not _try_lock(fd):
                raise self._in_use(fd)
        self._fd = fd
        try:
            if not existing:
                check_new_folder(self.folder, self.key)  # it may have been filled while we took the lock
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except BaseException:
            self.release()
            raise
        return self

    def refuse_if_locked(self) -> None:
        """A folder another live run holds is named as such (rather than as 'not empty')."""
        path = self.folder / LOCK_NAME
        if fcntl is None or not path.is_file():
            return
        fd = os.open(path, os.O_RDONLY)
        if not _try_lock(fd, shared=True):
            raise self._in_use(fd)
        os.close(fd)

    def _in_use(self, fd: int) -> FolderError:
        other = os.pread(fd, 64, 0).decode(errors="replace").strip()
        os.close(fd)
        return FolderError(f"{self.key} {self.folder} is in use by another reweightlab run"
                           + (f" (pid {other})" if other else "") + "; wait for it to finish or choose another folder")

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            (self.folder / LOCK_NAME).unlink()
        os.close(self._fd)
        self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None


def json_lines(path: str | Path, error: Callable[[int, str], Exception]) -> Iterator[tuple[int, dict]]:
    """(line number, object) for every non-blank line of a JSON-lines file.

    A line that is not valid JSON, or not a JSON object, raises ``error(line_no, what)`` (the
    caller's exception type and wording: a data file names rows, a report names lines).
    """
    with open(path, "rb") as fh:  # bytes: a line that is not UTF-8 is one error naming it, not a traceback
        for line_no, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise error(line_no, f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at byte {exc.start + 1})") from None
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise error(line_no, f"not valid JSON ({exc.msg} at column {exc.colno})") from None
            if not isinstance(row, dict):
                raise error(line_no, f"expected a JSON object, got {type(row).__name__}")
            yield line_no, row
