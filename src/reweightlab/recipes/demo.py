"""`reweightlab demo`: the whole idea on the embedded model, in one command.

pretrain (or reuse the cache) -> sample the base once -> post-train with every method on an equal
budget, each with several training seeds -> probe base and every trained model in and out of
distribution (pass@k, regimes, elicitation vs creation, support change, KL to the base, free-energy
gap; every difference with a paired interval over prompts) -> the spread of each figure across seeds
-> summary.json, probe-id/, probe-ood/, report.html + a table.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path

import torch

from reweightlab.algos import get_method
from reweightlab.config import ConfigError, build, merge, parse_overrides, read_config_file, setting
from reweightlab.files import write_text_atomic
from reweightlab.models import load_model, load_tokenizer
from reweightlab.probe.command import run_probe
from reweightlab.probe.intervals import across_seeds, excludes_zero
from reweightlab.probe.regimes import RegimeThresholds
from reweightlab.probe.study import ProbeSettings
from reweightlab.recipes.pretrain import QUICK_SPEC, PretrainSpec, ensure_embedded
from reweightlab.rollout import HFRolloutEngine
from reweightlab.rollout.scored import sample_and_score
from reweightlab.rollout.search import SearchBudget
from reweightlab.tasks import get_task
from reweightlab.train.config import config_from_dict
from reweightlab.train.loop import train

DEMO_METHODS = ("sft", "filtered_sft", "sft_q", "iw_sft", "dft", "search_sft", "grpo", "rloo", "grpo_revision",
                "sft_ood")
"""The arms of the study: every method trained on the in-distribution rule with the same budget;
``grpo_revision``, GRPO on revision episodes (up to ``revision_attempts`` attempts with the verifier's
feedback between them, Chu et al.'s RL); and ``sft_ood``, SFT on solver demonstrations under the other
rule (new information: the positive control of the probe's creation figures on that rule)."""
ARMS = {"sft_ood": ("sft", "ood"), "grpo_revision": ("grpo", "id")}
"""An arm that is not a method name: (method, training variant)."""
REVISION_ARMS = frozenset({"grpo_revision"})


@dataclass(frozen=True)
class DemoBudget:
    """The equal budget: every method trains on the same number of sequences (steps x batch).

    `reweightlab demo key=value` (or --config FILE) overrides any field, e.g. ``eval_samples=64`` or
    ``train_seeds=[0]``; ``--quick`` starts from QUICK_BUDGET instead of these defaults.
    """

    pretrain: PretrainSpec = setting(PretrainSpec(), "the embedded base model (cached under its hash)")
    num_prompts: int = setting(512, "training prompts (in-distribution rule, train split)")
    base_samples_per_prompt: int = setting(16, "base samples per prompt, shared by filtered SFT, SFT(Q) and iw-SFT")
    offline_steps: int = setting(100, "optimizer steps of each offline method")
    offline_sequences_per_step: int = setting(64, "sequences per offline step (RL gets as many sequences in all)")
    rl_prompts_per_step: int = setting(16, "RL prompts per batch")
    rl_samples_per_prompt: int = setting(8, "RL samples per prompt")
    offline_lr: float = setting(3e-4, "learning rate of the offline methods")
    rl_lr: float = setting(3e-4, "learning rate of RL")
    eval_prompts: int = setting(96, "held-out prompts probed per rule (test hands: distinct value multisets)")
    eval_samples: int = setting(128, "samples per prompt in the probe; also the regime budget K")
    search: SearchBudget = setting(SearchBudget(beam_width=16, expand_top=8), "the probe's verifier-guided search")
    train_seeds: tuple[int, ...] = setting((0, 1, 2), "every method is trained once per seed (added to --seed)")
    revision_attempts: int = setting(3, "attempts per revision episode: grpo_revision trains on them, the probe "
                                        "measures success at attempt 1 and within the episode")
    revision_episodes: int = setting(16, "revision episodes per prompt in the probe")

    @property
    def rl_steps(self) -> int:
        per_batch = self.rl_prompts_per_step * self.rl_samples_per_prompt
        return max(1, self.offline_steps * self.offline_sequences_per_step // per_batch)

    @property
    def sequences(self) -> int:
        return self.offline_steps * self.offline_sequences_per_step


DEFAULT_BUDGET = DemoBudget()
QUICK_BUDGET = replace(
    DEFAULT_BUDGET, pretrain=QUICK_SPEC, num_prompts=64, base_samples_per_prompt=8, offline_steps=8,
    offline_sequences_per_step=32, rl_prompts_per_step=8, rl_samples_per_prompt=4, eval_prompts=16,
    eval_samples=32, search=SearchBudget(beam_width=4, expand_top=4), train_seeds=(0, 1), revision_episodes=4,
)


def load_budget(quick: bool = False, path: str | None = None, overrides=()) -> DemoBudget:
    """The demo's budget: the default (or quick) one, then a config file, then key=value overrides."""
    base = QUICK_BUDGET if quick else DEFAULT_BUDGET
    user = merge(read_config_file(path) if path else {}, parse_overrides(list(overrides)))
    budget = build(DemoBudget, merge(asdict(base), user))
    for key in ("num_prompts", "offline_steps", "offline_sequences_per_step", "rl_prompts_per_step",
                "rl_samples_per_prompt", "eval_prompts", "eval_samples", "revision_attempts", "revision_episodes"):
        if getattr(budget, key) < 1:
            raise ConfigError(f"config key '{key}': must be >= 1, got {getattr(budget, key)}")
    if not budget.train_seeds:
        raise ConfigError("config key 'train_seeds': needs at least one seed")
    return budget


RL_KL_BETA = 0.05


def run_label(method: str, seed: int) -> str:
    """A trained model's name in the probe and the summary: ``<method>-s<seed>``."""
    return f"{method}-s{seed}"


def method_config(arm: str, budget: DemoBudget, base: str, out: Path, seed: int) -> dict:
    method, variant = ARMS.get(arm, (arm, "id"))
    raw = {
        "method": method, "output_dir": str(out / run_label(arm, seed)), "seed": seed,
        "model": {"path": base},
        "data": {"task": "generalpoints", "variant": variant, "num_prompts": budget.num_prompts},
        "optim": {"lr": budget.offline_lr, "sequences_per_microbatch": 128},
    }
    if get_method(method).is_rl:
        raw["optim"].update(lr=budget.rl_lr, steps=budget.rl_steps)
        raw["rl"] = {"prompts_per_step": budget.rl_prompts_per_step,
                     "samples_per_prompt": budget.rl_samples_per_prompt, "kl_beta": RL_KL_BETA}
        if arm in REVISION_ARMS:  # as many episodes as the other arm has samples; each up to R attempts
            raw["rl"]["revision_attempts"] = budget.revision_attempts
    else:
        raw["optim"].update(steps=budget.offline_steps, sequences_per_step=budget.offline_sequences_per_step)
    if method == "sft_q":
        # GeneralPoints rewards are -3, -2, -1, +5: a legal-but-wrong answer clears one threshold,
        # a correct one two, so correct answers are drawn twice as often as near misses.
        raw["offline"] = {"quality_thresholds": [-1.5, 0.0]}
    if method == "search_sft":  # the probe's search budget, on the training prompts sampling did not solve
        raw["search"] = budget.search.to_dict()
    return raw


def run_demo(out_root: str | Path = "runs", *, quick: bool = False, seed: int = 0, progress: bool = True,
             log=print, budget: DemoBudget | None = None) -> Path:
    """The whole study; ``budget`` (from load_budget) replaces the default or quick one."""
    torch.set_flush_denormal(True)
    budget = budget or (QUICK_BUDGET if quick else DEFAULT_BUDGET)
    t_start = time.perf_counter()
    out = Path(out_root) / f"demo-{datetime.now().strftime('%Y%m%d-%H%M%S')}{'-quick' if quick else ''}"
    out.mkdir(parents=True, exist_ok=False)
    base = str(ensure_embedded(budget.pretrain, progress=progress, log=log))
    task = get_task("generalpoints")
    summary = {"budget": {**budget.__dict__, "pretrain": budget.pretrain.key(), "search": budget.search.to_dict(),
                          "rl_steps": budget.rl_steps, "sequences_per_method": budget.sequences},
               "base_model": base, "quick": quick, "seed": seed, "methods": {}, "labels": {}}

    log(f"sampling the base model: {budget.num_prompts} prompts x {budget.base_samples_per_prompt}")
    base_samples, base_problems = _sample_base(base, task, budget, seed, progress)
    summary["base_samples"] = {"n": len(base_samples), "success_rate": float(base_samples.success_N.mean())}

    models = {"base": base}
    for method in DEMO_METHODS:
        summary["methods"][method] = {"seeds": {}}
        for train_seed in budget.train_seeds:
            label = run_label(method, seed + train_seed)
            cfg = config_from_dict(method_config(method, budget, base, out, seed + train_seed))
            t0 = time.perf_counter()
            shared = {} if cfg.resolved_source() not in ("base_samples", "search") else {
                "base_samples": base_samples.select(torch.arange(len(base_samples))), "base_problems": base_problems}
            run_dir = train(cfg, progress=progress, log=log, **shared)
            summary["methods"][method]["seeds"][str(seed + train_seed)] = {
                "label": label, "run_dir": str(run_dir), "train_seconds": round(time.perf_counter() - t0, 1)}
            summary["labels"][label] = {"method": method, "seed": seed + train_seed}
            models[label] = str(run_dir / "final")

    summary["eval"], summary["probe"] = _probe_all(models, budget, seed, progress, out, log)
    summary["across_seeds"] = spread_across_seeds(summary)
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
    samples = sample_and_score(engine, task, problems, tok, samples_per_prompt=budget.base_samples_per_prompt,
                               max_new_tokens=24, seed=seed, progress=progress).store
    return samples, problems


SEED_FIGURES = ("pass1", "delta_pass1", "crossover_k", "elicitation", "creation", "support_E", "support_S",
                "NSCR", "kl_to_base_per_token", "free_energy_gap", "first_attempt", "within_episode",
                "delta_within_episode")


def _vs_base_figures(v: dict, beta: str) -> dict:
    """The interval-backed comparisons of one trained model that the summary and the report show."""
    sp, fe = v["support_prompts"], v["free_energy"][beta]
    return {
        "delta_pass1": v["delta_pass_at_k"]["1"], "crossover_k": v["crossover_k"],
        "elicitation": v["pass1_gain"]["elicitation"], "creation": v["pass1_gain"]["creation"],
        "support_E": sp["E"], "support_S": sp["S"], "NSCR": sp["NSCR"], "SRR": sp["SRR"], "NDR": sp["NDR"],
        "kl_to_base_per_token": v["distance"]["reverse"]["kl_exact_per_token"],
        "kl_base_to_model_per_token": v["distance"]["forward"]["kl_exact_per_token"],
        "free_energy_gap": fe["gap"], "free_energy_gap_minus_base": fe["gap_minus_base"],
        "free_energy_within": fe["within"],
    }


def _probe_all(models: dict, budget: DemoBudget, seed: int, progress: bool, out: Path, log) -> tuple[dict, dict]:
    """`reweightlab probe` on the base and every trained model, once per rule; the per-model figures
    go into summary['eval'], each with its comparison against the base (intervals over prompts)."""
    results: dict = {name: {} for name in models}
    probe: dict = {}
    trained = {name: path for name, path in models.items() if name != "base"}
    for variant in ("id", "ood"):
        settings = ProbeSettings(
            task="generalpoints", variant=variant, num_prompts=budget.eval_prompts, n=budget.eval_samples,
            thresholds=RegimeThresholds(budget_K=budget.eval_samples), search=budget.search, seed=seed + 7919,
            betas=(RL_KL_BETA, 0.3, 3.0), revision_attempts=budget.revision_attempts,
            revision_episodes=budget.revision_episodes,
        )
        p = run_probe(models["base"], trained, settings, out / f"probe-{variant}", progress=progress,
                      log=lambda *_: None)
        beta = f"{settings.beta:g}"
        for name, m in p["per_model"].items():
            results[name][variant] = {k: m[k] for k in ("pass_at_k", "pass_at_k_ci95", "mean_reward",
                                                         "sample_tokens_per_s", "regimes", "diversity")}
            if m.get("revision"):
                r = m["revision"]
                results[name][variant]["revision"] = {k: r[k] for k in (
                    "success_first_attempt", "success_within_episode", "revision_gain", "found_by_revision")}
            if name != "base":
                results[name][variant] |= _vs_base_figures(p["vs_base"][name], beta)
                if p["vs_base"][name].get("revision"):
                    results[name][variant]["delta_within_episode"] = (
                        p["vs_base"][name]["revision"]["delta_success_within_episode"])
            else:
                results[name][variant]["free_energy_gap"] = m["free_energy"][beta]["gap"]
        probe[variant] = {"dir": f"probe-{variant}", "seconds": p["seconds"], "estimator": p["estimator"],
                          "beta": settings.beta}
        log(f"probed {len(models)} models ({variant.upper()} rule) in {p['seconds']:.0f} s")
    return results, probe


def _value(x):
    return x.get("value") if isinstance(x, dict) else x


# differences against the base, with intervals
DIFFERENCES = ("delta_pass1", "elicitation", "creation", "NSCR", "delta_within_episode")


def spread_across_seeds(summary: dict) -> dict:
    """Per method and rule, each figure's mean, std, min and max over the training seeds; for a
    difference against the base also ``clear_of_zero``: in how many seeds its 95% interval excludes 0."""
    out = {}
    for method, info in summary["methods"].items():
        labels = [s["label"] for s in info["seeds"].values()]
        out[method] = {}
        for variant in ("id", "ood"):
            rows = [summary["eval"][label][variant] for label in labels]
            figs = {"pass1": [r["pass_at_k"]["1"] for r in rows]}
            own = ("pass1", "first_attempt", "within_episode")
            figs |= {f: [_value(r.get(f)) for r in rows] for f in SEED_FIGURES if f not in own}
            for f, key in (("first_attempt", "success_first_attempt"), ("within_episode", "success_within_episode")):
                figs[f] = [_value((r.get("revision") or {}).get(key)) for r in rows]
            out[method][variant] = {f: across_seeds(v) for f, v in figs.items()}
            for f in DIFFERENCES:
                out[method][variant][f]["clear_of_zero"] = sum(excludes_zero(r[f]) for r in rows if r.get(f))
    return out


def _cell(x, spec: str, width: int) -> str:
    return f"{'-' if x is None else format(x, spec):>{width}}"


def _pm(spread: dict, spec: str, width: int) -> str:
    """``mean±std``, and for a difference ``(k)``: the seeds whose interval over prompts excludes 0."""
    if spread["mean"] is None:
        return f"{'-':>{width}}"
    sd = "" if spread["std"] is None else f"±{spread['std']:{spec.lstrip('+')}}"
    clear = f" ({spread['clear_of_zero']})" if "clear_of_zero" in spread else ""
    return f"{format(spread['mean'], spec) + sd + clear:>{width}}"


def format_table(summary: dict) -> str:
    """One row per method: each figure's mean ± std across its training seeds (ID rule, then OOD pass@1)."""
    ev, spread = summary["eval"], summary["across_seeds"]
    kmax = max(int(k) for k in ev["base"]["id"]["pass_at_k"])
    n_seeds = max(len(m["seeds"]) for m in summary["methods"].values())
    head = (f"{'method':<13}{'ID pass@1':>14}{'Δpass@1':>19}{'k*':>13}{'elicit':>19}{'create':>19}{'E':>10}{'S':>10}"
            f"{'KL/tok':>13}{'OOD pass@1':>14}")
    b = ev["base"]
    lines = [f"mean ± std over {n_seeds} training seeds; (k): in how many seeds the difference's 95% interval over "
             "prompts excludes 0 (each seed's intervals: summary.json, the report)", head, "-" * len(head),
             f"{'base':<13}{b['id']['pass_at_k']['1']:>14.3f}{'':>19}{'':>13}{'':>19}{'':>19}{'':>10}{'':>10}"
             f"{'':>13}{b['ood']['pass_at_k']['1']:>14.3f}"]
    for method, by in spread.items():
        i, o = by["id"], by["ood"]
        lines.append(f"{method:<13}" + _pm(i["pass1"], ".3f", 14) + _pm(i["delta_pass1"], "+.3f", 19)
                     + _pm(i["crossover_k"], ".1f", 13) + _pm(i["elicitation"], "+.3f", 19)
                     + _pm(i["creation"], "+.3f", 19) + _pm(i["support_E"], ".1f", 10) + _pm(i["support_S"], ".1f", 10)
                     + _pm(i["kl_to_base_per_token"], ".3f", 13) + _pm(o["pass1"], ".3f", 14))
    if "revision" in b["id"]:
        head = (f"{'revision':<13}{'ID attempt 1':>14}{'ID within R':>14}{'Δwithin':>19}{'OOD attempt 1':>15}"
                f"{'OOD within R':>14}{'Δwithin':>19}")
        lines += ["", head, "-" * len(head)]
        rb = {v: b[v]["revision"] for v in ("id", "ood")}
        lines.append(f"{'base':<13}{rb['id']['success_first_attempt']['value']:>14.3f}"
                     f"{rb['id']['success_within_episode']['value']:>14.3f}{'':>19}"
                     f"{rb['ood']['success_first_attempt']['value']:>15.3f}{rb['ood']['success_within_episode']['value']:>14.3f}")
        for method, by in spread.items():
            i, o = by["id"], by["ood"]
            lines.append(f"{method:<13}" + _pm(i["first_attempt"], ".3f", 14) + _pm(i["within_episode"], ".3f", 14)
                         + _pm(i["delta_within_episode"], "+.3f", 19) + _pm(o["first_attempt"], ".3f", 15)
                         + _pm(o["within_episode"], ".3f", 14) + _pm(o["delta_within_episode"], "+.3f", 19))
    lines += [
        f"k*: the k at which the base catches up in distribution (- : not up to k={kmax}). elicit / create: the "
        "ID pass@1 gain on prompts the base reached within K samples / did not (they add up to Δpass@1).",
        "E / S: prompts only the model / only the base reached within K samples. KL/tok: exact KL(model || base) per "
        "token on the model's samples. Details: probe-id/, probe-ood/, report.html.",
    ]
    if "revision" in b["id"]:
        lines.append(f"revision: {summary['budget']['revision_episodes']} episodes per prompt of up to "
                     f"{summary['budget']['revision_attempts']} attempts, the verifier's feedback after each failed "
                     "one "
                     "(attempt 1 and within R from the same episodes; Δwithin: against the base, paired over prompts).")
    return "\n".join(lines)
