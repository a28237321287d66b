"""`reweightlab probe --samples`: the probe's figures from samples made elsewhere, with its controls.

- a probe's own --keep-samples files read back give the sampling probe's figures exactly (the known answer);
- synthetic files with exact success counts: a trained model equal to the base gives Δpass@1 = 0 with the
  interval [0, 0]; one that gains d successes per prompt gives d / n exactly, its interval clear of 0;
- the base's regimes come from its first K samples only, its pass@k from the rest;
- lm-evaluation-harness --log_samples lines, scored by a TRL-style reward; every bad input is one line.
"""

import json

import pytest

from reweightlab.cli import main
from reweightlab.probe.from_samples import parse_samples, read_samples
from reweightlab.probe.study import ProbeError

PROBE = ["--task", "digits", "--variant", "id", "--num-prompts", "6", "--n", "32", "--k", "1,2,4,32",
         "--budget-k", "32", "--max-new-tokens", "1", "--keep", "4", "--no-search", "--no-progress"]  # one
# character: a digit (success) about one time in ten, so the figures compared are not all zeros
SMALL = ["--budget-k", "8", "--theta-basin", "0.5", "--no-progress"]  # K = 8 needs theta_basin > p_budget = 0.37
FILES = ["--k", "1,2,4,32", "--budget-k", "32", "--no-search", "--no-progress"]


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _probe(tmp_path, *args):
    out = tmp_path / "out"
    assert main(["probe", *args, "--out", str(out)]) == 0
    rows = [json.loads(x) for x in (out / "probe_prompts.jsonl").read_text().splitlines()]
    return json.loads((out / "probe.json").read_text()), rows


def test_keep_samples_read_back_give_the_sampling_probe(tiny_model_dir, trained_dir, tmp_path):
    first = tmp_path / "sampled"
    assert main(["probe", "--base", str(tiny_model_dir), "--trained", f"t={trained_dir}", "--out", str(first),
                 "--keep-samples", *PROBE]) == 0
    want = json.loads((first / "probe.json").read_text())
    samples = first / "samples"
    base = tmp_path / "base.jsonl"  # the regime set first, then the n that measure (the documented order)
    base.write_text((samples / "base.regime.jsonl").read_text() + (samples / "base.jsonl").read_text())
    got, rows = _probe(tmp_path, "--samples", str(base), "--samples", f"t={samples / 't.jsonl'}", *FILES)
    assert sum(r["models"]["base"]["c"] > 0 for r in rows) >= 3 and sum(r["models"]["t"]["c"] > 0 for r in rows) >= 3
    for label in ("base", "t"):
        w, g = want["per_model"][label], got["per_model"][label]
        assert g["pass_at_k"] == w["pass_at_k"] and g["pass_at_k_ci95"] == w["pass_at_k_ci95"]  # the same numbers
        assert g["regimes"] == w["regimes"] and g["mean_reward"] == pytest.approx(w["mean_reward"], abs=1e-6)
    w, g = want["vs_base"]["t"], got["vs_base"]["t"]
    for key in ("delta_pass_at_k", "transitions", "support_prompts", "crossover_k", "pass1_gain"):
        assert g[key] == w[key], key
    # what needs the models is absent and named, never a made-up number
    assert "distance" not in g and "free_energy" not in g
    assert set(got["from_samples"]["not_measured"]) >= {"distance", "search", "likelihood estimator"}
    assert got["from_samples"]["samples_per_prompt"] == {"base": 64, "t": 32}
    # the log-probs written by the sampler give its mean negative log-likelihood, exactly
    lines = [json.loads(x) for x in (samples / "t.jsonl").read_text().splitlines()]
    per_prompt = {}
    for x in lines:
        per_prompt.setdefault(x["prompt_id"], []).append(-x["logp"])
    nll = sum(sum(v) / len(v) for v in per_prompt.values()) / len(per_prompt)
    assert got["per_model"]["t"]["sampler_nll"]["value"] == pytest.approx(nll, rel=1e-9)


def _counted(prompts: int, n: int, successes) -> list[dict]:
    """Rows with an exact number of successes per prompt: prompt i succeeds on its first successes(i) samples."""
    return [{"prompt": f"q{i}", "completions": [f"a{j % 3}" if j < successes(i) else "no" for j in range(n)],
             "reward": [1.0 if j < successes(i) else 0.0 for j in range(n)]} for i in range(prompts)]


def test_known_zero_and_known_gain(tmp_path):
    P, K, n = 20, 8, 16
    # the base: prompt i reaches i % 5 successes in its regime samples and 2 * (i % 5) among the 16 that measure
    base = [{"prompt": r["prompt"], "completions": r["completions"][:K] + m["completions"],
             "reward": r["reward"][:K] + m["reward"]}
            for r, m in zip(_counted(P, K, lambda i: i % 5), _counted(P, n, lambda i: 2 * (i % 5)), strict=True)]
    _write(tmp_path / "base.jsonl", base)
    _write(tmp_path / "same.jsonl", _counted(P, n, lambda i: 2 * (i % 5)))
    _write(tmp_path / "gain.jsonl", _counted(P, n, lambda i: 2 * (i % 5) + 3))
    args = ["--samples", str(tmp_path / "base.jsonl"), "--samples", f"same={tmp_path / 'same.jsonl'}",
            "--samples", f"gain={tmp_path / 'gain.jsonl'}", "--k", "1,4,16", "--budget-k", str(K),
            "--theta-basin", "0.5"]
    summary, rows = _probe(tmp_path, *args, "--no-progress")
    zero, gain = summary["vs_base"]["same"]["delta_pass_at_k"]["1"], summary["vs_base"]["gain"]["delta_pass_at_k"]["1"]
    assert zero["value"] == pytest.approx(0.0, abs=1e-12) and zero["ci95"] == pytest.approx([0.0, 0.0], abs=1e-12)
    assert gain["value"] == pytest.approx(3 / n, abs=1e-12) and gain["ci95"] == pytest.approx([3 / n, 3 / n], abs=1e-12)
    # the base's pass@1 is from its 16 measuring samples (2 * (i % 5) / 16), not from its first K
    assert summary["per_model"]["base"]["pass_at_k"]["1"] == pytest.approx(sum(2 * (i % 5) for i in range(P)) / P / n)
    # its regimes from the first K only: i % 5 == 0 never succeeded there -> singularity (4 prompts)
    assert summary["per_model"]["base"]["regimes"]["singularity"] == 4
    assert [r["models"]["base"]["c_regime"] for r in rows] == [i % 5 for i in range(P)]
    # 'gain' reached the 4 prompts the base missed: support expands there, and that gain is creation
    assert summary["vs_base"]["gain"]["support_prompts"]["E"]["value"] == 4
    assert summary["vs_base"]["gain"]["pass1_gain"]["creation"]["value"] == pytest.approx(4 / P * 3 / n)
    assert summary["vs_base"]["same"]["support_prompts"]["E"]["value"] == 0
    # the report reads the folder: the figures samples give, and no KL or trained free energy made up for it
    assert main(["report", str(tmp_path / "out")]) == 0
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert 'data-model="gain"' in page and 'id="passk"' in page and "No training curves" in page


def test_lm_eval_log_samples_scored_by_a_trl_style_reward(tmp_path):
    reward = tmp_path / "rew.py"
    reward.write_text("def reward(completions, target, **kwargs):\n"
                      "    return [float(c.strip() == t) for c, t in zip(completions, target)]\n")
    rows = []
    for i in range(6):
        resps = [str(i) if j < i else "x" for j in range(12)]
        arguments = ({"gen_args_0": {"arg_0": f"Say {i}:", "arg_1": {"until": ["\n"]}}} if i % 2
                     else [[f"Say {i}:", {"until": ["\n"]}]])  # both spellings lm-eval has written
        rows.append({"doc_id": i, "doc": {"question": f"Say {i}"}, "target": str(i), "arguments": arguments,
                     "resps": [resps], "filtered_resps": [resps[0]], "exact_match": 0.0})
    _write(tmp_path / "samples_task.jsonl", rows)
    summary, prompt_rows = _probe(tmp_path, "--samples", str(tmp_path / "samples_task.jsonl"), "--budget-k", "4",
                                  "--theta-basin", "0.8", "--k", "1,8", "--reward", f"{reward}:reward", "--no-progress")
    # prompt i: i successes among 12, the first 4 for the regimes, the 8 after them measure pass@1
    assert [r["models"]["base"]["c"] for r in prompt_rows] == [max(0, i - 4) for i in range(6)]
    assert [r["prompt"] for r in prompt_rows] == [f"Say {i}:" for i in range(6)]
    assert summary["from_samples"]["scored_by"] == f"{reward}:reward"
    assert summary["from_samples"]["reward_errors"] == 0


@pytest.mark.parametrize(("rows", "message"), [
    ([{"prompt": "a", "completions": ["x"] * 9}], "base.jsonl:1: prompt 'a' has a sample without 'reward'"),
    ([{"prompt": "a", "completion": "x", "reward": 1}, {"prompt": "a"}], "base.jsonl:2: each line needs 'completion'"),
    ([{"completion": "x", "reward": 1}], "base.jsonl:1: each line needs 'prompt'"),
    ([{"prompt": "a", "completion": "x", "reward": "high"}], "base.jsonl:1: 'reward' must be a finite number"),
    ([{"prompt": "a", "completions": ["x", "y"], "reward": [1]}], "'reward' must give one value per completion"),
    ([{"prompt": "a", "completions": ["x"] * 9, "reward": [0] * 9}, {"prompt": "b", "completion": "x", "reward": 0}],
     "base.jsonl:2: prompt 'b' has 1 samples, most prompts 9"),
    ([{"prompt": "a", "completions": ["x"] * 4, "reward": [0] * 4}],
     "the base needs more than the regime budget K = 8"),
    ([{"doc_id": 0, "arguments": [["p", {}]], "resps": [[["-1.5", False]]]}], "must be lists of generated texts"),
])
def test_bad_samples_files_are_one_line(tmp_path, capsys, rows, message):
    _write(tmp_path / "base.jsonl", rows)
    out = tmp_path / "out"
    assert main(["probe", "--samples", str(tmp_path / "base.jsonl"), *SMALL, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_bad_requests_are_refused(tmp_path, capsys, tiny_model_dir):
    base = _write(tmp_path / "base.jsonl", _counted(3, 12, lambda i: i))
    other = _write(tmp_path / "other.jsonl", _counted(2, 12, lambda i: i))
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"prompt": "a", "completion": "x", "reward": 1}\n{"prompt": \n')
    cases = [
        (["--samples", str(base), "--base", str(tiny_model_dir)], "give either --samples or --base/--trained"),
        (["--samples", str(base), "--samples", f"o={other}"], "this one lacks 'q2'"),
        (["--samples", str(base), "--estimator", "likelihood"], "use --estimator sampling"),
        (["--samples", str(base), "--task", "digits"], "--task does not apply"),
        (["--samples", str(base), "--n", "4"], "n set the sampling"),
        (["--samples", str(base), "--k", "1,8"], "the largest k = 8 exceeds the 4 samples"),
        (["--samples", str(broken)], "broken.jsonl:2: not a JSON object"),
        (["--samples", str(tmp_path / "nowhere.jsonl")], "cannot read it"),
    ]
    for args, message in cases:
        assert main(["probe", *args, *SMALL, "--out", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (args, err)
        assert not (tmp_path / "out").exists()


def test_labels_and_grouping(tmp_path):
    assert parse_samples(["a.jsonl", "b.jsonl"]) == {"base": "a.jsonl", "b": "b.jsonl"}
    assert list(parse_samples(["t=x.jsonl", "base=y.jsonl"])) == ["base", "t"]
    with pytest.raises(ProbeError, match="one file must be the base"):
        parse_samples(["t=x.jsonl"])
    with pytest.raises(ProbeError, match="used twice"):
        parse_samples(["a.jsonl", "base=b.jsonl"])
    path = _write(tmp_path / "s.jsonl", [{"prompt_id": 7, "prompt": "p", "text": "u", "reward": 0, "logp": -1.0},
                                         {"prompt": "q", "completion": "v", "reward": 1, "success": False},
                                         {"prompt_id": 7, "prompt": "p", "text": "w", "reward": 1, "logp": -2.0}])
    groups = read_samples(path)
    assert [(g.key, g.texts, g.logps) for g in groups] == [("7", ["u", "w"], [-1.0, -2.0]), ("q", ["v"], [None])]
    assert groups[1].success == [False]  # a row's own success wins over reward >= threshold
