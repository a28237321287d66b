"""Pieces of data parallelism that one process can check: shards, per-prompt sampling seeds."""

import pytest
import torch

from reweightlab.rollout import HFRolloutEngine
from reweightlab.train.distributed import SingleProcess, make_distributed, shard_range


@pytest.mark.parametrize("n,world", [(16, 2), (7, 2), (5, 3), (3, 4)])
def test_shards_cover_every_item_once_in_order(n, world):
    ranges = [shard_range(n, r, world) for r in range(world)]
    assert [i for a, b in ranges for i in range(a, b)] == list(range(n))
    sizes = [b - a for a, b in ranges]
    assert max(sizes) - min(sizes) <= 1


def test_single_process_collectives_are_the_identity():
    d = make_distributed("cpu", "ddp", torch.device("cpu"))
    assert isinstance(d, SingleProcess) and d.world_size == 1 and d.is_main and d.grad_scale == 1.0
    t = torch.arange(3.0)
    assert d.all_reduce_sum(t) is t and d.all_gather_cat(t) is t and d.shard(5) == (0, 5)


def test_fsdp_in_one_process_is_an_error():
    with pytest.raises(ValueError, match="accelerate launch"):
        make_distributed("cpu", "fsdp", torch.device("cpu"))


def test_a_prompts_samples_depend_only_on_its_own_seed(tiny_model_dir):
    """What lets N processes draw the samples of one: prompt p's completions are the same whether it is
    sampled alone or together with others (and in another chunking)."""
    from reweightlab.models import load_model, load_tokenizer

    tok = load_tokenizer(tiny_model_dir)
    engine = HFRolloutEngine(load_model(tiny_model_dir), eos_token_id=tok.eos_token_id,
                             pad_token_id=tok.pad_token_id, max_batch_sequences=5)
    prompts = [tok(p)["input_ids"] for p in ("1:", "22:", "333:", "4:")]
    kw = {"samples_per_prompt": 3, "max_new_tokens": 8}
    together = engine.generate(prompts, prompt_seeds=[10, 11, 12, 13], **kw)
    alone = engine.generate(prompts[2:3], prompt_seeds=[12], **kw)
    rows = slice(6, 9)
    T = alone.completion_ids_NT.shape[1]
    assert torch.equal(together.completion_ids_NT[rows, :T], alone.completion_ids_NT)
    assert torch.allclose(together.logp_NT[rows, :T], alone.logp_NT, atol=1e-5)
    other = engine.generate(prompts[2:3], prompt_seeds=[99], **kw)
    assert not torch.equal(other.completion_ids_NT, alone.completion_ids_NT)  # the seed matters
    with pytest.raises(ValueError, match="prompt_seeds"):
        engine.generate(prompts, prompt_seeds=[1, 2, 3, 4], seed=0, **kw)


def test_inverse_cdf_sampling_draws_from_the_distribution():
    from reweightlab.rollout.hf import sample_from_logits

    logits_V = torch.tensor([2.0, 0.0, 1.0, -1.0, 0.5])
    B = 200_000
    u_B = torch.rand(B, generator=torch.Generator().manual_seed(0))
    token_B, logp_B = sample_from_logits(logits_V.expand(B, -1), temperature=1.0, top_p=1.0, generator=None,
                                         uniform_B=u_B)
    q_V = torch.softmax(logits_V, -1)
    freq_V = torch.bincount(token_B, minlength=5).float() / B
    # binomial standard error sqrt(q(1-q)/B) <= 0.0012; 5 of them
    assert torch.allclose(freq_V, q_V, atol=0.006)
    assert torch.allclose(logp_B, q_V.log()[token_B], atol=1e-6)
    # nucleus 0.6 keeps tokens 0 (0.49) and 2 (0.18) only; dropped tokens are never drawn
    token_B, _ = sample_from_logits(logits_V.expand(B, -1), temperature=1.0, top_p=0.6, generator=None,
                                    uniform_B=u_B)
    assert set(token_B.unique().tolist()) == {0, 2}
