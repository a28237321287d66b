"""HFRolloutEngine on a tiny random Llama built in-process."""

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from reweightlab.rollout import HFRolloutEngine, Rollout

PAD, BOS, EOS = 0, 1, 2
VOCAB = 40
# Different lengths, so the batch is left-padded and position ids matter.
PROMPTS = [[BOS, 5, 6, 7, 8, 9, 10], [BOS, 11], [BOS, 12, 13, 14], [BOS]]


def _tiny_llama(seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=128,
        bos_token_id=BOS, eos_token_id=EOS, pad_token_id=PAD,
    )
    # Scale up the weights so the next-token distributions are far from uniform: a nucleus is then
    # a real subset and an error in positions or masking changes the log-probs visibly.
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        model.lm_head.weight.mul_(20.0)
    return model.eval()


def _with_eos_bias(model: LlamaForCausalLM, bias: float) -> LlamaForCausalLM:
    """Add a constant to the EOS logit at every position (Llama's lm_head has no bias)."""
    head = torch.nn.Linear(model.config.hidden_size, VOCAB, bias=True)
    with torch.no_grad():
        head.weight.copy_(model.lm_head.weight)
        head.bias.zero_()
        head.bias[EOS] = bias
    model.lm_head = head
    return model


@pytest.fixture(scope="module")
def model() -> LlamaForCausalLM:
    return _tiny_llama()


def _teacher_forced_logq(model, prompts, rollout: Rollout, temperature: float) -> list[torch.Tensor]:
    """Per sequence, log_softmax(logits / temperature) [L, V] at each completion position.

    Each sequence runs alone through one full forward without cache or padding: an independent
    reference for the engine's left padding, position ids and KV cache.
    """
    out = []
    with torch.no_grad():
        for n, completion in enumerate(rollout.completions_as_lists()):
            prompt = prompts[int(rollout.prompt_index_N[n])]
            ids = torch.tensor([prompt + completion])
            logits = model(input_ids=ids).logits[0, len(prompt) - 1 : -1]
            out.append(torch.log_softmax(logits.float() / temperature, dim=-1))
    return out


def _check_layout(rollout: Rollout, max_new_tokens: int) -> None:
    """Padding invariants every Rollout must satisfy."""
    ids, mask, logp = rollout.completion_ids_NT, rollout.completion_mask_NT, rollout.logp_NT
    assert ids.dtype == torch.long and mask.dtype == torch.bool and logp.dtype == torch.float32
    assert ids.device.type == "cpu"
    assert ids.shape[1] <= max_new_tokens
    assert torch.all(ids[~mask] == PAD) and torch.all(logp[~mask] == 0.0)
    assert torch.all(logp[mask] <= 0.0)
    # The mask is a prefix: once False it stays False.
    assert torch.all(mask[:, 1:] <= mask[:, :-1])
    for n, completion in enumerate(rollout.completions_as_lists()):
        finished = bool(rollout.finished_N[n])
        assert (EOS in completion) == finished
        if finished:
            assert completion.index(EOS) == len(completion) - 1  # nothing sampled after EOS
        else:
            assert len(completion) == max_new_tokens


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_sampler_logp_equals_teacher_forced(model, temperature):
    engine = HFRolloutEngine(model, eos_token_id=EOS, pad_token_id=PAD)
    rollout = engine.generate(
        PROMPTS, samples_per_prompt=3, max_new_tokens=10, temperature=temperature, seed=1
    )
    _check_layout(rollout, 10)
    assert rollout.completion_ids_NT.shape == (12, 10)
    for n, logq_LV in enumerate(_teacher_forced_logq(model, PROMPTS, rollout, temperature)):
        length = logq_LV.shape[0]
        tokens = rollout.completion_ids_NT[n, :length]
        expected = logq_LV.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
        torch.testing.assert_close(rollout.logp_NT[n, :length], expected, atol=1e-4, rtol=0)


def test_top_p_samples_lie_in_the_nucleus(model):
    top_p = 0.6
    engine = HFRolloutEngine(model, eos_token_id=EOS, pad_token_id=PAD)
    rollout = engine.generate(PROMPTS, samples_per_prompt=4, max_new_tokens=8, top_p=top_p, seed=2)
    _check_layout(rollout, 8)
    renormalised = 0
    for n, logq_LV in enumerate(_teacher_forced_logq(model, PROMPTS, rollout, 1.0)):
        for t, logq_V in enumerate(logq_LV):
            token = int(rollout.completion_ids_NT[n, t])
            q_sorted, order = logq_V.exp().sort(descending=True)
            mass_before = q_sorted.cumsum(0) - q_sorted
            nucleus = order[mass_before < top_p]
            assert token in nucleus.tolist()
            logp = rollout.logp_NT[n, t]
            assert logp >= logq_V[token] - 1e-5
            # Exactly the renormalised probability, which is strictly larger when the nucleus is a subset.
            expected = logq_V[token] - torch.logsumexp(logq_V[nucleus], dim=0)
            torch.testing.assert_close(logp, expected, atol=1e-4, rtol=0)
            renormalised += int(len(nucleus) < VOCAB)
    assert renormalised > 0  # the test exercised a real truncation


def test_same_seed_same_rollout_different_seed_differs(model):
    engine = HFRolloutEngine(model, eos_token_id=EOS, pad_token_id=PAD, max_batch_sequences=5)
    kwargs = dict(samples_per_prompt=4, max_new_tokens=6, temperature=1.3, top_p=0.9)
    a = engine.generate(PROMPTS, seed=7, **kwargs)
    b = engine.generate(PROMPTS, seed=7, **kwargs)
    c = engine.generate(PROMPTS, seed=8, **kwargs)
    for field in ("prompt_index_N", "completion_ids_NT", "completion_mask_NT", "logp_NT", "finished_N"):
        assert torch.equal(getattr(a, field), getattr(b, field)), field
    assert not torch.equal(a.completion_ids_NT, c.completion_ids_NT)


@pytest.mark.parametrize("pad_token_id", [PAD, EOS])  # pad == eos is common in real tokenizers
def test_eos_ends_sequences(pad_token_id):
    # An EOS bias that ends some sequences early and leaves others running to max_new_tokens.
    model = _with_eos_bias(_tiny_llama(), bias=4.0)
    engine = HFRolloutEngine(model, eos_token_id=EOS, pad_token_id=pad_token_id)
    rollout = engine.generate(PROMPTS, samples_per_prompt=8, max_new_tokens=6, seed=3)
    finished = rollout.finished_N
    assert finished.any() and not finished.all()
    lengths = rollout.lengths_N
    assert lengths.min() < 6 and lengths.max() == 6
    ids, mask = rollout.completion_ids_NT, rollout.completion_mask_NT
    assert torch.all(ids[~mask] == pad_token_id) and torch.all(rollout.logp_NT[~mask] == 0.0)
    rows = torch.arange(len(lengths))
    assert torch.all(ids[rows, lengths - 1][finished] == EOS)  # finished rows end on EOS ...
    assert torch.all((ids[~finished] != EOS)[mask[~finished]])  # ... and unfinished rows hold none
    assert torch.all(mask[:, 1:] <= mask[:, :-1])
    # The teacher-forced log-probs hold on sequences of mixed lengths as well.
    for n, logq_LV in enumerate(_teacher_forced_logq(model, PROMPTS, rollout, 1.0)):
        tokens = ids[n, : lengths[n]]
        expected = logq_LV.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
        torch.testing.assert_close(rollout.logp_NT[n, : lengths[n]], expected, atol=1e-4, rtol=0)


def test_chunk_stops_when_every_sequence_has_finished():
    model = _with_eos_bias(_tiny_llama(), bias=100.0)  # EOS is certain at the first step
    engine = HFRolloutEngine(model, eos_token_id=EOS, pad_token_id=PAD)
    rollout = engine.generate(PROMPTS, samples_per_prompt=2, max_new_tokens=20, seed=0)
    assert rollout.completion_ids_NT.shape == (8, 1)
    assert torch.all(rollout.completion_ids_NT == EOS) and rollout.finished_N.all()
    assert torch.all(rollout.lengths_N == 1)


@pytest.mark.parametrize(("samples_per_prompt", "max_batch_sequences"), [(3, 4), (5, 2), (2, 1000)])
def test_chunking_keeps_order_and_shapes(model, samples_per_prompt, max_batch_sequences):
    # Chunks that split a prompt's group across chunks (3, 4) and (5, 2), and a single chunk.
    engine = HFRolloutEngine(
        model, eos_token_id=EOS, pad_token_id=PAD, max_batch_sequences=max_batch_sequences
    )
    rollout = engine.generate(PROMPTS, samples_per_prompt=samples_per_prompt, max_new_tokens=5, seed=4)
    n = len(PROMPTS) * samples_per_prompt
    assert rollout.completion_ids_NT.shape == (n, 5)
    assert rollout.prompt_index_N.tolist() == [i // samples_per_prompt for i in range(n)]
    _check_layout(rollout, 5)
    # Every chunk attached each sample to its own prompt's cache: teacher forcing agrees.
    for i, logq_LV in enumerate(_teacher_forced_logq(model, PROMPTS, rollout, 1.0)):
        tokens = rollout.completion_ids_NT[i, : logq_LV.shape[0]]
        expected = logq_LV.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
        torch.testing.assert_close(rollout.logp_NT[i, : logq_LV.shape[0]], expected, atol=1e-4, rtol=0)


def test_restores_training_flag(model):
    engine = HFRolloutEngine(model, eos_token_id=EOS, pad_token_id=PAD)
    model.train()
    try:
        engine.generate([[BOS, 3]], max_new_tokens=2, seed=0)
        assert model.training
    finally:
        model.eval()
    engine.generate([[BOS, 3]], max_new_tokens=2, seed=0)
    assert not model.training


@pytest.mark.parametrize(
    ("prompts", "kwargs", "match"),
    [
        ([], {}, "prompt_ids is empty"),
        ([[BOS], []], {}, "prompt 1 is empty"),
        ([[BOS]], {"samples_per_prompt": 0}, "samples_per_prompt"),
        ([[BOS]], {"max_new_tokens": 0}, "max_new_tokens"),
        ([[BOS]], {"temperature": 0.0}, "temperature"),
        ([[BOS]], {"temperature": -1.0}, "temperature"),
        ([[BOS]], {"temperature": float("nan")}, "temperature"),
        ([[BOS]], {"top_p": 0.0}, "top_p"),
        ([[BOS]], {"top_p": 1.5}, "top_p"),
        ([[BOS]], {"max_new_tokens": 128}, "max_position_embeddings"),
        ([[BOS, VOCAB]], {}, "token ids"),
        ([[-1]], {}, "token ids"),
    ],
)
def test_rejects_bad_inputs(model, prompts, kwargs, match):
    engine = HFRolloutEngine(model, eos_token_id=EOS, pad_token_id=PAD)
    kwargs = {"max_new_tokens": 3, **kwargs}
    with pytest.raises(ValueError, match=match):
        engine.generate(prompts, **kwargs)


def test_rejects_bad_constructor_arguments(model):
    with pytest.raises(ValueError, match="max_batch_sequences"):
        HFRolloutEngine(model, eos_token_id=EOS, pad_token_id=PAD, max_batch_sequences=0)
    with pytest.raises(ValueError, match="eos_token_id"):
        HFRolloutEngine(model, eos_token_id=VOCAB, pad_token_id=PAD)
