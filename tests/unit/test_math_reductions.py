from __future__ import annotations

import pytest
import torch

from reweightlab.math import REDUCTIONS, reduce_loss

LOSS = torch.tensor([[1.0, 2.0, 3.0, 4.0], [10.0, 20.0, 30.0, 40.0]])
MASK = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])


def test_token_mean():
    # (1 + 2 + 10 + 20 + 30 + 40) / 6 tokens
    got = reduce_loss(LOSS, MASK, "token_mean")
    torch.testing.assert_close(got, torch.tensor(103.0 / 6))


def test_token_mean_with_global_tokens():
    got = reduce_loss(LOSS, MASK, "token_mean", global_tokens=20)
    torch.testing.assert_close(got, torch.tensor(103.0 / 20))
    as_tensor = reduce_loss(LOSS, MASK, "token_mean", global_tokens=torch.tensor(20))
    torch.testing.assert_close(as_tensor, got)


def test_seq_mean():
    # sequence means: 3/2 = 1.5 and 100/4 = 25
    got = reduce_loss(LOSS, MASK, "seq_mean")
    torch.testing.assert_close(got, torch.tensor((1.5 + 25.0) / 2))
    got_global = reduce_loss(LOSS, MASK, "seq_mean", global_sequences=8)
    torch.testing.assert_close(got_global, torch.tensor((1.5 + 25.0) / 8))


def test_sum_over_constant():
    got = reduce_loss(LOSS, MASK, "sum_over_constant", constant=16)
    torch.testing.assert_close(got, torch.tensor(103.0 / 16))
    with pytest.raises(ValueError, match="constant"):
        reduce_loss(LOSS, MASK, "sum_over_constant")
    with pytest.raises(ValueError, match="constant"):
        reduce_loss(LOSS, MASK, "sum_over_constant", constant=0)


def test_bad_mode_names_allowed_modes():
    with pytest.raises(ValueError) as err:
        reduce_loss(LOSS, MASK, "mean")
    for mode in REDUCTIONS:
        assert mode in str(err.value)


def test_other_modes_counts_are_ignored():
    """A loop may pass every count of the step; each mode reads only its own."""
    kwargs = {"global_tokens": 6, "global_sequences": 2, "constant": 16}
    torch.testing.assert_close(reduce_loss(LOSS, MASK, "token_mean", **kwargs), torch.tensor(103.0 / 6))
    torch.testing.assert_close(reduce_loss(LOSS, MASK, "seq_mean", **kwargs), torch.tensor(26.5 / 2))


@pytest.mark.parametrize("mode", REDUCTIONS)
def test_all_zero_mask_gives_zero_not_nan(mode):
    loss = torch.randn(3, 4, requires_grad=True)
    mask = torch.zeros(3, 4)
    out = reduce_loss(loss, mask, mode, constant=10)
    assert float(out.detach()) == 0.0
    out.backward()
    assert bool((loss.grad == 0).all())


@pytest.mark.parametrize("mode", REDUCTIONS)
def test_masked_garbage_does_not_leak(mode):
    loss = LOSS.clone()
    loss[0, 2:] = float("nan")
    loss[0, 3] = float("inf")
    clean = reduce_loss(LOSS, MASK, mode, constant=10)
    torch.testing.assert_close(reduce_loss(loss, MASK, mode, constant=10), clean)


def test_gradients_weigh_tokens_as_documented():
    loss = LOSS.clone().requires_grad_()
    reduce_loss(loss, MASK, "token_mean").backward()
    torch.testing.assert_close(loss.grad, MASK.float() / 6)
    loss.grad = None
    reduce_loss(loss, MASK, "seq_mean").backward()
    expected = torch.tensor([[0.5, 0.5, 0, 0], [0.25, 0.25, 0.25, 0.25]]) / 2
    torch.testing.assert_close(loss.grad, expected)


def test_shape_and_count_validation():
    with pytest.raises(ValueError):
        reduce_loss(LOSS, MASK[:, :3], "token_mean")
    with pytest.raises(ValueError):
        reduce_loss(LOSS, MASK, "token_mean", global_tokens=-1)
