"""Tasks: prompts by variant and split, verifiers, and solvers where a task can enumerate answers.

``base``: the Task protocol, its optional hooks, Problem and Verdict; ``hooks``: each hook called with
its default; ``generalpoints/``: the card task; ``user_task``, ``dataset``, ``formatting``: a user's
data file as a task; ``rewards/``: reward functions for it. Importing this package registers the
built-in tasks (``generalpoints``).
"""

from reweightlab.tasks.base import SPLITS, Problem, Task, Verdict
from reweightlab.tasks.generalpoints import GeneralPoints
from reweightlab.tasks.registry import UnknownTaskError, get_task, register_task, task_names

register_task(GeneralPoints.name, GeneralPoints)

__all__ = [
    "SPLITS",
    "GeneralPoints",
    "Problem",
    "Task",
    "UnknownTaskError",
    "Verdict",
    "get_task",
    "register_task",
    "task_names",
]
