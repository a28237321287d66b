"""The verdict rule of the study's claims, stated once and applied to every claim alike.

A claim is a conjunction of parts. Each part is a difference D between two models (or a model's own
figure against 0) with a 95% interval from the two-level bootstrap over training seeds and prompts
(``probe.intervals.SeedPromptResamples``), and a direction:

- ``greater`` (D > 0): supported if the interval lies above 0, not supported if it lies below 0,
  inconclusive if it contains 0;
- ``less`` (D < 0): the mirror image;
- ``at_least`` (D >= 0, "holds or raises"): not supported if the interval lies below 0; otherwise
  supported if its lower end is above -m; otherwise inconclusive;
- ``at_most`` (D <= 0, "no gain", "no creation"): not supported if the interval lies above 0;
  otherwise supported if its upper end is below m; otherwise inconclusive.

``m`` (MARGIN, one point of success rate) is fixed here before any run and never tuned. A claim is
supported when every part is, not supported when any part is not, and inconclusive otherwise.
"""

from __future__ import annotations

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE, NOT_RUN = "supported", "not supported", "inconclusive", "not run"
KINDS = ("greater", "less", "at_least", "at_most")
MARGIN = 0.01
CONFIDENCE = 0.95
RESAMPLES = 2000

RULE_TEXT = (
    "Each claim is tested as one or more parts. A part is a difference between two models on the same prompts, "
    "with a 95% interval from a two-level bootstrap (resample the training seeds, then the prompts, paired "
    f"across models; {RESAMPLES} resamples). 'greater': supported if the interval lies above 0, not supported "
    "if it lies below 0, inconclusive if it contains 0; 'less': the mirror image. 'at least' (holds or raises): "
    "not supported if the interval lies below 0, else supported if its lower end is above -m, else "
    "inconclusive. 'at most' (no gain, no creation): not supported if the interval lies above 0, else "
    f"supported if its upper end is below m, else inconclusive. m = {MARGIN} (one point of success rate), "
    "fixed before any run. A claim is supported when all its parts are, not supported when any part is "
    "not, inconclusive otherwise."
)


def part_verdict(kind: str, lo: float | None, hi: float | None, margin: float = MARGIN) -> str:
    """The verdict of one part from its interval ``[lo, hi]`` (module docstring); inconclusive when undefined."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if lo is None or hi is None:
        return INCONCLUSIVE
    if lo > hi:
        raise ValueError(f"interval [{lo}, {hi}] has its lower end above its upper end")
    if kind == "greater":
        return SUPPORTED if lo > 0 else NOT_SUPPORTED if hi < 0 else INCONCLUSIVE
    if kind == "less":
        return SUPPORTED if hi < 0 else NOT_SUPPORTED if lo > 0 else INCONCLUSIVE
    if kind == "at_least":
        return NOT_SUPPORTED if hi < 0 else SUPPORTED if lo > -margin else INCONCLUSIVE
    return NOT_SUPPORTED if lo > 0 else SUPPORTED if hi < margin else INCONCLUSIVE


def claim_verdict(part_verdicts: list[str]) -> str:
    """All parts supported: supported; any not supported: not supported; else inconclusive (none: not run)."""
    if not part_verdicts:
        return NOT_RUN
    if NOT_SUPPORTED in part_verdicts:
        return NOT_SUPPORTED
    return SUPPORTED if all(v == SUPPORTED for v in part_verdicts) else INCONCLUSIVE


def deciding_part(parts: list[dict], verdict: str) -> str:
    """One line naming the part(s) that decided a claim's verdict."""
    if verdict == SUPPORTED:
        return "every part is supported"
    names = [p["name"] for p in parts if p["verdict"] == (NOT_SUPPORTED if verdict == NOT_SUPPORTED else INCONCLUSIVE)]
    what = "not supported" if verdict == NOT_SUPPORTED else "inconclusive"
    return f"{what}: {'; '.join(names)}"
