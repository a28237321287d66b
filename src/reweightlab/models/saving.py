"""Saving a model folder atomically: it appears complete (weights, tokenizer, metadata) or not at all."""

from __future__ import annotations

import json
from pathlib import Path

from reweightlab.files import StorageError, atomic_folder, storage_reason
from reweightlab.models.adapters import save_final_weights


def save_model_atomic(
    model, tokenizer, dest: str | Path, extra: dict | None = None, *, merge_lora: bool = True,
    state_dict: dict | None = None, extra_files: dict | None = None,
) -> Path:
    """`state_dict`: the full weights when the module holds only a shard (FSDP); `extra_files`: name ->
    a function writing that file into the folder before it is renamed into place. A disk that refuses
    the write (full, read-only) is a StorageError naming the folder; nothing is left under ``dest``'s
    temporary name, and an earlier ``dest`` is kept."""
    try:
        with atomic_folder(dest) as tmp:
            save_final_weights(model, tokenizer, tmp, merge=merge_lora, state_dict=state_dict)
            if extra:
                (tmp / "reweightlab.json").write_text(json.dumps(extra, indent=2))
            for name, write in (extra_files or {}).items():  # e.g. a checkpoint's trainer state
                write(tmp / name)
    except Exception as exc:
        reason = storage_reason(exc)
        if reason is None:
            raise
        raise StorageError(f"cannot write the model folder {dest}: {reason}") from None
    return Path(dest)
