import pytest
import torch

from reweightlab.probe.elicitation import (
    compare_to_base,
    coverage,
    gain_by_base_regime,
    support_shrinkage,
    transition_matrix,
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
    p_base = [0.5, 0.05, 0.0, 0.0, 0.3, 0.02]
    p_trained = [0.9, 0.35, 0.02, 0.0, 0.0, 0.0]
    g = gain_by_base_regime(BASE, p_base, p_trained)
    gains = [t - b for b, t in zip(p_base, p_trained, strict=True)]
    assert g["total"] == pytest.approx(sum(gains) / 6, abs=1e-12)
    assert g["elicitation"] + g["creation"] == pytest.approx(g["total"], abs=1e-12)
    # creation: only the barrier prompt moved (0 -> 0.02), over 6 prompts
    assert g["creation"] == pytest.approx(0.02 / 6, abs=1e-12)
    assert g["by_base_regime"]["basin"]["prompts"] == 2
    assert g["by_base_regime"]["basin"]["mean_gain"] == pytest.approx((0.4 - 0.3) / 2, abs=1e-12)
    assert g["by_base_regime"]["tail"]["contribution"] == pytest.approx((0.30 - 0.02) / 6, abs=1e-12)


def test_gain_split_empty_regime_has_no_mean():
    g = gain_by_base_regime(["basin", "basin"], [0.2, 0.4], [0.3, 0.4])
    assert g["by_base_regime"]["singularity"] == {"prompts": 0, "mean_gain": None, "contribution": 0.0}
    assert g["creation"] == 0.0 and g["elicitation"] == pytest.approx(0.05, abs=1e-12)


def test_support_shrinkage_counts_lost_and_gained():
    s = support_shrinkage(BASE, TRAINED)
    # base within budget: prompts 0, 1, 4, 5; trained: 0, 1, 2
    assert s == {"base_within_budget": 4, "trained_within_budget": 3, "lost": 2, "gained": 1, "lost_fraction": 0.5}
    assert support_shrinkage(["barrier"], ["basin"])["lost_fraction"] is None


def test_coverage_table():
    c = coverage(torch.tensor([0, 3, 0, 1, 2]), torch.tensor([0, 1, 4, 0, 2]))
    assert c == {"both": 2, "base_only": 1, "trained_only": 1, "neither": 1}


def test_compare_to_base_combines():
    base = {"regimes": BASE, "p_P": [0.2] * 6, "c_P": [1, 1, 0, 0, 1, 1]}
    trained = {"regimes": TRAINED, "p_P": [0.3] * 6, "c_P": [1, 1, 1, 0, 0, 0]}
    out = compare_to_base(base, trained)
    assert set(out) == {"transitions", "pass1_gain", "support_shrinkage", "coverage"}
    assert out["pass1_gain"]["total"] == pytest.approx(0.1, abs=1e-12)


@pytest.mark.parametrize(
    "call",
    [
        lambda: transition_matrix(["basin"], ["basin", "tail"]),
        lambda: transition_matrix(["lake"], ["basin"]),
        lambda: gain_by_base_regime(["basin"], [0.1, 0.2], [0.1, 0.2]),
        lambda: gain_by_base_regime([], [], []),
        lambda: coverage([1, 2], [1]),
        lambda: coverage([-1], [1]),
    ],
)
def test_bad_input_raises(call):
    with pytest.raises(ValueError):
        call()
