"""Saving a model folder atomically: it appears complete (weights, tokenizer, metadata) or not at all."""

from __future__ import annotations

import json
from pathlib import Path

from reweightlab.files import atomic_folder
from reweightlab.models.adapters import save_final_weights


def save_model_atomic(
    model, tokenizer, dest: str | Path, extra: dict | None = None, *, merge_lora: bool = True,
    state_dict: dict | None = None,
) -> Path:
    """`state_dict`: the full weights when the module holds only a shard (FSDP)."""
    with atomic_folder(dest) as tmp:
        save_final_weights(model, tokenizer, tmp, merge=merge_lora, state_dict=state_dict)
        if extra:
            (tmp / "reweightlab.json").write_text(json.dumps(extra, indent=2))
    return Path(dest)
