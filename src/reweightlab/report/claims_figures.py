"""The claims' figures, drawn from claims.json's generic specs in the style of figures.py (PNG Pictures).

Three kinds: lines (y against x, an optional shaded band from lo/hi, dotted vertical markers), intervals (a
forest plot: a point and its interval per row, a line at 0, a lightly shaded band) and grouped bars. A
series or row is coloured by its method, the part of its name before the first " " or ":" ("iw_sft: J" ->
iw_sft), in the colour the rest of the page gives that method; series of one method differ by dashes,
markers or hatching. A null value is left out, never drawn as 0. The legend sits below the axes.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable

from reweightlab.report import figures
from reweightlab.report.claims import BarsFigure, Claims, FigureSpec, IntervalsFigure, LinesFigure

WIDTH_IN = 3.6  # three figures side by side fit one claim panel of a single-run page
SOLID = ("-", "-.", (0, (6, 1.5, 1, 1.5, 1, 1.5)), (0, (1, 1)))
DASHED = ("--", ":", (0, (3, 1, 1, 1)), (0, (8, 2)))
MARKERS = ("o", "s", "^", "D", "v", "P")
HATCHES = ("", "///", "...", "xxx", "\\\\\\", "ooo")
BAND_COLOR = "#4c78a8"


def method_key(name: str) -> str:
    """The method a series is named after: its name up to the first space or colon."""
    return re.split(r"[ :]", name.strip(), maxsplit=1)[0] or name


def _names(spec: FigureSpec) -> list[str]:
    if isinstance(spec, IntervalsFigure):
        return [r.name for r in spec.rows]
    return [s.name for s in spec.series]


def claims_names(all_claims: Iterable[Claims]) -> list[str]:
    """The methods the claims' figures name (each series or row by its method_key), for the page's palette, so
    a method keeps one colour in the claims and in the rest of the page."""
    return [method_key(n) for cs in all_claims for c in cs.claims for f in c.figures for n in _names(f)]


def color_of(name: str, colors: dict[str, str]) -> str:
    return colors.get(name) or colors.get(method_key(name)) or "#777777"


def _rank_in_method(names: list[str], same: list | None = None) -> list[int]:
    """For each name, how many earlier names share its method (and its `same` value, where given)."""
    seen: dict = {}
    out = []
    for i, n in enumerate(names):
        k = (method_key(n), None if same is None else same[i])
        out.append(seen.get(k, 0))
        seen[k] = seen.get(k, 0) + 1
    return out


def _legend(fig, ax) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return
    figures.fitted_legend(fig, handles, labels, max_cols=3, fontsize=7.5, handlelength=2.6)


def _title(ax, title: str) -> None:
    ax.set_title("\n".join(textwrap.wrap(title, 52)) or title, fontsize=9)


def _draw_lines(ax, spec: LinesFigure, colors: dict[str, str]) -> None:
    names = [s.name for s in spec.series]
    ls_rank = _rank_in_method(names, [s.dashed for s in spec.series])
    marker_rank = _rank_in_method(names)
    drawn_x: list[float] = []

    def ok_x(x: float | None) -> bool:  # a point needs an x; a log axis cannot show x <= 0
        return x is not None and (x > 0 or not spec.x_log)

    for s, lsr, mr in zip(spec.series, ls_rank, marker_rank, strict=True):
        color = color_of(s.name, colors)
        pts = [(x, y) for x, y in zip(s.x, s.y, strict=True) if y is not None and ok_x(x)]
        if s.lo is not None and s.hi is not None:
            band = [(x, lo, hi) for x, lo, hi in zip(s.x, s.lo, s.hi, strict=True)
                    if lo is not None and hi is not None and ok_x(x)]
            if band:
                bx, blo, bhi = zip(*band, strict=True)
                ax.fill_between(bx, blo, bhi, color=color, alpha=0.13, lw=0)
        xs, ys = (list(v) for v in zip(*pts, strict=True)) if pts else ([], [])
        drawn_x += xs
        styles = DASHED if s.dashed else SOLID
        ax.plot(xs, ys, color=color, ls=styles[lsr % len(styles)], lw=1.6,
                marker=MARKERS[mr % len(MARKERS)] if s.marker else None, ms=3.8,
                label=s.name if pts else f"{s.name} (no values)", zorder=3 if method_key(s.name) == "base" else 2)
    for x, label in spec.vlines:
        if not ok_x(x):
            continue
        ax.axvline(x, color="#777777", ls=":", lw=1.0, zorder=1)
        ax.text(x, 0.98, f" {label}", transform=ax.get_xaxis_transform(), rotation=90, ha="right", va="top",
                fontsize=7, color="#555555")
    if spec.x_log:
        ax.set_xscale("log")
        ticks = sorted(set(drawn_x))
        if 0 < len(ticks) <= 8:
            ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
            ax.minorticks_off()
    ax.set_xlabel(spec.x_label)
    ax.set_ylabel(spec.y_label)
    ax.grid(alpha=0.3)


def _draw_intervals(ax, spec: IntervalsFigure, colors: dict[str, str]) -> None:
    n = len(spec.rows)
    if spec.band is not None:
        ax.axvspan(min(spec.band), max(spec.band), color=BAND_COLOR, alpha=0.1, lw=0, zorder=0)
    ax.axvline(0, color="#888888", lw=0.9, zorder=1)
    for i, r in enumerate(spec.rows):
        y = n - 1 - i  # the first row on top
        color = color_of(r.name, colors)
        if r.value is None:
            ax.text(0.01, y, "not defined", transform=ax.get_yaxis_transform(), va="center", fontsize=7,
                    color="#888888")
            continue
        below = 0.0 if r.lo is None else max(0.0, r.value - r.lo)
        above = 0.0 if r.hi is None else max(0.0, r.hi - r.value)
        ax.errorbar([r.value], [y], xerr=[[below], [above]], fmt="o", color=color, ms=5, capsize=2.5,
                    elinewidth=1.4, zorder=3)
    ax.set_yticks(range(n), [r.name for r in reversed(spec.rows)], fontsize=8)
    for tick, r in zip(ax.get_yticklabels(), reversed(spec.rows), strict=True):
        tick.set_color(color_of(r.name, colors))
    ax.set_ylim(-0.6, n - 0.4)
    ax.margins(x=0.12)
    # centred on the figure, not on the axes that wide row names push right, so a long label stays inside
    ax.figure.supxlabel("\n".join(textwrap.wrap(spec.x_label, 50)) or spec.x_label, fontsize=9)
    ax.grid(axis="x", alpha=0.3)


def _two_lines(name: str) -> str:
    """A category name broken once, after the "_" nearest its middle ("wrong_numbers" -> "wrong_" / "numbers")."""
    cuts = [i + 1 for i, ch in enumerate(name) if ch == "_" and 0 < i < len(name) - 1]
    if not cuts:
        return name
    cut = min(cuts, key=lambda i: abs(i - len(name) / 2))
    return name[:cut] + "\n" + name[cut:]


def _draw_bars(ax, spec: BarsFigure, colors: dict[str, str]) -> None:
    k = max(1, len(spec.series))
    width = 0.8 / k
    hatch_rank = _rank_in_method([s.name for s in spec.series])
    for j, (s, hr) in enumerate(zip(spec.series, hatch_rank, strict=True)):
        offset = (j - (k - 1) / 2) * width
        pts = [(i + offset, v) for i, v in enumerate(s.values) if v is not None]
        xs, vs = (list(v) for v in zip(*pts, strict=True)) if pts else ([], [])
        ax.bar(xs, vs, width * 0.92, color=color_of(s.name, colors), edgecolor="white", lw=0.6,
               hatch=HATCHES[hr % len(HATCHES)] or None, label=s.name if pts else f"{s.name} (no values)", zorder=2)
        for i, v in enumerate(s.values):
            if v is None:  # a missing value is marked, not drawn as a bar of height 0
                ax.text(i + offset, 0, "n/a", ha="center", va="bottom", fontsize=7, color="#888888")
    if any(v is not None and v < 0 for s in spec.series for v in s.values):
        ax.axhline(0, color="#888888", lw=0.8)
    crowded = sum(len(c) for c in spec.categories) > 36  # then each name on up to two lines, broken after a "_"
    ax.set_xticks(range(len(spec.categories)), [_two_lines(c) if crowded else c for c in spec.categories],
                  fontsize=8)
    ax.set_ylabel(spec.y_label)
    ax.grid(axis="y", alpha=0.3)


def claim_figure(spec: FigureSpec, colors: dict[str, str], alt: str) -> figures.Picture:
    """One figure of a claim as the page's Picture; `colors`: the page's palette (figures.palette)."""
    import matplotlib

    with matplotlib.rc_context(figures.STYLE):
        if isinstance(spec, IntervalsFigure):
            fig = figures.new_figure(WIDTH_IN, 1.3 + 0.3 * max(1, len(spec.rows)))
        else:
            rows = -(-len(spec.series) // 3)
            fig = figures.new_figure(WIDTH_IN, 2.9 + 0.17 * max(0, rows - 1))
        ax = fig.subplots()
        if isinstance(spec, LinesFigure):
            _draw_lines(ax, spec, colors)
        elif isinstance(spec, IntervalsFigure):
            _draw_intervals(ax, spec, colors)
        else:
            _draw_bars(ax, spec, colors)
        _title(ax, spec.title)
        if not isinstance(spec, IntervalsFigure):
            _legend(fig, ax)
        return figures.picture(fig, alt)
