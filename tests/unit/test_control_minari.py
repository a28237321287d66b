"""load_minari on a Minari dataset written on disk here (arrow format; nothing is downloaded)."""

import numpy as np
import pytest

minari = pytest.importorskip("minari")
# minari asks for author, permalink, ... on every dataset it writes: noise for a test dataset
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture
def minari_dataset(tmp_path, monkeypatch):
    """Three random Pendulum episodes of 20 steps as a local Minari dataset; returns the recorded arrays."""
    import gymnasium as gym
    from minari.data_collector.episode_buffer import EpisodeBuffer

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    env = gym.make("Pendulum-v1", max_episode_steps=20)
    env.action_space.seed(0)
    episodes, buffers = [], []
    for ep in range(3):
        obs, _ = env.reset(seed=ep)
        O, A, R, TE, TR = [obs], [], [], [], []
        done = False
        while not done:
            a = env.action_space.sample()
            obs, r, te, tr, _ = env.step(a)
            O.append(obs), A.append(a), R.append(r), TE.append(te), TR.append(tr)
            done = te or tr
        episodes.append((np.array(O), np.array(A), np.array(R), np.array(TE), np.array(TR)))
        buffers.append(EpisodeBuffer(observations=np.array(O), actions=np.array(A), rewards=R, terminations=TE,
                                     truncations=TR))
    minari.create_dataset_from_buffers("pendulum/test-v0", buffers, env=env, algorithm_name="random",
                                       data_format="arrow", author="tests", author_email="none",
                                       description="test data", eval_env=env)
    return tmp_path / "pendulum" / "test-v0", episodes


def test_minari_dataset_reads_by_id_and_by_folder(minari_dataset):
    from reweightlab.control.dataset import load_minari

    folder, episodes = minari_dataset
    for source in ("pendulum/test-v0", str(folder)):
        t = load_minari(source)
        # Minari stores T+1 observations per episode; the reader keeps the T that have an action
        np.testing.assert_allclose(t.obs_NO, np.concatenate([o[:-1] for o, *_ in episodes]), atol=1e-6)
        np.testing.assert_allclose(t.act_NA, np.concatenate([a for _, a, *_ in episodes]), atol=1e-6)
        np.testing.assert_allclose(t.rew_N, np.concatenate([r for _, _, r, *_ in episodes]), atol=1e-5)
        assert t.trunc_N.tolist() == np.concatenate([tr for *_, tr in episodes]).tolist()
        assert t.term_N.sum() == 0 and t.start_N.sum() == 3 and t.start_N[[0, 20, 40]].all()
        assert t.metadata["env_id"] == "Pendulum-v1"


def test_unknown_minari_id_is_not_downloaded(minari_dataset):
    from reweightlab.control.dataset import DatasetError, load_minari

    with pytest.raises(DatasetError, match="pendulum/absent-v0: no Minari dataset of that id on disk.*never downloads"):
        load_minari("pendulum/absent-v0")


def test_control_run_takes_a_minari_dataset(minari_dataset, tmp_path):
    import json

    from reweightlab.cli import main

    out = tmp_path / "run"
    code = main(["control", "run", "Pendulum-v1", "--data", "minari:pendulum/test-v0", "--seeds", "1", "--steps", "2",
                 "--trajectories-per-step", "3", "--transitions-per-step", "16", "--eval-episodes", "1",
                 "--out", str(out), "--no-progress"])
    assert code == 0
    res = json.loads((out / "control.json").read_text())
    assert res["dataset_stats"]["transitions"] == 60 and res["dataset"] == "minari:pendulum/test-v0"


def test_minari_dataset_for_another_env_names_the_field(minari_dataset, tmp_path, capsys):
    from reweightlab.cli import main

    code = main(["control", "run", "MountainCarContinuous-v0", "--data", "minari:pendulum/test-v0",
                 "--out", str(tmp_path / "r"), "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err
    assert "minari:pendulum/test-v0" in err and "field 'observations'" in err
