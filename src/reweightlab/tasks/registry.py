"""Tasks by name, so configs and the command line can say ``task: generalpoints``.

A factory is any callable that returns a ``Task`` (usually the task class itself); keyword
arguments of ``get_task`` go to it. Built-in tasks are registered when ``reweightlab.tasks`` is
imported.
"""

from __future__ import annotations

from collections.abc import Callable

from reweightlab.tasks.base import Task

TaskFactory = Callable[..., Task]

_FACTORIES: dict[str, TaskFactory] = {}


class UnknownTaskError(KeyError, ValueError):
    """No task is registered under this name. Catchable as KeyError or ValueError."""

    def __str__(self) -> str:
        # KeyError.__str__ would wrap the message in quotes.
        return str(self.args[0]) if self.args else ""


def register_task(name: str, factory: TaskFactory, *, replace: bool = False) -> None:
    """Register ``factory`` under ``name``. Re-registering a name is an error unless ``replace``."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"task name must be a non-empty string, got {name!r}")
    if not callable(factory):
        raise TypeError(f"task factory for {name!r} must be callable, got {factory!r}")
    existing = _FACTORIES.get(name)
    if existing is not None and existing is not factory and not replace:
        raise ValueError(f"task {name!r} is already registered; pass replace=True to override it")
    _FACTORIES[name] = factory


def get_task(name: str, **kwargs) -> Task:
    """A new task instance: ``get_task('generalpoints', target=24)``."""
    try:
        factory = _FACTORIES[name]
    except (KeyError, TypeError):  # TypeError: an unhashable name is unknown too
        known = ", ".join(task_names()) or "(none)"
        raise UnknownTaskError(f"unknown task {name!r}; registered tasks: {known}") from None
    return factory(**kwargs)


def task_names() -> list[str]:
    """Registered task names, sorted."""
    return sorted(_FACTORIES)


def is_builtin_task(name: str) -> bool:
    """Registered by reweightlab itself (so a fresh process, e.g. a probe worker, knows it too)."""
    factory = _FACTORIES.get(name) if isinstance(name, str) else None
    return factory is not None and getattr(factory, "__module__", "").startswith("reweightlab.")
