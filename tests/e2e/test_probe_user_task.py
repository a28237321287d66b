"""`reweightlab probe --task data.jsonl --reward SPEC`: sampling estimator; likelihood when rows carry answers."""

from __future__ import annotations

import json

from reweightlab.cli import main


def _write(tmp_path, with_answers: bool):
    rows = []
    for i in range(6):
        row = {"prompt": f"{i}+0=", "split": "test", "target": str(i)}
        if with_answers:
            row["answer"] = str(i)
        rows.append(row)
    path = tmp_path / "user.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "rw.py").write_text(
        "def same(prompts, completions, target, **columns):\n"
        "    return [float(c.strip() == t) for c, t in zip(completions, target)]\n"
    )
    return path


def _probe(tmp_path, model, path, *extra):
    out = tmp_path / "probe"
    code = main(["probe", "--base", str(model), "--trained", f"same={model}", "--task", str(path),
                 "--reward", f"{tmp_path / 'rw.py'}:same", "--num-prompts", "6", "--max-new-tokens", "3",
                 "--no-search", "--keep", "4", "--no-progress", "--out", str(out), *extra])
    return code, out


def test_probe_user_task_sampling(tmp_path, tiny_model_dir, capsys):
    code, out = _probe(tmp_path, tiny_model_dir, _write(tmp_path, with_answers=False), "--n", "32", "--budget-k", "32")
    assert code == 0, capsys.readouterr().err
    summary = json.loads((out / "probe.json").read_text())
    assert summary["estimator"] == "sampling" and summary["num_prompts"] == 6
    assert set(summary["per_model"]["base"]["regimes_by_estimator"]) == {"sampling"}  # no answers: no likelihood
    rows = [json.loads(line) for line in (out / "probe_prompts.jsonl").read_text().splitlines()]
    assert [r["prompt"] for r in rows] == [f"{i}+0=" for i in range(6)]


def test_probe_user_task_likelihood(tmp_path, tiny_model_dir, capsys):
    code, out = _probe(tmp_path, tiny_model_dir, _write(tmp_path, with_answers=True), "--n", "32", "--budget-k", "32",
                       "--estimator", "likelihood")
    assert code == 0, capsys.readouterr().err
    summary = json.loads((out / "probe.json").read_text())
    assert summary["estimator"] == "likelihood"
    assert set(summary["per_model"]["base"]["regimes_by_estimator"]) == {"sampling", "likelihood"}
    row = json.loads((out / "probe_prompts.jsonl").read_text().splitlines()[0])
    assert 0 < row["models"]["base"]["p_known"] < 1  # pi('0' + EOS | '0+0=') of an untrained model


def test_probe_user_task_needs_a_reward(tmp_path, tiny_model_dir, capsys):
    path = _write(tmp_path, with_answers=False)
    code = main(["probe", "--base", str(tiny_model_dir), "--task", str(path), "--no-progress",
                 "--out", str(tmp_path / "p")])
    assert code == 2 and "name a reward function" in capsys.readouterr().err
