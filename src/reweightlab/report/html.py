"""The page: plain HTML and inline CSS, figures as PNG data URIs; no script and no external URL, so
the single file opens offline and can be mailed or archived as it is.

The page is a list of independent sections (`SECTIONS`); each renders one run's column, and a
page of several runs puts their columns side by side. A new kind of result (a control-policy file,
say) is one more `Section`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from html import escape

from reweightlab.report import figures
from reweightlab.report.load import VARIANT_NAMES, ModelEval, RunData

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d1d1f; margin: 0;
       background: #f6f6f7; }
main { max-width: var(--page-width); margin: 0 auto; padding: 20px 28px 48px; }
h1 { font-size: 22px; margin: 4px 0 2px; }
h2 { font-size: 17px; margin: 0 0 10px; }
h3.run { font-size: 13px; margin: 0 0 6px; color: #555; font-weight: 600; }
.facts { color: #555; margin: 0 0 6px; font-size: 13px; }
nav { font-size: 13px; margin: 8px 0 18px; }
nav a { margin-right: 14px; color: #3a5ba0; text-decoration: none; }
section { background: #fff; border: 1px solid #e3e3e6; border-radius: 8px; padding: 16px 18px; margin: 0 0 18px; }
.cols { display: grid; gap: 22px; grid-template-columns: repeat(var(--runs), minmax(0, 1fr)); }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 13px; font-variant-numeric: tabular-nums; white-space: nowrap; }
th, td { padding: 4px 6px; text-align: right; border-bottom: 1px solid #ececef; }
thead th { font-weight: 600; color: #444; border-bottom: 1px solid #c8c8cc; }
thead tr.group th { text-align: center; border-bottom: 1px solid #c8c8cc; color: #222; }
th[scope=row] { text-align: left; font-weight: 600; }
tr.base td, tr.base th { background: #f3f3f5; }
td.best { font-weight: 700; }
td.pos { color: #137333; } td.neg { color: #b3261e; } td.na { color: #aaa; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; }
figure { margin: 0 0 14px; }
figure img { display: block; max-width: 100%; height: auto; }
figcaption, .how { color: #444; font-size: 13px; margin-top: 6px; }
figcaption span, .how span { display: block; }
.note { color: #777; font-style: italic; }
"""


@dataclass(frozen=True)
class Section:
    """One block of the page: `render(run, colors)` returns that run's column as HTML."""

    key: str
    title: str
    render: Callable[[RunData, dict[str, str]], str]


def _figure_html(pic: figures.Picture, how: tuple[str, str]) -> str:
    """A figure and, under it, two lines on how to read it."""
    return (f'<figure><img src="{pic.uri}" width="{pic.width_px}" alt="{escape(pic.alt)}">'
            f"<figcaption><span>{how[0]}</span><span>{how[1]}</span></figcaption></figure>")


def _fmt(x: float | None, spec: str) -> str:
    return "–" if x is None else format(x, spec)


def _cell(x: float | None, spec: str, *, best: bool = False, signed: bool = False) -> str:
    classes = ["na"] if x is None else (["best"] if best else [])
    if signed and x is not None and abs(x) >= 5e-4:  # what rounds to +0.000 is neither gain nor loss
        classes.append("pos" if x > 0 else "neg")
    cls = f' class="{" ".join(classes)}"' if classes else ""
    return f"<td{cls}>{_fmt(x, spec)}</td>"


# (header, tooltip, value of a ModelEval, format, signed)
def _columns(k_top: int) -> list[tuple[str, str, Callable[[ModelEval], float | None], str, bool]]:
    return [
        ("pass@1", "chance that one sample solves a prompt", lambda e: e.pass_at_k.get(1), ".3f", False),
        (f"pass@{k_top}", f"chance that at least one of {k_top} samples does", lambda e: e.pass_at_k.get(k_top),
         ".3f", False),
        ("elicit.", "pass@1 gain on prompts the base reached within its budget", lambda e: e.elicitation, "+.3f",
         True),
        ("creation", "pass@1 gain on prompts the base did not reach", lambda e: e.creation, "+.3f", True),
        ("KL/tok", "KL(method || base) per token", lambda e: e.kl_per_token, ".3f", False),
        ("F gap", "free energy minus its optimum (beta = 1)", lambda e: e.free_energy_gap, ".2f", False),
        ("k*", "k at which the base catches up", lambda e: e.crossover_k, ".1f", False),
    ]


def _table(run: RunData, colors: dict[str, str]) -> str:
    variants = list(run.evals)
    k_top = {v: max(run.evals[v]["base"].pass_at_k) for v in variants}
    cols = {v: _columns(k_top[v]) for v in variants}
    timed = bool(run.train_seconds)
    group = "".join(f'<th colspan="{len(cols[v])}">{VARIANT_NAMES.get(v, v)}</th>' for v in variants)
    heads = "".join(f'<th title="{escape(tip)}">{escape(h)}</th>' for v in variants for h, tip, *_ in cols[v])
    # the best pass@k of a column, bold in the table; None when every model scores 0 (nothing to single out)
    best = {(v, h): max((x for e in run.evals[v].values() if (x := get(e)) is not None), default=0.0) or None
            for v in variants for h, _t, get, *_ in cols[v]}
    rows = []
    for m in run.models:
        cells = []
        for v in variants:
            e = run.evals[v].get(m)
            for head, _tip, get, spec, signed in cols[v]:
                x = None if e is None else get(e)
                cells.append(_cell(x, spec, best=head.startswith("pass@") and x == best[v, head], signed=signed))
        if timed:
            cells.append(_cell(run.train_seconds.get(m), ".1f"))
        swatch = f'<span class="swatch" style="background:{colors[m]}"></span>'
        cls = ' class="base"' if m == "base" else ""
        rows.append(f'<tr{cls} data-model="{escape(m)}"><th scope="row">{swatch}{escape(m)}</th>{"".join(cells)}</tr>')
    time_head = '<th rowspan="2" title="wall time of post-training">train s</th>' if timed else ""
    return (f'<div class="scroll"><table class="methods"><thead><tr class="group"><th rowspan="2">model</th>{group}'
            f"{time_head}</tr><tr>{heads}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>")


TABLE_HOW = (
    "pass@k: the chance that at least one of k samples solves a held-out prompt (bold: best in the column). "
    "elicit. + creation = the pass@1 gain over the base, on prompts the base already reached within its "
    "sampling budget (elicitation) and on prompts it did not (creation).",
    "KL/tok: exact KL(method || base) per token on the method's own samples; F gap: free energy above its "
    "optimum at beta = 1 (the base row: the gap a perfect reweighting would close); k*: the k at which the base "
    "catches up (–: not within the measured k).",
)
PASSK_HOW = (
    "Each line is one model's pass@k on held-out prompts (dashed black: the base), the shaded band its 95% "
    "bootstrap interval over prompts; a probe covers one rule, a demo both (trained on the first only).",
    "A method above the base at k = 1 that meets it at large k made answers the base could already sample more "
    "likely (elicitation); a lead that stays open at large k means it reached answers the base could not.",
)
SCATTER_HOW = (
    "Each point is one method: how far it moved from the base (x, KL per token on its own samples) against what "
    "it gained in pass@1 (y); the base sits at the origin.",
    "Up and to the left is efficient (much gain for little movement); below the line the method lost accuracy, "
    "and far to the right at no gain it drifted from the base without helping.",
)
TRANSITIONS_HOW = (
    "Rows: a prompt's regime under the base; columns: under the method; numbers count prompts. basin: solved "
    "often; tail: found within the sampling budget; barrier: not sampled but reachable (search or likelihood); "
    "singularity: out of reach.",
    "The diagonal is unchanged; counts left of it moved to an easier regime, right of it to a harder one. "
    "Pure reweighting moves tail to basin; only creation moves barrier or singularity up.",
)


def _table_section(run: RunData, colors: dict[str, str]) -> str:
    second = TABLE_HOW[1] + (" train s: wall time of post-training." if run.train_seconds else "")
    return _table(run, colors) + f'<p class="how"><span>{TABLE_HOW[0]}</span><span>{second}</span></p>'


def _passk_section(run: RunData, colors: dict[str, str]) -> str:
    return _figure_html(figures.passk_figure(run, colors), PASSK_HOW)


def _scatter_section(run: RunData, colors: dict[str, str]) -> str:
    if not run.methods:
        return '<p class="note">No trained model in this folder: nothing to compare with the base.</p>'
    return _figure_html(figures.scatter_figure(run, colors), SCATTER_HOW)


def _training_section(run: RunData, colors: dict[str, str]) -> str:
    if not run.metrics:
        return '<p class="note">No training curves: this folder holds a probe only (no metrics.jsonl).</p>'
    logs_reward = [m for m, rows in run.metrics.items() if any("reward" in r for r in rows)]
    others = [m for m in run.metrics if m not in logs_reward]
    first = (f"Per-step logs from each method's metrics.jsonl. Reward and KL are logged by "
             f"{', '.join(logs_reward) or 'no method'} only" + (f"; {', '.join(others)} train on fixed data and "
                                                                "log a loss (and weights) but no reward or KL."
                                                                if others else "."))
    second = ("Rising reward with a KL that levels off is healthy RL. The offline loss is a weighted NLL and the RL "
              "loss a surrogate: compare the shapes of the curves, not their values, across the two families.")
    return _figure_html(figures.training_figure(run, colors), (escape(first), second))


def _transitions_section(run: RunData, colors: dict[str, str]) -> str:
    if not any(run.transitions.values()):
        return '<p class="note">No regime transitions in this folder.</p>'
    return _figure_html(figures.transitions_figure(run, colors), TRANSITIONS_HOW)


CONTROL_FILE = "control.json"  # written by `reweightlab control run` (reweightlab.control.run.RESULTS_FILE)
CONTROL_HOW = (
    "Evaluation return of each method's mean action over seeded episodes: mean +- std over training seeds "
    "(score: D4RL-normalised, 0 = random, 100 = D4RL's expert; approximate on -v5). BC on all data is pi_ref and "
    "the starting point of the other three; all four train for the same number of steps.",
    "The iw-SFT paper's finding is SFT (BC on the top 10%) < SFT(Q) <= iw-SFT(Q); a gap smaller than the spread "
    "over seeds is not evidence either way.",
)


def _pm(mean, std, spec: str) -> str:
    return "–" if mean is None else f"{format(mean, spec)} ± {format(std or 0.0, spec)}"


def _control_section(run: RunData, colors: dict[str, str]) -> str:
    """The `control run` results table, when the folder holds control.json (read here, computed nowhere)."""
    import json

    path = run.path / CONTROL_FILE
    if not path.is_file():
        return ('<p class="note">No control results in this folder (run <code>reweightlab control run ENV --data '
                f"FILE --out {escape(str(run.path))}</code> to add {CONTROL_FILE}).</p>")
    try:
        res = json.loads(path.read_text(encoding="utf-8"))
        methods, ds = res["methods"], res["dataset_stats"]
        rows = "".join(
            f'<tr data-method="{escape(k)}"><th scope="row">{escape(m["label"])}</th>'
            f'<td>{_pm(m["return_mean"], m["return_std"], ".1f")}</td><td>{_pm(m["score_mean"], m["score_std"], ".1f")}'
            f'</td><td>{" / ".join(format(r["return_mean"], ".0f") for r in m["per_seed"])}</td>'
            f'<td>{m["train_seconds_mean"]:.1f}</td></tr>' for k, m in methods.items())
        facts = (f'{escape(res["env_id"])}: {ds["episodes"]} episodes, {ds["transitions"]} transitions, '
                 f'dataset returns {ds["min"]:.0f} / {ds["median"]:.0f} / {ds["max"]:.0f} (min / median / max); '
                 f'{len(res["seeds"])} seed(s), {res["eval_episodes"]} evaluation episodes; '
                 f'paper ordering {"holds" if res["ordering"]["paper_ordering_holds"] else "does not hold"}.')
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f'<p class="note">{escape(str(path))} could not be read: {escape(str(exc))}</p>'
    return (f'<p class="facts">{facts}</p><div class="scroll"><table class="control"><thead><tr><th>method</th>'
            "<th>return</th><th>score</th><th>per seed</th><th>train s</th></tr></thead>"
            f'<tbody>{rows}</tbody></table></div><p class="how"><span>{escape(CONTROL_HOW[0])}</span>'
            f"<span>{escape(CONTROL_HOW[1])}</span></p>")


SECTIONS = (
    Section("methods", "Methods at a glance", _table_section),
    Section("passk", "pass@k against k", _passk_section),
    Section("gain-vs-kl", "Gain against distance from the base", _scatter_section),
    Section("training", "Training curves", _training_section),
    Section("transitions", "Regime transitions: where each prompt moved", _transitions_section),
)
# Shown only when some folder holds the section's file: (section, is it there for this run?).
OPTIONAL_SECTIONS = (
    (Section("control", "Control policies from offline data", _control_section),
     lambda run: (run.path / CONTROL_FILE).is_file()),
)


def _sections(runs: list[RunData]) -> list[Section]:
    """The language-model sections unless every folder is a control run, then the optional ones present."""
    lm = list(SECTIONS) if any(r.kind != "control" for r in runs) else []
    return [*lm, *(s for s, present in OPTIONAL_SECTIONS if any(present(r) for r in runs))]


def _render(section: Section, run: RunData, colors: dict[str, str]) -> str:
    if run.kind == "control" and section in SECTIONS:  # side by side with a language-model run
        return '<p class="note">No language-model results in this folder (a control run).</p>'
    return section.render(run, colors)


def render_page(runs: list[RunData]) -> str:
    """The whole page for one run, or several side by side (one column per run in every section)."""
    colors = figures.palette([m for r in runs for m in r.models])
    names = " vs ".join(r.name for r in runs)
    facts = "".join(f'<p class="facts"><b>{escape(r.name)}</b>: {escape(f)}</p>' for r in runs for f in r.facts)
    sections = _sections(runs)
    nav = "".join(f'<a href="#{s.key}">{escape(s.title)}</a>' for s in sections)
    body = []
    for s in sections:
        cols = "".join(
            f'<div class="col">{f"<h3 class=run>{escape(r.name)}</h3>" if len(runs) > 1 else ""}{_render(s, r, colors)}'
            "</div>" for r in runs)
        body.append(f'<section id="{s.key}"><h2>{escape(s.title)}</h2><div class="cols">{cols}</div></section>')
    width = 1200 if len(runs) == 1 else 1120 * len(runs)
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">'
        f"<title>reweightlab report: {escape(names)}</title>"
        f"<style>:root {{ --runs: {len(runs)}; --page-width: {width}px; }}{CSS}</style></head>"
        f"<body><main><h1>reweightlab report</h1>{facts}<nav>{nav}</nav>{''.join(body)}</main></body></html>\n"
    )
