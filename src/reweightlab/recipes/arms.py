"""The arms of a study: which method each trains, on which rule, from which model, with which settings.

An arm is a method with a few settings of its own. Every arm trains on the same number of sequences
(the study's unit of compute: ``offline_steps x offline_sequences_per_step``; an RL batch of episodes
counts one sequence per episode, whatever its number of attempts). The arms each claim needs:

- the bound (claim a): ``filtered_sft``, ``iw_sft`` (the authors' preset, a sequence weight from the
  mean per-token log-ratio), ``iw_sft_seq`` (the sequence's own ratio, summed) and ``grpo``, all on the
  same 0/1 success (RL with ``rl.reward: success``), the signal the SFT arms curate with;
- memorise vs generalise (claim b): ``sft`` is the shared warm-up; ``warmup_sft`` continues SFT from it,
  ``warmup_rl`` runs GRPO from it on revision episodes (Chu et al.'s RL: a smaller learning rate, the
  ratio clipped over two minibatches per batch, the KL to the warm-up);
- pass@k crossover (claim c): ``grpo`` against the base;
- creation (claim d): the reweightings (every arm above but the creation arms), the arms that can move
  the support (``search_sft``, ``grpo_revision``), the positive control ``sft_ood`` (new information:
  demonstrations under the other rule) and the negative control ``base_copy`` (the base itself,
  untrained: its differences from the base are sampling noise).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from reweightlab.algos import get_method


@dataclass(frozen=True)
class Arm:
    name: str
    method: str | None  # None: no training (the negative control)
    variant: str = "id"
    start: str | None = None  # train from this arm's final model (same seed) instead of the base
    rl: dict = field(default_factory=dict)  # rl.* settings of this arm
    offline: dict = field(default_factory=dict)
    lr_scale: float = 1.0
    creates: bool = False  # can move the base's support (search, interaction, new information)
    summary: str = ""


RL_KL_BETA = 0.05
REVISION = "revision"  # an rl value meaning "the study's revision_attempts"

ARMS: dict[str, Arm] = {a.name: a for a in (
    Arm("sft", "sft", summary="SFT on solver demonstrations (also claim b's warm-up)"),
    Arm("filtered_sft", "filtered_sft", summary="SFT on the base's successful samples"),
    # GeneralPoints rewards are -3, -2, -1, +5: a legal-but-wrong answer clears one threshold, a correct
    # one two, so correct answers are drawn twice as often as near misses.
    Arm("sft_q", "sft_q", offline={"quality_thresholds": [-1.5, 0.0]}, summary="SFT(Q) on the base's samples"),
    Arm("iw_sft", "iw_sft", summary="iw-SFT, the authors' preset (mean per-token log-ratio, clip [0, 16])"),
    Arm("iw_sft_seq", "iw_sft", offline={"iw_preset": "llm-seq"},
        summary="iw-SFT with the sequence's own ratio (summed log-ratio, clip [0, 16])"),
    Arm("dft", "dft", summary="DFT on solver demonstrations"),
    Arm("search_sft", "search_sft", creates=True, summary="SFT on sampled successes + what the search found"),
    Arm("grpo", "grpo", rl={"reward": "success"}, summary="GRPO on the 0/1 success"),
    Arm("rloo", "rloo", rl={"reward": "success"}, summary="RLOO on the 0/1 success"),
    Arm("grpo_revision", "grpo", rl={"reward": "success", "revision_attempts": REVISION}, creates=True,
        summary="GRPO on revision episodes (the verifier's feedback between attempts)"),
    Arm("sft_ood", "sft", variant="ood", creates=True,
        summary="SFT on solver demonstrations under the other rule (new information: positive control)"),
    Arm("base_copy", None, summary="the base itself, untrained (negative control)"),
    Arm("warmup_sft", "sft", start="sft", summary="claim b: more SFT after the warm-up"),
    Arm("warmup_rl", "grpo", start="sft", lr_scale=1 / 3, creates=True,
        rl={"reward": "success", "revision_attempts": REVISION, "minibatches_per_epoch": 2},
        summary="claim b: GRPO after the warm-up, on revision episodes, small lr, clipped"),
)}
DEFAULT_ARMS = tuple(ARMS)
CURVE_ARMS = ("filtered_sft", "iw_sft", "iw_sft_seq", "grpo", "warmup_sft", "warmup_rl")
"""Arms whose checkpoints are evaluated (claims a and b are about training dynamics)."""
CURVE_POINTS = 4  # checkpoints per curve arm, the final model included


def run_label(arm: str, seed: int) -> str:
    """A trained model's name in the probe and the summary: ``<arm>-s<seed>``."""
    return f"{arm}-s{seed}"


def check_arms(names) -> tuple[str, ...]:
    """The arms asked for, in the order they must train (an arm after the arm it starts from)."""
    unknown = [n for n in names if n not in ARMS]
    if unknown:
        from reweightlab.config import ConfigError

        raise ConfigError(f"config key 'arms': unknown arm(s) {unknown}; known: {', '.join(ARMS)}")
    names = list(dict.fromkeys(names))
    for n in names:
        start = ARMS[n].start
        if start is not None and start not in names:
            from reweightlab.config import ConfigError

            raise ConfigError(f"config key 'arms': arm '{n}' starts from arm '{start}', which is not in the list")
    return tuple(sorted(names, key=lambda n: (ARMS[n].start is not None, DEFAULT_ARMS.index(n))))


def arm_config(arm: Arm, budget, start_model: str, out: Path, seed: int, *, data: dict) -> dict:
    """The `reweightlab train` config of one arm and seed (``data``: the task's keys)."""
    raw = {
        "method": arm.method, "output_dir": str(out / run_label(arm.name, seed)), "seed": seed,
        "model": {"path": start_model},
        "data": {**data, "num_prompts": budget.num_prompts, "max_new_tokens": budget.max_new_tokens},
        "optim": {"lr": budget.offline_lr * arm.lr_scale, "sequences_per_microbatch": 128},
    }
    method = get_method(arm.method)
    if "path" not in data:
        raw["data"]["variant"] = arm.variant
    elif not method.is_rl and not method.needs_scores:  # trains on the file's own rows, all of them
        del raw["data"]["num_prompts"], raw["data"]["success_threshold"], raw["data"]["reward"]
    steps = budget.rl_steps if method.is_rl else budget.offline_steps
    if method.is_rl:
        rl = {k: (budget.revision_attempts if v == REVISION else v) for k, v in arm.rl.items()}
        raw["optim"].update(lr=budget.rl_lr * arm.lr_scale, steps=steps)
        raw["rl"] = {"prompts_per_step": budget.rl_prompts_per_step,
                     "samples_per_prompt": budget.rl_samples_per_prompt, "kl_beta": RL_KL_BETA, **rl}
        if raw["rl"].get("minibatches_per_epoch", 1) > 1:
            raw["rl"]["clip_eps_low"] = raw["rl"]["clip_eps_high"] = 0.2
    else:
        raw["optim"].update(steps=steps, sequences_per_step=budget.offline_sequences_per_step)
        if arm.offline:
            raw["offline"] = dict(arm.offline)
        if "path" in data and method.needs_scores:
            raw["data"]["source"] = "base_samples"  # sample the base model, as on a registered task
    if "path" in data and method.needs_scores and not method.is_rl:
        raw.setdefault("offline", {})["threshold"] = data.get("success_threshold", 1.0)
    if arm.method == "search_sft":
        raw["search"] = budget.search.to_dict()
    if arm.name in CURVE_ARMS:
        raw["checkpoint_every"] = max(1, steps // CURVE_POINTS)
    return raw
