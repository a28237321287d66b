"""Shared end-to-end fixtures: the quick demo runs once per session and several tests read its folder."""

from __future__ import annotations

import contextlib
import io

import pytest


@pytest.fixture(scope="session")
def quick_demo_run(tmp_path_factory):
    """`reweightlab demo --quick` with an empty model cache: (run folder, what it printed).

    About 1-2 minutes on 2 cores, so it is shared: test_demo_quick checks the summary and the cache,
    test_report_browser the report the demo wrote."""
    from reweightlab.cli import main

    root = tmp_path_factory.mktemp("quick-demo")
    out = io.StringIO()
    # monkeypatch is function-scoped; MonkeyPatch.context() restores the environment after the run
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out):
        mp.setenv("REWEIGHTLAB_CACHE", str(root / "cache"))
        code = main(["demo", "--quick", "--out", str(root / "runs"), "--no-progress"])
    assert code == 0, out.getvalue()[-2000:]
    (run,) = list((root / "runs").iterdir())
    return run, out.getvalue()
