"""Inputs longer than the model's context are one error naming the row, raised before any batch is
built for them (the tiny test model holds 96 positions)."""

import json

import pytest

from reweightlab.cli import main
from reweightlab.data.lengths import TooLongError, check_lengths, context_length


def _errors(capsys) -> list[str]:
    return [x for x in capsys.readouterr().err.splitlines() if x.startswith("error")]


def _rows(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_context_length_reads_the_usual_config_names():
    class Cfg:
        pass

    for key in ("max_position_embeddings", "n_positions", "n_ctx"):
        c = Cfg()
        setattr(c, key, 512)
        assert context_length(c) == 512
    assert context_length(Cfg()) is None
    with pytest.raises(TooLongError, match=r"^row 3: text is 1,000 tokens; the model holds 999"):
        check_lengths([10, 999, 1000], 999, lambda i: f"row {i + 1}", "text", "")
    check_lengths([10, 10**9], None, str, "text", "")  # a model that states no context: nothing checked


@pytest.mark.parametrize("chars", [200, 2_000_000])
def test_an_over_long_training_row_names_its_row(chars, tiny_model_dir, tmp_path, capsys):
    rows = [{"prompt": f"{i}+1=", "completion": str(i + 1), "split": "train"} for i in range(5)]
    rows[3]["completion"] = "7" * chars
    data = _rows(tmp_path / "d.jsonl", rows)
    out = tmp_path / "run"
    assert main(["train", "method=sft", f"model.path={tiny_model_dir}", f"data.path={data}", f"output_dir={out}",
                 "optim.steps=1", "--no-progress"]) == 2
    (err,) = _errors(capsys)
    # the prompt "3+1=" with BOS, the completion with EOS
    assert err.startswith(f"error: {data}:row 4: prompt + completion is {chars + 6:,} tokens; the model holds 96")
    assert "set data.max_length" in err
    assert not out.exists()
    # with data.max_length the row is cut instead, and the run trains
    assert main(["train", "method=sft", f"model.path={tiny_model_dir}", f"data.path={data}", f"output_dir={out}",
                 "optim.steps=1", "data.max_length=64", "--no-progress"]) == 0


def test_max_length_beyond_the_context_is_refused(tiny_model_dir, tmp_path, capsys):
    data = _rows(tmp_path / "d.jsonl", [{"prompt": "1+1=", "completion": "2", "split": "train"}] * 3)
    assert main(["train", "method=sft", f"model.path={tiny_model_dir}", f"data.path={data}",
                 f"output_dir={tmp_path / 'r'}", "data.max_length=4096", "--no-progress"]) == 2
    assert "config key 'data.max_length': 4096 is more than the model holds (96 tokens" in _errors(capsys)[0]


def test_an_over_long_rl_prompt_names_its_row(tiny_model_dir, tmp_path, capsys):
    rows = [{"prompt": f"{i}+1=", "answer": str(i + 1)} for i in range(4)]
    rows[2]["prompt"] = "9" * 90  # 90 + BOS + 8 new tokens > 96
    data = _rows(tmp_path / "p.jsonl", rows)
    out = tmp_path / "g"
    assert main(["train", "method=grpo", f"model.path={tiny_model_dir}", f"data.path={data}", "data.reward=exact_match",
                 f"output_dir={out}", "optim.steps=1", "rl.prompts_per_step=2", "rl.samples_per_prompt=2",
                 "data.max_new_tokens=8", "--no-progress"]) == 2
    (err,) = _errors(capsys)
    assert f"{data}:row 3: the prompt + 8 sampled tokens is 99 tokens; the model holds 96" in err
    assert not out.exists()


def test_an_over_long_reference_answer_stops_the_probe_naming_its_row(tiny_model_dir, tmp_path, capsys):
    rows = [{"prompt": f"{i}+1=", "answer": str(i + 1), "split": "test"} for i in range(6)]
    rows[4]["answer"] = "5" * 3_000_000
    data = _rows(tmp_path / "q.jsonl", rows)
    out = tmp_path / "p"
    assert main(["probe", "--base", str(tiny_model_dir), "--task", str(data), "--reward", "exact_match",
                 "--estimator", "likelihood", "--out", str(out), "--no-progress"]) == 2
    (err,) = _errors(capsys)
    assert f"{data}:row 5: the prompt + its longest reference solution is 3,000,006 tokens; the model holds 96" in err
    assert not out.exists()
