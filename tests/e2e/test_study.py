"""`reweightlab study --config` end to end on a tiny model built in-process and a data file (the README's
own-data example): claims.json follows its own rule, the curves start where the base is, bad input is one line."""

import importlib.util
import json
from pathlib import Path

import pytest
import yaml

from reweightlab.cli import main
from reweightlab.recipes import verdicts as V

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "own_data"


def _make_tiny(out: Path) -> None:
    spec = importlib.util.spec_from_file_location("make_tiny", EXAMPLE / "make_tiny.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.main(out)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("own-study")
    _make_tiny(root)
    sft = yaml.safe_load((EXAMPLE / "sft.yaml").read_text())
    sft.update(model={"path": str(root / "model")}, output_dir=str(root / "sft-long"))
    sft["data"]["path"] = str(root / "data.jsonl")
    (root / "sft.yaml").write_text(yaml.safe_dump(sft))
    assert main(["train", str(root / "sft.yaml"), "optim.steps=300", "--no-progress"]) == 0
    cfg = yaml.safe_load((EXAMPLE / "study.yaml").read_text())  # the README's file, paths made absolute
    cfg.update(base=str(root / "sft-long" / "final"), task=str(root / "data.jsonl"),
               reward=f"{EXAMPLE / 'reward.py'}:correct_sum")
    (root / "study.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["study", "--config", str(root / "study.yaml"), "train_seeds=[0,1]", "eval_samples=32",
                 "--out", str(root / "runs"), "--no-progress"]) == 0
    (run,) = list((root / "runs").iterdir())
    return run, cfg


def test_claims_follow_the_stated_rule(study):
    run, _ = study
    claims = json.loads((run / "claims.json").read_text())
    assert claims["version"] == 1 and claims["rule"]["text"] == V.RULE_TEXT and claims["rule"]["margin"] == V.MARGIN
    by_id = {c["id"]: c for c in claims["claims"]}
    assert list(by_id) == ["a", "b", "c", "d"]
    assert by_id["b"]["verdict"] == V.NOT_RUN and "'ood'" in by_id["b"]["why"]  # the file has one variant
    for c in claims["claims"]:
        for p in c["parts"]:
            lo, hi = p["ci95"]
            assert lo <= p["value"] <= hi, (c["id"], p["name"])
            assert p["verdict"] == V.part_verdict(p["kind"], lo, hi)
            assert len(p["per_seed"]) == (1 if p["name"].startswith("base_copy") else 2)
        if c["parts"]:
            expect = V.claim_verdict([p["verdict"] for p in c["parts"]])
            if c["id"] == "d" and expect == V.SUPPORTED:  # no creating arm ran: only half the claim is tested
                expect = V.INCONCLUSIVE
            assert c["verdict"] == expect
    names = [p["name"] for p in by_id["a"]["parts"]]
    assert names[0].startswith("iw_sft ") and names[1].startswith("iw_sft_seq")
    assert by_id["d"]["verdict"] != V.SUPPORTED  # the creation half was not run
    assert "creation" in by_id["d"]["parts"][0]["quantity"]
    assert (run / "report.html").is_file() and 'id="claims"' in (run / "report.html").read_text()


def test_curves_start_at_the_base_and_bounds_are_below_the_objective(study):
    run, cfg = study
    curves = json.loads((run / "curves.json").read_text())
    bound = [c for c in curves["runs"].values() if c["kind"] == "bound"]
    assert {c["arm"] for c in bound} == {"filtered_sft", "iw_sft", "iw_sft_seq", "grpo"}
    first = [c["points"][0] for c in bound]
    # step 0 is the base for every arm and seed, sampled with the same seed: the same J to the last digit
    assert len({p["J"] for p in first}) == 1 and all(p["step"] == 0 for p in first)
    ref = curves["reference"]  # a fresh draw of the base's samples, not the curated training data
    assert ref["prompts"] == cfg["curve_prompts"]
    assert ref["samples"] == cfg["curve_prompts"] * cfg["base_samples_per_prompt"]
    success = ref["success_rate"]
    assert 0 < success < 1
    for p in first:  # at theta = pi_ref every bound equals J, which is the reference samples' success rate
        for key in ("J_importance_sampled", "bound_sft", "bound_iw_mean", "bound_iw_sum"):
            assert p[key] == pytest.approx(success, abs=1e-4), key
    for c in bound:
        steps = [p["step"] for p in c["points"]]
        assert steps == sorted(steps) and steps[-1] == (cfg["offline_steps"] if c["arm"] != "grpo" else
                                                         cfg["offline_steps"] * cfg["offline_sequences_per_step"]
                                                         // (cfg["rl_prompts_per_step"] * cfg["rl_samples_per_prompt"]))
        for p in c["points"]:
            assert len(p["J_P"]) == cfg["curve_prompts"]
            assert p["bound_sft"] <= p["bound_iw_mean"] + 1e-9 <= p["J_importance_sampled"] + 2e-9
            assert p["bound_iw_sum"] <= p["J_importance_sampled"] + 1e-9


@pytest.mark.parametrize(("extra", "message"), [
    (["arms=[warmup_rl]"], "arm 'warmup_rl' starts from arm 'sft', which is not in the list"),
    (["arms=[grpo_revision]"], "need a task whose verifier gives feedback"),
    (["arms=[sft_ood]"], "trains on the 'ood' variant"),
    (["arms=[sft, nonsense]"], "unknown arm(s) ['nonsense']"),
])
def test_bad_arms_are_one_line_and_write_nothing(study, extra, message, tmp_path, capsys):
    run, _ = study
    cfg = run.parent.parent / "study.yaml"
    assert main(["study", "--config", str(cfg), *extra, "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_claims_recompute_from_the_folder_alone(study, capsys):
    """`reweightlab claims RUN_DIR`: the same claims.json from the folder's files, without training."""
    run, _ = study
    before = json.loads((run / "claims.json").read_text())
    (run / "claims.json").unlink()
    assert main(["claims", str(run)]) == 0
    after = json.loads((run / "claims.json").read_text())
    assert after == before
    assert "(a) SFT on curated data" in capsys.readouterr().out
    assert main(["claims", str(run / "probe-id")]) == 2
    assert "not a study folder" in capsys.readouterr().err
