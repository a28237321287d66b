"""pass@k curves, bootstrap intervals over prompts, and the crossover k*."""

from __future__ import annotations

import math

import pytest
import torch

from reweightlab.math.passk import pass_at_k
from reweightlab.probe.passk_stats import _bootstrap_means, bootstrap_passk, crossover_k, passk_curve


def _brute_passk(n: int, c: int, k: int) -> float:
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def test_curve_equals_comb_brute_force():
    n_P = [8, 10, 12, 8, 16]
    c_P = [0, 3, 12, 7, 1]
    ks = [1, 2, 3, 5, 8]
    curve = passk_curve(n_P, c_P, ks)
    assert list(curve) == ks
    for k in ks:
        expected = sum(_brute_passk(n, c, k) for n, c in zip(n_P, c_P, strict=True)) / len(n_P)
        assert curve[k] == pytest.approx(expected, abs=1e-12)


def test_curve_accepts_tensors():
    curve = passk_curve(torch.tensor([4, 4]), torch.tensor([1, 2]), [2])
    assert curve[2] == pytest.approx((_brute_passk(4, 1, 2) + _brute_passk(4, 2, 2)) / 2, abs=1e-12)


def test_k_above_smallest_n_is_an_error_naming_k_and_n():
    with pytest.raises(ValueError, match=r"k = 9 exceeds the smallest per-prompt sample count n = 8"):
        passk_curve([16, 8], [1, 1], [1, 9])
    with pytest.raises(ValueError, match=r"k = 9 exceeds the smallest per-prompt sample count n = 8"):
        bootstrap_passk([16, 8], [1, 1], [9])
    passk_curve([16, 8], [1, 1], [8])  # k = min(n) is fine


@pytest.mark.parametrize("bad", [[], [0]])
def test_bad_ks_rejected(bad):
    with pytest.raises(ValueError):
        passk_curve([4], [1], bad)


def _rates_data(repeats: int) -> tuple[list[int], list[int]]:
    pattern = [0, 1, 2, 4, 8]  # successes out of n = 8
    c_P = pattern * repeats
    return [8] * len(c_P), c_P


def test_bootstrap_estimate_equals_curve_and_lies_in_interval():
    n_P, c_P = _rates_data(8)
    ks = [1, 2, 4, 8]
    out = bootstrap_passk(n_P, c_P, ks, num_resamples=500, seed=3)
    curve = passk_curve(n_P, c_P, ks)
    assert list(out) == ks
    for k in ks:
        est, low, high = out[k]
        assert est == pytest.approx(curve[k], abs=1e-12)
        assert low <= est <= high
    # k = 8 = n: pass@8 is 1 for any c > 0, so the curve is 4/5 and the interval is non-degenerate
    assert out[8][2] - out[8][1] > 0.05


def test_bootstrap_narrows_with_more_prompts():
    small = bootstrap_passk(*_rates_data(4), [1, 4], num_resamples=1000, seed=0)  # 20 prompts
    large = bootstrap_passk(*_rates_data(400), [1, 4], num_resamples=1000, seed=0)  # 2000 prompts
    for k in (1, 4):
        assert small[k][0] == pytest.approx(large[k][0], abs=1e-12)  # same per-prompt rates
        width_small = small[k][2] - small[k][1]
        width_large = large[k][2] - large[k][1]
        # width ~ 1/sqrt(P): a factor of 10 expected; 4 leaves room for bootstrap noise
        assert width_large < width_small / 4


def test_bootstrap_deterministic_for_seed():
    n_P, c_P = _rates_data(10)
    a = bootstrap_passk(n_P, c_P, [1, 2], num_resamples=300, seed=7)
    b = bootstrap_passk(n_P, c_P, [1, 2], num_resamples=300, seed=7)
    c = bootstrap_passk(n_P, c_P, [1, 2], num_resamples=300, seed=8)
    assert a == b
    assert a != c
    # the global RNG plays no part
    torch.manual_seed(123)
    assert bootstrap_passk(n_P, c_P, [1, 2], num_resamples=300, seed=7) == a


def test_bootstrap_all_equal_prompts_has_zero_width():
    out = bootstrap_passk([10] * 30, [3] * 30, [1, 5], num_resamples=200)
    for k in (1, 5):
        est, low, high = out[k]
        assert est == pytest.approx(_brute_passk(10, 3, k), abs=1e-12)
        assert low == pytest.approx(est, abs=1e-12)
        assert high == pytest.approx(est, abs=1e-12)


def test_bootstrap_resample_means_centre_on_estimate():
    n_P, c_P = _rates_data(40)  # 200 prompts
    passk_PK = torch.stack([pass_at_k(torch.tensor(n_P), torch.tensor(c_P), k) for k in (1, 4)], dim=1)
    means_RK = _bootstrap_means(passk_PK, num_resamples=4000, seed=0)
    assert means_RK.shape == (4000, 2)
    # standard error of the mean of 4000 resample means is ~ 0.03 / sqrt(4000) < 1e-3
    torch.testing.assert_close(means_RK.mean(0), passk_PK.mean(0), atol=3e-3, rtol=0)
    # each resample averages exactly P prompts: spot-check one row against direct indexing
    generator = torch.Generator().manual_seed(0)
    idx_RP = torch.randint(0, passk_PK.shape[0], (4000, passk_PK.shape[0]), generator=generator)
    torch.testing.assert_close(means_RK[5], passk_PK[idx_RP[5]].mean(0), atol=1e-12, rtol=0)


def test_bootstrap_rejects_bad_settings():
    with pytest.raises(ValueError):
        bootstrap_passk([4], [1], [1], num_resamples=0)
    with pytest.raises(ValueError):
        bootstrap_passk([4], [1], [1], confidence=1.0)


def test_crossover_between_4_and_8_matches_log2_interpolation():
    base = {1: 0.10, 2: 0.20, 4: 0.30, 8: 0.60, 16: 0.80}
    trained = {1: 0.30, 2: 0.35, 4: 0.40, 8: 0.50, 16: 0.55}
    k_star = crossover_k(base, trained)
    d_a, d_b = 0.40 - 0.30, 0.50 - 0.60
    expected = 2.0 ** (2.0 + d_a / (d_a - d_b) * (3.0 - 2.0))  # = 2 ** 2.5
    assert 4 < k_star < 8
    assert k_star == pytest.approx(expected, rel=1e-12)
    assert k_star == pytest.approx(2.0**2.5, rel=1e-9)


def test_crossover_uses_first_catch_up_only():
    # base catches up at 4, falls behind again at 8: k* is the first crossing
    base = {1: 0.1, 2: 0.2, 4: 0.5, 8: 0.5}
    trained = {1: 0.3, 2: 0.3, 4: 0.4, 8: 0.9}
    assert crossover_k(base, trained) == pytest.approx(2.0 ** (1.0 + 0.1 / 0.2), rel=1e-12)


def test_no_crossing_returns_none():
    base = {1: 0.1, 2: 0.2, 4: 0.3}
    trained = {1: 0.3, 2: 0.4, 4: 0.5}
    assert crossover_k(base, trained) is None


def test_trained_behind_from_the_start_returns_none():
    base = {1: 0.3, 2: 0.4, 4: 0.6}
    trained = {1: 0.2, 2: 0.5, 4: 0.5}
    assert crossover_k(base, trained) is None
    tied = {1: 0.3, 2: 0.5, 4: 0.5}  # equal at the smallest k: trained is not ahead
    assert crossover_k(base, tied) is None


def test_equality_counts_as_caught_up():
    base = {1: 0.1, 2: 0.2, 8: 0.5, 16: 0.9}
    trained = {1: 0.3, 2: 0.3, 8: 0.5, 16: 0.6}
    assert crossover_k(base, trained) == 8.0
    # equality at the last k alone is a crossover, at exactly that k
    assert crossover_k({1: 0.1, 2: 0.2, 8: 0.5}, {1: 0.3, 2: 0.3, 8: 0.5}) == 8.0


def test_crossover_key_order_irrelevant_and_mismatch_rejected():
    base = {8: 0.6, 1: 0.1, 4: 0.3}
    trained = {4: 0.4, 1: 0.3, 8: 0.5}
    assert crossover_k(base, trained) == pytest.approx(2.0**2.5, rel=1e-12)
    with pytest.raises(ValueError):
        crossover_k({1: 0.1, 2: 0.2}, {1: 0.3, 4: 0.2})
