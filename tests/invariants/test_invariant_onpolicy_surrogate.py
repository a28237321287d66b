"""On-policy, the clipped surrogate has exactly REINFORCE's gradient -A grad logp."""

from __future__ import annotations

import pytest
import torch

from reweightlab.math import clipped_surrogate, reduce_loss, token_logprobs, weighted_nll

B, T, D, V = 4, 5, 6, 9


def _model_and_batch(seed):
    """A tiny linear softmax policy: logits = features @ W; tokens sampled from it."""
    g = torch.Generator().manual_seed(seed)
    features = torch.randn(B, T, D, generator=g)
    weight = (0.5 * torch.randn(D, V, generator=g)).requires_grad_()
    with torch.no_grad():
        probs = torch.softmax(features @ weight, -1)
        tokens = torch.multinomial(probs.reshape(-1, V), 1, generator=g).reshape(B, T)
    mask = torch.ones(B, T, dtype=torch.bool)
    mask[1, 3:] = False
    mask[3, 1:] = False
    return features, weight, tokens, mask, g


def _grad(loss, weight):
    (grad,) = torch.autograd.grad(loss, weight)
    return grad


@pytest.mark.parametrize("adv_kind", ["sequence", "token"])
@pytest.mark.parametrize("eps", [(0.2, None), (0.1, 0.28)])
@pytest.mark.parametrize("mode", ["token_mean", "seq_mean"])
def test_onpolicy_clipped_gradient_equals_reinforce(adv_kind, eps, mode):
    features, weight, tokens, mask, g = _model_and_batch(0)
    adv = torch.randn(B, generator=g) if adv_kind == "sequence" else torch.randn(B, T, generator=g)
    logp = token_logprobs(features @ weight, tokens)
    loss_clip, clipped = clipped_surrogate(logp, logp.detach(), adv, eps_low=eps[0], eps_high=eps[1])
    grad_clip = _grad(reduce_loss(loss_clip, mask, mode), weight)
    logp = token_logprobs(features @ weight, tokens)
    grad_pg = _grad(reduce_loss(weighted_nll(logp, adv), mask, mode), weight)
    assert not bool(clipped.any())  # ratio = 1 is inside every clip range
    assert float(grad_pg.abs().max()) > 1e-3  # a real gradient, not 0 == 0
    torch.testing.assert_close(grad_clip, grad_pg, atol=1e-6, rtol=0)


def test_offpolicy_clipped_gradient_differs():
    """The identity is specific to ratio = 1: with a stale logp_old, the gradients differ."""
    features, weight, tokens, mask, g = _model_and_batch(1)
    adv = torch.randn(B, generator=g)
    logp = token_logprobs(features @ weight, tokens)
    stale = logp.detach() + 0.3 * torch.randn(B, T, generator=g)
    grad_clip = _grad(reduce_loss(clipped_surrogate(logp, stale, adv)[0], mask, "token_mean"), weight)
    logp = token_logprobs(features @ weight, tokens)
    grad_pg = _grad(reduce_loss(weighted_nll(logp, adv), mask, "token_mean"), weight)
    assert float((grad_clip - grad_pg).abs().max()) > 1e-3


def test_passing_logp_itself_as_logp_old_is_safe():
    """logp_old is detached inside: `clipped_surrogate(logp, logp, adv)` still has REINFORCE's gradient
    (without the detach, the ratio would be constant 1 and the gradient 0)."""
    features, weight, tokens, mask, g = _model_and_batch(2)
    adv = torch.randn(B, generator=g)
    logp = token_logprobs(features @ weight, tokens)
    grad_clip = _grad(reduce_loss(clipped_surrogate(logp, logp, adv)[0], mask, "token_mean"), weight)
    logp = token_logprobs(features @ weight, tokens)
    grad_pg = _grad(reduce_loss(weighted_nll(logp, adv), mask, "token_mean"), weight)
    assert float(grad_pg.abs().max()) > 1e-3
    torch.testing.assert_close(grad_clip, grad_pg, atol=1e-6, rtol=0)
