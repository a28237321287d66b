"""pass@k of a model on a task's held-out prompts (SPEC 3.1), keeping per-prompt (n, c)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from reweightlab.math import mean_pass_at_k
from reweightlab.rollout import HFRolloutEngine
from reweightlab.train.data import sample_and_score


def default_ks(n: int) -> list[int]:
    """Powers of two up to n (and n itself)."""
    ks, k = [], 1
    while k <= n:
        ks.append(k)
        k *= 2
    if ks[-1] != n:
        ks.append(n)
    return ks


@dataclass
class PassKResult:
    variant: str
    split: str
    n_prompts: int
    samples_per_prompt: int
    pass_at_k: dict[int, float]
    mean_reward: float
    n_P: list[int]
    c_P: list[int]
    prompt_ids: list[str]
    sample_tokens_per_s: float

    def to_dict(self) -> dict:
        d = asdict(self)
        d["pass_at_k"] = {str(k): v for k, v in self.pass_at_k.items()}
        return d


def evaluate_passk(
    model, tokenizer, task, *, variant: str, split: str = "test", n_prompts: int, samples_per_prompt: int,
    ks: list[int] | None = None, max_new_tokens: int = 24, seed: int = 1234, progress: bool = False,
    max_batch_sequences: int = 512,
) -> PassKResult:
    """Sample `samples_per_prompt` completions per held-out prompt at temperature 1; count successes."""
    import time

    ks = ks or default_ks(samples_per_prompt)
    if max(ks) > samples_per_prompt:
        raise ValueError(f"largest k ({max(ks)}) exceeds samples per prompt ({samples_per_prompt})")
    problems = task.problems(variant, split, n_prompts, seed)
    engine = HFRolloutEngine(
        model, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        max_batch_sequences=max_batch_sequences,
    )
    t0 = time.perf_counter()
    scored = sample_and_score(
        engine, task, problems, tokenizer, samples_per_prompt=samples_per_prompt,
        max_new_tokens=max_new_tokens, seed=seed, progress=progress,
    )
    dt = time.perf_counter() - t0
    c_P = scored.success_PG.sum(1).long()
    n_P = torch.full_like(c_P, samples_per_prompt)
    tokens = int(scored.rollout.completion_mask_NT.sum())
    return PassKResult(
        variant=variant, split=split, n_prompts=len(problems), samples_per_prompt=samples_per_prompt,
        pass_at_k={int(k): float(v) for k, v in mean_pass_at_k(n_P, c_P, ks).items()},
        mean_reward=float(scored.rewards_PG.mean()), n_P=n_P.tolist(), c_P=c_P.tolist(),
        prompt_ids=[p.id for p in problems], sample_tokens_per_s=tokens / dt,
    )
