"""Inputs bounded by what the model can hold, checked before anything is allocated for them.

A model's context (``context_length``: its config's ``max_position_embeddings`` or the older names
for it) bounds every sequence it is run on: a prompt plus the tokens sampled after it, a training
row's prompt plus completion, a prompt plus a reference answer scored by the probe. An input over it
is an error naming the row (``TooLongError``), raised before the batch that would hold it is built:
one 10 MB answer must not become a 10 GB attention matrix.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "n_ctx", "max_sequence_length", "seq_length")


class TooLongError(ValueError):
    """An input longer than the model's context."""


def context_length(config) -> int | None:
    """The longest sequence the model was built for, from its config; None when it does not say."""
    for key in CONTEXT_KEYS:
        value = getattr(config, key, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def check_lengths(lengths: Sequence[int], context: int | None, where: Callable[[int], str], what: str,
                  fix: str) -> None:
    """TooLongError for the first ``lengths[i]`` over ``context``: '<where(i)>: <what> is N tokens; the
    model holds C (its config's max_position_embeddings); <fix>'."""
    if context is None:
        return
    for i, n in enumerate(lengths):
        if n > context:
            raise TooLongError(f"{where(i)}: {what} is {n:,} tokens; the model holds {context:,} (its config's "
                               f"context length){'; ' + fix if fix else ''}")


def problem_where(task, problem) -> str:
    """A problem as a person finds it: 'file:row N' for a data file's row, else 'prompt <id>'."""
    row = problem.get("row") if hasattr(problem, "get") else None
    path = getattr(task, "path", None)
    if row is not None and path is not None:
        return f"{path}:row {row}"
    return f"prompt {problem.id}"
