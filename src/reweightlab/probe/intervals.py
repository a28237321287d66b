"""Paired bootstrap intervals over prompts: every difference between two models comes with one.

Prompts are the resampling unit. One draw of ``R`` resamples (``Resamples``) is shared by every figure
of one comparison, so a figure and its parts (a gain and its elicitation / creation split) move
together, and the two models are always resampled on the same prompts (paired): the interval of a
difference is that of the per-prompt differences, which is far tighter than two separate intervals
when the models agree on which prompts are hard.

A resample is a vector of prompt multiplicities ``W_RP`` (each row sums to P), so a mean over
resampled prompts is ``W_RP @ x_P / P`` and a ratio of sums ``(W_RP @ a_P) / (W_RP @ b_P)``: no
R x P x ... copy of the data. Intervals are percentile intervals (2.5% and 97.5% by default).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch


class Resamples:
    """``R`` bootstrap resamples of ``P`` prompts, as multiplicities (float64, R x P)."""

    def __init__(self, num_prompts: int, num_resamples: int = 1000, *, seed: int = 0, confidence: float = 0.95):
        if isinstance(num_resamples, bool) or not isinstance(num_resamples, int) or num_resamples < 1:
            raise ValueError(f"num_resamples must be an int >= 1, got {num_resamples!r}")
        if num_prompts < 1:
            raise ValueError("need at least one prompt")
        if not 0.0 < confidence < 1.0:
            raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
        g = torch.Generator().manual_seed(seed)
        idx_RP = torch.randint(0, num_prompts, (num_resamples, num_prompts), generator=g)
        self.W_RP = torch.zeros(num_resamples, num_prompts, dtype=torch.float64)
        self.W_RP.scatter_add_(1, idx_RP, torch.ones_like(self.W_RP))
        self.P, self.R, self.confidence = num_prompts, num_resamples, confidence

    def _x(self, x_P) -> torch.Tensor:
        x_P = torch.as_tensor(x_P, dtype=torch.float64).reshape(-1)
        if x_P.shape[0] != self.P:
            raise ValueError(f"{x_P.shape[0]} per-prompt values for {self.P} prompts")
        return x_P

    def sums(self, x_P) -> torch.Tensor:
        """Per resample, the sum over its prompts (R)."""
        return self.W_RP @ self._x(x_P)

    def means(self, x_P) -> torch.Tensor:
        """Per resample, the mean over its prompts (R)."""
        return self.sums(x_P) / self.P

    def bounds(self, stat_R: torch.Tensor) -> list[float | None]:
        """[low, high] percentile bounds of a statistic over the resamples where it is defined (not NaN)."""
        stat_R = torch.as_tensor(stat_R, dtype=torch.float64)
        ok = stat_R[~torch.isnan(stat_R)]
        if ok.numel() == 0:
            return [None, None]
        alpha = (1.0 - self.confidence) / 2.0
        q = torch.quantile(ok, torch.tensor([alpha, 1.0 - alpha], dtype=torch.float64))
        return [float(q[0]), float(q[1])]

    def mean(self, x_P) -> dict:
        """``{value, ci95}``: the mean over prompts and its interval."""
        x_P = self._x(x_P)
        return interval(float(x_P.mean()), self.bounds(self.means(x_P)))

    def total(self, x_P) -> dict:
        """``{value, ci95}``: the sum over prompts (a count, say) and its interval."""
        x_P = self._x(x_P)
        return interval(float(x_P.sum()), self.bounds(self.sums(x_P)))

    def ratio(self, num_P, den_P) -> dict:
        """``{value, ci95}`` of sum(num) / sum(den) (None where the denominator is 0)."""
        num_P, den_P = self._x(num_P), self._x(den_P)
        den = float(den_P.sum())
        value = float(num_P.sum()) / den if den else None
        return interval(value, self.bounds(safe_div(self.sums(num_P), self.sums(den_P))))

    def statistic(self, fn: Callable[[torch.Tensor], float | None], value: float | None) -> dict:
        """Any statistic of the resampled multiplicities: ``fn(w_P)`` per resample (None = undefined)."""
        stats = [fn(w) for w in self.W_RP]
        stat_R = torch.tensor([math.nan if s is None else s for s in stats], dtype=torch.float64)
        out = interval(value, self.bounds(stat_R))
        out["defined"] = float((~torch.isnan(stat_R)).double().mean())
        return out


def safe_div(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a / b elementwise, NaN where b is 0 (an undefined ratio, dropped from interval bounds)."""
    return torch.where(b != 0, a / torch.where(b != 0, b, torch.ones_like(b)), torch.full_like(a, math.nan))


def interval(value: float | None, bounds: list[float | None]) -> dict:
    """The JSON shape of every interval-backed figure: ``{"value": v, "ci95": [low, high]}``."""
    return {"value": value, "ci95": bounds}


def excludes_zero(fig: dict) -> bool:
    """Whether an interval-backed figure is clear of 0 (both bounds on one side)."""
    lo, hi = fig["ci95"]
    return lo is not None and hi is not None and (lo > 0 or hi < 0)


def across_seeds(values: list[float | None]) -> dict:
    """Spread of one figure across training seeds: mean, sample std (n - 1), min, max, n."""
    xs = [v for v in values if v is not None]
    if not xs:
        return {"mean": None, "std": None, "min": None, "max": None, "n": 0}
    mean = sum(xs) / len(xs)
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else None
    return {"mean": mean, "std": std, "min": min(xs), "max": max(xs), "n": len(xs)}


class SeedPromptResamples:
    """A two-level bootstrap over training seeds and prompts, for figures of several training seeds.

    One resample draws ``S`` seeds with replacement and, independently, ``P`` prompts with replacement
    (the same prompts for every seed and every model: paired), and averages ``x[s, p]`` over both. The
    interval then holds both sources of variation: which prompts were probed and which seed trained the
    model. With one seed it is the prompt bootstrap (``Resamples``). Multiplicities as in ``Resamples``:
    seeds ``Ws_RS`` (rows sum to S) and prompts ``Wp_RP`` (rows sum to P), so a resampled mean is
    ``sum_s Ws[r, s] (x_SP @ Wp[r])_s / (S P)`` with no R x S x P copy.
    """

    def __init__(self, num_seeds: int, num_prompts: int, num_resamples: int = 2000, *, seed: int = 0,
                 confidence: float = 0.95):
        if num_seeds < 1:
            raise ValueError("need at least one seed")
        self.prompts = Resamples(num_prompts, num_resamples, seed=seed, confidence=confidence)
        g = torch.Generator().manual_seed(seed + 1)
        idx_RS = torch.randint(0, num_seeds, (num_resamples, num_seeds), generator=g)
        self.Ws_RS = torch.zeros(num_resamples, num_seeds, dtype=torch.float64)
        self.Ws_RS.scatter_add_(1, idx_RS, torch.ones_like(self.Ws_RS))
        if num_seeds == 1:
            self.Ws_RS.fill_(1.0)
        self.S, self.P, self.R = num_seeds, num_prompts, num_resamples

    def _x(self, x_SP) -> torch.Tensor:
        x_SP = torch.as_tensor(x_SP, dtype=torch.float64)
        if x_SP.shape != (self.S, self.P):
            raise ValueError(f"expected per-seed, per-prompt values of shape {(self.S, self.P)}, "
                             f"got {tuple(x_SP.shape)}")
        return x_SP

    def means(self, x_SP) -> torch.Tensor:
        """Per resample, the mean over its seeds and prompts (R)."""
        per_seed_RS = (self.prompts.W_RP @ self._x(x_SP).T) / self.P  # R x S: each seed's resampled prompt mean
        return (self.Ws_RS * per_seed_RS).sum(1) / self.S

    def mean(self, x_SP) -> dict:
        """``{value, ci95}``: the mean over seeds and prompts, and its two-level interval."""
        x_SP = self._x(x_SP)
        return interval(float(x_SP.mean()), self.prompts.bounds(self.means(x_SP)))

    def statistic(self, fn: Callable[[torch.Tensor, torch.Tensor], float | None], value: float | None) -> dict:
        """Any statistic of the resampled multiplicities: ``fn(ws_S, wp_P)`` per resample (None = undefined)."""
        stats = [fn(ws, wp) for ws, wp in zip(self.Ws_RS, self.prompts.W_RP, strict=True)]
        stat_R = torch.tensor([math.nan if s is None else s for s in stats], dtype=torch.float64)
        out = interval(value, self.prompts.bounds(stat_R))
        out["defined"] = float((~torch.isnan(stat_R)).double().mean())
        return out
