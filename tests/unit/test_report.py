"""`reweightlab report` on small run folders written here (probe.json version 2, summary.json with
several training seeds per method): one self-contained file, values as in the JSON, the across-seeds
and per-seed tables, marked differences, the support table, the free-energy sweep, probe-only,
control-only and side-by-side pages, and clear errors that leave no partial file."""

from __future__ import annotations

import base64
import json
import re
import statistics
from html.parser import HTMLParser
from pathlib import Path

import pytest

from reweightlab.cli import main
from reweightlab.report import ReportError, write_report
from reweightlab.report.html import SECTIONS

KS = (1, 2, 4)
REGIMES = ("basin", "tail", "barrier", "singularity")
BETAS = (0.1, 1.0, 3.0)
METHODS = {"sft": 0.25, "grpo": 0.40}  # method -> pass@1 in distribution (the base has 0.125)
SEEDS = (0, 1)
LABELS = [f"{m}-s{s}" for m in METHODS for s in SEEDS]


def _iv(value, lo, hi) -> dict:
    return {"value": value, "ci95": [lo, hi]}


def _model(p1: float) -> dict:
    pk = {str(k): min(1.0, p1 * k ** 0.5) for k in KS}
    return {"pass_at_k": pk, "pass_at_k_ci95": {k: [v * 0.5, min(1.0, v * 1.5)] for k, v in pk.items()},
            "mean_reward": -1.0, "regimes": dict.fromkeys(REGIMES, 1),
            "diversity": {"distinct_solutions_per_prompt": p1 * 2, "solution_entropy_per_prompt": 0.1}}


def _sweep(shift: float, clear: bool | None) -> dict:
    """free_energy by beta; `clear` (trained models only): gap_minus_base's interval excludes 0, else holds it."""
    out = {}
    for b in BETAS:
        between, within = 2.0 / b, 0.0 if clear is None else (0.5 + shift) * b
        out[f"{b:g}"] = {"gap": _iv(between + within, between + within - 0.2, between + within + 0.2),
                         "between": _iv(between, between - 0.1, between + 0.1),
                         "within": _iv(within, within - 0.1, within + 0.1), "F": 1.0, "F_star": -1.0}
        if clear is not None:
            out[f"{b:g}"]["gap_minus_base"] = _iv(within, within * 0.5, within * 1.5) if clear else _iv(0.1, -0.2, 0.4)
    return out


def _vs(i: int, gain: float, clear: bool) -> dict:
    """A trained model against the base; `clear`: its differences' intervals exclude 0, else they hold it."""
    ci = (lambda v: _iv(v, v * 0.5, v * 1.5)) if clear else (lambda v: _iv(v, -abs(v), 2 * abs(v)))
    ratios = {"SRR": _iv(0.9, 0.8, 1.0), "NDR": _iv(0.1 * (i + 1), 0.0, 0.3), "SDS": _iv(None, None, None),
              "NSCR": ci(0.05 * (i + 1))}
    return {
        "delta_pass_at_k": {str(k): ci(gain * k ** 0.5) for k in KS},
        "crossover_k": {"value": 3.5 if clear else None, "ci95": [2.0, 4.0], "defined": 0.6, "not_ahead_at_k1": 0.1},
        "transitions": {a: {b: (2 if a == b else i) for b in REGIMES} for a in REGIMES},
        # an interval that touches 0 holds it: not marked
        "pass1_gain": {"total": ci(gain), "elicitation": ci(gain * 0.75),
                       "creation": ci(gain * 0.25) if clear else _iv(gain * 0.25, 0.0, gain * 0.5),
                       "by_base_regime": {}},
        "support_prompts": {"P": _iv(3.0, 2.0, 4.0), "E": _iv(1.0 + i, 0.0, 3.0), "S": _iv(0.0, 0.0, 1.0),
                            "neither": _iv(1.0, 0.0, 2.0), **ratios},
        "support_solutions": {"P": _iv(5.0, 4.0, 6.0), "E": _iv(2.0, 1.0, 3.0), "S": _iv(1.0, 0.0, 2.0),
                              **{k: _iv(v["value"] and v["value"] / 2, None, None) for k, v in ratios.items()}},
        "diversity": {"delta_distinct_solutions": ci(0.1), "delta_solution_entropy": ci(0.05)},
        "distance": {
            "reverse": {"kl_exact_per_token": 0.1 * (i + 1), "kl_exact_per_token_ci95": [0.05, 0.2 * (i + 1)]},
            "forward": {"kl_exact_per_token": 0.07 * (i + 1), "kl_exact_per_token_ci95": [0.03, 0.1 * (i + 1)]}},
        "base_loglik_of_successes": {"n": 2},
        "free_energy": _sweep(0.1 * i, clear),
        "training_beta": 0.1 if clear else None,
    }


def _probe(variant: str, scale: float, labels: dict[str, float] | None = None, methods: dict | None = None) -> dict:
    """probe.json (version 2) of the base and `labels` (label -> pass@1); grpo-like labels differ clearly."""
    labels = labels or {f"{m}-s{s}": p1 + 0.01 * s for m, p1 in (methods or METHODS).items() for s in SEEDS}
    per_model = {"base": {**_model(0.125 * scale), "free_energy": _sweep(0.0, None)}}
    vs_base = {}
    for i, (label, p1) in enumerate(labels.items()):
        per_model[label] = _model(p1 * scale)
        vs_base[label] = _vs(i, (p1 - 0.125) * scale, clear=label.startswith("grpo"))
    return {"version": 2, "task": "generalpoints", "variant": variant, "split": "test", "num_prompts": 4,
            "estimator": "sampling", "independence": "each model samples with its own seed",
            "betas": list(BETAS), "settings": {"n": 4, "beta": 1.0},
            "models": {m: f"/elsewhere/{m}" for m in per_model}, "per_model": per_model, "vs_base": vs_base,
            "seconds": 1.0}


def _spread(values: list) -> dict:
    xs = [x for x in values if x is not None]
    if not xs:
        return {"mean": None, "std": None, "min": None, "max": None, "n": 0}
    return {"mean": statistics.mean(xs), "std": statistics.stdev(xs) if len(xs) > 1 else None,
            "min": min(xs), "max": max(xs), "n": len(xs)}


def _across_seeds(probes: dict, methods: dict = METHODS) -> dict:
    """summary.json's across_seeds, from the probes the way the demo builds it."""
    figs = {"pass1": lambda p, v: p["per_model"][v]["pass_at_k"]["1"],
            "delta_pass1": lambda p, v: p["vs_base"][v]["delta_pass_at_k"]["1"]["value"],
            "crossover_k": lambda p, v: p["vs_base"][v]["crossover_k"]["value"],
            "elicitation": lambda p, v: p["vs_base"][v]["pass1_gain"]["elicitation"]["value"],
            "creation": lambda p, v: p["vs_base"][v]["pass1_gain"]["creation"]["value"],
            "support_E": lambda p, v: p["vs_base"][v]["support_prompts"]["E"]["value"],
            "support_S": lambda p, v: p["vs_base"][v]["support_prompts"]["S"]["value"],
            "NSCR": lambda p, v: p["vs_base"][v]["support_prompts"]["NSCR"]["value"],
            "kl_to_base_per_token": lambda p, v: p["vs_base"][v]["distance"]["reverse"]["kl_exact_per_token"],
            "free_energy_gap": lambda p, v: p["vs_base"][v]["free_energy"]["1"]["gap"]["value"]}
    return {m: {variant: {f: _spread([get(p, f"{m}-s{s}") for s in SEEDS]) for f, get in figs.items()}
                for variant, p in probes.items()} for m in methods}


def write_demo_folder(root: Path, methods: dict = METHODS, scale: float = 1.0) -> Path:
    """A demo run folder in miniature; summary's run_dir paths point elsewhere, as after a move. `methods`:
    method -> pass@1 in distribution; `scale` multiplies every pass@k (another run, on another scale)."""
    probes = {"id": _probe("id", scale, methods=methods), "ood": _probe("ood", 0.5 * scale, methods=methods)}
    for variant, p in probes.items():
        (root / f"probe-{variant}").mkdir(parents=True)
        (root / f"probe-{variant}" / "probe.json").write_text(json.dumps(p))
    for label in (f"{m}-s{s}" for m in methods for s in SEEDS):
        (root / label).mkdir()
        rl = label.startswith(("grpo", "rloo"))  # offline methods log no reward or KL
        rows = [{"step": s, "loss": scale / s, **({"reward": -2 + s * 0.1 * scale, "kl": 0.01 * s} if rl else
                                                 {"weight": 1.0})} for s in range(1, 5 + int(scale))]
        (root / label / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    seeds = {m: {"seeds": {str(s): {"label": f"{m}-s{s}", "run_dir": f"/moved/away/{m}-s{s}",
                                    "train_seconds": 1.5 + i + s} for s in SEEDS}} for i, m in enumerate(methods)}
    summary = {"budget": {"sequences_per_method": 64, "eval_prompts": 4, "eval_samples": 4, "train_seeds": list(SEEDS)},
               "quick": True, "seed": 0, "methods": seeds,
               "labels": {f"{m}-s{s}": {"method": m, "seed": s} for m in methods for s in SEEDS},
               "eval": {}, "across_seeds": _across_seeds(probes, methods), "total_seconds": 9.0,
               "probe": {v: {"dir": f"probe-{v}", "seconds": 1.0, "estimator": "sampling", "beta": 1.0}
                         for v in probes}}
    (root / "summary.json").write_text(json.dumps(summary))
    return root


def write_probe_folder(root: Path, labels: dict[str, float] | None = None, variant: str = "ood") -> Path:
    root.mkdir(parents=True)
    (root / "probe.json").write_text(json.dumps(_probe(variant, 1.0, labels or {"copy": 0.125, "grpo": 0.4})))
    return root


class _Page(HTMLParser):
    """Rows of every table as {(table class, variant): {model: [(cell text, cell classes)]}}, images with their
    section, and every src/href attribute."""

    def __init__(self):
        super().__init__()
        self.tables: dict[tuple[str, str], dict[str, list[tuple[str, set[str]]]]] = {}
        self.images: list[tuple[str, str]] = []  # (section id, alt)
        self.links: list[str] = []
        self._section = self._table = self._model = self._cell = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.links += [v for k, v in attrs if k in ("src", "href") and v]
        if tag == "section":
            self._section = a.get("id")
        elif tag == "img":
            self.images.append((self._section, a.get("alt", "")))
        elif tag == "table":
            self._table = self.tables.setdefault((a.get("class"), a.get("data-variant")), {})
        elif tag == "tr" and "data-model" in a and self._table is not None:
            self._model = a["data-model"]
            self._table[self._model] = []
        elif tag == "td" and self._model:
            self._cell, self._classes = "", set((a.get("class") or "").split())

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self._table[self._model].append((self._cell, self._classes))
            self._cell = None
        elif tag == "tr":
            self._model = None
        elif tag == "table":
            self._table = None


def _parse(path: Path) -> _Page:
    p = _Page()
    p.feed(path.read_text(encoding="utf-8"))
    return p


def _texts(row: list[tuple[str, set[str]]]) -> list[str]:
    return [text for text, _ in row]


def _ci(fig: dict, spec: str) -> str:
    return f"{fig['value']:{spec}} [{fig['ci95'][0]:{spec}}, {fig['ci95'][1]:{spec}}]"


def test_report_is_one_self_contained_file(tmp_path):
    run = write_demo_folder(tmp_path / "run")
    out = write_report([run])
    assert out == run / "report.html"
    text = out.read_text(encoding="utf-8")
    page = _parse(out)
    assert [s for s, _ in page.images] == ["passk", "gain-vs-kl", "free-energy", "training", "transitions"]
    images = [x for x in page.links if x.startswith("data:")]
    for uri in images:
        assert base64.b64decode(uri.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    # nothing fetched from anywhere: every src/href is inline data or an anchor on the page
    assert all(x.startswith(("data:image/png;base64,", "#")) for x in page.links), page.links
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text)
    assert "<script" not in text and "<link" not in text and "@import" not in text
    assert text.count("<figcaption><span>") == 5  # two lines under each figure
    for cited in ("2504.13837", "2507.14843", "2605.08368", "2509.04259"):
        assert f"arXiv {cited}" in text, cited


def test_across_seeds_table_has_one_row_per_method(tmp_path):
    run = write_demo_folder(tmp_path / "run")
    page = _parse(write_report([run]))
    summary = json.loads((run / "summary.json").read_text())
    probe = json.loads((run / "probe-id" / "probe.json").read_text())
    for variant in ("id", "ood"):
        rows = page.tables["methods", variant]
        assert list(rows) == ["base", *METHODS]  # the base, then one row per method, not per seed
        for m in METHODS:
            cells, spread = _texts(rows[m]), summary["across_seeds"][m][variant]
            assert cells[0] == f"{spread['pass1']['mean']:.3f} ± {spread['pass1']['std']:.3f}", (m, variant)
            assert cells[1] == f"{spread['delta_pass1']['mean']:+.3f} ± {spread['delta_pass1']['std']:.3f}"
            kl = spread["kl_to_base_per_token"]
            assert cells[8] == f"{kl['mean']:.3f} ± {kl['std']:.3f}"
    assert _texts(page.tables["methods", "id"]["base"])[0] == f"{probe['per_model']['base']['pass_at_k']['1']:.3f}"
    assert _texts(page.tables["methods", "id"]["sft"])[2] == "–"  # k* defined for no sft seed
    assert _texts(page.tables["methods", "id"]["grpo"])[2] == "3.5 ± 0.0"


def test_per_seed_table_has_one_row_per_trained_model_with_intervals(tmp_path):
    run = write_demo_folder(tmp_path / "run")
    page = _parse(write_report([run]))
    summary = json.loads((run / "summary.json").read_text())
    for variant in ("id", "ood"):
        probe = json.loads((run / f"probe-{variant}" / "probe.json").read_text())
        rows = page.tables["versus", variant]
        assert list(rows) == LABELS
        for label, row in rows.items():
            v, cells = probe["vs_base"][label], _texts(row)
            assert len(cells) == 11  # ten figures and the training time
            assert cells[0] == _ci(v["delta_pass_at_k"]["1"], "+.3f"), (label, variant)
            assert cells[2] == _ci(v["pass1_gain"]["elicitation"], "+.3f")
            assert cells[3] == _ci(v["pass1_gain"]["creation"], "+.3f")
            assert cells[4] == _ci(v["support_prompts"]["E"], ".0f")
            assert cells[5] == _ci(v["support_prompts"]["S"], ".0f")
            assert cells[6] == _ci(v["support_prompts"]["NSCR"], "+.2f")
            rev, fwd = v["distance"]["reverse"], v["distance"]["forward"]
            assert cells[7] == _ci({"value": rev["kl_exact_per_token"], "ci95": rev["kl_exact_per_token_ci95"]}, ".3f")
            assert cells[8] == _ci({"value": fwd["kl_exact_per_token"], "ci95": fwd["kl_exact_per_token_ci95"]}, ".3f")
            assert cells[9] == _ci(v["free_energy"]["1"]["gap_minus_base"], "+.3f")
            m, s = label.split("-s")
            assert cells[10] == f"{summary['methods'][m]['seeds'][s]['train_seconds']:.1f}"
            kstar = v["crossover_k"]
            assert cells[1] == ("–" if kstar["value"] is None else _ci(kstar, ".1f"))


def test_a_difference_is_marked_only_when_its_interval_excludes_zero(tmp_path):
    run = write_demo_folder(tmp_path / "run")
    rows = _parse(write_report([run])).tables["versus", "id"]
    marked = [0, 2, 3, 6, 9]  # Δpass@1, elicitation, creation, NSCR, F gap − base
    for label in LABELS:
        classes = [c for _, c in rows[label]]
        if label.startswith("grpo"):  # intervals [v/2, 3v/2] with v > 0: they exclude 0
            assert all("sig" in classes[j] for j in marked), (label, classes)
        else:  # intervals [-|v|, 2|v|]: they hold 0
            assert not any("sig" in classes[j] for j in marked), (label, classes)
        # k*, E, S and the KLs are not differences to be tested against 0: never marked
        assert not any("sig" in classes[j] for j in (1, 4, 5, 7, 8))


def test_support_table_shows_both_levels_with_intervals(tmp_path):
    run = write_demo_folder(tmp_path / "run")
    page = _parse(write_report([run]))
    probe = json.loads((run / "probe-ood" / "probe.json").read_text())
    rows = page.tables["support", "ood"]
    assert list(rows) == LABELS
    for label, row in rows.items():
        cells = _texts(row)
        want = []
        for level in ("support_prompts", "support_solutions"):
            for r in ("SRR", "NDR", "SDS", "NSCR"):
                fig = probe["vs_base"][label][level][r]
                if fig["value"] is None:
                    want.append("–")
                elif fig["ci95"][0] is None:
                    want.append(f"{fig['value']:{'+.2f' if r == 'NSCR' else '.2f'}} [–, –]")
                else:
                    want.append(_ci(fig, "+.2f" if r == "NSCR" else ".2f"))
        assert cells == want, label
    assert "sig" in rows["grpo-s0"][3][1] and "sig" not in rows["sft-s0"][3][1]  # NSCR, prompt level


def _figure(drawn: dict, word: str):
    (fig,) = [f for alt, f in drawn.items() if word in alt]
    return fig


def test_free_energy_sweep_figure_draws_gap_between_and_within_per_method(tmp_path, drawn):
    run = write_demo_folder(tmp_path / "run")
    text = write_report([run]).read_text(encoding="utf-8")
    assert 'id="free-energy"' in text and "free-energy gap against beta" in text
    fig = _figure(drawn, "free-energy")
    axes = [ax for ax in fig.axes if ax.get_visible() and ax.get_title()]
    assert [ax.get_title() for ax in axes] == ["base", *METHODS] * 2  # a panel per method and rule
    probe = json.loads((run / "probe-id" / "probe.json").read_text())
    grpo = axes[2]
    assert grpo.get_xscale() == "log"
    lines = {tuple(round(y, 9) for y in ln.get_ydata()) for ln in grpo.get_lines()}
    fe = probe["vs_base"]["grpo-s0"]["free_energy"]
    for part in ("gap", "between", "within"):  # the first seed in full
        assert tuple(round(fe[f"{b:g}"][part]["value"], 9) for b in BETAS) in lines, part
    other = probe["vs_base"]["grpo-s1"]["free_energy"]  # the other seed's gap, and the base's
    assert tuple(round(other[f"{b:g}"]["gap"]["value"], 9) for b in BETAS) in lines
    base = probe["per_model"]["base"]["free_energy"]
    assert tuple(round(base[f"{b:g}"]["gap"]["value"], 9) for b in BETAS) in lines
    # error bars from ci95: the segment at beta = 1 of the first seed's gap spans [low, high]
    lo, hi = fe["1"]["gap"]["ci95"]
    segments = [seg for coll in grpo.collections for seg in coll.get_segments()]
    assert any(abs(s[0][0] - 1.0) < 1e-9 and abs(s[0][1] - lo) < 1e-9 and abs(s[1][1] - hi) < 1e-9 for s in segments)


def test_passk_draws_one_curve_per_method_and_the_scatter_one_point_per_model(tmp_path, drawn):
    run = write_demo_folder(tmp_path / "run")
    write_report([run])
    probe = json.loads((run / "probe-id" / "probe.json").read_text())
    ax = _figure(drawn, "pass@k against k").axes[0]
    curves = [tuple(ln.get_ydata()) for ln in ax.get_lines()]
    want = ["base", *(f"{m}-s0" for m in METHODS)]
    assert curves == [tuple(probe["per_model"][m]["pass_at_k"][str(k)] for k in KS) for m in want]
    ax = _figure(drawn, "pass@1 gain").axes[0]
    points = [c.lines[0] for c in ax.containers]  # one errorbar container per trained model
    assert len(points) == len(LABELS)
    xs = sorted(round(float(p.get_xdata()[0]), 9) for p in points)
    assert xs == sorted(round(probe["vs_base"][m]["distance"]["reverse"]["kl_exact_per_token"], 9) for m in LABELS)
    colours = {tuple(p.get_color()) if not isinstance(p.get_color(), str) else p.get_color() for p in points}
    assert len(colours) == len(METHODS)  # coloured by method: the seeds of one method share a colour


def test_probe_only_folder_renders(tmp_path):
    folder = write_probe_folder(tmp_path / "probe-out")
    probe = json.loads((folder / "probe.json").read_text())
    out = write_report([folder])
    page = _parse(out)
    alone = page.tables["methods", "ood"]
    assert list(alone) == ["base", "copy", "grpo"]
    base = probe["per_model"]["base"]
    assert _texts(alone["base"])[0] == f"{base['pass_at_k']['1']:.3f} [{base['pass_at_k_ci95']['1'][0]:.3f}, " \
                                       f"{base['pass_at_k_ci95']['1'][1]:.3f}]"
    assert _texts(alone["grpo"])[-1] == _ci(probe["vs_base"]["grpo"]["free_energy"]["1"]["gap"], ".2f")
    versus = page.tables["versus", "ood"]
    assert list(versus) == ["copy", "grpo"]
    assert len(versus["grpo"]) == 10  # no training time without a summary
    assert _texts(versus["grpo"])[0] == _ci(probe["vs_base"]["grpo"]["delta_pass_at_k"]["1"], "+.3f")
    assert list(page.tables["support", "ood"]) == ["copy", "grpo"]
    assert [s for s, _ in page.images] == ["passk", "gain-vs-kl", "free-energy", "transitions"]
    assert "No training curves" in out.read_text(encoding="utf-8")


def test_two_folders_side_by_side(tmp_path):
    a = write_demo_folder(tmp_path / "run-a")
    b = write_probe_folder(tmp_path / "probe-b", {"sft": 0.2, "other": 0.3}, variant="id")
    out = write_report([a, b])
    assert out == a / "report-compare.html"
    text = out.read_text(encoding="utf-8")
    assert "<title>reweightlab report: run-a vs probe-b</title>" in text
    n = len(SECTIONS)
    assert text.count('<h3 class=run>run-a</h3>') == n and text.count('<h3 class=run>probe-b</h3>') == n
    # one colour per method, on both sides and for every seed of it
    swatches = dict(re.findall(r'data-model="([\w-]+)"><th scope="row"><span class="swatch" style="background:(#\w+)"',
                               text))
    assert swatches["sft"] == swatches["sft-s0"] == swatches["sft-s1"] != swatches["grpo-s1"] == swatches["grpo"]
    assert swatches["other"] not in (swatches["sft"], swatches["grpo"], swatches["base"])
    assert write_report([a, b], tmp_path / "x.html") == tmp_path / "x.html"


CONTROL = {"env_id": "Pendulum-v1", "seeds": [0, 1], "eval_episodes": 2,
           "dataset_stats": {"episodes": 3, "transitions": 600, "min": -1500.0, "median": -800.0, "max": -200.0},
           "ordering": {"paper_ordering_holds": True},
           "methods": {k: {"label": k.upper(), "return_mean": -500.0 + i, "return_std": 10.0, "score_mean": 50.0,
                           "score_std": 1.0, "per_seed": [{"return_mean": -501.0}, {"return_mean": -499.0}],
                           "train_seconds_mean": 2.0} for i, k in enumerate(("bc", "iw_sft_q"))}}


def test_a_control_folder_renders_alone_and_beside_a_demo(tmp_path):
    ctrl = tmp_path / "ctrl"
    ctrl.mkdir()
    (ctrl / "control.json").write_text(json.dumps(CONTROL))
    text = write_report([ctrl]).read_text(encoding="utf-8")
    assert 'id="control"' in text and 'id="passk"' not in text and 'data-method="iw_sft_q"' in text
    both = write_report([write_demo_folder(tmp_path / "run"), ctrl]).read_text(encoding="utf-8")
    assert 'id="control"' in both and 'id="free-energy"' in both
    assert "No language-model results in this folder" in both


def _break(run: Path, case: str) -> Path:
    """Break one file of a demo folder; return the file the error must name."""
    paths = {"summary": run / "summary.json", "probe": run / "probe-ood" / "probe.json",
             "metrics": run / "grpo-s1" / "metrics.jsonl"}
    kind, what = case.split("-")
    path = paths[kind]
    if what == "missing":
        path.unlink()
    elif what == "malformed":
        path.write_text(path.read_text()[:-40])  # a file cut short, as by a crash mid-write
    elif what == "key":
        data = json.loads(path.read_text())
        data.pop("methods" if kind == "summary" else "vs_base")
        path.write_text(json.dumps(data))
    else:  # an interval-backed figure written as a bare number (the schema before version 2)
        data = json.loads(path.read_text())
        data["vs_base"]["sft-s1"]["pass1_gain"]["creation"] = 0.01
        path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("case", ["summary-malformed", "summary-key", "probe-missing", "probe-malformed",
                                  "probe-key", "probe-shape", "metrics-missing", "metrics-malformed"])
def test_a_broken_file_is_named_and_nothing_is_written(tmp_path, case):
    run = write_demo_folder(tmp_path / "run")
    (run / "report.html").write_text("an older report")
    bad = _break(run, case)
    with pytest.raises(ReportError, match=re.escape(str(bad))):
        write_report([run])
    assert (run / "report.html").read_text() == "an older report"  # untouched, not half-written
    assert not list(run.glob(".report.html.tmp-*"))


def test_a_folder_without_results_is_an_error(tmp_path):
    with pytest.raises(ReportError, match="neither summary.json"):
        write_report([tmp_path])
    assert not (tmp_path / "report.html").exists()


def test_cli_prints_the_path_and_reports_user_errors(tmp_path, capsys):
    run = write_demo_folder(tmp_path / "run")
    assert main(["report", str(run), "--out", str(tmp_path / "r.html")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "r.html")
    (run / "summary.json").write_text("{")
    assert main(["report", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(run / "summary.json") in err


def test_a_probe_of_the_base_alone_renders(tmp_path):
    probe = _probe("id", 1.0)
    probe["per_model"], probe["vs_base"] = {"base": probe["per_model"]["base"]}, {}
    (tmp_path / "probe.json").write_text(json.dumps(probe))
    out = write_report([tmp_path])
    page = _parse(out)
    assert list(page.tables["methods", "id"]) == ["base"]
    assert "nothing to compare with the base" in out.read_text(encoding="utf-8")
    assert [s for s, _ in page.images] == ["passk", "free-energy"]


def test_revision_table_when_the_probe_ran_revision_episodes(tmp_path):
    run = write_demo_folder(tmp_path / "run")
    page = _parse(write_report([run]))
    assert ("revision", "id") not in page.tables  # no revision episodes: a note, no table
    assert "No revision episodes in this run" in (run / "report.html").read_text(encoding="utf-8")
    summary = json.loads((run / "summary.json").read_text())
    for variant in ("id", "ood"):
        path = run / f"probe-{variant}" / "probe.json"
        probe = json.loads(path.read_text())
        probe["per_model"]["base"]["revision"] = {
            "attempts": 3, "episodes_per_prompt": 4, "success_first_attempt": _iv(0.02, 0.01, 0.03),
            "success_within_episode": _iv(0.08, 0.06, 0.10)}
        path.write_text(json.dumps(probe))
        for i, m in enumerate(METHODS):
            summary["across_seeds"][m][variant] |= {
                "first_attempt": _spread([0.03 + i * 0.01, 0.04 + i * 0.01]),
                "within_episode": _spread([0.09, 0.07 + i * 0.04]),
                "delta_within_episode": _spread([0.01, -0.01 + i * 0.04])}
    (run / "summary.json").write_text(json.dumps(summary))
    page = _parse(write_report([run], out=tmp_path / "with-revision.html"))
    for variant in ("id", "ood"):
        rows = page.tables["revision", variant]
        assert list(rows) == ["base", *METHODS]
        assert _texts(rows["base"]) == ["0.020 [0.010, 0.030]", "0.080 [0.060, 0.100]", "–"]
        sp = summary["across_seeds"]["grpo"][variant]
        assert _texts(rows["grpo"]) == [f"{sp['first_attempt']['mean']:.3f} ± {sp['first_attempt']['std']:.3f}",
                                        f"{sp['within_episode']['mean']:.3f} ± {sp['within_episode']['std']:.3f}",
                                        f"{sp['delta_within_episode']['mean']:+.3f} ± "
                                        f"{sp['delta_within_episode']['std']:.3f}"]
