from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch

from reweightlab.math import mean_pass_at_k, pass_at_k


def _exact(n, c, k):
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def test_matches_binomial_definition_for_small_n():
    for n in range(1, 13):
        for c in range(n + 1):
            for k in range(1, n + 1):
                assert pass_at_k(n, c, k) == pytest.approx(_exact(n, c, k), abs=1e-12), (n, c, k)


def test_edge_cases():
    assert pass_at_k(10, 0, 3) == 0.0
    assert pass_at_k(10, 10, 3) == 1.0
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3, abs=1e-15)  # k = 1 -> c / n
    assert pass_at_k(10, 1, 10) == 1.0  # k = n: any success is found
    assert pass_at_k(10, 8, 3) == 1.0  # n - c = 2 < k = 3
    assert pass_at_k(10, 7, 3) == pytest.approx(1 - 1 / 120, abs=1e-15)  # n - c = k


@pytest.mark.parametrize("n, c, k", [(5, 1, 6), (5, 1, 0), (5, 6, 1), (5, -1, 1)])
def test_invalid_arguments(n, c, k):
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)
    with pytest.raises(ValueError):
        pass_at_k(torch.tensor([n]), torch.tensor([c]), k)


def test_tensor_form_matches_int_form():
    n = torch.tensor([10, 10, 10, 7, 64, 64, 1])
    c = torch.tensor([0, 3, 10, 5, 1, 40, 1])
    for k in (1, 2, 5):
        valid = n >= k
        got = pass_at_k(n[valid], c[valid], k)
        assert got.dtype == torch.float64
        expected = [_exact(int(a), int(b), k) for a, b in zip(n[valid], c[valid], strict=True)]
        torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64), atol=1e-12, rtol=0)


def test_large_n_is_stable_bounded_and_monotone_in_k():
    n = 4096
    ks = [1, 2, 4, 16, 64, 256, 1024, 4096]
    for c in (0, 1, 7, 100, 2048, 4095, 4096):
        values = [pass_at_k(n, c, k) for k in ks]
        assert all(0.0 <= v <= 1.0 and math.isfinite(v) for v in values), (c, values)
        assert all(a <= b for a, b in zip(values, values[1:], strict=False)), (c, values)
    # against exact integer arithmetic: int / int is correctly rounded in Python even for binomials
    # far beyond float64's range (C(4096, 2048) ~ 1e1231)
    for c, k in ((1, 1), (7, 64), (100, 16), (5, 4000), (3, 2048)):
        exact = 1.0 - math.comb(n - c, k) / math.comb(n, k)
        assert pass_at_k(n, c, k) == pytest.approx(exact, rel=1e-10, abs=1e-12), (c, k)
    # c = 1: pass@k = k / n exactly
    assert pass_at_k(n, 1, 64) == pytest.approx(64 / 4096, rel=1e-14)
    # Small values keep full relative precision: -expm1(s) is within a few ulp of the exact rational,
    # where 1 - exp(s) would be off by ~1e-14 relative for these (c, k).
    for c, k in ((2, 7), (3, 7), (4, 5)):
        exact = float(1 - Fraction(math.comb(n - c, k), math.comb(n, k)))
        assert pass_at_k(n, c, k) == pytest.approx(exact, rel=1e-15, abs=0), (c, k)
    tensor_vals = pass_at_k(torch.full((3,), n), torch.tensor([1, 100, 4000]), 256)
    int_vals = [pass_at_k(n, c, 256) for c in (1, 100, 4000)]
    torch.testing.assert_close(tensor_vals, torch.tensor(int_vals, dtype=torch.float64), atol=1e-12, rtol=0)


def test_mean_pass_at_k():
    n = torch.tensor([4, 4])
    c = torch.tensor([0, 2])
    got = mean_pass_at_k(n, c, [1, 2, 4])
    assert set(got) == {1, 2, 4}
    assert got[1] == pytest.approx((0 + 0.5) / 2)
    assert got[2] == pytest.approx((0 + (1 - 1 / 6)) / 2)
    assert got[4] == pytest.approx(0.5)
    assert all(isinstance(v, float) for v in got.values())
