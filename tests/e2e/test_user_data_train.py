"""`reweightlab train` on a JSONL file the test writes: SFT on its rows, GRPO with user rewards."""

from __future__ import annotations

import json

import pytest

from reweightlab.cli import main

REWARDS = '''
import time
def correct(prompts, completions, answer, **columns):
    return [float(c.strip() == a) for c, a in zip(completions, answer)]
def flaky(prompts, completions, **columns):
    # a batch always raises (so samples are retried one by one); alone, prompt '1+1=' raises and '0+1=' hangs
    if len(completions) > 1:
        raise RuntimeError("batch too big")
    if prompts[0].startswith("1"):
        raise ValueError("cannot score this one")
    if prompts[0].startswith("0"):
        time.sleep(60)
    return [0.5]
'''


@pytest.fixture()
def data(tmp_path):
    rows = [{"prompt": f"{i % 7}+1=", "completion": str(i % 7 + 1), "answer": str(i % 7 + 1),
             "reward": float(i % 2), "split": "train"} for i in range(24)]
    path = tmp_path / "sums.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "user_rewards.py").write_text(REWARDS)
    return path


def _metrics(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_sft_and_filtered_sft_on_file_rows(tmp_path, tiny_model_dir, data, capsys):
    run = tmp_path / "sft"
    code = main(["train", f"model.path={tiny_model_dir}", f"data.path={data}", f"output_dir={run}",
                 "optim.steps=3", "optim.sequences_per_step=8", "data.max_length=6", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    assert (run / "final" / "config.json").is_file() and len(_metrics(run)) == 3
    assert "24 train rows" in capsys.readouterr().out
    # filtered SFT keeps the rows whose 'reward' field clears the threshold
    run2 = tmp_path / "fsft"
    code = main(["train", "method=filtered_sft", f"model.path={tiny_model_dir}", f"data.path={data}",
                 f"output_dir={run2}", "offline.threshold=1", "optim.steps=2", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    assert "12 training sequences" in capsys.readouterr().out


def test_bad_row_is_one_line_naming_file_row_field(tmp_path, tiny_model_dir, data, capsys):
    data.write_text(data.read_text() + json.dumps({"prompt": "x", "completion": ""}) + "\n")
    code = main(["train", f"model.path={tiny_model_dir}", f"data.path={data}", f"output_dir={tmp_path / 'r'}",
                 "--no-progress"])
    assert code == 2
    assert f"error: {data}:row 25: field 'completion' is empty" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()  # nothing written on bad input


def _grpo(tmp_path, model, data, reward, run, *extra):
    return main(["train", "method=grpo", f"model.path={model}", f"data.path={data}", f"data.reward={reward}",
                 f"output_dir={run}", "optim.steps=2", "rl.prompts_per_step=2", "rl.samples_per_prompt=3",
                 "data.max_new_tokens=3", *extra, "--no-progress"])


def test_grpo_with_a_module_reward(tmp_path, tiny_model_dir, data, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # 'user_rewards' imports from the current folder
    assert _grpo(tmp_path, tiny_model_dir, data, "user_rewards:correct", tmp_path / "g") == 0, capsys.readouterr().err
    m = _metrics(tmp_path / "g")
    assert len(m) == 2 and all(r["reward_errors"] == 0 and r["reward_timeouts"] == 0 for r in m)


def test_grpo_survives_a_reward_that_raises_and_hangs(tmp_path, tiny_model_dir, capsys):
    rows = [{"prompt": f"{i % 2}+1=", "answer": "x"} for i in range(8)]  # prompts only: RL needs no completion
    data = tmp_path / "prompts.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "user_rewards.py").write_text(REWARDS)
    run = tmp_path / "g"
    code = _grpo(tmp_path, tiny_model_dir, data, f"{tmp_path / 'user_rewards.py'}:flaky", run,
                 "data.reward_timeout=1", "data.reward_on_error=-1", "optim.steps=3")
    assert code == 0, capsys.readouterr().err
    m = _metrics(run)
    assert (run / "final").is_dir() and len(m) == 3
    # each batch holds one '1+1=' prompt (its samples raise) and one '0+1=' prompt (its first sample hangs;
    # the rest of the batch's retries are then scored as timeouts without being called): all 6 fail, counted
    assert all(r["reward_errors"] + r["reward_timeouts"] == 6 for r in m)
    assert sum(r["reward_timeouts"] for r in m) > 0
    assert all(r["reward"] == -1 for r in m)  # failures scored reward_on_error = -1
    out = capsys.readouterr().out
    assert "no answer within 1 s" in out or "cannot score this one" in out  # the first failures say why


def test_bad_reward_specs(tmp_path, tiny_model_dir, data, capsys):
    assert _grpo(tmp_path, tiny_model_dir, data, "nomodule_xyz:fn", tmp_path / "a") == 2
    assert "no module named 'nomodule_xyz'" in capsys.readouterr().err
    assert _grpo(tmp_path, tiny_model_dir, data, f"{tmp_path / 'user_rewards.py'}:missing", tmp_path / "b") == 2
    assert "has no attribute 'missing'" in capsys.readouterr().err
