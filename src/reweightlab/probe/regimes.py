"""The four regimes of accessible support (SPEC 3.2, our operationalization).

For a prompt x with success probability p(x):
- basin:       p >= theta_basin;
- tail:        p_budget <= p < theta_basin, with p_budget = ln(1/delta) / K, the smallest p that K
               samples reach (at least one success) with probability >= 1 - delta, since
               (1 - p)^K <= exp(-p K) = delta;
- barrier:     p < p_budget, but search found a success or a known solution has likelihood > floor;
- singularity: p < p_budget, search found nothing and every known solution has likelihood <= floor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

REGIMES = ("basin", "tail", "barrier", "singularity")


@dataclass(frozen=True)
class RegimeThresholds:
    """Named settings of the regime classifier."""

    theta_basin: float = 0.1
    """Success probability from which a prompt counts as basin."""
    budget_K: int = 256
    """Sampling budget K: how many samples per prompt a practitioner would draw."""
    delta: float = 0.05
    """Allowed probability that K samples miss a prompt whose p is exactly p_budget."""
    floor: float = 1e-12
    """Likelihood below which a known solution counts as outside the model's support."""

    def __post_init__(self) -> None:
        if not 0.0 < self.delta < 1.0:
            raise ValueError(f"delta must lie in (0, 1), got {self.delta}")
        if isinstance(self.budget_K, bool) or not isinstance(self.budget_K, int) or self.budget_K < 1:
            raise ValueError(f"budget_K must be an int >= 1, got {self.budget_K!r}")
        if not self.floor > 0.0:
            raise ValueError(f"floor must be > 0, got {self.floor}")
        if not 0.0 < self.p_budget < self.theta_basin <= 1.0:
            raise ValueError(
                f"need 0 < p_budget < theta_basin <= 1; got p_budget = ln(1/{self.delta})/{self.budget_K} = "
                f"{self.p_budget:.4g} and theta_basin = {self.theta_basin}"
            )

    @property
    def p_budget(self) -> float:
        """ln(1/delta) / K."""
        return math.log(1.0 / self.delta) / self.budget_K


def classify(
    p_P: torch.Tensor,
    *,
    thresholds: RegimeThresholds = RegimeThresholds(),  # noqa: B008 (frozen, so sharing is safe)
    search_success_P: torch.Tensor | None = None,
    max_known_logp_P: torch.Tensor | None = None,
) -> list[str]:
    """One regime name (from REGIMES) per prompt.

    Below p_budget the probability alone cannot separate barrier from singularity: at least one of
    ``search_success_P`` (bool, did the search procedure find a verified success) or
    ``max_known_logp_P`` (log-likelihood of the best known solution, -inf if none) is then required.
    A prompt is barrier if either piece of evidence says a success is reachable.
    """
    p_P = torch.as_tensor(p_P, dtype=torch.float64).reshape(-1)
    P = p_P.shape[0]
    if torch.isnan(p_P).any() or (p_P < 0).any() or (p_P > 1).any():
        raise ValueError("p_P must lie in [0, 1]")
    for name, t in (("search_success_P", search_success_P), ("max_known_logp_P", max_known_logp_P)):
        if t is not None and torch.as_tensor(t).reshape(-1).shape[0] != P:
            raise ValueError(f"{name} has {torch.as_tensor(t).numel()} entries, p_P has {P}")
    basin_P = p_P >= thresholds.theta_basin
    tail_P = ~basin_P & (p_P >= thresholds.p_budget)
    low_P = ~basin_P & ~tail_P
    if low_P.any() and search_success_P is None and max_known_logp_P is None:
        raise ValueError(
            f"{int(low_P.sum())} prompt(s) have p < p_budget = {thresholds.p_budget:.4g}: telling barrier from "
            "singularity needs search_success_P (search results) or max_known_logp_P (known-solution likelihoods)"
        )
    reachable_P = torch.zeros(P, dtype=torch.bool)
    if search_success_P is not None:
        reachable_P |= torch.as_tensor(search_success_P).reshape(-1).bool()
    if max_known_logp_P is not None:
        # Compare in log space: exp(logp) > floor  <=>  logp > ln(floor); no underflow for tiny logp.
        logp_P = torch.as_tensor(max_known_logp_P, dtype=torch.float64).reshape(-1)
        reachable_P |= logp_P > math.log(thresholds.floor)
    out = []
    for b, t, r in zip(basin_P.tolist(), tail_P.tolist(), reachable_P.tolist(), strict=True):
        out.append("basin" if b else "tail" if t else "barrier" if r else "singularity")
    return out


def agreement(p_sample_P, n_P, p_known_P, *, z: float = 3.0) -> dict[str, float]:
    """Do the sampling (c/n) and likelihood (p_known) estimators agree within binomial error?

    A prompt agrees when |c/n - p_known| <= z * sqrt(p (1 - p) / n) + 1/n, with p = p_known clipped
    to [1/n, 1 - 1/n] (so p_known near 0 or 1 still allows a count or so of noise).
    ``p_sample_P`` is the sampled success fraction c/n per prompt, ``n_P`` the samples per prompt.
    """
    p_sample_P = torch.as_tensor(p_sample_P, dtype=torch.float64).reshape(-1)
    n_P = torch.as_tensor(n_P, dtype=torch.float64).reshape(-1)
    p_known_P = torch.as_tensor(p_known_P, dtype=torch.float64).reshape(-1)
    if not p_sample_P.shape == n_P.shape == p_known_P.shape:
        raise ValueError(f"shapes differ: {p_sample_P.shape}, {n_P.shape}, {p_known_P.shape}")
    if p_sample_P.numel() == 0:
        raise ValueError("no prompts")
    if (n_P < 1).any():
        raise ValueError("every n must be >= 1")
    p_P = torch.minimum(torch.maximum(p_known_P, 1.0 / n_P), 1.0 - 1.0 / n_P)
    tol_P = z * torch.sqrt(p_P * (1.0 - p_P) / n_P) + 1.0 / n_P
    diff_P = (p_sample_P - p_known_P).abs()
    return {
        "within": float((diff_P <= tol_P).double().mean()),
        "max_abs_diff": float(diff_P.max()),
        "mean_sampling": float(p_sample_P.mean()),
        "mean_known": float(p_known_P.mean()),
    }
