"""The optional hooks of a task (``base.Task``), called with their defaults in one place.

A caller writes ``hooks.solution_key(task, problem, completion)`` and never asks whether the task
has the hook: each function here calls the task's method when it has one and otherwise does what a
task without it means. The defaults live here, once, instead of in every caller.

A task has a hook when it has the method, set on the class or on the instance (a wrapper may copy
one across); an attribute set to None means it has not, as a method set to None does in a Protocol.
The lookup is a plain attribute read, not ``isinstance`` against the hook protocols: the search and
the sampler call ``prefix_feasible`` and ``solution_key`` once per candidate or success, and a
runtime protocol check costs microseconds each time. A unit test keeps these names and the
protocols' methods the same.
"""

from __future__ import annotations

from typing import Any

from reweightlab.tasks.base import Problem, Verdict


def verify_batch(task, problems: list[Problem], completions: list[str],
                 completion_ids: list[list[int]] | None = None) -> list[Verdict]:
    """The task's ``verify_batch`` (one reward call for the batch), else ``verify`` on each pair.
    ``completion_ids``: the sampled tokens, for a task that takes them (a user reward function's
    ``completion_ids=``, TRL's convention)."""
    hook = getattr(task, "verify_batch", None)
    if hook is not None:
        if completion_ids is not None and getattr(task, "takes_completion_ids", False):
            return hook(problems, completions, completion_ids=completion_ids)
        return hook(problems, completions)
    return [task.verify(p, c) for p, c in zip(problems, completions, strict=True)]


def reward_counts(task) -> dict[str, int]:
    """Samples whose reward call failed since the last call (``reward_counts``); {} for a task
    whose verifier cannot fail that way."""
    hook = getattr(task, "reward_counts", None)
    return hook() if hook is not None else {}


def use_tokenizer(task, tokenizer: Any, **options: Any) -> None:
    """Have the task render prompts with ``tokenizer`` (``use_tokenizer``); a task whose prompts are
    fixed text ignores it."""
    hook = getattr(task, "use_tokenizer", None)
    if hook is not None:
        hook(tokenizer, **options)


def prefix_feasible(task, problem: Problem, prefix: str) -> bool:
    """False only when no completion starting with ``prefix`` can succeed (``prefix_feasible``);
    True for a task without the partial verifier, so a search over it prunes nothing."""
    hook = getattr(task, "prefix_feasible", None)
    return hook(problem, prefix) if hook is not None else True


def solution_key(task, problem: Problem, completion: str) -> str:
    """What makes two successful completions the same solution (``solution_key``; GeneralPoints: the
    canonical expression, so ``3*8`` and ``8*3`` are one solution), else the completion with
    surrounding whitespace removed."""
    hook = getattr(task, "solution_key", None)
    return hook(problem, completion) if hook is not None else completion.strip()


class NoFeedbackError(ValueError):
    """Revision was asked of a task that cannot say why an attempt failed."""


def has_feedback(task) -> bool:
    """Whether the task can write feedback after a failed attempt (``feedback``): revision needs it."""
    return getattr(task, "feedback", None) is not None


def feedback(task, problem: Problem, completion: str, verdict: Verdict) -> str:
    """The task's feedback on a failed attempt (``feedback``). No default: a revision episode without
    the verifier's reason would only be resampling, so a task without the hook is an error."""
    hook = getattr(task, "feedback", None)
    if hook is None:
        raise NoFeedbackError(f"task {getattr(task, 'name', task)!r} has no feedback hook: revision needs a task "
                              "whose verifier says why an attempt failed (Task.feedback)")
    return hook(problem, completion, verdict)


def failure_kind(task, problem: Problem, completion: str, verdict: Verdict) -> str:
    """How a failed completion failed (``failure_kind``), else its score: ``'score -1'``."""
    hook = getattr(task, "failure_kind", None)
    return hook(problem, completion, verdict) if hook is not None else f"score {verdict.score:g}"
