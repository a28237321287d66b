"""Atomic saves: a model folder appears complete or not at all (temporary folder, then rename)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path


def save_model_atomic(
    model, tokenizer, dest: str | Path, extra: dict | None = None, *, merge_lora: bool = True,
    state_dict: dict | None = None,
) -> Path:
    """`state_dict`: the full weights when the module holds only a shard (FSDP)."""
    from reweightlab.models.adapters import save_final_weights

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    save_final_weights(model, tokenizer, tmp, merge=merge_lora, state_dict=state_dict)
    if extra:
        (tmp / "reweightlab.json").write_text(json.dumps(extra, indent=2))
    old = dest.parent / f".{dest.name}.old-{os.getpid()}"
    if dest.exists():
        os.rename(dest, old)  # the previous complete copy stays until the new one is in place
    os.rename(tmp, dest)
    if old.exists():
        shutil.rmtree(old)
    return dest


def write_text_atomic(path: str | Path, text: str) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class MetricsWriter:
    """Appends one JSON line per call; each line is written and flushed in one piece."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def write(self, record: dict) -> None:
        self._fh.write(json.dumps(record) + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


class NullMetrics:
    """The metrics writer of a process other than rank 0: writes nothing."""

    def write(self, record: dict) -> None:
        pass

    def close(self) -> None:
        pass
