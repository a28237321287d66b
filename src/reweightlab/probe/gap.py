"""Free-energy gap of a model against the optimal reweighting of its base, per prompt, by reward class.

With energy E = -r and temperature beta, pi*(y|x) = B(y|x) exp(r(x,y)/beta) / Z(x) and

    F_beta[T](x) = -E_T[r] + beta KL(T || B)          F*(x) = -beta log Z(x)
    gap(x) = F_beta[T](x) - F*(x) = beta KL(T || pi*) >= 0.

pi* reweights B by the reward only, so within one reward class c it *is* B: pi*(y | c) = B(y | c).
The chain rule of KL then splits the gap into two parts that add up:

    KL(T || pi*) = KL(T_class || pi*_class)                 between classes: how far T's class masses
                                                           are from the optimal ones B_c e^{r_c/beta} / Z
                 + sum_c T(c) KL(T(.|c) || B(.|c))          within classes: which solution, which wrong
                                                           answer; no reward moves it, only KL pays it

and, since KL(T||B) = KL(T_class||B_class) + the same within-class term, the within part is
``KL(T||B) - KL(T_class||B_class)``: it does not depend on beta, the between part does.

Estimators (our choice, each with its reason):
- Z is dominated by the rare success class (e^{5/beta} against e^{-1/beta}), so a log-mean-exp of a few
  base samples misses it on prompts without a sampled success. Where the task enumerates its
  solutions, the success mass is p_known (exact for the listed solutions) plus the sampled share
  of successes that are not a listed solution token for token (another spelling, no EOS); elsewhere
  the sampled success rate. The other classes share the
  rest of the mass in proportion to their sampled counts, each with a pseudo-count of 1/2
  (Krichevsky-Trofimov), so a class T produces but B's samples missed is rare, not impossible.
- T's class masses use the same estimator on its own samples (so a model equal to its base gets
  equal success masses, and only the failure classes differ by sampling noise).
- KL(T || B) per prompt is the mean over T's kept samples of the summed *exact* per-token KL over the
  full vocabulary (its expectation is the sequence KL; far lower variance than log T - log B).
For the base itself T = B: the within part is 0 and the gap is beta KL(B_class || pi*_class), the
gap a perfect reweighting would close. The within part of a trained model is a difference of two
estimates, KL(T||B) - KL(T_class||B_class), and the plug-in class KL is biased up by about
(C - 1)(1/n_T + 1/n_B)/2 for C classes (two noisy class distributions): for a model equal to its base
the within part reads slightly below 0 by that much, not exactly 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

PSEUDO_COUNT = 0.5


@dataclass(frozen=True)
class FreeEnergyGap:
    """Per prompt (float64, P), in units of F: F_beta[T], F*, their gap, and its two parts (beta times a KL)."""

    F_P: torch.Tensor
    F_star_P: torch.Tensor
    gap_P: torch.Tensor
    """F_P - F_star_P = between_P + within_P."""
    between_P: torch.Tensor
    within_P: torch.Tensor


def reward_classes(*rewards: torch.Tensor) -> torch.Tensor:
    """The distinct reward values of all the given sample tensors, sorted (float64)."""
    return torch.unique(torch.cat([r.reshape(-1).double() for r in rewards]))


def class_log_masses(
    rewards_PN: torch.Tensor, classes_C: torch.Tensor, success_score: float, p_success_P: torch.Tensor | None = None,
) -> torch.Tensor:
    """log m(class | x), P x C (module docstring): the success class's mass ``p_success_P`` where given,
    else the sampled success rate; the other classes share the rest by pseudo-counted frequency."""
    rewards_PN = rewards_PN.double()
    success_C = classes_C == float(success_score)
    counts_PC = (rewards_PN.unsqueeze(-1) == classes_C.view(1, 1, -1)).double().sum(1)
    if p_success_P is None:
        p_success_P = counts_PC[:, success_C].sum(1) / rewards_PN.shape[1]
    p_success_P = torch.as_tensor(p_success_P, dtype=torch.float64).clamp(0.0, 1.0)
    fail_PC = (counts_PC + PSEUDO_COUNT) * (~success_C).double()
    fail_share_PC = fail_PC / fail_PC.sum(1, keepdim=True).clamp(min=1e-300)
    mass_PC = fail_share_PC * (1.0 - p_success_P).unsqueeze(1) + success_C.double() * p_success_P.unsqueeze(1)
    return torch.log(mass_PC)


def _kl_rows(p_PC: torch.Tensor, logq_PC: torch.Tensor) -> torch.Tensor:
    """sum_c p log(p / q) per row, with 0 log 0 = 0."""
    terms = torch.where(p_PC > 0, p_PC * (torch.log(p_PC.clamp(min=1e-300)) - logq_PC), torch.zeros_like(p_PC))
    return terms.sum(1)


def free_energy_gap(
    classes_C: torch.Tensor, log_base_PC: torch.Tensor, trained_PC: torch.Tensor | None, kl_seq_P: torch.Tensor | None,
    beta: float,
) -> FreeEnergyGap:
    """The gap of T per prompt and its parts (``FreeEnergyGap``). ``trained_PC``/``kl_seq_P`` None: the base itself."""
    if not beta > 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    r_C = classes_C.double()
    log_z_P = torch.logsumexp(log_base_PC + r_C / beta, dim=1)
    log_opt_PC = log_base_PC + r_C / beta - log_z_P.unsqueeze(1)
    if trained_PC is None:
        trained_PC, kl_seq_P = log_base_PC.exp(), torch.zeros(log_base_PC.shape[0], dtype=torch.float64)
        within_P = torch.zeros_like(kl_seq_P)
    else:
        within_P = kl_seq_P.double() - _kl_rows(trained_PC, log_base_PC)
    between_P = _kl_rows(trained_PC, log_opt_PC)
    F_P = -(trained_PC * r_C).sum(1) + beta * kl_seq_P.double()
    F_star_P = -beta * log_z_P
    return FreeEnergyGap(F_P=F_P, F_star_P=F_star_P, gap_P=F_P - F_star_P, between_P=beta * between_P,
                         within_P=beta * within_P)
