"""Reading a user's data file (JSONL or Parquet) and checking every row.

Fields (TRL's names):

- ``prompt`` (string) with optional ``completion`` (string), or ``prompt``/``completion`` as lists
  of ``{"role", "content"}`` messages, or ``messages`` (a conversation; its last assistant turn is
  the completion). See ``tasks.formatting`` for how each is rendered.
- optional score: ``reward``, ``score`` or ``quality`` (a finite number; the first of these names
  present in the first row is the file's score field, and every row must carry it). Filtered SFT,
  SFT(Q), iw-SFT and RWR train on it.
- optional references: ``solution`` / ``solutions`` (string or list of strings), ``answer``
  (string or number): used by the built-in rewards and the probe's likelihood estimator.
- optional ``split`` ("train" or "test") and ``variant`` (string).
- any other field is passed to the reward function as a keyword argument.

JSONL is read line by line with the standard library so that every error names its line (the
`datasets` JSON reader reports a type conflict between rows without saying where); Parquet is read
with `datasets`. Row numbers are 1-based; for JSONL they are line numbers.
"""

from __future__ import annotations

import math
from pathlib import Path

from reweightlab.files import json_lines

SCORE_FIELDS = ("reward", "score", "quality")
TEXT_FIELDS = ("prompt", "completion", "messages")
ROLES = ("system", "user", "assistant", "tool")


class DataError(ValueError):
    """A data file or row that cannot be used: one line naming the file, the row and the field."""


def read_rows(path: str | Path) -> list[tuple[int, dict]]:
    """(row number, row) pairs of a .jsonl or .parquet file, unvalidated."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"data file {p} does not exist")
    suffix = p.suffix.lower()
    if suffix in (".jsonl", ".json"):
        return _read_jsonl(p)
    if suffix == ".parquet":
        return _read_parquet(p)
    raise DataError(f"data file {p}: expected a .jsonl or .parquet file")


def _read_jsonl(p: Path) -> list[tuple[int, dict]]:
    rows = list(json_lines(p, lambda line_no, what: DataError(f"{p}:row {line_no}: {what}")))
    if not rows:
        raise DataError(f"data file {p} holds no rows")
    return rows


def _read_parquet(p: Path) -> list[tuple[int, dict]]:
    import datasets

    datasets.disable_progress_bars()
    try:
        ds = datasets.Dataset.from_parquet(str(p), keep_in_memory=True)
    except Exception as exc:
        raise DataError(f"data file {p}: cannot read it as Parquet: {type(exc).__name__}: {exc}") from None
    rows = [(i, dict(row)) for i, row in enumerate(ds, start=1)]
    if not rows:
        raise DataError(f"data file {p} holds no rows")
    return rows


# ---- validation -------------------------------------------------------------------------------
def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _type(v) -> str:
    return "null" if v is None else type(v).__name__


def _check_messages(value, where: str, field: str, *, need_assistant_last: bool = False) -> None:
    if not isinstance(value, list) or not value:
        raise DataError(f"{where}: field '{field}' must be a non-empty list of messages, got {_type(value)}")
    for i, m in enumerate(value):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            raise DataError(f"{where}: field '{field}' message {i}: "
                            f"expected {{'role': str, 'content': str}}, got {m!r}")
        if m["role"] not in ROLES:
            raise DataError(f"{where}: field '{field}' message {i}: "
                            f"role {m['role']!r} is not one of {', '.join(ROLES)}")
    if need_assistant_last and value[-1]["role"] != "assistant":
        raise DataError(f"{where}: field '{field}' must end with an assistant message (the completion)")


def _check_text(row: dict, where: str, need_completion: bool) -> None:
    if "messages" in row:
        for other in ("prompt", "completion"):
            if other in row:
                raise DataError(f"{where}: field '{other}' next to 'messages': "
                                "a row is either messages or prompt/completion")
        _check_messages(row["messages"], where, "messages")
        last = row["messages"][-1]
        if last["role"] == "assistant" and not last["content"].strip():
            raise DataError(f"{where}: field 'messages': the completion (last assistant message) is empty")
        if need_completion and last["role"] != "assistant":
            raise DataError(f"{where}: field 'messages' must end with an assistant message (the completion)")
        return
    if "prompt" not in row:
        raise DataError(f"{where}: field 'prompt' is missing (rows need 'prompt' [+ 'completion'] or 'messages')")
    prompt, chat = row["prompt"], isinstance(row["prompt"], list)
    if chat:
        _check_messages(prompt, where, "prompt")
    elif not isinstance(prompt, str):
        raise DataError(f"{where}: field 'prompt' must be a string or a list of messages, got {_type(prompt)}")
    elif not prompt.strip():
        raise DataError(f"{where}: field 'prompt' is empty")
    if "completion" not in row or row["completion"] is None:
        if need_completion:
            raise DataError(f"{where}: field 'completion' is missing (training on the file's rows needs one)")
        return
    comp = row["completion"]
    if chat:
        _check_messages(comp, where, "completion", need_assistant_last=True)
        if not comp[-1]["content"].strip():
            raise DataError(f"{where}: field 'completion' is empty")
    elif not isinstance(comp, str):
        raise DataError(f"{where}: field 'completion' must be a string (like 'prompt'), got {_type(comp)}")
    elif not comp.strip():
        raise DataError(f"{where}: field 'completion' is empty")


def _check_extras(row: dict, where: str, score_field: str | None) -> None:
    if score_field is not None:
        if row.get(score_field) is None:
            raise DataError(f"{where}: field '{score_field}' is missing "
                            "(the first row has it, so every row needs it)")
        v = row[score_field]
        if not _is_number(v) or not math.isfinite(v):
            raise DataError(f"{where}: field '{score_field}' must be a finite number, got {v!r}")
    if row.get("split") is not None and row["split"] not in ("train", "test"):
        raise DataError(f"{where}: field 'split' must be 'train' or 'test', got {row['split']!r}")
    if row.get("variant") is not None and not (isinstance(row["variant"], str) and row["variant"]):
        raise DataError(f"{where}: field 'variant' must be a non-empty string, got {row['variant']!r}")
    for key in ("solution", "solutions"):
        if key in row and row[key] is not None:
            v = row[key]
            items = v if isinstance(v, list) else [v]
            if not items or not all(isinstance(s, str) and s for s in items):
                raise DataError(f"{where}: field '{key}' must be a non-empty string or list of strings, got {v!r}")
    if row.get("answer") is not None and not (isinstance(row["answer"], str) or _is_number(row["answer"])):
        raise DataError(f"{where}: field 'answer' must be a string or a number, got {_type(row['answer'])}")


def score_field_of(rows: list[tuple[int, dict]]) -> str | None:
    first = rows[0][1]
    return next((k for k in SCORE_FIELDS if first.get(k) is not None), None)


def validate_rows(path, rows: list[tuple[int, dict]], *, need_completion: bool = False) -> str | None:
    """DataError at the first bad row; returns the file's score field (or None)."""
    score_field = score_field_of(rows)
    conversational = None
    for row_no, row in rows:
        where = f"{path}:row {row_no}"
        _check_text(row, where, need_completion)
        chat = isinstance(row.get("messages", row.get("prompt")), list)
        if conversational is None:
            conversational = chat
        elif chat != conversational:
            raise DataError(f"{where}: field '{'messages' if 'messages' in row else 'prompt'}': the file mixes "
                            "conversations and plain prompt strings; use one format per file")
        _check_extras(row, where, score_field)
    return score_field


def reference_solutions(row: dict) -> list[str] | None:
    """Raw references of a row for the likelihood estimator: solution(s), else None (the completion
    and answer are added by the task, which can render them)."""
    for key in ("solutions", "solution"):
        v = row.get(key)
        if v is not None:
            return list(v) if isinstance(v, list) else [v]
    return None


def reward_columns(row: dict) -> dict:
    """The row's fields that the reward function receives as keyword arguments."""
    return {k: v for k, v in row.items() if k not in TEXT_FIELDS}
