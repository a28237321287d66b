"""Online RL: REINFORCE, RLOO and GRPO as advantage-weighted log-likelihood.

All three share one loss, the clipped surrogate (its on-policy gradient is exactly REINFORCE's
-A * grad logp) plus beta * k(logp, logp_ref); they differ only in the advantage estimator.
"""

import torch

from reweightlab.algos.method import Method, no_check
from reweightlab.math import (
    batch_baseline_advantages,
    clipped_surrogate,
    group_advantages,
    kl_estimate,
    leave_one_out_advantages,
    sequence_kl_loss,
)


def _single_group_check(name):
    def check(cfg, user_keys):
        if cfg.rl.samples_per_prompt < 2:
            return f"config key 'rl.samples_per_prompt': {name} needs at least 2 samples per prompt"
        return None
    return check


def kl_shaped_rewards(rewards_PG, logp_BT, logp_ref_BT, mask_BT, beta: float) -> torch.Tensor:
    """kl_mode=reward: r - beta * sum_t k1_t, detached (the classic RLHF reward shaping).

    E_pi[sum_t k1] = KL_seq(pi || pi_ref), so maximising the shaped reward maximises
    E[r] - beta * KL_seq(pi || pi_ref), whose optimum is the Boltzmann target pi_ref * exp(r / beta) / Z,
    with a REINFORCE or RLOO advantage; a per-group std scaling (GRPO) rescales the objective group by group.
    """
    k1_N = (kl_estimate(logp_BT, logp_ref_BT, "k1") * mask_BT).sum(1).detach()
    return rewards_PG - beta * k1_N.view_as(rewards_PG)


def token_loss(logp_BT, mb, rl_cfg):
    """Per-token loss and the tensors the loop logs (clip fraction, KL value estimate).

    The KL term by ``rl.kl_mode``: 'sequence' adds ``beta * sequence_kl_loss`` (expected gradient
    grad KL_seq(pi || pi_ref): the optimum of E[r] - beta KL_seq is pi_ref exp(r/beta)/Z); 'per_token'
    adds ``beta * k(logp, logp_ref)`` per token, a partial gradient of the sequence KL; 'reward' has
    already folded it into the advantage. The logged `kl` is k3 (unbiased, >= 0 per token) whatever
    the loss uses.
    """
    loss_BT, clipped_BT = clipped_surrogate(
        logp_BT, mb.logp_old_BT, mb.adv_B,
        eps_low=rl_cfg.clip_eps_low, eps_high=rl_cfg.clip_eps_high,
    )
    kl_value_BT = None
    if mb.logp_ref_BT is not None:
        kl_value_BT = kl_estimate(logp_BT.detach(), mb.logp_ref_BT, "k3")
        if rl_cfg.kl_beta > 0 and rl_cfg.kl_mode == "sequence":
            loss_BT = loss_BT + rl_cfg.kl_beta * sequence_kl_loss(logp_BT, mb.logp_ref_BT, mb.mask_BT)
        elif rl_cfg.kl_beta > 0 and rl_cfg.kl_mode == "per_token":
            loss_BT = loss_BT + rl_cfg.kl_beta * kl_estimate(logp_BT, mb.logp_ref_BT, rl_cfg.kl_estimator)
    return loss_BT, clipped_BT, kl_value_BT


def _online(name: str, summary: str, advantages, check=no_check, auto_std_scaling="none") -> Method:
    return Method(name=name, summary=summary, source="online", needs_scores=True, needs_reference=True,
                  settings=("rl",), check=check, advantages=advantages, auto_std_scaling=auto_std_scaling)


METHODS = (
    _online("reinforce", "REINFORCE with the batch-mean baseline",
            lambda r_PG, std: batch_baseline_advantages(r_PG.reshape(-1), std_scaling=std).view_as(r_PG)),
    _online("rloo", "REINFORCE leave-one-out: each sample's baseline is the mean of its group's others",
            lambda r_PG, std: leave_one_out_advantages(r_PG, std_scaling=std), _single_group_check("rloo")),
    _online("grpo", "GRPO: advantages relative to the group mean (std-scaled by default)",
            lambda r_PG, std: group_advantages(r_PG, std_scaling=std), _single_group_check("grpo"), "group"),
)
