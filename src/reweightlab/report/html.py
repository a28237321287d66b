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

from reweightlab.report import figures, tables
from reweightlab.report.claims_figures import claims_names
from reweightlab.report.claims_html import CLAIMS_CSS, claims_section
from reweightlab.report.load import RunData

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
td.sig { font-weight: 700; background: #fdf1cf; }
table.versus td, table.support td { padding: 3px 5px; }
td .ci { display: block; font-size: 11.5px; color: #6b6b70; font-weight: 400; }
td.sig .ci { font-weight: 600; color: inherit; }
caption { text-align: left; font-weight: 600; font-size: 13px; padding: 8px 0 4px; color: #333; }
td.na { color: #aaa; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; }
figure { margin: 0 0 14px; }
figure img { display: block; max-width: 100%; height: auto; }
figcaption, .how { color: #444; font-size: 13px; margin-top: 6px; }
figcaption span, .how span { display: block; }
.note { color: #777; font-style: italic; }
"""


@dataclass(frozen=True)
class Section:
    """One block of the page: `render(run, colors, limits)` returns that run's column as HTML (`limits`: the
    axes every column's figures share)."""

    key: str
    title: str
    render: Callable[[RunData, dict[str, str], figures.Limits], str]


def _figure_html(pic: figures.Picture, how: tuple[str, str]) -> str:
    """A figure and, under it, two lines on how to read it."""
    return (f'<figure><img src="{pic.uri}" width="{pic.width_px}" alt="{escape(pic.alt)}">'
            f"<figcaption><span>{escape(how[0])}</span><span>{escape(how[1])}</span></figcaption></figure>")


def _how(first: str, second: str) -> str:
    """The two lines under a table."""
    return f'<p class="how"><span>{escape(first)}</span><span>{escape(second)}</span></p>'


def _per_variant(run: RunData, table: Callable[[RunData, str, dict[str, str]], str], colors: dict[str, str]) -> str:
    return "".join(table(run, v, colors) for v in run.evals)


ACROSS_HOW = (
    "One row per method: each figure's mean ± std over its {n} training seeds (across_seeds in summary.json; "
    "(n=…) where a figure is defined for fewer seeds); the base row holds the base's own pass@1 and F gap. "
    "Δpass@1 = elicitation + creation: the pass@1 gain on prompts the base reached within its sampling budget "
    "and on prompts it did not.",
    "k*: the k at which the base catches up (Yue et al., arXiv 2504.13837); E / S: prompts reached only by the "
    "model / only by the base; NSCR: net support change; KL/tok: KL(model || base) per token; F gap: free energy "
    "above its optimum at the probe's beta (arXiv 2605.08368). Each seed, with its intervals, is in the next table.",
)
ALONE_HOW = (
    "Each model on its own: pass@k with its 95% bootstrap interval over prompts, the mean reward of a sample, "
    "how many prompts fall in each regime, and the distinct correct solutions it finds per prompt.",
    "F gap: free energy above its optimum at the probe's beta; on the base row, the gap a perfect reweighting of "
    "the base would close (arXiv 2605.08368). The next table sets each trained model against the base.",
)
VERSUS_HOW = (
    "Each trained model against the base: value [low, high], a 95% paired bootstrap interval over prompts. Bold "
    "on a tint marks a difference whose interval excludes 0 (Δpass@1, elicit., creation, NSCR, F gap − base), "
    "whichever its sign; plain text, one whose interval holds 0. k*: the k at which the base catches up (Yue et al., "
    "arXiv 2504.13837; –: not within the measured k; hover for how often it is defined).",
    "E / S: prompts only the model / only the base reached within its budget. KL(model‖base) is measured on the "
    "model's samples; KL(base‖model), the forward KL, on the base's: the direction RL's Razor (arXiv 2509.04259) "
    "links to forgetting. F gap − base: how much further the model sits from the optimal reweighting of the base "
    "than the base itself (arXiv 2605.08368).",
)
SUPPORT_HOW = (
    "A model's support: the prompts (prompt level) or the distinct correct solutions (solution level) it reaches "
    "within its sampling budget. With P reached by both, E by the model only and S by the base only: SRR = "
    "P / (P + S) keeps, NDR = E / (P + E) discovers, SDS is their harmonic mean and NSCR = (E − S) / (P + E + S) "
    "the net change (Wu et al., \"The Invisible Leash\", arXiv 2507.14843); [low, high]: 95% intervals.",
    "SRR near 1 with NDR near 0 is reweighting inside the base's support; a high NDR means new ground. NSCR below "
    "0, bold where its interval excludes 0, means the model lost more than it found; –: an empty denominator.",
)
PASSK_HOW = (
    "Each line is one model's pass@k on held-out prompts (dashed black: the base), the shaded band its 95% "
    "bootstrap interval over prompts; ",
    "A model above the base at k = 1 that meets it at larger k (the crossover k*, Yue et al., arXiv 2504.13837) "
    "made answers the base could already sample more likely; a lead that stays open at large k means it reached "
    "answers the base could not.",
)
SCATTER_HOW = (
    "Each point is one trained model (its colour: its method; every seed is a point): how far it moved from the "
    "base (x, KL(model || base) per token on its own samples) against its pass@1 gain (y), the bars their 95% "
    "intervals; the base sits at the origin.",
    "Up and to the left is efficient (much gain for little movement); below the line the model lost accuracy, "
    "and far to the right at no gain it drifted from the base without helping. Seeds of one method that scatter "
    "widely say the method, at this budget, is not yet reproducible.",
)
FREE_ENERGY_HOW = (
    "The free-energy gap F_beta[model] − F* = beta KL(model || pi*), where pi* is the base reweighted by "
    "exp(reward / beta) (arXiv 2605.08368), against beta on a log scale, split into the part between reward "
    "classes (how the model spreads its mass over rewards) and the part within them (which answer it picks in "
    "a class); the bars are 95% intervals over prompts.",
    "One panel per {panel}, the base's gap as a wide grey line, and a dotted vertical line at the beta the "
    "model trained at, where it has one. Below the base's curve is closer to the optimal reweighting; the "
    "within part is beta times a fixed KL, movement that no reward pays for.",
)
TRANSITIONS_HOW = (
    "Rows: a prompt's regime under the base; columns: under the trained model (one matrix per model, a row of "
    "matrices per training seed); numbers count prompts. basin: solved often; tail: found within the sampling "
    "budget; barrier: not sampled but found by search; singularity: out of reach.",
    "The diagonal is unchanged; counts left of it moved to an easier regime, right of it to a harder one. "
    "Pure reweighting moves tail to basin; only creation moves barrier or singularity up.",
)


def _methods_section(run: RunData, colors: dict[str, str], limits: figures.Limits) -> str:
    if run.kind == "demo":
        how = (ACROSS_HOW[0].format(n=run.num_seeds), ACROSS_HOW[1])
        return _per_variant(run, tables.across_table, colors) + _how(*how)
    return _per_variant(run, tables.alone_table, colors) + _how(*ALONE_HOW)


REVISION_HOW = (
    "Revision episodes: after a failed attempt the verifier's feedback is appended and the model writes again, "
    "up to R attempts (Chu et al., arXiv 2501.17161). attempt 1 and within R come from the same episodes; each "
    "method's row is the mean ± std over its training seeds, the base's its value [95% interval over prompts].",
    "Within R minus attempt 1 is what revision adds at no training; Δwithin is each model's within-episode "
    "success minus the base's, paired over prompts (each seed's interval is in summary.json).",
)


def _revision_section(run: RunData, colors: dict[str, str], limits: figures.Limits) -> str:
    if not any(e["base"].revision for e in run.evals.values()):
        return ('<p class="note">No revision episodes in this run (probe --revision-attempts, demo '
                'revision_attempts).</p>')
    if run.kind != "demo":
        return '<p class="note">Revision figures per model: probe.json (per_model[m].revision).</p>'
    return _per_variant(run, tables.revision_table, colors) + _how(*REVISION_HOW)


def _no_trained(run: RunData) -> str:
    return '<p class="note">No trained model in this folder: nothing to compare with the base.</p>'


def _versus_section(run: RunData, colors: dict[str, str], limits: figures.Limits) -> str:
    if not run.trained:
        return _no_trained(run)
    extra = " train s: wall time of post-training." if run.train_seconds else ""
    return _per_variant(run, tables.versus_table, colors) + _how(VERSUS_HOW[0], VERSUS_HOW[1] + extra)


def _support_section(run: RunData, colors: dict[str, str], limits: figures.Limits) -> str:
    if not run.trained:
        return _no_trained(run)
    return _per_variant(run, tables.support_table, colors) + _how(*SUPPORT_HOW)


def _passk_section(run: RunData, colors: dict[str, str], limits: figures.Limits) -> str:
    if run.kind == "demo":
        which = (f"one line per method, its first training seed ({', '.join(run.first_labels)}); every seed's "
                 "Δpass@1 and k* are in the tables above. A demo probes both rules but trains on the first only.")
    else:
        which = "one line per model in the probe."
    return _figure_html(figures.passk_figure(run, colors, limits), (PASSK_HOW[0] + which, PASSK_HOW[1]))


def _scatter_section(run: RunData, colors: dict[str, str], limits: figures.Limits) -> str:
    if not run.trained:
        return _no_trained(run)
    return _figure_html(figures.scatter_figure(run, colors, limits), SCATTER_HOW)


def _free_energy_section(run: RunData, colors: dict[str, str], limits: figures.Limits) -> str:
    if not any(e.free_energy for ev in run.evals.values() for e in ev.values()):
        return '<p class="note">No free-energy sweep in this folder.</p>'
    panel = ("method: its first seed in full, its other seeds' gaps as thin lines" if run.num_seeds > 1 else
             "model")
    return _figure_html(figures.free_energy_figure(run, colors, limits),
                        (FREE_ENERGY_HOW[0], FREE_ENERGY_HOW[1].format(panel=panel)))


def _training_section(run: RunData, colors: dict[str, str], limits: figures.Limits) -> str:
    if not run.metrics:
        where = ("no trained model's folder holds a training run (config.json and metrics.jsonl in the model's "
                 "folder, or around <run>/final and <run>/checkpoints/step-N)" if run.kind == "probe" else
                 "no metrics.jsonl")
        return f'<p class="note">No training curves: {escape(where)}.</p>'
    by_family = {f: list(dict.fromkeys(run.method_of.get(m, m) for m in run.metrics if run.family.get(m) == f))
                 for f in ("rl", "offline")}
    missing = [m for m in run.trained if m not in run.metrics]
    first = ("Per-step logs from each trained model's metrics.jsonl"
             + (" (found beside each model's folder)" if run.kind == "probe" else "")
             + ", one line per seed in its method's colour. RL: "
             + (", ".join(by_family["rl"]) or "none") + "; offline (weighted NLL on fixed data): "
             + (", ".join(by_family["offline"]) or "none") + "."
             + (f" No training log for {', '.join(missing)}." if missing else ""))
    second = ("The offline loss is a weighted NLL and the RL loss a clipped surrogate whose value is not a "
              "likelihood, so each has its own axes; rising reward with a KL that levels off is healthy RL.")
    return _figure_html(figures.training_figure(run, colors, limits), (first, second))


def _transitions_section(run: RunData, colors: dict[str, str], limits: figures.Limits) -> str:
    if not any(run.transitions.values()):
        return '<p class="note">No regime transitions in this folder.</p>'
    return _figure_html(figures.transitions_figure(run, colors, limits), TRANSITIONS_HOW)


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


def _control_section(run: RunData, colors: dict[str, str], limits: figures.Limits) -> str:
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
    Section("methods", "Methods at a glance", _methods_section),
    Section("versus", "Each trained model against the base, with 95% intervals", _versus_section),
    Section("passk", "pass@k against k", _passk_section),
    Section("gain-vs-kl", "Gain against distance from the base", _scatter_section),
    Section("support", "Support: what each model keeps and finds", _support_section),
    Section("free-energy", "Free-energy gap against beta", _free_energy_section),
    Section("training", "Training curves", _training_section),
    Section("transitions", "Regime transitions: where each prompt moved", _transitions_section),
    Section("revision", "Revision: success at the first attempt and within R attempts", _revision_section),
)
# Shown only when some folder holds the section's file: (section, is it there for this run?).
OPTIONAL_SECTIONS = (
    (Section("control", "Control policies from offline data", _control_section),
     lambda run: (run.path / CONTROL_FILE).is_file()),
)
# First of all when some folder holds a study's claims.json: each claim with its verdict (claims_html.py).
CLAIMS_SECTION = Section("claims", "Claims: the papers' findings and our verdicts",
                         lambda run, colors, _limits: claims_section(run, colors))
NO_LM_RESULTS = {"control": "a control run", "claims": "a study's claims only"}


def _sections(runs: list[RunData]) -> list[Section]:
    """The claims when some folder has them; the language-model sections unless every folder is a control run
    or a study's claims alone; then the optional ones present."""
    first = [CLAIMS_SECTION] if any(r.claims is not None for r in runs) else []
    lm = list(SECTIONS) if any(r.kind not in NO_LM_RESULTS for r in runs) else []
    return [*first, *lm, *(s for s, present in OPTIONAL_SECTIONS if any(present(r) for r in runs))]


def _render(section: Section, run: RunData, colors: dict[str, str], limits: figures.Limits) -> str:
    if run.kind in NO_LM_RESULTS and section in SECTIONS:  # side by side with a language-model run
        return f'<p class="note">No language-model results in this folder ({NO_LM_RESULTS[run.kind]}).</p>'
    return section.render(run, colors, limits)


def render_page(runs: list[RunData]) -> str:
    """The whole page for one run, or several side by side (one column per run in every section)."""
    names = [r.method_of.get(m, m) for r in runs for m in r.models]  # and the methods only the claims name:
    colors = figures.palette(names + claims_names([r.claims for r in runs if r.claims is not None]))
    for r in runs:  # every trained model in its method's colour
        colors |= {m: colors[r.method_of.get(m, m)] for m in r.models}
    limits = figures.shared_limits(runs)
    names = " vs ".join(r.name for r in runs)
    facts = "".join(f'<p class="facts"><b>{escape(r.name)}</b>: {escape(f)}</p>' for r in runs for f in r.facts)
    if len(runs) > 1:
        facts += ('<p class="facts">Side by side: a figure has the same axes in every column, and a method or '
                  "model the same colour on every page.</p>")
    sections = _sections(runs)
    nav = "".join(f'<a href="#{s.key}">{escape(s.title)}</a>' for s in sections)
    body = []
    for s in sections:
        cols = "".join(
            f'<div class="col">{f"<h3 class=run>{escape(r.name)}</h3>" if len(runs) > 1 else ""}'
            f"{_render(s, r, colors, limits)}</div>" for r in runs)
        body.append(f'<section id="{s.key}"><h2>{escape(s.title)}</h2><div class="cols">{cols}</div></section>')
    width = 1200 if len(runs) == 1 else 1120 * len(runs)
    css = CSS + (CLAIMS_CSS if CLAIMS_SECTION in sections else "")
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">'
        f"<title>reweightlab report: {escape(names)}</title>"
        f"<style>:root {{ --runs: {len(runs)}; --page-width: {width}px; }}{css}</style></head>"
        f"<body><main><h1>reweightlab report</h1>{facts}<nav>{nav}</nav>{''.join(body)}</main></body></html>\n"
    )
