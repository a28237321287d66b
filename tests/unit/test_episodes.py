"""Episodes as sequences: feedback text inside a completion carries no loss."""

import pytest
import torch

from reweightlab.data.episodes import Segment, episode_store
from reweightlab.data.store import microbatches


def _store():
    prompts = [[1, 2, 3], [1, 4]]
    episodes = [
        [Segment([10, 11, 2], True, [-0.1, -0.2, -0.3]), Segment([50, 51], False),
         Segment([12, 2], True, [-0.4, -0.5])],
        [Segment([13, 2], True, [-0.6, -0.7])],
    ]
    return episode_store(prompts, episodes, pad_id=0, reward_N=[1.0, -1.0])


def test_an_episode_is_one_sequence_with_loss_on_the_attempts_only():
    store = _store()
    assert store.ids_NL[0].tolist() == [1, 2, 3, 10, 11, 2, 50, 51, 12, 2]
    assert store.ids_NL[1, :4].tolist() == [1, 4, 13, 2]
    # target t predicts token t + 1: the attempts' tokens carry loss, the prompt and the feedback do not
    assert store.target_mask()[0].tolist() == [0, 0, 1, 1, 1, 0, 0, 1, 1]
    assert store.target_mask()[1].tolist() == [0, 1, 1, 0, 0, 0, 0, 0, 0]
    assert store.completion_tokens() == 7  # 5 + 2 model-written tokens
    assert store.logp_sampler_NT[0].tolist() == pytest.approx([0, 0, -0.1, -0.2, -0.3, 0, 0, -0.4, -0.5])
    assert store.reward_N.tolist() == [1.0, -1.0]


def test_micro_batches_mask_the_feedback():
    store = _store()
    (mb,) = microbatches(store, 8)
    for b, n in enumerate(mb.index_B.tolist()):
        L = mb.mask_BT.shape[1]
        assert mb.mask_BT[b].tolist() == store.target_mask()[n, :L].tolist()
    picked = store.select(torch.tensor([0]))
    assert picked.loss_mask_NT.shape == (1, 9) and picked.completion_tokens() == 5


def test_a_model_written_segment_needs_its_log_probs():
    with pytest.raises(ValueError, match="episode 0: a model-written segment without one log-prob per token"):
        episode_store([[1]], [[Segment([5], True), Segment([6], False), Segment([7], True, [-1.0])]], pad_id=0)
    with pytest.raises(ValueError, match="2 prompts but 1 episodes"):
        episode_store([[1], [2]], [[Segment([5], True)]], pad_id=0)
