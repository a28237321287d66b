"""Samples of a model on a task's problems, verified: the rollout, its texts, rewards and successes."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from reweightlab.data.encoding import decode_completions, encode_prompts
from reweightlab.data.store import SequenceStore
from reweightlab.tasks import hooks


@dataclass
class ScoredSamples:
    """Samples of a model on problems, verified: the rollout, its texts and rewards (P x G)."""

    store: SequenceStore
    rewards_PG: torch.Tensor
    success_PG: torch.Tensor
    texts: list[str]
    rollout: object
    reasons: list[str] | None = None
    """The verifier's reason for each sample (same order as ``texts``)."""


def sample_and_score(
    engine, task, problems, tokenizer, *, samples_per_prompt: int, max_new_tokens: int,
    temperature: float = 1.0, top_p: float = 1.0, seed: int | None = None, progress: bool = False,
    prompt_seeds: list[int] | None = None,
) -> ScoredSamples:
    prompt_ids = encode_prompts(tokenizer, [p.prompt for p in problems])
    rollout = engine.generate(
        prompt_ids, samples_per_prompt=samples_per_prompt, max_new_tokens=max_new_tokens,
        temperature=temperature, top_p=top_p, seed=seed, progress=progress, prompt_seeds=prompt_seeds,
    )
    ids = rollout.completions_as_lists()
    texts = decode_completions(tokenizer, ids)
    idx = rollout.prompt_index_N.tolist()
    verdicts = hooks.verify_batch(task, [problems[i] for i in idx], texts, completion_ids=ids)  # one reward call
    rewards = torch.tensor([v.score for v in verdicts], dtype=torch.float32)
    success = torch.tensor([v.success for v in verdicts], dtype=torch.float32)
    store = SequenceStore.from_rollout(
        prompt_ids, rollout, tokenizer.pad_token_id, reward_N=rewards, success_N=success
    )
    P, G = len(problems), samples_per_prompt
    return ScoredSamples(store, rewards.view(P, G), success.view(P, G), texts, rollout,
                         reasons=[v.reason for v in verdicts])
