"""The probe's two controls, on real models built here: a case where the answer is known to be zero
(a "trained" model identical to its base) and one where it is known not to be (a model given new
information: demonstrations for prompts its base cannot reach).

The task: prompt ``q<i>:`` has one correct completion, a three-digit code fixed per prompt. The base
is a tiny model trained on the codes of the first 12 prompts only, so it reaches those (basin or
tail) and not the other 12, which no amount of reweighting can reach: the base has nothing there to
reweight. The positive control is the base trained further on the codes of 6 of the unreached 12.
"""

from __future__ import annotations

import random

import pytest
import torch

from reweightlab.data.encoding import encode_completions, encode_prompts
from reweightlab.models import load_model, load_tokenizer
from reweightlab.probe.command import run_probe
from reweightlab.probe.intervals import excludes_zero
from reweightlab.probe.regimes import RegimeThresholds
from reweightlab.probe.study import ProbeSettings
from reweightlab.rollout.search import SearchBudget
from reweightlab.tasks import Problem, Verdict, register_task

NUM = 24
KNOWN = range(0, 12)  # taught to the base
NEW = range(12, 18)  # taught only to the positive control (new information)
_rng = random.Random(7)
CODES = ["".join(_rng.choice("0123456789") for _ in range(3)) for _ in range(NUM)]


class CodeTask:
    name = "codes"
    variants = ("id",)
    success_score = 1.0
    max_completion_chars = 3

    def problems(self, variant, split, n, seed):
        return [Problem(id=f"q{i}", prompt=f"q{i}:", variant=variant, split=split) for i in range(n)]

    def verify(self, problem, completion):
        ok = completion == CODES[int(problem.id[1:])]
        return Verdict(1.0 if ok else 0.0, ok, "right code" if ok else "wrong code")

    def solutions(self, problem):
        return [CODES[int(problem.id[1:])]]

    def prefix_feasible(self, problem, prefix):
        return CODES[int(problem.id[1:])].startswith(prefix)


register_task("codes", CodeTask, replace=True)


def _teach(model, tok, prompts: list[int], steps: int, lr: float) -> None:
    """Plain teacher forcing on the codes of ``prompts`` (completion tokens only)."""
    ids_p = encode_prompts(tok, [f"q{i}:" for i in prompts])
    ids_c = encode_completions(tok, [CODES[i] for i in prompts])
    rows = [p + c for p, c in zip(ids_p, ids_c, strict=True)]
    L = max(map(len, rows))
    ids = torch.full((len(rows), L), tok.pad_token_id)
    labels = torch.full((len(rows), L), -100)
    for r, (p, c) in enumerate(zip(ids_p, ids_c, strict=True)):
        ids[r, : len(p) + len(c)] = torch.tensor(p + c)
        labels[r, len(p) : len(p) + len(c)] = torch.tensor(c)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    model.train()
    for _ in range(steps):
        loss = model(input_ids=ids, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()


def _save(model, tok, path):
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def control_probe(tiny_model_dir, tmp_path_factory):
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("controls")
    tok = load_tokenizer(tiny_model_dir)
    model = load_model(tiny_model_dir)
    _teach(model, tok, list(KNOWN), steps=60, lr=1e-2)
    base = _save(model, tok, root / "base")
    same = _save(load_model(base), tok, root / "same")  # the negative control: the base, unchanged
    new = load_model(base)
    _teach(new, tok, list(NEW), steps=60, lr=1e-2)
    informed = _save(new, tok, root / "informed")
    settings = ProbeSettings(task="codes", num_prompts=NUM, n=128, ks=(1, 2, 4, 8, 16, 32, 64, 128),
                             thresholds=RegimeThresholds(budget_K=128), max_new_tokens=5, keep_per_prompt=16,
                             search=SearchBudget(beam_width=4, expand_top=4, max_new_tokens=5), seed=3)
    return run_probe(base, {"same": same, "informed": informed}, settings, root / "probe", progress=False,
                     log=lambda *_: None)


def _interval_figures(v: dict) -> dict[str, dict]:
    """Every difference between a trained model and the base that carries an interval."""
    figs = {f"delta_pass@{k}": f for k, f in v["delta_pass_at_k"].items()}
    figs |= {name: v["pass1_gain"][name] for name in ("total", "elicitation", "creation")}
    figs |= {f"support_{k}": f for k, f in v["support_prompts"].items() if k in ("NSCR",)}
    figs |= {f"solutions_{k}": f for k, f in v["support_solutions"].items() if k == "NSCR"}
    figs |= {f"diversity_{k}": f for k, f in v["diversity"].items()}
    figs |= {f"gap_minus_base@{b}": fe["gap_minus_base"] for b, fe in v["free_energy"].items()}
    return figs


def test_the_base_reaches_the_taught_prompts_only(control_probe):
    rows = control_probe["per_model"]["base"]
    assert rows["regimes"]["basin"] + rows["regimes"]["tail"] >= 10  # most of the 12 taught prompts
    assert rows["regimes"]["barrier"] + rows["regimes"]["singularity"] >= 12


def test_negative_control_identical_model_shows_no_difference(control_probe):
    v = control_probe["vs_base"]["same"]
    assert v["pass1_gain"]["creation"]["value"] == 0.0  # no sample of either model solves an unreached prompt
    assert v["distance"]["reverse"]["kl_exact_per_token"] == 0.0
    inside = {name: f for name, f in _interval_figures(v).items() if excludes_zero(f)}
    assert not inside, f"differences of an identical model whose interval excludes 0: {inside}"


def test_positive_control_new_information_is_creation_on_exactly_those_prompts(control_probe):
    import json

    v = control_probe["vs_base"]["informed"]
    creation, elicitation = v["pass1_gain"]["creation"], v["pass1_gain"]["elicitation"]
    assert excludes_zero(creation) and creation["value"] > 0.1
    # taught only the new codes, the model forgets some old ones: the probe sees that as negative elicitation
    assert elicitation["value"] < 0
    assert v["support_prompts"]["E"]["value"] >= 5 and excludes_zero(v["support_prompts"]["E"])  # expansion
    # the prompts with a creation gain are exactly the newly taught ones
    rows = [json.loads(line) for line in (_probe_dir(control_probe) / "probe_prompts.jsonl").read_text().splitlines()]
    created = {int(r["id"][1:]) for r in rows
               if r["models"]["base"]["regime"] in ("barrier", "singularity")
               and r["models"]["informed"]["c"] / r["models"]["informed"]["n"] > 0.05}
    assert created == set(NEW)


def _probe_dir(summary):
    from pathlib import Path

    return Path(summary["models"]["same"]).parent / "probe"
