from __future__ import annotations

import pytest
import torch

from reweightlab.math import (
    STD_SCALINGS,
    batch_baseline_advantages,
    group_advantages,
    leave_one_out_advantages,
)

REWARDS_PG = torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.1, 0.1, 0.1, 0.1], [5.0, -1.0, -2.0, -3.0]])


def test_group_advantages_no_scaling_is_mean_centred():
    adv = group_advantages(REWARDS_PG, std_scaling="none")
    expected = REWARDS_PG - REWARDS_PG.mean(-1, keepdim=True)
    expected[1] = 0.0
    torch.testing.assert_close(adv, expected)


def test_group_advantages_group_scaling_uses_population_std():
    adv = group_advantages(REWARDS_PG, std_scaling="group", eps=0.0)
    # group 0: mean 0.5, population std 0.5 -> +-1 exactly
    torch.testing.assert_close(adv[0], torch.tensor([1.0, -1.0, -1.0, 1.0]))
    # every non-constant group: zero mean and unit mean square
    torch.testing.assert_close(adv[[0, 2]].mean(-1), torch.zeros(2), atol=1e-6, rtol=0)
    torch.testing.assert_close(adv[[0, 2]].square().mean(-1), torch.ones(2), atol=1e-5, rtol=0)


def test_group_advantages_batch_scaling():
    adv = group_advantages(REWARDS_PG, std_scaling="batch", eps=1e-6)
    centred = REWARDS_PG - REWARDS_PG.mean(-1, keepdim=True)
    centred[1] = 0.0
    expected = centred / (REWARDS_PG.std(unbiased=False) + 1e-6)
    torch.testing.assert_close(adv, expected)


@pytest.mark.parametrize("scaling", STD_SCALINGS)
def test_constant_groups_get_exactly_zero(scaling):
    # 0.1 * 3 is not exactly representable: r - mean(r) would be ~1e-17, not 0, without special care.
    r = torch.full((2, 3), 0.1, dtype=torch.float64)
    for fn in (group_advantages, leave_one_out_advantages):
        assert torch.equal(fn(r, std_scaling=scaling), torch.zeros(2, 3, dtype=torch.float64))
    mean_is_inexact = (r - r.mean(-1, keepdim=True)).abs().max() > 0
    assert bool(mean_is_inexact), "the data must exercise the floating-point trap"


def test_batch_baseline():
    r = torch.tensor([1.0, 2.0, 6.0])
    torch.testing.assert_close(batch_baseline_advantages(r), torch.tensor([-2.0, -1.0, 3.0]))
    scaled = batch_baseline_advantages(r, std_scaling="batch", eps=0.0)
    torch.testing.assert_close(scaled, torch.tensor([-2.0, -1.0, 3.0]) / r.std(unbiased=False))
    const = torch.full((5,), 0.1, dtype=torch.float64)
    assert torch.equal(batch_baseline_advantages(const, "batch"), torch.zeros(5, dtype=torch.float64))
    with pytest.raises(ValueError, match="batch"):
        batch_baseline_advantages(r, std_scaling="group")


def test_leave_one_out_formula():
    adv = leave_one_out_advantages(REWARDS_PG)
    g = REWARDS_PG.shape[-1]
    expected = torch.empty_like(REWARDS_PG)
    for p in range(REWARDS_PG.shape[0]):
        for i in range(g):
            others = torch.cat([REWARDS_PG[p, :i], REWARDS_PG[p, i + 1 :]])
            expected[p, i] = REWARDS_PG[p, i] - others.mean()
    torch.testing.assert_close(adv, expected, atol=1e-6, rtol=0)
    # RLOO = G/(G-1) * mean-centred
    torch.testing.assert_close(adv, g / (g - 1) * group_advantages(REWARDS_PG, "none"), atol=1e-6, rtol=0)


def test_leave_one_out_std_scaling():
    adv = leave_one_out_advantages(REWARDS_PG, std_scaling="group", eps=0.0)
    torch.testing.assert_close(adv[0], torch.tensor([1.0, -1.0, -1.0, 1.0]) * 4 / 3)


def test_leave_one_out_needs_two_samples():
    with pytest.raises(ValueError, match="G >= 2"):
        leave_one_out_advantages(torch.tensor([[1.0], [2.0]]))


@pytest.mark.parametrize("fn", [group_advantages, leave_one_out_advantages])
def test_unknown_std_scaling_lists_allowed(fn):
    with pytest.raises(ValueError) as err:
        fn(REWARDS_PG, std_scaling="global")
    for name in STD_SCALINGS:
        assert name in str(err.value)


def test_advantages_are_detached_float():
    r = torch.tensor([[1.0, 0.0, 3.0]], requires_grad=True)
    assert not group_advantages(r).requires_grad
    assert not leave_one_out_advantages(r).requires_grad
    ints = torch.tensor([[1, 0, 1, 1]])
    assert group_advantages(ints).dtype == torch.float32
