"""The report's figures: matplotlib on the Agg canvas, returned as PNG data URIs for <img> tags.

`Figure` objects are built directly (no pyplot), so nothing here touches matplotlib's global
state or needs a display. Each function takes a `RunData` and the colour of every model, so one
method keeps one colour across all figures and across the runs of a side-by-side page.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

from matplotlib.figure import Figure

from reweightlab.report.load import VARIANT_NAMES, RunData

BASE_COLOR = "#222222"
DPI = 144  # drawn at 1.5x the CSS pixel size, so text stays sharp on high-density screens
STYLE = {"font.size": 9, "axes.titlesize": 10, "axes.spines.top": False, "axes.spines.right": False}


@dataclass(frozen=True)
class Picture:
    """A rendered figure: the data URI and the width at which the page shows it (CSS pixels)."""

    uri: str
    width_px: int
    alt: str


def palette(methods: list[str]) -> dict[str, str]:
    """One colour per method in order of first appearance (tab10, then tab20), the base in near-black."""
    from matplotlib import colormaps

    names = [m for m in dict.fromkeys(methods) if m != "base"]
    cmap = colormaps["tab10" if len(names) <= 10 else "tab20"]
    colors = {m: _hex(cmap(i % cmap.N)) for i, m in enumerate(names)}
    return {"base": BASE_COLOR, **colors}


def _hex(rgba) -> str:
    return "#" + "".join(f"{round(c * 255):02x}" for c in rgba[:3])


def _figure(width_in: float, height_in: float) -> Figure:
    # callers hold matplotlib.rc_context(STYLE) open until savefig: fonts are read when artists are made
    return Figure(figsize=(width_in, height_in), dpi=DPI, layout="constrained")


def _width(variants: list[str]) -> float:
    """Inches for one panel per rule: a probe folder (one rule) gets a narrower figure, not a stretched one."""
    return 0.6 + 4.2 * len(variants)


def _picture(fig: Figure, alt: str) -> Picture:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white")
    uri = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
    return Picture(uri, round(fig.get_figwidth() * 96), alt)


def _legend(fig: Figure, colors: dict[str, str], models: list[str], *, base_dashed: bool = True) -> None:
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=colors[m], lw=2, ls="--" if (m == "base" and base_dashed) else "-") for m in models]
    fig.legend(handles, models, loc="outside lower center", ncol=min(len(models), 8), frameon=False, fontsize=8.5)


def passk_figure(run: RunData, colors: dict[str, str]) -> Picture:
    """pass@k against k (log scale), one panel per rule; the shaded band is the 95% bootstrap interval."""
    import matplotlib

    variants = list(run.evals)
    with matplotlib.rc_context(STYLE):
        fig = _figure(_width(variants), 3.5)
        axes = fig.subplots(1, len(variants), squeeze=False, sharey=True)[0]
        for ax, v in zip(axes, variants, strict=True):
            for m in run.models:
                e = run.evals[v].get(m)
                if e is None:
                    continue
                ks = list(e.pass_at_k)
                lo = [e.ci95.get(k, (e.pass_at_k[k],) * 2)[0] for k in ks]
                hi = [e.ci95.get(k, (e.pass_at_k[k],) * 2)[1] for k in ks]
                base = m == "base"
                ax.fill_between(ks, lo, hi, color=colors[m], alpha=0.16 if base else 0.07, lw=0)
                ax.plot(ks, list(e.pass_at_k.values()), color=colors[m], lw=2.4 if base else 1.5,
                        ls="--" if base else "-", marker="o", ms=3, zorder=3 if base else 2)
            ax.set_xscale("log", base=2)
            ax.set_xticks(ks, [str(k) for k in ks])
            ax.set_ylim(bottom=0)
            ax.set_xlabel("k (samples per prompt)")
            ax.set_title(VARIANT_NAMES.get(v, v))
            ax.grid(alpha=0.3)
        axes[0].set_ylabel("pass@k")
        _legend(fig, colors, run.models)
        return _picture(fig, "pass@k against k, base and each method, with 95% intervals")


def scatter_figure(run: RunData, colors: dict[str, str]) -> Picture:
    """pass@1 gain over the base against KL(method || base) per token; one point per method and rule."""
    import matplotlib

    variants = list(run.evals)
    with matplotlib.rc_context(STYLE):
        fig = _figure(_width(variants), 3.3)
        axes = fig.subplots(1, len(variants), squeeze=False)[0]
        for ax, v in zip(axes, variants, strict=True):
            ax.axhline(0, color="#999999", lw=0.8)
            ax.scatter([0], [0], marker="x", color=BASE_COLOR, s=40, zorder=3)
            ax.annotate("base", (0, 0), xytext=(4, -10), textcoords="offset points", fontsize=8)
            points = {m: (e.kl_per_token, e.pass1_gain) for m in run.methods
                      if (e := run.evals[v].get(m)) is not None and None not in (e.kl_per_token, e.pass1_gain)}
            for m, (x, y) in points.items():
                ax.scatter([x], [y], color=colors[m], s=45, zorder=3, edgecolor="white")
            for m, dy in _label_offsets(points).items():
                ax.annotate(m, points[m], xytext=(5, dy), textcoords="offset points", fontsize=8, color=colors[m])
            ax.set_xlim(left=0)
            ax.margins(x=0.15, y=0.2)
            ax.set_xlabel("KL(method || base) per token")
            ax.set_title(VARIANT_NAMES.get(v, v))
            ax.grid(alpha=0.3)
        axes[0].set_ylabel("pass@1 gain over the base")
        return _picture(fig, "pass@1 gain against KL to the base, one point per method")


def _label_offsets(points: dict[str, tuple[float, float]]) -> dict[str, float]:
    """Vertical offsets (points) for the scatter's labels: methods that land almost on one spot (same
    KL and gain) get stacked labels instead of one unreadable overprint."""
    if not points:
        return {}
    xs, ys = [p[0] for p in points.values()], [p[1] for p in points.values()]
    span_x, span_y = (max(xs) - min(xs)) or 1.0, (max(ys) - min(ys)) or 1.0
    placed: list[tuple[float, float, float]] = []
    offsets = {}
    for m, (x, y) in sorted(points.items(), key=lambda kv: (kv[1][1], kv[1][0]), reverse=True):
        near = [dy for px, py, dy in placed if abs(px - x) < 0.12 * span_x and abs(py - y) < 0.06 * span_y]
        offsets[m] = min(near) - 10 if near else 3.0
        placed.append((x, y, offsets[m]))
    return offsets


TRAINING_PANELS = (("reward", "mean reward"), ("kl", "KL to the base"), ("loss", "loss"))


def training_figure(run: RunData, colors: dict[str, str]) -> Picture:
    """reward, KL and loss against step for each method; a method appears where it logged the key."""
    import matplotlib

    with matplotlib.rc_context(STYLE):
        fig = _figure(9, 3.1)
        axes = fig.subplots(1, len(TRAINING_PANELS), squeeze=False)[0]
        for ax, (key, title) in zip(axes, TRAINING_PANELS, strict=True):
            logged = [m for m in run.methods if any(key in row for row in run.metrics.get(m, []))]
            for m in logged:
                rows = [r for r in run.metrics[m] if r.get(key) is not None]
                ax.plot([r["step"] for r in rows], [r[key] for r in rows], color=colors[m], lw=1.5)
            if not logged:
                ax.text(0.5, 0.5, f"no method logs {key}", ha="center", va="center", transform=ax.transAxes,
                        color="#777777")
            missing = len(run.methods) - len(logged)
            ax.set_title(title + (f"  ({len(logged)} of {len(run.methods)} methods)" if missing else ""))
            ax.set_xlabel("step")
            ax.grid(alpha=0.3)
        _legend(fig, colors, run.methods)
        return _picture(fig, "training curves: reward, KL and loss against step for each method")


def _heatmap(ax, grid: list[list[int]], vmax: int) -> None:
    ax.imshow(grid, cmap="Blues", vmin=0, vmax=vmax)
    for r, row in enumerate(grid):
        for c, n in enumerate(row):
            # zeros in light grey, so the few non-empty cells stand out
            ax.text(c, r, str(n), ha="center", va="center", fontsize=7.5,
                    color="white" if n > 0.55 * vmax else ("#222222" if n else "#c4c4c4"))
    ax.tick_params(length=0)
    ax.spines[:].set_visible(False)


def transitions_figure(run: RunData, colors: dict[str, str], max_cols: int = 8) -> Picture:
    """One heatmap per method and rule: prompts counted by regime under the base (rows) and under the
    method (columns). A block of rows per rule, at most `max_cols` methods a row; one shared colour scale."""
    import matplotlib

    regimes, variants = run.regimes, list(run.transitions)
    methods = [m for m in run.methods if any(m in run.transitions[v] for v in variants)]
    ncols = max(1, min(max_cols, len(methods)))
    per_variant = -(-len(methods) // ncols)
    vmax = max([n for v in variants for mv in run.transitions[v].values() for row in mv.values() for n in row.values()]
               + [1])
    short = [r[:4] + "." if len(r) > 6 else r for r in regimes]  # "singularity" would crowd a 1-inch panel
    with matplotlib.rc_context(STYLE):
        fig = _figure(max(4.0, 1.2 * ncols + 0.9), 0.5 + 1.45 * per_variant * len(variants))
        axes = fig.subplots(per_variant * len(variants), ncols, squeeze=False)
        for vi, v in enumerate(variants):
            for j in range(per_variant * ncols):
                ax = axes[vi * per_variant + j // ncols, j % ncols]
                m = methods[j] if j < len(methods) else None
                if m is None or m not in run.transitions[v]:
                    ax.set_visible(False)
                    continue
                _heatmap(ax, [[run.transitions[v][m][a][b] for b in regimes] for a in regimes], vmax)
                ax.set_title(m, color=colors[m], fontweight="bold", fontsize=8.5)
                last_row = vi == len(variants) - 1 and (j // ncols == per_variant - 1 or j + ncols >= len(methods))
                ax.set_xticks(range(len(regimes)), short if last_row else [], rotation=90, fontsize=7)
                ax.set_yticks(range(len(regimes)), short if j % ncols == 0 else [], fontsize=7)
                if j % ncols == 0:
                    ax.set_ylabel(VARIANT_NAMES.get(v, v), fontsize=8.5, fontweight="bold")
        fig.supylabel("regime under the base (rows)", fontsize=8.5)
        fig.supxlabel("regime under the method (columns)", fontsize=8.5)
        return _picture(fig, "regime transition matrices, one per method and rule")
