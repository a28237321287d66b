"""Shared end-to-end fixtures: the quick demo runs once per session and several tests read its folder."""

from __future__ import annotations

import contextlib
import io

import pytest


@pytest.fixture(scope="session")
def quick_demo_run(tmp_path_factory):
    """`reweightlab demo --quick` with an empty model cache: (run folder, what it printed).

    About 1-3 minutes on 2 cores, so it is shared: test_demo_quick checks the summary and the cache,
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


@pytest.fixture(scope="session")
def trained_dir(tiny_model_dir, tmp_path_factory):
    """The tiny base with perturbed weights, saved like a trained model's final/ folder."""
    import torch

    from reweightlab.models import load_model, load_tokenizer

    model = load_model(tiny_model_dir)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen) * p.std())
    path = tmp_path_factory.mktemp("run-digits") / "final"
    model.save_pretrained(path)
    load_tokenizer(tiny_model_dir).save_pretrained(path)
    return path
