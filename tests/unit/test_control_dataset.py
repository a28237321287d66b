"""The control dataset format: round trip, atomic write, and every bad input named by file and field."""

from __future__ import annotations

import json

import numpy as np
import pytest

from reweightlab.control.dataset import DatasetError, Trajectories, load_dataset, return_stats, save_dataset


def _toy(obs_dim: int = 3, act_dim: int = 1, lengths=(4, 2, 3), seed: int = 0) -> Trajectories:
    rng = np.random.default_rng(seed)
    n = sum(lengths)
    start = np.zeros(n, bool)
    start[np.cumsum((0,) + tuple(lengths[:-1]))] = True
    term = np.zeros(n, bool)
    term[np.cumsum(lengths) - 1] = True
    return Trajectories(rng.standard_normal((n, obs_dim)).astype(np.float32),
                        rng.uniform(-2, 2, (n, act_dim)).astype(np.float32),
                        rng.standard_normal(n).astype(np.float32), term, np.zeros(n, bool), start,
                        metadata={"env_id": "Pendulum-v1", "recipe": "toy"})


def _write_raw(path, **over):
    """Save a valid toy dataset, then overwrite some arrays with bad ones."""
    d = _toy()
    arrays = {"observations": d.obs_NO, "actions": d.act_NA, "rewards": d.rew_N, "terminations": d.term_N,
              "truncations": d.trunc_N, "episode_starts": d.start_N, "metadata": np.array(json.dumps({}))}
    arrays.update(over)
    np.savez(path, **arrays)
    return path


def test_round_trip_keeps_arrays_episodes_and_metadata(tmp_path):
    d = _toy()
    path = save_dataset(tmp_path / "sub" / "d.npz", d)
    assert sorted(p.name for p in path.parent.iterdir()) == ["d.npz"]  # no temporary file left behind
    back = load_dataset(path, "Pendulum-v1")
    for name in ("obs_NO", "act_NA", "rew_N", "term_N", "trunc_N", "start_N"):
        assert np.array_equal(getattr(back, name), getattr(d, name)), name
    assert back.lengths_E.tolist() == [4, 2, 3]
    assert back.metadata["recipe"] == "toy" and back.metadata["transitions"] == 9
    expected = [float(d.rew_N[:4].astype(np.float64).sum()), float(d.rew_N[4:6].astype(np.float64).sum()),
                float(d.rew_N[6:].astype(np.float64).sum())]
    assert np.allclose(back.returns_E, expected, rtol=0, atol=1e-12)
    assert back.metadata["return_stats"]["max"] == pytest.approx(max(expected), abs=1e-9)


def test_return_stats_quartiles():
    st = return_stats(np.arange(1.0, 6.0))
    assert (st["episodes"], st["min"], st["q25"], st["median"], st["q75"], st["max"]) == (5, 1.0, 2.0, 3.0, 4.0, 5.0)


def _error(path, env_id=None) -> str:
    with pytest.raises(DatasetError) as info:
        load_dataset(path, env_id)
    return str(info.value)


def test_mismatched_lengths_name_file_and_field(tmp_path):
    path = _write_raw(tmp_path / "bad.npz", actions=np.zeros((5, 1), np.float32))
    msg = _error(path)
    assert str(path) in msg and "'actions'" in msg and "length 5" in msg


def test_nan_names_file_field_and_row(tmp_path):
    obs = _toy().obs_NO.copy()
    obs[6, 1] = np.nan
    msg = _error(_write_raw(tmp_path / "nan.npz", observations=obs))
    assert str(tmp_path / "nan.npz") in msg and "'observations'" in msg and "row 6" in msg


def test_inf_reward_is_rejected(tmp_path):
    rew = _toy().rew_N.copy()
    rew[0] = np.inf
    assert "'rewards'" in _error(_write_raw(tmp_path / "inf.npz", rewards=rew))


def test_observation_shape_must_fit_the_environment(tmp_path):
    path = save_dataset(tmp_path / "wide.npz", _toy(obs_dim=4))
    load_dataset(path)  # fine without an environment to check against
    msg = _error(path, "Pendulum-v1")
    assert str(path) in msg and "'observations'" in msg and "(4,)" in msg and "(3,)" in msg


def test_missing_field_and_first_step_must_start_an_episode(tmp_path):
    d = _toy()
    np.savez(tmp_path / "miss.npz", observations=d.obs_NO, actions=d.act_NA, rewards=d.rew_N)
    assert "'terminations'" in _error(tmp_path / "miss.npz")
    start = d.start_N.copy()
    start[0] = False
    assert "'episode_starts'" in _error(_write_raw(tmp_path / "start.npz", episode_starts=start))


def test_env_id_in_metadata_must_match(tmp_path):
    path = save_dataset(tmp_path / "d.npz", _toy())
    assert "'metadata'" in _error(path, "Hopper-v5")


def test_missing_file_and_garbage_file(tmp_path):
    assert "no such dataset file" in _error(tmp_path / "none.npz")
    (tmp_path / "junk.npz").write_text("not a zip")
    assert str(tmp_path / "junk.npz") in _error(tmp_path / "junk.npz")


def test_minari_reader_says_how_to_install(monkeypatch):
    import sys

    from reweightlab.control.dataset import load_minari

    monkeypatch.setitem(sys.modules, "minari", None)  # as if not installed
    with pytest.raises(ImportError, match=r"pip install 'reweightlab\[minari\]'"):
        load_minari("mujoco/hopper/medium-v0")
