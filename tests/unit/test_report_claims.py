"""The report's Claims section, from a claims.json written here beside a demo folder in miniature: first in
the nav and the body, one panel per claim with its verdict badge, parts with their intervals, figures of
the three generic kinds (nulls left out, each method in the page's colour) and the how-to-read lines; no
section without the file; and a malformed file named with its bad key, nothing written."""

from __future__ import annotations

import copy
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from matplotlib.colors import to_hex
from test_report import write_demo_folder, write_probe_folder

from reweightlab.report import ReportError, figures, write_report
from reweightlab.report.html import SECTIONS

LINES = {"kind": "lines", "title": "pass@1 against training sequences", "x_label": "sequences", "y_label": "pass@1",
         "x_log": True,
         "series": [{"name": "sft", "x": [100, 400, 1600], "y": [0.10, None, 0.20], "lo": [0.05, 0.08, 0.15],
                     "hi": [0.15, 0.20, 0.25], "dashed": False, "marker": True},
                    {"name": "iw_sft: J", "x": [100, 400, 1600], "y": [0.12, 0.18, 0.26], "dashed": False,
                     "marker": True},
                    {"name": "iw_sft: SFT bound", "x": [100, 400, 1600], "y": [0.11, 0.15, 0.21], "dashed": False,
                     "marker": True},
                    {"name": "grpo", "x": [100, 400, 1600], "y": [0.09, float("nan"), 0.30], "lo": None, "hi": None,
                     "dashed": True, "marker": False}],
         "vlines": [{"x": 400, "label": "paper's budget"}]}
INTERVALS = {"kind": "intervals", "title": "Δpass@1 against the base", "x_label": "Δpass@1",
             "rows": [{"name": "sft", "value": 0.05, "lo": 0.01, "hi": 0.09},
                      {"name": "grpo", "value": -0.02, "lo": -0.06, "hi": 0.02},
                      {"name": "warmup_rl", "value": None, "lo": None, "hi": None}],
             "band": [-0.01, 0.01]}
BARS = {"kind": "bars", "title": "prompts per regime", "y_label": "prompts", "categories": ["basin", "tail", "barrier"],
        "series": [{"name": "base", "values": [3, 5, 2]}, {"name": "grpo_revision", "values": [4, None, 1]}]}


def _part(name, value, lo, hi, seeds, verdict="supported", kind="greater"):
    return {"name": name, "quantity": f"{name} quantity", "kind": kind, "value": value, "ci95": [lo, hi],
            "per_seed": [{"seed": s, "value": v, "ci95": [v - 0.03, v + 0.03]} for s, v in seeds],
            "verdict": verdict}


def _claim(cid, verdict, figures, parts, **extra):
    return {"id": cid, "title": f"title of {cid}", "source": f"Someone et al., arXiv 2501.0000{cid}", "statement":
            f"statement of {cid}", "paper_figure": f"paper figure of {cid}", "ours": f"our figure of {cid}",
            "verdict": verdict, "why": f"why {cid}", "how_to_read": [f"first line of {cid}", f"second line of {cid}"],
            "differs": f"what differs in {cid}", "parts": parts, "figures": figures, **extra}


CLAIMS = {
    "version": 1,
    "rule": {"text": "supported when every part's 95% interval clears the margin", "confidence": 0.95,
             "margin": 0.01, "resamples": 2000, "interval": "paired bootstrap over prompts"},
    "budget": {"unit": "sequences trained per arm: 6400"},
    "claims": [
        _claim("a", "supported", [LINES], [_part("gain", 0.0312, 0.0041, 0.0583, [(0, 0.030), (1, 0.034)]),
                                           _part("k*", 12.34, 8.51, 16.27, [(0, 12.0), (1, 12.7)], kind="at_least")],
               reference=[_part("grpo - sft", float("nan"), None, None, [(0, 0.5)], "inconclusive")]),
        _claim("b", "not supported", [INTERVALS, BARS],
               [_part("drop", -0.02, -0.06, 0.02, [(0, -0.02)], "not supported", kind="less")]),
        _claim("c", "inconclusive", [copy.deepcopy(BARS)], [_part("width", None, None, None, [], "inconclusive")],
               tables=[{"title": "per seed", "columns": ["seed", "pass@1", "note"],
                        "rows": [[0, 0.1234, "first"], [1, None, "second"]]}]),
        _claim("d", "not run", [], [], how_to_read=["", ""], why="needs a 7B model", differs="", ours="not run"),
    ],
}
NUM_FIGURES = 4
BADGES = {"a": "v-supported", "b": "v-not-supported", "c": "v-inconclusive", "d": "v-not-run"}


def _folder(tmp_path: Path, claims: dict | None = CLAIMS) -> Path:
    run = write_demo_folder(tmp_path / "run")
    if claims is not None:
        (run / "claims.json").write_text(json.dumps(claims))
    return run


class _Claims(HTMLParser):
    """Section ids in order, nav targets, images per section, and in the claims section: each panel's verdict,
    badge classes, texts by class and its parts table's rows (cell texts and the per-seed tooltips)."""

    def __init__(self):
        super().__init__()
        self.sections, self.nav, self.images = [], [], {}
        self.panels: dict[str, dict] = {}
        self._section = self._panel = self._cls = self._row = self._cell = None
        self._cells: list[str] = []
        self._stack: list[str | None] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        cls = a.get("class") or ""
        if tag == "section":
            self._section = a["id"]
            self.sections.append(a["id"])
        elif tag == "a" and "href" in a:
            self.nav.append(a["href"])
        elif tag == "img":
            self.images.setdefault(self._section, []).append(a["alt"])
        elif tag == "article":
            self._panel = {"verdict": a["data-verdict"], "classes": cls.split(), "badges": [], "text": {},
                           "parts": {}, "reference": {}, "tips": {}}
            self.panels[a["data-claim"]] = self._panel
        if self._panel is None:
            return
        if "badge" in cls.split():
            self._panel["badges"].append(cls)
        if tag == "tr" and ("data-part" in a or "data-reference" in a):
            group = "parts" if "data-part" in a else "reference"
            self._row = a.get("data-part", a.get("data-reference"))
            self._cells = self._panel[group][self._row] = []
        elif tag == "td" and self._row:
            self._cell = ""
        elif tag == "span" and cls == "seeds":
            self._panel["tips"][self._row] = a["title"]
        if tag not in ("img", "br"):
            self._stack.append(cls.split()[0] if cls else None)

    def handle_data(self, data):
        if self._panel is None:
            return
        if self._cell is not None:
            self._cell += data
        for cls in {c for c in self._stack if c}:
            self._panel["text"].setdefault(cls, []).append(data)

    def handle_endtag(self, tag):
        if self._panel is None:
            return
        if tag == "td" and self._cell is not None:
            self._cells.append(self._cell)
            self._cell = None
        elif tag == "tr":
            self._row = None
        if tag == "article":
            self._panel = None
            self._stack = []
        elif self._stack:
            self._stack.pop()


def _parse(path: Path) -> _Claims:
    p = _Claims()
    p.feed(path.read_text(encoding="utf-8"))
    return p


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """The demo folder with CLAIMS, rendered once: (report.html, every figure drawn by its alt text)."""
    run = _folder(tmp_path_factory.mktemp("claims"))
    drawn: dict = {}
    original = figures._picture

    def keep(fig, alt):
        drawn[alt] = fig
        return original(fig, alt)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(figures, "_picture", keep)
        out = write_report([run])
    return out, drawn


def _text(panel: dict, cls: str) -> str:
    return "".join(panel["text"].get(cls, []))


def test_claims_come_first_with_a_panel_per_claim(rendered):
    out, _ = rendered
    page = _parse(out)
    assert page.sections[0] == "claims" and page.nav[0] == "#claims"
    assert page.sections[1:] == [h[1:] for h in page.nav[1:]]  # every other section, in the nav's order
    assert "methods" in page.sections and len(page.sections) == len(page.nav)
    assert list(page.panels) == ["a", "b", "c", "d"]
    for cid, claim in zip("abcd", CLAIMS["claims"], strict=True):
        panel = page.panels[cid]
        assert panel["verdict"] == claim["verdict"]
        assert BADGES[cid] in panel["classes"]
        assert panel["badges"][0] == f"badge {BADGES[cid]}"
        assert _text(panel, "badge").startswith(claim["verdict"])
        assert _text(panel, "statement") == claim["statement"]
        assert _text(panel, "source") == claim["source"] and _text(panel, "why") == claim["why"]
        assert _text(panel, "vs") == f"paper: {claim['paper_figure']}ours: {claim['ours']}"
        assert _text(panel, "differs") == (f"differs from the paper: {claim['differs']}" if claim["differs"] else "")
        assert _text(panel, "how") == "".join(claim["how_to_read"])  # no empty paragraph for a claim not run
    text = out.read_text(encoding="utf-8")
    assert "Verdict rule:</b> supported when every part&#x27;s 95% interval clears the margin" in text
    assert "<b>Budget:</b> sequences trained per arm: 6400" in text
    assert 'title="95% confidence, margin 0.01, 2000 resamples, paired bootstrap over prompts"' in text


def test_parts_show_values_intervals_and_every_seed(rendered):
    page = _parse(rendered[0])
    a = page.panels["a"]
    assert a["parts"]["gain"] == ["gain quantity", "greater", "0.031s0 0.030 · s1 0.034", "[0.004, 0.058]",
                                  "supported"]
    assert a["tips"]["gain"] == "seed 0: 0.030 [0.000, 0.060]; seed 1: 0.034 [0.004, 0.064]"
    assert a["parts"]["k*"] == ["k* quantity", "at least", "12.3s0 12.0 · s1 12.7", "[8.5, 16.3]", "supported"]
    assert a["reference"]["grpo - sft"] == ["grpo - sft quantity", "greater", "–s0 0.500", "–", "inconclusive"]
    assert list(a["parts"]) == ["gain", "k*"]  # a reference row is not a part
    assert page.panels["b"]["parts"]["drop"] == ["drop quantity", "less", "-0.020s0 -0.020", "[-0.060, 0.020]",
                                                 "not supported"]
    assert page.panels["b"]["badges"][1] == "badge small v-not-supported"  # the part's verdict, as a small badge
    assert page.panels["c"]["parts"]["width"] == ["width quantity", "greater", "–", "–", "inconclusive"]
    assert page.panels["d"]["parts"] == {} and "parts" not in page.panels["d"]["text"]  # not run: no parts table
    assert _text(page.panels["c"], "claim-table").startswith("per seedseedpass@1note0")
    assert "0.123first" in _text(page.panels["c"], "claim-table")
    assert "1–second" in _text(page.panels["c"], "claim-table")


def test_one_image_per_claim_figure(rendered):
    page = _parse(rendered[0])
    assert len(page.images["claims"]) == NUM_FIGURES
    assert [alt.split(",")[0] for alt in page.images["claims"]] == ["claim a", "claim b", "claim b", "claim c"]
    others = [alt for s, alts in page.images.items() if s != "claims" for alt in alts]
    assert len(others) == 5  # the rest of the page as without claims
    assert len(rendered[1]) == NUM_FIGURES + 5


def _drawn_claim(drawn: dict, prefix: str):
    (fig,) = [f for alt, f in drawn.items() if alt.startswith(prefix)]
    return fig


def test_lines_skip_nulls_and_colour_by_method(rendered):
    out, drawn = rendered
    text = out.read_text(encoding="utf-8")
    swatch = dict(re.findall(r'data-model="([\w-]+)"><th scope="row"><span class="swatch" style="background:(#\w+)"',
                             text))
    fig = _drawn_claim(drawn, "claim a, figure 1")
    ax = fig.axes[0]
    lines = [ln for ln in ax.get_lines() if ln.get_label() in {s["name"] for s in LINES["series"]}]
    by_name = {ln.get_label(): ln for ln in lines}
    assert list(by_name) == [s["name"] for s in LINES["series"]]
    sft, j, bound, grpo = (by_name[s["name"]] for s in LINES["series"])
    assert list(sft.get_xdata()) == [100, 1600] and list(sft.get_ydata()) == [0.10, 0.20]  # the null left out
    assert list(grpo.get_xdata()) == [100, 1600] and list(grpo.get_ydata()) == [0.09, 0.30]  # and the NaN
    assert to_hex(sft.get_color()) == swatch["sft"] and to_hex(grpo.get_color()) == swatch["grpo"]
    assert to_hex(j.get_color()) == to_hex(bound.get_color()) not in set(swatch.values())  # iw_sft: one colour
    assert (j.get_linestyle(), j.get_marker()) != (bound.get_linestyle(), bound.get_marker())
    assert grpo.get_linestyle() == "--" and sft.get_linestyle() == "-"
    assert ax.get_xscale() == "log"
    band = ax.collections[0].get_paths()[0].vertices  # sft's 95% band, at every x where lo and hi are given
    assert {round(float(x)) for x in band[:, 0]} == {100, 400, 1600}
    assert min(band[:, 1]) == pytest.approx(0.05) and max(band[:, 1]) == pytest.approx(0.25)
    fig.canvas.draw()  # the legend sits below the axes and their labels, overlapping nothing
    legend, axes_box = fig.legends[0].get_window_extent(), ax.get_tightbbox()
    assert legend.y1 <= axes_box.y0 + 1e-6
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [s["name"] for s in LINES["series"]]


def test_intervals_and_bars_leave_nulls_out(rendered):
    drawn = rendered[1]
    ax = _drawn_claim(drawn, "claim b, figure 1").axes[0]
    points = [c.lines[0] for c in ax.containers]
    assert len(points) == 2  # warmup_rl has no value: no point, not a point at 0
    assert [float(p.get_xdata()[0]) for p in points] == [0.05, -0.02]
    assert [float(p.get_ydata()[0]) for p in points] == [2, 1]  # the first row on top
    segments = [seg for c in ax.containers for seg in c.lines[2][0].get_segments()]
    assert [(float(s[0][0]), float(s[1][0])) for s in segments] == [pytest.approx((0.01, 0.09)),
                                                                    pytest.approx((-0.06, 0.02))]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["warmup_rl", "grpo", "sft"]
    assert any(abs(ln.get_xdata()[0]) < 1e-12 and ln.get_xdata()[0] == ln.get_xdata()[1] for ln in ax.get_lines())
    band = [p for p in ax.patches if p.get_alpha() == 0.1]
    assert len(band) == 1 and band[0].get_extents().width > 0  # the band shaded
    bars = _drawn_claim(drawn, "claim b, figure 2").axes[0]
    heights = [[p.get_height() for p in c] for c in bars.containers]
    assert heights == [[3, 5, 2], [4, 1]]  # grpo_revision's null: no bar
    assert to_hex(bars.containers[0][0].get_facecolor()) == "#222222"  # the base in the page's near-black


def test_no_claims_file_no_claims_section(tmp_path):
    out = write_report([write_probe_folder(tmp_path / "probe")])
    page, text = _parse(out), out.read_text(encoding="utf-8")
    assert page.sections == [s.key for s in SECTIONS] and page.nav == [f"#{s.key}" for s in SECTIONS]
    assert not page.panels and 'id="claims"' not in text and "claims-rule" not in text and ".badge" not in text


def test_a_study_folder_with_claims_only_and_beside_a_probe(tmp_path):
    study = tmp_path / "study"
    study.mkdir()
    (study / "claims.json").write_text(json.dumps(CLAIMS))
    page = _parse(write_report([study]))
    assert page.sections == ["claims"] and list(page.panels) == ["a", "b", "c", "d"]
    probe = write_probe_folder(tmp_path / "probe")
    out = write_report([probe, study])
    page, text = _parse(out), out.read_text(encoding="utf-8")
    assert page.sections[0] == "claims" and "passk" in page.sections
    assert "No claims.json in this folder." in text and "a study's claims only" in text


def _broken(case: str) -> tuple[dict, str]:
    """claims.json with one fault, and what the error must say besides the file's path."""
    c = copy.deepcopy(CLAIMS)
    if case == "no-verdict":
        del c["claims"][1]["verdict"]
        return c, "claims[1] (id 'b'): missing key 'verdict'"
    if case == "bad-verdict":
        c["claims"][0]["verdict"] = "true"
        return c, "claims[0] (id 'a').verdict: 'true' is not one of"
    if case == "part-value":
        c["claims"][0]["parts"][1]["value"] = "12.3"
        return c, "claims[0] (id 'a').parts[1].value: expected int or float or null, found str"
    if case == "figure-kind":
        c["claims"][2]["figures"][0]["kind"] = "pie"
        return c, "claims[2] (id 'c').figures[0].kind: 'pie' is not one of"
    if case == "series-length":
        c["claims"][0]["figures"][0]["series"][1]["y"].pop()
        return c, "claims[0] (id 'a').figures[0].series[1].y: 2 values for 3 x values"
    if case == "rule-text":
        del c["rule"]["text"]
        return c, "rule: missing key 'text'"
    if case == "version":
        c["version"] = 2
        return c, "version: 2: this report reads version 1"
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["no-verdict", "bad-verdict", "part-value", "figure-kind", "series-length",
                                  "rule-text", "version"])
def test_a_malformed_claims_file_is_named_with_its_key(tmp_path, case):
    claims, what = _broken(case)
    run = _folder(tmp_path, claims)
    with pytest.raises(ReportError) as info:
        write_report([run])
    assert str(info.value).startswith(f"{run / 'claims.json'}: ")
    assert what in str(info.value), str(info.value)
    assert not (run / "report.html").exists()


def test_claims_file_that_is_not_json(tmp_path):
    run = _folder(tmp_path)
    (run / "claims.json").write_text('{"version": 1, "rule": ')
    with pytest.raises(ReportError, match=re.escape(f"{run / 'claims.json'} is not valid JSON")):
        write_report([run])
