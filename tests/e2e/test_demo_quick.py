"""`reweightlab demo --quick` end to end: the command a new user runs, at its smallest size."""

import json

from reweightlab.demo import DEMO_METHODS


def test_quick_demo_writes_summary_with_every_method(quick_demo_run):
    run, table = quick_demo_run  # main(["demo", "--quick", ...]) with an empty cache, run once per session
    summary = json.loads((run / "summary.json").read_text())
    assert set(summary["eval"]) == {"base", *DEMO_METHODS}
    for name, r in summary["eval"].items():
        for variant in ("id", "ood"):
            pk = r[variant]["pass_at_k"]
            values = [pk[k] for k in sorted(pk, key=int)]
            assert all(0.0 <= v <= 1.0 for v in values), name
            assert values == sorted(values), f"{name} {variant}: pass@k must grow with k"
            for k, (lo, hi) in r[variant]["pass_at_k_ci95"].items():
                assert lo <= pk[k] + 1e-12 and pk[k] <= hi + 1e-12, (name, variant, k)
            if name != "base":
                kstar = r[variant]["crossover_k_vs_base"]
                assert kstar is None or 1 <= kstar <= max(map(int, pk))
    for method in DEMO_METHODS:
        assert (run / method / "final" / "model.safetensors").is_file()
        assert (run / method / "metrics.jsonl").read_text().strip()
    assert all(m in table for m in DEMO_METHODS) and "OOD pass@1" in table and "ID k*" in table
    assert "elicit" in table and "KL/tok" in table and "F gap" in table
    # a second run reuses the cached base model instead of pretraining again
    cached = list((run.parent.parent / "cache").iterdir())
    assert len(cached) == 1 and (cached[0] / "reweightlab.json").is_file()
    # the demo ends with its report, and says where it is
    assert (run / "report.html").is_file() and f"report: {run / 'report.html'}" in table
