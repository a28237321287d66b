from __future__ import annotations

import pytest
import torch

from reweightlab.math import clipped_surrogate, weighted_nll


def test_weighted_nll_per_sequence_and_per_token():
    logp = torch.tensor([[-1.0, -2.0], [-0.5, -4.0]])
    torch.testing.assert_close(
        weighted_nll(logp, torch.tensor([2.0, -1.0])), torch.tensor([[2.0, 4.0], [-0.5, -4.0]])
    )
    w_bt = torch.tensor([[1.0, 0.0], [3.0, 0.5]])
    torch.testing.assert_close(weighted_nll(logp, w_bt), torch.tensor([[1.0, 0.0], [1.5, 2.0]]))
    torch.testing.assert_close(weighted_nll(logp, 1.0), -logp)


def test_weighted_nll_detaches_weights_and_gradient_is_minus_w():
    logp = torch.tensor([[-1.0, -2.0], [-0.5, -4.0]], requires_grad=True)
    w = torch.tensor([2.0, -1.0], requires_grad=True)
    weighted_nll(logp, w).sum().backward()
    assert w.grad is None
    torch.testing.assert_close(logp.grad, torch.tensor([[-2.0, -2.0], [1.0, 1.0]]))


def test_weighted_nll_rejects_bad_weight_shape():
    with pytest.raises(ValueError):
        weighted_nll(torch.zeros(2, 3), torch.ones(3))


def test_clipped_surrogate_values_by_hand():
    logp_old = torch.zeros(1, 4)
    # ratios 1.5, 0.5, 1.1, 1.5
    logp = torch.log(torch.tensor([[1.5, 0.5, 1.1, 1.5]]))
    adv = torch.tensor([[1.0, 1.0, -2.0, -1.0]])
    loss, clipped = clipped_surrogate(logp, logp_old, adv, eps_low=0.2)
    # A>0, r=1.5: min(1.5, 1.2) = 1.2 (clipped).  A>0, r=0.5: min(0.5, 0.8) = 0.5 (unclipped).
    # A<0, r=1.1: min(-2.2, -2.2): within the range.  A<0, r=1.5: min(-1.5, -1.2) = -1.5 (unclipped).
    torch.testing.assert_close(loss, torch.tensor([[-1.2, -0.5, 2.2, 1.5]]))
    assert clipped.tolist() == [[True, False, False, False]]
    assert clipped.dtype == torch.bool


def test_clipped_surrogate_gradient_zero_exactly_where_clipped():
    logp_old = torch.zeros(2, 3)
    logp = torch.log(torch.tensor([[1.5, 0.5, 1.0], [0.7, 1.3, 0.9]])).requires_grad_()
    adv = torch.tensor([1.0, -1.0])
    loss, clipped = clipped_surrogate(logp, logp_old, adv, eps_low=0.2, eps_high=0.28)
    loss.sum().backward()
    assert bool((logp.grad[clipped] == 0).all())
    assert bool((logp.grad[~clipped] != 0).all())
    # row 0, r=1.5 > 1.28 with A>0 is clipped; row 1, r=0.7 < 0.8 with A<0 is clipped
    assert clipped.tolist() == [[True, False, False], [True, False, False]]


def test_clipped_surrogate_asymmetric_eps():
    logp_old = torch.zeros(1, 1)
    logp = torch.log(torch.tensor([[1.25]]))
    adv = torch.ones(1)
    _, sym = clipped_surrogate(logp, logp_old, adv, eps_low=0.2)
    _, asym = clipped_surrogate(logp, logp_old, adv, eps_low=0.2, eps_high=0.28)
    assert sym.item() and not asym.item()


def test_clipped_surrogate_extreme_ratio_keeps_gradient_finite():
    logp = torch.tensor([[0.0, -200.0]], requires_grad=True)
    logp_old = torch.tensor([[-200.0, 0.0]])
    loss, _ = clipped_surrogate(logp, logp_old, torch.tensor([[1.0, -1.0]]))
    loss.sum().backward()
    assert bool(torch.isfinite(loss).all()) and bool(torch.isfinite(logp.grad).all())


def test_clipped_surrogate_validation():
    with pytest.raises(ValueError):
        clipped_surrogate(torch.zeros(2, 3), torch.zeros(2, 2), torch.zeros(2))
    with pytest.raises(ValueError):
        clipped_surrogate(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(3))
    with pytest.raises(ValueError):
        clipped_surrogate(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2), eps_low=1.5)
