"""The study's training runs side by side (recipes/train_pool.py): each run's weights are those of training
it alone at the same thread count, a run waits for the run it starts from, a worker's error reaches the
caller with nothing left running."""

import json
import multiprocessing
from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file

from reweightlab.config import ConfigError
from reweightlab.recipes import train_pool
from reweightlab.recipes.arms import ARMS, arm_config
from reweightlab.recipes.demo import QUICK_BUDGET
from reweightlab.recipes.pretrain import PACKAGED_BASE
from reweightlab.train.config import config_from_dict
from reweightlab.train.loop import train

BUDGET = replace(QUICK_BUDGET, offline_steps=3, offline_sequences_per_step=8, num_prompts=16,
                 rl_prompts_per_step=4, rl_samples_per_prompt=2)  # 3 RL steps
DATA = {"task": "generalpoints"}


def _jobs(out):
    def config(arm, seed, start=None):
        return lambda done: arm_config(ARMS[arm], BUDGET, done[start] if start else str(PACKAGED_BASE), out, seed,
                                       data=DATA)

    return [train_pool.Job("sft-s0", config("sft", 0), cost=1),
            train_pool.Job("grpo-s1", config("grpo", 1), cost=3),
            train_pool.Job("warmup_sft-s0", config("warmup_sft", 0, "sft-s0"), after=("sft-s0",), cost=9)]


def _weights(run_dir):
    return load_file(str(run_dir / "final" / "model.safetensors"))


def test_the_pool_trains_what_one_process_trains(tmp_path):
    done = []
    got = train_pool.run_pool(_jobs(tmp_path / "pool"), 2, {}, threads=1, quiet=(True, True),
                              on_done=lambda d: done.append(d.label))
    assert multiprocessing.active_children() == []
    # warmup_sft-s0 (the costliest) could only start once sft-s0 was done
    assert set(done) == {"sft-s0", "grpo-s1", "warmup_sft-s0"} and done.index("sft-s0") < done.index("warmup_sft-s0")
    assert got["warmup_sft-s0"].lines and "final model" in got["warmup_sft-s0"].lines[-1]
    started_from = json.loads((tmp_path / "pool" / "warmup_sft-s0" / "config.json").read_text())["model"]["path"]
    assert started_from == str(tmp_path / "pool" / "sft-s0" / "final")

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        models = {}
        for job in _jobs(tmp_path / "serial"):
            run_dir = train(config_from_dict(job.config(models)), progress=False, log=lambda *_: None)
            models[job.label] = str(run_dir / "final")
    finally:
        torch.set_num_threads(threads)
    for label in ("sft-s0", "grpo-s1", "warmup_sft-s0"):
        a, b = _weights(tmp_path / "pool" / label), _weights(tmp_path / "serial" / label)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), label
    # the comparison can fail: training moved the weights, differently per run
    base = load_file(str(PACKAGED_BASE / "model.safetensors"))
    for label in ("sft-s0", "warmup_sft-s0"):
        w = _weights(tmp_path / "pool" / label)
        assert any(not torch.equal(w[k], base[k]) for k in w if k in base), label
    a, b = _weights(tmp_path / "pool" / "sft-s0"), _weights(tmp_path / "pool" / "warmup_sft-s0")
    assert any(not torch.equal(a[k], b[k]) for k in a)


def test_a_workers_error_reaches_the_caller_and_stops_the_rest(tmp_path):
    jobs = _jobs(tmp_path)
    bad = jobs[1].config

    def broken(done):
        raw = bad(done)
        raw["optim"]["lr"] = -1.0  # refused when the worker reads the config
        return raw

    jobs[1] = replace(jobs[1], config=broken)
    with pytest.raises(ConfigError, match="lr"):
        train_pool.run_pool(jobs, 2, {}, threads=1, quiet=(True, True), on_done=lambda d: None)
    assert multiprocessing.active_children() == []


def test_jobs_must_wait_for_runs_in_the_pool(tmp_path):
    job = train_pool.Job("warmup_sft-s0", lambda done: {}, after=("sft-s0",))
    with pytest.raises(ValueError, match="sft-s0"):
        train_pool.run_pool([job], 2, {}, threads=1, quiet=(True, True), on_done=lambda d: None)


def test_train_workers(monkeypatch):
    monkeypatch.setattr(train_pool.torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv(train_pool.ENV_WORKERS, "1")
    assert train_pool.train_workers("generalpoints", 40) == 1
    monkeypatch.setenv(train_pool.ENV_WORKERS, "3")
    assert train_pool.train_workers("generalpoints", 40) == 3
    assert train_pool.train_workers("generalpoints", 2) == 2  # never more workers than runs
    monkeypatch.delenv(train_pool.ENV_WORKERS)
    monkeypatch.setattr(train_pool.os, "cpu_count", lambda: 16)
    assert train_pool.train_workers("generalpoints", 40) == 2
    monkeypatch.setattr(train_pool.os, "cpu_count", lambda: 1)
    assert train_pool.train_workers("generalpoints", 40) == 1
    monkeypatch.setattr(train_pool.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(train_pool.torch.cuda, "is_available", lambda: True)
    assert train_pool.train_workers("generalpoints", 40) == 1  # a GPU: one run at a time, in this process
    monkeypatch.setattr(train_pool.torch.cuda, "is_available", lambda: False)
    assert train_pool.train_workers("no-such-task-registered-here", 40) == 1
