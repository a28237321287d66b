"""Encoding prompts and completions as token ids, and a task's solver demonstrations as sequences.

Nothing here runs a model: sampling and scoring live in rollout/scored.py."""

from __future__ import annotations

import random

from reweightlab.data.store import SequenceStore


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
    return SequenceStore.from_lists(p_ids, c_ids, tokenizer.pad_token_id, reward_N=reward)
