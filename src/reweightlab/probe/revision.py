"""Revision within R attempts, per model: Chu et al.'s metric, and the probe's second barrier test.

For every prompt, E revision episodes of up to R attempts (``rollout.revision``; the task's feedback
after each failed attempt). Per prompt: the success rate of the first attempt (what single-attempt
sampling measures) and the success rate within the episode, side by side from the same episodes,
so their difference is paired. A prompt that the K regime samples did not reach and on which some
episode succeeded at a *later* attempt was found by revision: extra information (the verifier's
reason) moved the model there, which makes it barrier, as a success of the verifier-guided search
does. A first-attempt success is only one more sample, so it does not count.

The episodes have a seed stream of their own (seed + REVISION_SEED_OFFSET): they share no random
numbers with the n samples that measure pass@1, nor with the K regime samples.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from reweightlab.rollout import HFRolloutEngine
from reweightlab.rollout.revision import sample_revisions

REVISION_SEED_OFFSET = 611_953


@dataclass(frozen=True)
class RevisionProbe:
    """One model's revision episodes, per prompt (P)."""

    attempts: int
    episodes_per_prompt: int
    first_P: torch.Tensor
    """Share of the E episodes whose first attempt succeeded."""
    within_P: torch.Tensor
    """Share that succeeded within R attempts."""
    later_success_P: torch.Tensor
    """Bool: some episode succeeded at attempt 2 or later."""
    mean_attempts: float
    attempt_tokens: int
    seconds: float


def revision_probe(model, tokenizer, task, problems, *, attempts: int, episodes: int, max_new_tokens: int, seed: int,
                   max_batch_sequences: int = 512, progress: bool = False) -> RevisionProbe:
    t0 = time.perf_counter()
    engine = HFRolloutEngine(model, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                             max_batch_sequences=max_batch_sequences)
    base_seed = seed + REVISION_SEED_OFFSET
    r = sample_revisions(engine, task, problems, tokenizer, attempts=attempts, samples_per_prompt=episodes,
                         max_new_tokens=max_new_tokens, progress=progress,
                         prompt_seeds=[base_seed * 1_000_003 + i for i in range(len(problems))])
    later_PG = (r.success_PG > 0) & (r.first_success_PG == 0)
    return RevisionProbe(
        attempts=attempts, episodes_per_prompt=episodes, first_P=r.first_success_PG.double().mean(1),
        within_P=r.success_PG.double().mean(1), later_success_P=later_PG.any(1),
        mean_attempts=float(r.attempts_PG.mean()), attempt_tokens=r.attempt_tokens,
        seconds=round(time.perf_counter() - t0, 2),
    )


def revision_figures(rev: RevisionProbe, rs, todo_P: torch.Tensor) -> dict:
    """probe.json ``per_model[label].revision``: both success rates and the revision gain, each with an
    interval over prompts, and how many unreached prompts revision found."""
    return {
        "attempts": rev.attempts, "episodes_per_prompt": rev.episodes_per_prompt,
        "success_first_attempt": rs.mean(rev.first_P), "success_within_episode": rs.mean(rev.within_P),
        "revision_gain": rs.mean(rev.within_P - rev.first_P),
        "mean_attempts": rev.mean_attempts,
        "unreached_prompts": int(todo_P.sum()), "found_by_revision": int((rev.later_success_P & todo_P).sum()),
        "tokens_per_s": round(rev.attempt_tokens / max(rev.seconds, 1e-9)), "seconds": rev.seconds,
    }


def revision_difference(base: RevisionProbe, trained: RevisionProbe, rs) -> dict:
    """probe.json ``vs_base[label].revision``: trained minus base, paired over prompts."""
    return {"delta_success_first_attempt": rs.mean(trained.first_P - base.first_P),
            "delta_success_within_episode": rs.mean(trained.within_P - base.within_P),
            "delta_revision_gain": rs.mean((trained.within_P - trained.first_P) - (base.within_P - base.first_P))}
