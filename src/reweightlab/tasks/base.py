"""What every task provides: problems by variant and split, a verifier, and (where it can) solutions.

A task is any object with the attributes and methods of ``Task`` (a structural Protocol: no base
class to inherit). ``Problem`` is task-neutral: what a prompt means to its own task (a GeneralPoints
hand, a user row's number) lives in its generic ``extra`` mapping, so no task needs a subclass.

``Task`` also declares six optional hooks (``verify_batch``, ``reward_counts``, ``use_tokenizer``,
``prefix_feasible``, ``solution_key``, ``feedback``), one small protocol each. Callers never look a hook up
themselves: ``tasks.hooks`` calls a task's hook, or does what a task without it means.
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
    ``extra`` holds the task's own fields (GeneralPoints: ``cards``, ``values``, ``target``; a data
    file: ``row``); pass a mapping or (key, value) pairs, it is stored as a key-sorted tuple of pairs.
    Its values must be hashable for ``hash(problem)`` to work.
    """

    id: str
    prompt: str
    variant: str
    split: str
    extra: tuple[tuple[str, Hashable], ...] = field(default=())

    def __post_init__(self) -> None:
        # Normalise containers so equal problems compare and hash equal however they were built.
        extra = self.extra.items() if isinstance(self.extra, Mapping) else self.extra
        pairs = tuple(sorted((str(k), v) for k, v in _pairs(extra)))
        if len({k for k, _ in pairs}) != len(pairs):
            raise ValueError(f"Problem.extra has a repeated key: {[k for k, _ in pairs]}")
        object.__setattr__(self, "extra", pairs)
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

    Optional hooks, each declared by a protocol below (not part of this structural check: a task
    with none of them is a Task). A task has a hook when it has the method; an attribute set to None
    means it has not. Callers go through ``tasks.hooks``, which calls the hook or supplies the default:

    - ``verify_batch(problems, completions)`` (``HasVerifyBatch``): one call for a whole batch; by
      default ``verify`` on each.
    - ``reward_counts()`` (``HasRewardCounts``): samples whose reward call failed since the last
      call, for per-step metrics; by default none.
    - ``use_tokenizer(tokenizer, **options)`` (``HasUseTokenizer``): render prompts with the model's
      tokenizer (a data file's chat template); by default prompts are fixed text.
    - ``prefix_feasible(problem, prefix)`` (``HasPrefixFeasible``): a cheap partial verifier, False
      only when no completion starting with ``prefix`` can be a success; the probe's
      verifier-guided search prunes its beam with it. By default every prefix is feasible (plain
      beam search with verification).
    - ``solution_key(problem, completion)`` (``HasSolutionKey``): what makes two successful
      completions the same solution (the probe's solution-level support and diversity); by default
      the stripped text.
    - ``feedback(problem, completion, verdict)`` (``HasFeedback``): the text that follows a failed
      attempt in a revision episode (the verifier's reason, as the model should read it); the next
      attempt is written right after it. No default: revision (``rl.revision_attempts``, ``probe
      --revision-attempts``) needs a task that has it.
    - ``failure_kind(problem, completion, verdict)`` (``HasFailureKind``): a short name for how a
      failed completion failed (GeneralPoints: ``other_rule`` when the face cards were read under the
      other rule, ``wrong_numbers``, ``wrong_value``, ``illegal``); the probe counts them per model.
      By default the failure's score, e.g. ``score -1``.
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


# The optional hooks of ``Task``, one protocol each (typing has no optional protocol members), so a
# type checker can tell a task that has one, and ``tasks.hooks`` names the same methods.
@runtime_checkable
class HasVerifyBatch(Protocol):
    def verify_batch(self, problems: list[Problem], completions: list[str]) -> list[Verdict]:
        """One verdict per (problem, completion) pair, from one call (the reward signature is batched)."""
        ...


@runtime_checkable
class HasRewardCounts(Protocol):
    def reward_counts(self) -> dict[str, int]:
        """Samples scored as failed reward calls since the last call, by kind."""
        ...


@runtime_checkable
class HasUseTokenizer(Protocol):
    def use_tokenizer(self, tokenizer: Any, **options: Any) -> None:
        """Render prompts with ``tokenizer`` from now on (options: the task's own, e.g. chat_template)."""
        ...


@runtime_checkable
class HasPrefixFeasible(Protocol):
    def prefix_feasible(self, problem: Problem, prefix: str) -> bool:
        """False only when no completion starting with ``prefix`` can be a success."""
        ...


@runtime_checkable
class HasSolutionKey(Protocol):
    def solution_key(self, problem: Problem, completion: str) -> str:
        """The identity of a successful completion as a solution."""
        ...


@runtime_checkable
class HasFeedback(Protocol):
    def feedback(self, problem: Problem, completion: str, verdict: Verdict) -> str:
        """What the verifier tells the model after ``completion`` failed with ``verdict``."""
        ...


@runtime_checkable
class HasFailureKind(Protocol):
    def failure_kind(self, problem: Problem, completion: str, verdict: Verdict) -> str:
        """A short name for how ``completion`` failed (``verdict`` is its verdict, not a success)."""
        ...


HOOK_PROTOCOLS = (HasVerifyBatch, HasRewardCounts, HasUseTokenizer, HasPrefixFeasible, HasSolutionKey, HasFeedback,
                  HasFailureKind)
