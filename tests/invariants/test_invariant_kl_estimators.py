"""KL estimators against exact expectations on a categorical.

Completions y of a categorical play the role of sampled tokens: E_{y~pi}[k(y)] is computed exactly as
sum_y pi(y) k(y), so there is no sampling error and the tolerances are float64 round-off.
"""

from __future__ import annotations

import pytest
import torch

from reweightlab.math import exact_kl, kl_estimate

# An asymmetric pair: KL(pi || ref) = 1.25 and KL(ref || pi) = 1.89 differ by far more than any
# tolerance below.
PI = torch.tensor([0.6, 0.3, 0.07, 0.02, 0.007, 0.003], dtype=torch.float64)
REF = torch.tensor([0.1, 0.1, 0.2, 0.2, 0.2, 0.2], dtype=torch.float64)
LOGP, LOGP_REF = PI.log().unsqueeze(0), REF.log().unsqueeze(0)  # [1, Y]: Y "tokens" of one row


def _expect_under_pi(values_1Y):
    return (PI * values_1Y[0]).sum()


def _kl(p, q):
    return (p * (p / q).log()).sum()


def test_the_pair_is_asymmetric():
    assert abs(float(_kl(PI, REF) - _kl(REF, PI))) > 0.5
    # exact_kl agrees with the definition and takes its arguments as (p, q) for KL(p || q)
    torch.testing.assert_close(exact_kl(LOGP, LOGP_REF)[0], _kl(PI, REF), atol=1e-12, rtol=0)


@pytest.mark.parametrize("estimator", ["k1", "k3"])
def test_unbiased_estimators_expect_kl_pi_ref(estimator):
    expectation = _expect_under_pi(kl_estimate(LOGP, LOGP_REF, estimator))
    torch.testing.assert_close(expectation, _kl(PI, REF), atol=1e-12, rtol=0)
    # ... and not the other direction: the test can tell the two apart.
    assert abs(float(expectation - _kl(REF, PI))) > 0.5


def test_k2_expects_half_squared_log_ratio():
    expectation = _expect_under_pi(kl_estimate(LOGP, LOGP_REF, "k2"))
    expected = (PI * 0.5 * (REF / PI).log().square()).sum()
    torch.testing.assert_close(expectation, expected, atol=1e-12, rtol=0)
    # k2 is biased for the KL itself (small bias only when pi ~ ref): it is not the KL here.
    assert abs(float(expectation - _kl(PI, REF))) > 0.05


@pytest.mark.parametrize("estimator", ["k1", "k3"])
def test_backwards_direction_would_be_caught(estimator):
    """The published bug: log_r = logp - logp_ref (arguments swapped). Under samples from pi, its
    expectation is not KL(pi || ref); this is the check that would catch it."""
    swapped = _expect_under_pi(kl_estimate(LOGP_REF, LOGP, estimator))
    assert abs(float(swapped - _kl(PI, REF))) > 0.1


def _expected_gradient(estimator):
    """E_{y~pi}[grad_theta k(y)] with the sampling distribution held fixed, i.e. what autograd
    computes on sampled tokens, averaged exactly: sum_y sg(pi(y)) grad k(logp_theta(y))."""
    theta = PI.log().clone().requires_grad_()
    logp = torch.log_softmax(theta, -1).unsqueeze(0)
    k = kl_estimate(logp, LOGP_REF, estimator)[0]
    (grad,) = torch.autograd.grad((PI * k).sum(), theta)
    return grad


def _kl_gradient(direction):
    theta = PI.log().clone().requires_grad_()
    p = torch.softmax(theta, -1)
    kl = _kl(p, REF) if direction == "pi||ref" else _kl(REF, p)
    (grad,) = torch.autograd.grad(kl, theta)
    return grad


def test_estimator_gradients_used_as_losses():
    """What each estimator does as a loss term (Tang & Munos, arXiv 2506.09477): only k2's expected
    gradient is the gradient of KL(pi || ref), the free energy's regulariser."""
    forward, reverse = _kl_gradient("pi||ref"), _kl_gradient("ref||pi")
    assert float((forward - reverse).abs().max()) > 0.1
    torch.testing.assert_close(
        _expected_gradient("k1"), torch.zeros(6, dtype=torch.float64), atol=1e-12, rtol=0
    )
    torch.testing.assert_close(_expected_gradient("k2"), forward, atol=1e-12, rtol=0)
    torch.testing.assert_close(_expected_gradient("k3"), reverse, atol=1e-12, rtol=0)


def test_sampled_mean_matches_expectation():
    """The same estimators on actual samples from pi: within 5 standard errors of the exact KL."""
    gen = torch.Generator().manual_seed(0)
    n = 100_000
    y = torch.multinomial(PI, n, replacement=True, generator=gen).unsqueeze(0)
    for estimator in ("k1", "k3"):
        k = kl_estimate(LOGP.gather(-1, y), LOGP_REF.gather(-1, y), estimator)
        se = float(k.std()) / n**0.5
        assert abs(float(k.mean() - _kl(PI, REF))) < 5 * se, estimator
