"""The study's verdict rule and its two-level intervals, on constructed inputs with known answers."""

import math

import pytest
import torch

from reweightlab.math.bounds import importance_sampled_objective, weighted_lower_bound
from reweightlab.probe.intervals import Resamples, SeedPromptResamples
from reweightlab.recipes import verdicts as V
from reweightlab.recipes.claims import difference_part

M = V.MARGIN


@pytest.mark.parametrize(("kind", "lo", "hi", "expect"), [
    ("greater", 0.01, 0.05, V.SUPPORTED), ("greater", -0.05, -0.01, V.NOT_SUPPORTED),
    ("greater", -0.01, 0.05, V.INCONCLUSIVE), ("greater", 0.0, 0.05, V.INCONCLUSIVE),
    ("less", -0.05, -0.01, V.SUPPORTED), ("less", 0.01, 0.05, V.NOT_SUPPORTED), ("less", -0.02, 0.01, V.INCONCLUSIVE),
    # at least: a clear loss is a loss, however small; within the margin above -m it holds
    ("at_least", -0.004, -0.001, V.NOT_SUPPORTED), ("at_least", -M / 2, 0.02, V.SUPPORTED),
    ("at_least", -2 * M, 0.02, V.INCONCLUSIVE), ("at_least", 0.01, 0.03, V.SUPPORTED),
    # at most: a clear gain is a gain, however small; below m it holds
    ("at_most", 0.001, 0.004, V.NOT_SUPPORTED), ("at_most", -0.02, M / 2, V.SUPPORTED),
    ("at_most", -0.02, 2 * M, V.INCONCLUSIVE), ("at_most", -0.03, -0.01, V.SUPPORTED),
    ("greater", None, None, V.INCONCLUSIVE),
])
def test_part_verdict_follows_the_stated_rule(kind, lo, hi, expect):
    assert V.part_verdict(kind, lo, hi) == expect


def test_part_verdict_refuses_unknown_kinds_and_inverted_intervals():
    with pytest.raises(ValueError, match="kind"):
        V.part_verdict("bigger", 0.0, 1.0)
    with pytest.raises(ValueError, match="lower end"):
        V.part_verdict("greater", 0.2, 0.1)


def test_a_claim_is_supported_only_when_every_part_is():
    S, N, I = V.SUPPORTED, V.NOT_SUPPORTED, V.INCONCLUSIVE
    assert V.claim_verdict([S, S]) == S
    assert V.claim_verdict([S, I]) == I
    assert V.claim_verdict([I, N, S]) == N
    assert V.claim_verdict([]) == V.NOT_RUN


def _noise(S, P, seed, scale):
    return scale * torch.randn(S, P, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize(("shift", "expect"), [(0.2, V.SUPPORTED), (-0.2, V.NOT_SUPPORTED), (0.0, V.INCONCLUSIVE)])
def test_a_clear_win_a_clear_loss_and_an_overlap(shift, expect):
    """Per-prompt differences of three seeds: shifted up (a clear win), down (a clear loss), or centred on 0."""
    x = shift + _noise(3, 60, 0, 0.1)
    x -= x.mean() - shift  # the sample mean is exactly the shift
    part = difference_part("win?", "a difference", "greater", x, [0, 1, 2])
    assert part["value"] == pytest.approx(shift, abs=1e-12)
    lo, hi = part["ci95"]
    assert lo < part["value"] < hi
    assert part["verdict"] == expect
    assert [s["seed"] for s in part["per_seed"]] == [0, 1, 2]
    for i, s in enumerate(part["per_seed"]):
        assert s["value"] == pytest.approx(float(x[i].mean()), abs=1e-12)


def test_two_level_interval_holds_the_spread_across_seeds():
    """Seeds that disagree (one far off) widen the interval; the prompt-only interval of any one seed cannot see it."""
    P = 50
    base = _noise(1, P, 1, 0.01)[0]
    x = torch.stack([base + 0.0, base + 0.0, base + 0.3])
    two = SeedPromptResamples(3, P, 2000, seed=0).mean(x)
    one = Resamples(P, 2000, seed=0).mean(x[0])
    assert two["value"] == pytest.approx(float(x.mean()), abs=1e-12)
    assert (two["ci95"][1] - two["ci95"][0]) > 10 * (one["ci95"][1] - one["ci95"][0])
    assert two["ci95"][0] == pytest.approx(float(base.mean()), abs=0.02)  # all three resampled as seed 0/1
    # with one seed the two-level bootstrap is the prompt bootstrap (same prompt draws)
    single = SeedPromptResamples(1, P, 2000, seed=0).mean(x[:1])
    assert single["ci95"] == pytest.approx(one["ci95"], abs=1e-12)
    with pytest.raises(ValueError, match="shape"):
        SeedPromptResamples(2, P, 100).mean(x)


def test_lower_bounds_of_the_rl_objective():
    g = torch.Generator().manual_seed(0)
    reward = (torch.rand(400, generator=g) < 0.3).double()
    delta = 0.8 * torch.randn(400, generator=g, dtype=torch.float64)
    tokens = torch.randint(1, 12, (400,), generator=g).double()
    J = importance_sampled_objective(reward, delta)
    sft = weighted_lower_bound(reward, delta)
    iw_mean = weighted_lower_bound(reward, delta, delta / tokens)
    tight = weighted_lower_bound(reward, delta, delta)
    assert float(tight) == pytest.approx(float(J), abs=1e-12)  # w = p_theta / pi_ref: exact
    assert float(sft) <= float(iw_mean) <= float(J)  # a log-weight between 0 and delta tightens SFT's bound
    assert float(sft) < float(J)
    # at theta = pi_ref every bound equals J = the success rate
    zero = torch.zeros(400, dtype=torch.float64)
    assert float(weighted_lower_bound(reward, zero)) == pytest.approx(float(reward.mean()), abs=1e-12)
    assert float(importance_sampled_objective(reward, zero)) == pytest.approx(float(reward.mean()), abs=1e-12)
    assert math.isfinite(float(weighted_lower_bound(reward, delta, torch.full((400,), -30.0, dtype=torch.float64))))
    with pytest.raises(ValueError, match=">= 0"):
        weighted_lower_bound(reward - 1.0, delta)
