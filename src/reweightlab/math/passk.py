"""pass@k from per-prompt (n samples, c successes) (Chen et al. 2021, "Evaluating Large Language Models
Trained on Code", arXiv 2107.03374).

    pass@k = 1 - C(n - c, k) / C(n, k) = 1 - prod_{i = n - c + 1}^{n} (1 - k / i)

the unbiased estimate of "at least one of k samples, drawn without replacement from the n, succeeds".
Binomial coefficients of n = 4096 overflow float64; the product form does not. We sum its logarithm
with log1p and return ``-expm1(sum)``, which keeps precision both near 0 (few successes) and near 1.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch


def _check_ints(n: int, c: int, k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if k > n:
        raise ValueError(f"k = {k} exceeds the number of samples n = {n}")
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got c = {c}, n = {n}")


def _pass_at_k_int(n: int, c: int, k: int) -> float:
    _check_ints(n, c, k)
    if n - c < k:
        return 1.0  # fewer than k failures: every draw of k contains a success
    log_fail = math.fsum(math.log1p(-k / i) for i in range(n - c + 1, n + 1))
    return 0.0 - math.expm1(log_fail)  # 0.0 - x, not -x: c = 0 gives 0.0, not -0.0


def _pass_at_k_tensor(n_P: torch.Tensor, c_P: torch.Tensor, k: int) -> torch.Tensor:
    """Vectorised over prompts: with ``L(m) = sum_{i=k+1}^{m} log(1 - k/i)`` (``L(k) = 0``), the log of the
    product is ``L(n) - L(n - c)`` whenever ``n - c >= k``; one cumulative sum serves every prompt."""
    n_P, c_P = torch.broadcast_tensors(torch.as_tensor(n_P), torch.as_tensor(c_P))
    if n_P.is_floating_point() or c_P.is_floating_point():
        if not (bool((n_P == n_P.round()).all()) and bool((c_P == c_P.round()).all())):
            raise ValueError("n and c must be whole numbers")
    n_P, c_P = n_P.long().cpu(), c_P.long().cpu()
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if n_P.numel() == 0:
        return torch.zeros(n_P.shape, dtype=torch.float64)
    if bool((n_P < k).any()):
        raise ValueError(f"k = {k} exceeds the number of samples n = {int(n_P.min())} of some prompt")
    if bool((c_P < 0).any()) or bool((c_P > n_P).any()):
        raise ValueError("need 0 <= c <= n for every prompt")
    n_max = int(n_P.max())
    i = torch.arange(k + 1, n_max + 1, dtype=torch.float64)
    cumulative = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum(torch.log1p(-k / i), 0)])
    failures = n_P - c_P
    reachable = failures >= k  # otherwise pass@k = 1 exactly
    lo = (failures - k).clamp(min=0)  # index of L(n - c) in `cumulative`
    log_fail = cumulative[n_P - k] - cumulative[lo]
    return torch.where(reachable, 0.0 - torch.expm1(log_fail), torch.ones_like(log_fail))


def pass_at_k(n, c, k: int):
    """Unbiased pass@k (Chen et al. 2021): ``1 - C(n-c, k)/C(n, k) = 1 - prod_{i=n-c+1}^{n} (1 - k/i)``.

    ``n``, ``c`` plain ints -> float. ``n_P``, ``c_P`` tensors (or one of them) -> float64 tensor per prompt.
    1.0 when ``n - c < k``; 0.0 when ``c = 0``. ValueError when ``k < 1``, ``k > n`` or not ``0 <= c <= n``.
    Stable for n in the thousands (tested at n = 4096).
    """
    if isinstance(k, bool) or not isinstance(k, int):
        raise ValueError(f"k must be an int, got {k!r}")
    if isinstance(n, torch.Tensor) or isinstance(c, torch.Tensor):
        return _pass_at_k_tensor(n, c, k)
    if isinstance(n, bool) or isinstance(c, bool) or not isinstance(n, int) or not isinstance(c, int):
        raise ValueError(f"n and c must be ints or tensors, got {n!r}, {c!r}")
    return _pass_at_k_int(n, c, k)


def mean_pass_at_k(n_P, c_P, ks: Iterable[int]) -> dict[int, float]:
    """Mean over prompts of per-prompt pass@k, for each k in ``ks``: ``{k: mean_p pass@k}``.

    ``n_P``, ``c_P``: per-prompt sample and success counts (tensors or sequences of ints).
    """
    n_P = torch.as_tensor(n_P)
    c_P = torch.as_tensor(c_P)
    if n_P.numel() == 0:
        raise ValueError("mean_pass_at_k needs at least one prompt")
    return {int(k): float(pass_at_k(n_P, c_P, int(k)).mean()) for k in ks}
