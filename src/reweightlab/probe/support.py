"""Support change and diversity of a trained model T against its base B.

Support (Wu et al., "The Invisible Leash", arXiv 2507.14843), over items reached within the sampling
budget: at the prompt level an item is a prompt (reached = a verified success in K samples, or the
likelihood rule); at the solution level an item is one distinct correct solution of one prompt (the
task's ``solution_key``: for GeneralPoints the canonical expression), reached when it appears among
the K samples. With P = reached by both (preservation), E = by T only (expansion), S = by B only
(shrinkage):

    SRR  = P / (P + S)          support retention: how much of B's support T keeps
    NDR  = E / (P + E)          net discovery: how much of T's support is new
    SDS  = 2 SRR NDR / (SRR + NDR)   their harmonic mean
    NSCR = (E - S) / (P + E + S)     net support change: > 0 expands, < 0 shrinks

Diversity ("RL squeezes, SFT expands", arXiv 2509.21128): per prompt, the number of distinct correct
solutions among n samples and the entropy (nats) of their empirical distribution (0 without a success).
"""

from __future__ import annotations

import math
from collections import Counter

import torch

from reweightlab.probe.intervals import Resamples, safe_div

SUPPORT_RATIOS = ("SRR", "NDR", "SDS", "NSCR")


def support_ratios(P, E, S) -> dict[str, torch.Tensor]:
    """SRR, NDR, SDS, NSCR from counts (tensors of any shape, e.g. one per bootstrap resample); NaN where a
    denominator is 0 (SDS also where SRR + NDR = 0)."""
    P, E, S = (torch.as_tensor(x, dtype=torch.float64) for x in (P, E, S))
    srr, ndr = safe_div(P, P + S), safe_div(E, P + E)
    return {"SRR": srr, "NDR": ndr, "SDS": safe_div(2 * srr * ndr, srr + ndr), "NSCR": safe_div(E - S, P + E + S)}


def prompt_support_counts(reached_base_P, reached_trained_P) -> dict[str, torch.Tensor]:
    """Per prompt 0/1 indicators: both (P), trained only (E), base only (S), neither."""
    b = torch.as_tensor(reached_base_P, dtype=torch.bool).reshape(-1)
    t = torch.as_tensor(reached_trained_P, dtype=torch.bool).reshape(-1)
    if b.shape != t.shape:
        raise ValueError(f"reached flags differ in length: {b.shape[0]} vs {t.shape[0]}")
    return {"P": (b & t).double(), "E": (~b & t).double(), "S": (b & ~t).double(), "neither": (~b & ~t).double()}


def solution_support_counts(base_sets: list, trained_sets: list) -> dict[str, torch.Tensor]:
    """Per prompt, how many distinct solutions both / only T / only B reached (sets or Counters of keys)."""
    if len(base_sets) != len(trained_sets):
        raise ValueError(f"{len(base_sets)} base and {len(trained_sets)} trained prompts")
    rows = [(len(set(b) & set(t)), len(set(t) - set(b)), len(set(b) - set(t)))
            for b, t in zip(base_sets, trained_sets, strict=True)]
    P, E, S = (torch.tensor([r[i] for r in rows], dtype=torch.float64) for i in range(3))
    return {"P": P, "E": E, "S": S}


def support_figures(counts: dict[str, torch.Tensor], rs: Resamples) -> dict:
    """Counts and ratios, each ``{value, ci95}`` from the paired resamples ``rs``."""
    out = {name: rs.total(counts[name]) for name in counts}
    point = support_ratios(*(counts[k].sum() for k in ("P", "E", "S")))
    boot = support_ratios(*(rs.sums(counts[k]) for k in ("P", "E", "S")))
    for name in SUPPORT_RATIOS:
        v = float(point[name])
        out[name] = {"value": None if math.isnan(v) else v, "ci95": rs.bounds(boot[name])}
    return out


def diversity_P(solution_counts: list[Counter]) -> tuple[torch.Tensor, torch.Tensor]:
    """(distinct_P, entropy_P): distinct correct solutions per prompt and the entropy (nats) of their
    empirical distribution among that prompt's successes (0 for a prompt with at most one solution)."""
    distinct, entropy = [], []
    for counts in solution_counts:
        total = sum(counts.values())
        distinct.append(len(counts))
        entropy.append(-sum((c / total) * math.log(c / total) for c in counts.values()) if total else 0.0)
    return torch.tensor(distinct, dtype=torch.float64), torch.tensor(entropy, dtype=torch.float64)
