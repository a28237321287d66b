"""`reweightlab demo`: the whole idea on the embedded model, in one command.

pretrain (or reuse the cache) -> sample the base once -> post-train with every method on an equal
budget -> evaluate base and each model in and out of distribution -> summary.json + a table.
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
from reweightlab.probe import evaluate_passk
from reweightlab.probe.passk_stats import bootstrap_passk, crossover_k
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
    eval_prompts: int
    eval_samples: int

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
    offline_lr=3e-4, rl_lr=3e-4, eval_prompts=200, eval_samples=32,
)
QUICK_BUDGET = DemoBudget(
    pretrain=QUICK_SPEC, num_prompts=64, base_samples_per_prompt=8, offline_steps=8,
    offline_sequences_per_step=32, rl_prompts_per_step=8, rl_samples_per_prompt=4,
    offline_lr=3e-4, rl_lr=3e-4, eval_prompts=32, eval_samples=8,
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
    summary = {"budget": {**budget.__dict__, "pretrain": budget.pretrain.key(), "rl_steps": budget.rl_steps,
                          "sequences_per_method": budget.sequences},
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

    summary["eval"] = _evaluate_all(models, task, budget, seed, progress, out, log)
    summary["total_seconds"] = round(time.perf_counter() - t_start, 1)
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=2))
    log(format_table(summary))
    log(f"\nwrote {out / 'summary.json'}")
    return out


def _sample_base(base: str, task, budget: DemoBudget, seed: int, progress: bool):
    tok, model = load_tokenizer(base), load_model(base)
    problems = task.problems("id", "train", budget.num_prompts, seed)
    engine = HFRolloutEngine(model, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    return sample_and_score(engine, task, problems, tok, samples_per_prompt=budget.base_samples_per_prompt,
                            max_new_tokens=24, seed=seed, progress=progress).store


def _evaluate_all(models: dict, task, budget: DemoBudget, seed: int, progress: bool, out: Path, log) -> dict:
    from tqdm.auto import tqdm

    results: dict = {}
    (out / "eval").mkdir(exist_ok=True)
    bar = tqdm(total=2 * len(models), desc="evaluating", disable=not progress)
    for name, path in models.items():
        tok, model = load_tokenizer(path), load_model(path)
        results[name] = {}
        for variant in ("id", "ood"):
            bar.update()
            r = evaluate_passk(model, tok, task, variant=variant, n_prompts=budget.eval_prompts,
                               samples_per_prompt=budget.eval_samples, seed=seed + 7919, progress=False)
            ci = bootstrap_passk(torch.tensor(r.n_P), torch.tensor(r.c_P), sorted(r.pass_at_k), seed=seed)
            results[name][variant] = {"pass_at_k": r.to_dict()["pass_at_k"], "mean_reward": r.mean_reward,
                                      "pass_at_k_ci95": {str(k): [lo, hi] for k, (_, lo, hi) in ci.items()},
                                      "sample_tokens_per_s": round(r.sample_tokens_per_s)}
            write_text_atomic(out / "eval" / f"{name}-{variant}.json", json.dumps(r.to_dict()))
        if name != "base":
            for variant in ("id", "ood"):
                curves = [{int(k): v for k, v in results[m][variant]["pass_at_k"].items()} for m in ("base", name)]
                results[name][variant]["crossover_k_vs_base"] = crossover_k(*curves)
        if progress:
            log(f"evaluated {name}: ID pass@1 {results[name]['id']['pass_at_k']['1']:.3f}, "
                f"OOD pass@1 {results[name]['ood']['pass_at_k']['1']:.3f}")
    return results


def format_table(summary: dict) -> str:
    ev = summary["eval"]
    kmax = max(int(k) for k in ev["base"]["id"]["pass_at_k"])
    head = (f"{'model':<14}{'ID pass@1':>10}{f'ID pass@{kmax}':>12}{'ID k*':>7}{'OOD pass@1':>12}"
            f"{f'OOD pass@{kmax}':>13}{'train s':>9}")
    lines = [head, "-" * len(head)]
    for name, r in ev.items():
        t = summary["methods"].get(name, {}).get("train_seconds", "")
        kstar = r["id"].get("crossover_k_vs_base")
        kstar = "-" if kstar is None else f"{kstar:.1f}"
        lines.append(
            f"{name:<14}{r['id']['pass_at_k']['1']:>10.3f}{r['id']['pass_at_k'][str(kmax)]:>12.3f}{kstar:>7}"
            f"{r['ood']['pass_at_k']['1']:>12.3f}{r['ood']['pass_at_k'][str(kmax)]:>13.3f}{t!s:>9}"
        )
    lines.append(f"k*: the k at which the base catches up with the method in distribution (- : it does not, "
                 f"up to k={kmax}); 95% bootstrap intervals over prompts are in summary.json")
    return "\n".join(lines)
