"""Turning task problems into token sequences: solver demonstrations, or scored model samples."""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from reweightlab.train.batching import SequenceStore


def encode_prompts(tokenizer, prompts: list[str]) -> list[list[int]]:
    """Prompt token ids as the tokenizer's own encoding gives them (BOS included where it adds one)."""
    return tokenizer(prompts, add_special_tokens=True)["input_ids"]


def encode_completions(tokenizer, completions: list[str]) -> list[list[int]]:
    """Completion ids followed by EOS: the model learns to stop."""
    ids = tokenizer(completions, add_special_tokens=False)["input_ids"]
    return [c + [tokenizer.eos_token_id] for c in ids]


def decode_completions(tokenizer, completion_lists: list[list[int]]) -> list[str]:
    return tokenizer.batch_decode(completion_lists, skip_special_tokens=True)


def solver_demonstrations(task, problems, tokenizer, per_prompt: int, seed: int) -> SequenceStore:
    """Up to `per_prompt` distinct solver solutions per problem, drawn at random (SFT/DFT data)."""
    rng = random.Random(seed)
    prompts, completions = [], []
    for prob in problems:
        sols = task.solutions(prob)
        if sols is None:
            raise ValueError(f"task {task.name!r} cannot enumerate solutions; use data.source=base_samples")
        for s in rng.sample(sols, min(per_prompt, len(sols))):
            prompts.append(prob.prompt)
            completions.append(s)
    p_ids = encode_prompts(tokenizer, prompts)
    c_ids = encode_completions(tokenizer, completions)
    reward = [float(task.success_score)] * len(prompts)
    return SequenceStore.from_lists(p_ids, c_ids, tokenizer.pad_token_id, reward=reward)


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
    texts = decode_completions(tokenizer, rollout.completions_as_lists())
    idx = rollout.prompt_index_N.tolist()
    batch_verify = getattr(task, "verify_batch", None)  # optional: one reward call per batch (user tasks)
    if batch_verify is not None:
        verdicts = batch_verify([problems[i] for i in idx], texts)
    else:
        verdicts = [task.verify(problems[i], t) for i, t in zip(idx, texts, strict=True)]
    rewards = torch.tensor([v.score for v in verdicts], dtype=torch.float32)
    success = torch.tensor([v.success for v in verdicts], dtype=torch.float32)
    store = SequenceStore.from_rollout(
        prompt_ids, rollout, tokenizer.pad_token_id, reward=rewards, success=success
    )
    P, G = len(problems), samples_per_prompt
    return ScoredSamples(store, rewards.view(P, G), success.view(P, G), texts, rollout,
                         reasons=[v.reason for v in verdicts])
