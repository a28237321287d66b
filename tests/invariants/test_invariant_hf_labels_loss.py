"""Weighted NLL with w = 1 and token_mean equals the Hugging Face `labels=` loss (DESIGN "Tests").

Tests may import transformers; reweightlab.math may not.
"""

from __future__ import annotations

import pytest
import torch

from reweightlab.math import reduce_loss, token_logprobs, unit_weights, weighted_nll

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tiny_llama():
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=32,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=64,
    )
    model = transformers.LlamaForCausalLM(config)
    model.eval()  # no dropout: the two losses must see the same logits
    return model


def _batch():
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 32, (3, 10), generator=g)
    labels = ids.clone()
    labels[:, :4] = -100  # a prompt: not trained on
    labels[1, 8:] = -100  # padding at the end of a shorter row
    labels[2, 5] = -100  # a hole in the middle
    return ids, labels


def _ours(logits, ids, labels, **kwargs):
    # Position t predicts token t + 1, as the HF loss shifts labels internally.
    logp = token_logprobs(logits[:, :-1], ids[:, 1:])
    mask = labels[:, 1:] != -100
    return reduce_loss(weighted_nll(logp, unit_weights(mask)), mask, "token_mean", **kwargs)


def test_weighted_nll_equals_hf_labels_loss(tiny_llama):
    ids, labels = _batch()
    out = tiny_llama(input_ids=ids, labels=labels)
    ours = _ours(out.logits, ids, labels)
    assert float(out.loss.detach()) > 1.0  # an untrained model: the loss is ~log(32), not trivially 0
    torch.testing.assert_close(ours, out.loss, atol=1e-5, rtol=0)


def test_gradients_match_hf(tiny_llama):
    ids, labels = _batch()
    params = [p for p in tiny_llama.parameters() if p.requires_grad]
    out = tiny_llama(input_ids=ids, labels=labels)
    grads_hf = torch.autograd.grad(out.loss, params)
    grads_ours = torch.autograd.grad(_ours(tiny_llama(input_ids=ids).logits, ids, labels), params)
    for a, b in zip(grads_ours, grads_hf, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-4)


def test_global_tokens_equals_hf_num_items_in_batch(tiny_llama):
    """HF's gradient-accumulation fix divides by `num_items_in_batch`; ours by `global_tokens`."""
    ids, labels = _batch()
    out = tiny_llama(input_ids=ids, labels=labels, num_items_in_batch=40)
    ours = _ours(out.logits, ids, labels, global_tokens=40)
    valid = int((labels[:, 1:] != -100).sum())
    assert valid != 40  # otherwise this would not test anything beyond the plain mean
    torch.testing.assert_close(ours, out.loss, atol=1e-5, rtol=0)
