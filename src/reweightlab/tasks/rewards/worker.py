"""Reward functions: plain Python callables, named by a spec string, run in isolation.

The signature (TRL's convention)::

    def reward(prompts: list[str], completions: list[str], **columns: list) -> list[float]

``prompts`` are the texts fed to the model (chat template applied), ``completions`` the texts it
produced, and every other field of the rows (``answer``, ``solution``, your own) arrives as a
keyword argument holding one value per completion. A function without ``**kwargs`` receives only
the columns it names. It returns one finite number per completion.

A spec names a function:

- ``package.module:function``, importable from the current folder or the Python path;
- ``path/to/file.py:function``;
- a built-in: ``exact_match``, ``numeric_match`` or ``numeric_match:TOL`` (default 1e-6),
  ``regex`` (pattern from each row's ``pattern`` field) or ``regex:PATTERN``, ``math_verify``
  (needs ``pip install 'reweightlab[math]'``). Built-ins score 1.0 or 0.0 against the row's
  ``answer`` (else ``solution``) field.

Isolation (``RewardRunner``): user code may raise, hang or crash. It runs in a worker process
started with ``spawn`` (``fork`` is unsafe once torch has started its threads, and spawn works the
same on Linux and macOS); a call that raises is retried one sample at a time so that only the
failing samples score ``on_error``; a call that exceeds the time limit kills the worker (a thread
cannot be killed), scores its samples ``on_error``, and the next call starts a fresh worker. The
worker loads the function from its spec, so nothing is pickled but the data. A callable passed
directly (not by spec) runs in the worker if it pickles, else in a thread: a hung thread is
abandoned, not killed, which is why specs are the documented path.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import math
import multiprocessing as mp
import numbers
import pickle
import re
import sys
import threading
from collections.abc import Callable
from pathlib import Path

RewardFn = Callable[..., list]
BUILTINS = ("exact_match", "numeric_match", "regex", "math_verify")


class RewardError(ValueError):
    """A reward function that cannot be used as given (bad spec, bad output on the first batch)."""


# ---- built-ins ------------------------------------------------------------------------------
def _references(columns: dict, n: int, name: str) -> list:
    for key in ("answer", "solution"):
        if key in columns:
            return list(columns[key])
    raise RewardError(f"reward '{name}' compares with each row's 'answer' (or 'solution') field; the rows have neither")


def exact_match(prompts, completions, **columns) -> list[float]:
    """1.0 when the completion, stripped of surrounding whitespace, equals the reference exactly."""
    refs = _references(columns, len(completions), "exact_match")
    return [float(c.strip() == str(r).strip()) for c, r in zip(completions, refs, strict=True)]


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
        for c, r in zip(completions, refs, strict=True):
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
        return [float(p.fullmatch(c.strip()) is not None) for p, c in zip(pats, completions, strict=True)]

    return reward


def math_verify(prompts, completions, **columns) -> list[float]:
    """1.0 when `math-verify` finds the completion's answer mathematically equal to the reference."""
    from math_verify import parse, verify

    refs = _references(columns, len(completions), "math_verify")
    return [float(verify(parse(str(r)), parse(c))) for c, r in zip(completions, refs, strict=True)]


def _builtin(name: str, arg: str) -> RewardFn:
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


# ---- loading a spec -------------------------------------------------------------------------
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


def load_reward(spec: str) -> RewardFn:
    """The callable a spec names (module docstring), checked to accept (prompts, completions, ...)."""
    if not isinstance(spec, str) or not spec.strip():
        raise RewardError(f"reward spec must be 'module:function', 'path.py:function' or a built-in, got {spec!r}")
    head, _, arg = spec.partition(":")
    if head in BUILTINS:
        return _builtin(head, arg)
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


def _plain(out):
    """The output as a picklable list (numbers as floats, anything else as its repr), or a type name."""
    if isinstance(out, (str, bytes, dict)) or not hasattr(out, "__len__") or not hasattr(out, "__iter__"):
        return type(out).__name__
    return [float(v) if _is_number(v) else repr(v) for v in out]


def _is_number(v) -> bool:
    return not isinstance(v, (bool, str, bytes)) and (isinstance(v, numbers.Real) or hasattr(v, "__float__"))


def check_reward_output(out, n: int, name: str) -> list[float]:
    """RewardError unless `out` is n finite numbers: the contract, checked on the first batch."""
    if isinstance(out, str):  # the worker reports a non-list output by its type name
        raise RewardError(f"reward '{name}' returned {out}; expected a list of {n} floats")
    if len(out) != n:
        raise RewardError(
            f"reward '{name}' returned {len(out)} values for {n} completions; expected one per completion"
        )
    for i, v in enumerate(out):
        if not _is_number(v):  # after the worker, a non-number arrives as its repr
            shown = v if isinstance(v, str) else repr(v)
            raise RewardError(f"reward '{name}' returned {shown} at index {i}; expected a number")
        if not math.isfinite(float(v)):
            raise RewardError(f"reward '{name}' returned {v!r} at index {i}; rewards must be finite")
    return [float(v) for v in out]


# ---- the worker process ---------------------------------------------------------------------
def _worker_main(conn, source: tuple[str, object]) -> None:
    """Load the function, say 'ready', then answer calls until told to stop (None)."""
    kind, payload = source
    try:
        fn = load_reward(payload) if kind == "spec" else pickle.loads(payload)
    except BaseException as exc:  # reported to the parent, which raises a clear error
        conn.send(("load_error", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", None))
    while True:
        msg = conn.recv()
        if msg is None:
            return
        try:
            conn.send(("ok", _plain(call_reward(fn, *msg))))
        except BaseException as exc:
            conn.send(("raised", f"{type(exc).__name__}: {exc}"))


class RewardRunner:
    """Calls a reward function with a time limit; failures score ``on_error`` and are counted.

    ``errors`` and ``timeouts`` count samples (cumulative); ``take_counts()`` returns the counts
    since its last call, for per-step metrics. Only the contract (n finite numbers) on the first
    batch that returns at all raises: that is a bug in the function, not a bad sample.
    """

    def __init__(self, fn_or_spec, *, timeout: float = 30.0, on_error: float = 0.0, log=None):
        if not timeout > 0:
            raise RewardError(f"reward time limit must be > 0 seconds, got {timeout}")
        self.timeout, self.on_error, self.log = float(timeout), float(on_error), log
        if isinstance(fn_or_spec, str):
            self.name = fn_or_spec
            self._fn = load_reward(fn_or_spec)  # errors in the spec surface here, in the caller
            self._source = ("spec", _absolute_spec(fn_or_spec))
        else:
            self.name = getattr(fn_or_spec, "__name__", repr(fn_or_spec))
            check_signature(fn_or_spec, self.name)
            self._fn = fn_or_spec
            try:
                self._source = ("pickle", pickle.dumps(fn_or_spec))
            except Exception:  # lambdas, closures: run in a thread instead (module docstring)
                self._source = None
        self.errors = self.timeouts = 0
        self._taken = (0, 0)
        self._checked = False
        self._proc = self._conn = None
        self._logged = 0

    # -- public ------------------------------------------------------------------------------
    def __call__(self, prompts: list[str], completions: list[str], columns: dict | None = None) -> list[float]:
        n = len(completions)
        if n == 0:
            return []
        columns = columns or {}
        status, out = self._invoke(prompts, completions, columns)
        if status == "ok":
            return self._accept(out, n, range(n))
        if status == "timeout":
            return self._fail(n, n, timeout=True, why=out)
        if n == 1:
            return self._fail(1, 1, timeout=False, why=out)
        return self._per_sample(prompts, completions, columns)

    def take_counts(self) -> dict[str, int]:
        """Samples scored on_error since the last call: {'reward_errors': .., 'reward_timeouts': ..}."""
        e, t = self.errors - self._taken[0], self.timeouts - self._taken[1]
        self._taken = (self.errors, self.timeouts)
        return {"reward_errors": e, "reward_timeouts": t}

    def close(self) -> None:
        if self._proc is not None:
            try:
                self._conn.send(None)
                self._proc.join(timeout=2)
            except (OSError, EOFError, BrokenPipeError):
                pass
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join()
            self._proc = self._conn = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    # -- internals -----------------------------------------------------------------------------
    def _per_sample(self, prompts, completions, columns) -> list[float]:
        """After a raise: each sample alone, so only the failing ones score on_error."""
        out = []
        for i in range(len(completions)):
            one = {k: [v[i]] for k, v in columns.items()}
            status, value = self._invoke([prompts[i]], [completions[i]], one)
            if status == "ok":
                out += self._accept(value, 1, [i])
            elif status == "timeout":
                # a hang on one sample would cost the time limit on every other: score the rest too
                return out + self._fail(len(completions) - i, len(completions) - i, timeout=True, why=value)
            else:
                out += self._fail(1, 1, timeout=False, why=value)
        return out

    def _accept(self, out, n: int, index) -> list[float]:
        if not self._checked:
            values = check_reward_output(out, n, self.name)
            self._checked = True
            return values
        if isinstance(out, str) or len(out) != n:
            return self._fail(n, n, timeout=False, why=f"returned {out if isinstance(out, str) else len(out)} values")
        values = []
        for v in out:
            if _is_number(v) and math.isfinite(float(v)):
                values.append(float(v))
            else:
                values += self._fail(1, 1, timeout=False, why=f"returned {v} (not a finite number)")
        return values

    def _fail(self, n: int, count: int, *, timeout: bool, why: str) -> list[float]:
        if timeout:
            self.timeouts += count
        else:
            self.errors += count
        if self.log is not None and self._logged < 3:  # the first few say why; metrics count the rest
            self._logged += 1
            self.log(f"reward '{self.name}': {why}; {count} sample(s) scored {self.on_error}")
        return [self.on_error] * n

    def _invoke(self, prompts, completions, columns) -> tuple[str, object]:
        if self._source is None:
            return self._invoke_thread(prompts, completions, columns)
        self._ensure_worker()
        try:
            self._conn.send((list(prompts), list(completions), columns))
            if not self._conn.poll(self.timeout):
                self._kill()
                return "timeout", f"no answer within {self.timeout:g} s (data.reward_timeout)"
            return self._conn.recv()
        except (EOFError, OSError, BrokenPipeError) as exc:
            code = self._proc.exitcode if self._proc is not None else None
            self._kill()
            return "raised", f"the reward worker died (exit code {code}): {type(exc).__name__}"

    def _invoke_thread(self, prompts, completions, columns) -> tuple[str, object]:
        box: dict = {}

        def run():
            try:
                box["out"] = _plain(call_reward(self._fn, prompts, completions, columns))
            except BaseException as exc:
                box["raised"] = f"{type(exc).__name__}: {exc}"

        thread = threading.Thread(target=run, daemon=True)  # a hung one is abandoned; daemon: never blocks exit
        thread.start()
        thread.join(self.timeout)
        if thread.is_alive():
            return "timeout", f"no answer within {self.timeout:g} s (data.reward_timeout)"
        return ("ok", box["out"]) if "out" in box else ("raised", box["raised"])

    def _ensure_worker(self) -> None:
        if self._proc is not None and self._proc.is_alive():
            return
        self._kill()
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_worker_main, args=(child, self._source), daemon=True)
        proc.start()
        child.close()
        # Starting and importing is not the function's time: wait for 'ready' with a separate, longer limit.
        if not parent.poll(max(120.0, self.timeout)):
            proc.kill()
            raise RewardError(f"reward '{self.name}': the worker process did not start within 120 s")
        status, msg = parent.recv()
        if status != "ready":
            proc.join()
            raise RewardError(f"reward '{self.name}': loading it in the worker process failed: {msg}")
        self._proc, self._conn = proc, parent

    def _kill(self) -> None:
        if self._proc is not None:
            if self._proc.is_alive():
                self._proc.kill()
            self._proc.join()
            self._conn.close()
        self._proc = self._conn = None


def _absolute_spec(spec: str) -> str:
    """File paths made absolute, so the worker finds the file whatever its working folder."""
    if spec.partition(":")[0] in BUILTINS:
        return spec
    module, sep, fn = spec.rpartition(":")
    if sep and (module.endswith(".py") or "/" in module):
        return f"{Path(module).expanduser().resolve()}:{fn}"
    return spec
