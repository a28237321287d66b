"""Atomic writes: a file or folder that a run writes is complete under its name, or absent.

Every writer goes through here. The new content is written under a temporary name in the same
folder (so the final rename never crosses file systems) and moved into place with ``os.replace``
(a file) or ``os.rename`` (a folder); an exception on the way removes the temporary and leaves any
earlier copy untouched. Standard library only: every layer may use it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path


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
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = dest.parent / f".{dest.name}.old-{os.getpid()}"
    if dest.exists():
        os.rename(dest, old)
    os.rename(tmp, dest)
    if old.exists():
        shutil.rmtree(old)


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
