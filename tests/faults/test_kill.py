"""Fault injection: a tiny training run in a child process is sent SIGINT, SIGTERM or SIGKILL at a
random moment of a training step, of a checkpoint write or of a reward call; then what it left is
checked. Whatever the signal: every checkpoint under its real name loads (strictly), no process of
the run outlives it, and ``--resume`` takes the run from its last checkpoint to the end, each step
logged once, the killed start's debris removed. For the signals a program can
catch (INT, TERM): the exit code says which, stderr has one line and no traceback, and no temporary
or lock file remains. SIGKILL cannot be caught: what it may leave is a hidden ``.NAME.tmp-PID``
folder, never a half-written folder under a real name, and no lock that blocks anything.

The moments are drawn from a seeded generator, so a failure reproduces.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reweightlab.files import LOCK_NAME
from reweightlab.models import load_model

SIGNALS = {"INT": signal.SIGINT, "TERM": signal.SIGTERM, "KILL": signal.SIGKILL}
EXPECTED_RC = {"INT": 130, "TERM": 128 + signal.SIGTERM, "KILL": -signal.SIGKILL}
LAST_LINE = {"INT": "interrupted", "TERM": "terminated (SIGTERM)"}

REWARD = '''
import os, time
from pathlib import Path
def slow(prompts, completions, **columns):
    folder = Path(os.environ["FAULT_DIR"])
    (folder / f"worker-{os.getpid()}").touch()
    (folder / "in-reward").touch()
    while (folder / "spin").exists():  # the call the test interrupts: 100% CPU until killed
        pass
    time.sleep(0.2)
    return [float(len(c) % 3) for c in completions]
'''


def _env(tmp: Path) -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "FAULT_DIR": str(tmp), "PYTHONUNBUFFERED": "1"}


def _start(point: str, model_dir: Path, tmp: Path, out: Path) -> subprocess.Popen:
    rows = [{"prompt": f"{i % 9}+1=", "completion": str(i % 9 + 1), "answer": str(i % 9 + 1)} for i in range(32)]
    data = tmp / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    if point == "reward":
        (tmp / "fault_reward.py").write_text(REWARD)
        args = ["method=grpo", f"data.reward={tmp / 'fault_reward.py'}:slow", "rl.prompts_per_step=2",
                "rl.samples_per_prompt=2", "data.max_new_tokens=4", "optim.steps=8", "checkpoint_every=1"]
    else:
        args = ["method=sft", "optim.steps=150", "optim.sequences_per_step=4", "checkpoint_every=1"]
    cmd = [sys.executable, "-m", "reweightlab.cli", "train", f"model.path={model_dir}", f"data.path={data}",
           f"output_dir={out}", *args, "--no-progress"]
    (tmp / "cmd.json").write_text(json.dumps(cmd))
    # stderr to a file, not a pipe: a process that outlived the run would hold a pipe open
    with open(tmp / "stderr.txt", "w") as log:
        proc = subprocess.Popen(cmd, env=_env(tmp), stdout=subprocess.DEVNULL, stderr=log)
    proc.log = tmp / "stderr.txt"
    return proc


def _wait_for(cond, proc: subprocess.Popen, what: str, limit: float = 120.0) -> None:
    t0 = time.monotonic()
    while not cond():
        if proc.poll() is not None:
            pytest.fail(f"the run ended (rc {proc.returncode}) before {what}: {proc.log.read_text()[-2000:]}")
        if time.monotonic() - t0 > limit:
            proc.kill()
            pytest.fail(f"no {what} within {limit:.0f} s")
        time.sleep(0.001)


def _writing_checkpoint(out: Path) -> bool:
    try:
        return any(n.startswith(".step-") for n in os.listdir(out / "checkpoints"))
    except FileNotFoundError:
        return False


def _logged_a_step(out: Path) -> bool:
    m = out / "metrics.jsonl"
    return m.is_file() and m.stat().st_size > 0


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False
    except OSError:  # not Linux: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


POINTS = ["step", "checkpoint", "reward"]


@pytest.mark.parametrize("sig", sorted(SIGNALS))
@pytest.mark.parametrize("point", POINTS)
def test_a_signal_at_a_random_moment_leaves_only_loadable_checkpoints(point, sig, tiny_model_dir, tmp_path):
    rng = random.Random(f"{point}-{sig}")
    out = tmp_path / "run"
    proc = _start(point, tiny_model_dir, tmp_path, out)
    first = out / "checkpoints" / "step-000001"
    if point == "step":
        _wait_for(first.is_dir, proc, "a first checkpoint")
        time.sleep(rng.uniform(0.0, 1.0))
    elif point == "checkpoint":  # a later checkpoint, so that one complete checkpoint is there
        _wait_for(first.is_dir, proc, "a first checkpoint")
        _wait_for(lambda: _writing_checkpoint(out), proc, "a checkpoint being written")
        time.sleep(rng.uniform(0.0, 0.01))
    else:
        _wait_for(lambda: (tmp_path / "in-reward").exists() and _logged_a_step(out), proc, "a reward call")
        (tmp_path / "spin").touch()  # the next call spins: a worker that outlived its parent would spin on
        (tmp_path / "in-reward").unlink()
        _wait_for(lambda: (tmp_path / "in-reward").exists(), proc, "the next reward call")
        time.sleep(rng.uniform(0.0, 0.25))
    proc.send_signal(SIGNALS[sig])
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"the run did not stop within 60 s of SIG{sig}")
    err = proc.log.read_text()
    assert proc.returncode == EXPECTED_RC[sig], err[-2000:]

    # no process of the run outlives it (the reward worker included)
    workers = [int(p.name.split("-")[1]) for p in tmp_path.glob("worker-*")]
    assert (point == "reward") == bool(workers)
    deadline = time.monotonic() + 10
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [w for w in workers if _alive(w)], "a reward worker outlived the run"

    hidden = sorted(p.relative_to(out).as_posix() for p in out.rglob(".*")) if out.exists() else []
    if sig == "KILL":  # uncatchable: at most a hidden temporary of the killed process, never a lock that blocks
        assert all(f".tmp-{proc.pid}" in h or h == LOCK_NAME for h in hidden), hidden
    else:
        assert hidden == [], hidden
        lines = [x for x in err.splitlines() if x.strip()]
        assert "Traceback" not in err, err[-3000:]
        assert lines[-1] == LAST_LINE[sig], lines[-3:]

    ckpts = sorted((out / "checkpoints").glob("step-*")) if (out / "checkpoints").exists() else []
    assert not (out / "final").exists()  # interrupted long before its last step
    for ckpt in ckpts:  # every checkpoint under its real name is complete: it loads, strictly
        assert load_model(ckpt) is not None
        assert (ckpt / "tokenizer_config.json").is_file()

    if ckpts:  # and the run resumes from its last checkpoint, to the end
        (tmp_path / "spin").unlink(missing_ok=True)
        cmd = json.loads((tmp_path / "cmd.json").read_text())
        done = subprocess.run(cmd + ["--resume"], env=_env(tmp_path), capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        assert load_model(out / "final") is not None
        assert sorted(p.relative_to(out).as_posix() for p in out.rglob(".*")) == []  # the killed run's debris too
        steps = [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()]
        assert steps == list(range(1, steps[-1] + 1))  # each step once: cut back to the checkpoint, then on
    else:
        assert point == "reward", "the signal came after the first checkpoint"
