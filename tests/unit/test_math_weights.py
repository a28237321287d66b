from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from reweightlab.math import (
    IW_PRESETS,
    IWPreset,
    importance_weights,
    percentile_thresholds,
    quality_levels,
    quality_multiset_indices,
    rwr_weights,
    threshold_weights,
    token_probability_weights,
    unit_weights,
)

# --- SFT family -------------------------------------------------------------------------------------


def test_unit_weights_are_the_mask_as_float():
    mask = torch.tensor([[True, False], [True, True]])
    w = unit_weights(mask)
    assert w.dtype == torch.float32
    assert torch.equal(w, torch.tensor([[1.0, 0.0], [1.0, 1.0]]))


def test_threshold_weights_keep_rewards_at_or_above_threshold():
    r = torch.tensor([-1.0, 0.99, 1.0, 5.0])
    assert torch.equal(threshold_weights(r, 1.0), torch.tensor([0.0, 0.0, 1.0, 1.0]))


def test_quality_levels_count_thresholds_cleared_strictly():
    scores = torch.tensor([0.0, 1.0, 1.5, 2.0, 2.5, 3.0, 9.0])
    levels = quality_levels(scores, [1.0, 2.0, 3.0])
    # a score equal to a threshold does not clear it (strict >)
    assert torch.equal(levels, torch.tensor([0.0, 0.0, 1.0, 1.0, 2.0, 2.0, 3.0]))
    assert levels.dtype == torch.float32


@pytest.mark.parametrize("bad", [[2.0, 1.0], [1.0, 1.0], []])
def test_quality_levels_need_strictly_increasing_thresholds(bad):
    with pytest.raises(ValueError):
        quality_levels(torch.tensor([1.0]), bad)


def test_percentile_thresholds_by_hand():
    # 11 scores 0, 10, ..., 100 in shuffled order: h = 10 * p / 100, so p-th percentile = p exactly.
    scores = torch.tensor([50.0, 0, 100, 10, 90, 20, 80, 30, 70, 40, 60])
    assert percentile_thresholds(scores, (90.0, 95.0, 98.0)) == pytest.approx([90.0, 95.0, 98.0], abs=1e-12)
    # 4 scores [1, 2, 4, 8]: p=90 -> h = 2.7 -> 4 + 0.7 * (8 - 4) = 6.8; p=50 -> h = 1.5 -> 3.0
    got = percentile_thresholds(torch.tensor([8.0, 1.0, 4.0, 2.0]), (50.0, 90.0, 0.0, 100.0))
    assert got == pytest.approx([3.0, 6.8, 1.0, 8.0], abs=1e-12)
    assert percentile_thresholds(torch.tensor([3.0])) == [3.0, 3.0, 3.0]
    with pytest.raises(ValueError):
        percentile_thresholds(torch.tensor([]))
    with pytest.raises(ValueError):
        percentile_thresholds(torch.tensor([1.0]), (101.0,))


def test_quality_multiset_indices_repeat_by_level():
    idx = quality_multiset_indices(torch.tensor([0.0, 3.0, 1.0, 2.0]))
    assert idx.dtype == torch.long
    assert idx.tolist() == [1, 1, 1, 2, 3, 3]
    with pytest.raises(ValueError):
        quality_multiset_indices(torch.tensor([1.5]))
    with pytest.raises(ValueError):
        quality_multiset_indices(torch.tensor([-1.0]))


def test_sft_q_pipeline_matches_spec_2_3():
    """Above the 98th percentile: 3 copies, above 95th: 2, above 90th: 1."""
    returns = torch.arange(100, dtype=torch.float32)  # percentiles 89.1, 94.05, 97.02
    levels = quality_levels(returns, percentile_thresholds(returns))
    counts = torch.bincount(quality_multiset_indices(levels), minlength=100)
    assert counts[:90].sum() == 0
    assert counts[90:95].tolist() == [1] * 5
    assert counts[95:98].tolist() == [2] * 3
    assert counts[98:].tolist() == [3] * 2


# --- iw-SFT -------------------------------------------------------------------------------------------


def _logps(seed=0, shape=(4, 6)):
    g = torch.Generator().manual_seed(seed)
    logp_ref = -torch.rand(shape, generator=g) * 3
    logp_q = -torch.rand(shape, generator=g) * 3
    mask = torch.ones(shape, dtype=torch.bool)
    mask[0, 4:] = False
    mask[2, 1:] = False
    return logp_q, logp_ref, mask


def test_presets_match_spec_table():
    assert IW_PRESETS["llm"] == IWPreset("sequence", 1.0, 0.0, 16.0, False, "current", None)
    assert IW_PRESETS["llm-token"] == IWPreset("token", 1.0, 0.2, 1.8, False, "current", None)
    assert IW_PRESETS["control"] == IWPreset("sequence", 10.0, 0.0, 1000.0, True, "ema", 0.9)
    with pytest.raises(dataclasses.FrozenInstanceError):
        IW_PRESETS["llm"].temp = 2.0  # type: ignore[misc]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"level": "word"},
        {"q": "old"},
        {"q": "ema", "ema_decay": None},
        {"ema_decay": 0.5},
        {"temp": 0.0},
        {"clip_min": 2.0, "clip_max": 1.0},
    ],
)
def test_preset_validation(kwargs):
    base = dataclasses.asdict(IW_PRESETS["llm"])
    with pytest.raises(ValueError):
        IWPreset(**{**base, **kwargs})


@pytest.mark.parametrize("name", sorted(IW_PRESETS))
def test_importance_weights_are_one_at_step_zero(name):
    _, logp_ref, mask = _logps()
    preset = IW_PRESETS[name]
    kwargs = {**preset.weight_kwargs(), "self_normalise": False}
    w = importance_weights(logp_ref.clone(), logp_ref, mask, **kwargs)
    if preset.level == "sequence":
        assert w.shape == (4,) and torch.equal(w, torch.ones(4))
    else:
        assert torch.equal(w, mask.float())


def test_sequence_weight_is_clipped_exp_of_mean_log_ratio():
    logp_q, logp_ref, mask = _logps()
    w = importance_weights(logp_q, logp_ref, mask, temp=2.0, clip_min=0.5, clip_max=3.0)
    rho = (logp_q - logp_ref) * mask
    expected = torch.exp(2.0 * rho.sum(-1) / mask.sum(-1)).clamp(0.5, 3.0)
    torch.testing.assert_close(w, expected, atol=1e-6, rtol=1e-6)
    assert bool(((expected == 0.5) | (expected == 3.0)).any()), "test data must exercise the clip"


def test_token_weight_is_clipped_exp_and_zero_on_mask():
    logp_q, logp_ref, mask = _logps(1)
    w = importance_weights(logp_q, logp_ref, mask, level="token", clip_min=0.2, clip_max=1.8)
    expected = torch.exp(logp_q - logp_ref).clamp(0.2, 1.8) * mask
    torch.testing.assert_close(w, expected, atol=1e-6, rtol=1e-6)
    assert bool((w[~mask] == 0).all())
    w_temp = importance_weights(logp_q, logp_ref, mask, level="token", temp=3.0, clip_min=0.0, clip_max=1e9)
    torch.testing.assert_close(w_temp, torch.exp(3.0 * (logp_q - logp_ref)) * mask, atol=1e-6, rtol=1e-5)


def test_self_normalised_weights_sum_to_one():
    logp_q, logp_ref, mask = _logps(2)
    seq = importance_weights(logp_q, logp_ref, mask, self_normalise=True)
    raw = importance_weights(logp_q, logp_ref, mask)
    torch.testing.assert_close(seq.sum(), torch.tensor(1.0))
    torch.testing.assert_close(seq, raw / raw.sum())
    tok = importance_weights(logp_q, logp_ref, mask, level="token", self_normalise=True)
    torch.testing.assert_close(tok.sum(), torch.tensor(1.0))
    assert bool((tok[~mask] == 0).all())


def test_huge_log_ratios_never_give_inf_or_nan():
    logp_ref = torch.full((3, 4), -500.0)
    logp_q = torch.zeros(3, 4)
    logp_q[1] = -2000.0
    mask = torch.ones(3, 4)
    for kw in [{}, {"clip_max": math.inf}, {"clip_max": math.inf, "self_normalise": True}, {"temp": 10.0}]:
        for level in ("sequence", "token"):
            w = importance_weights(logp_q, logp_ref, mask, level=level, **kw)
            assert bool(torch.isfinite(w).all()), (kw, level)
    w = importance_weights(logp_q, logp_ref, mask)
    assert w.tolist() == [16.0, 0.0, 16.0]
    normed = importance_weights(logp_q, logp_ref, mask, clip_max=math.inf, self_normalise=True)
    torch.testing.assert_close(normed, torch.tensor([0.5, 0.0, 0.5]))


def test_importance_weights_ignore_padding_garbage_and_empty_rows():
    logp_q, logp_ref, mask = _logps(3)
    mask[3] = False  # a pure padding row
    dirty_q = logp_q.clone()
    dirty_q[~mask] = float("-inf")
    dirty_ref = logp_ref.clone()
    dirty_ref[~mask] = float("-inf")
    w = importance_weights(dirty_q, dirty_ref, mask)
    torch.testing.assert_close(w[:3], importance_weights(logp_q, logp_ref, mask)[:3])
    assert float(w[3]) == 0.0  # no tokens to weigh


def test_importance_weights_are_detached():
    logp_q, logp_ref, mask = _logps(4)
    logp_q.requires_grad_()
    assert not importance_weights(logp_q, logp_ref, mask).requires_grad


def test_importance_weights_validation():
    logp_q, logp_ref, mask = _logps()
    with pytest.raises(ValueError):
        importance_weights(logp_q, logp_ref, mask, level="word")
    with pytest.raises(ValueError):
        importance_weights(logp_q, logp_ref, mask, clip_min=2.0, clip_max=1.0)
    with pytest.raises(ValueError):
        importance_weights(logp_q, logp_ref[:, :3], mask)


# --- DFT, RWR -----------------------------------------------------------------------------------------


def test_dft_weights_are_detached_token_probabilities():
    logp = torch.log(torch.tensor([[0.5, 0.25], [1.0, 0.1]])).requires_grad_()
    w = token_probability_weights(logp)
    assert not w.requires_grad
    torch.testing.assert_close(w, torch.tensor([[0.5, 0.25], [1.0, 0.1]]))


def test_rwr_weights_mean_one_and_exponential_in_reward():
    r = torch.tensor([0.0, 1.0, 2.0, 5.0])
    w = rwr_weights(r, beta=2.0)
    torch.testing.assert_close(w.mean(), torch.tensor(1.0))
    # ratios follow exp(delta r / beta)
    torch.testing.assert_close(w[1] / w[0], torch.tensor(math.exp(0.5)))
    assert bool(torch.isfinite(rwr_weights(torch.tensor([1e4, 0.0]), beta=1e-3)).all())
    with pytest.raises(ValueError):
        rwr_weights(r, beta=0.0)


def test_sequence_weight_with_summed_log_ratios_is_the_clipped_likelihood_ratio():
    logp_q = torch.tensor([[-0.5, -1.0, -2.0], [-0.1, -0.2, 0.0]])
    logp_ref = torch.tensor([[-1.0, -1.5, -0.5], [-3.0, -2.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0]])  # the third token is padding
    w = importance_weights(logp_q, logp_ref, mask, level="sequence", aggregate="sum", clip_max=16.0)
    # sequence 0: log-ratio 0.5 + 0.5 = 1 -> e; sequence 1: 2.9 + 1.8 = 4.7 -> e^4.7 = 110 -> clipped to 16
    assert torch.allclose(w, torch.tensor([math.e, 16.0]), atol=1e-5)
    mean = importance_weights(logp_q, logp_ref, mask, level="sequence", aggregate="mean", clip_max=16.0)
    assert torch.allclose(mean, torch.tensor([math.exp(0.5), math.exp(2.35)]), atol=1e-5)
    assert IW_PRESETS["llm-seq"].weight_kwargs()["aggregate"] == "sum"
    with pytest.raises(ValueError, match="aggregate"):
        importance_weights(logp_q, logp_ref, mask, level="token", aggregate="sum")
