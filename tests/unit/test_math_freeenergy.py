"""Free-energy identities on random categoricals (float64: these are analysis numbers)."""

from __future__ import annotations

import math

import pytest
import torch

from reweightlab.math import (
    boltzmann_target,
    exact_kl,
    free_energy,
    free_energy_from_samples,
    free_energy_gap,
    log_partition,
    optimal_free_energy,
    optimal_free_energy_from_samples,
)

P, Y = 5, 8


def _problem(seed):
    g = torch.Generator().manual_seed(seed)
    logp_ref = torch.log_softmax(2 * torch.randn(P, Y, generator=g, dtype=torch.float64), -1)
    logp = torch.log_softmax(2 * torch.randn(P, Y, generator=g, dtype=torch.float64), -1)
    energy = torch.randn(P, Y, generator=g, dtype=torch.float64)
    return logp, logp_ref, energy


@pytest.mark.parametrize("beta", [0.3, 1.0, 3.0])
@pytest.mark.parametrize("seed", [0, 1])
def test_gap_identity_and_optimum(beta, seed):
    logp, logp_ref, energy = _problem(seed)
    f = free_energy(logp, logp_ref, energy, beta)
    f_star = optimal_free_energy(logp_ref, energy, beta)
    logp_star = boltzmann_target(logp_ref, energy, beta)
    gap = free_energy_gap(logp, logp_ref, energy, beta)
    assert gap.shape == (P,)
    assert bool((gap >= 0).all())
    torch.testing.assert_close(gap, f - f_star, atol=1e-10, rtol=0)  # F - F* = beta KL(p || p*)
    torch.testing.assert_close(gap, beta * exact_kl(logp, logp_star), atol=1e-10, rtol=0)
    torch.testing.assert_close(free_energy(logp_star, logp_ref, energy, beta), f_star, atol=1e-10, rtol=0)
    assert bool((f > f_star + 1e-6).all())  # a random policy is strictly worse than the optimum


def test_boltzmann_target_definition():
    logp, logp_ref, energy = _problem(2)
    beta = 0.7
    logp_star = boltzmann_target(logp_ref, energy, beta)
    torch.testing.assert_close(logp_star.exp().sum(-1), torch.ones(P, dtype=torch.float64))
    unnormalised = logp_ref.exp() * torch.exp(-energy / beta)
    torch.testing.assert_close(logp_star.exp(), unnormalised / unnormalised.sum(-1, keepdim=True))
    torch.testing.assert_close(log_partition(logp_ref, energy, beta), unnormalised.sum(-1).log())
    # RL convention E = -r: higher reward -> more mass than the reference gives
    r = -energy
    ratio = logp_star - logp_ref
    order = torch.argsort(r[0])
    assert bool((ratio[0][order].diff() > 0).all())


def test_boltzmann_target_stays_in_reference_support():
    logp_ref = torch.log(torch.tensor([0.5, 0.5, 0.0], dtype=torch.float64))
    energy = torch.tensor([0.0, 1.0, -100.0], dtype=torch.float64)  # the unreachable y is the best
    p_star = boltzmann_target(logp_ref, energy, beta=0.1).exp()
    assert float(p_star[2]) == 0.0
    assert float(p_star[0]) > 0.99
    f = free_energy(logp_ref, logp_ref, energy, 0.1)
    assert math.isfinite(float(f))


def test_beta_validation():
    logp, logp_ref, energy = _problem(3)
    for fn in (
        lambda: boltzmann_target(logp_ref, energy, 0.0),
        lambda: free_energy(logp, logp_ref, energy, -1.0),
    ):
        with pytest.raises(ValueError):
            fn()


def test_sample_estimators_converge_to_exact():
    """With N = 200,000 samples, each estimate is within 5 standard errors of the exact value
    (standard error from the samples' own spread; 5 sigma: a fixed seed, and a flake rate ~1e-6)."""
    torch.manual_seed(0)
    logp, logp_ref, energy = _problem(4)
    beta, n = 0.8, 200_000
    y_pi = torch.multinomial(logp.exp(), n, replacement=True)  # [P, N] from the policy
    e_n = energy.gather(-1, y_pi)
    logp_n, logp_ref_n = logp.gather(-1, y_pi), logp_ref.gather(-1, y_pi)
    f_hat = free_energy_from_samples(e_n, logp_n, logp_ref_n, beta)
    per_sample = e_n + beta * (logp_n - logp_ref_n)
    se = per_sample.std(-1) / math.sqrt(n)
    err = (f_hat - free_energy(logp, logp_ref, energy, beta)).abs()
    assert bool((err < 5 * se).all()), (err, se)

    y_ref = torch.multinomial(logp_ref.exp(), n, replacement=True)  # [P, N] from the reference
    e_ref = energy.gather(-1, y_ref)
    f_star_hat = optimal_free_energy_from_samples(e_ref, beta)
    # delta method: sd(log Zhat) ~ sd(w) / (sqrt(N) mean(w)), w = exp(-E/beta)
    w = torch.exp(-e_ref / beta)
    se_star = beta * w.std(-1) / (math.sqrt(n) * w.mean(-1))
    err_star = (f_star_hat - optimal_free_energy(logp_ref, energy, beta)).abs()
    assert bool((err_star < 5 * se_star).all()), (err_star, se_star)


def test_optimal_free_energy_from_samples_by_hand():
    e = torch.tensor([[0.0, 1.0], [2.0, 2.0]], dtype=torch.float64)
    got = optimal_free_energy_from_samples(e, beta=1.0)
    expected = [-math.log((1 + math.exp(-1)) / 2), 2.0]
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64))


def test_zero_probability_completions_give_finite_values_and_gradients():
    """A policy that cannot produce some completion (log p = -inf) contributes 0 there, in the value
    and in the gradient (0 * inf must not turn into NaN in backward)."""
    logp_ref = torch.log(torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64))
    energy = torch.tensor([1.0, -1.0, 0.5], dtype=torch.float64)
    theta = torch.tensor([0.0, 1.0, float("-inf")], dtype=torch.float64, requires_grad=True)
    logp = torch.log_softmax(theta, -1)
    for fn in (free_energy, free_energy_gap):
        value = fn(logp, logp_ref, energy, 0.5)
        assert math.isfinite(float(value.detach()))
        (grad,) = torch.autograd.grad(value, theta, retain_graph=True)
        assert bool(torch.isfinite(grad).all()), (fn.__name__, grad)
