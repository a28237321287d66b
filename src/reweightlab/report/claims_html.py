"""The Claims section: one panel per claim of claims.json, the page's first section when a folder has one.

A panel holds the claim's title and source, its verdict as a coloured badge (supported: green, not
supported: red, inconclusive: amber, not run: grey) with the reason, the statement, what the paper reports
and what we measured, the claim's figures and two lines on how to read them, a table of the parts that
decided it (each with its 95% interval; every seed's value on a smaller line, its interval on hover), any
extra tables, and what differs from the paper's setting. The verdict rule and the budget unit come first.
"""

from __future__ import annotations

import math
import re
from html import escape

from reweightlab.report.claims import VERDICTS, Cell, Claim, Claims, Part, Table
from reweightlab.report.claims_figures import claim_figure
from reweightlab.report.load import RunData

CLAIMS_CSS = """
.claims-rule { margin: 0 0 4px; }
.claims-budget { margin: 0 0 14px; color: #555; font-size: 13px; }
.claim { border: 1px solid #e3e3e6; border-left: 4px solid var(--verdict); border-radius: 6px;
         padding: 12px 14px; margin: 0 0 16px; background: #fcfcfd; }
.claim header { display: flex; align-items: baseline; gap: 12px; flex-wrap: wrap; }
.claim h3 { font-size: 15px; margin: 0; }
.claim .cid { color: #777; font-weight: 600; margin-right: 4px; }
.claim p { margin: 4px 0; }
.claim .source, .claim .why { color: #555; font-size: 13px; }
.claim .statement { font-size: 14px; }
.claim .vs span { display: block; }
.claim .differs { color: #555; font-size: 13px; margin-top: 8px; }
.badge { display: inline-block; padding: 1px 9px; border-radius: 10px; font-size: 12px; font-weight: 600;
         color: #fff; background: var(--verdict); white-space: nowrap; }
.badge.small { font-size: 11px; padding: 0 7px; }
.badge.v-inconclusive { color: #3b2900; }
.claim-figs { display: flex; flex-wrap: wrap; gap: 14px; margin: 10px 0 0; }
.claim-figs figure { margin: 0; }
table.parts td:nth-child(2), table.parts td:nth-child(3) { text-align: left; }
td .seeds { display: block; font-size: 11px; color: #6b6b70; }
tr.ref-head th { text-align: left; font-weight: 400; font-style: italic; color: #777; }
"""


# the badge's colour, and the panel's left edge, per verdict
VERDICT_COLORS = dict(zip(VERDICTS, ("#2e7d32", "#c62828", "#e9a100", "#8e8e93"), strict=True))


def verdict_class(verdict: str) -> str:
    """The CSS class of a verdict ("not supported" -> "v-not-supported")."""
    return "v-" + re.sub(r"[^a-z0-9]+", "-", verdict.lower()).strip("-")


CLAIMS_CSS += "".join(f".{verdict_class(v)} {{ --verdict: {c}; }}\n" for v, c in VERDICT_COLORS.items())


def _decimals(xs) -> int:
    """Decimals for numbers shown together (a value and its interval): about three significant digits."""
    m = max((abs(x) for x in xs if x is not None and math.isfinite(x)), default=0.0)
    if m >= 100:
        return 0
    if m >= 10:
        return 1
    if m >= 1:
        return 2
    return 3 if m == 0 else min(6, max(3, 1 - math.floor(math.log10(m))))


def number(x: float | None, decimals: int) -> str:
    if x is None:
        return "–"
    if not math.isfinite(x):
        return str(x)
    text = f"{x:.{decimals}f}"
    return text[1:] if re.fullmatch(r"-0\.?0*", text) else text  # no "-0.000"


def interval_text(lo: float | None, hi: float | None, decimals: int) -> str:
    return "–" if lo is None and hi is None else f"[{number(lo, decimals)}, {number(hi, decimals)}]"


def _badge(verdict: str, small: bool = False) -> str:
    return f'<span class="badge{" small" if small else ""} {verdict_class(verdict)}">{escape(verdict)}</span>'


def _seeds(part: Part, decimals: int) -> str:
    if not part.per_seed:
        return ""
    line = " · ".join(f"s{s.seed} {number(s.value, decimals)}" for s in part.per_seed)
    tip = "; ".join(f"seed {s.seed}: {number(s.value, decimals)} {interval_text(s.lo, s.hi, decimals)}"
                    for s in part.per_seed)
    return f'<span class="seeds" title="{escape(tip)}">{escape(line)}</span>'


PART_HEADS = (("part", ""), ("quantity", ""), ("kind", "what the claim needs of the quantity (see the rule above)"),
              ("value", "pooled over seeds; each seed's value below (hover for its interval)"),
              ("95% interval", ""), ("verdict", ""))


def _part_row(p: Part, attr: str) -> str:
    d = _decimals([p.value, p.lo, p.hi])
    verdict = _badge(p.verdict, small=True) if p.verdict in VERDICT_COLORS else escape(p.verdict)
    na = ' class="na"' if p.value is None else ""
    return (f'<tr {attr}="{escape(p.name)}"><th scope="row">{escape(p.name)}</th><td>{escape(p.quantity)}</td>'
            f'<td title="{escape(p.kind)}">{escape(p.kind.replace("_", " "))}</td>'
            f"<td{na}>{escape(number(p.value, d))}{_seeds(p, d)}</td>"
            f"<td>{escape(interval_text(p.lo, p.hi, d))}</td><td>{verdict}</td></tr>")


def parts_table(claim: Claim) -> str:
    """The parts that decided the verdict, then any shown for reference only."""
    rows = [_part_row(p, "data-part") for p in claim.parts]
    if claim.reference:
        rows.append(f'<tr class="ref-head"><th colspan="{len(PART_HEADS)}">for reference, not part of the verdict'
                    "</th></tr>")
        rows += [_part_row(p, "data-reference") for p in claim.reference]
    head = "".join(f'<th title="{escape(t)}">{escape(h)}</th>' if t else f"<th>{escape(h)}</th>"
                   for h, t in PART_HEADS)
    return (f'<div class="scroll"><table class="parts" data-claim="{escape(claim.id)}"><caption>What decided the '
            f"verdict</caption><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>")


def _cell(x: Cell, decimals: int) -> str:
    if x is None:
        return '<td class="na">–</td>'
    if isinstance(x, str):
        return f'<td style="text-align:left">{escape(x)}</td>'
    return f"<td>{escape(str(x) if isinstance(x, int) else number(x, decimals))}</td>"


def extra_table(table: Table, claim_id: str) -> str:
    """A claim's own table; the numbers of a column share their decimals."""
    decimals = [_decimals([r[j] for r in table.rows if isinstance(r[j], float)]) for j in range(len(table.columns))]
    head = "".join(f"<th>{escape(c)}</th>" for c in table.columns)
    body = "".join("<tr>" + "".join(_cell(x, d) for x, d in zip(row, decimals, strict=True)) + "</tr>"
                   for row in table.rows)
    return (f'<div class="scroll"><table class="claim-table" data-claim="{escape(claim_id)}"><caption>'
            f"{escape(table.title)}</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>")


def _anchor(claim_id: str) -> str:
    return "claim-" + (re.sub(r"[^A-Za-z0-9_-]+", "-", claim_id) or "x")


def claim_panel(claim: Claim, colors: dict[str, str]) -> str:
    pics = [claim_figure(f, colors, f"claim {claim.id}, figure {i + 1}: {f.title}")
            for i, f in enumerate(claim.figures)]
    figs = "".join(f'<figure><img src="{p.uri}" width="{p.width_px}" alt="{escape(p.alt)}"></figure>' for p in pics)
    how = "".join(f"<span>{escape(line)}</span>" for line in claim.how_to_read if line.strip())
    return "".join((
        f'<article class="claim {verdict_class(claim.verdict)}" id="{_anchor(claim.id)}" '
        f'data-claim="{escape(claim.id)}" data-verdict="{escape(claim.verdict)}">',
        f'<header><h3><span class="cid">{escape(claim.id)}</span>{escape(claim.title)}</h3>{_badge(claim.verdict)}'
        "</header>",
        f'<p class="source">{escape(claim.source)}</p>',
        f'<p class="why">{escape(claim.why)}</p>' if claim.why else "",
        f'<p class="statement">{escape(claim.statement)}</p>',
        f'<p class="vs"><span><b>paper:</b> {escape(claim.paper_figure)}</span>'
        f"<span><b>ours:</b> {escape(claim.ours)}</span></p>",
        f'<div class="claim-figs">{figs}</div>' if figs else "",
        f'<p class="how">{how}</p>' if how else "",
        parts_table(claim) if claim.parts or claim.reference else "",
        "".join(extra_table(t, claim.id) for t in claim.tables),
        f'<p class="differs"><b>differs from the paper:</b> {escape(claim.differs)}</p>' if claim.differs else "",
        "</article>",
    ))


def claims_html(claims: Claims, colors: dict[str, str]) -> str:
    """The rule, the budget unit, then one panel per claim in the file's order."""
    rule = claims.rule
    facts = [f"{rule.confidence:.0%} confidence" if rule.confidence is not None else "",
             f"margin {rule.margin:g}" if rule.margin is not None else "",
             f"{rule.resamples} resamples" if rule.resamples is not None else "", rule.interval or ""]
    tip = ", ".join(f for f in facts if f)
    title = f' title="{escape(tip)}"' if tip else ""
    return (f'<p class="claims-rule"{title}><b>Verdict rule:</b> {escape(rule.text)}</p>'
            f'<p class="claims-budget"><b>Budget:</b> {escape(claims.budget_unit)}</p>'
            + "".join(claim_panel(c, colors) for c in claims.claims))


def claims_section(run: RunData, colors: dict[str, str]) -> str:
    """The section's column for one run (a note where the folder has no claims.json)."""
    if run.claims is None:
        return '<p class="note">No claims.json in this folder.</p>'
    return claims_html(run.claims, colors)
