"""Regime thresholds, classification at each boundary, and agreement of the two p(x) estimators."""

import math

import pytest
import torch

from reweightlab.probe.regimes import (
    REGIMES,
    RegimeThresholds,
    agreement,
    classify,
    reached_likelihood,
    reached_sampling,
    singularity_kinds,
)

TH = RegimeThresholds()


def test_p_budget_is_ln_one_over_delta_over_k():
    assert TH.p_budget == pytest.approx(math.log(20) / 256, rel=1e-12)
    # the defining property: K samples at p = p_budget all miss with probability at most delta
    miss = (1 - TH.p_budget) ** TH.budget_K
    assert miss <= TH.delta and miss == pytest.approx(TH.delta, rel=0.03)


def test_boundaries_exactly():
    pb = TH.p_budget
    below = math.nextafter(0.1, 0.0)
    p = torch.tensor([1.0, 0.1, below, 1 / 256, 0.0, 0.0], dtype=torch.float64)
    reached = torch.tensor([True, True, True, True, False, False])
    search = torch.tensor([False, False, False, False, True, False])
    assert classify(p, reached, thresholds=TH, search_success_P=search) == [
        "basin", "basin", "tail", "tail", "barrier", "singularity",
    ]
    assert 1 / 256 < pb  # one success in K = 256 samples is below p_budget, and still tail: it was reached


def test_a_sampled_success_is_never_barrier_or_singularity():
    """The old rule (p < p_budget -> barrier) labelled prompts that sampling had solved as barrier."""
    c_K = torch.tensor([1, 2, 0, 0])
    p = c_K.double() / TH.budget_K
    search = torch.tensor([True, False, True, False])
    regimes = classify(p, reached_sampling(c_K), thresholds=TH, search_success_P=search)
    assert regimes == ["tail", "tail", "barrier", "singularity"]
    # the likelihood estimator: p_known far below p_budget, yet the sampled success still makes it tail
    p_known = torch.tensor([1e-9, 1e-9, 0.5 * TH.p_budget, TH.p_budget])
    reached = reached_likelihood(p_known, c_K, TH)
    assert reached.tolist() == [True, True, False, True]
    assert classify(p_known, reached, thresholds=TH, search_success_P=search) == ["tail", "tail", "barrier", "tail"]


def test_without_search_nothing_is_barrier():
    p = torch.tensor([0.0, 0.0], dtype=torch.float64)
    assert classify(p, torch.tensor([False, False]), thresholds=TH) == ["singularity", "singularity"]


def test_singularity_kind_from_the_best_known_solution():
    regimes = ["singularity", "singularity", "singularity", "tail"]
    floor = TH.floor
    logp = torch.tensor([math.log(floor) + 1e-9, math.log(floor), -math.inf, -50.0], dtype=torch.float64)
    assert singularity_kinds(regimes, logp, TH) == ["improbable", "unreachable", "unreachable", None]
    assert singularity_kinds(regimes, None, TH) == ["unknown", "unknown", "unknown", None]


def test_classify_validates_its_evidence():
    with pytest.raises(ValueError, match="entries"):
        classify(torch.tensor([0.001, 0.001]), torch.tensor([True]), thresholds=TH)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        classify(torch.tensor([1.5]), torch.tensor([True]), thresholds=TH)
    with pytest.raises(ValueError, match="disagree"):
        classify(torch.tensor([0.5]), torch.tensor([False]), thresholds=TH)
    assert set(classify(torch.tensor([0.5, 0.05, 0.0, 0.0]), torch.tensor([True, True, False, False]),
                        thresholds=TH, search_success_P=torch.tensor([0, 0, 1, 0]))) == set(REGIMES)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"delta": 0.0}, {"delta": 1.0}, {"budget_K": 0}, {"budget_K": 2.5}, {"floor": 0.0}, {"floor": 1.0},
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
    p_known = torch.tensor([0.3, 0.005, 0.004])
    reached = reached_likelihood(p_known, torch.zeros(3), th)
    assert classify(p_known, reached, thresholds=th) == ["tail", "tail", "singularity"]


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
