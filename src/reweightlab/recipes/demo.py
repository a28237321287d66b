"""`reweightlab demo`: the whole idea on the embedded model, in one command.

the embedded base (shipped; another recipe is pretrained and cached) -> sample the base once ->
post-train with every method on an equal budget, each with several training seeds -> probe base and
every trained model in and out of distribution (pass@k, regimes, elicitation vs creation, support
change, KL to the base, free-energy gap; every difference with a paired interval over prompts) -> the
spread of each figure across seeds -> summary.json, probe-id/, probe-ood/, report.html + a table.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

from reweightlab.config import ConfigError, build, merge, parse_overrides, read_config_file, setting
from reweightlab.probe.intervals import across_seeds, excludes_zero
from reweightlab.recipes.arms import DEFAULT_ARMS, RL_KL_BETA, check_arms, run_label  # noqa: F401 (re-exported)
from reweightlab.recipes.pretrain import PretrainSpec
from reweightlab.rollout.search import SearchBudget

DEMO_METHODS = DEFAULT_ARMS
"""The arms of the study (recipes/arms.py): every method on the in-distribution rule with the same
budget, the arms that can move the support, the two controls, and claim (b)'s arms after the warm-up."""


@dataclass(frozen=True)
class DemoBudget:
    """The equal budget: every method trains on the same number of sequences (steps x batch).

    `reweightlab demo key=value` (or --config FILE) overrides any field, e.g. ``eval_samples=64`` or
    ``train_seeds=[0]``; ``--quick`` starts from QUICK_BUDGET instead of these defaults.
    """

    base: str = setting("embedded", "the base model: a save_pretrained folder of a causal LM, or 'embedded' (the "
                                    "packaged base of `pretrain`'s recipe)")
    task: str = setting("generalpoints", "a registered task, or a .jsonl/.parquet data file (then `reward` is needed)")
    reward: str = setting("", "with a data file: module:function, file.py:function or a built-in (exact_match, ...)")
    success_threshold: float = setting(1.0, "with a data file: a sample succeeds when its reward >= this")
    arms: tuple[str, ...] = setting(DEFAULT_ARMS, "the arms to train (recipes/arms.py; an arm after the one it "
                                                  "starts from)")
    pretrain: PretrainSpec = setting(PretrainSpec(), "the embedded base model's recipe (the default's base ships "
                                                     "with the package; any other is pretrained on first use and "
                                                     "cached under its hash)")
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
    revision_attempts: int = setting(5, "attempts per revision episode (Chu et al.: 5): the revision arms train on "
                                        "them, the probe measures success at attempt 1 and within the episode")
    revision_episodes: int = setting(16, "revision episodes per prompt in the probe")
    max_new_tokens: int = setting(24, "longest completion sampled, in tokens (training and probe)")
    curve_prompts: int = setting(128, "training prompts on which each checkpoint's J is sampled (claim a)")
    curve_samples: int = setting(8, "samples per prompt at each checkpoint (claims a and b)")

    @property
    def rl_steps(self) -> int:
        per_batch = self.rl_prompts_per_step * self.rl_samples_per_prompt
        return max(1, self.offline_steps * self.offline_sequences_per_step // per_batch)

    @property
    def sequences(self) -> int:
        return self.offline_steps * self.offline_sequences_per_step


DEFAULT_BUDGET = DemoBudget()
QUICK_BUDGET = replace(
    DEFAULT_BUDGET, num_prompts=64, base_samples_per_prompt=8, offline_steps=8,
    offline_sequences_per_step=32, rl_prompts_per_step=8, rl_samples_per_prompt=4, eval_prompts=12,
    eval_samples=32, search=SearchBudget(beam_width=4, expand_top=4), train_seeds=(0, 1), revision_episodes=2,
    curve_prompts=8, curve_samples=4, revision_attempts=2,
)


def load_budget(quick: bool = False, path: str | None = None, overrides=()) -> DemoBudget:
    """The demo's budget: the default (or quick) one, then a config file, then key=value overrides."""
    base = QUICK_BUDGET if quick else DEFAULT_BUDGET
    user = merge(read_config_file(path) if path else {}, parse_overrides(list(overrides)))
    budget = build(DemoBudget, merge(asdict(base), user))
    for key in ("num_prompts", "offline_steps", "offline_sequences_per_step", "rl_prompts_per_step",
                "rl_samples_per_prompt", "eval_prompts", "eval_samples", "revision_attempts", "revision_episodes",
                "max_new_tokens", "curve_prompts", "curve_samples"):
        if getattr(budget, key) < 1:
            raise ConfigError(f"config key '{key}': must be >= 1, got {getattr(budget, key)}")
    if not budget.train_seeds:
        raise ConfigError("config key 'train_seeds': needs at least one seed")
    return replace(budget, arms=check_arms(budget.arms))


def run_demo(out_root: str | Path = "runs", **kwargs) -> Path:
    """The study (recipes/study.py) with the demo's budget: ``reweightlab demo`` = ``reweightlab study``."""
    from reweightlab.recipes.study import run_study

    return run_study(out_root, **kwargs)


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


def _value(x):
    return x.get("value") if isinstance(x, dict) else x


# differences against the base, with intervals
DIFFERENCES = ("delta_pass1", "elicitation", "creation", "NSCR", "delta_within_episode")


def spread_across_seeds(summary: dict, variants=("id", "ood")) -> dict:
    """Per method and rule, each figure's mean, std, min and max over the training seeds; for a
    difference against the base also ``clear_of_zero``: in how many seeds its 95% interval excludes 0."""
    out = {}
    for method, info in summary["methods"].items():
        labels = [s["label"] for s in info["seeds"].values()]
        out[method] = {}
        for variant in variants:
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


def format_table(summary: dict, variants=("id", "ood")) -> str:
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
             f"{'':>13}{_cell(b['ood']['pass_at_k']['1'] if 'ood' in b else None, '.3f', 14)}"]
    none = {"mean": None}
    for method, by in spread.items():
        i, o = by["id"], by.get("ood", {"pass1": none})
        lines.append(f"{method:<13}" + _pm(i["pass1"], ".3f", 14) + _pm(i["delta_pass1"], "+.3f", 19)
                     + _pm(i["crossover_k"], ".1f", 13) + _pm(i["elicitation"], "+.3f", 19)
                     + _pm(i["creation"], "+.3f", 19) + _pm(i["support_E"], ".1f", 10) + _pm(i["support_S"], ".1f", 10)
                     + _pm(i["kl_to_base_per_token"], ".3f", 13) + _pm(o["pass1"], ".3f", 14))
    if "revision" in b["id"] and "ood" in variants:
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
    if "revision" in b["id"] and "ood" in variants:
        lines.append(f"revision: {summary['budget']['revision_episodes']} episodes per prompt of up to "
                     f"{summary['budget']['revision_attempts']} attempts, the verifier's feedback after each failed "
                     "one "
                     "(attempt 1 and within R from the same episodes; Δwithin: against the base, paired over prompts).")
    return "\n".join(lines)
