"""Free energy of a policy against a reference (arXiv 2605.08368, "On Distinguishing
Capability Elicitation from Capability Creation in Post-Training: A Free-Energy Perspective").

Exact functions take log-probabilities over a finite completion set ``Y`` on the last dimension
(leading dimensions index prompts); ``*_from_samples`` functions take ``N`` sampled completions per
prompt on the last dimension. For RL the energy is ``E = -r``. ``beta > 0`` everywhere.

    F_beta[pi] = E_pi[E] + beta KL(pi || pi_ref)
    pi*        = pi_ref exp(-E / beta) / Z,      Z = E_{pi_ref}[exp(-E / beta)]
    F*         = -beta log Z = min_pi F_beta[pi]
    F - F*     = beta KL(pi || pi*) >= 0
"""

from __future__ import annotations

import math

import torch


def _check_beta(beta: float) -> None:
    if not beta > 0:
        raise ValueError(f"beta must be > 0, got {beta}")


def _expect(logp_Y: torch.Tensor, values_Y: torch.Tensor) -> torch.Tensor:
    """``sum_y p_y v_y`` with ``0 * anything = 0``: completions outside the support add nothing, even
    where ``v_y`` is infinite (e.g. ``log p_y = -inf``)."""
    p = torch.exp(logp_Y)
    support = p > 0
    # Mask the values too: where() alone would still send 0 * inf = NaN into the backward pass.
    safe = torch.where(support, values_Y, torch.zeros_like(values_Y))
    return torch.where(support, p * safe, torch.zeros_like(p)).sum(-1)


def log_partition(logp_ref_Y: torch.Tensor, energy_Y: torch.Tensor, beta: float) -> torch.Tensor:
    """``log Z = log sum_y pi_ref(y) exp(-E(y)/beta) = logsumexp_y(logp_ref_y - E_y / beta)``."""
    _check_beta(beta)
    return torch.logsumexp(logp_ref_Y - energy_Y / beta, dim=-1)


def boltzmann_target(logp_ref_Y: torch.Tensor, energy_Y: torch.Tensor, beta: float) -> torch.Tensor:
    """Log-probabilities of the free-energy minimiser ``pi*(y) = pi_ref(y) exp(-E(y)/beta) / Z``.

    Normalised over the last dimension; ``supp(pi*) = supp(pi_ref)`` (a reweighting, never more).
    """
    _check_beta(beta)
    return torch.log_softmax(logp_ref_Y - energy_Y / beta, dim=-1)


def free_energy(
    logp_Y: torch.Tensor, logp_ref_Y: torch.Tensor, energy_Y: torch.Tensor, beta: float
) -> torch.Tensor:
    """``F_beta[pi] = sum_y pi(y) E(y) + beta sum_y pi(y) (log pi(y) - log pi_ref(y))``.

    ``logp_Y`` must be normalised over the last dimension. Differentiable in ``logp_Y``: its gradient
    is the exact-expectation RL-with-KL objective (energy ``-r``).
    """
    _check_beta(beta)
    return _expect(logp_Y, energy_Y + beta * (logp_Y - logp_ref_Y))


def optimal_free_energy(logp_ref_Y: torch.Tensor, energy_Y: torch.Tensor, beta: float) -> torch.Tensor:
    """``F* = -beta log Z``, the minimum of ``F_beta`` over all policies, reached at ``pi*``."""
    return -beta * log_partition(logp_ref_Y, energy_Y, beta)


def free_energy_gap(
    logp_Y: torch.Tensor, logp_ref_Y: torch.Tensor, energy_Y: torch.Tensor, beta: float
) -> torch.Tensor:
    """``F_beta[pi] - F* = beta KL(pi || pi*)``, exact over an enumerable completion set.

    Computed through the right-hand side, which is non-negative by construction and free of the
    cancellation of subtracting two close free energies; tests check it equals ``F - F*``.
    """
    logp_star_Y = boltzmann_target(logp_ref_Y, energy_Y, beta)
    return beta * _expect(logp_Y, logp_Y - logp_star_Y)


def free_energy_from_samples(
    energy_N: torch.Tensor, logp_N: torch.Tensor, logp_ref_N: torch.Tensor, beta: float
) -> torch.Tensor:
    """Monte-Carlo ``F_beta[pi] ~ mean_n [E(y_n) + beta (log pi(y_n) - log pi_ref(y_n))]``, ``y_n ~ pi``.

    ``logp_N`` / ``logp_ref_N`` are sequence log-probabilities (sums over the completion's tokens) of the
    model's own samples; unbiased for F. Mean over the last dim.
    """
    _check_beta(beta)
    return (energy_N + beta * (logp_N - logp_ref_N)).mean(-1)


def optimal_free_energy_from_samples(energy_N: torch.Tensor, beta: float) -> torch.Tensor:
    """Monte-Carlo ``F* ~ -beta (logsumexp_n(-E(y_n)/beta) - log N)``, ``y_n ~ pi_ref``.

    The plug-in estimate of ``-beta log E_{pi_ref}[exp(-E/beta)]``: consistent, and biased upward for
    finite ``N`` (Jensen: ``E[log Zhat] <= log Z``). Over the last dimension.
    """
    _check_beta(beta)
    n = energy_N.shape[-1]
    if n == 0:
        raise ValueError("optimal_free_energy_from_samples needs at least one sample")
    return -beta * (torch.logsumexp(-energy_N / beta, dim=-1) - math.log(n))
