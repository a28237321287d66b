"""Distance from base on tiny models: exact KL against a manual forward, zero for identical
models, k1/k3 agreeing with the exact KL on the trained model's samples, and the base likelihood of
successes."""

import copy
import math

import pytest
import torch

from reweightlab.data.encoding import encode_completions, encode_prompts
from reweightlab.data.store import SequenceStore, microbatches
from reweightlab.math import exact_kl, kl_estimate
from reweightlab.models import build_char_tokenizer, load_model, load_tokenizer
from reweightlab.models.forward import forward_logits_logp
from reweightlab.probe.distance import base_loglik_of_successes, check_same_tokenizer, distance_from_base
from reweightlab.rollout import HFRolloutEngine

PROMPTS = ["1:", "23:", "4:", "567:", "8:", "9+9=", "0:"]
COMPLETIONS = ["12", "3", "4567", "", "89", "1", "222222"]


@pytest.fixture(scope="module")
def tok(tiny_model_dir):
    return load_tokenizer(tiny_model_dir)


@pytest.fixture(scope="module")
def base(tiny_model_dir):
    return load_model(tiny_model_dir)


@pytest.fixture(scope="module")
def trained(base):
    """A perturbed copy of the base: noise on the output embedding (tied to the input one here)."""
    model = copy.deepcopy(base)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        w = model.get_output_embeddings().weight
        w.add_(0.1 * torch.randn(w.shape, generator=gen))
    return model


def _store(tok, prompts, completions, **columns) -> SequenceStore:
    # varied prompt and completion lengths (one empty completion: EOS only), so micro-batches pad and reorder
    return SequenceStore.from_lists(
        encode_prompts(tok, prompts), encode_completions(tok, completions), tok.pad_token_id, **columns
    )


def _manual_sequence(model, store, n):
    """float64 log-softmax of one unpadded sequence alone, at its completion target positions."""
    ids = store.ids_NL[n, : int(store.total_len_N[n])][None]
    logits = model(input_ids=ids).logits[0, :-1].double()
    p_len = int(store.prompt_len_N[n])
    return torch.log_softmax(logits, -1)[p_len - 1 :], ids[0, p_len:]  # target t predicts token t+1


def test_identical_models_are_at_distance_zero(tok, base, tiny_model_dir):
    store = _store(tok, PROMPTS, COMPLETIONS)
    for other in (base, load_model(tiny_model_dir)):  # the same object, and an independent load
        d = distance_from_base(other, base, store, sequences_per_microbatch=3)
        assert d["tokens"] == store.completion_tokens()
        for key in ("kl_exact_per_token", "kl_k1_per_token", "kl_k3_per_token", "kl_exact_per_sequence"):
            assert abs(d[key]) <= 1e-6, (key, d[key])


@torch.no_grad()
def test_exact_kl_equals_a_manual_forward_and_is_batch_invariant(tok, base, trained):
    store = _store(tok, PROMPTS, COMPLETIONS)
    per_seq = []
    for n in range(len(store)):
        logp_t, _ = _manual_sequence(trained, store, n)
        logp_b, _ = _manual_sequence(base, store, n)
        per_seq.append(float((logp_t.exp() * (logp_t - logp_b)).sum()))
    tokens = store.completion_tokens()
    want_token, want_seq = sum(per_seq) / tokens, sum(per_seq) / len(store)
    assert want_token > 1e-3  # the perturbation is visible, so the comparison tests something
    small = distance_from_base(trained, base, store, sequences_per_microbatch=3)
    whole = distance_from_base(trained, base, store, sequences_per_microbatch=128)
    for d in (small, whole):
        assert d["tokens"] == tokens
        assert abs(d["kl_exact_per_token"] - want_token) <= 1e-4
        assert abs(d["kl_exact_per_sequence"] - want_seq) <= 1e-4
    for key in small:
        assert abs(small[key] - whole[key]) <= 1e-6, key
    # direction: KL(trained || base), not KL(base || trained)
    swapped = distance_from_base(base, trained, store)
    assert abs(swapped["kl_exact_per_token"] - want_token) > 1e-3


@torch.no_grad()
def _per_token(trained, base, store):
    """Per completion token: (exact KL, k1, k3), flattened, from the library's batched forwards."""
    exact, k1, k3 = [], [], []
    for mb in microbatches(store, 256):
        logits_t, logp_t = forward_logits_logp(trained, mb)
        logits_b, logp_b = forward_logits_logp(base, mb)
        m = mb.mask_BT.bool()
        exact.append(exact_kl(logits_t, logits_b)[m].double())
        k1.append(kl_estimate(logp_t, logp_b, "k1")[m].double())
        k3.append(kl_estimate(logp_t, logp_b, "k3")[m].double())
    return torch.cat(exact), torch.cat(k1), torch.cat(k3)


def test_sample_estimates_agree_with_the_exact_kl_on_trained_samples(tok, base, trained):
    prompt_ids = encode_prompts(tok, [f"{i}:" for i in range(64)])
    engine = HFRolloutEngine(trained, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    rollout = engine.generate(prompt_ids, samples_per_prompt=16, max_new_tokens=8, temperature=1.0, seed=0)
    store = SequenceStore.from_rollout(prompt_ids, rollout, tok.pad_token_id)
    d = distance_from_base(trained, base, store)
    exact, k1, k3 = _per_token(trained, base, store)
    N = exact.numel()
    assert d["tokens"] == N > 4000
    assert abs(d["kl_exact_per_token"] - float(exact.mean())) <= 1e-6
    assert d["kl_exact_per_token"] > 0.02  # large enough that a wrong estimator would show
    assert (k3 >= 0).all() and d["kl_k3_per_token"] >= 0
    # Tolerance: at position t, given the prefix, E[k_t] = KL_t(prefix) when the token is drawn from the
    # trained model at temperature 1. So d_t = k_t - KL_t are martingale differences (stopping at EOS is
    # decided by earlier tokens): uncorrelated, even within a sequence, and
    # Var(sum_t d_t) = sum_t E[d_t^2]. The standard error of mean(k) - mean(KL) is therefore
    # sqrt(sum_t d_t^2) / N, estimated from these samples; we allow 4 standard errors (a false failure
    # about 1 run in 16,000 under normality), and the seed is fixed so the test is deterministic.
    for key, k in (("kl_k1_per_token", k1), ("kl_k3_per_token", k3)):
        se = math.sqrt(float(((k - exact) ** 2).sum())) / N
        assert abs(d[key] - float(k.mean())) <= 1e-6, key
        assert abs(d[key] - d["kl_exact_per_token"]) <= 4 * se, (key, d[key], d["kl_exact_per_token"], se)
        assert 4 * se < 0.25 * d["kl_exact_per_token"], (key, se)  # the check has power


def test_check_same_tokenizer(tok, tiny_model_dir):
    check_same_tokenizer(tok, load_tokenizer(tiny_model_dir))
    check_same_tokenizer(tok, build_char_tokenizer())
    bigger = copy.deepcopy(tok)
    bigger.add_tokens(["<x>"])
    with pytest.raises(ValueError, match="different tokenizers"):
        check_same_tokenizer(tok, bigger)


@torch.no_grad()
def test_base_loglik_of_successes_matches_a_manual_forward(tok, base):
    success = [1, 0, 1, 1, 0, 0, 1]
    store = _store(tok, PROMPTS, COMPLETIONS, success_N=success)
    seq_logp, n_tokens = [], 0
    for n in range(len(store)):
        if success[n]:
            logp, targets = _manual_sequence(base, store, n)
            seq_logp.append(float(logp.gather(1, targets[:, None]).sum()))
            n_tokens += targets.numel()
    got = base_loglik_of_successes(base, store, sequences_per_microbatch=2)
    assert got["n"] == 4 and got["tokens"] == n_tokens
    mean_token = sum(seq_logp) / n_tokens
    assert abs(got["base_logp_per_token"] - mean_token) <= 1e-4
    assert abs(got["base_perplexity_per_token"] - math.exp(-mean_token)) <= 1e-4 * math.exp(-mean_token)
    assert abs(got["base_logp_per_sequence"] - sum(seq_logp) / 4) <= 1e-4
    # failures are excluded: every sequence counted gives a different answer
    all_in = base_loglik_of_successes(base, _store(tok, PROMPTS, COMPLETIONS, success_N=[1] * 7))
    assert all_in["n"] == 7 and abs(all_in["base_logp_per_token"] - mean_token) > 1e-3

    none = base_loglik_of_successes(base, _store(tok, PROMPTS, COMPLETIONS, success_N=[0] * 7))
    assert none["n"] == 0 and none["base_logp_per_token"] is None and none["base_perplexity_per_token"] is None
    assert none["base_logp_per_sequence"] is None
    with pytest.raises(ValueError, match="success"):
        base_loglik_of_successes(base, _store(tok, PROMPTS, COMPLETIONS))
