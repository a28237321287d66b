"""The built-in rewards: each scores 1.0 or 0.0 against the row's ``answer`` (else ``solution``) field.

``exact_match``; ``numeric_match`` or ``numeric_match:TOL`` (default 1e-6); ``regex`` (pattern from
each row's ``pattern`` field) or ``regex:PATTERN``; ``math_verify`` (needs
``pip install 'reweightlab[math]'``). ``builtin_reward`` turns a spec's name and argument into one.
"""

from __future__ import annotations

import importlib.util
import math
import re
from collections.abc import Callable

RewardFn = Callable[..., list]
BUILTINS = ("exact_match", "numeric_match", "regex", "math_verify")


# Defined here, in the lowest of the reward modules, because built-ins, loading and the worker all raise it.
class RewardError(ValueError):
    """A reward function that cannot be used as given (bad spec, bad output on the first batch)."""


def text_of(completion) -> str:
    """A completion's text: the string itself, or (a conversational row, TRL's format) the content of
    its last message."""
    if isinstance(completion, list):
        return str(completion[-1].get("content", "")) if completion else ""
    return completion


def _references(columns: dict, n: int, name: str) -> list:
    for key in ("answer", "solution"):
        if key in columns:
            return list(columns[key])
    raise RewardError(f"reward '{name}' compares with each row's 'answer' (or 'solution') field; the rows have neither")


def exact_match(prompts, completions, **columns) -> list[float]:
    """1.0 when the completion, stripped of surrounding whitespace, equals the reference exactly."""
    refs = _references(columns, len(completions), "exact_match")
    return [float(c.strip() == str(r).strip()) for c, r in zip(map(text_of, completions), refs, strict=True)]


_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")


def last_number(text: str) -> float | None:
    """The last decimal number in the text (thousands separators removed), or None."""
    found = _NUMBER.findall(text.replace(",", ""))
    return float(found[-1]) if found else None


def numeric_match(tol: float = 1e-6) -> RewardFn:
    """1.0 when the completion's last number is within ``tol`` (absolute or relative) of the reference."""

    def reward(prompts, completions, **columns) -> list[float]:
        refs = _references(columns, len(completions), "numeric_match")
        out = []
        for c, r in zip(map(text_of, completions), refs, strict=True):
            got, want = last_number(c), last_number(str(r))
            close = got is not None and want is not None and math.isclose(got, want, rel_tol=tol, abs_tol=tol)
            out.append(float(close))
        return out

    return reward


def regex(pattern: str | None = None) -> RewardFn:
    """1.0 when the whole completion (stripped) matches the pattern: the spec's, else the row's ``pattern``."""
    fixed = re.compile(pattern, re.DOTALL) if pattern else None

    def reward(prompts, completions, **columns) -> list[float]:
        if fixed is None and "pattern" not in columns:
            raise RewardError("reward 'regex' needs a pattern: 'regex:PATTERN', or a 'pattern' field in each row")
        pats = [fixed] * len(completions) if fixed else [re.compile(p, re.DOTALL) for p in columns["pattern"]]
        return [float(p.fullmatch(c.strip()) is not None) for p, c in zip(pats, map(text_of, completions), strict=True)]

    return reward


def math_verify(prompts, completions, **columns) -> list[float]:
    """1.0 when `math-verify` finds the completion's answer mathematically equal to the reference."""
    from math_verify import parse, verify

    refs = _references(columns, len(completions), "math_verify")
    return [float(verify(parse(str(r)), parse(c))) for c, r in zip(map(text_of, completions), refs, strict=True)]


def builtin_reward(name: str, arg: str) -> RewardFn:
    """The built-in a spec ``name[:arg]`` names (``name`` in ``BUILTINS``), its argument checked."""
    if name == "exact_match" or name == "math_verify":
        if arg:
            raise RewardError(f"reward '{name}' takes no argument, got '{name}:{arg}'")
        if name == "math_verify" and importlib.util.find_spec("math_verify") is None:
            raise RewardError("reward 'math_verify' needs the math-verify package: pip install 'reweightlab[math]'")
        return exact_match if name == "exact_match" else math_verify
    if name == "numeric_match":
        try:
            tol = float(arg) if arg else 1e-6
        except ValueError:
            raise RewardError(f"reward 'numeric_match:{arg}': the tolerance must be a number") from None
        if not tol >= 0:
            raise RewardError(f"reward 'numeric_match:{arg}': the tolerance must be >= 0")
        return numeric_match(tol)
    try:
        return regex(arg or None)
    except re.error as exc:
        raise RewardError(f"reward 'regex:{arg}': not a valid regular expression ({exc})") from None

