"""Elicitation vs creation: which base regimes count as which, and the regime transition matrix.

The pass@1 gain over all prompts is a sum of per-regime contributions,
``sum_r (1/P) sum_{x in r} (p_T(x) - p_B(x))``, over the *base's* regime r of each prompt: gains on
basin/tail prompts are elicitation (the base already reached them within its sampling budget), gains
on barrier/singularity prompts are creation (it did not). ``probe.compare.gain_split`` computes it
with intervals; the transition matrix counts how prompts moved between regimes.
"""

from __future__ import annotations

from collections.abc import Sequence

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
