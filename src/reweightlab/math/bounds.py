"""The RL objective and its SFT / iw-SFT lower bounds, estimated on samples of the reference.

Qin & Springenberg (arXiv 2507.12856): with ``R >= 0`` and samples ``y ~ pi_ref``,

    J(theta) = E_ref[ (p_theta(y) / pi_ref(y)) R(y) ]

and for any positive weight ``w(y)`` (an auxiliary ``q = w pi_ref``), since ``x >= 1 + log x``,

    J(theta) = E_ref[ w R (p_theta / (w pi_ref)) ] >= E_ref[ w R (1 + log p_theta - log pi_ref - log w) ].

``w = 1`` is SFT's bound (for a 0/1 reward: the success rate times ``1 + E_D+[log p_theta - log pi_ref]``,
SFT on the curated set D+). The bound is tight at ``w = p_theta / pi_ref`` (q = p_theta). Per sample,
``g(u) = e^u (1 + Delta - u)`` with ``u = log w`` and ``Delta = log p_theta - log pi_ref`` rises for ``u <
Delta`` and falls after, so any ``log w`` between 0 and Delta (iw-SFT's mean-over-tokens ratio, or the
clipped sequence ratio) gives a bound at least as tight as SFT's at the same theta.

All inputs are per sequence (N): ``reward_N >= 0``, ``delta_N`` the summed log-ratio of the sequence,
``log_w_N`` the log of its weight. Every estimate is a mean over the N reference samples.
"""

from __future__ import annotations

import torch


def _check(reward_N: torch.Tensor, delta_N: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    reward_N, delta_N = reward_N.double(), delta_N.double()
    if reward_N.shape != delta_N.shape or reward_N.dim() != 1:
        raise ValueError("reward_N and delta_N must be 1-D of the same length")
    if bool((reward_N < 0).any()):
        raise ValueError("the lower bounds need rewards >= 0 (train RL on the 0/1 success, or shift the reward)")
    return reward_N, delta_N


def importance_sampled_objective(reward_N: torch.Tensor, delta_N: torch.Tensor) -> torch.Tensor:
    """``J(theta) ~ mean_N R e^Delta``: the RL objective of p_theta from the reference's samples."""
    reward_N, delta_N = _check(reward_N, delta_N)
    return (reward_N * delta_N.exp()).mean()


def weighted_lower_bound(reward_N: torch.Tensor, delta_N: torch.Tensor, log_w_N: torch.Tensor | None = None
                         ) -> torch.Tensor:
    """``mean_N w R (1 + Delta - log w)``: a lower bound of ``importance_sampled_objective`` for any ``w > 0``
    (``log_w_N`` None: ``w = 1``, SFT's bound). Samples with ``R = 0`` contribute 0 whatever their weight."""
    reward_N, delta_N = _check(reward_N, delta_N)
    if log_w_N is None:
        return (reward_N * (1.0 + delta_N)).mean()
    log_w_N = log_w_N.double()
    return (reward_N * log_w_N.exp() * (1.0 + delta_N - log_w_N)).mean()
