"""Elicitation vs creation (SPEC 3.3): compare a trained model T with its base B prompt by prompt.

Inputs are per-prompt facts the probe has already measured under each model: the regime
(basin / tail / barrier / singularity), the pass@1 estimate ``c/n`` and the success count ``c``.

- transition matrix: how many prompts moved from each base regime to each trained regime;
- pass@1 gain split by base regime: the mean gain over all prompts is a sum of per-regime
  contributions, ``sum_r (1/P) sum_{x in r} (p_T(x) - p_B(x))``; gains on basin/tail prompts are
  elicitation (the base already reached them within budget), gains on barrier/singularity prompts
  are creation (the base did not);
- support shrinkage: prompts the base reached within budget (basin or tail) that T does not;
- coverage: prompts with at least one verified success among the samples, base only / trained only /
  both / neither.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from reweightlab.probe.regimes import REGIMES

WITHIN_BUDGET = ("basin", "tail")  # reachable by sampling with the budget K: what reweighting can move
ELICITATION = WITHIN_BUDGET
CREATION = ("barrier", "singularity")


def _check_regimes(name: str, regimes: Sequence[str], P: int) -> None:
    if len(regimes) != P:
        raise ValueError(f"{name} has {len(regimes)} entries, expected {P}")
    bad = sorted(set(regimes) - set(REGIMES))
    if bad:
        raise ValueError(f"{name} holds unknown regime(s) {bad}; expected one of {REGIMES}")


def transition_matrix(base_regimes: Sequence[str], trained_regimes: Sequence[str]) -> dict[str, dict[str, int]]:
    """``{base regime: {trained regime: number of prompts}}``, every regime present (zeros included)."""
    _check_regimes("trained_regimes", trained_regimes, len(base_regimes))
    _check_regimes("base_regimes", base_regimes, len(base_regimes))
    out = {b: dict.fromkeys(REGIMES, 0) for b in REGIMES}
    for b, t in zip(base_regimes, trained_regimes, strict=True):
        out[b][t] += 1
    return out


def gain_by_base_regime(base_regimes: Sequence[str], p_base_P, p_trained_P) -> dict:
    """The mean pass@1 gain and its split by base regime.

    Returns ``total`` (mean over prompts of p_T - p_B), ``elicitation`` and ``creation`` (the parts of
    ``total`` from prompts whose base regime is basin/tail, resp. barrier/singularity; they add up to
    ``total``) and ``by_base_regime[r] = {prompts, mean_gain, contribution}`` where ``contribution``
    is the regime's share of ``total`` (``mean_gain * prompts / P``; None-free: 0 when empty).
    """
    p_base_P = torch.as_tensor(p_base_P, dtype=torch.float64).reshape(-1)
    p_trained_P = torch.as_tensor(p_trained_P, dtype=torch.float64).reshape(-1)
    P = p_base_P.shape[0]
    if P == 0:
        raise ValueError("no prompts")
    if p_trained_P.shape[0] != P:
        raise ValueError(f"p_trained_P has {p_trained_P.shape[0]} entries, p_base_P has {P}")
    _check_regimes("base_regimes", base_regimes, P)
    gain_P = p_trained_P - p_base_P
    by = {}
    for r in REGIMES:
        in_r = torch.tensor([b == r for b in base_regimes], dtype=torch.bool)
        count = int(in_r.sum())
        total_r = float(gain_P[in_r].sum()) if count else 0.0
        by[r] = {"prompts": count, "mean_gain": total_r / count if count else None, "contribution": total_r / P}
    return {
        "total": float(gain_P.mean()),
        "elicitation": sum(by[r]["contribution"] for r in ELICITATION),
        "creation": sum(by[r]["contribution"] for r in CREATION),
        "by_base_regime": by,
    }


def support_shrinkage(base_regimes: Sequence[str], trained_regimes: Sequence[str]) -> dict:
    """Prompts within budget (basin/tail) under the base that are not under T, and the reverse.

    ``lost_fraction`` is ``lost / base_within_budget`` (None when the base reaches no prompt).
    """
    P = len(base_regimes)
    _check_regimes("base_regimes", base_regimes, P)
    _check_regimes("trained_regimes", trained_regimes, P)
    base_in = [b in WITHIN_BUDGET for b in base_regimes]
    trained_in = [t in WITHIN_BUDGET for t in trained_regimes]
    lost = sum(b and not t for b, t in zip(base_in, trained_in, strict=True))
    gained = sum(t and not b for b, t in zip(base_in, trained_in, strict=True))
    n_base = sum(base_in)
    return {
        "base_within_budget": n_base,
        "trained_within_budget": sum(trained_in),
        "lost": lost,
        "gained": gained,
        "lost_fraction": lost / n_base if n_base else None,
    }


def coverage(c_base_P, c_trained_P) -> dict[str, int]:
    """Prompts with a verified success among the samples: base only / trained only / both / neither."""
    c_base_P = torch.as_tensor(c_base_P).reshape(-1)
    c_trained_P = torch.as_tensor(c_trained_P).reshape(-1)
    if c_base_P.shape != c_trained_P.shape:
        raise ValueError(f"success counts differ in length: {c_base_P.shape[0]} vs {c_trained_P.shape[0]}")
    if (c_base_P < 0).any() or (c_trained_P < 0).any():
        raise ValueError("success counts must be >= 0")
    b, t = c_base_P > 0, c_trained_P > 0
    return {
        "both": int((b & t).sum()),
        "base_only": int((b & ~t).sum()),
        "trained_only": int((~b & t).sum()),
        "neither": int((~b & ~t).sum()),
    }


def compare_to_base(base: dict, trained: dict) -> dict:
    """All four comparisons from two per-model dicts with ``regimes``, ``p_P`` (pass@1) and ``c_P``."""
    return {
        "transitions": transition_matrix(base["regimes"], trained["regimes"]),
        "pass1_gain": gain_by_base_regime(base["regimes"], base["p_P"], trained["p_P"]),
        "support_shrinkage": support_shrinkage(base["regimes"], trained["regimes"]),
        "coverage": coverage(base["c_P"], trained["c_P"]),
    }
