"""`reweightlab control collect` + `control run` on Pendulum-v1 through the CLI, tiny budgets (seconds)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from reweightlab.cli import main

METHODS = ["bc", "sft", "sft_q", "iw_sft_q"]


@pytest.fixture(scope="module")
def pendulum_data(tmp_path_factory):
    path = tmp_path_factory.mktemp("control") / "pendulum.npz"
    assert main(["control", "collect", "Pendulum-v1", "--out", str(path), "--episodes", "10", "--seed", "3"]) == 0
    return path


def test_collect_writes_a_mixed_quality_dataset(pendulum_data):
    from reweightlab.control.dataset import load_dataset

    d = load_dataset(pendulum_data, "Pendulum-v1")
    assert d.lengths_E.tolist() == [200] * 10  # Pendulum episodes end by the time limit only
    assert d.trunc_N.sum() == 10 and not d.term_N.any()
    st = d.metadata["return_stats"]
    assert st["episodes"] == 10 and st["max"] - st["min"] > 500  # expert and random levels both present
    assert d.metadata["env_id"] == "Pendulum-v1" and len(d.metadata["recipe"]["levels"]) == 5


def test_run_writes_all_methods_and_seeds(pendulum_data, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["control", "run", "Pendulum-v1", "--data", str(pendulum_data), "--seeds", "2", "--steps", "3",
                 "--trajectories-per-step", "8", "--transitions-per-step", "64", "--eval-episodes", "2",
                 "--out", str(out), "--no-progress"])
    assert code == 0
    res = json.loads((out / "control.json").read_text())
    assert list(res["methods"]) == METHODS and res["seeds"] == [0, 1]
    for m in METHODS:
        rows = res["methods"][m]["per_seed"]
        assert len(rows) == 2 and all(np.isfinite(r["return_mean"]) for r in rows)
        assert res["methods"][m]["return_mean"] == pytest.approx(np.mean([r["return_mean"] for r in rows]))
        assert res["methods"][m]["return_std"] == pytest.approx(np.std([r["return_mean"] for r in rows], ddof=1))
        assert res["methods"][m]["score_mean"] is None  # no D4RL reference for Pendulum
    assert res["settings"]["steps"] == 3 and res["reference_returns"] is None
    # every trained policy is saved; a reloaded one scores exactly what the run measured
    from reweightlab.control.evaluate import evaluate
    from reweightlab.control.policy import load_policy
    from reweightlab.control.run import EVAL_SEED_BASE

    saved = sorted(p.name for p in (out / res["policies"]).iterdir())
    assert saved == sorted(f"{m}-seed{k}.safetensors" for m in METHODS for k in (0, 1))
    pol = load_policy(out / res["policies"] / "iw_sft_q-seed1.safetensors")
    again = evaluate(pol, "Pendulum-v1", 2, seed=EVAL_SEED_BASE + 1000 * 1)
    assert again["return_mean"] == pytest.approx(res["methods"]["iw_sft_q"]["per_seed"][1]["return_mean"], abs=1e-6)
    with pytest.raises(ValueError, match="not a reweightlab control policy"):
        from safetensors.torch import save_file

        save_file({"x": torch.zeros(1)}, str(tmp_path / "other.safetensors"))
        load_policy(tmp_path / "other.safetensors")
    printed = capsys.readouterr().out
    assert "iw-SFT(Q)" in printed and "paper's ordering" in printed

    # the report shows a control section for folders that hold this file, and only for those
    from reweightlab.report.figures import Limits
    from reweightlab.report.html import _control_section, _sections
    from reweightlab.report.load import RunData

    run, other = RunData(out, "demo", ["base"]), RunData(tmp_path, "demo", ["base"])
    html = _control_section(run, {}, Limits())
    assert [f'data-method="{m}"' in html for m in METHODS] == [True] * 4
    assert "control" in [s.key for s in _sections([other, run])]
    assert "control" not in [s.key for s in _sections([other])]

    # a control run's own folder is a report on its own: the control table and nothing else
    assert main(["report", str(out)]) == 0
    page = (out / "report.html").read_text()
    assert [f'data-method="{m}"' in page for m in METHODS] == [True] * 4
    assert 'id="control"' in page and 'id="passk"' not in page and "<svg" not in page


def test_bad_dataset_is_one_error_line(pendulum_data, tmp_path, capsys):
    with np.load(pendulum_data) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["actions"] = arrays["actions"].copy()
    arrays["actions"][17, 0] = np.nan
    bad = tmp_path / "bad.npz"
    np.savez(bad, **arrays)
    capsys.readouterr()
    code = main(["control", "run", "Pendulum-v1", "--data", str(bad), "--out", str(tmp_path / "r"), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith("error: ") and str(bad) in err[0] and "'actions'" in err[0] and "row 17" in err[0]
    assert not (tmp_path / "r" / "control.json").exists()


def test_mujoco_collect_without_sb3_says_which_pip_command(monkeypatch, tmp_path, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "stable_baselines3", None)  # as if the extra were not installed
    code = main(["control", "collect", "Hopper-v5", "--out", str(tmp_path / "h.npz")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "pip install 'reweightlab[control]'" in err[0]
    assert not (tmp_path / "h.npz").exists()
