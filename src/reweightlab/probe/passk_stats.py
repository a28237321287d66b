"""pass@k curves, bootstrap confidence intervals over prompts, and the base/trained crossover ``k*``.

The per-prompt estimator itself lives in ``reweightlab.math.passk``; this module only averages, resamples
and compares curves built from it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from reweightlab.math.passk import mean_pass_at_k, pass_at_k


def _counts(n_P, c_P) -> tuple[torch.Tensor, torch.Tensor]:
    n_P, c_P = torch.as_tensor(n_P), torch.as_tensor(c_P)
    if n_P.dim() != 1 or c_P.shape != n_P.shape:
        raise ValueError(f"n_P and c_P must be 1-D of equal length, got shapes {tuple(n_P.shape)}, {tuple(c_P.shape)}")
    if n_P.numel() == 0:
        raise ValueError("need at least one prompt")
    return n_P, c_P


def _check_ks(ks: Iterable[int], n_P: torch.Tensor) -> list[int]:
    ks = list(ks)
    if not ks:
        raise ValueError("ks is empty")
    n_min = int(n_P.min())
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"every k must be an int >= 1, got {k!r}")
        if k > n_min:
            raise ValueError(f"k = {k} exceeds the smallest per-prompt sample count n = {n_min}")
    return ks


def passk_curve(n_P, c_P, ks: Iterable[int]) -> dict[int, float]:
    """``{k: mean over prompts of pass@k}`` (Chen et al. 2021), for every ``k`` in ``ks``.

    ``n_P``, ``c_P``: per-prompt sample and success counts. Every ``k`` must satisfy ``1 <= k <= min(n_P)``;
    otherwise a ValueError names the offending ``k`` and ``n``.
    """
    n_P, c_P = _counts(n_P, c_P)
    return mean_pass_at_k(n_P, c_P, _check_ks(ks, n_P))


def _bootstrap_means(passk_PK: torch.Tensor, num_resamples: int, seed: int) -> torch.Tensor:
    """Resampled means ``(num_resamples, K)``: each row averages ``passk_PK`` over P prompt indices drawn with
    replacement. Vectorised: the multiplicity of each prompt in each resample (``counts_RP``, rows summing to
    P) times the matrix, divided by P, equals indexing ``passk_PK[idx_RP].mean(1)`` without the R x P x K
    intermediate."""
    num_prompts = passk_PK.shape[0]
    generator = torch.Generator().manual_seed(seed)
    idx_RP = torch.randint(0, num_prompts, (num_resamples, num_prompts), generator=generator)
    counts_RP = torch.zeros(num_resamples, num_prompts, dtype=passk_PK.dtype)
    counts_RP.scatter_add_(1, idx_RP, torch.ones_like(counts_RP))
    return counts_RP @ passk_PK / num_prompts


def bootstrap_passk(
    n_P,
    c_P,
    ks: Iterable[int],
    *,
    num_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[int, tuple[float, float, float]]:
    """``{k: (estimate, low, high)}``: mean pass@k over prompts and its percentile bootstrap interval.

    Prompts are the resampling unit (the per-prompt pass@k is already exact given ``(n, c)``): each of
    ``num_resamples`` resamples draws P prompt indices with replacement; ``low``/``high`` are the
    ``(1 - confidence)/2`` and ``(1 + confidence)/2`` quantiles (linear interpolation) of the resampled means.
    Deterministic given ``seed`` (a private ``torch.Generator``; global RNG untouched).
    """
    if isinstance(num_resamples, bool) or not isinstance(num_resamples, int) or num_resamples < 1:
        raise ValueError(f"num_resamples must be an int >= 1, got {num_resamples!r}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    n_P, c_P = _counts(n_P, c_P)
    ks = _check_ks(ks, n_P)
    passk_PK = torch.stack([pass_at_k(n_P, c_P, k) for k in ks], dim=1)  # float64
    estimate_K = passk_PK.mean(0)
    means_RK = _bootstrap_means(passk_PK, num_resamples, seed)
    alpha = (1.0 - confidence) / 2.0
    q = torch.tensor([alpha, 1.0 - alpha], dtype=means_RK.dtype)
    bounds_2K = torch.quantile(means_RK, q, dim=0)
    return {k: (float(estimate_K[j]), float(bounds_2K[0, j]), float(bounds_2K[1, j])) for j, k in enumerate(ks)}


def crossover_k(base_curve: dict[int, float], trained_curve: dict[int, float]) -> float | None:
    """The ``k*`` at which the base model catches up with the trained one (Yue et al., arXiv 2504.13837).

    Rule, with the curves' common ks sorted ascending and ``d(k) = trained(k) - base(k)``:

    - if ``d(k_min) <= 0`` (trained not ahead at the smallest k): None;
    - else let ``k_b`` be the first k with ``d(k_b) <= 0`` (equality counts as caught up) and ``k_a`` the k just
      before it (the last k at which trained is ahead); if there is no such ``k_b``: None;
    - otherwise ``log2 k* = log2 k_a + t (log2 k_b - log2 k_a)`` with ``t = d(k_a) / (d(k_a) - d(k_b))``,
      the zero of ``d`` interpolated linearly in ``log2 k``; so ``k_a < k* <= k_b``, and ``k* = k_b`` when
      ``d(k_b) = 0``.

    Both curves must have the same ks (ValueError otherwise), at least two of them.
    """
    if set(base_curve) != set(trained_curve):
        raise ValueError(f"curves have different ks: {sorted(base_curve)} vs {sorted(trained_curve)}")
    ks = sorted(base_curve)
    if len(ks) < 2:
        raise ValueError(f"need at least two ks, got {ks}")
    if ks[0] < 1:
        raise ValueError(f"ks must be >= 1, got {ks[0]}")
    d = [trained_curve[k] - base_curve[k] for k in ks]
    if d[0] <= 0:
        return None
    for j in range(1, len(ks)):
        if d[j] <= 0:
            k_a, k_b, d_a, d_b = ks[j - 1], ks[j], d[j - 1], d[j]
            if d_b == 0:
                return float(k_b)  # exact, not 2 ** log2(k_b) with its rounding
            t = d_a / (d_a - d_b)
            log2_k = math.log2(k_a) + t * (math.log2(k_b) - math.log2(k_a))
            return 2.0**log2_k
    return None
