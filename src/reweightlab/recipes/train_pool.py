"""The study's training runs side by side: a pool of one-thread worker processes on a CPU.

On these small models a run does not keep two cores busy (a two-thread run is only 1.2-1.7x faster than
a one-thread one), so two one-thread runs at a time get through the study's 40 runs sooner than one
two-thread run at a time. A run that starts from another arm's model (``Job.after``) waits for it; the
longest runs are started first, so that the last to finish is a short one.

Each run's result depends only on its config and the thread count, not on which worker ran it or what
ran beside it (a test trains the same jobs serially and in the pool and compares the weights bit for
bit). A worker's error is raised in the caller with the other workers stopped; an interrupt (Ctrl-C,
SIGTERM) reaches each worker as one SIGINT, so each run unwinds through its own clean-up (a run keeps
only complete checkpoints) before the pool is joined: nothing is left running. A worker whose pool
died without a word (SIGKILL) interrupts itself the same way.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from queue import Empty

import torch

ENV_WORKERS = "REWEIGHTLAB_TRAIN_WORKERS"


@dataclass
class Job:
    """One training run: ``config(models)`` builds its `reweightlab train` config once the runs in
    ``after`` have finished (``models``: label -> final model folder); ``shared``: it trains on the
    study's base samples; ``cost``: the order in which ready jobs start (largest first)."""

    label: str
    config: Callable[[dict], dict]
    after: tuple[str, ...] = ()
    shared: bool = False
    cost: float = 0.0


@dataclass
class Done:
    label: str
    run_dir: str
    seconds: float
    lines: list[str] = field(default_factory=list)


def train_workers(task: str, jobs: int) -> int:
    """Worker processes for the study's training: one per core (at most 2 unless REWEIGHTLAB_TRAIN_WORKERS
    asks for more; at most one per job); 1 (runs one after the other, in this process) on a machine
    with a GPU, on a single core, with REWEIGHTLAB_TRAIN_WORKERS=1, or for a task registered in this
    process only (a worker would not know it)."""
    from reweightlab.tasks.registry import is_builtin_task
    from reweightlab.tasks.user_task import is_data_file

    if not (is_data_file(task) or is_builtin_task(task)) or torch.cuda.is_available():
        return 1
    wanted = int(os.environ.get(ENV_WORKERS, "0") or 0)
    return max(1, min(jobs, wanted or min(2, os.cpu_count() or 1)))


def run_pool(jobs: list[Job], workers: int, shared: dict, *, threads: int, quiet: tuple[bool, bool],
             on_done: Callable[[Done], None]) -> dict[str, Done]:
    """Train every job in ``workers`` spawned processes of ``threads`` threads each; ``on_done`` is called
    in this process as each finishes (in completion order). Returns label -> Done."""
    by_label = {j.label: j for j in jobs}
    missing = {a for j in jobs for a in j.after if a not in by_label}
    if missing:
        raise ValueError(f"jobs wait for runs that are not in the pool: {sorted(missing)}")
    ctx = multiprocessing.get_context("spawn")
    todo, results = ctx.Queue(), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(todo, results, shared, threads, quiet), name=f"train-{i}")
             for i in range(workers)]
    done: dict[str, Done] = {}
    models: dict[str, str] = {}
    waiting, running = list(jobs), set()
    try:
        for proc in procs:
            proc.start()
        while len(done) < len(jobs):
            ready = sorted((j for j in waiting if all(a in done for a in j.after)), key=lambda j: -j.cost)
            for job in ready[: max(0, workers - len(running))]:
                waiting.remove(job)
                running.add(job.label)
                todo.put((job.label, job.config(models), job.shared))
            try:
                label, ok, value = results.get(timeout=2.0)
            except Empty:  # a worker killed from outside (out of memory, a signal) sends nothing
                dead = [p for p in procs if p.exitcode is not None]
                if dead:
                    raise RuntimeError(f"training worker {dead[0].name} stopped (exit code {dead[0].exitcode}) "
                                       f"while training {', '.join(sorted(running))}") from None
                continue
            if not ok:
                raise value
            running.discard(label)
            done[label] = value
            models[label] = os.path.join(value.run_dir, "final")
            on_done(value)
        for _ in procs:
            todo.put(None)
        for proc in procs:
            proc.join()
    except BaseException:
        todo.cancel_join_thread()  # what no worker will read must not hold this process at exit
        stop(procs)
        raise
    return done


def stop(procs) -> None:
    """Interrupt live workers once (SIGINT: each unwinds through its own clean-up), then join them; a worker
    still alive after 30 s is terminated."""
    import signal

    for proc in procs:
        if proc.is_alive() and proc.pid is not None:
            os.kill(proc.pid, signal.SIGINT)
    for proc in procs:
        if proc.pid is None:
            continue
        proc.join(30)
        if proc.is_alive():
            proc.terminate()
            proc.join(5)


def _interrupt_once() -> None:
    """The first SIGINT raises KeyboardInterrupt (the terminal's Ctrl-C or the pool's own); later ones are
    ignored, so a second one cannot cut a run's clean-up short."""
    import signal

    def handler(_signum, _frame):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)
    for name in ("SIGTERM", "SIGHUP"):  # as the command treats them: an interrupt
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), handler)


def _watch_parent() -> None:
    """If the pool's process dies without stopping its workers (SIGKILL, out of memory), a worker interrupts
    itself within a second: its run unwinds as on Ctrl-C instead of training on for nobody."""
    import signal
    import threading

    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


def _worker(todo, results, shared: dict, threads: int, quiet: tuple[bool, bool]) -> None:
    """A worker's body: train the jobs it is sent until it is sent None; each result, or the error
    (picklable, else described), goes back to the pool."""
    _interrupt_once()
    _watch_parent()
    label = None
    try:
        from reweightlab.quiet import quiet_third_parties
        from reweightlab.train.config import config_from_dict
        from reweightlab.train.loop import train

        torch.set_num_threads(threads)
        torch.set_flush_denormal(True)
        quiet_third_parties(warnings=quiet[0], bars=quiet[1])
        while (job := todo.get()) is not None:
            label, raw, needs_shared = job
            lines: list[str] = []
            t0 = time.perf_counter()
            # a copy of the base samples per run, as in one process: no run sees what another did to them
            extra = {} if not needs_shared else {**shared, "base_samples": shared["base_samples"].select(
                torch.arange(len(shared["base_samples"])))}
            run_dir = train(config_from_dict(raw), progress=False, log=lambda *a, out=lines: out.append(
                " ".join(map(str, a))), **extra)
            results.put((label, True, Done(label, str(run_dir), round(time.perf_counter() - t0, 1), lines)))
            label = None
    except KeyboardInterrupt:  # stopped by the pool or the terminal: the run's clean-up has run
        pass
    except BaseException as exc:  # noqa: BLE001 (any error is the pool's to raise)
        import pickle

        try:
            pickle.dumps(exc)
        except Exception:  # noqa: BLE001
            exc = RuntimeError(f"training {label}: {type(exc).__name__}: {exc}")
        results.put((label, False, exc))
