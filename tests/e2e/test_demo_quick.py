"""`reweightlab demo --quick` end to end: the command a new user runs, at its smallest size."""

import json

from reweightlab.probe.intervals import excludes_zero
from reweightlab.recipes.demo import DEMO_METHODS, QUICK_BUDGET, run_label


def test_quick_demo_writes_summary_with_every_method(quick_demo_run):
    run, table = quick_demo_run  # main(["demo", "--quick", ...]) with an empty cache, run once per session
    summary = json.loads((run / "summary.json").read_text())
    labels = {run_label(m, s) for m in DEMO_METHODS for s in QUICK_BUDGET.train_seeds}
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
    for label in labels:
        assert (run / label / "final" / "model.safetensors").is_file()
        assert (run / label / "metrics.jsonl").read_text().strip()
    # the spread across seeds: every method, both rules, n = number of seeds
    for method in DEMO_METHODS:
        for variant in ("id", "ood"):
            spread = summary["across_seeds"][method][variant]["pass1"]
            vals = [summary["eval"][run_label(method, s)][variant]["pass_at_k"]["1"] for s in QUICK_BUDGET.train_seeds]
            assert spread["n"] == len(vals) and abs(spread["mean"] - sum(vals) / len(vals)) < 1e-12
            for fig in ("delta_pass1", "creation"):
                clear = sum(excludes_zero(summary["eval"][run_label(method, s)][variant][fig])
                            for s in QUICK_BUDGET.train_seeds)
                assert summary["across_seeds"][method][variant][fig]["clear_of_zero"] == clear
    assert all(m in table for m in DEMO_METHODS) and "OOD pass@1" in table and "k*" in table
    assert "elicit" in table and "KL/tok" in table and "training seeds" in table
    # a second run reuses the cached base model instead of pretraining again
    cached = list((run.parent.parent / "cache").iterdir())
    assert len(cached) == 1 and (cached[0] / "reweightlab.json").is_file()
    # the demo ends with its report, and says where it is
    assert (run / "report.html").is_file() and f"report: {run / 'report.html'}" in table
