"""`reweightlab probe` as a user runs it: tiny model folders, the toy 'digits' task, files checked."""

import json

import pytest
import torch

from reweightlab.cli import main
from reweightlab.math import mean_pass_at_k
from reweightlab.models import build_char_tokenizer
from reweightlab.probe.regimes import REGIMES, RegimeThresholds, classify, reached_sampling

ARGS = ["--task", "digits", "--variant", "id", "--num-prompts", "6", "--n", "32", "--k", "1,2,4,32",
        "--budget-k", "32", "--max-new-tokens", "6", "--keep", "4", "--search-beams", "2", "--search-expand", "2",
        "--no-progress"]


@pytest.fixture(scope="module")
def probe_out(tiny_model_dir, trained_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("probe") / "p"
    rc = main(["probe", "--base", str(tiny_model_dir), "--trained", str(trained_dir), "--out", str(out), *ARGS])
    assert rc == 0
    summary = json.loads((out / "probe.json").read_text())
    rows = [json.loads(line) for line in (out / "probe_prompts.jsonl").read_text().splitlines()]
    return summary, rows


def test_probe_files_hold_every_model_and_prompt(probe_out):
    summary, rows = probe_out
    label = "run-digits0"  # <run>/final is named after its run folder
    assert set(summary["per_model"]) == {"base", label} and set(summary["vs_base"]) == {label}
    assert summary["estimator"] == "sampling" and summary["num_prompts"] == 6 == len(rows)
    assert summary["settings"]["ks"] == [1, 2, 4, 32]
    for name, m in summary["per_model"].items():
        n = [r["models"][name]["n"] for r in rows]
        c = [r["models"][name]["c"] for r in rows]
        assert n == [32] * 6 and all(0 <= x <= 32 for x in c)
        # the summary's pass@k is recomputed exactly from the per-prompt (n, c) in the jsonl
        curve = mean_pass_at_k(torch.tensor(n), torch.tensor(c), [1, 2, 4, 32])
        for k, v in curve.items():
            assert m["pass_at_k"][str(k)] == pytest.approx(v, abs=1e-12)
            lo, hi = m["pass_at_k_ci95"][str(k)]
            assert lo <= v + 1e-12 and v <= hi + 1e-12
        assert sum(m["regimes"].values()) == 6 and set(m["regimes"]) == set(REGIMES)
        # the likelihood estimator is there too (digits enumerates its solutions)
        assert all(0.0 <= r["models"][name]["p_known"] <= 1.0 for r in rows)


def test_regimes_in_rows_follow_the_thresholds(probe_out):
    """Every label is backed by the row's own evidence: the K regime samples' successes and the search."""
    summary, rows = probe_out
    th = RegimeThresholds(budget_K=32)
    for name in summary["per_model"]:
        r = [row["models"][name] for row in rows]
        c_K = torch.tensor([x["c_regime"] for x in r])
        found = torch.tensor([x["search_found"] for x in r])
        regimes = [x["regime"] for x in r]
        assert regimes == classify(c_K.double() / 32, reached_sampling(c_K), thresholds=th, search_success_P=found)
        for x in r:  # no label the row contradicts
            if x["regime"] in ("barrier", "singularity"):
                assert x["c_regime"] == 0
            if x["regime"] == "barrier":
                assert x["search_found"]
            if x["regime"] == "singularity":
                assert not x["search_found"] and x["singularity_kind"] in ("improbable", "unreachable")
    # the base's regime samples are its own seeded set; a trained model's are the first K of its n = K samples
    assert summary["per_model"]["base"]["regime_samples"]["source"] == "own seeded set"
    label = "run-digits0"
    assert all(row["models"][label]["c_regime"] == row["models"][label]["c"] for row in rows)


def test_comparison_adds_up(probe_out):
    summary, rows = probe_out
    label = "run-digits0"
    v = summary["vs_base"][label]
    assert sum(sum(row.values()) for row in v["transitions"].values()) == 6
    g = v["pass1_gain"]
    assert g["elicitation"]["value"] + g["creation"]["value"] == pytest.approx(g["total"]["value"], abs=1e-12)
    p_gain = sum(r["models"][label]["c"] - r["models"]["base"]["c"] for r in rows) / 32 / 6
    assert g["total"]["value"] == pytest.approx(p_gain, abs=1e-12)
    assert v["delta_pass_at_k"]["1"]["value"] == pytest.approx(p_gain, abs=1e-12)
    for fig in (g["total"], g["elicitation"], g["creation"], v["delta_pass_at_k"]["32"]):
        lo, hi = fig["ci95"]
        assert lo - 1e-12 <= fig["value"] <= hi + 1e-12
    sp = v["support_prompts"]
    assert sum(sp[k]["value"] for k in ("P", "E", "S", "neither")) == 6
    reached_b = [r["models"]["base"]["c_regime"] > 0 for r in rows]
    reached_t = [r["models"][label]["c_regime"] > 0 for r in rows]
    assert sp["S"]["value"] == sum(b and not t for b, t in zip(reached_b, reached_t, strict=True))
    d = v["distance"]
    assert d["reverse"]["kl_exact_per_token"] > 0 and d["forward"]["kl_exact_per_token"] > 0  # perturbed weights
    gaps = [r["models"][label]["free_energy_gap"] for r in rows]
    fe = v["free_energy"]["1"]
    assert fe["gap"]["value"] == pytest.approx(sum(gaps) / 6, abs=1e-9)
    assert fe["between"]["value"] + fe["within"]["value"] == pytest.approx(fe["gap"]["value"], abs=1e-9)
    assert summary["per_model"]["base"]["free_energy"]["1"]["gap"]["value"] >= -1e-9
    assert summary["betas"] == [0.1, 0.3, 1.0, 3.0]  # the default sweep (the trained model has no training beta)


def test_keep_samples_writes_every_sample(tiny_model_dir, trained_dir, tmp_path):
    out = tmp_path / "keep"
    assert main(["probe", "--base", str(tiny_model_dir), "--trained", f"t={trained_dir}", "--out", str(out),
                 "--keep-samples", *ARGS]) == 0
    summary = json.loads((out / "probe.json").read_text())
    assert sorted(summary["samples_files"]) == ["samples/base.jsonl", "samples/base.regime.jsonl", "samples/t.jsonl"]
    rows = [json.loads(line) for line in (out / "probe_prompts.jsonl").read_text().splitlines()]
    for name, key in (("t", "c"), ("base", "c"), ("base.regime", "c_regime")):
        lines = [json.loads(x) for x in (out / "samples" / f"{name}.jsonl").read_text().splitlines()]
        assert len(lines) == 6 * 32 and set(lines[0]) == {"prompt_id", "prompt", "sample", "text", "reward", "success",
                                                         "reason", "logp"}
        assert all(x["success"] == (x["reward"] >= 1.0) for x in lines)
        model = name.split(".")[0]
        for row in rows:  # the written rewards re-derive the counts in probe_prompts.jsonl
            mine = [x for x in lines if x["prompt_id"] == row["id"]]
            assert sorted(x["sample"] for x in mine) == list(range(32))
            assert sum(x["reward"] >= 1.0 for x in mine) == row["models"][model][key]
            assert all(x["logp"] <= 0 for x in mine)
    # the failure kinds (digits has no hook: the failure's score) re-derive from the written samples
    lines = [json.loads(x) for x in (out / "samples" / "t.jsonl").read_text().splitlines()]
    kinds: dict[str, float] = {}
    for x in lines:
        if x["reward"] < 1.0:
            kinds[f"score {x['reward']:g}"] = kinds.get(f"score {x['reward']:g}", 0.0) + 1 / len(lines)
    assert summary["per_model"]["t"]["failure_kinds"] == pytest.approx(kinds, abs=1e-12)
    assert not list((out / "samples").glob("*.part"))


def test_existing_probe_is_not_overwritten(tiny_model_dir, probe_out, tmp_path, capsys):
    out = tmp_path / "again"
    assert main(["probe", "--base", str(tiny_model_dir), "--out", str(out), *ARGS]) == 0
    before = (out / "probe.json").read_text()
    assert main(["probe", "--base", str(tiny_model_dir), "--out", str(out), *ARGS]) == 2
    assert "already holds a probe" in capsys.readouterr().err
    assert (out / "probe.json").read_text() == before


def _other_tokenizer_dir(tmp_path):
    """A model folder whose tokenizer maps characters to different ids."""
    from reweightlab.models import EmbeddedSpec, build_embedded_model

    tok = build_char_tokenizer()
    tok.add_tokens(["<extra>"])
    model = build_embedded_model(tok, EmbeddedSpec(hidden_size=32, num_layers=1, num_heads=4,
                                                   intermediate_size=64, max_positions=96), seed=0)
    path = tmp_path / "other"
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.mark.parametrize(
    "case, expect",
    [
        ("tokenizer", "different tokenizers"),
        ("task", "no-such-task"),
        ("n", "smaller than the largest k"),
        ("budget", "below the regime budget K"),
        ("beta", "beta must be a finite number > 0"),
        ("thresholds", "raise the budget K or theta_basin"),
        ("no-config", "config.json"),
        ("not-causal", "not a causal LM"),
        ("variant", "no variant"),
    ],
)
def test_bad_input_one_clear_error_and_nothing_written(case, expect, tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["probe", "--base", str(tiny_model_dir), "--out", str(out), *ARGS]
    if case == "tokenizer":
        args += ["--trained", str(_other_tokenizer_dir(tmp_path))]
    elif case == "task":
        args += ["--task", "no-such-task"]
    elif case == "n":
        args += ["--n", "8", "--budget-k", "8", "--theta-basin", "0.5"]  # k goes to 32
    elif case == "budget":
        args += ["--n", "16", "--k", "1,16"]  # K = 32 > n
    elif case == "beta":
        args += ["--betas", "0.1,-1"]
    elif case == "thresholds":
        args += ["--budget-k", "10"]  # p_budget = ln(20)/10 = 0.30 >= theta_basin = 0.1: an empty tail

    elif case == "no-config":
        (tmp_path / "empty").mkdir()
        args += ["--trained", str(tmp_path / "empty")]
    elif case == "not-causal":
        from transformers import ViTConfig

        ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64).save_pretrained(
            tmp_path / "vit"
        )
        args += ["--trained", str(tmp_path / "vit")]
    elif case == "variant":
        args += ["--variant", "ood"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and expect in err[0], err
    assert not (out / "probe.json").exists() and not (out / "probe_prompts.jsonl").exists()


def test_seen_and_unseen_prompts_are_reported_apart(tiny_model_dir, trained_dir, tmp_path):
    out = tmp_path / "both"
    assert main(["probe", "--base", str(tiny_model_dir), "--trained", f"t={trained_dir}", "--out", str(out),
                 "--split", "both", *ARGS]) == 0
    summary = json.loads((out / "probe.json").read_text())
    rows = [json.loads(line) for line in (out / "probe_prompts.jsonl").read_text().splitlines()]
    assert [r["split"] for r in rows] == ["train"] * 3 + ["test"] * 3
    parts = summary["by_split"]
    assert summary["prompts_seen_in_training"] == "half" and set(parts) == {"seen", "unseen"}
    for name, split in (("seen", "train"), ("unseen", "test")):
        mine = [r for r in rows if r["split"] == split]
        assert parts[name]["prompts"] == 3 and parts[name]["seen_in_training"] == (split == "train")
        for label in ("base", "t"):
            p1 = sum(r["models"][label]["c"] / r["models"][label]["n"] for r in mine) / 3
            assert parts[name]["pass1"][label]["value"] == pytest.approx(p1, abs=1e-12)
        gain = parts[name]["vs_base"]["t"]
        assert gain["total"]["value"] == pytest.approx(
            parts[name]["pass1"]["t"]["value"] - parts[name]["pass1"]["base"]["value"], abs=1e-12)


def test_training_beta_is_read_from_the_run_folder(tmp_path):
    from reweightlab.probe.command import training_beta

    run = tmp_path / "run"
    (run / "final").mkdir(parents=True)
    (run / "checkpoints" / "step-4").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"method": "grpo", "rl": {"kl_beta": 0.05}}))
    assert training_beta(run / "final") == 0.05 == training_beta(run / "checkpoints" / "step-4")
    (run / "config.json").write_text(json.dumps({"method": "sft", "rl": {"kl_beta": 0.05}}))
    assert training_beta(run / "final") is None  # an offline method has no KL temperature
    (run / "config.json").write_text(json.dumps({"method": "rloo", "rl": {"kl_beta": 0.0}}))
    assert training_beta(run / "final") is None
    (run / "config.json").write_text("{not json")
    assert training_beta(run / "final") is None and training_beta(tmp_path / "elsewhere") is None


def test_config_file_and_overrides_probe_as_the_flags_do(tiny_model_dir, trained_dir, probe_out, tmp_path):
    """The fixture's flags, written as a YAML file plus key=value overrides: the same samples, the same rows."""
    out = tmp_path / "from-config"
    path = tmp_path / "probe.yaml"
    path.write_text(f"base: {tiny_model_dir}\ntrained: [{trained_dir}]\ntask: digits\nvariant: id\nnum_prompts: 6\n"
                    f"n: 16\nks: [1, 2, 4, 32]\nthresholds:\n  budget_K: 32\nmax_new_tokens: 6\nkeep_per_prompt: 4\n"
                    "search:\n  beam_width: 2\n  expand_top: 2\nprogress: false\n")
    assert main(["probe", "--config", str(path), "--out", str(out), "n=32"]) == 0  # the override beats the file
    summary, rows = probe_out
    mine = json.loads((out / "probe.json").read_text())
    assert mine["settings"] == summary["settings"] and mine["settings"]["search"]["max_new_tokens"] == 6
    assert [json.loads(line) for line in (out / "probe_prompts.jsonl").read_text().splitlines()] == rows


def test_help_lists_every_setting_with_its_help_and_default(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["probe", "--help"])
    assert exc.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for fragment in ("--budget-k K regime budget K, at most n", "(default: 256) [key thresholds.budget_K]",
                     "--no-search turn off search", "--search-beams", "--config FILE", "KEY=VALUE",
                     "--betas B1,B2,... further temperatures of the free-energy sweep", "(default: 0.1,0.3,3.0)"):
        assert fragment in text, fragment


@pytest.mark.parametrize(
    "extra, expect",
    [
        (["--n", "many"], "error: config key 'n': expected an integer, got 'many'"),
        (["thresholds.theta_basin=2"], "error: config section 'thresholds': need 0 < p_budget < theta_basin <= 1"),
        (["--estimator", "exact"], "error: config key 'estimator': 'exact' is not one of sampling, likelihood"),
        (["budget_k=3"], "error: unknown config key 'budget_k'"),
    ],
)
def test_bad_value_is_one_line_naming_the_key(extra, expect, tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["probe", "--base", str(tiny_model_dir), "--out", str(out), *ARGS, *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(expect), err
    assert not out.exists()


def test_bad_config_file_and_missing_base_are_one_line(tmp_path, capsys):
    path = tmp_path / "probe.toml"
    path.write_text('task = "digits"\nn = "lots"\n')
    assert main(["probe", "--config", str(path), "--base", "B"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: config key 'n': expected an integer, got 'lots' (in {path})"]
    assert main(["probe", "--task", "digits"]) == 2
    assert "config key 'base'" in capsys.readouterr().err
