"""The report's tables, one per rule (in distribution, out of distribution), as HTML strings.

Each cell is a figure read from the files: a value, `value [low, high]` with its 95% interval, or
`mean ± std` across training seeds. A difference whose interval excludes 0 is marked (class `sig`:
bold on a tint, whichever its sign); one whose interval holds 0 is not.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape

from reweightlab.report.load import (
    SUPPORT_LEVELS,
    SUPPORT_RATIOS,
    VARIANT_NAMES,
    Interval,
    ModelEval,
    RunData,
    Spread,
)


def fmt(x: float | None, spec: str) -> str:
    return "–" if x is None else format(x, spec)


def interval_text(iv: Interval | None, spec: str) -> str:
    """`value [low, high]`; – where the value is undefined (and for a bound that is)."""
    if iv is None or iv.value is None:
        return "–"
    return f"{format(iv.value, spec)} [{fmt(iv.lo, spec)}, {fmt(iv.hi, spec)}]"


def _td(text: str, classes: list[str] | None = None, title: str = "") -> str:
    cls = f' class="{" ".join(classes)}"' if classes else ""
    tip = f' title="{escape(title)}"' if title else ""
    return f"<td{cls}{tip}>{escape(text)}</td>"


def interval_td(iv: Interval | None, spec: str, *, mark: bool = False, title: str = "") -> str:
    """`value [low, high]`, the interval on a line of its own under the value, so the columns stay narrow."""
    if iv is None or iv.value is None:
        return _td(interval_text(iv, spec), ["na"], title)
    classes = ["sig"] if mark and iv.excludes_zero else []
    value, bounds = interval_text(iv, spec).split(" ", 1)
    cls = f' class="{" ".join(classes)}"' if classes else ""
    tip = f' title="{escape(title)}"' if title else ""
    return f'<td{cls}{tip}>{escape(value)} <span class="ci">{escape(bounds)}</span></td>'


def spread_td(sp: Spread | None, spec: str, num_seeds: int) -> str:
    if sp is None or sp.mean is None:
        return _td("–", ["na"], "not defined for any training seed")
    text = format(sp.mean, spec) + ("" if sp.std is None else f" ± {format(sp.std, spec.lstrip('+'))}")
    if sp.n < num_seeds:
        return _td(f"{text} (n={sp.n})", title=f"defined for {sp.n} of {num_seeds} training seeds")
    return _td(text)


def _row(label: str, color: str, cells: list[str]) -> str:
    cls = ' class="base"' if label == "base" else ""
    swatch = f'<span class="swatch" style="background:{color}"></span>'
    return f'<tr{cls} data-model="{escape(label)}"><th scope="row">{swatch}{escape(label)}</th>{"".join(cells)}</tr>'


def _table(cls: str, variant: str, heads: list[tuple[str, str]], rows: list[str],
           groups: list[tuple[str, int]] | None = None) -> str:
    """`heads`: (header, tooltip); `groups`: an optional row of (title, columns) above the headers."""
    top = ""
    if groups:
        cells = "".join(f'<th colspan="{n}">{escape(t)}</th>' for t, n in groups)
        top = f'<tr class="group"><th></th>{cells}</tr>'
    head = "".join(f'<th title="{escape(tip)}">{escape(h)}</th>' for h, tip in heads)
    return (f'<div class="scroll"><table class="{cls}" data-variant="{escape(variant)}">'
            f"<caption>{escape(VARIANT_NAMES.get(variant, variant))}</caption><thead>{top}<tr><th>model</th>{head}"
            f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div>")


# across_seeds figure of summary.json -> (header, tooltip, format)
ACROSS_COLUMNS = (
    ("pass1", "pass@1", "chance that one sample solves a prompt", ".3f"),
    ("delta_pass1", "Δpass@1", "pass@1 minus the base's", "+.3f"),
    ("crossover_k", "k*", "k at which the base catches up", ".1f"),
    ("elicitation", "elicit.", "pass@1 gain on prompts the base reached within its budget", "+.3f"),
    ("creation", "creation", "pass@1 gain on prompts the base did not reach", "+.3f"),
    ("support_E", "E", "prompts only the model reached within its budget", ".1f"),
    ("support_S", "S", "prompts only the base reached within its budget", ".1f"),
    ("NSCR", "NSCR", "net support change (E - S) / (P + E + S), prompt level", "+.2f"),
    ("kl_to_base_per_token", "KL/tok", "KL(model || base) per token", ".3f"),
    ("free_energy_gap", "F gap", "free energy above its optimum at the probe's beta", ".2f"),
)


def across_table(run: RunData, variant: str, colors: dict[str, str]) -> str:
    """A demo: one row per method, each figure's mean ± std across its training seeds; the base first."""
    base = run.evals[variant]["base"]
    fe = base.free_energy_at(run.beta.get(variant, 1.0))
    base_cells = {"pass1": base.pass_at_k.get(1), "free_energy_gap": None if fe is None else fe.gap.value}
    rows = [_row("base", colors["base"], [_td(fmt(base_cells.get(f), spec), None if f in base_cells else ["na"])
                                          for f, _h, _t, spec in ACROSS_COLUMNS])]
    for m in run.methods:
        figs = run.across.get(m, {}).get(variant, {})
        rows.append(_row(m, colors[m], [spread_td(figs.get(f), spec, run.num_seeds)
                                        for f, _h, _t, spec in ACROSS_COLUMNS]))
    return _table("methods", variant, [(h, t) for _f, h, t, _s in ACROSS_COLUMNS], rows)


REVISION_COLUMNS = (
    ("first_attempt", "attempt 1", "success at the first attempt of the revision episodes", ".3f"),
    ("within_episode", "within R", "success within the episode's R attempts (the same episodes)", ".3f"),
    ("delta_within_episode", "Δwithin", "within-episode success minus the base's, paired over prompts", "+.3f"),
)


def revision_table(run: RunData, variant: str, colors: dict[str, str]) -> str:
    """A demo whose probe ran revision episodes: first-attempt and within-episode success per method
    (mean ± std across seeds); the base row with its 95% intervals."""
    base = run.evals[variant]["base"].revision or {}
    cells = [interval_td(base.get(f), spec) if f in base else _td("–", ["na"]) for f, _h, _t, spec in REVISION_COLUMNS]
    rows = [_row("base", colors["base"], cells)]
    for m in run.methods:
        figs = run.across.get(m, {}).get(variant, {})
        rows.append(_row(m, colors[m], [spread_td(figs.get(f), spec, run.num_seeds)
                                        for f, _h, _t, spec in REVISION_COLUMNS]))
    return _table("revision", variant, [(h, t) for _f, h, t, _s in REVISION_COLUMNS], rows)


# (header, tooltip, the figure of a trained model at the probe's beta, format, marked when its interval excludes 0)
Column = tuple[str, str, Callable[[ModelEval, float], Interval | None], str, bool]
VERSUS_COLUMNS: tuple[Column, ...] = (
    ("Δpass@1", "pass@1 minus the base's", lambda e, b: e.vs.delta_pass1, "+.3f", True),
    ("k*", "k at which the base catches up (–: not within the measured k)", lambda e, b: e.vs.crossover_k, ".1f",
     False),
    ("elicit.", "pass@1 gain on prompts the base reached within its budget", lambda e, b: e.vs.elicitation, "+.3f",
     True),
    ("creation", "pass@1 gain on prompts the base did not reach", lambda e, b: e.vs.creation, "+.3f", True),
    ("E", "prompts only the model reached within its budget", lambda e, b: e.vs.support_E, ".0f", False),
    ("S", "prompts only the base reached within its budget", lambda e, b: e.vs.support_S, ".0f", False),
    ("NSCR", "net support change, prompt level", lambda e, b: e.vs.support["prompts"]["NSCR"], "+.2f", True),
    ("KL(model‖base)", "per token, on the model's samples", lambda e, b: e.vs.kl, ".3f", False),
    ("KL(base‖model)", "per token, on the base's samples (forward KL)", lambda e, b: e.vs.kl_forward, ".3f", False),
    ("F gap − base", "free-energy gap minus the base's, at the probe's beta",
     lambda e, b: getattr(e.free_energy_at(b), "gap_minus_base", None), "+.3f", True),
)


def _kstar_title(iv: Interval | None) -> str:
    return "" if iv is None or iv.defined is None else f"defined in {iv.defined:.0%} of bootstrap resamples"


def versus_table(run: RunData, variant: str, colors: dict[str, str]) -> str:
    """One row per trained model: each difference from the base with its 95% interval."""
    beta, timed = run.beta.get(variant, 1.0), bool(run.train_seconds)
    rows = []
    for label in run.trained:
        e = run.evals[variant].get(label)
        if e is None or e.vs is None:
            continue
        cells = [interval_td(get(e, beta), spec, mark=mark, title=_kstar_title(get(e, beta)) if head == "k*" else "")
                 for head, _t, get, spec, mark in VERSUS_COLUMNS]
        if timed:
            cells.append(_td(fmt(run.train_seconds.get(label), ".1f")))
        rows.append(_row(label, colors[label], cells))
    heads = [(h, t) for h, t, *_ in VERSUS_COLUMNS] + ([("train s", "wall time of post-training")] if timed else [])
    return _table("versus", variant, heads, rows)


def support_table(run: RunData, variant: str, colors: dict[str, str]) -> str:
    """SRR, NDR, SDS, NSCR of each trained model, prompt level then solution level, with intervals."""
    rows = []
    for label in run.trained:
        e = run.evals[variant].get(label)
        if e is None or e.vs is None:
            continue
        rows.append(_row(label, colors[label], [
            interval_td(e.vs.support[lv][r], "+.2f" if r == "NSCR" else ".2f", mark=r == "NSCR")
            for lv in SUPPORT_LEVELS for r in SUPPORT_RATIOS]))
    groups = [(title, len(SUPPORT_RATIOS)) for title in SUPPORT_LEVELS.values()]
    return _table("support", variant, [(r, "") for _ in SUPPORT_LEVELS for r in SUPPORT_RATIOS], rows, groups)


def alone_table(run: RunData, variant: str, colors: dict[str, str]) -> str:
    """A probe folder: each model on its own (pass@k with its interval, regimes, diversity, F gap)."""
    ev, beta = run.evals[variant], run.beta.get(variant, 1.0)
    k_top = max(ev["base"].pass_at_k)
    heads = [("pass@1", "chance that one sample solves a prompt"),
             (f"pass@{k_top}", f"chance that at least one of {k_top} samples does"),
             ("reward", "mean reward of a sample")]
    heads += [(r, f"prompts in the {r} regime") for r in run.regimes]
    heads += [("distinct", "distinct correct solutions per prompt"),
              ("F gap", f"free energy above its optimum at beta = {beta:g}")]
    rows = []
    for label in run.models:
        e = ev[label]
        fe = e.free_energy_at(beta)
        cells = [interval_td(Interval(e.pass_at_k.get(k), *e.ci95.get(k, (None, None))), ".3f") for k in (1, k_top)]
        cells += [_td(fmt(e.mean_reward, ".2f"))] + [_td(str(e.regimes.get(r, "–"))) for r in run.regimes]
        cells += [_td(fmt(e.distinct, ".2f")), interval_td(None if fe is None else fe.gap, ".2f")]
        rows.append(_row(label, colors[label], cells))
    return _table("methods", variant, heads, rows)
