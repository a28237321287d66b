"""Which trajectories each control method draws and how iw-SFT(Q) weighs them."""

from __future__ import annotations

import collections

import numpy as np
import torch

from reweightlab.control.dataset import Trajectories
from reweightlab.control.train import (
    EpisodeTable,
    TrainSettings,
    iw_batch_weights,
    method_pool,
    quality_pool,
    top_fraction_pool,
)
from reweightlab.math import IW_PRESETS, ema_update_


def _table(lengths, returns) -> EpisodeTable:
    """Episodes of the given lengths whose rewards sum to the given returns (reward on the last step)."""
    n = sum(lengths)
    start, rew = np.zeros(n, bool), np.zeros(n, np.float32)
    ends = np.cumsum(lengths)
    start[ends - np.asarray(lengths)] = True
    rew[ends - 1] = returns
    rng = np.random.default_rng(0)
    return EpisodeTable(Trajectories(rng.standard_normal((n, 3)).astype(np.float32),
                                     rng.uniform(-1, 1, (n, 1)).astype(np.float32), rew, np.zeros(n, bool),
                                     np.zeros(n, bool), start))


def test_top_fraction_selects_exactly_the_top_decile():
    perm = torch.randperm(50, generator=torch.Generator().manual_seed(1))
    returns = perm.to(torch.float64) * 3.5 - 20  # distinct returns in a scrambled order
    pool = top_fraction_pool(returns, 0.1)
    assert sorted(pool.tolist()) == sorted(torch.topk(returns, 5).indices.tolist())


def test_quality_multiset_uses_the_90_95_98_percentiles():
    returns = torch.randperm(100, generator=torch.Generator().manual_seed(2)).to(torch.float64)
    counts = collections.Counter(quality_pool(returns, (90.0, 95.0, 98.0)).tolist())
    p90, p95, p98 = np.percentile(returns.numpy(), [90, 95, 98])  # numpy as the independent reference
    expected = {i: int(r > p90) + int(r > p95) + int(r > p98) for i, r in enumerate(returns.tolist())}
    assert counts == {i: c for i, c in expected.items() if c > 0}
    # returns 0..99: 90..94 once, 95..97 twice, 98 and 99 three times
    assert sorted(counts.values()) == [1] * 5 + [2] * 3 + [3] * 2


def test_bc_draws_everything_and_iw_sft_q_draws_the_sft_q_multiset():
    t = _table([3] * 40, list(range(40)))
    s = TrainSettings()
    assert method_pool("bc", t, s).tolist() == list(range(40))
    assert torch.equal(method_pool("iw_sft_q", t, s), method_pool("sft_q", t, s))
    assert sorted(method_pool("sft", t, s).tolist()) == [36, 37, 38, 39]


def test_iw_weights_are_uniform_when_q_equals_pi_ref():
    t = _table([5, 2, 7, 4], [1.0, 2.0, 3.0, 4.0])
    logp_ref_N = -torch.rand(18) * 3
    ep_B = torch.tensor([0, 2, 2, 3, 1, 0])  # duplicates take one share each
    w_B = iw_batch_weights(logp_ref_N.clone(), logp_ref_N, t, ep_B, IW_PRESETS["control"])
    assert torch.allclose(w_B, torch.full((6,), 1 / 6), atol=1e-7, rtol=0)


def test_iw_weights_follow_the_control_preset():
    t = _table([5, 2, 7, 4], [1.0, 2.0, 3.0, 4.0])
    logp_ref_N = -torch.rand(18, dtype=torch.float64) * 3
    shift_N = torch.randn(18, dtype=torch.float64) * 0.4
    ep_B = torch.tensor([0, 1, 2, 3, 3])
    w_B = iw_batch_weights(logp_ref_N + shift_N, logp_ref_N, t, ep_B, IW_PRESETS["control"])
    bounds = [(0, 5), (5, 7), (7, 14), (14, 18)]
    # by hand: clip(exp(10 * mean_t rho), 0, 1000), then normalise over the 5 drawn entries
    raw = torch.tensor([min(float(torch.exp(10 * shift_N[a:b].mean())), 1000.0) for a, b in bounds],
                       dtype=torch.float64)
    raw_B = raw[ep_B]
    assert w_B.dtype == torch.float64
    assert torch.allclose(w_B, raw_B / raw_B.sum(), atol=1e-12, rtol=0)


def test_ema_update_moves_a_tenth_of_the_way_with_decay_0_9():
    ema, model = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    before = [p.detach().clone() for p in ema.parameters()]
    ema_update_(ema.parameters(), model.parameters(), IW_PRESETS["control"].ema_decay)  # control's q update
    for pe, p0, p in zip(ema.parameters(), before, model.parameters(), strict=True):
        assert torch.allclose(pe, 0.9 * p0 + 0.1 * p.detach(), atol=1e-7, rtol=0)
