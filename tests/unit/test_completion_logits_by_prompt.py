"""Teacher-forced logits with each prompt run once for its samples (models/forward.py's
``completion_logits_by_prompt``) against a plain forward over every whole sequence.

The store mixes what a probe and an RL batch hold: groups of samples sharing a prompt, a group of one,
a prompt that comes back later (its own group), completions of different lengths, and an empty one.
"""

from __future__ import annotations

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

from reweightlab.data.store import SequenceStore, microbatches
from reweightlab.models.fast_decode import ENV_SWITCH
from reweightlab.models.forward import completion_logits_by_prompt, prompt_groups, store_logp, teacher_forced_logp

ATOL = 2e-5
PROMPTS = [[3, 4, 5, 6, 7]] * 3 + [[8, 9]] + [[10, 11, 12]] * 4 + [[3, 4, 5, 6, 7]] * 2
COMPLETIONS = [[20, 21, 2], [22, 2], [23, 24, 25, 26, 2], [2], [30, 2], [], [31, 32, 33, 2], [34, 2], [40, 2],
               [41, 42, 43, 44, 45, 2]]


def _models() -> dict:
    torch.manual_seed(0)
    llama = LlamaForCausalLM(LlamaConfig(vocab_size=50, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64))
    qwen = Qwen2ForCausalLM(Qwen2Config(vocab_size=50, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                                        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64))
    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=50, n_embd=32, n_layer=2, n_head=2, n_positions=64))
    return {"llama": llama.eval(), "qwen2": qwen.eval(), "gpt2 (generic cache)": gpt2.eval()}


MODELS = _models()


def _store() -> SequenceStore:
    return SequenceStore.from_lists(PROMPTS, COMPLETIONS, pad_id=0)


@torch.no_grad()
def _plain(model, store: SequenceStore, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits predicting each completion token of sequence n, from one forward over it alone; its tokens."""
    total, plen = int(store.total_len_N[n]), int(store.prompt_len_N[n])
    ids = store.ids_NL[n, :total]
    logits = model(input_ids=ids[None]).logits[0].float()
    return logits[plen - 1 : total - 1], ids[plen:]


def test_prompt_groups_are_runs_of_one_prompt():
    assert prompt_groups(_store()) == [(0, 3), (3, 4), (4, 8), (8, 10)]
    # the same ids with another prompt length are another prompt
    other = SequenceStore.from_lists([[3, 4], [3, 4, 5]], [[5, 2], [2]], pad_id=0)
    assert prompt_groups(other) == [(0, 1), (1, 2)]


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("chunk", [1, 4, 128])
def test_equal_to_a_plain_forward_of_every_sequence(name, chunk, monkeypatch):
    model, store = MODELS[name], _store()
    seen = torch.zeros(len(store), dtype=torch.long)
    for index_B, targets_BT, mask_BT, (logits_BTV,) in completion_logits_by_prompt(
            [model], store, sequences_per_chunk=chunk):
        # a chunk is whole groups, never more than `chunk` rows unless one group is larger
        assert len(index_B) <= max(chunk, 4)
        for b, n in enumerate(index_B.tolist()):
            seen[n] += 1
            want_logits, want_tokens = _plain(model, store, n)
            k = len(want_tokens)
            assert mask_BT[b].sum() == k and bool(mask_BT[b, :k].all())
            assert torch.equal(targets_BT[b, :k], want_tokens)
            if k:
                assert (logits_BTV[b, :k] - want_logits).abs().max() <= ATOL, (name, n)
    assert torch.equal(seen, torch.ones(len(store), dtype=torch.long))  # every sequence exactly once


def test_a_changed_model_changes_the_logits():
    """The comparison above can fail: another model's logits are far outside the tolerance."""
    store = _store()
    (_, _, mask_BT, (a,)), *_ = completion_logits_by_prompt([MODELS["llama"]], store)
    (_, _, _, (b,)), *_ = completion_logits_by_prompt([MODELS["qwen2"]], store)
    assert (a - b).abs()[mask_BT.bool()].max() > 100 * ATOL


def test_the_fast_path_and_the_generic_cache_agree(monkeypatch):
    store = _store()
    fast = [c[3][0] for c in completion_logits_by_prompt([MODELS["llama"]], store)]
    monkeypatch.setenv(ENV_SWITCH, "0")
    generic = [c[3][0] for c in completion_logits_by_prompt([MODELS["llama"]], store)]
    for f, g in zip(fast, generic, strict=True):
        assert (f - g).abs().max() <= ATOL


def test_several_models_in_one_pass_and_training_mode_restored():
    store = _store()
    model = MODELS["llama"]
    model.train()
    try:
        for _, _, mask_BT, (a, b) in completion_logits_by_prompt([model, MODELS["qwen2"]], store):
            assert a.shape == b.shape == (*mask_BT.shape, 50)
        assert model.training
    finally:
        model.eval()


def test_feedback_inside_completions_is_refused():
    store = _store()
    store = store.replace(loss_mask_NT=torch.ones(len(store), store.ids_NL.shape[1] - 1))
    with pytest.raises(ValueError, match="loss_mask_NT"):
        next(completion_logits_by_prompt([MODELS["llama"]], store))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_store_logp_equals_the_plain_teacher_forced_pass(name):
    model, store = MODELS[name], _store()
    want = teacher_forced_logp(model, microbatches(store, 128), len(store), store.ids_NL.shape[1], "cpu")
    got = store_logp(model, store, "cpu", sequences_per_microbatch=4)
    assert got.shape == want.shape
    assert (got - want).abs().max() <= ATOL
    assert torch.equal(got != 0, want != 0)  # the same targets filled, zero elsewhere
    # feedback inside completions, or no prompt shared: the plain pass itself
    fed = store.replace(loss_mask_NT=store.target_mask())
    assert torch.equal(store_logp(model, fed, "cpu"),
                       teacher_forced_logp(model, microbatches(fed, 128), len(fed), fed.ids_NL.shape[1], "cpu"))
    single = store.select(torch.tensor([0, 3, 4, 8]))
    assert torch.equal(store_logp(model, single, "cpu"), teacher_forced_logp(
        model, microbatches(single, 128), len(single), single.ids_NL.shape[1], "cpu"))
