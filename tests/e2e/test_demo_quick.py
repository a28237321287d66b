"""`reweightlab demo --quick` end to end: the command a new user runs, at its smallest size."""

import json

from reweightlab.probe.intervals import excludes_zero
from reweightlab.recipes import verdicts as V
from reweightlab.recipes.demo import DEMO_METHODS, QUICK_BUDGET, run_label
from reweightlab.recipes.pretrain import PACKAGED_BASE


def _seeds(method):  # the negative control (the base, untrained) is probed once
    return QUICK_BUDGET.train_seeds[:1] if method == "base_copy" else QUICK_BUDGET.train_seeds


def test_quick_demo_writes_summary_with_every_method(quick_demo_run):
    run, table = quick_demo_run  # main(["demo", "--quick", ...]) with an empty cache, run once per session
    summary = json.loads((run / "summary.json").read_text())
    labels = {run_label(m, s) for m in DEMO_METHODS for s in _seeds(m)}
    assert len(QUICK_BUDGET.train_seeds) >= 2 and set(summary["eval"]) == {"base", *labels}
    for name, r in summary["eval"].items():
        for variant in ("id", "ood"):
            pk = r[variant]["pass_at_k"]
            values = [pk[k] for k in sorted(pk, key=int)]
            assert all(0.0 <= v <= 1.0 for v in values), name
            assert values == sorted(values), f"{name} {variant}: pass@k must grow with k"
            for k, (lo, hi) in r[variant]["pass_at_k_ci95"].items():
                assert lo <= pk[k] + 1e-12 and pk[k] <= hi + 1e-12, (name, variant, k)
            if name != "base":
                kstar = r[variant]["crossover_k"]["value"]
                assert kstar is None or 1 <= kstar <= max(map(int, pk))
                for fig in ("delta_pass1", "elicitation", "creation", "NSCR", "free_energy_gap_minus_base"):
                    lo, hi = r[variant][fig]["ci95"]
                    assert lo is None or lo <= r[variant][fig]["value"] + 1e-12 <= hi + 2e-12, (name, fig)
    for label in labels - {run_label("base_copy", 0)}:
        assert (run / label / "final" / "model.safetensors").is_file()
        assert (run / label / "metrics.jsonl").read_text().strip()
    # the spread across seeds: every method, both rules, n = number of seeds
    for method in DEMO_METHODS:
        for variant in ("id", "ood"):
            spread = summary["across_seeds"][method][variant]["pass1"]
            vals = [summary["eval"][run_label(method, s)][variant]["pass_at_k"]["1"] for s in _seeds(method)]
            assert spread["n"] == len(vals) and abs(spread["mean"] - sum(vals) / len(vals)) < 1e-12
            for fig in ("delta_pass1", "creation"):
                clear = sum(excludes_zero(summary["eval"][run_label(method, s)][variant][fig])
                            for s in _seeds(method))
                assert summary["across_seeds"][method][variant][fig]["clear_of_zero"] == clear
    assert all(m in table for m in DEMO_METHODS) and "OOD pass@1" in table and "k*" in table
    assert "elicit" in table and "KL/tok" in table and "training seeds" in table
    # the quick demo starts from the packaged base: nothing pretrained, nothing written to the cache
    assert summary["base_model"] == str(PACKAGED_BASE) and "pretraining" not in table
    cache = run.parent.parent / "cache"
    assert not cache.exists() or not list(cache.iterdir())
    # the demo ends with its report, and says where it is
    assert (run / "report.html").is_file() and f"report: {run / 'report.html'}" in table


def test_quick_demo_tests_the_four_claims(quick_demo_run):
    run, table = quick_demo_run
    claims = json.loads((run / "claims.json").read_text())
    assert [c["id"] for c in claims["claims"]] == ["a", "b", "c", "d"]
    for c in claims["claims"]:
        assert c["verdict"] in (V.SUPPORTED, V.NOT_SUPPORTED, V.INCONCLUSIVE), (c["id"], c["why"])
        assert c["parts"] and c["figures"] and c["paper_figure"] and len(c["how_to_read"]) == 2
        for p in c["parts"]:
            assert p["verdict"] == V.part_verdict(p["kind"], *p["ci95"])
        assert c["verdict"] == V.claim_verdict([p["verdict"] for p in c["parts"]])
        assert f"{c['title']}: {c['verdict'].upper()}" in table
    b = claims["claims"][1]
    assert "within" in b["parts"][0]["quantity"]  # claim b measures success within the revision episode
    kinds = {k for f in b["figures"] if f["kind"] == "bars" for k in f["categories"]}
    assert {"other_rule", "wrong_value", "illegal"} <= kinds
    curves = json.loads((run / "curves.json").read_text())
    rule = [c for c in curves["runs"].values() if c["kind"] == "rule"]
    assert {c["arm"] for c in rule} == {"warmup_sft", "warmup_rl"}
    for c in rule:
        assert c["points"][0]["kl_to_start_per_token"] == 0.0 or abs(c["points"][0]["kl_to_start_per_token"]) < 1e-5
        assert all(0.0 <= p["ood_success"] <= 1.0 and p["kl_to_start_per_token"] >= -1e-6 for p in c["points"])
