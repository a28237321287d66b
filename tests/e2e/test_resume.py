"""`reweightlab train --resume`: a run interrupted after a checkpoint and resumed takes the steps an
uninterrupted run takes (same metrics, same final weights); --overwrite; model.ref_path."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

import reweightlab.train.loop as loop
from reweightlab.cli import main
from reweightlab.files import LOCK_NAME
from reweightlab.models import load_model

CASES = {  # an offline method, one with an EMA copy and a reference, and RL with a KL penalty
    "sft": ["method=sft", "optim.sequences_per_step=8", "data.num_prompts=8"],
    "iw_sft": ["method=iw_sft", "offline.threshold=-3", "optim.sequences_per_step=8", "data.num_prompts=8",
               "data.base_samples_per_prompt=4", "data.max_new_tokens=8"],
    "grpo": ["method=grpo", "data.task=digits", "rl.prompts_per_step=4", "rl.samples_per_prompt=3", "rl.kl_beta=0.1",
             "data.num_prompts=8", "data.max_new_tokens=8", "rl.epochs_per_batch=2"],
}
TIMING = ("tokens_per_s", "total_tokens_per_s", "sample_tokens_per_s", "time_training", "time_generation")
# Resuming rebuilds the same data and restores every state: the steps are the same computations. The
# tolerance allows only for float reassociation (none is expected on one CPU thread).
TOL = 1e-6


def _args(model_dir, out, extra, steps=6):
    return ["train", f"model.path={model_dir}", f"output_dir={out}", f"optim.steps={steps}", "checkpoint_every=2",
            "optim.lr=3e-3", *extra, "--no-progress"]


def _metrics(run):
    return [{k: v for k, v in json.loads(x).items() if k not in TIMING}
            for x in (run / "metrics.jsonl").read_text().splitlines()]


def _interrupt_after_checkpoint(monkeypatch, at_step: int):
    real = loop._maybe_checkpoint

    def checkpoint_then_stop(s, step, state=None):
        real(s, step, state)
        if step + 1 == at_step:
            raise KeyboardInterrupt

    monkeypatch.setattr(loop, "_maybe_checkpoint", checkpoint_then_stop)


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_resumed_run_takes_the_steps_an_uninterrupted_one_takes(case, tiny_model_dir, tmp_path, monkeypatch, capsys):
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    assert main(_args(tiny_model_dir, whole, CASES[case])) == 0
    with monkeypatch.context() as m:
        _interrupt_after_checkpoint(m, at_step=4)
        assert main(_args(tiny_model_dir, cut, CASES[case])) == 130
    assert not (cut / "final").exists() and [r["step"] for r in _metrics(cut)] == [1, 2, 3, 4]
    # a step logged after the last checkpoint is taken again: the metrics are cut back to the checkpoint
    with (cut / "metrics.jsonl").open("a") as fh:
        fh.write(json.dumps({"step": 5, "loss": 123.0}) + "\n")
    shutil.rmtree(cut / "checkpoints" / "step-000004")  # as if killed while writing it: step 2 is the last
    capsys.readouterr()
    assert main(_args(tiny_model_dir, cut, CASES[case]) + ["--resume"]) == 0
    assert "from step-000002 (step 2 of 6)" in capsys.readouterr().out
    a, b = _metrics(whole), _metrics(cut)
    assert [r["step"] for r in b] == [1, 2, 3, 4, 5, 6]
    for ra, rb in zip(a, b, strict=True):
        assert ra.keys() == rb.keys()
        for k in ra:
            assert rb[k] == pytest.approx(ra[k], rel=TOL, abs=TOL), (case, ra["step"], k)
    wa, wb = load_model(whole / "final").state_dict(), load_model(cut / "final").state_dict()
    assert max(float((wa[k] - wb[k]).abs().max()) for k in wa) <= TOL
    assert not (cut / LOCK_NAME).exists()


def test_resume_says_where_it_continues_from(tiny_model_dir, tmp_path, monkeypatch, capsys):
    out = tmp_path / "r"
    with monkeypatch.context() as m:
        _interrupt_after_checkpoint(m, at_step=2)
        assert main(_args(tiny_model_dir, out, CASES["sft"])) == 130
    capsys.readouterr()
    assert main(_args(tiny_model_dir, out, CASES["sft"]) + ["--resume"]) == 0
    assert f"[resume] continuing {out} from step-000002 (step 2 of 6)" in capsys.readouterr().out


def test_resume_refuses_what_it_cannot_continue(tiny_model_dir, tmp_path, monkeypatch, capsys):
    def error():
        return [x for x in capsys.readouterr().err.splitlines() if x.startswith("error")][0]

    assert main(_args(tiny_model_dir, tmp_path / "none", CASES["sft"]) + ["--resume"]) == 2
    assert "holds no run to resume (no config.json)" in error()
    done = tmp_path / "done"
    assert main(_args(tiny_model_dir, done, CASES["sft"])) == 0
    assert main(_args(tiny_model_dir, done, CASES["sft"]) + ["--resume"]) == 2
    assert "already finished (final/)" in error()
    cut = tmp_path / "cut"
    with monkeypatch.context() as m:
        _interrupt_after_checkpoint(m, at_step=2)
        assert main(_args(tiny_model_dir, cut, CASES["sft"])) == 130
    assert main(_args(tiny_model_dir, cut, [*CASES["sft"], "optim.lr=1e-3"]) + ["--resume"]) == 2
    assert "these differ from" in (e := error()) and "optim.lr (run: 0.003, now: 0.001)" in e
    shutil.rmtree(cut / "checkpoints")
    assert main(_args(tiny_model_dir, cut, CASES["sft"]) + ["--resume"]) == 2
    assert "no checkpoint with its trainer state" in error()
    with pytest.raises(SystemExit, match="choose one"):
        main(_args(tiny_model_dir, cut, CASES["sft"]) + ["--resume", "--overwrite"])


def test_overwrite_replaces_an_earlier_run_and_nothing_else(tiny_model_dir, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(_args(tiny_model_dir, run, CASES["sft"], steps=2)) == 0
    assert main(_args(tiny_model_dir, run, CASES["sft"], steps=2)) == 2  # without --overwrite: refused
    capsys.readouterr()
    assert main(_args(tiny_model_dir, run, CASES["sft"], steps=3) + ["--overwrite"]) == 0
    assert [r["step"] for r in _metrics(run)] == [1, 2, 3]
    notes = run / "notes.txt"
    notes.write_text("mine")
    assert main(_args(tiny_model_dir, run, CASES["sft"], steps=2) + ["--overwrite"]) == 2
    assert "notes.txt" in capsys.readouterr().err and notes.read_text() == "mine"
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    assert main(_args(tiny_model_dir, model, CASES["sft"], steps=2) + ["--overwrite"]) == 2
    assert "replaces only an earlier reweightlab run" in capsys.readouterr().err
    assert (model / "model.safetensors").is_file()


def test_a_checkpoint_as_a_new_start_is_its_own_reference_unless_ref_path_says(tiny_model_dir, tmp_path, capsys):
    first = tmp_path / "first"
    assert main(_args(tiny_model_dir, first, CASES["sft"], steps=4)) == 0
    ckpt = first / "checkpoints" / "step-000004"
    grpo = [a for a in CASES["grpo"] if not a.startswith("rl.epochs")]
    capsys.readouterr()
    assert main(_args(ckpt, tmp_path / "own", grpo, steps=1)) == 0
    assert f"reference pi_ref (KL / importance weights): {ckpt} (the starting model" in capsys.readouterr().out
    own = _metrics(tmp_path / "own")[0]
    assert main(_args(ckpt, tmp_path / "base", [*grpo, f"model.ref_path={tiny_model_dir}"], steps=1)) == 0
    assert f"reference pi_ref (KL / importance weights): {tiny_model_dir}" in capsys.readouterr().out
    base = _metrics(tmp_path / "base")[0]
    # the first batch is sampled from the policy before any update: KL to itself is 0, to the base not
    assert own["kl"] == pytest.approx(0.0, abs=1e-6) and base["kl"] > 1e-3
    assert torch.isfinite(torch.tensor(base["loss"]))
    assert main(_args(tiny_model_dir, tmp_path / "x", [*CASES["sft"], f"model.ref_path={tiny_model_dir}"])) == 2
    assert "config key 'model.ref_path' does nothing for method 'sft'" in capsys.readouterr().err
