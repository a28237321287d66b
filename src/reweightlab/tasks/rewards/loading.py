"""A reward spec string turned into the callable it names, and the calling convention.

A spec names a function:

- ``package.module:function``, importable from the current folder or the Python path;
- ``path/to/file.py:function``;
- a built-in (``builtins``): ``exact_match``, ``numeric_match[:TOL]``, ``regex[:PATTERN]``,
  ``math_verify``.

The function is called as ``fn(prompts, completions, **columns)``; one without ``**kwargs`` receives
only the columns it names (``call_reward``).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from pathlib import Path

from reweightlab.tasks.rewards.builtins import BUILTINS, RewardError, RewardFn, builtin_reward


def _import_module(name: str, spec: str):
    if name.endswith(".py") or "/" in name or "\\" in name:
        path = Path(name).expanduser().resolve()
        if not path.is_file():
            raise RewardError(f"reward '{spec}': file {path} does not exist")
        mod_name = f"_reweightlab_reward_{abs(hash(str(path)))}"
        if mod_name in sys.modules:
            return sys.modules[mod_name]
        file_spec = importlib.util.spec_from_file_location(mod_name, path)
        module = importlib.util.module_from_spec(file_spec)
        sys.modules[mod_name] = module  # before exec: dataclasses and pickling look the module up
        try:
            file_spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[mod_name]
            raise RewardError(f"reward '{spec}': importing {path} failed: {type(exc).__name__}: {exc}") from exc
        return module
    # The console script's sys.path[0] is its own folder, not the current one: a module next to the
    # user's config must still import.
    cwd = str(Path.cwd())
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and name.startswith(exc.name):
            raise RewardError(
                f"reward '{spec}': no module named '{name}' (nor a built-in: {', '.join(BUILTINS)})"
            ) from None
        raise RewardError(f"reward '{spec}': importing '{name}' failed: {exc}") from exc
    except Exception as exc:
        raise RewardError(f"reward '{spec}': importing '{name}' failed: {type(exc).__name__}: {exc}") from exc
    finally:
        if added:
            sys.path.remove(cwd)


def check_spec(spec: str) -> None:
    """A spec's form, and for a file its existence, checked without importing anything (the worker
    imports the module: a user's module never runs in the trainer)."""
    if not isinstance(spec, str) or not spec.strip():
        raise RewardError(f"reward spec must be 'module:function', 'path.py:function' or a built-in, got {spec!r}")
    if spec.partition(":")[0] in BUILTINS:
        return
    module_name, sep, fn_name = spec.rpartition(":")
    if not sep or not module_name or not fn_name:
        raise RewardError(
            f"reward '{spec}': expected 'module:function', 'path/to/file.py:function' or a built-in "
            f"({', '.join(BUILTINS)})"
        )
    if module_name.endswith(".py") or "/" in module_name or "\\" in module_name:
        path = Path(module_name).expanduser().resolve()
        if not path.is_file():
            raise RewardError(f"reward '{spec}': file {path} does not exist")


def load_reward(spec: str) -> RewardFn:
    """The callable a spec names (module docstring), checked to accept (prompts, completions, ...)."""
    if not isinstance(spec, str) or not spec.strip():
        raise RewardError(f"reward spec must be 'module:function', 'path.py:function' or a built-in, got {spec!r}")
    head, _, arg = spec.partition(":")
    if head in BUILTINS:
        return builtin_reward(head, arg)
    module_name, sep, fn_name = spec.rpartition(":")
    if not sep or not module_name or not fn_name:
        raise RewardError(
            f"reward '{spec}': expected 'module:function', 'path/to/file.py:function' or a built-in "
            f"({', '.join(BUILTINS)})"
        )
    module = _import_module(module_name, spec)
    fn = getattr(module, fn_name, None)
    if fn is None:
        raise RewardError(f"reward '{spec}': module '{module_name}' has no attribute '{fn_name}'")
    check_signature(fn, spec)
    return fn


def check_signature(fn, spec: str) -> None:
    if not callable(fn):
        raise RewardError(f"reward '{spec}' is not callable")
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return  # builtins without a signature: the first batch will tell
    params = list(sig.parameters.values())
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    # the other parameters are filled from the row's fields by name
    if len(positional) < 2 and not any(p.kind is p.VAR_POSITIONAL for p in params):
        raise RewardError(
            f"reward '{spec}' must accept (prompts, completions, **columns); its signature is {sig}"
        ) from None


def _accepted(fn, columns: dict) -> dict:
    """All columns for a function with **kwargs, else only those it names."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return columns
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return columns
    names = {p.name for p in params}
    return {k: v for k, v in columns.items() if k in names}


def call_reward(fn, prompts: list[str], completions: list[str], columns: dict):
    """The function's raw output (checked by the caller)."""
    return fn(list(prompts), list(completions), **_accepted(fn, columns))



def absolute_spec(spec: str) -> str:
    """File paths made absolute, so the worker finds the file whatever its working folder."""
    if spec.partition(":")[0] in BUILTINS:
        return spec
    module, sep, fn = spec.rpartition(":")
    if sep and (module.endswith(".py") or "/" in module):
        return f"{Path(module).expanduser().resolve()}:{fn}"
    return spec
