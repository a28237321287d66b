"""Online RL: REINFORCE, RLOO and GRPO as advantage-weighted log-likelihood.

All three share one loss, the clipped surrogate (its on-policy gradient is exactly REINFORCE's
-A * grad logp) plus beta * k(logp, logp_ref); they differ only in the advantage estimator.
"""

import torch

from reweightlab.math import (
    batch_baseline_advantages,
    clipped_surrogate,
    group_advantages,
    kl_estimate,
    leave_one_out_advantages,
)


def advantages(method: str, rewards_PG: torch.Tensor, std_scaling: str) -> torch.Tensor:
    """Per-sequence advantages, flattened to N = P*G in the rollout's order."""
    if method == "grpo":
        adv = group_advantages(rewards_PG, std_scaling=std_scaling)
    elif method == "rloo":
        adv = leave_one_out_advantages(rewards_PG, std_scaling=std_scaling)
    elif method == "reinforce":
        adv = batch_baseline_advantages(rewards_PG.reshape(-1), std_scaling=std_scaling)
    else:
        raise ValueError(f"unknown RL method {method!r}; expected reinforce, rloo or grpo")
    return adv.reshape(-1)


def kl_shaped_rewards(rewards_PG, logp_BT, logp_ref_BT, mask_BT, beta: float) -> torch.Tensor:
    """kl_mode=reward: r - beta * sum_t k1_t, detached (the classic RLHF reward shaping).

    E_pi[sum_t k1] = KL(pi || pi_ref) per sequence, so maximising the shaped reward maximises
    E[r] - beta * KL(pi || pi_ref), whose optimum is the Boltzmann target pi_ref * exp(r / beta) / Z.
    """
    k1_N = (kl_estimate(logp_BT, logp_ref_BT, "k1") * mask_BT).sum(1).detach()
    return rewards_PG - beta * k1_N.view_as(rewards_PG)


def token_loss(logp_BT, mb, rl_cfg):
    """Per-token loss and the tensors the loop logs (clip fraction, KL value estimate).

    The logged `kl` is k3 (unbiased, low variance, >= 0 per token) whatever estimator the loss uses.
    """
    loss_BT, clipped_BT = clipped_surrogate(
        logp_BT, mb.columns["logp_old"], mb.columns["adv"],
        eps_low=rl_cfg.clip_eps_low, eps_high=rl_cfg.clip_eps_high,
    )
    kl_value_BT = None
    if "logp_ref" in mb.columns:
        kl_value_BT = kl_estimate(logp_BT.detach(), mb.columns["logp_ref"], "k3")
        if rl_cfg.kl_beta > 0 and rl_cfg.kl_mode == "loss":
            loss_BT = loss_BT + rl_cfg.kl_beta * kl_estimate(logp_BT, mb.columns["logp_ref"], rl_cfg.kl_estimator)
    return loss_BT, clipped_BT, kl_value_BT
