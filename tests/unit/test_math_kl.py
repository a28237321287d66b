from __future__ import annotations

import math

import pytest
import torch

from reweightlab.math import KL_ESTIMATORS, exact_kl, kl_estimate

LOGP = torch.log(torch.tensor([[0.5, 0.2, 0.9]]))
LOGP_REF = torch.log(torch.tensor([[0.25, 0.4, 0.9]]))


def test_kl_estimators_by_hand():
    # log_r = log(ref / pi) = [log 0.5, log 2, 0]
    log_r = [math.log(0.5), math.log(2.0), 0.0]
    k1 = [-x for x in log_r]
    k2 = [x * x / 2 for x in log_r]
    k3 = [math.exp(x) - 1 - x for x in log_r]
    for name, expected in (("k1", k1), ("k2", k2), ("k3", k3)):
        torch.testing.assert_close(
            kl_estimate(LOGP, LOGP_REF, name), torch.tensor([expected]), atol=1e-6, rtol=0
        )


def test_kl_estimators_zero_when_equal_and_k2_k3_nonnegative():
    g = torch.Generator().manual_seed(0)
    a = -torch.rand(4, 5, generator=g) * 4
    b = -torch.rand(4, 5, generator=g) * 4
    for name in KL_ESTIMATORS:
        assert torch.equal(kl_estimate(a, a, name), torch.zeros(4, 5))
    assert bool((kl_estimate(a, b, "k2") >= 0).all())
    assert bool((kl_estimate(a, b, "k3") >= 0).all())


def test_kl_estimate_gradient_flows_through_policy_only():
    logp = LOGP.clone().requires_grad_()
    logp_ref = LOGP_REF.clone().requires_grad_()
    kl_estimate(logp, logp_ref, "k1").sum().backward()
    assert logp_ref.grad is None
    torch.testing.assert_close(logp.grad, torch.ones_like(LOGP))  # d(logp - logp_ref)/d logp = 1


def test_k3_is_accurate_near_zero():
    # exp(x) - 1 - x for x = 1e-4 is ~5e-9; naive float32 evaluation loses it entirely.
    logp = torch.tensor([[-1.0]])
    logp_ref = logp + 1e-4
    x = float(logp_ref - logp)  # the float32 log-ratio actually seen, ~1e-4
    got = kl_estimate(logp, logp_ref, "k3")
    torch.testing.assert_close(got, torch.tensor([[x * x / 2 + x**3 / 6]]), atol=0, rtol=1e-5)
    naive = torch.exp(torch.tensor(x)) - 1 - x
    assert abs(float(naive) - x * x / 2) > 1e-2 * x * x  # the naive form really is inaccurate here


def test_unknown_estimator_lists_allowed():
    with pytest.raises(ValueError) as err:
        kl_estimate(LOGP, LOGP_REF, "k4")
    assert all(name in str(err.value) for name in KL_ESTIMATORS)


def test_exact_kl_matches_definition_and_direction():
    g = torch.Generator().manual_seed(1)
    zp = torch.randn(2, 3, 7, generator=g)
    zq = torch.randn(2, 3, 7, generator=g)
    p, q = zp.softmax(-1), zq.softmax(-1)
    expected = (p * (p.log() - q.log())).sum(-1)
    torch.testing.assert_close(exact_kl(zp, zq), expected, atol=1e-6, rtol=0)
    reverse = (q * (q.log() - p.log())).sum(-1)
    assert float((exact_kl(zp, zq) - reverse).abs().max()) > 1e-2  # KL is asymmetric; direction matters
    assert torch.equal(exact_kl(zp, zp), torch.zeros(2, 3))


def test_exact_kl_zero_probability_and_bf16():
    zp = torch.tensor([[[0.0, float("-inf"), 1.0]]], requires_grad=True)
    zq = torch.tensor([[[0.5, 2.0, 0.0]]])
    kl = exact_kl(zp, zq)
    p = torch.tensor([1.0, 0.0, math.e]) / (1 + math.e)
    q = zq[0, 0].softmax(-1)
    expected = p[0] * (p[0] / q[0]).log() + p[2] * (p[2] / q[2]).log()
    torch.testing.assert_close(kl, expected.reshape(1, 1), atol=1e-6, rtol=0)
    kl.sum().backward()
    assert bool(torch.isfinite(zp.grad).all())
    assert exact_kl(zq.to(torch.bfloat16), zq.to(torch.bfloat16)).dtype == torch.float32


def test_sequence_kl_loss_weighs_each_token_by_the_log_ratio_to_go():
    """loss_bt = logp_bt * sg(sum_{t' >= t} m (logp - logp_ref)); zero off the mask; gradient = the weight."""
    from reweightlab.math import sequence_kl_loss

    logp = torch.tensor([[-0.5, -1.0, -0.2], [-0.3, -0.7, -9.0]], requires_grad=True)
    ref = torch.tensor([[-0.7, -0.4, -0.2], [-0.1, -0.2, -1.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    loss = sequence_kl_loss(logp, ref, mask)
    to_go = torch.tensor([[0.2 - 0.6 + 0.0, -0.6 + 0.0, 0.0], [-0.2 - 0.5, -0.5, 0.0]])
    torch.testing.assert_close(loss, logp.detach() * to_go, atol=1e-6, rtol=0)
    loss.sum().backward()
    torch.testing.assert_close(logp.grad, to_go, atol=1e-6, rtol=0)  # the to-go weight is detached
