"""Each checkpoint of a training run, evaluated: the study's figures that are about dynamics.

- ``bound`` points (claim a): J(theta) = E_pi[success] on the training prompts, sampled from the
  checkpoint; and on the base's own scored samples of those prompts (the data filtered SFT and iw-SFT
  curate from), the importance-sampled J and its lower bounds: SFT's (w = 1), iw-SFT's with the
  authors' weight (mean per-token log-ratio, clip [0, 16]) and with the sequence's own ratio (summed,
  same clip); ``reweightlab.math.bounds``. The base's sampler log-probs are its teacher-forced
  log-probs (temperature 1), so pi_ref costs nothing here.
- ``rule`` points (claim b): single-attempt success on the held-out hands of each rule, and the exact
  per-token KL(checkpoint || start) on the checkpoint's own samples of the changed rule.

Every point of every arm samples with the same seed (common random numbers: the arms' curves differ
by their models, not by the draw); nothing here is ever trained on.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from reweightlab.data.store import SequenceStore
from reweightlab.math.bounds import importance_sampled_objective, weighted_lower_bound
from reweightlab.models import load_model
from reweightlab.models.forward import store_logp
from reweightlab.probe.distance import distance_and_base_logp
from reweightlab.rollout import HFRolloutEngine
from reweightlab.rollout.scored import sample_and_score

IW_CLIP_MAX = 16.0  # the clip of both iw-SFT weights in the bound (the presets' clip)
KL_SAMPLES_PER_PROMPT = 4


@dataclass
class CurveInputs:
    """What every checkpoint is evaluated on (shared by all arms and seeds)."""

    tokenizer: object
    task: object
    train_problems: list  # J's prompts
    test_problems: dict[str, list]  # variant -> held-out prompts (rule points)
    base_store: SequenceStore | None  # the base's scored samples of the training prompts (bound points)
    samples_per_prompt: int
    max_new_tokens: int
    seed: int
    device: str = "cpu"


def checkpoints(run_dir: Path, start: str) -> list[tuple[int, str]]:
    """(step, folder) of the start model, every checkpoint, and the final model (if not the last checkpoint)."""
    out = [(0, start)]
    ck = sorted((run_dir / "checkpoints").glob("step-*")) if (run_dir / "checkpoints").is_dir() else []
    out += [(int(p.name.split("-")[1]), str(p)) for p in ck]
    final = run_dir / "final"
    meta = final / "reweightlab.json"
    last = out[-1][0]
    if final.is_dir():
        steps = json.loads(meta.read_text()).get("steps") if meta.is_file() else None
        if steps is None or steps != last:
            out.append((steps if steps is not None else last + 1, str(final)))
    return out


def _success_P(model, inputs: CurveInputs, problems, keep: int = 0):
    engine = HFRolloutEngine(model, eos_token_id=inputs.tokenizer.eos_token_id,
                             pad_token_id=inputs.tokenizer.pad_token_id)
    scored = sample_and_score(engine, inputs.task, problems, inputs.tokenizer,
                              samples_per_prompt=inputs.samples_per_prompt, max_new_tokens=inputs.max_new_tokens,
                              seed=inputs.seed)
    kept = None
    if keep:
        G = inputs.samples_per_prompt
        idx = (torch.arange(len(problems))[:, None] * G + torch.arange(min(keep, G))[None, :]).flatten()
        kept = scored.store.select(idx)
    return scored.success_PG.double().mean(1), kept


def bound_point(model, inputs: CurveInputs) -> dict:
    """J sampled on the training prompts; J importance-sampled and its three lower bounds on the base's samples."""
    J_P, _ = _success_P(model, inputs, inputs.train_problems)
    store = inputs.base_store
    mask = store.target_mask()
    logp = store_logp(model, store, inputs.device, sequences_per_microbatch=256)
    delta_N = ((logp.double() - store.logp_sampler_NT.double()) * mask).sum(1)
    tokens_N = mask.sum(1).clamp(min=1).double()
    reward_N = store.success_N.double()
    log_hi = math.log(IW_CLIP_MAX)
    return {
        "J": float(J_P.mean()), "J_P": [round(float(x), 6) for x in J_P],
        "J_importance_sampled": float(importance_sampled_objective(reward_N, delta_N)),
        "bound_sft": float(weighted_lower_bound(reward_N, delta_N)),
        "bound_iw_mean": float(weighted_lower_bound(reward_N, delta_N, (delta_N / tokens_N).clamp(max=log_hi))),
        "bound_iw_sum": float(weighted_lower_bound(reward_N, delta_N, delta_N.clamp(max=log_hi))),
    }


def rule_point(model, start_model, inputs: CurveInputs) -> dict:
    """Single-attempt success on each rule's held-out hands; KL(model || start) per token on its own
    changed-rule samples."""
    out = {}
    for variant, problems in inputs.test_problems.items():
        p_P, kept = _success_P(model, inputs, problems, keep=KL_SAMPLES_PER_PROMPT if variant == "ood" else 0)
        out[f"{variant}_success"] = float(p_P.mean())
        if kept is not None:
            fig, _, _ = distance_and_base_logp(model, start_model, kept, device=inputs.device)
            out["kl_to_start_per_token"] = fig["kl_exact_per_token"]
    return out


def evaluate_run(run_dir: Path, start: str, kind: str, inputs: CurveInputs, sequences_per_step: int) -> list[dict]:
    """Every checkpoint of one run, evaluated (``kind``: 'bound' or 'rule'), in step order."""
    start_model = load_model(start, device=inputs.device) if kind == "rule" else None
    points = []
    for step, folder in checkpoints(run_dir, start):
        model = start_model if (step == 0 and start_model is not None) else load_model(folder, device=inputs.device)
        point = bound_point(model, inputs) if kind == "bound" else rule_point(model, start_model, inputs)
        points.append({"step": step, "sequences": step * sequences_per_step, **point})
    return points
