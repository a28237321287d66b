"""The report's figures: matplotlib on the Agg canvas, returned as PNG data URIs for <img> tags.

`Figure` objects are built directly (no pyplot), so nothing here touches matplotlib's global
state or needs a display. Each function takes a `RunData` and a colour per method and per trained
model (every seed of a method in the method's colour), so one method keeps one colour across all
figures and across the runs of a side-by-side page. Where a figure would carry one line per seed
(pass@k, the free-energy sweep) it draws one per method, from its first training seed.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

from matplotlib.figure import Figure

from reweightlab.report.load import VARIANT_NAMES, Interval, RunData

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


def new_figure(width_in: float, height_in: float) -> Figure:
    """A figure in the report's style for another module's drawing (hold rc_context(STYLE) open to the end)."""
    return _figure(width_in, height_in)


def picture(fig: Figure, alt: str) -> Picture:
    """`fig` as the page's PNG data URI (through _picture, so the tests that watch it see every figure)."""
    return _picture(fig, alt)


def _legend(fig: Figure, colors: dict[str, str], models: list[str], *, base_dashed: bool = True) -> None:
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=colors[m], lw=2, ls="--" if (m == "base" and base_dashed) else "-") for m in models]
    fig.legend(handles, models, loc="outside lower center", ncol=min(len(models), 8), frameon=False, fontsize=8.5)


def _bounds(ivs: list[Interval]) -> list[list[float]]:
    """Error-bar lengths below and above each value (0 where a bound is undefined)."""
    lo = [0.0 if i.lo is None else max(0.0, i.value - i.lo) for i in ivs]
    hi = [0.0 if i.hi is None else max(0.0, i.hi - i.value) for i in ivs]
    return [lo, hi]


def passk_figure(run: RunData, colors: dict[str, str]) -> Picture:
    """pass@k against k (log scale), one panel per rule; the shaded band is the 95% bootstrap interval.
    One curve per method: its first training seed (every model of a probe folder)."""
    import matplotlib

    variants, models = list(run.evals), ["base", *run.first_labels]
    with matplotlib.rc_context(STYLE):
        fig = _figure(_width(variants), 3.5)
        axes = fig.subplots(1, len(variants), squeeze=False, sharey=True)[0]
        for ax, v in zip(axes, variants, strict=True):
            for m in models:
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
        _legend(fig, colors, models)
        return _picture(fig, "pass@k against k, the base and one model per method, with 95% intervals")


def scatter_figure(run: RunData, colors: dict[str, str]) -> Picture:
    """pass@1 gain over the base against KL(model || base) per token, both with their 95% intervals;
    one point per trained model and rule, coloured by method."""
    import matplotlib

    variants = list(run.evals)
    with matplotlib.rc_context(STYLE):
        fig = _figure(_width(variants), 3.5)
        axes = fig.subplots(1, len(variants), squeeze=False)[0]
        for ax, v in zip(axes, variants, strict=True):
            ax.axhline(0, color="#999999", lw=0.8)
            ax.scatter([0], [0], marker="x", color=BASE_COLOR, s=40, zorder=3)
            ax.annotate("base", (0, 0), xytext=(4, -10), textcoords="offset points", fontsize=8)
            for m in run.trained:
                c = getattr(run.evals[v].get(m), "vs", None)
                if c is None or None in (c.kl.value, c.delta_pass1.value):
                    continue
                ax.errorbar([c.kl.value], [c.delta_pass1.value], xerr=_bounds([c.kl]), yerr=_bounds([c.delta_pass1]),
                            fmt="o", color=colors[m], ms=6, mec="white", elinewidth=0.8, alpha=0.9, zorder=3)
            ax.set_xlim(left=0)
            ax.margins(x=0.15, y=0.2)
            ax.set_xlabel("KL(model || base) per token")
            ax.set_title(VARIANT_NAMES.get(v, v))
            ax.grid(alpha=0.3)
        axes[0].set_ylabel("pass@1 gain over the base")
        _legend(fig, colors, run.methods)
        return _picture(fig, "pass@1 gain against KL to the base, one point per trained model")


def free_energy_figure(run: RunData, colors: dict[str, str], max_cols: int = 8) -> Picture:
    """The free-energy gap against beta (log scale), one panel per method and rule: the first seed's gap
    (solid) and its two parts, between (dashed) and within (dotted) reward classes, each with its 95%
    interval; the other seeds' gaps thin; the base's gap in grey; the beta the method trained at, dotted."""
    import matplotlib

    variants = list(run.evals)
    panels = ["base", *run.methods]
    ncols = min(max_cols, len(panels))
    per_variant = -(-len(panels) // ncols)
    with matplotlib.rc_context(STYLE):
        fig = _figure(max(4.2, 1.45 * ncols + 0.6), 0.7 + 2.0 * per_variant * len(variants))
        axes = fig.subplots(per_variant * len(variants), ncols, squeeze=False, sharey=True)
        for vi, v in enumerate(variants):
            for j in range(per_variant * ncols):
                ax = axes[vi * per_variant + j // ncols, j % ncols]
                if j >= len(panels):
                    ax.set_visible(False)
                    continue
                _free_energy_panel(ax, run, v, panels[j], colors)
                if vi == len(variants) - 1 and j + ncols >= len(panels):
                    ax.set_xlabel("beta", fontsize=8)
                if j % ncols == 0:
                    ax.set_ylabel(f"{VARIANT_NAMES.get(v, v)}\nF gap", fontsize=8.5)
        _free_energy_legend(fig, 6 if ncols >= 5 else 2, several_seeds=run.num_seeds > 1)
        return _picture(fig, "free-energy gap against beta, split between and within reward classes, per method")


def _free_energy_panel(ax, run: RunData, variant: str, method: str, colors: dict[str, str]) -> None:
    ev = run.evals[variant]
    labels = ["base"] if method == "base" else run.labels_of(method)
    base = ev["base"].free_energy
    if method != "base":
        ax.plot(list(base), [f.gap.value for f in base.values()], color="#c8c8c8", lw=3.2, zorder=1,
                solid_capstyle="round")
    for i, label in enumerate(labels):
        sweep = ev[label].free_energy
        betas = list(sweep)
        parts = (("gap", "-", 1.6), ("between", "--", 1.0), ("within", ":", 1.2)) if i == 0 else (("gap", "-", 0.8),)
        for part, ls, lw in parts:
            ivs = [getattr(f, part) for f in sweep.values()]
            ok = [k for k, iv in enumerate(ivs) if iv.value is not None]
            ax.errorbar([betas[k] for k in ok], [ivs[k].value for k in ok], yerr=_bounds([ivs[k] for k in ok]),
                        color=colors[label], ls=ls, lw=lw, elinewidth=0.7, capsize=1.5, marker="o" if part == "gap"
                        else None, ms=2.5, alpha=1.0 if i == 0 else 0.5, zorder=3 if part == "gap" else 2)
    trained_at = getattr(ev[labels[0]].vs, "training_beta", None)
    if trained_at is not None:
        ax.axvline(trained_at, color=colors[labels[0]], ls=":", lw=0.9, alpha=0.8)
    ax.set_xscale("log")
    ticks = list(ev["base"].free_energy)
    ax.set_xticks(ticks, [f"{b:g}" for b in ticks], fontsize=7)
    ax.minorticks_off()
    ax.set_title(method, color=colors[method], fontweight="bold", fontsize=8.5)
    ax.grid(alpha=0.3)


def _free_energy_legend(fig: Figure, ncol: int, *, several_seeds: bool) -> None:
    from matplotlib.lines import Line2D

    keys = [("gap (first seed)" if several_seeds else "gap", "-", 1.6, "#444444"),
            ("between classes", "--", 1.0, "#444444"), ("within classes", ":", 1.2, "#444444")]
    keys += [("other seeds' gap", "-", 0.8, "#aaaaaa")] if several_seeds else []
    keys += [("base's gap", "-", 3.2, "#c8c8c8"), ("beta trained at", ":", 0.9, "#444444")]
    handles = [Line2D([], [], color=c, ls=ls, lw=lw) for _n, ls, lw, c in keys]
    fig.legend(handles, [k[0] for k in keys], loc="outside lower center", ncol=min(ncol, len(keys)), frameon=False,
               fontsize=8)


TRAINING_PANELS = (("reward", "mean reward"), ("kl", "KL to the base"), ("loss", "loss"))


def training_figure(run: RunData, colors: dict[str, str]) -> Picture:
    """reward, KL and loss against step for each trained model (coloured by method); a model appears
    where it logged the key."""
    import matplotlib

    with matplotlib.rc_context(STYLE):
        fig = _figure(9, 3.1)
        axes = fig.subplots(1, len(TRAINING_PANELS), squeeze=False)[0]
        for ax, (key, title) in zip(axes, TRAINING_PANELS, strict=True):
            logged = [m for m in run.trained if any(key in row for row in run.metrics.get(m, []))]
            for m in logged:
                rows = [r for r in run.metrics[m] if r.get(key) is not None]
                ax.plot([r["step"] for r in rows], [r[key] for r in rows], color=colors[m], lw=1.3, alpha=0.85)
            if not logged:
                ax.text(0.5, 0.5, f"no model logs {key}", ha="center", va="center", transform=ax.transAxes,
                        color="#777777")
            methods = list(dict.fromkeys(run.method_of.get(m, m) for m in logged))
            missing = len(run.methods) - len(methods)
            ax.set_title(title + (f"  ({len(methods)} of {len(run.methods)} methods)" if missing else ""))
            ax.set_xlabel("step")
            ax.grid(alpha=0.3)
        _legend(fig, colors, run.methods)
        return _picture(fig, "training curves: reward, KL and loss against step for each trained model")


def _heatmap(ax, grid: list[list[int]], vmax: int) -> None:
    ax.imshow(grid, cmap="Blues", vmin=0, vmax=vmax)
    for r, row in enumerate(grid):
        for c, n in enumerate(row):
            # zeros in light grey, so the few non-empty cells stand out
            ax.text(c, r, str(n), ha="center", va="center", fontsize=7.5,
                    color="white" if n > 0.55 * vmax else ("#222222" if n else "#c4c4c4"))
    ax.tick_params(length=0)
    ax.spines[:].set_visible(False)


def label_grid(run: RunData, max_cols: int = 8) -> list[list[str | None]]:
    """The heatmaps' layout: a column per method and a row per training seed where the methods fit in
    `max_cols` columns; else the models in reading order, `max_cols` a row."""
    groups = [run.labels_of(m) for m in run.methods]
    if len(groups) <= max_cols and max((len(g) for g in groups), default=1) > 1:
        depth = max(len(g) for g in groups)
        return [[g[i] if i < len(g) else None for g in groups] for i in range(depth)]
    flat = run.trained
    return [flat[i:i + max_cols] for i in range(0, len(flat), max_cols)] or [[]]


def transitions_figure(run: RunData, colors: dict[str, str], max_cols: int = 8) -> Picture:
    """One heatmap per trained model and rule: prompts counted by regime under the base (rows) and under
    the model (columns). A block of rows per rule (a row per training seed); one shared colour scale."""
    import matplotlib

    regimes, variants = run.regimes, list(run.transitions)
    grid = label_grid(run, max_cols)
    ncols, per_variant = max(1, max(len(r) for r in grid)), len(grid)
    vmax = max([n for v in variants for mv in run.transitions[v].values() for row in mv.values() for n in row.values()]
               + [1])
    short = [r[:4] + "." if len(r) > 6 else r for r in regimes]  # "singularity" would crowd a 1-inch panel
    with matplotlib.rc_context(STYLE):
        fig = _figure(max(4.0, 1.2 * ncols + 0.9), 0.5 + 1.45 * per_variant * len(variants))
        axes = fig.subplots(per_variant * len(variants), ncols, squeeze=False)
        for vi, v in enumerate(variants):
            for i, j in ((i, j) for i in range(per_variant) for j in range(ncols)):
                ax = axes[vi * per_variant + i, j]
                m = grid[i][j] if j < len(grid[i]) else None
                if m is None or m not in run.transitions[v]:
                    ax.set_visible(False)
                    continue
                _heatmap(ax, [[run.transitions[v][m][a][b] for b in regimes] for a in regimes], vmax)
                ax.set_title(m, color=colors[m], fontweight="bold", fontsize=8.5)
                last = i == per_variant - 1 or j >= len(grid[i + 1]) or grid[i + 1][j] is None
                ax.set_xticks(range(len(regimes)), short if last else [], rotation=90, fontsize=7)
                ax.set_yticks(range(len(regimes)), short if j == 0 else [], fontsize=7)
                if j == 0 and i == 0:
                    ax.set_ylabel(VARIANT_NAMES.get(v, v), fontsize=8.5, fontweight="bold")
        fig.supylabel("regime under the base (rows)", fontsize=8.5)
        fig.supxlabel("regime under the model (columns)", fontsize=8.5)
        return _picture(fig, "regime transition matrices, one per trained model and rule")
