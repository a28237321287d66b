"""One short module per method. Each composes reweightlab.math and exports ``METHOD`` (algos/method.py).

The registry below is found, not listed: every module of this package that defines ``METHOD``.
"""

from __future__ import annotations

import importlib
import pkgutil

from reweightlab.algos.method import Method


def _discover() -> dict[str, Method]:
    found: dict[str, Method] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for method in getattr(module, "METHODS", ()) or ((module.METHOD,) if hasattr(module, "METHOD") else ()):
            if method.name in found:
                raise ValueError(f"two methods named {method.name!r}")
            found[method.name] = method
    return found


REGISTRY: dict[str, Method] = _discover()
_ORDER = ("sft", "filtered_sft", "sft_q", "iw_sft", "dft", "rwr", "reinforce", "rloo", "grpo")
"""The order of the built-in methods in docs and tables; methods added later follow, by name."""


def _ordered(names) -> tuple[str, ...]:
    known = [n for n in _ORDER if n in names]
    return tuple(known + sorted(n for n in names if n not in _ORDER))


OFFLINE_METHODS: tuple[str, ...] = _ordered([n for n, m in REGISTRY.items() if not m.is_rl])
RL_METHODS: tuple[str, ...] = _ordered([n for n, m in REGISTRY.items() if m.is_rl])
METHODS: tuple[str, ...] = OFFLINE_METHODS + RL_METHODS


def get_method(name: str) -> Method:
    if name not in REGISTRY:
        raise ValueError(f"unknown method {name!r}; allowed: {', '.join(METHODS)}")
    return REGISTRY[name]


__all__ = ["METHODS", "OFFLINE_METHODS", "REGISTRY", "RL_METHODS", "Method", "get_method"]
