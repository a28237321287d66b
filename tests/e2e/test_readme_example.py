"""The README's "Your own model and data" example, run command by command exactly as written.

The commands live here and in examples/own_data/README.md; the test checks that the README text
holds each of them verbatim (and README.md too, once it has the section), then runs them in a fresh
folder holding a copy of examples/.
"""

from __future__ import annotations

import json
import runpy
import shlex
import shutil
import sys
from pathlib import Path

import pytest

from reweightlab.cli import main

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = [
    "python examples/own_data/make_tiny.py runs/own-data",
    "reweightlab train examples/own_data/sft.yaml",
    "reweightlab train examples/own_data/grpo.yaml",
    "reweightlab probe --base runs/own-data/model --trained runs/own-data/grpo/final "
    "--task runs/own-data/data.jsonl --reward examples/own_data/reward.py:correct_sum "
    "--num-prompts 8 --n 64 --budget-k 64 --max-new-tokens 4 --out runs/own-data/probe",
    "reweightlab report runs/own-data/probe",
]


def _section(text: str, title: str) -> str:
    start = text.index(title)
    end = text.find("\n## ", start + len(title))
    return text[start:] if end < 0 else text[start:end]


def test_commands_are_in_the_readmes():
    main_readme = (ROOT / "README.md").read_text()
    docs = {"examples/own_data/README.md": (ROOT / "examples" / "own_data" / "README.md").read_text(),
            # the quick start is this path, command for command, and so is the own-data section
            "README.md, quick start": _section(main_readme, "## Quick start"),
            "README.md, own data": _section(main_readme, "## Your own model and data")}
    for doc, text in docs.items():
        for cmd in COMMANDS:
            assert cmd in text, f"{doc} lacks the command: {cmd}"


@pytest.mark.slow
def test_readme_example_runs(tmp_path, monkeypatch, capsys):
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    for cmd in COMMANDS:
        argv = shlex.split(cmd)
        if argv[0] == "python":
            monkeypatch.setattr(sys, "argv", argv[1:])
            runpy.run_path(argv[1], run_name="__main__")
        else:
            quiet = [] if argv[1] == "report" else ["--no-progress"]  # report has no progress bar to silence
            assert main(argv[1:] + quiet) == 0, capsys.readouterr().err
    assert (tmp_path / "runs/own-data/sft/final/config.json").is_file()
    metrics = [json.loads(x) for x in (tmp_path / "runs/own-data/grpo/metrics.jsonl").read_text().splitlines()]
    assert len(metrics) == 3 and "reward_errors" in metrics[0]
    # the graded reward gives GRPO something to learn from: the model moves off its start
    assert all(r["reward_errors"] == 0 for r in metrics) and any(r["frac_reward_zero_std"] < 1 for r in metrics)
    from reweightlab.models import load_model

    start = load_model(tmp_path / "runs/own-data/sft/final").state_dict()
    after = load_model(tmp_path / "runs/own-data/grpo/final").state_dict()
    assert max(float((after[k] - start[k]).abs().max()) for k in start) > 1e-6
    assert "warning: in every batch" not in capsys.readouterr().out
    summary = json.loads((tmp_path / "runs/own-data/probe/probe.json").read_text())
    assert summary["estimator"] == "sampling" and summary["num_prompts"] == 8
    # the report finds the GRPO run's training curves beside its final/ folder
    page = (tmp_path / "runs/own-data/probe/report.html").read_text(encoding="utf-8")
    assert "No training curves" not in page and "RL: grpo" in page
