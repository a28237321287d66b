"""Reward functions: plain Python callables, named by a spec string, run in isolation.

The signature (TRL's convention)::

    def reward(prompts: list[str], completions: list[str], **columns: list) -> list[float]

``prompts`` are the texts fed to the model (chat template applied), ``completions`` the texts it
produced, and every other field of the rows (``answer``, ``solution``, your own) arrives as a
keyword argument holding one value per completion. A function without ``**kwargs`` receives only
the columns it names. It returns one finite number per completion.

- ``builtins``: the built-in rewards (``exact_match``, ``numeric_match``, ``regex``, ``math_verify``);
- ``loading``: a spec (``module:function``, ``path/to/file.py:function`` or a built-in) turned into
  its callable, and the calling convention;
- ``worker``: ``RewardRunner``, which runs the function in a worker process with a time limit, so
  user code that raises, hangs or crashes costs only the samples it was scoring.
"""

from reweightlab.tasks.rewards.builtins import (
    BUILTINS,
    RewardError,
    RewardFn,
    builtin_reward,
    exact_match,
    last_number,
    math_verify,
    numeric_match,
    regex,
)
from reweightlab.tasks.rewards.loading import absolute_spec, call_reward, check_signature, load_reward
from reweightlab.tasks.rewards.worker import RewardRunner, check_reward_output

__all__ = [
    "BUILTINS",
    "RewardError",
    "RewardFn",
    "RewardRunner",
    "absolute_spec",
    "builtin_reward",
    "call_reward",
    "check_reward_output",
    "check_signature",
    "exact_match",
    "last_number",
    "load_reward",
    "math_verify",
    "numeric_match",
    "regex",
]
