"""A reward spec string turned into the callable it names, and the calling convention.

A spec names a function:

- ``package.module:function``, importable from the current folder or the Python path;
- ``path/to/file.py:function``;
- a built-in (``builtins``): ``exact_match``, ``numeric_match[:TOL]``, ``regex[:PATTERN]``,
  ``math_verify``.

The function is called with keywords only, TRL's convention: ``fn(prompts=..., completions=...,
completion_ids=..., **row_fields)``, each argument a list with one entry per completion, and only the
names it accepts (all of them when it takes ``**kwargs``). So ``f(prompts, completions, **kw)`` and
TRL's ``f(completions, solution, **kw)`` both work (``call_reward``).
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


def split_spec(spec: str) -> tuple[str, str, str]:
    """(module, separator, function) of 'module:function', 'file.py:function' or 'pkg.module.function'
    (the dotted form TRL and Hydra configs use; a path to a .py file needs the colon)."""
    if ":" in spec:
        return spec.rpartition(":")
    if spec.endswith(".py") or "/" in spec or "\\" in spec:
        return spec, "", ""
    return spec.rpartition(".")


def check_spec(spec: str) -> None:
    """A spec's form, and for a file its existence, checked without importing anything (the worker
    imports the module: a user's module never runs in the trainer)."""
    if not isinstance(spec, str) or not spec.strip():
        raise RewardError(f"reward spec must be 'module:function', 'path.py:function' or a built-in, got {spec!r}")
    if spec.partition(":")[0] in BUILTINS:
        return
    module_name, sep, fn_name = split_spec(spec)
    if not sep or not module_name or not fn_name:
        raise RewardError(
            f"reward '{spec}': expected 'module:function', 'pkg.module.function', 'path/to/file.py:function' "
            f"or a built-in ({', '.join(BUILTINS)})"
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
    module_name, sep, fn_name = split_spec(spec)
    if not sep or not module_name or not fn_name:
        raise RewardError(
            f"reward '{spec}': expected 'module:function', 'pkg.module.function', 'path/to/file.py:function' "
            f"or a built-in ({', '.join(BUILTINS)})"
        )
    module = _import_module(module_name, spec)
    fn = getattr(module, fn_name, None)
    if fn is None:
        raise RewardError(f"reward '{spec}': module '{module_name}' has no attribute '{fn_name}'")
    check_signature(fn, spec)
    return fn


CALL_NAMES = ("prompts", "completions", "completion_ids")


def reward_params(fn) -> frozenset[str] | None:
    """The keyword names ``fn`` accepts, or None when it takes any (``**kwargs``) or cannot be inspected."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return frozenset(p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))


def check_signature(fn, spec: str) -> None:
    """The function must take ``completions`` by keyword (TRL's convention): it is called as
    ``fn(prompts=..., completions=..., completion_ids=..., **row_fields)`` with only the names it accepts."""
    if not callable(fn):
        raise RewardError(f"reward '{spec}' is not callable")
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return  # builtins without a signature: the first batch will tell
    params = list(sig.parameters.values())
    positional_only = [p.name for p in params if p.kind is p.POSITIONAL_ONLY and p.default is p.empty]
    named = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params)
    # f(p, c, **kw): required parameters under other names; it would be handed prompts= and completions=
    required = [p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD and p.default is p.empty]
    if positional_only or ("completions" not in named and (not takes_any or required)):
        raise RewardError(
            f"reward '{spec}' must accept completions= by keyword: it is called as f(prompts=..., completions=..., "
            f"completion_ids=..., **row_fields), TRL's convention, with only the names it accepts; its signature "
            f"is {sig}"
        ) from None


def call_kwargs(accepts: frozenset[str] | None, prompts, completions, columns: dict, completion_ids=None) -> dict:
    """The keyword arguments of one call: the row fields, prompts, completions and completion ids,
    restricted to the names the function accepts (all of them for ``**kwargs``)."""
    kwargs = {**columns, "prompts": list(prompts), "completions": list(completions)}
    if completion_ids is not None:
        kwargs["completion_ids"] = [list(ids) for ids in completion_ids]
    if accepts is None:
        return kwargs
    return {k: v for k, v in kwargs.items() if k in accepts}


def call_reward(fn, prompts, completions, columns: dict, completion_ids=None, accepts=...):
    """The function's raw output (checked by the caller), called with keywords only."""
    if accepts is ...:
        accepts = reward_params(fn)
    return fn(**call_kwargs(accepts, prompts, completions, columns, completion_ids))


def absolute_spec(spec: str) -> str:
    """File paths made absolute, so the worker finds the file whatever its working folder."""
    if spec.partition(":")[0] in BUILTINS:
        return spec
    module, sep, fn = spec.rpartition(":")
    if sep and (module.endswith(".py") or "/" in module):
        return f"{Path(module).expanduser().resolve()}:{fn}"
    return spec
