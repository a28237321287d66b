"""Continuing an interrupted run (``reweightlab train CONFIG --resume``).

A checkpoint (``checkpoints/step-N/``) holds the model and, beside it, ``trainer_state.pt``: the
optimizer's and the schedule's state, the step, the random state of the batch draws (the generator
of offline steps, the prompt sampler of RL), torch's global random state and, for iw-SFT's EMA copy,
its weights. Resuming loads the last checkpoint that has one, cuts ``metrics.jsonl`` back to its
step, and runs the remaining steps. The run's data are rebuilt as the first start built them (the
same seeds, the same starting model; the reference log-probs come from the cache), so a resumed
run takes the steps an uninterrupted one takes: a test checks that their metrics agree.

``trainer_state.pt`` is read with ``torch.load(weights_only=True)``, which unpickles tensors and plain
containers only: it cannot run code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from reweightlab.config import flatten
from reweightlab.files import FolderError, write_text_atomic

STATE_NAME = "trainer_state.pt"


class ResumeError(FolderError):
    """A run folder that cannot be resumed (finished, no checkpoint, another config)."""


@dataclass
class ResumePoint:
    checkpoint: Path
    step: int  # optimizer steps (offline) or batches (RL) already taken
    state: dict


def find_resume_point(run_dir: Path, config_json: str) -> ResumePoint:
    """The last checkpoint of ``run_dir`` with its trainer state; ResumeError when there is none, the
    run finished, or ``config_json`` (this invocation's settings) differs from the run's."""
    saved_path = run_dir / "config.json"
    if not saved_path.is_file():
        raise ResumeError(f"--resume: {run_dir} holds no run to resume (no config.json)")
    if (run_dir / "final").exists():
        raise ResumeError(f"--resume: {run_dir} already finished (final/); nothing to resume")
    saved = flatten(json.loads(saved_path.read_text()))
    now = flatten(json.loads(config_json))
    differ = sorted(k for k in set(saved) | set(now) if saved.get(k) != now.get(k))
    if differ:
        shown = ", ".join(f"{k} (run: {saved.get(k)!r}, now: {now.get(k)!r})" for k in differ[:4])
        raise ResumeError(f"--resume continues a run with its own settings; these differ from {saved_path}: {shown}"
                          + (f" and {len(differ) - 4} more" if len(differ) > 4 else ""))
    folder = run_dir / "checkpoints"
    ckpts = sorted(p for p in folder.glob("step-*") if (p / STATE_NAME).is_file()) if folder.is_dir() else []
    if not ckpts:
        raise ResumeError(f"--resume: {run_dir} has no checkpoint with its trainer state to continue from "
                          "(checkpoints are written every checkpoint_every steps; 0 writes none)")
    ckpt = ckpts[-1]
    try:
        state = torch.load(ckpt / STATE_NAME, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ResumeError(f"--resume: cannot read {ckpt / STATE_NAME}: {type(exc).__name__}: {exc}") from None
    return ResumePoint(ckpt, int(state["step"]), state)


def write_state(path: Path, **state) -> None:
    torch.save(state, path)


def cut_metrics(path: Path, step: int) -> int:
    """Keep the metrics lines of steps <= ``step`` (the resumed run writes the rest again); returns
    how many were dropped. Rewritten atomically."""
    if not path.is_file():
        return 0
    lines = [x for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
    keep = [x for x in lines if json.loads(x).get("step", 0) <= step]
    write_text_atomic(path, "".join(x + "\n" for x in keep))
    return len(lines) - len(keep)
