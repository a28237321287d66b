"""Running a user's reward function in isolation, with a time limit (``RewardRunner``).

User code may raise, hang or crash. It runs in a worker process started with ``spawn`` (``fork`` is
unsafe once torch has started its threads, and spawn works the same on Linux and macOS); a call
that raises is retried one sample at a time so that only the failing samples score ``on_error``; a
call that exceeds the time limit kills the worker (a thread cannot be killed), scores its samples
``on_error``, and the next call starts a fresh worker. The worker loads the function from its spec,
so nothing is pickled but the data. A callable passed directly (not by spec) runs in the worker if
it pickles, else in a thread: a hung thread is abandoned, not killed, which is why specs are the
documented path.

Its output must be one finite number per completion: ``check_reward_output`` enforces that on the
first batch that returns (a bug in the function); later bad values score ``on_error``.

A user's module is imported only in the worker, never in the trainer: a module that exits, crashes
or blocks at import cannot take the trainer with it. The worker is started when the runner is made
(so a module that does not import is an error before anything is trained) and must say 'ready'
within ``load_timeout`` seconds. It watches its parent and exits when the parent is gone (and on
Linux the kernel kills it with its parent), so a killed trainer leaves no worker behind.

A reward that fails on every sample of a batch before any sample has scored, or on every sample of
``MAX_FAILED_BATCHES`` batches in a row, stops the run (``RewardError``): a run trained on nothing
but ``on_error`` would report success having learned from a constant.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import numbers
import os
import pickle
import sys
import threading
import time

from reweightlab.tasks.rewards.builtins import BUILTINS, RewardError
from reweightlab.tasks.rewards.loading import (
    absolute_spec,
    call_reward,
    check_signature,
    check_spec,
    load_reward,
    reward_params,
)

LOAD_TIMEOUT = 60.0  # seconds a worker may take to start and import the user's module
MAX_FAILED_BATCHES = 3  # consecutive batches failing on every sample, once some sample has scored


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



def _die_with_parent(parent_pid: int, kernel: bool) -> None:
    """Exit as soon as the parent is gone: the kernel's parent-death signal (Linux, when the parent
    started us from its main thread, whose exit is what the kernel watches), and a thread that polls
    the parent pid (every platform; it runs even while the reward function computes)."""
    if kernel and sys.platform.startswith("linux"):
        try:
            import ctypes
            import signal

            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # the parent died before we got here
        os._exit(1)

    def watch():
        while True:
            time.sleep(0.5)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def _worker_main(conn, source: tuple[str, object], parent_pid: int | None = None, kernel: bool = False) -> None:
    """Load the function, say 'ready', then answer calls until told to stop (None)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent stops us
    if parent_pid is not None:
        _die_with_parent(parent_pid, kernel)
    kind, payload = source
    try:
        fn = load_reward(payload) if kind == "spec" else pickle.loads(payload)
    except BaseException as exc:  # reported to the parent, which raises a clear error
        conn.send(("load_error", f"{type(exc).__name__}: {exc}"))
        return
    accepts = reward_params(fn)
    conn.send(("ready", None if accepts is None else sorted(accepts)))
    while True:
        msg = conn.recv()
        if msg is None:
            return
        try:
            conn.send(("ok", _plain(call_reward(fn, *msg, accepts=accepts))))
        except BaseException as exc:
            conn.send(("raised", f"{type(exc).__name__}: {exc}"))


class RewardRunner:
    """Calls a reward function with a time limit; failures score ``on_error`` and are counted.

    ``errors`` and ``timeouts`` count samples (cumulative); ``take_counts()`` returns the counts
    since its last call, for per-step metrics. Only the contract (n finite numbers) on the first
    batch that returns at all raises: that is a bug in the function, not a bad sample.
    """

    def __init__(self, fn_or_spec, *, timeout: float = 30.0, on_error: float = 0.0, log=None,
                 load_timeout: float = LOAD_TIMEOUT):
        if not (timeout > 0 and math.isfinite(timeout)):
            raise RewardError(f"reward time limit must be a finite number > 0 of seconds, got {timeout}")
        self.timeout, self.on_error, self.log = float(timeout), float(on_error), log
        self.load_timeout = float(load_timeout)
        self._proc = self._conn = None
        self.accepts: frozenset[str] | None = None  # the keyword names the function takes (None: any)
        if isinstance(fn_or_spec, str):
            self.name = fn_or_spec
            if fn_or_spec.partition(":")[0] in BUILTINS:
                self._fn = load_reward(fn_or_spec)  # our own code: checked here, run in the worker
                self.accepts = reward_params(self._fn)
            else:
                check_spec(fn_or_spec)  # the form and the file, without importing the user's module
                self._fn = None
            self._source = ("spec", absolute_spec(fn_or_spec))
        else:
            self.name = getattr(fn_or_spec, "__name__", repr(fn_or_spec))
            check_signature(fn_or_spec, self.name)
            self._fn = fn_or_spec
            self.accepts = reward_params(fn_or_spec)
            try:
                self._source = ("pickle", pickle.dumps(fn_or_spec))
            except Exception:  # lambdas, closures: run in a thread instead (module docstring)
                self._source = None
        self.errors = self.timeouts = 0
        self._taken = (0, 0)
        self._checked = False
        self._logged = 0
        self.scored = 0  # samples that got a real score
        self._failed_batches = 0  # consecutive batches in which every sample failed
        self._batch_why = self._streak_why = None  # the first failure of this call / of the failing streak
        if self._source is not None and self._fn is None:
            self._ensure_worker()  # a module that does not import is an error now, before any training

    # -- public ------------------------------------------------------------------------------
    def __call__(self, prompts: list, completions: list, columns: dict | None = None,
                 completion_ids: list[list[int]] | None = None) -> list[float]:
        """Scores of the completions; ``columns``: the rows' other fields, one value per completion;
        only what the function accepts is sent to it."""
        n = len(completions)
        if n == 0:
            return []
        columns = {k: v for k, v in (columns or {}).items() if self.accepts is None or k in self.accepts}
        if completion_ids is not None and self.accepts is not None and "completion_ids" not in self.accepts:
            completion_ids = None
        failed_before, self._batch_why = self.errors + self.timeouts, None
        status, out = self._invoke(prompts, completions, columns, completion_ids)
        if status == "ok":
            values = self._accept(out, n, range(n))
        elif status == "timeout":
            values = self._fail(n, n, timeout=True, why=out)
        elif n == 1:
            values = self._fail(1, 1, timeout=False, why=out)
        else:
            values = self._per_sample(prompts, completions, columns, completion_ids)
        self._check_batch(n, self.errors + self.timeouts - failed_before)
        return values

    def _check_batch(self, n: int, failed: int) -> None:
        """Stop a run whose reward never scores (module docstring)."""
        if failed < n:
            self.scored += n - failed
            self._failed_batches = 0
            return
        self._failed_batches += 1
        if self._failed_batches == 1:
            self._streak_why = self._batch_why
        how = f"reward '{self.name}' failed on every sample"
        fix = ("; fix the function (or raise data.reward_timeout if it is only slow): a run trained on "
               f"reward_on_error={self.on_error:g} alone learns nothing")
        if self.scored == 0:
            raise RewardError(f"{how} of its first batch ({n} samples; first failure: {self._streak_why}){fix}")
        if self._failed_batches >= MAX_FAILED_BATCHES:
            raise RewardError(f"{how} of the last {self._failed_batches} batches (first failure: "
                              f"{self._streak_why}){fix}")

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
    def _per_sample(self, prompts, completions, columns, completion_ids) -> list[float]:
        """After a raise: each sample alone, so only the failing ones score on_error."""
        out = []
        for i in range(len(completions)):
            one = {k: [v[i]] for k, v in columns.items()}
            ids = None if completion_ids is None else [completion_ids[i]]
            status, value = self._invoke([prompts[i]], [completions[i]], one, ids)
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
        if self._batch_why is None:
            self._batch_why = why
        if timeout:
            self.timeouts += count
        else:
            self.errors += count
        if self.log is not None and self._logged < 3:  # the first few say why; metrics count the rest
            self._logged += 1
            self.log(f"reward '{self.name}': {why}; {count} sample(s) scored {self.on_error}")
        return [self.on_error] * n

    def _invoke(self, prompts, completions, columns, completion_ids=None) -> tuple[str, object]:
        if self._source is None:
            return self._invoke_thread(prompts, completions, columns, completion_ids)
        self._ensure_worker()
        try:
            self._conn.send((list(prompts), list(completions), columns, completion_ids))
            if not self._conn.poll(self.timeout):
                self._kill()
                return "timeout", f"no answer within {self.timeout:g} s (data.reward_timeout)"
            return self._conn.recv()
        except (EOFError, OSError, BrokenPipeError) as exc:
            code = self._proc.exitcode if self._proc is not None else None
            self._kill()
            return "raised", f"the reward worker died (exit code {code}): {type(exc).__name__}"

    def _invoke_thread(self, prompts, completions, columns, completion_ids=None) -> tuple[str, object]:
        box: dict = {}

        def run():
            try:
                box["out"] = _plain(call_reward(self._fn, prompts, completions, columns, completion_ids,
                                                accepts=self.accepts))
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
        main_thread = threading.current_thread() is threading.main_thread()
        proc = ctx.Process(target=_worker_main, args=(child, self._source, os.getpid(), main_thread), daemon=True)
        proc.start()
        child.close()
        # Starting and importing is not the function's time: wait for 'ready' with a separate limit.
        try:
            ready = parent.poll(self.load_timeout)
            status, msg = parent.recv() if ready else (None, None)
        except (EOFError, OSError):
            proc.join(timeout=5)
            parent.close()
            raise RewardError(f"reward '{self.name}': the worker process ended while importing it (exit code "
                              f"{proc.exitcode}); does the module exit or crash at import time?") from None
        if not ready:
            proc.kill()
            proc.join()
            parent.close()
            raise RewardError(f"reward '{self.name}': importing it did not finish within {self.load_timeout:g} s "
                              "(does the module wait or loop at import time?)")
        if status != "ready":
            proc.join()
            parent.close()
            raise RewardError(f"reward '{self.name}': loading it in the worker process failed: {msg}")
        self._proc, self._conn = proc, parent
        self.accepts = None if msg is None else frozenset(msg)

    def _kill(self) -> None:
        if self._proc is not None:
            if self._proc.is_alive():
                self._proc.kill()
            self._proc.join()
            self._conn.close()
        self._proc = self._conn = None

