"""`reweightlab report` on small run folders written here: one self-contained file, values as in the
JSON, probe-only and side-by-side pages, and clear errors that leave no partial file."""

from __future__ import annotations

import base64
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from reweightlab.cli import main
from reweightlab.report import ReportError, write_report

KS = (1, 2, 4)
REGIMES = ("basin", "tail", "barrier", "singularity")
METHODS = {"sft": 0.25, "grpo": 0.40}  # method -> pass@1 in distribution (the base has 0.125)


def _model(p1: float) -> dict:
    pk = {str(k): min(1.0, p1 * k ** 0.5) for k in KS}
    return {"pass_at_k": pk, "pass_at_k_ci95": {k: [v * 0.5, min(1.0, v * 1.5)] for k, v in pk.items()},
            "mean_reward": -1.0, "regimes": dict.fromkeys(REGIMES, 1)}


def _probe(variant: str, scale: float) -> dict:
    per_model = {"base": {**_model(0.125 * scale), "free_energy": {"mean_gap": 1.5}}}
    vs_base = {}
    for i, (m, p1) in enumerate(METHODS.items()):
        per_model[m] = _model(p1 * scale)
        gain = (p1 - 0.125) * scale
        vs_base[m] = {
            "crossover_k": 3.5 if m == "grpo" else None,
            "transitions": {a: {b: (2 if a == b else i) for b in REGIMES} for a in REGIMES},
            "pass1_gain": {"total": gain, "elicitation": gain * 0.75, "creation": gain * 0.25},
            "distance": {"kl_exact_per_token": 0.1 * (i + 1)}, "free_energy": {"mean_gap": 2.0 + i},
        }
    return {"version": 1, "task": "generalpoints", "variant": variant, "num_prompts": 4, "estimator": "sampling",
            "settings": {"n": 4}, "models": {m: f"/elsewhere/{m}" for m in per_model},
            "per_model": per_model, "vs_base": vs_base}


def _summary_eval(probes: dict) -> dict:
    """summary.json's eval, built from the probes the way the demo builds it."""
    out: dict = {}
    for variant, p in probes.items():
        for m, r in p["per_model"].items():
            row = {k: r[k] for k in ("pass_at_k", "pass_at_k_ci95", "mean_reward", "regimes")}
            if m == "base":
                row["free_energy_gap"] = r["free_energy"]["mean_gap"]
            else:
                v = p["vs_base"][m]
                row |= {"crossover_k_vs_base": v["crossover_k"], "elicitation": v["pass1_gain"]["elicitation"],
                        "creation": v["pass1_gain"]["creation"], "support_lost": 0,
                        "kl_to_base_per_token": v["distance"]["kl_exact_per_token"],
                        "free_energy_gap": v["free_energy"]["mean_gap"]}
            out.setdefault(m, {})[variant] = row
    return out


def write_demo_folder(root: Path) -> Path:
    """A demo run folder in miniature; summary's run_dir paths point elsewhere, as after a move."""
    probes = {"id": _probe("id", 1.0), "ood": _probe("ood", 0.5)}
    for variant, p in probes.items():
        (root / f"probe-{variant}").mkdir(parents=True)
        (root / f"probe-{variant}" / "probe.json").write_text(json.dumps(p))
    for m in METHODS:
        (root / m).mkdir()
        rl = m == "grpo"  # offline methods log no reward or KL
        rows = [{"step": s, "loss": 1.0 / s, **({"reward": -2 + s * 0.1, "kl": 0.01 * s} if rl else {"weight": 1.0})}
                for s in range(1, 5)]
        (root / m / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = {"budget": {"sequences_per_method": 64, "eval_prompts": 4, "eval_samples": 4}, "quick": True,
               "seed": 0, "methods": {m: {"run_dir": f"/moved/away/{m}", "train_seconds": 1.5 + i}
                                      for i, m in enumerate(METHODS)},
               "eval": _summary_eval(probes), "total_seconds": 9.0,
               "probe": {v: {"dir": f"probe-{v}", "seconds": 1.0, "estimator": "sampling"} for v in probes}}
    (root / "summary.json").write_text(json.dumps(summary))
    return root


class _Tables(HTMLParser):
    """Rows of table.methods as {model: [cell texts]}, and every src/href attribute."""

    def __init__(self):
        super().__init__()
        self.rows: dict[str, list[str]] = {}
        self.links: list[str] = []
        self._model, self._cell = None, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.links += [v for k, v in attrs if k in ("src", "href") and v]
        if tag == "tr" and "data-model" in a:
            self._model = a["data-model"]
            self.rows[self._model] = []
        elif tag == "td" and self._model:
            self._cell = ""

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.rows[self._model].append(self._cell)
            self._cell = None
        elif tag == "tr":
            self._model = None


def _parse(path: Path) -> _Tables:
    p = _Tables()
    p.feed(path.read_text(encoding="utf-8"))
    return p


def test_report_is_one_self_contained_file(tmp_path):
    run = write_demo_folder(tmp_path / "run")
    out = write_report([run])
    assert out == run / "report.html"
    text = out.read_text(encoding="utf-8")
    page = _parse(out)
    images = [x for x in page.links if x.startswith("data:")]
    assert len(images) == 4  # pass@k, gain vs KL, training curves, regime transitions
    for uri in images:
        assert base64.b64decode(uri.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    # nothing fetched from anywhere: every src/href is inline data or an anchor on the page
    assert all(x.startswith(("data:image/png;base64,", "#")) for x in page.links), page.links
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text)
    assert "<script" not in text and "<link" not in text and "@import" not in text


def test_table_values_match_the_json(tmp_path):
    run = write_demo_folder(tmp_path / "run")
    rows = _parse(write_report([run])).rows
    summary = json.loads((run / "summary.json").read_text())
    assert list(rows) == ["base", *METHODS]  # one row per model, base first
    ncols = 7  # per rule: pass@1, pass@kmax, elicitation, creation, KL/tok, F gap, k*
    for m, cells in rows.items():
        for j, variant in enumerate(("id", "ood")):
            r = summary["eval"][m][variant]
            block = cells[j * ncols:(j + 1) * ncols]
            assert block[0] == f"{r['pass_at_k']['1']:.3f}", (m, variant)
            assert block[1] == f"{r['pass_at_k'][str(max(KS))]:.3f}"
            assert block[5] == f"{r['free_energy_gap']:.2f}"
            if m != "base":
                assert block[2] == f"{r['elicitation']:+.3f}" and block[3] == f"{r['creation']:+.3f}"
                assert block[4] == f"{r['kl_to_base_per_token']:.3f}"
        train = summary["methods"].get(m, {}).get("train_seconds")
        assert cells[-1] == ("–" if train is None else f"{train:.1f}")
    assert rows["grpo"][6] == "3.5" and rows["sft"][6] == "–"  # k*, and none for sft


def test_probe_only_folder_renders_without_training_curves(tmp_path):
    folder = tmp_path / "probe-out"
    folder.mkdir()
    probe = _probe("ood", 1.0)
    (folder / "probe.json").write_text(json.dumps(probe))
    out = write_report([folder])
    page = _parse(out)
    assert list(page.rows) == ["base", *METHODS]
    assert page.rows["grpo"][0] == f"{probe['per_model']['grpo']['pass_at_k']['1']:.3f}"
    assert page.rows["grpo"][2] == f"{probe['vs_base']['grpo']['pass1_gain']['elicitation']:+.3f}"
    assert len(page.rows["grpo"]) == 7  # one rule, and no training time without a summary
    assert sum(x.startswith("data:image/png") for x in page.links) == 3
    assert "No training curves" in out.read_text(encoding="utf-8")


def test_two_folders_side_by_side(tmp_path):
    a = write_demo_folder(tmp_path / "run-a")
    b = tmp_path / "probe-b"
    b.mkdir()
    (b / "probe.json").write_text(json.dumps(_probe("id", 0.5)))
    out = write_report([a, b])
    assert out == a / "report-compare.html"
    text = out.read_text(encoding="utf-8")
    assert "<title>reweightlab report: run-a vs probe-b</title>" in text
    assert text.count('<h3 class=run>run-a</h3>') == 5 and text.count('<h3 class=run>probe-b</h3>') == 5
    # one colour per method on both sides
    swatches = re.findall(r'data-model="(\w+)"><th scope="row"><span class="swatch" style="background:(#\w+)"', text)
    assert len(swatches) == 6 and len(set(swatches)) == 3
    assert write_report([a, b], tmp_path / "x.html") == tmp_path / "x.html"


def _break(run: Path, case: str) -> Path:
    """Break one file of a demo folder; return the file the error must name."""
    paths = {"summary": run / "summary.json", "probe": run / "probe-ood" / "probe.json",
             "metrics": run / "grpo" / "metrics.jsonl"}
    kind, what = case.split("-")
    path = paths[kind]
    if what == "missing":
        path.unlink()
    elif what == "malformed":
        path.write_text(path.read_text()[:-40])  # a file cut short, as by a crash mid-write
    else:  # a key removed
        data = json.loads(path.read_text())
        data.pop("eval" if kind == "summary" else "vs_base")
        path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("case", ["summary-malformed", "summary-key", "probe-missing", "probe-malformed",
                                  "probe-key", "metrics-missing", "metrics-malformed"])
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
    assert list(_parse(out).rows) == ["base"]
    assert "nothing to compare with the base" in out.read_text(encoding="utf-8")
