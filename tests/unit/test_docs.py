"""The project's documents stay true: every repository path they name exists, and the code they show runs."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "examples" / "own_data" / "README.md"]
PATH = re.compile(r"`((?:src|docs|tests|benchmarks|examples)/[A-Za-z0-9_./-]+?)`")


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_repository_path_a_document_names_exists(doc):
    text = doc.read_text()
    named = sorted(set(PATH.findall(text)))
    missing = [p for p in named if not (ROOT / p.rstrip("/")).exists()]
    assert not missing, f"{doc.name} names paths that do not exist: {missing}"
    assert "SPEC.md" not in text and "DESIGN.md" not in text  # the project documents itself


def test_the_task_example_in_docs_tasks_runs():
    text = (ROOT / "docs" / "tasks.md").read_text()
    (code,) = re.findall(r"```python\n(.*?)```", text, re.S)
    scope: dict = {}
    exec(compile(code.replace('register_task("parity"', 'register_task("parity-doc-test"'), "docs/tasks.md", "exec"),
         scope)
    from reweightlab.tasks.registry import get_task

    task = get_task("parity-doc-test")
    problems = task.problems("id", "train", 3, 0)
    assert [task.verify(p, s).success for p, s in zip(problems, ["even", "odd", "odd"], strict=True)] == \
        [True, True, False]
    assert task.solutions(problems[2]) == ["even"]
