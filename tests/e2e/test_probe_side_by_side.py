"""The study probes its rules side by side in worker processes: the figures are those of probing them one
after the other, a worker's error reaches the caller, and nothing is left running."""

import multiprocessing

import pytest

from reweightlab.probe.command import run_probe
from reweightlab.probe.regimes import RegimeThresholds
from reweightlab.probe.study import ProbeSettings
from reweightlab.recipes import study
from reweightlab.recipes.pretrain import PACKAGED_BASE
from reweightlab.rollout.search import SearchBudget


def _settings(variant: str) -> ProbeSettings:
    return ProbeSettings(task="generalpoints", variant=variant, num_prompts=4, n=32,
                         thresholds=RegimeThresholds(budget_K=32), search=SearchBudget(beam_width=2, expand_top=2),
                         revision_attempts=2, revision_episodes=2, seed=5, max_new_tokens=24)


def _no_clocks(x):
    """The summary without what a clock measured (seconds, tokens per second)."""
    if isinstance(x, dict):
        return {k: _no_clocks(v) for k, v in x.items() if "seconds" not in k and not k.endswith("per_s")}
    if isinstance(x, list):
        return [_no_clocks(v) for v in x]
    return x


def test_side_by_side_equals_one_after_the_other(tmp_path, capfd):
    from transformers.utils import logging as hf_logging

    base, trained = str(PACKAGED_BASE), {"copy": str(PACKAGED_BASE)}
    serial = {v: run_probe(base, trained, _settings(v), tmp_path / "serial" / v, progress=False, log=lambda *_: None)
              for v in ("id", "ood")}
    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # as the command does: the workers must keep them off too
    capfd.readouterr()
    try:
        parallel = study._side_by_side({v: (base, trained, _settings(v), tmp_path / "parallel" / v, 1)
                                        for v in ("id", "ood")}, workers=2)
    finally:
        if was:
            hf_logging.enable_progress_bar()
    assert "Loading weights" not in capfd.readouterr().err
    for v in ("id", "ood"):
        assert _no_clocks(parallel[v]) == _no_clocks(serial[v]), v
        assert (tmp_path / "parallel" / v / "probe.json").is_file()
    # the comparison can fail: the two rules' probes differ from each other
    assert _no_clocks(serial["id"])["per_model"] != _no_clocks(serial["ood"])["per_model"]
    assert multiprocessing.active_children() == []


def test_a_workers_error_reaches_the_caller_and_stops_the_rest(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "someone.txt").write_text("not the probe's")  # run_probe refuses a folder it does not own
    calls = {"id": (str(PACKAGED_BASE), {}, _settings("id"), tmp_path / "taken", 1),
             "ood": (str(PACKAGED_BASE), {}, _settings("ood"), tmp_path / "free", 1)}
    with pytest.raises(Exception, match="taken"):
        study._side_by_side(calls, workers=2)
    assert multiprocessing.active_children() == []
    assert (tmp_path / "taken" / "someone.txt").read_text() == "not the probe's"


def test_probe_workers(monkeypatch):
    monkeypatch.setenv("REWEIGHTLAB_PROBE_WORKERS", "1")
    assert study.probe_workers(("id", "ood")) == 1
    monkeypatch.setenv("REWEIGHTLAB_PROBE_WORKERS", "8")
    assert study.probe_workers(("id", "ood")) == 2  # never more workers than rules
    assert study.probe_workers(("id",)) == 1
    monkeypatch.delenv("REWEIGHTLAB_PROBE_WORKERS")
    monkeypatch.setattr(study.os, "cpu_count", lambda: 1)
    assert study.probe_workers(("id", "ood")) == 1  # one core: one after the other
    # a task registered in this process only is probed here: a spawned worker would not know it
    from reweightlab.tasks import register_task

    class Mine:
        pass

    register_task("mine-only-here", Mine, replace=True)
    assert study.probe_workers(("id", "ood"), "mine-only-here") == 1
    monkeypatch.setattr(study.os, "cpu_count", lambda: 2)
    assert study.probe_workers(("id", "ood"), "generalpoints") == 2
