"""report_to: tensorboard (event files read back offline), log_completions, eval_every."""

from __future__ import annotations

import json

import pytest

from reweightlab.cli import main

pytest.importorskip("tensorboard")


def _metrics(run):
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


def _grpo(model_dir, out, *extra):
    return main(["train", "method=grpo", f"model.path={model_dir}", f"output_dir={out}", "data.task=digits",
                 "optim.steps=3", "rl.prompts_per_step=2", "rl.samples_per_prompt=3", "data.max_new_tokens=6",
                 "data.num_prompts=8", *extra, "--no-progress"])


def test_tensorboard_event_files_hold_every_logged_number(tiny_model_dir, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "g"
    assert _grpo(tiny_model_dir, run, "report_to=tensorboard") == 0
    events = EventAccumulator(str(run / "tensorboard")).Reload()
    rows = _metrics(run)
    for key in ("loss", "reward", "kl", "completions/clipped_ratio", "learning_rate"):
        if key not in rows[0]:
            continue
        logged = [(e.step, e.value) for e in events.Scalars(key)]
        assert logged == [(r["step"], pytest.approx(r[key], rel=1e-6, abs=1e-7)) for r in rows], key


def test_a_tracker_that_is_not_installed_is_one_line_before_anything(tiny_model_dir, tmp_path, capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    assert _grpo(tiny_model_dir, tmp_path / "w", "report_to=wandb") == 2
    assert "config key 'report_to': wandb needs the wandb package (pip install wandb)" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()


def test_log_completions_writes_each_logged_batch(tiny_model_dir, tmp_path):
    run = tmp_path / "c"
    assert _grpo(tiny_model_dir, run, "log_completions=true", "log_every=2") == 0
    rows = [json.loads(x) for x in (run / "completions.jsonl").read_text().splitlines()]
    assert sorted({r["step"] for r in rows}) == [2, 3]  # logged steps: every 2nd and the last
    assert len(rows) == 2 * 2 * 3 and all(set(r) == {"step", "prompt", "completion", "reward", "success", "reason"}
                                           for r in rows)
    # the digits task's reward is the share of digit characters: the logged reward is the completion's
    assert all(r["reward"] == pytest.approx(sum(c.isdigit() for c in r["completion"]) / max(1, len(r["completion"])))
               for r in rows)


def test_eval_every_logs_held_out_pass_at_k(tiny_model_dir, tmp_path):
    run = tmp_path / "e"
    assert _grpo(tiny_model_dir, run, "eval_every=2", "eval_prompts=4", "eval_samples=4", "log_every=3") == 0
    rows = _metrics(run)
    assert [r["step"] for r in rows] == [2, 3]  # step 2 logged for its evaluation, step 3 as the last
    ev = rows[0]
    assert set(k for k in ev if k.startswith("eval/")) == {"eval/pass@1", "eval/pass@4", "eval/reward"}
    assert 0.0 <= ev["eval/pass@1"] <= ev["eval/pass@4"] <= 1.0
    assert not any(k.startswith("eval/") for k in rows[1])
    assert main(["train", "method=sft", f"model.path={tiny_model_dir}", f"output_dir={tmp_path / 'x'}",
                 "log_completions=true", "--no-progress"]) == 2
