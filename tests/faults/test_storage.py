"""A disk that refuses a write (full, read-only) is one line naming what could not be written; the
checkpoints already written stay loadable and no temporary is left behind."""

import os
import shutil
import subprocess
import uuid

import pytest

from reweightlab.cli import main
from reweightlab.files import LOCK_NAME, storage_reason
from reweightlab.models import load_model


def _errors(capsys) -> list[str]:
    return [x for x in capsys.readouterr().err.splitlines() if x.startswith("error")]


def _train(model_dir, out, *extra):
    return main(["train", "method=sft", f"model.path={model_dir}", f"output_dir={out}", "optim.steps=3",
                 "optim.sequences_per_step=4", "checkpoint_every=1", *extra, "--no-progress"])


def _hidden(folder) -> list[str]:
    return [str(p) for p in folder.rglob(".*")]


def test_storage_reason_reads_os_errors_and_wrapped_ones():
    assert storage_reason(OSError(28, "No space left on device")) == "No space left on device"
    assert storage_reason(PermissionError(13, "Permission denied")) == "Permission denied"
    assert storage_reason(RuntimeError("I/O error: Read-only file system (os error 30)")) == os.strerror(30)
    assert storage_reason(FileNotFoundError(2, "No such file")) is None  # a missing input is not the disk's fault
    assert storage_reason(RuntimeError("os error 2")) is None
    assert storage_reason(ValueError("bad")) is None


def test_disk_full_at_a_checkpoint_keeps_the_earlier_one(tiny_model_dir, tmp_path, monkeypatch, capsys):
    import reweightlab.models.saving as saving

    real, calls = saving.save_final_weights, []

    def fills_up(model, tokenizer, tmp_dir, **kw):
        calls.append(tmp_dir)
        if len(calls) == 2:  # the second checkpoint: half-written, then the disk is full
            (tmp_dir / "model.safetensors").write_bytes(b"\0" * 100)
            raise RuntimeError("Error while serializing: I/O error: No space left on device (os error 28)")
        return real(model, tokenizer, tmp_dir, **kw)

    monkeypatch.setattr(saving, "save_final_weights", fills_up)
    out = tmp_path / "run"
    assert _train(tiny_model_dir, out) == 2
    (err,) = _errors(capsys)
    assert "cannot write the model folder" in err and "step-000002" in err and "No space left on device" in err
    assert "training stopped at step 2" in err and "last complete checkpoint: " in err and "step-000001" in err
    assert _hidden(out) == []  # no temporary folder, no lock
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["step-000001"]
    assert load_model(out / "checkpoints" / "step-000001") is not None
    assert not (out / "final").exists()


def test_a_read_only_metrics_file_is_one_line(tiny_model_dir, tmp_path, monkeypatch, capsys):
    import reweightlab.train.metrics as metrics

    def refuses(self, record):
        raise OSError(30, "Read-only file system", str(self.path))

    monkeypatch.setattr(metrics.MetricsWriter, "write", refuses)
    out = tmp_path / "run"
    assert _train(tiny_model_dir, out) == 2
    (err,) = _errors(capsys)
    assert err == f"error: cannot write {out / 'metrics.jsonl'}: Read-only file system"
    assert not out.exists()  # nothing was logged: the run's files are gone with it


@pytest.fixture()
def small_disk(tmp_path):
    """A 64 KiB tmpfs (smaller than one tiny model), or skip where this machine cannot mount one."""
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root and mount(8)")
    where = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(where)], capture_output=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield where
    subprocess.run(["umount", str(where)], check=False)


def test_a_real_full_disk(small_disk, tiny_model_dir, capsys):
    out = small_disk / "run"
    assert _train(tiny_model_dir, out) == 2
    (err,) = _errors(capsys)
    assert "No space left on device" in err and "cannot write the model folder" in err
    assert _hidden(out) == []
    assert LOCK_NAME not in os.listdir(out)


def test_a_real_read_only_disk(small_disk, tiny_model_dir, capsys):
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    out = small_disk / "run"
    assert _train(tiny_model_dir, out) == 2
    (err,) = _errors(capsys)
    assert err == f"error: cannot write {out}: Read-only file system"
