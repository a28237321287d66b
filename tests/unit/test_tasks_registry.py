"""Task registry, Problem and the Task protocol."""

import dataclasses

import pytest

from reweightlab.tasks import (
    GeneralPoints,
    Problem,
    Task,
    UnknownTaskError,
    get_task,
    register_task,
    registry,
    task_names,
)


def test_generalpoints_is_registered_on_import():
    assert "generalpoints" in task_names()
    task = get_task("generalpoints")
    assert isinstance(task, GeneralPoints)
    assert isinstance(task, Task)
    assert task.target == 24
    assert get_task("generalpoints", target=10).target == 10


def test_unknown_task_names_the_registered_ones():
    with pytest.raises(UnknownTaskError) as err:
        get_task("generalpionts")
    assert isinstance(err.value, KeyError) and isinstance(err.value, ValueError)
    msg = str(err.value)
    assert "generalpionts" in msg and "generalpoints" in msg
    assert not msg.startswith('"')  # readable, not KeyError's quoted repr
    with pytest.raises(UnknownTaskError):
        get_task(["not", "hashable"])


class _EchoTask:
    name = "echo"
    variants = ("id",)
    success_score = 1.0
    max_completion_chars = 8

    def __init__(self, word="hi"):
        self.word = word

    def problems(self, variant, split, n, seed):
        return [
            Problem(f"echo-{i}", f"say {self.word}:", variant, split, extra={"answer": self.word})
            for i in range(n)
        ]

    def verify(self, problem, completion):
        raise NotImplementedError

    def solutions(self, problem):
        return None


def test_register_a_user_task(monkeypatch):
    monkeypatch.setattr(registry, "_FACTORIES", dict(registry._FACTORIES))
    register_task("echo", _EchoTask)
    names = task_names()
    assert {"echo", "generalpoints"} <= set(names) and names == sorted(names)
    task = get_task("echo", word="yo")
    assert isinstance(task, Task)
    assert task.problems("id", "train", 2, 0)[1].get("answer") == "yo"
    register_task("echo", _EchoTask)  # the same factory again is harmless
    with pytest.raises(ValueError, match="already registered"):
        register_task("echo", lambda: _EchoTask())
    register_task("echo", lambda: _EchoTask("replaced"), replace=True)
    assert get_task("echo").word == "replaced"
    with pytest.raises(ValueError):
        register_task("", _EchoTask)
    with pytest.raises(TypeError):
        register_task("bad", "not callable")


def test_problem_is_frozen_hashable_and_normalised():
    a = Problem("p", "x:", "id", "train", extra={"b": 2, "a": 1, "values": (1, 2)})
    b = Problem("p", "x:", "id", "train", extra=(("values", (1, 2)), ("a", 1), ("b", 2)))
    assert a == b and hash(a) == hash(b)
    assert a.extra == (("a", 1), ("b", 2), ("values", (1, 2)))
    assert a.get("a") == 1 and a.get("values") == (1, 2) and a.get("missing", "d") == "d"
    assert a.get("prompt") == "x:" and a.get("split") == "train"  # a typed field by name
    assert a != Problem("p", "x:", "id", "train", extra={"a": 1, "b": 3, "values": (1, 2)})
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.prompt = "y:"


def test_problem_is_task_neutral():
    """No task's own fields on Problem: GeneralPoints keeps its hand in ``extra`` (its accessors and
    the normalisation it relies on are tested with the task)."""
    assert [f.name for f in dataclasses.fields(Problem)] == ["id", "prompt", "variant", "split", "extra"]
    assert Problem("p", "x:", "id", "train").get("target") is None


def test_problem_rejects_bad_fields():
    with pytest.raises(ValueError, match="split"):
        Problem("p", "x:", "id", "validation")
    with pytest.raises(ValueError, match="repeated key"):
        Problem("p", "x:", "id", "train", extra=[("a", 1), ("a", 2)])
    with pytest.raises(ValueError):
        Problem("p", "x:", "id", "train", extra=["abc"])
