"""Regime thresholds, classification at each boundary, and agreement of the two p(x) estimators."""

import math

import pytest
import torch

from reweightlab.probe.regimes import REGIMES, RegimeThresholds, agreement, classify

TH = RegimeThresholds()


def test_p_budget_is_ln_one_over_delta_over_k():
    assert TH.p_budget == pytest.approx(math.log(20) / 256, rel=1e-12)
    # the defining property: K samples at p = p_budget all miss with probability at most delta
    miss = (1 - TH.p_budget) ** TH.budget_K
    assert miss <= TH.delta and miss == pytest.approx(TH.delta, rel=0.03)


def test_boundaries_exactly():
    pb = TH.p_budget
    below = math.nextafter(pb, 0.0)
    p = torch.tensor([1.0, 0.1, math.nextafter(0.1, 0.0), pb, below, below, 0.0], dtype=torch.float64)
    search = torch.tensor([False, False, False, False, True, False, False])
    assert classify(p, thresholds=TH, search_success_P=search) == [
        "basin", "basin", "tail", "tail", "barrier", "singularity", "singularity",
    ]
    assert set(classify(p, thresholds=TH, search_success_P=search)) == set(REGIMES)


def test_known_likelihood_against_floor():
    p = torch.zeros(4, dtype=torch.float64)
    floor = TH.floor
    logp = torch.tensor(
        [math.log(floor) + 1e-9, math.log(floor), math.log(floor) - 1.0, -math.inf], dtype=torch.float64
    )
    assert classify(p, thresholds=TH, max_known_logp_P=logp) == ["barrier", "singularity", "singularity", "singularity"]
    # either piece of evidence suffices for barrier
    search = torch.tensor([False, True, False, False])
    assert classify(p, thresholds=TH, search_success_P=search, max_known_logp_P=logp) == [
        "barrier", "barrier", "singularity", "singularity",
    ]


def test_low_p_without_evidence_is_an_error_but_high_p_is_not():
    assert classify(torch.tensor([0.5, 0.05]), thresholds=TH) == ["basin", "tail"]
    with pytest.raises(ValueError, match="search_success_P"):
        classify(torch.tensor([0.5, 0.001]), thresholds=TH)
    with pytest.raises(ValueError, match="entries"):
        classify(torch.tensor([0.001, 0.001]), thresholds=TH, search_success_P=torch.tensor([True]))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        classify(torch.tensor([1.5]), thresholds=TH)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"delta": 0.0}, {"delta": 1.0}, {"budget_K": 0}, {"budget_K": 2.5}, {"floor": 0.0},
        {"theta_basin": 1.5}, {"theta_basin": 0.01},  # 0.01 < p_budget ~ 0.0117
        {"budget_K": 10},  # p_budget ~ 0.30 > theta_basin
    ],
)
def test_threshold_validation(kwargs):
    with pytest.raises(ValueError):
        RegimeThresholds(**kwargs)


def test_custom_thresholds_move_the_boundaries():
    th = RegimeThresholds(theta_basin=0.5, budget_K=1000, delta=0.01)
    assert th.p_budget == pytest.approx(math.log(100) / 1000)
    assert classify(torch.tensor([0.3, 0.005]), thresholds=th) == ["tail", "tail"]


def _binomial(p_P, n, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.binomial(torch.full_like(p_P, float(n)), p_P, generator=g) / n


def test_agreement_on_binomial_data_from_the_true_p():
    p_P = torch.linspace(0.0, 1.0, 201, dtype=torch.float64)
    n = 256
    res = agreement(_binomial(p_P.float(), n, seed=0), torch.full((201,), n), p_P)
    assert res["within"] >= 0.95
    assert res["mean_known"] == pytest.approx(0.5)
    assert res["mean_sampling"] == pytest.approx(0.5, abs=0.01)
    assert res["max_abs_diff"] < 0.15


def test_agreement_fails_on_wrong_p_known():
    p_P = torch.linspace(0.05, 0.95, 200, dtype=torch.float64)
    n = 256
    sampled = _binomial(p_P.float(), n, seed=1)
    wrong = (p_P + 0.25).clamp(max=1.0)  # shifted by far more than 3 sigma (<= 0.094 at n=256)
    assert agreement(sampled, torch.full((200,), n), wrong)["within"] < 0.1
    halved = p_P / 2
    assert agreement(sampled, torch.full((200,), n), halved)["within"] < 0.3


def test_agreement_validates_inputs():
    with pytest.raises(ValueError, match="shapes"):
        agreement(torch.zeros(2), torch.ones(3), torch.zeros(2))
    with pytest.raises(ValueError, match="n must"):
        agreement(torch.zeros(2), torch.zeros(2), torch.zeros(2))
