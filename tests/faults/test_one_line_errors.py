"""Bad input after the config is read: one line `error: ...`, exit 2, and nothing left that locks a folder."""

import json

import pytest
import torch

from reweightlab.cli import main


def _one_error(capsys) -> str:
    errors = [x for x in capsys.readouterr().err.splitlines() if x.startswith("error")]
    assert len(errors) == 1, errors
    return errors[0]


def _train(model_dir, out, *extra):
    return main(["train", "method=sft", f"model.path={model_dir}", f"output_dir={out}", "optim.steps=1",
                 "optim.sequences_per_step=4", *extra, "--no-progress"])


@pytest.mark.parametrize("bad", [b"\xff\xfe", b"caf\xe9"])
def test_a_data_file_that_is_not_utf8_names_its_row(bad, tiny_model_dir, tmp_path, capsys):
    data = tmp_path / "d.jsonl"
    data.write_bytes(b'{"prompt": "1+1=", "completion": "2"}\n{"prompt": "' + bad + b'", "completion": "3"}\n')
    assert _train(tiny_model_dir, tmp_path / "out", f"data.path={data}") == 2
    byte = next(b for b in bad if b > 127)
    assert _one_error(capsys).startswith(f"error: {data}:row 2: not UTF-8 text (byte 0x{byte:02x}")
    assert not (tmp_path / "out").exists()


def test_a_metrics_file_that_is_not_utf8_names_its_line(tmp_path, capsys):
    from reweightlab.files import json_lines
    from reweightlab.report import ReportError

    path = tmp_path / "metrics.jsonl"
    path.write_bytes(b'{"step": 1}\n{"step": 2, "note": "\x80"}\n')
    with pytest.raises(ReportError, match=r"line 2: not UTF-8 text \(byte 0x80 at byte 22\)"):
        list(json_lines(path, lambda n, what: ReportError(f"{path}, line {n}: {what}")))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without CUDA")
def test_cuda_on_a_machine_without_it_is_one_line(tiny_model_dir, tmp_path, capsys):
    assert _train(tiny_model_dir, tmp_path / "out", "model.device=cuda") == 2
    assert "config key 'model.device': cuda was asked for, but this machine has no CUDA device" in _one_error(capsys)
    assert main(["probe", "--base", str(tiny_model_dir), "--task", "digits", "--device", "cuda:1",
                 "--out", str(tmp_path / "p"), "--no-progress"]) == 2
    assert "cuda:1 was asked for" in _one_error(capsys)
    assert not (tmp_path / "out").exists() and not (tmp_path / "p").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--chunk", "0"], "--chunk must be >= 1"), (["--chunk", "-3"], "--chunk must be >= 1"),
    (["reward_timeout=inf"], "config key 'reward_timeout': must be a finite number"),
])
def test_probe_settings_that_cannot_work_are_one_line(args, message, tiny_model_dir, tmp_path, capsys):
    assert main(["probe", "--base", str(tiny_model_dir), "--task", "digits", "--out", str(tmp_path / "p"),
                 "--no-progress", *args]) == 2
    assert message in _one_error(capsys)
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize("extra", [["data.reward_timeout=inf"], ["optim.lr=nan"], ["rl.kl_beta=-inf"]])
def test_non_finite_training_settings_are_one_line(extra, tiny_model_dir, tmp_path, capsys):
    method = "method=grpo" if extra[0].startswith("rl.") else "method=sft"
    extra = [*extra, "data.path=x.jsonl", "data.reward=exact_match"] if "reward" in extra[0] else extra
    assert main(["train", method, f"model.path={tiny_model_dir}", f"output_dir={tmp_path / 'o'}", *extra]) == 2
    assert "must be a finite number" in _one_error(capsys)


def test_a_run_that_fails_after_setup_leaves_its_folder_usable(tiny_model_dir, tmp_path, capsys):
    """Root cause: config.json and an empty metrics.jsonl were left behind and then locked the folder."""
    out = tmp_path / "run"
    common = ["method=filtered_sft", f"model.path={tiny_model_dir}", f"output_dir={out}", "optim.steps=1",
              "optim.sequences_per_step=4", "data.num_prompts=2", "data.base_samples_per_prompt=2"]
    assert main(["train", *common, "--no-progress"]) == 2  # an untrained model never reaches +5: nothing to train on
    assert "no sample reaches the reward threshold 5.0" in _one_error(capsys)
    assert not out.exists()
    out.mkdir()  # a folder the user made (empty) is kept, and again usable
    assert main(["train", *common, "--no-progress"]) == 2
    assert out.is_dir() and not any(out.iterdir())
    capsys.readouterr()
    assert main(["train", *common, "offline.threshold=-3", "--no-progress"]) == 0  # the same folder trains now
    assert (out / "final").is_dir() and json.loads((out / "config.json").read_text())["method"] == "filtered_sft"


@pytest.mark.parametrize(("body", "message"), [
    ("import os\nos._exit(7)\n", "ended while importing it (exit code 7)"),
    ("import sys\nsys.exit(3)\n", "loading it in the worker process failed: SystemExit: 3"),
])
def test_a_reward_module_that_exits_at_import_is_one_line_and_the_trainer_lives(body, message, tiny_model_dir,
                                                                              tmp_path, capsys):
    module = tmp_path / "bad_reward.py"
    module.write_text(body + "def f(prompts, completions, **c):\n    return [1.0] * len(completions)\n")
    data = tmp_path / "p.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"{i}+1="}) + "\n" for i in range(4)))
    code = main(["train", "method=grpo", f"model.path={tiny_model_dir}", f"data.path={data}",
                 f"data.reward={module}:f", f"output_dir={tmp_path / 'g'}", "optim.steps=1", "--no-progress"])
    assert code == 2  # the trainer (this very process) is alive to say so
    assert message in _one_error(capsys)
    assert not (tmp_path / "g").exists()
