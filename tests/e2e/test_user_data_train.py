"""`reweightlab train` on a JSONL file the test writes: SFT on its rows, GRPO with user rewards."""

from __future__ import annotations

import json
import re

import pytest

from reweightlab.cli import main

REWARDS = '''
import time
def correct(prompts, completions, answer, **columns):
    return [float(c.strip() == a) for c, a in zip(completions, answer)]
def flaky(prompts, completions, **columns):
    # a batch always raises (so samples are retried one by one); alone, prompt '1+1=' raises
    if len(completions) > 1:
        raise RuntimeError("batch too big")
    if prompts[0].startswith("1"):
        raise ValueError("cannot score this one")
    return [0.5]
def trl_accuracy(completions, answer, **kwargs):
    # written for TRL: completions and the row's field by keyword, the rest in **kwargs
    assert "prompts" in kwargs and "completion_ids" in kwargs
    return [float(c.strip() == a) for c, a in zip(completions, answer)]
def constant(completions, **kwargs):
    return [1.0] * len(completions)
def down(prompts, completions, **columns):
    raise ConnectionError("the grading server is down")
def hangs(prompts, completions, **columns):
    time.sleep(60)
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


@pytest.mark.parametrize("method", ["grpo", "filtered_sft"])
def test_a_reward_written_for_trl_works_as_written(method, tmp_path, tiny_model_dir, capsys):
    rows = [{"prompt": f"{i % 7}+1=", "answer": str(i % 7 + 1), "completion": str(i % 7 + 1)} for i in range(12)]
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "user_rewards.py").write_text(REWARDS)
    run = tmp_path / method
    # filtered SFT with data.reward samples the model (16 per prompt) and keeps those scoring >= 0: all
    extra = ["offline.threshold=0", "data.base_samples_per_prompt=2"] if method == "filtered_sft" else []
    code = main(["train", f"method={method}", f"model.path={tiny_model_dir}", f"data.path={data}",
                 f"data.reward={tmp_path / 'user_rewards.py'}:trl_accuracy", f"output_dir={run}", "optim.steps=2",
                 "rl.prompts_per_step=2", "rl.samples_per_prompt=3", "data.max_new_tokens=3", *extra,
                 "--no-progress"] if method == "grpo" else
                ["train", f"method={method}", f"model.path={tiny_model_dir}", f"data.path={data}",
                 f"data.reward={tmp_path / 'user_rewards.py'}:trl_accuracy", f"output_dir={run}", "optim.steps=2",
                 *extra, "--no-progress"])
    assert code == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "reward errors" not in out or "'reward_errors': 0" in out
    assert (run / "final").is_dir()
    if method == "grpo":
        assert all(r["reward_errors"] == 0 for r in _metrics(run))
    else:
        assert re.search(r"\[filtered_sft\] kept (\d+) of \1 sequences \(reward >= offline.threshold = 0\)", out)


def test_grpo_survives_a_reward_that_fails_on_some_samples(tmp_path, tiny_model_dir, capsys):
    rows = [{"prompt": f"{i % 2}+1=", "answer": "x"} for i in range(8)]  # prompts only: RL needs no completion
    data = tmp_path / "prompts.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "user_rewards.py").write_text(REWARDS)
    run = tmp_path / "g"
    code = _grpo(tmp_path, tiny_model_dir, data, f"{tmp_path / 'user_rewards.py'}:flaky", run,
                 "data.reward_on_error=-1", "optim.steps=3", "rl.prompts_per_step=8")
    assert code == 0, capsys.readouterr().err
    m = _metrics(run)
    assert (run / "final").is_dir() and len(m) == 3
    # every batch holds all 8 prompts x 3 samples: the 12 samples of the '1+1=' prompts raise, counted
    assert all(r["reward_errors"] == 12 and r["reward_timeouts"] == 0 for r in m)
    assert all(r["reward"] == pytest.approx((12 * -1 + 12 * 0.5) / 24) for r in m)  # failures scored -1
    assert "cannot score this one" in capsys.readouterr().out  # the first failures say why


def test_grpo_warns_when_no_batch_had_anything_to_learn(tmp_path, tiny_model_dir, capsys):
    from reweightlab.models import load_model

    rows = [{"prompt": f"{i}+1=", "answer": "x"} for i in range(4)]
    data = tmp_path / "prompts.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "user_rewards.py").write_text(REWARDS)
    run = tmp_path / "g"
    assert _grpo(tmp_path, tiny_model_dir, data, f"{tmp_path / 'user_rewards.py'}:constant", run) == 0
    out = capsys.readouterr().out
    assert ("warning: in every batch all 3 samples of each prompt scored the same reward (metric "
            "frac_reward_zero_std); the policy did not move") in out
    assert all(r["frac_reward_zero_std"] == 1 and r["adv_all_zero"] == 1 for r in _metrics(run))
    start, after = load_model(tiny_model_dir).state_dict(), load_model(run / "final").state_dict()
    assert all(bool((after[k] == start[k]).all()) for k in start)  # what the warning says is so


@pytest.mark.parametrize("name, why", [("down", "ConnectionError: the grading server is down"),
                                       ("hangs", "no answer within 1 s")])
def test_grpo_stops_when_the_reward_fails_on_every_sample(name, why, tmp_path, tiny_model_dir, capsys):
    rows = [{"prompt": f"{i}+1=", "answer": "x"} for i in range(4)]
    data = tmp_path / "prompts.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "user_rewards.py").write_text(REWARDS)
    run = tmp_path / "g"
    assert _grpo(tmp_path, tiny_model_dir, data, f"{tmp_path / 'user_rewards.py'}:{name}", run,
                 "data.reward_timeout=1") == 2
    errors = [x for x in capsys.readouterr().err.splitlines() if x.startswith("error")]
    assert len(errors) == 1 and "failed on every sample of its first batch" in errors[0] and why in errors[0]
    assert not run.exists()  # nothing trained: no final/, no folder


def test_filtered_sft_stops_when_scoring_its_samples_fails_on_every_one(tmp_path, tiny_model_dir, capsys):
    rows = [{"prompt": f"{i}+1=", "completion": str(i + 1), "split": "train"} for i in range(6)]
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "user_rewards.py").write_text(REWARDS)
    run = tmp_path / "f"
    assert main(["train", "method=filtered_sft", f"model.path={tiny_model_dir}", f"data.path={data}",
                 f"data.reward={tmp_path / 'user_rewards.py'}:down", f"output_dir={run}", "optim.steps=1",
                 "data.base_samples_per_prompt=2", "--no-progress"]) == 2
    # with data.reward, filtered SFT samples the model: 6 prompts x 2 samples, one reward call
    assert "failed on every sample of its first batch (12 samples" in capsys.readouterr().err
    assert not run.exists()


def test_bad_reward_specs(tmp_path, tiny_model_dir, data, capsys):
    assert _grpo(tmp_path, tiny_model_dir, data, "nomodule_xyz:fn", tmp_path / "a") == 2
    assert "no module named 'nomodule_xyz'" in capsys.readouterr().err
    assert _grpo(tmp_path, tiny_model_dir, data, f"{tmp_path / 'user_rewards.py'}:missing", tmp_path / "b") == 2
    assert "has no attribute 'missing'" in capsys.readouterr().err


def test_own_data_defaults_follow_the_data(tmp_path, tiny_model_dir, data, capsys):
    """Rows with a score column: filtered SFT keeps those >= data.success_threshold (the threshold's
    default), says how many it kept, and config.json records what was used (no data.task)."""
    run = tmp_path / "rows"
    assert main(["train", "method=filtered_sft", f"model.path={tiny_model_dir}", f"data.path={data}",
                 f"output_dir={run}", "optim.steps=1", "--no-progress"]) == 0, capsys.readouterr().err
    assert "[filtered_sft] kept 12 of 24 sequences (reward >= offline.threshold = 1)" in capsys.readouterr().out
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["offline"]["threshold"] == 1.0 and cfg["data"]["task"] is None
    assert cfg["resolved"]["data_source"] == "file"
    # with data.reward (and whatever the rows carry), it samples the model and scores the samples
    (tmp_path / "user_rewards.py").write_text(REWARDS)
    run2 = tmp_path / "sampled"
    assert main(["train", "method=filtered_sft", f"model.path={tiny_model_dir}", f"data.path={data}",
                 f"data.reward={tmp_path / 'user_rewards.py'}:constant", "data.base_samples_per_prompt=2",
                 f"output_dir={run2}", "optim.steps=1", "data.max_new_tokens=3", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"\[filtered_sft\] kept (\d+) of \1 sequences \(reward >= offline.threshold = 1\)", out)
    cfg2 = json.loads((run2 / "config.json").read_text())
    assert cfg2["resolved"]["data_source"] == "base_samples" and cfg2["offline"]["threshold"] == 1.0


def test_the_card_game_keeps_its_own_threshold(tmp_path, tiny_model_dir):
    from reweightlab.tasks.generalpoints.task import REWARD_CORRECT
    from reweightlab.train.config import load_config
    from reweightlab.train.loop import setup

    cfg = load_config(None, ["method=filtered_sft", f"model.path={tiny_model_dir}", f"output_dir={tmp_path / 'r'}"])
    assert cfg.offline.threshold is None
    s = setup(cfg, progress=False)
    try:
        assert s.cfg.offline.threshold == float(REWARD_CORRECT)
        assert json.loads((s.run_dir / "config.json").read_text())["offline"]["threshold"] == float(REWARD_CORRECT)
    finally:
        s.lock.release()
