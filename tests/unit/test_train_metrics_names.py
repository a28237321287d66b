"""Metric helpers of the loop: the truncation rate (TRL's completions/clipped_ratio)."""

from reweightlab.data.store import SequenceStore
from reweightlab.train.loop import clipped_N

EOS, PAD = 2, 0


def test_clipped_counts_the_sequences_whose_last_token_is_not_eos():
    prompts = [[5, 6], [5], [7, 8, 9], [5]]
    completions = [[3, EOS], [3, 4, 4], [EOS], [4]]  # ended, cut, ended at once, cut
    store = SequenceStore.from_lists(prompts, completions, PAD)
    assert clipped_N(store, EOS).tolist() == [0.0, 1.0, 0.0, 1.0]
    ended = SequenceStore.from_lists(prompts, [[EOS]] * 4, PAD)  # the two controls: none cut, all cut
    assert clipped_N(ended, EOS).sum() == 0
    cut = SequenceStore.from_lists(prompts, [[3]] * 4, PAD)
    assert clipped_N(cut, EOS).sum() == 4
