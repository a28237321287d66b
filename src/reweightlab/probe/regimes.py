"""The four regimes of accessible support, with the evidence behind each label.

For a model, a prompt x, a sampling budget of K samples and p_budget = ln(1/delta) / K (the smallest
p that K samples reach with probability >= 1 - delta, since (1 - p)^K <= exp(-p K) = delta):
- basin:       p(x) >= theta_basin;
- tail:        p(x) < theta_basin and x is *reached within the budget*: at least one verified success
               among the K samples (sampling estimator), or p_known(x) >= p_budget (likelihood
               estimator, which also counts a sampled success as reached). A prompt that sampling
               solved is never barrier or singularity;
- barrier:     not reached within the budget, but the extra-information procedure (the
               verifier-guided search, with its budget recorded) found a verified success;
- singularity: not reached by sampling nor found by the search within their budgets. Its kind says
               why: ``improbable`` (some known solution has likelihood above ``floor``) or
               ``unreachable`` (no known solution above ``floor``: a token the model cannot emit);
               ``unknown`` when the task cannot enumerate its solutions.
Every label is a claim about the samples that made it: the K samples behind a regime are never the
ones that measure a gain on it (the probe draws them apart, see ``probe.study``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from reweightlab.config import setting

REGIMES = ("basin", "tail", "barrier", "singularity")
SINGULARITY_KINDS = ("improbable", "unreachable", "unknown")


@dataclass(frozen=True)
class RegimeThresholds:
    """Named settings of the regime classifier."""

    theta_basin: float = setting(0.1, "p(x) from which a prompt is basin", flag="--theta-basin")
    budget_K: int = setting(
        256, "regime budget K, at most n (p_budget = ln(1/delta)/K): the base's regimes come from K samples of "
        "their own seed, a trained model's from the first K of its n samples", flag="--budget-k", metavar="K",
    )
    delta: float = setting(0.05, "miss probability allowed at p_budget (K samples miss p = p_budget this often)",
                           flag="--delta")
    floor: float = setting(1e-12, "a singularity is 'improbable' if a known solution has likelihood above this, "
                                  "else 'unreachable'", flag="--floor")

    def __post_init__(self) -> None:
        if not 0.0 < self.delta < 1.0:
            raise ValueError(f"delta must lie in (0, 1), got {self.delta}")
        if isinstance(self.budget_K, bool) or not isinstance(self.budget_K, int) or self.budget_K < 1:
            raise ValueError(f"budget_K must be an int >= 1, got {self.budget_K!r}")
        if not 0.0 < self.floor < 1.0:
            raise ValueError(f"floor must lie in (0, 1), got {self.floor}")
        if not 0.0 < self.p_budget < self.theta_basin <= 1.0:
            raise ValueError(
                f"need 0 < p_budget < theta_basin <= 1; got p_budget = ln(1/{self.delta})/{self.budget_K} = "
                f"{self.p_budget:.4g} and theta_basin = {self.theta_basin} (raise the budget K or theta_basin: "
                "otherwise the tail regime is empty by construction)"
            )

    @property
    def p_budget(self) -> float:
        """ln(1/delta) / K."""
        return math.log(1.0 / self.delta) / self.budget_K


def _vector(name: str, t, P: int, dtype) -> torch.Tensor:
    t = torch.as_tensor(t).reshape(-1)
    if t.shape[0] != P:
        raise ValueError(f"{name} has {t.shape[0]} entries, p_P has {P}")
    return t.to(dtype)


def classify(
    p_P,
    reached_P,
    *,
    thresholds: RegimeThresholds = RegimeThresholds(),  # noqa: B008 (frozen, so sharing is safe)
    search_success_P=None,
) -> list[str]:
    """One regime name (from REGIMES) per prompt.

    ``p_P``: the estimate of p(x) (c/K from the K regime samples, or p_known); ``reached_P`` (bool):
    was x reached within the sampling budget (see ``reached_sampling`` / ``reached_likelihood``);
    ``search_success_P`` (bool): did the verifier-guided search find a verified success. Without a
    search (None) nothing can be shown to be barrier: every unreached prompt is singularity.
    A basin prompt must be reached: ``p >= theta_basin`` with no success would contradict itself.
    """
    p_P = torch.as_tensor(p_P, dtype=torch.float64).reshape(-1)
    P = p_P.shape[0]
    if torch.isnan(p_P).any() or (p_P < 0).any() or (p_P > 1).any():
        raise ValueError("p_P must lie in [0, 1]")
    reached_P = _vector("reached_P", reached_P, P, torch.bool)
    found_P = torch.zeros(P, dtype=torch.bool) if search_success_P is None else (
        _vector("search_success_P", search_success_P, P, torch.bool))
    basin_P = p_P >= thresholds.theta_basin
    if (basin_P & ~reached_P).any():
        raise ValueError("a prompt with p >= theta_basin is marked as not reached: p_P and reached_P disagree")
    out = []
    for b, r, f in zip(basin_P.tolist(), reached_P.tolist(), found_P.tolist(), strict=True):
        out.append("basin" if b else "tail" if r else "barrier" if f else "singularity")
    return out


def reached_sampling(c_K_P) -> torch.Tensor:
    """Reached within the budget, by the sampling estimator: at least one success in the K samples."""
    return torch.as_tensor(c_K_P).reshape(-1) > 0


def reached_likelihood(p_known_P, c_K_P, thresholds: RegimeThresholds) -> torch.Tensor:
    """Reached within the budget, by the likelihood estimator: p_known >= p_budget, or a sampled success
    (p_known counts the enumerated solutions only, and a prompt that sampling solved is never barrier)."""
    p_known_P = torch.as_tensor(p_known_P, dtype=torch.float64).reshape(-1)
    return (p_known_P >= thresholds.p_budget) | reached_sampling(c_K_P)


def singularity_kinds(regimes: list[str], max_known_logp_P, thresholds: RegimeThresholds) -> list[str | None]:
    """Per prompt: None unless singularity; then ``improbable`` (a known solution has likelihood above
    the floor), ``unreachable`` (none has), or ``unknown`` (``max_known_logp_P`` is None: no enumeration)."""
    if max_known_logp_P is None:
        return [("unknown" if r == "singularity" else None) for r in regimes]
    logp_P = _vector("max_known_logp_P", max_known_logp_P, len(regimes), torch.float64)
    # compare in log space: exp(logp) > floor  <=>  logp > ln(floor), no underflow for tiny logp
    above = (logp_P > math.log(thresholds.floor)).tolist()
    return [None if r != "singularity" else "improbable" if a else "unreachable"
            for r, a in zip(regimes, above, strict=True)]


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
