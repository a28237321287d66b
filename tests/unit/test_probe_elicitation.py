"""Regime transitions, the gain split with intervals, support ratios and diversity (pure functions)."""

from collections import Counter

import pytest
import torch

from reweightlab.probe.compare import gain_split
from reweightlab.probe.elicitation import transition_matrix
from reweightlab.probe.intervals import Resamples, across_seeds, excludes_zero
from reweightlab.probe.support import (
    diversity_P,
    prompt_support_counts,
    solution_support_counts,
    support_figures,
    support_ratios,
)

BASE = ["basin", "tail", "barrier", "singularity", "basin", "tail"]
TRAINED = ["basin", "basin", "tail", "singularity", "barrier", "barrier"]


def test_transition_matrix_counts_every_pair():
    m = transition_matrix(BASE, TRAINED)
    assert m["basin"] == {"basin": 1, "tail": 0, "barrier": 1, "singularity": 0}
    assert m["tail"] == {"basin": 1, "tail": 0, "barrier": 1, "singularity": 0}
    assert m["barrier"]["tail"] == 1 and m["singularity"]["singularity"] == 1
    assert sum(sum(row.values()) for row in m.values()) == len(BASE)


def test_gain_split_adds_up_and_attributes_by_base_regime():
    p_base = torch.tensor([0.5, 0.05, 0.0, 0.0, 0.3, 0.02], dtype=torch.float64)
    p_trained = torch.tensor([0.9, 0.35, 0.02, 0.0, 0.0, 0.0], dtype=torch.float64)
    rs = Resamples(6, 500, seed=1)
    g = gain_split(BASE, p_trained - p_base, rs)
    gains = (p_trained - p_base).tolist()
    assert g["total"]["value"] == pytest.approx(sum(gains) / 6, abs=1e-12)
    assert g["elicitation"]["value"] + g["creation"]["value"] == pytest.approx(g["total"]["value"], abs=1e-12)
    # creation: only the barrier prompt moved (0 -> 0.02), over 6 prompts
    assert g["creation"]["value"] == pytest.approx(0.02 / 6, abs=1e-12)
    by = g["by_base_regime"]
    assert by["basin"]["prompts"] == 2
    assert by["basin"]["mean_gain"]["value"] == pytest.approx((0.4 - 0.3) / 2, abs=1e-12)
    assert by["tail"]["contribution"]["value"] == pytest.approx((0.30 - 0.02) / 6, abs=1e-12)
    for fig in (g["total"], g["elicitation"], g["creation"]):
        lo, hi = fig["ci95"]
        assert lo <= fig["value"] <= hi


def test_gain_split_empty_regime_has_no_mean():
    g = gain_split(["basin", "basin"], torch.tensor([0.1, 0.0], dtype=torch.float64), Resamples(2, 200))
    assert g["by_base_regime"]["singularity"]["prompts"] == 0
    assert g["by_base_regime"]["singularity"]["mean_gain"]["value"] is None
    assert g["creation"]["value"] == 0.0 and g["creation"]["ci95"] == [0.0, 0.0]
    assert g["elicitation"]["value"] == pytest.approx(0.05, abs=1e-12)


def test_bootstrap_interval_covers_the_truth_and_shrinks_with_prompts():
    g = torch.Generator().manual_seed(0)
    widths = []
    for P in (50, 800):
        x = torch.randn(P, generator=g, dtype=torch.float64) + 0.3
        fig = Resamples(P, 1000, seed=2).mean(x)
        lo, hi = fig["ci95"]
        widths.append(hi - lo)
        se = float(x.std()) / P**0.5
        assert hi - lo == pytest.approx(2 * 1.96 * se, rel=0.15)  # the normal-theory width
    assert widths[1] < widths[0] / 3  # ~ 1/sqrt(P): 4x at 16x the prompts
    assert excludes_zero({"ci95": [0.1, 0.2]}) and not excludes_zero({"ci95": [-0.1, 0.2]})


def test_paired_interval_is_tighter_than_separate_ones():
    g = torch.Generator().manual_seed(3)
    hard = torch.rand(200, generator=g, dtype=torch.float64)  # prompt difficulty, shared by both models
    a, b = hard, hard + 0.02 + 0.01 * torch.randn(200, generator=g, dtype=torch.float64)
    rs = Resamples(200, 1000, seed=0)
    paired = rs.mean(b - a)
    lo_a, hi_a = rs.mean(a)["ci95"]
    assert excludes_zero(paired)
    assert paired["ci95"][1] - paired["ci95"][0] < (hi_a - lo_a) / 5


def test_support_ratios_by_hand():
    r = support_ratios(torch.tensor(6.0), torch.tensor(2.0), torch.tensor(3.0))
    assert float(r["SRR"]) == pytest.approx(6 / 9)
    assert float(r["NDR"]) == pytest.approx(2 / 8)
    srr, ndr = 6 / 9, 2 / 8
    assert float(r["SDS"]) == pytest.approx(2 * srr * ndr / (srr + ndr))
    assert float(r["NSCR"]) == pytest.approx((2 - 3) / 11)
    empty = support_ratios(torch.tensor(0.0), torch.tensor(0.0), torch.tensor(0.0))
    assert all(torch.isnan(v) for v in empty.values())


def test_support_counts_prompt_and_solution_level():
    c = prompt_support_counts(torch.tensor([1, 1, 0, 0, 1]), torch.tensor([1, 0, 1, 0, 1]))
    assert {k: int(v.sum()) for k, v in c.items()} == {"P": 2, "E": 1, "S": 1, "neither": 1}
    s = solution_support_counts([{"a", "b"}, set(), Counter({"x": 3})], [{"b", "c", "d"}, {"e"}, Counter()])
    assert s["P"].tolist() == [1, 0, 0] and s["E"].tolist() == [2, 1, 0] and s["S"].tolist() == [1, 0, 1]
    figs = support_figures(c, Resamples(5, 300, seed=0))
    assert figs["P"]["value"] == 2 and figs["SRR"]["value"] == pytest.approx(2 / 3)
    assert figs["NSCR"]["value"] == pytest.approx(0.0) and figs["NSCR"]["ci95"][0] < 0 < figs["NSCR"]["ci95"][1]


def test_diversity_counts_and_entropy():
    distinct, entropy = diversity_P([Counter({"a": 2, "b": 2}), Counter({"a": 5}), Counter()])
    assert distinct.tolist() == [2, 1, 0]
    assert entropy.tolist() == pytest.approx([torch.log(torch.tensor(2.0)).item(), 0.0, 0.0])


def test_across_seeds_spread():
    s = across_seeds([0.1, 0.2, 0.3, None])
    assert s["n"] == 3 and s["mean"] == pytest.approx(0.2) and s["std"] == pytest.approx(0.1)
    assert (s["min"], s["max"]) == (0.1, 0.3)
    assert across_seeds([None])["mean"] is None and across_seeds([1.0])["std"] is None


@pytest.mark.parametrize(
    "call",
    [
        lambda: transition_matrix(["basin"], ["basin", "tail"]),
        lambda: transition_matrix(["lake"], ["basin"]),
        lambda: Resamples(3, 10).mean(torch.zeros(4)),
        lambda: Resamples(0, 10),
        lambda: Resamples(3, 0),
        lambda: prompt_support_counts([1, 0], [1]),
        lambda: solution_support_counts([set()], []),
    ],
)
def test_bad_input_raises(call):
    with pytest.raises(ValueError):
        call()


def test_regimes_from_the_gain_samples_inflate_creation_and_independent_ones_do_not():
    """Regression to the mean, on synthetic counts: T = B, both with p ~ 1/K on many prompts. Classifying
    the base on the samples that also measure its pass@1 selects prompts whose count was low by chance
    (zero), so "creation" is positive for a model identical to its base; classifying on an independent
    set of K samples (what the probe does) gives creation ~ 0."""
    from reweightlab.probe.regimes import RegimeThresholds, classify, reached_sampling

    P, K = 4000, 64
    th = RegimeThresholds(budget_K=K)
    g = torch.Generator().manual_seed(0)
    p = torch.full((P,), 1.0 / K, dtype=torch.float64)

    def draw():
        return torch.binomial(torch.full((P,), float(K)), p.float(), generator=g).long()

    c_base, c_select, c_trained = draw(), draw(), draw()
    rs = Resamples(P, 200, seed=0)
    gain = (c_trained - c_base).double() / K
    found = torch.ones(P, dtype=torch.bool)  # the search finds every success: unreached prompts are barrier

    def creation(c_for_regimes):
        regimes = classify(c_for_regimes.double() / K, reached_sampling(c_for_regimes), thresholds=th,
                           search_success_P=found)
        return gain_split(regimes, gain, rs)["creation"]

    same = creation(c_base)
    independent = creation(c_select)
    assert excludes_zero(same) and same["value"] > 0.003  # ~ P(c=0) * p = 0.37 / 64
    assert not excludes_zero(independent) and abs(independent["value"]) < 0.002
