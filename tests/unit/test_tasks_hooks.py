"""The Task protocol's optional hooks: declared in tasks.base, called with their defaults by tasks.hooks."""

import inspect

import pytest

from reweightlab.tasks import GeneralPoints, Problem, Task, Verdict, base, hooks
from reweightlab.tasks.user_task import DatasetTask

PROBLEM = Problem("p", "x:", "id", "train")


class _Bare:
    """A task with none of the hooks."""

    name, variants, success_score, max_completion_chars = "bare", ("id",), 1.0, 4

    def problems(self, variant, split, n, seed):
        return [PROBLEM] * n

    def verify(self, problem, completion):
        return Verdict(float(completion == "ok"), completion == "ok", "own verify")

    def solutions(self, problem):
        return None


class _Hooked(_Bare):
    """The same task with every hook (inherits only the test's plumbing)."""

    def __init__(self):
        self.calls = []

    def verify_batch(self, problems, completions):
        self.calls.append(("verify_batch", len(completions)))
        return [Verdict(2.0, True, "batched") for _ in completions]

    def reward_counts(self):
        return {"reward_errors": 3}

    def use_tokenizer(self, tokenizer, **options):
        self.calls.append(("use_tokenizer", tokenizer, options))

    def prefix_feasible(self, problem, prefix):
        return prefix == "o"

    def solution_key(self, problem, completion):
        return completion.upper()

    def feedback(self, problem, completion, verdict):
        return f"<{verdict.reason}>"

    def failure_kind(self, problem, completion, verdict):
        return f"kind:{completion}"


def _hook_names():
    return {fn for fn, obj in vars(hooks).items()
            if inspect.isfunction(obj) and obj.__module__ == hooks.__name__ and not fn.startswith("has_")}


def test_every_hook_is_declared_by_one_protocol_and_named_alike():
    declared = {}
    for proto in base.HOOK_PROTOCOLS:
        methods = [k for k, v in vars(proto).items() if inspect.isfunction(v) and not k.startswith("_")]
        assert len(methods) == 1, (proto, methods)
        declared[methods[0]] = proto
    assert set(declared) == _hook_names() == {
        "verify_batch", "reward_counts", "use_tokenizer", "prefix_feasible", "solution_key", "feedback",
        "failure_kind"}
    for name in declared:
        assert name in Task.__doc__  # the Task protocol documents each of them


def test_a_task_without_hooks_is_a_task_and_gets_the_defaults():
    task = _Bare()
    assert isinstance(task, Task)
    assert not any(isinstance(task, proto) for proto in base.HOOK_PROTOCOLS)
    verdicts = hooks.verify_batch(task, [PROBLEM, PROBLEM], ["ok", "no"])
    assert [(v.success, v.reason) for v in verdicts] == [(True, "own verify"), (False, "own verify")]
    assert hooks.reward_counts(task) == {}
    assert hooks.use_tokenizer(task, object(), chat_template="auto") is None
    assert hooks.prefix_feasible(task, PROBLEM, "anything") is True
    assert hooks.solution_key(task, PROBLEM, "  3*8 \n") == "3*8"
    assert not hooks.has_feedback(task)
    with pytest.raises(hooks.NoFeedbackError, match="task 'bare' has no feedback hook"):
        hooks.feedback(task, PROBLEM, "no", Verdict(0.0, False, "wrong"))
    assert hooks.failure_kind(task, PROBLEM, "no", Verdict(-1.0, False, "wrong")) == "score -1"


def test_a_task_with_hooks_has_them_called():
    task = _Hooked()
    assert all(isinstance(task, proto) for proto in base.HOOK_PROTOCOLS)
    assert [v.reason for v in hooks.verify_batch(task, [PROBLEM] * 3, ["a", "b", "c"])] == ["batched"] * 3
    assert hooks.reward_counts(task) == {"reward_errors": 3}
    hooks.use_tokenizer(task, "tok", chat_template="always")
    assert task.calls == [("verify_batch", 3), ("use_tokenizer", "tok", {"chat_template": "always"})]
    assert hooks.prefix_feasible(task, PROBLEM, "o") and not hooks.prefix_feasible(task, PROBLEM, "x")
    assert hooks.solution_key(task, PROBLEM, "ab") == "AB"
    assert hooks.has_feedback(task) and hooks.feedback(task, PROBLEM, "no", Verdict(0.0, False, "why")) == "<why>"
    assert hooks.failure_kind(task, PROBLEM, "no", Verdict(0.0, False, "why")) == "kind:no"


def test_a_hook_set_to_none_or_copied_onto_an_instance():
    """None means "has not" (as for a Protocol method); a wrapper may copy a hook onto itself."""
    task = _Hooked()
    task.prefix_feasible = None
    task.solution_key = None
    assert hooks.prefix_feasible(task, PROBLEM, "x") is True
    assert hooks.solution_key(task, PROBLEM, " ab ") == "ab"
    wrapper = _Bare()
    wrapper.prefix_feasible = _Hooked().prefix_feasible
    assert not hooks.prefix_feasible(wrapper, PROBLEM, "x")


def test_the_built_in_tasks_declare_what_they_have():
    gp = GeneralPoints()
    assert isinstance(gp, base.HasPrefixFeasible) and isinstance(gp, base.HasSolutionKey)
    assert isinstance(gp, base.HasFeedback)
    assert not isinstance(gp, base.HasVerifyBatch) and not isinstance(gp, base.HasUseTokenizer)
    hand = gp.problem(("A", "8", "K", "5"), "id")
    assert hooks.solution_key(gp, hand, "(8*(10-5))-1*... ") == "(8*(10-5))-1*..."  # not legal: stripped
    assert hooks.solution_key(gp, hand, " ( 8 * 3 ) ") == "8*3"
    for proto in (base.HasVerifyBatch, base.HasRewardCounts, base.HasUseTokenizer):
        assert issubclass(DatasetTask, proto)
    assert not issubclass(DatasetTask, base.HasPrefixFeasible) and not issubclass(DatasetTask, base.HasSolutionKey)
