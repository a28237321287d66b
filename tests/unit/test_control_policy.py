"""The Gaussian MLP policy: exact log-probabilities, clamped log-std, tanh-bounded mean."""

from __future__ import annotations

import torch
from torch.distributions import Independent, Normal

from reweightlab.control.policy import LOG_STD_MAX, LOG_STD_MIN, GaussianMLPPolicy


def _policy(seed=0) -> GaussianMLPPolicy:
    torch.manual_seed(seed)
    p = GaussianMLPPolicy(5, 3, hidden=16, act_low=torch.tensor([-2.0, -1.0, 0.0]),
                          act_high=torch.tensor([2.0, 1.0, 4.0]))
    with torch.no_grad():
        p.log_std_A.copy_(torch.tensor([-0.7, 0.3, -1.9]))
    p.set_obs_normaliser(torch.randn(50, 5) * 3 + 1)
    return p


def test_log_prob_matches_torch_distributions():
    p = _policy()
    obs, act = torch.randn(64, 5), torch.rand(64, 3) * torch.tensor([4.0, 2.0, 4.0]) + torch.tensor([-2.0, -1.0, 0.0])
    dist = Independent(Normal(p.mean(obs), p.log_std().exp()), 1)
    expected = dist.log_prob(p.normalise_action(act))
    assert torch.allclose(p.log_prob(obs, act), expected, atol=1e-5, rtol=0)


def test_architecture_is_three_hidden_layers_with_tanh_mean():
    p = GaussianMLPPolicy(11, 3)
    linears = [m for m in p.body if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(11, 256), (256, 256), (256, 256), (256, 3)]
    with torch.no_grad():
        linears[-1].bias.fill_(50.0)  # a huge pre-activation: the mean must still sit inside the box
    assert torch.all(p.mean(torch.randn(4, 11)) <= 1.0)
    assert torch.allclose(p.act(torch.randn(4, 11)), torch.ones(4, 3))


def test_log_std_is_clamped_to_the_spec_range():
    p = _policy()
    with torch.no_grad():
        p.log_std_A.copy_(torch.tensor([10.0, -10.0, 0.5]))
    assert p.log_std().tolist() == [LOG_STD_MAX, LOG_STD_MIN, 0.5] == [2.0, -5.0, 0.5]
    # float64: with sigma = exp(-5) the log-probs are ~-100, where float32 rounding alone is ~1e-5
    p = p.double()
    obs, act = torch.randn(8, 5, dtype=torch.float64), torch.zeros(8, 3, dtype=torch.float64)
    dist = Independent(Normal(p.mean(obs), torch.tensor([2.0, -5.0, 0.5], dtype=torch.float64).exp()), 1)
    assert torch.allclose(p.log_prob(obs, act), dist.log_prob(p.normalise_action(act)), atol=1e-9, rtol=0)
    # outside the range the clamp passes no gradient: the parameter cannot drift further
    p.log_prob(obs, act).sum().backward()
    assert p.log_std_A.grad[0] == 0 and p.log_std_A.grad[1] == 0 and p.log_std_A.grad[2] != 0


def test_act_maps_the_mean_back_to_the_action_box():
    p = _policy()
    obs = torch.randn(6, 5)
    expected = p.mean(obs) * torch.tensor([2.0, 1.0, 2.0]) + torch.tensor([0.0, 0.0, 2.0])
    assert torch.allclose(p.act(obs), expected, atol=1e-6)
