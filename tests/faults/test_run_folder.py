"""A run owns its folder: it writes only into a new or empty one, holds a lock on it for its life,
and leaves it as it found it when it stops before training anything."""

import hashlib
import os
import shutil

import pytest

from reweightlab.cli import main
from reweightlab.files import LOCK_NAME, FolderError, FolderLock, check_new_folder


def _errors(capsys) -> list[str]:
    return [x for x in capsys.readouterr().err.splitlines() if x.startswith("error")]


def _train(model_dir, out, *extra):
    return main(["train", "method=sft", f"model.path={model_dir}", f"output_dir={out}", "optim.steps=1",
                 "optim.sequences_per_step=4", *extra, "--no-progress"])


def _digest(folder) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_model_folder_as_output_dir_is_refused_and_left_untouched(tiny_model_dir, tmp_path, capsys):
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    before = _digest(model)
    assert _train(tiny_model_dir, model) == 2
    (err,) = _errors(capsys)
    assert "output_dir" in err and "is a model folder" in err and "config.json" in err
    assert _digest(model) == before  # the model still loads: its config.json was not rewritten
    assert not (model / LOCK_NAME).exists()


def test_the_base_model_itself_as_output_dir_is_refused(tiny_model_dir, tmp_path, capsys):
    model = tmp_path / "m"
    shutil.copytree(tiny_model_dir, model)
    before = _digest(model)
    assert _train(model, model) == 2
    assert "is a model folder" in _errors(capsys)[0]
    assert _digest(model) == before


@pytest.mark.parametrize("out", ["", " "])
def test_an_empty_output_dir_never_means_the_current_folder(out, tiny_model_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert _train(tiny_model_dir, out) == 2
    (err,) = _errors(capsys)
    assert "output_dir is empty" in err
    assert list(tmp_path.iterdir()) == []


def test_a_folder_with_someone_elses_files_is_refused(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "notes"
    (out / "sub").mkdir(parents=True)
    (out / "thesis.tex").write_text("chapter 1")
    assert _train(tiny_model_dir, out) == 2
    (err,) = _errors(capsys)
    assert "is not empty" in err and "thesis.tex" in err and "sub/" in err
    assert sorted(p.name for p in out.iterdir()) == ["sub", "thesis.tex"]


def test_a_folder_another_run_holds_is_refused_naming_its_pid(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "busy"
    held = FolderLock(out, "output_dir").acquire()  # as another run would hold it (flock: per open file)
    try:
        assert _train(tiny_model_dir, out) == 2
        (err,) = _errors(capsys)
        assert "is in use by another reweightlab run" in err and f"pid {os.getpid()}" in err
        assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]
    finally:
        held.release()
    assert list(out.iterdir()) == []


def test_a_lock_left_by_a_killed_run_does_not_block(tiny_model_dir, tmp_path):
    """The OS drops a dead process's lock; the stale lock file alone is not 'someone else's file'."""
    out = tmp_path / "stale"
    out.mkdir()
    (out / LOCK_NAME).write_text("999999\n")
    assert _train(tiny_model_dir, out) == 0
    assert (out / "final" / "config.json").is_file()
    assert not (out / LOCK_NAME).exists()  # released at the end of the run


def test_an_empty_existing_folder_is_used_and_kept(tiny_model_dir, tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    assert _train(tiny_model_dir, out) == 0
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "final", "metrics.jsonl"]


def test_a_run_that_fails_before_training_gives_back_an_existing_empty_folder(tiny_model_dir, tmp_path):
    out = tmp_path / "kept"
    out.mkdir()
    assert _train(tiny_model_dir, out, "data.path=" + str(tmp_path / "missing.jsonl")) == 2
    assert out.is_dir() and list(out.iterdir()) == []


def test_the_lock_is_checked_again_once_held(tmp_path):
    """Two runs that both saw an empty folder: the second to take the lock sees the first's files."""
    out = tmp_path / "race"
    first = FolderLock(out, "output_dir").acquire()
    (out / "config.json").write_text("{}")
    (out / "metrics.jsonl").write_text("")
    first.release()
    with pytest.raises(FolderError, match="metrics.jsonl"):
        FolderLock(out, "output_dir").acquire()
    with pytest.raises(FolderError, match="is a file"):
        check_new_folder(out / "config.json", "output_dir")


def test_probe_out_must_be_new_or_empty(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "p"
    out.mkdir()
    (out / "data.csv").write_text("x\n")
    assert main(["probe", "--base", str(tiny_model_dir), "--task", "digits", "--out", str(out),
                 "--no-progress"]) == 2
    (err,) = _errors(capsys)
    assert "--out" in err and "is not empty" in err and "data.csv" in err
    assert sorted(p.name for p in out.iterdir()) == ["data.csv"]


def test_two_runs_started_together_on_one_folder_one_trains_the_other_is_refused(tiny_model_dir, tmp_path):
    import json
    import subprocess
    import sys

    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"{i}+1=", "completion": str(i + 1)}) + "\n" for i in range(9)))
    out = tmp_path / "shared"
    cmd = [sys.executable, "-m", "reweightlab.cli", "train", "method=sft", f"model.path={tiny_model_dir}",
           f"data.path={data}", f"output_dir={out}", "optim.steps=40", "optim.sequences_per_step=2", "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    assert sorted(rc for rc, _ in results) == [0, 2], results
    (refused,) = [err for rc, err in results if rc == 2]
    assert any(why in refused for why in ("is in use by another reweightlab run", "holds an earlier",
                                          "already holds a finished run")), refused
    steps = [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] == 40  # one run's metrics, not two interleaved
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "final", "metrics.jsonl"]


def test_pretrain_out_never_replaces_a_model_folder(tiny_model_dir, tmp_path, capsys):
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    before = _digest(model)
    assert main(["pretrain", "--quick", "--steps", "1", "--out", str(model), "--no-progress"]) == 2
    assert "--out" in _errors(capsys)[0] and _digest(model) == before


def test_stale_temporaries_of_dead_processes_are_cleaned_and_an_old_copy_put_back(tmp_path):
    import subprocess
    import sys

    from reweightlab.files import remove_stale_temporaries

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    ck = tmp_path / "checkpoints"
    (ck / f".step-000004.tmp-{dead}").mkdir(parents=True)  # killed while writing step 4
    (ck / f".step-000002.old-{dead}").mkdir()  # killed between moving step 2 aside and renaming the new one
    (ck / f".step-000002.old-{dead}" / "model.safetensors").write_text("w")
    (ck / f".step-000006.tmp-{os.getpid()}").mkdir()  # a live process's write: not ours to touch
    cleaned = remove_stale_temporaries(tmp_path)
    assert len(cleaned) == 2
    assert sorted(p.name for p in ck.iterdir()) == [f".step-000006.tmp-{os.getpid()}", "step-000002"]
    assert (ck / "step-000002" / "model.safetensors").read_text() == "w"
