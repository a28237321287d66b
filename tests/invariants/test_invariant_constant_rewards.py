"""Constant rewards give no update: zero advantage, so the policy-gradient loss has exactly zero
gradient, for GRPO (every std scaling), RLOO and the batch baseline, with the plain and the clipped
surrogate. A KL term would still move the policy; that is not a reward update.
"""

from __future__ import annotations

import pytest
import torch

from reweightlab.math import (
    STD_SCALINGS,
    batch_baseline_advantages,
    clipped_surrogate,
    group_advantages,
    leave_one_out_advantages,
    reduce_loss,
    token_logprobs,
    weighted_nll,
)

P, G, T, D, V = 3, 4, 5, 6, 7
# Values whose group sums are inexact in binary (0.1 * 4 etc.): naive r - mean(r) is ~1e-17, not 0.
GROUP_REWARDS = torch.tensor([0.1, 0.7, 3.3], dtype=torch.float64).unsqueeze(1).expand(P, G)


def _advantages():
    out = {f"grpo-{s}": group_advantages(GROUP_REWARDS, std_scaling=s) for s in STD_SCALINGS}
    out.update({f"rloo-{s}": leave_one_out_advantages(GROUP_REWARDS, std_scaling=s) for s in STD_SCALINGS})
    flat = torch.full((P * G,), 0.1, dtype=torch.float64)
    for s in ("none", "batch"):
        out[f"batch-{s}"] = batch_baseline_advantages(flat, std_scaling=s).reshape(P, G)
    return out


ADVANTAGES = _advantages()


def _policy_logp():
    g = torch.Generator().manual_seed(0)
    features = torch.randn(P * G, T, D, generator=g)
    weight = torch.randn(D, V, generator=g).requires_grad_()
    tokens = torch.randint(0, V, (P * G, T), generator=g)
    return token_logprobs(features @ weight, tokens), weight, g


@pytest.mark.parametrize("name", sorted(ADVANTAGES))
def test_constant_rewards_give_exactly_zero_advantage(name):
    assert torch.equal(ADVANTAGES[name], torch.zeros(P, G, dtype=torch.float64))


@pytest.mark.parametrize("name", sorted(ADVANTAGES))
@pytest.mark.parametrize("surrogate", ["reinforce", "clipped-on-policy", "clipped-off-policy"])
def test_constant_rewards_give_exactly_zero_gradient(name, surrogate):
    logp, weight, g = _policy_logp()
    adv = ADVANTAGES[name].reshape(P * G).float()
    mask = torch.ones(P * G, T, dtype=torch.bool)
    if surrogate == "reinforce":
        loss_bt = weighted_nll(logp, adv)
    else:
        logp_old = logp.detach()
        if surrogate == "clipped-off-policy":
            logp_old = logp_old + 0.5 * torch.randn(P * G, T, generator=g)  # ratios far from 1
        loss_bt, _ = clipped_surrogate(logp, logp_old, adv)
    (grad,) = torch.autograd.grad(reduce_loss(loss_bt, mask, "token_mean"), weight)
    assert torch.equal(grad, torch.zeros_like(grad))


def test_a_single_differing_reward_does_update():
    """The check above can fail: one different reward in one group gives a nonzero gradient."""
    rewards = GROUP_REWARDS.clone()
    rewards[1, 2] += 1.0
    logp, weight, _ = _policy_logp()
    adv = group_advantages(rewards).reshape(P * G).float()
    mask = torch.ones(P * G, T, dtype=torch.bool)
    (grad,) = torch.autograd.grad(reduce_loss(weighted_nll(logp, adv), mask, "token_mean"), weight)
    assert float(grad.abs().max()) > 1e-3
