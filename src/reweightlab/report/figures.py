"""The report's figures: matplotlib on the Agg canvas, returned as PNG data URIs for <img> tags.

`Figure` objects are built directly (no pyplot), so nothing here touches matplotlib's global
state or needs a display. Each function takes a `RunData`, a colour per method and per trained
model (`palette`: fixed by name, every seed of a method in the method's colour, so a method keeps one
colour in every figure and on every page) and the page's `Limits` (`shared_limits`: the axes that every
panel of a kind and every column of a side-by-side page share). Where a figure would carry one line
per seed (pass@k, the free-energy sweep) it draws one per method, from its first training seed.
Legends and panel titles are fitted to the space they have; `layout_problems` checks a drawn figure
for labels that overlap or run off it."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field

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


# A colour per name, the same on every page: each built-in method and demo arm has its own (a test keeps this
# table complete and its colours distinct); any other name takes a colour from SPARE_COLORS by a hash of the name
# (crc32, so the same in every process), the next free one where two such names on one page would share it.
FIXED_COLORS = {
    "base": BASE_COLOR,
    "sft": "#1f77b4", "filtered_sft": "#ff7f0e", "sft_q": "#2ca02c", "iw_sft": "#d62728", "dft": "#9467bd",
    "search_sft": "#8c564b", "grpo": "#e377c2", "base_copy": "#7f7f7f", "rloo": "#bcbd22", "reinforce": "#17becf",
    "sft_ood": "#0b3d91", "iw_sft_seq": "#9e1b32", "grpo_revision": "#7a1f6e", "rwr": "#e6ab02",
    "weighted_sft": "#1b9e77", "warmup_sft": "#637939", "warmup_rl": "#fa8072",
}
SPARE_COLORS = ("#393b79", "#e7ba52", "#843c39", "#5254a3", "#8ca252", "#a55194", "#6b6ecf", "#3182bd",
                "#e6550d", "#31a354", "#756bb1", "#636363", "#b5cf6b", "#ce6dbd")


def palette(names: list[str]) -> dict[str, str]:
    """A colour for each name: FIXED_COLORS where it has one, else a spare colour chosen by the name alone (so
    a model keeps its colour across reports) unless another such name on the page took it first (names in
    sorted order, so the choice does not depend on the order of the folders)."""
    import zlib

    out = {n: FIXED_COLORS[n] for n in dict.fromkeys(names) if n in FIXED_COLORS}
    taken: set[str] = set()
    for n in sorted({n for n in names if n not in FIXED_COLORS}):
        start = zlib.crc32(n.encode("utf-8")) % len(SPARE_COLORS)
        order = [SPARE_COLORS[(start + j) % len(SPARE_COLORS)] for j in range(len(SPARE_COLORS))]
        out[n] = next((c for c in order if c not in taken), order[0])  # more names than spares: shared
        taken.add(out[n])
    return out


def _hex(rgba) -> str:
    return "#" + "".join(f"{round(c * 255):02x}" for c in rgba[:3])


def _figure(width_in: float, height_in: float) -> Figure:
    # callers hold matplotlib.rc_context(STYLE) open until savefig: fonts are read when artists are made
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = Figure(figsize=(width_in, height_in), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)  # a renderer to measure text with (legends are fitted to the width)
    return fig


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


def layout_problems(fig: Figure, tolerance_px: float = 1.0) -> list[str]:
    """What a reader would see as broken in `fig` once drawn: two texts (tick labels, titles, axis labels,
    legend entries, annotations) that overlap by more than `tolerance_px` each way, or a text that runs off the
    figure. Only the texts matplotlib actually draws count (hidden axes and ticks outside the view do not).
    An empty list is a clean layout; the tests run this on every figure of a report."""
    from matplotlib.text import Text

    drawn: list[Text] = []
    original = Text.draw

    def record(self, renderer):
        original(self, renderer)
        if self.get_visible() and self.get_text().strip():
            drawn.append(self)

    Text.draw = record
    try:
        fig.canvas.draw()
    finally:
        Text.draw = original
    renderer = fig.canvas.get_renderer()
    boxes = [(t.get_text().replace("\n", " "), t.get_window_extent(renderer)) for t in drawn]
    problems = []
    page = fig.bbox
    for text, b in boxes:
        if b.x0 < page.x0 - tolerance_px or b.y0 < page.y0 - tolerance_px or b.x1 > page.x1 + tolerance_px \
                or b.y1 > page.y1 + tolerance_px:
            problems.append(f"{text!r} runs off the figure")
    order = sorted(range(len(boxes)), key=lambda i: boxes[i][1].x0)
    for n, i in enumerate(order):  # sweep along x: only boxes that start before this one ends can overlap it
        ti, bi = boxes[i]
        for j in order[n + 1:]:
            tj, bj = boxes[j]
            if bj.x0 >= bi.x1 - tolerance_px:
                break
            dx = min(bi.x1, bj.x1) - max(bi.x0, bj.x0)
            dy = min(bi.y1, bj.y1) - max(bi.y0, bj.y0)
            if dx > tolerance_px and dy > tolerance_px:
                problems.append(f"{ti!r} overlaps {tj!r}")
    return problems


def _break_once(text: str) -> str:
    """`text` on two lines, broken after the "-", "_" or " " nearest its middle (unchanged where it has none)."""
    cuts = [i + 1 for i, ch in enumerate(text[:-1]) if ch in "-_ " and i > 0]
    if not cuts:
        return text
    cut = min(cuts, key=lambda i: abs(i - len(text) / 2))
    return text[:cut].rstrip() + "\n" + text[cut:].lstrip()


def fit_title(ax, text: str, *, fontsize: float = 8.5, min_fontsize: float = 6.5, **kw) -> None:
    """A panel title no wider than its panel (so neighbours' titles never meet): as it is where it fits, else a
    point smaller, else broken onto two lines, else in a smaller font, else shortened in the middle with an
    ellipsis (the tables name every model in full)."""
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    room = ax.get_position().width * fig.bbox.width * 0.92  # the panel's share of the figure, less a gap
    tries = [(text, fontsize), (text, fontsize - 1)]
    tries += [(_break_once(text), f) for f in (fontsize, fontsize - 1, min_fontsize)]
    for words, size in tries:
        title = ax.set_title(words, fontsize=size, **kw)
        if title.get_window_extent(renderer).width <= room:
            return
    keep = len(text)
    while keep > 4:
        keep -= 2
        short = text[: keep // 2] + "…" + text[len(text) - keep // 2:]
        title = ax.set_title(short, fontsize=min_fontsize, **kw)
        if title.get_window_extent(renderer).width <= room:
            return


def fitted_legend(fig: Figure, handles: list, names: list[str], *, max_cols: int = 8, fontsize: float = 8.5, **kw):
    """A legend below the axes in as many columns (at most `max_cols`) as fit the figure's width, so no entry is
    cut off at an edge however many models or however long their names."""
    renderer = fig.canvas.get_renderer()
    for ncol in range(min(len(names), max_cols), 0, -1):
        leg = fig.legend(handles, names, loc="outside lower center", ncol=ncol, frameon=False, fontsize=fontsize, **kw)
        if ncol == 1 or leg.get_window_extent(renderer).width <= 0.98 * fig.bbox.width:
            return leg
        leg.remove()
    return None


def _legend(fig: Figure, colors: dict[str, str], models: list[str], *, base_dashed: bool = True) -> None:
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=colors[m], lw=2, ls="--" if (m == "base" and base_dashed) else "-") for m in models]
    fitted_legend(fig, handles, models)


def _bounds(ivs: list[Interval]) -> list[list[float]]:
    """Error-bar lengths below and above each value (0 where a bound is undefined)."""
    lo = [0.0 if i.lo is None else max(0.0, i.value - i.lo) for i in ivs]
    hi = [0.0 if i.hi is None else max(0.0, i.hi - i.value) for i in ivs]
    return [lo, hi]


def _span(lo: float, hi: float, pad: float = 0.06) -> tuple[float, float]:
    """[lo, hi] widened by `pad` of its length on each side (a little room where lo == hi)."""
    width = (hi - lo) or max(abs(hi), 1.0) * 0.1
    return lo - pad * width, hi + pad * width


def _passk_models(run: RunData) -> list[str]:
    return ["base", *run.first_labels]


def _ends(iv: Interval) -> list[float]:
    return [x for x in (iv.value, iv.lo, iv.hi) if x is not None]


def _scatter_points(run: RunData, variant: str) -> list[tuple[str, object]]:
    """(label, Comparison) of each trained model that has both a KL and a Δpass@1 under `variant`."""
    out = []
    for m in run.trained:
        c = getattr(run.evals[variant].get(m), "vs", None)
        if c is not None and None not in (c.kl.value, c.delta_pass1.value):
            out.append((m, c))
    return out


# The training figure's panels: (key, title, family of the models it shows, the metrics.jsonl key). The
# offline methods' loss is a weighted NLL and the RL methods' a clipped surrogate: two quantities, two axes.
TRAINING_PANELS = (
    ("reward", "mean reward (RL)", "rl", "reward"),
    ("kl", "KL to the reference (RL)", "rl", "kl"),
    ("nll", "weighted NLL (offline methods)", "offline", "loss"),
    ("surrogate", "surrogate loss (RL)", "rl", "loss"),
    ("eval", "held-out pass@1 (eval_every)", None, "eval/pass@1"),
)


def training_curves(run: RunData) -> dict[str, list[tuple[str, list[float], list[float]]]]:
    """Per panel key: (label, steps, values) of every trained model that logged the panel's key, in the
    panel's family; the held-out panel only where some model logged it."""
    out: dict[str, list] = {}
    for key, _title, family, metric in TRAINING_PANELS:
        curves = []
        for m in run.trained:
            if family is not None and run.family.get(m) != family:
                continue
            rows = [r for r in run.metrics.get(m, []) if isinstance(r.get(metric), int | float)]
            if rows:
                curves.append((m, [float(r["step"]) for r in rows], [float(r[metric]) for r in rows]))
        if curves or key != "eval":
            out[key] = curves
    return out


@dataclass(frozen=True)
class Limits:
    """Axis limits shared by every panel of a kind on a page, and by every column of a side-by-side page, so
    two runs are read on one scale (`shared_limits`)."""

    passk_y: tuple[float, float] = (0.0, 1.0)
    passk_k: tuple[float, float] = (1.0, 2.0)
    scatter_x: tuple[float, float] = (0.0, 1.0)
    scatter_y: tuple[float, float] = (-1.0, 1.0)
    free_energy_y: tuple[float, float] = (0.0, 1.0)
    training: dict[str, tuple[tuple[float, float], tuple[float, float]]] = field(default_factory=dict)
    transitions_vmax: int = 1


def shared_limits(runs: list[RunData]) -> Limits:
    """The limits that hold everything each figure draws, over all `runs` (one run: its own panels alike)."""
    hi = [x for r in runs for ev in r.evals.values() for m in _passk_models(r) if m in ev
          for k, v in ev[m].pass_at_k.items() for x in (v, ev[m].ci95.get(k, (v, v))[1])]
    ks = [k for r in runs for ev in r.evals.values() for e in ev.values() for k in e.pass_at_k] or [1, 2]
    xs, ys = [0.0], [0.0]
    for r in runs:
        for v in r.evals:
            for _m, c in _scatter_points(r, v):
                xs += _ends(c.kl)
                ys += _ends(c.delta_pass1)
    fe = [x for r in runs for ev in r.evals.values() for e in ev.values() for f in e.free_energy.values()
          for part in (f.gap, f.between, f.within) for x in _ends(part)] or [0.0, 1.0]
    training = {}
    for key in dict.fromkeys(k for r in runs for k in training_curves(r)):
        steps = [x for r in runs for _m, st, _v in training_curves(r).get(key, []) for x in st] or [0.0, 1.0]
        vals = [x for r in runs for _m, _st, vs in training_curves(r).get(key, []) for x in vs] or [0.0, 1.0]
        training[key] = (_span(min(steps), max(steps), 0.03), _span(min(vals), max(vals)))
    vmax = max([n for r in runs for tv in r.transitions.values() for mv in tv.values() for row in mv.values()
                for n in row.values()] + [1])
    return Limits(
        passk_y=(0.0, min(1.04, max(hi or [1.0]) * 1.06 or 0.05)),
        passk_k=(min(ks) / 2 ** 0.25, max(ks) * 2 ** 0.25),
        scatter_x=(0.0, _span(0.0, max(xs), 0.12)[1]), scatter_y=_span(min(ys), max(ys), 0.15),
        free_energy_y=_span(min(min(fe), 0.0), max(fe), 0.05), training=training, transitions_vmax=vmax)


def passk_figure(run: RunData, colors: dict[str, str], limits: Limits) -> Picture:
    """pass@k against k (log scale), one panel per rule; the shaded band is the 95% bootstrap interval.
    One curve per method: its first training seed (every model of a probe folder)."""
    import matplotlib

    variants, models = list(run.evals), _passk_models(run)
    with matplotlib.rc_context(STYLE):
        fig = _figure(_width(variants), 3.5)
        axes = fig.subplots(1, len(variants), squeeze=False, sharey=True)[0]
        for ax, v in zip(axes, variants, strict=True):
            ks: list[int] = []
            for m in models:
                e = run.evals[v].get(m)
                if e is None:
                    continue
                ks = sorted(set(ks) | set(e.pass_at_k))
                mk = list(e.pass_at_k)
                lo = [e.ci95.get(k, (e.pass_at_k[k],) * 2)[0] for k in mk]
                hi = [e.ci95.get(k, (e.pass_at_k[k],) * 2)[1] for k in mk]
                base = m == "base"
                ax.fill_between(mk, lo, hi, color=colors[m], alpha=0.16 if base else 0.07, lw=0)
                ax.plot(mk, list(e.pass_at_k.values()), color=colors[m], lw=2.4 if base else 1.5,
                        ls="--" if base else "-", marker="o", ms=3, zorder=3 if base else 2)
            ax.set_xscale("log", base=2)
            ax.set_xticks(ks, [str(k) for k in ks])
            ax.minorticks_off()
            ax.set_xlim(*limits.passk_k)
            ax.set_ylim(*limits.passk_y)
            ax.set_xlabel("k (samples per prompt)")
            ax.set_title(VARIANT_NAMES.get(v, v))
            ax.grid(alpha=0.3)
        axes[0].set_ylabel("pass@k")
        _legend(fig, colors, models)
        return _picture(fig, "pass@k against k, the base and one model per method, with 95% intervals")


def scatter_figure(run: RunData, colors: dict[str, str], limits: Limits) -> Picture:
    """pass@1 gain over the base against KL(model || base) per token, both with their 95% intervals;
    one point per trained model and rule, coloured by method."""
    import matplotlib

    variants = list(run.evals)
    with matplotlib.rc_context(STYLE):
        fig = _figure(_width(variants), 3.5)
        axes = fig.subplots(1, len(variants), squeeze=False, sharex=True, sharey=True)[0]
        for ax, v in zip(axes, variants, strict=True):
            ax.axhline(0, color="#999999", lw=0.8)
            ax.scatter([0], [0], marker="x", color=BASE_COLOR, s=40, zorder=3)
            ax.annotate("base", (0, 0), xytext=(4, -10), textcoords="offset points", fontsize=8)
            points = _scatter_points(run, v)
            for m, c in points:
                ax.errorbar([c.kl.value], [c.delta_pass1.value], xerr=_bounds([c.kl]), yerr=_bounds([c.delta_pass1]),
                            fmt="o", color=colors[m], ms=6, mec="white", elinewidth=0.8, alpha=0.9, zorder=3)
            if not points and run.trained:
                ax.text(0.5, 0.5, "no KL measured\n(probe of samples files)", ha="center", va="center",
                        transform=ax.transAxes, color="#777777", fontsize=8)
            ax.set_xlim(*limits.scatter_x)
            ax.set_ylim(*limits.scatter_y)
            ax.set_xlabel("KL(model || base) per token")
            ax.set_title(VARIANT_NAMES.get(v, v))
            ax.grid(alpha=0.3)
        axes[0].set_ylabel("pass@1 gain over the base")
        _legend(fig, colors, run.methods)
        return _picture(fig, "pass@1 gain against KL to the base, one point per trained model")


def free_energy_figure(run: RunData, colors: dict[str, str], limits: Limits, max_cols: int = 8) -> Picture:
    """The free-energy gap against beta (log scale), one panel per method and rule: the first seed's gap
    (solid) and its two parts, between (dashed) and within (dotted) reward classes, each with its 95%
    interval; the other seeds' gaps thin; the base's gap in grey; the beta the method trained at, dotted.
    A method without a measured gap (a probe of samples files measures the base's only) has no panel."""
    import matplotlib

    variants = list(run.evals)
    panels = ["base", *(m for m in run.methods if any(ev[run.labels_of(m)[0]].free_energy
                                                      for ev in run.evals.values() if run.labels_of(m)[0] in ev))]
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
                ax.set_ylim(*limits.free_energy_y)
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
    fit_title(ax, method, color=colors[method], fontweight="bold")
    ax.grid(alpha=0.3)


def _free_energy_legend(fig: Figure, ncol: int, *, several_seeds: bool) -> None:
    from matplotlib.lines import Line2D

    keys = [("gap (first seed)" if several_seeds else "gap", "-", 1.6, "#444444"),
            ("between classes", "--", 1.0, "#444444"), ("within classes", ":", 1.2, "#444444")]
    keys += [("other seeds' gap", "-", 0.8, "#aaaaaa")] if several_seeds else []
    keys += [("base's gap", "-", 3.2, "#c8c8c8"), ("beta trained at", ":", 0.9, "#444444")]
    handles = [Line2D([], [], color=c, ls=ls, lw=lw) for _n, ls, lw, c in keys]
    fitted_legend(fig, handles, [k[0] for k in keys], max_cols=ncol, fontsize=8)


def training_figure(run: RunData, colors: dict[str, str], limits: Limits) -> Picture:
    """One panel per quantity (TRAINING_PANELS) against step, one line per trained model in its method's
    colour: the RL methods' reward, KL and surrogate loss; the offline methods' weighted NLL on its own axes;
    the held-out pass@1 where a run evaluated during training. A panel whose family trained no model says so."""
    import matplotlib

    curves = training_curves(run)
    titles = {key: title for key, title, _f, _m in TRAINING_PANELS}
    keys = list(curves)
    ncols = 2 if len(keys) == 4 else 3
    nrows = -(-len(keys) // ncols)
    with matplotlib.rc_context(STYLE):
        fig = _figure(9, 0.8 + 2.35 * nrows)
        axes = fig.subplots(nrows, ncols, squeeze=False)
        for j, ax in enumerate(axes.flat):
            if j >= len(keys):
                ax.set_visible(False)
                continue
            key = keys[j]
            for m, steps, values in curves[key]:
                ax.plot(steps, values, color=colors[m], lw=1.3, alpha=0.85)
            if not curves[key]:
                family = next(f for k, _t, f, _m in TRAINING_PANELS if k == key)
                ax.text(0.5, 0.5, f"no {'RL' if family == 'rl' else 'offline'} model in this folder", ha="center",
                        va="center", transform=ax.transAxes, color="#777777")
            elif key in limits.training:
                ax.set_xlim(*limits.training[key][0])
                ax.set_ylim(*limits.training[key][1])
            ax.set_title(titles[key])
            ax.set_xlabel("step")
            ax.grid(alpha=0.3)
        _legend(fig, colors, run.methods)
        return _picture(fig, "training curves against step for each trained model: reward, KL and surrogate loss "
                             "(RL), weighted NLL (offline methods)")


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


def transitions_figure(run: RunData, colors: dict[str, str], limits: Limits, max_cols: int = 8) -> Picture:
    """One heatmap per trained model and rule: prompts counted by regime under the base (rows) and under
    the model (columns). A block of rows per rule (a row per training seed); one shared colour scale."""
    import matplotlib

    regimes, variants = run.regimes, list(run.transitions)
    grid = label_grid(run, max_cols)
    ncols, per_variant = max(1, max(len(r) for r in grid)), len(grid)
    vmax = limits.transitions_vmax  # one colour scale for every matrix on the page
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
                fit_title(ax, m, color=colors[m], fontweight="bold")
                last = i == per_variant - 1 or j >= len(grid[i + 1]) or grid[i + 1][j] is None
                ax.set_xticks(range(len(regimes)), short if last else [], rotation=90, fontsize=7)
                ax.set_yticks(range(len(regimes)), short if j == 0 else [], fontsize=7)
                if j == 0 and i == 0:
                    ax.set_ylabel(VARIANT_NAMES.get(v, v), fontsize=8.5, fontweight="bold")
        fig.supylabel("regime under the base (rows)", fontsize=8.5)
        fig.supxlabel("regime under the model (columns)", fontsize=8.5)
        return _picture(fig, "regime transition matrices, one per trained model and rule")
