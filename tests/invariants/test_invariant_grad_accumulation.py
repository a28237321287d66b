"""Gradient accumulation equals the full batch only with the step's global count."""

from __future__ import annotations

import pytest
import torch

from reweightlab.math import reduce_loss, token_logprobs, weighted_nll

V, D = 11, 5
LENGTHS = [2, 7, 3, 8]  # micro-batches [0, 1] and [2, 3] hold 9 and 11 tokens: unequal on purpose
T = max(LENGTHS)


def _setup():
    g = torch.Generator().manual_seed(0)
    emb = torch.randn(V, D, generator=g)
    head = torch.randn(D, V, generator=g).requires_grad_()
    ids = torch.randint(0, V, (len(LENGTHS), T + 1), generator=g)
    mask = torch.arange(T).unsqueeze(0) < torch.tensor(LENGTHS).unsqueeze(1)
    weights = torch.rand(len(LENGTHS), generator=g) + 0.5  # any per-sequence weight, e.g. advantages
    return emb, head, ids, mask, weights


def _loss(head, emb, ids, mask, weights, rows, mode, **counts):
    logits = emb[ids[rows, :-1]] @ head
    logp = token_logprobs(logits, ids[rows, 1:])
    return reduce_loss(weighted_nll(logp, weights[rows]), mask[rows], mode, **counts)


def _grad(loss, head):
    (grad,) = torch.autograd.grad(loss, head)
    return grad


MICRO = [slice(0, 2), slice(2, 4)]
FULL = slice(0, 4)


@pytest.mark.parametrize(
    "mode, counts",
    [
        ("token_mean", {"global_tokens": sum(LENGTHS)}),
        ("seq_mean", {"global_sequences": len(LENGTHS)}),
        ("sum_over_constant", {"constant": 4 * T}),
    ],
)
def test_accumulated_equals_full_batch_with_global_count(mode, counts):
    emb, head, ids, mask, weights = _setup()
    # the full batch needs no global count, except the constant that sum_over_constant always needs
    full_counts = counts if mode == "sum_over_constant" else {}
    full = _grad(_loss(head, emb, ids, mask, weights, FULL, mode, **full_counts), head)
    accumulated = sum(
        _grad(_loss(head, emb, ids, mask, weights, rows, mode, **counts), head) for rows in MICRO
    )
    assert float(full.abs().max()) > 1e-2
    torch.testing.assert_close(accumulated, full, atol=1e-6, rtol=1e-5)


def test_mean_of_micro_batch_means_differs_for_token_mean():
    """Without the global token count, each micro-batch normalises by its own 9 or 11 tokens."""
    emb, head, ids, mask, weights = _setup()
    full = _grad(_loss(head, emb, ids, mask, weights, FULL, "token_mean"), head)
    per_micro = [_grad(_loss(head, emb, ids, mask, weights, rows, "token_mean"), head) for rows in MICRO]
    naive = (per_micro[0] + per_micro[1]) / 2
    assert float((naive - full).abs().max()) > 1e-3
