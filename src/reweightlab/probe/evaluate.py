"""pass@k of a model on a task's held-out prompts, keeping per-prompt (n, c)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from reweightlab.math import mean_pass_at_k
from reweightlab.probe.sampling import sample_counts


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
    """Sample `samples_per_prompt` completions per held-out prompt at temperature 1; count successes.

    The probe's sampler (one chunk: every sample drawn with `seed`), keeping only the counts."""
    ks = ks or default_ks(samples_per_prompt)
    if max(ks) > samples_per_prompt:
        raise ValueError(f"largest k ({max(ks)}) exceeds samples per prompt ({samples_per_prompt})")
    problems = task.problems(variant, split, n_prompts, seed)
    s = sample_counts(
        model, tokenizer, task, problems, n=samples_per_prompt, keep_per_prompt=1, max_new_tokens=max_new_tokens,
        seed=seed, chunk_sequences=len(problems) * samples_per_prompt, max_batch_sequences=max_batch_sequences,
        progress=progress,
    )
    return PassKResult(
        variant=variant, split=split, n_prompts=len(problems), samples_per_prompt=samples_per_prompt,
        pass_at_k={int(k): float(v) for k, v in mean_pass_at_k(s.n_P, s.c_P, ks).items()},
        mean_reward=float(s.rewards_PN.mean()), n_P=s.n_P.tolist(), c_P=s.c_P.tolist(),
        prompt_ids=[p.id for p in problems], sample_tokens_per_s=s.completion_tokens / s.seconds,
    )
