"""`reweightlab demo`: the whole idea on the embedded model, in one command.

pretrain (or reuse the cache) -> sample the base once -> post-train with every method on an equal
budget -> probe base and every model in and out of distribution (pass@k, regimes, elicitation vs
creation, KL to the base, free-energy gap) -> summary.json, probe-id/, probe-ood/ + a table.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import torch

from reweightlab.config import config_from_dict
from reweightlab.models import load_model, load_tokenizer
from reweightlab.models.pretrain import QUICK_SPEC, PretrainSpec, ensure_embedded
from reweightlab.probe.command import run_probe
from reweightlab.probe.regimes import RegimeThresholds
from reweightlab.probe.search import SearchBudget
from reweightlab.probe.study import ProbeSettings
from reweightlab.rollout import HFRolloutEngine
from reweightlab.tasks import get_task
from reweightlab.train.checkpoint import write_text_atomic
from reweightlab.train.data import sample_and_score
from reweightlab.train.loop import train

DEMO_METHODS = ("sft", "filtered_sft", "sft_q", "iw_sft", "dft", "grpo", "rloo")


@dataclass(frozen=True)
class DemoBudget:
    """The equal budget: every method trains on the same number of sequences (steps x batch)."""

    pretrain: PretrainSpec
    num_prompts: int  # training prompts (in-distribution rule, train split)
    base_samples_per_prompt: int  # base samples shared by filtered SFT, SFT(Q) and iw-SFT
    offline_steps: int
    offline_sequences_per_step: int
    rl_prompts_per_step: int
    rl_samples_per_prompt: int
    offline_lr: float
    rl_lr: float
    eval_prompts: int  # held-out prompts probed per rule
    eval_samples: int  # samples per prompt in the probe; also the regime budget K
    search: SearchBudget

    @property
    def rl_steps(self) -> int:
        per_batch = self.rl_prompts_per_step * self.rl_samples_per_prompt
        return max(1, self.offline_steps * self.offline_sequences_per_step // per_batch)

    @property
    def sequences(self) -> int:
        return self.offline_steps * self.offline_sequences_per_step


DEFAULT_BUDGET = DemoBudget(
    pretrain=PretrainSpec(), num_prompts=512, base_samples_per_prompt=16, offline_steps=150,
    offline_sequences_per_step=64, rl_prompts_per_step=16, rl_samples_per_prompt=8,
    offline_lr=3e-4, rl_lr=3e-4, eval_prompts=128, eval_samples=128,
    search=SearchBudget(),
)
QUICK_BUDGET = DemoBudget(
    pretrain=QUICK_SPEC, num_prompts=64, base_samples_per_prompt=8, offline_steps=8,
    offline_sequences_per_step=32, rl_prompts_per_step=8, rl_samples_per_prompt=4,
    offline_lr=3e-4, rl_lr=3e-4, eval_prompts=16, eval_samples=32,
    search=SearchBudget(beam_width=4, expand_top=4),
)


def method_config(method: str, budget: DemoBudget, base: str, out: Path, seed: int) -> dict:
    raw = {
        "method": method, "output_dir": str(out / method), "seed": seed,
        "model": {"path": base},
        "data": {"task": "generalpoints", "variant": "id", "num_prompts": budget.num_prompts},
        "optim": {"lr": budget.offline_lr, "sequences_per_microbatch": 128},
    }
    if method in ("grpo", "rloo"):
        raw["optim"].update(lr=budget.rl_lr, steps=budget.rl_steps)
        raw["rl"] = {"prompts_per_step": budget.rl_prompts_per_step,
                     "samples_per_prompt": budget.rl_samples_per_prompt, "kl_beta": 0.05}
    else:
        raw["optim"].update(steps=budget.offline_steps, sequences_per_step=budget.offline_sequences_per_step)
    if method == "sft_q":
        # GeneralPoints rewards are -3, -2, -1, +5: a legal-but-wrong answer clears one threshold,
        # a correct one two, so correct answers are drawn twice as often as near misses.
        raw["offline"] = {"quality_thresholds": [-1.5, 0.0]}
    return raw


def run_demo(out_root: str | Path = "runs", *, quick: bool = False, seed: int = 0, progress: bool = True,
             log=print) -> Path:
    torch.set_flush_denormal(True)
    budget = QUICK_BUDGET if quick else DEFAULT_BUDGET
    t_start = time.perf_counter()
    out = Path(out_root) / f"demo-{datetime.now().strftime('%Y%m%d-%H%M%S')}{'-quick' if quick else ''}"
    out.mkdir(parents=True, exist_ok=False)
    base = str(ensure_embedded(budget.pretrain, progress=progress, log=log))
    task = get_task("generalpoints")
    summary = {"budget": {**budget.__dict__, "pretrain": budget.pretrain.key(), "search": budget.search.to_dict(),
                          "rl_steps": budget.rl_steps, "sequences_per_method": budget.sequences},
               "base_model": base, "quick": quick, "seed": seed, "methods": {}}

    log(f"sampling the base model: {budget.num_prompts} prompts x {budget.base_samples_per_prompt}")
    base_samples = _sample_base(base, task, budget, seed, progress)
    summary["base_samples"] = {"n": len(base_samples), "success_rate": float(base_samples.columns["success"].mean())}

    models = {"base": base}
    for method in DEMO_METHODS:
        cfg = config_from_dict(method_config(method, budget, base, out, seed))
        t0 = time.perf_counter()
        run_dir = train(cfg, progress=progress, base_samples=base_samples.select(torch.arange(len(base_samples))),
                        log=log)
        summary["methods"][method] = {"run_dir": str(run_dir), "train_seconds": round(time.perf_counter() - t0, 1)}
        models[method] = str(run_dir / "final")

    summary["eval"], summary["probe"] = _probe_all(models, budget, seed, progress, out, log)
    summary["total_seconds"] = round(time.perf_counter() - t_start, 1)
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=2))
    log(format_table(summary))
    log(f"\nwrote {out / 'summary.json'}")
    from reweightlab.report import write_report  # here, not at the top: matplotlib loads only once it is needed

    log(f"report: {write_report([out])}")
    return out


def _sample_base(base: str, task, budget: DemoBudget, seed: int, progress: bool):
    tok, model = load_tokenizer(base), load_model(base)
    problems = task.problems("id", "train", budget.num_prompts, seed)
    engine = HFRolloutEngine(model, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    return sample_and_score(engine, task, problems, tok, samples_per_prompt=budget.base_samples_per_prompt,
                            max_new_tokens=24, seed=seed, progress=progress).store


def _probe_all(models: dict, budget: DemoBudget, seed: int, progress: bool, out: Path, log) -> tuple[dict, dict]:
    """`reweightlab probe` on the base and every trained model, once per rule; the per-model pass@k
    figures go into summary['eval'], the comparisons with the base into summary['probe']."""
    results: dict = {name: {} for name in models}
    probe: dict = {}
    trained = {name: path for name, path in models.items() if name != "base"}
    for variant in ("id", "ood"):
        settings = ProbeSettings(
            task="generalpoints", variant=variant, num_prompts=budget.eval_prompts, n=budget.eval_samples,
            thresholds=RegimeThresholds(budget_K=budget.eval_samples), search=budget.search, seed=seed + 7919,
        )
        p = run_probe(models["base"], trained, settings, out / f"probe-{variant}", progress=progress,
                      log=lambda *_: None)
        for name, m in p["per_model"].items():
            results[name][variant] = {k: m[k] for k in ("pass_at_k", "pass_at_k_ci95", "mean_reward",
                                                         "sample_tokens_per_s", "regimes")}
            if name != "base":
                v = p["vs_base"][name]
                results[name][variant] |= {
                    "crossover_k_vs_base": v["crossover_k"],
                    "elicitation": v["pass1_gain"]["elicitation"], "creation": v["pass1_gain"]["creation"],
                    "support_lost": v["support_shrinkage"]["lost"],
                    "kl_to_base_per_token": v["distance"]["kl_exact_per_token"],
                    "free_energy_gap": v["free_energy"]["mean_gap"],
                }
            else:
                results[name][variant]["free_energy_gap"] = m["free_energy"]["mean_gap"]
        probe[variant] = {"dir": f"probe-{variant}", "seconds": p["seconds"], "estimator": p["estimator"]}
        log(f"probed {len(models)} models ({variant.upper()} rule) in {p['seconds']:.0f} s")
    return results, probe


def _cell(x, spec: str, width: int) -> str:
    return f"{'-' if x is None else format(x, spec):>{width}}"


def format_table(summary: dict) -> str:
    ev = summary["eval"]
    kmax = max(int(k) for k in ev["base"]["id"]["pass_at_k"])
    head = (f"{'model':<14}{'ID pass@1':>10}{f'ID pass@{kmax}':>12}{'ID k*':>7}{'elicit':>8}{'create':>8}"
            f"{'KL/tok':>8}{'F gap':>7}{'OOD pass@1':>12}{f'OOD pass@{kmax}':>13}{'train s':>9}")
    lines = [head, "-" * len(head)]
    for name, r in ev.items():
        i, o = r["id"], r["ood"]
        t = summary["methods"].get(name, {}).get("train_seconds")
        lines.append(
            f"{name:<14}{i['pass_at_k']['1']:>10.3f}{i['pass_at_k'][str(kmax)]:>12.3f}"
            + _cell(i.get("crossover_k_vs_base"), ".1f", 7) + _cell(i.get("elicitation"), "+.3f", 8)
            + _cell(i.get("creation"), "+.3f", 8) + _cell(i.get("kl_to_base_per_token"), ".3f", 8)
            + _cell(i.get("free_energy_gap"), ".2f", 7)
            + f"{o['pass_at_k']['1']:>12.3f}{o['pass_at_k'][str(kmax)]:>13.3f}" + _cell(t, "", 9)
        )
    lines += [
        f"k*: the k at which the base catches up in distribution (- : not up to k={kmax}). elicit / create: the "
        "ID pass@1 gain on prompts the base reached within budget / did not (they add up to the gain).",
        "KL/tok: exact KL(model || base) per token on the model's samples. F gap: F_beta[model] - F* (beta=1); "
        "the base row is the gap a perfect reweighting would close. Details: probe-id/, probe-ood/.",
    ]
    return "\n".join(lines)
