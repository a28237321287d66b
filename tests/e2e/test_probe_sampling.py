"""Chunked sampling for the probe: counts, rewards and kept sequences stay aligned across chunks."""

import pytest
import torch

from reweightlab.models import load_model, load_tokenizer
from reweightlab.probe.sampling import chunk_plan, sample_counts
from reweightlab.tasks import get_task


@pytest.mark.parametrize(
    "P, n, chunk, expect",
    [(10, 8, 64, (8, 8)), (10, 8, 5, (1, 5)), (3, 100, 1000, (3, 100)), (2, 4096, 1024, (1, 1024)), (4, 3, 1, (1, 1))],
)
def test_chunk_plan_bounds_the_batch(P, n, chunk, expect):
    prompts, samples = chunk_plan(P, n, chunk)
    assert (prompts, samples) == expect
    assert prompts * samples <= chunk and samples <= n


@pytest.mark.parametrize("chunk", [5, 7, 1000])
def test_chunks_fill_every_sample_and_keep_the_first(tiny_model_dir, chunk):
    tok, model = load_tokenizer(tiny_model_dir), load_model(tiny_model_dir)
    task = get_task("digits")
    problems = task.problems("id", "train", 3, seed=0)
    s = sample_counts(model, tok, task, problems, n=8, keep_per_prompt=2, max_new_tokens=5, seed=1,
                      chunk_sequences=chunk)
    assert s.rewards_PN.shape == (3, 8) and torch.isfinite(s.rewards_PN).all()
    assert ((s.rewards_PN >= 0) & (s.rewards_PN <= 1)).all()  # digits' scores: every slot was written
    assert s.c_P.tolist() == (s.rewards_PN == 1.0).sum(1).tolist()
    assert s.n_P.tolist() == [8, 8, 8]
    torch.testing.assert_close(s.p_P, s.c_P.double() / 8)
    assert len(s.kept) == 6  # problem-major, the first 2 samples of each
    torch.testing.assert_close(s.kept.reward_N, s.rewards_PN[:, :2].reshape(-1))
    assert s.kept.logp_sampler_NT.shape[0] == 6 and s.completion_tokens > 0


def test_keep_larger_than_a_chunk_is_refused(tiny_model_dir):
    tok, model = load_tokenizer(tiny_model_dir), load_model(tiny_model_dir)
    task = get_task("digits")
    with pytest.raises(ValueError, match="keep_per_prompt"):
        sample_counts(model, tok, task, task.problems("id", "train", 2, 0), n=8, keep_per_prompt=6,
                      max_new_tokens=3, seed=0, chunk_sequences=5)
