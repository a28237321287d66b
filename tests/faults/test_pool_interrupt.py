"""An interrupt while the study's runs train side by side (recipes/train_pool.py): Ctrl-C reaches the
whole process group (the pool and its workers), ``kill -INT`` / SIGTERM the pool's process alone. Either
way the pool raises KeyboardInterrupt with no worker left running, each run keeps only complete
checkpoints (they load, strictly), and no temporary or lock file remains. SIGKILL of the pool alone:
its workers notice and stop the same way."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from reweightlab.models import load_model

SCRIPT = textwrap.dedent('''
    import json, signal, sys
    from reweightlab.recipes import train_pool

    def terminated(signum, frame):  # as the command treats SIGTERM: an interrupt
        raise KeyboardInterrupt

    def main():
        signal.signal(signal.SIGTERM, terminated)
        raws = json.loads(open(sys.argv[1]).read())
        jobs = [train_pool.Job(label, lambda done, raw=raw: raw) for label, raw in raws.items()]
        try:
            train_pool.run_pool(jobs, 2, {}, threads=1, quiet=(True, True), on_done=lambda d: None)
        except KeyboardInterrupt:
            import multiprocessing
            print("interrupted; children left:", len(multiprocessing.active_children()), flush=True)
            sys.exit(130)
        print("finished", flush=True)

    if __name__ == "__main__":  # the spawned workers import this file too
        main()
''')


def _session_pids(sid: int) -> list[int]:
    """Live processes of session ``sid`` (the pool and its workers: none escapes it)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    fields = fh.read().split(")")[-1].split()
            except OSError:
                continue
            if int(fields[3]) == sid and fields[0] != "Z":
                out.append(int(entry))
    return out


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc to find the workers")
@pytest.mark.parametrize("who, sig", [("group", signal.SIGINT), ("pool", signal.SIGINT), ("pool", signal.SIGTERM),
                                      ("pool", signal.SIGKILL)])
def test_an_interrupt_stops_every_run_cleanly(who, sig, tiny_model_dir, tmp_path):
    rows = [{"prompt": f"{i % 9}+1=", "completion": str(i % 9 + 1)} for i in range(32)]
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    outs = {name: tmp_path / name for name in ("a", "b")}
    raws = {name: {"method": "sft", "output_dir": str(out), "seed": i, "model": {"path": str(tiny_model_dir)},
                   "data": {"path": str(data)}, "optim": {"steps": 400, "sequences_per_step": 4},
                   "checkpoint_every": 1} for i, (name, out) in enumerate(outs.items())}
    (tmp_path / "jobs.json").write_text(json.dumps(raws))
    (tmp_path / "pool_script.py").write_text(SCRIPT)
    log = open(tmp_path / "log.txt", "w")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, str(tmp_path / "pool_script.py"), str(tmp_path / "jobs.json")],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not all((out / "checkpoints" / "step-000002").is_dir() for out in outs.values()):
            assert proc.poll() is None, (tmp_path / "log.txt").read_text()[-3000:]
            assert time.monotonic() < deadline, "both runs should have checkpointed within 120 s"
            time.sleep(0.01)
        assert len(_session_pids(proc.pid)) >= 3  # the pool and its two workers
        if who == "group":  # Ctrl-C in a terminal: every process of the foreground group
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
        proc.wait(timeout=90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
    text = (tmp_path / "log.txt").read_text()
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
    else:
        assert proc.returncode == 130 and "interrupted; children left: 0" in text, text[-3000:]
    deadline = time.monotonic() + 30
    while _session_pids(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _session_pids(proc.pid) == [], "a worker outlived the pool"
    for out in outs.values():
        assert not (out / "final").exists()  # interrupted long before the last step
        assert sorted(p.relative_to(out).as_posix() for p in out.rglob(".*")) == []  # no temporary, no lock
        ckpts = sorted((out / "checkpoints").glob("step-*"))
        assert len(ckpts) >= 2
        for ckpt in ckpts:
            assert load_model(ckpt) is not None
