"""`reweightlab demo --quick` end to end: the command a new user runs, at its smallest size."""

import json

from reweightlab.cli import main
from reweightlab.demo import DEMO_METHODS


def test_quick_demo_writes_summary_with_every_method(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("REWEIGHTLAB_CACHE", str(tmp_path / "cache"))
    assert main(["demo", "--quick", "--out", str(tmp_path / "runs"), "--no-progress"]) == 0
    (run,) = list((tmp_path / "runs").iterdir())
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
    table = capsys.readouterr().out
    assert all(m in table for m in DEMO_METHODS) and "OOD pass@1" in table and "ID k*" in table
    # a second run reuses the cached base model instead of pretraining again
    cached = list((tmp_path / "cache").iterdir())
    assert len(cached) == 1 and (cached[0] / "reweightlab.json").is_file()
