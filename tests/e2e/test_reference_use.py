"""RL loads and runs pi_ref only when something reads it: the KL penalty (rl.kl_beta > 0) or rl.log_kl."""

from __future__ import annotations

import json

import pytest

from reweightlab.config import ConfigError
from reweightlab.train import loop
from reweightlab.train.config import load_config
from reweightlab.train.loop import setup, train

BASE = ["method=grpo", "data.task=digits", "optim.steps=2", "data.num_prompts=8", "data.max_new_tokens=6",
        "rl.prompts_per_step=4", "rl.samples_per_prompt=4"]


def _run(tiny_model_dir, out, extra, monkeypatch):
    calls = []
    real = loop.store_logp
    monkeypatch.setattr(loop, "store_logp", lambda model, *a, **k: calls.append(model) or real(model, *a, **k))
    cfg = load_config(None, [f"model.path={tiny_model_dir}", f"output_dir={out}", *BASE, *extra])
    s = setup(cfg, progress=False)
    has_ref = s.ref is not None
    s.lock.release()
    train(load_config(None, [f"model.path={tiny_model_dir}", f"output_dir={out}-run", *BASE, *extra]),
          progress=False, log=lambda *_: None)
    rows = [json.loads(x) for x in (out.parent / f"{out.name}-run" / "metrics.jsonl").read_text().splitlines()]
    return has_ref, rows, calls


@pytest.mark.parametrize("extra, wants_ref", [([], False), (["rl.log_kl=true"], True), (["rl.kl_beta=0.05"], True)])
def test_the_reference_exists_only_when_read(tiny_model_dir, tmp_path, monkeypatch, extra, wants_ref):
    has_ref, rows, calls = _run(tiny_model_dir, tmp_path / "r", extra, monkeypatch)
    assert has_ref is wants_ref
    assert all(("kl" in r) is wants_ref for r in rows) and len(rows) == 2
    # one reference forward per batch when it exists, none otherwise (temperature 1: logp_old is the sampler's)
    assert len(calls) == (2 if wants_ref else 0)


def test_a_reference_path_at_beta_zero_is_refused(tiny_model_dir, tmp_path):
    with pytest.raises(ConfigError, match="'model.ref_path' does nothing with rl.kl_beta = 0"):
        load_config(None, [f"model.path={tiny_model_dir}", f"output_dir={tmp_path / 'x'}", *BASE,
                           f"model.ref_path={tiny_model_dir}"])
    cfg = load_config(None, [f"model.path={tiny_model_dir}", f"output_dir={tmp_path / 'y'}", *BASE,
                             f"model.ref_path={tiny_model_dir}", "rl.log_kl=true"])
    assert cfg.uses_reference()
