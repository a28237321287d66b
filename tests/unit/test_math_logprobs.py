from __future__ import annotations

import pytest
import torch

from reweightlab.math import logprobs as lp_mod
from reweightlab.math import token_entropy, token_logprobs


def _reference_logp(logits, tokens):
    return torch.log_softmax(logits.float(), -1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)


def test_token_logprobs_matches_log_softmax_gather():
    g = torch.Generator().manual_seed(0)
    logits = 3 * torch.randn(3, 5, 11, generator=g)
    tokens = torch.randint(0, 11, (3, 5), generator=g)
    got = token_logprobs(logits, tokens)
    assert got.shape == (3, 5) and got.dtype == torch.float32
    torch.testing.assert_close(got, _reference_logp(logits, tokens), atol=1e-5, rtol=0)
    assert bool((got <= 0).all())


def test_token_logprobs_gradient_matches_autograd_reference():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 4, 7, generator=g)
    tokens = torch.randint(0, 7, (2, 4), generator=g)
    upstream = torch.randn(2, 4, generator=g)
    a = logits.clone().requires_grad_()
    b = logits.clone().requires_grad_()
    (token_logprobs(a, tokens) * upstream).sum().backward()
    (_reference_logp(b, tokens) * upstream).sum().backward()
    torch.testing.assert_close(a.grad, b.grad, atol=1e-6, rtol=0)


def test_token_logprobs_gradcheck_float64():
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(2, 3, 5, generator=g, dtype=torch.float64, requires_grad=True)
    tokens = torch.randint(0, 5, (2, 3), generator=g)
    assert torch.autograd.gradcheck(lambda x: token_logprobs(x, tokens), (logits,))


def test_token_logprobs_bf16_is_computed_in_float32():
    g = torch.Generator().manual_seed(3)
    logits = (4 * torch.randn(2, 6, 50, generator=g)).to(torch.bfloat16).requires_grad_()
    tokens = torch.randint(0, 50, (2, 6), generator=g)
    got = token_logprobs(logits, tokens)
    assert got.dtype == torch.float32
    # Same bf16 values, upcast first: only float32 rounding separates them.
    torch.testing.assert_close(got, _reference_logp(logits.detach(), tokens), atol=1e-5, rtol=0)
    got.sum().backward()
    assert logits.grad.dtype == torch.bfloat16
    # d/dz sum_t logp_t = onehot - softmax; each row of it sums to 0 (bf16 rounding: loose tolerance).
    assert float(logits.grad.float().sum(-1).abs().max()) < 2e-2


def test_token_logprobs_chunking_gives_same_result(monkeypatch):
    g = torch.Generator().manual_seed(4)
    logits = torch.randn(3, 7, 13, generator=g, requires_grad=True)
    tokens = torch.randint(0, 13, (3, 7), generator=g)
    whole = token_logprobs(logits, tokens)
    (grad_whole,) = torch.autograd.grad(whole.sum(), logits)
    monkeypatch.setattr(lp_mod, "_CHUNK_ELEMENTS", 13 * 2)  # 2 rows per chunk, 11 chunks
    chunked = token_logprobs(logits, tokens)
    (grad_chunked,) = torch.autograd.grad(chunked.sum(), logits)
    torch.testing.assert_close(chunked, whole, atol=0, rtol=0)
    torch.testing.assert_close(grad_chunked, grad_whole, atol=0, rtol=0)


def test_token_logprobs_rejects_shape_mismatch():
    with pytest.raises(ValueError):
        token_logprobs(torch.zeros(2, 3, 4), torch.zeros(2, 4, dtype=torch.long))


def test_token_entropy_matches_definition():
    g = torch.Generator().manual_seed(5)
    logits = 2 * torch.randn(2, 3, 9, generator=g)
    logp = torch.log_softmax(logits, -1)
    expected = -(logp.exp() * logp).sum(-1)
    torch.testing.assert_close(token_entropy(logits), expected, atol=1e-5, rtol=0)


def test_token_entropy_edge_cases():
    v = 8
    uniform = torch.zeros(1, 1, v)
    torch.testing.assert_close(
        token_entropy(uniform), torch.full((1, 1), torch.log(torch.tensor(8.0)).item())
    )
    # An impossible token (logit -inf) adds 0, not NaN, to the value and to the gradient.
    logits = torch.tensor([[[0.0, 0.0, float("-inf")]]], requires_grad=True)
    h = token_entropy(logits)
    torch.testing.assert_close(h, torch.full((1, 1), torch.log(torch.tensor(2.0)).item()))
    h.sum().backward()
    assert bool(torch.isfinite(logits.grad).all())
    bf16 = torch.randn(2, 4, 16).to(torch.bfloat16)
    assert token_entropy(bf16).dtype == torch.float32
    # Large logits: -sum p log p stays accurate where logsumexp - sum p z would cancel.
    peaked = torch.tensor([[[1e4, 1e4 - 1.0]]])
    small = torch.tensor([[[0.0, -1.0]]])
    torch.testing.assert_close(token_entropy(peaked), token_entropy(small), atol=1e-6, rtol=0)


def test_token_logprobs_large_logits_keep_precision():
    """Shifted by the row max: logits near 1e4 give the same log-probs as the same logits near 0."""
    base = torch.tensor([[[0.0, -1.0, -2.5, 0.5]]], requires_grad=True)
    tokens = torch.tensor([[1]])
    shifted = (base.detach() + 1e4).requires_grad_()
    torch.testing.assert_close(
        token_logprobs(shifted, tokens), token_logprobs(base, tokens), atol=1e-6, rtol=0
    )
    (g_shifted,) = torch.autograd.grad(token_logprobs(shifted, tokens).sum(), shifted)
    (g_base,) = torch.autograd.grad(token_logprobs(base, tokens).sum(), base)
    torch.testing.assert_close(g_shifted, g_base, atol=1e-6, rtol=0)


@pytest.mark.parametrize("chunk_elements", [1 << 24, 13 * 10, 13 * 2])
def test_sliced_logits_take_the_view_path(monkeypatch, chunk_elements):
    """logits[:, :-1] cannot be viewed as [-1, V]; the result must not depend on how it is cut
    (whole slabs of rows, or single rows split in pieces) and must equal the plain computation."""
    from reweightlab.math import exact_kl

    monkeypatch.setattr(lp_mod, "_CHUNK_ELEMENTS", chunk_elements)
    g = torch.Generator().manual_seed(6)
    full = torch.randn(3, 6, 13, generator=g, requires_grad=True)
    other = torch.randn(3, 6, 13, generator=g)
    tokens = torch.randint(0, 13, (3, 5), generator=g)
    sliced = full[:, :-1]
    assert lp_mod._flat_view(sliced) is None  # really the non-viewable case
    got = token_logprobs(sliced, tokens)
    (grad,) = torch.autograd.grad(got.sum(), full)
    ref = _reference_logp(full[:, :-1], tokens)
    (grad_ref,) = torch.autograd.grad(ref.sum(), full)
    torch.testing.assert_close(got, ref, atol=1e-6, rtol=0)
    torch.testing.assert_close(grad, grad_ref, atol=1e-6, rtol=0)
    logp = torch.log_softmax(sliced.detach(), -1)
    torch.testing.assert_close(token_entropy(sliced), -(logp.exp() * logp).sum(-1), atol=1e-5, rtol=0)
    logq = torch.log_softmax(other[:, :-1], -1)
    expected_kl = (logp.exp() * (logp - logq)).sum(-1)
    torch.testing.assert_close(exact_kl(sliced, other[:, :-1]), expected_kl, atol=1e-5, rtol=0)
