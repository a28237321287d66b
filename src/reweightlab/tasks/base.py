"""What every task provides: problems by variant and split, a verifier, and (where it can) solutions.

A task is any object with the attributes and methods of ``Task`` (a structural Protocol: no base
class to inherit). ``Problem`` carries typed fields for card tasks and a generic ``extra`` mapping
for everything else, so a user task never needs a subclass.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Protocol, runtime_checkable

SPLITS = ("train", "test")


@dataclass(frozen=True)
class Problem:
    """One prompt of a task. Frozen and hashable, so problems can key dicts and sets.

    ``prompt`` is the exact text fed to the model; the completion follows it directly.
    ``cards``, ``values`` and ``target`` are GeneralPoints' fields (empty / 0 for other tasks).
    ``extra`` holds a user task's own fields; pass a mapping or (key, value) pairs, it is stored as a
    key-sorted tuple of pairs. Its values must be hashable for ``hash(problem)`` to work.
    """

    id: str
    prompt: str
    variant: str
    split: str
    cards: tuple[str, ...] = ()
    values: tuple[int, ...] = ()
    target: int = 0
    extra: tuple[tuple[str, Hashable], ...] = field(default=())

    def __post_init__(self) -> None:
        # Normalise containers so equal problems compare and hash equal however they were built.
        extra = self.extra.items() if isinstance(self.extra, Mapping) else self.extra
        pairs = tuple(sorted((str(k), v) for k, v in _pairs(extra)))
        if len({k for k, _ in pairs}) != len(pairs):
            raise ValueError(f"Problem.extra has a repeated key: {[k for k, _ in pairs]}")
        object.__setattr__(self, "extra", pairs)
        object.__setattr__(self, "cards", tuple(self.cards))
        object.__setattr__(self, "values", tuple(self.values))
        if self.split not in SPLITS:
            raise ValueError(f"Problem.split must be one of {SPLITS}, got {self.split!r}")

    def get(self, key: str, default: Any = None) -> Any:
        """A typed field by name, else an ``extra`` entry, else ``default``."""
        if key in _FIELD_NAMES and key != "extra":
            return getattr(self, key)
        for k, v in self.extra:
            if k == key:
                return v
        return default


def _pairs(items: Iterable) -> Iterable[tuple[str, Any]]:
    for item in items:
        key, value = item  # a non-pair fails here, at construction, not later in a training loop
        yield key, value


_FIELD_NAMES = frozenset(f.name for f in fields(Problem))


@dataclass(frozen=True)
class Verdict:
    """A verifier's answer: the reward, whether it counts as a success, and a short reason."""

    score: float
    success: bool
    reason: str


@runtime_checkable
class Task(Protocol):
    """The contract every task meets.

    ``success_score`` is the score of a success (``verdict.success`` iff ``score == success_score``).
    ``max_completion_chars`` bounds how long a correct completion can be; rollouts may stop there.

    Optional (not part of the structural check): ``prefix_feasible(problem, prefix) -> bool``, a
    cheap partial verifier that returns False only when no completion starting with ``prefix`` can
    be a success. The probe's verifier-guided search (``probe.search``) uses it to prune its beam;
    a task without it is searched by plain beam search with verification.
    Optional: ``solution_key(problem, completion) -> str``, what makes two successful completions the
    same solution (the probe's solution-level support and diversity); by default the stripped text.
    """

    name: str
    variants: tuple[str, ...]
    success_score: float
    max_completion_chars: int

    def problems(self, variant: str, split: str, n: int, seed: int) -> list[Problem]:
        """``n`` problems of one variant and split; the same arguments give the same list."""
        ...

    def verify(self, problem: Problem, completion: str) -> Verdict:
        """Score a completion. Never raises, whatever the string."""
        ...

    def solutions(self, problem: Problem) -> list[str] | None:
        """Every correct completion in the canonical format, or None if the task cannot enumerate."""
        ...
