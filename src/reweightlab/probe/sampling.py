"""Many samples per prompt, in chunks: success counts and rewards for every sample, sequences for a few.

``n`` samples per prompt for hundreds of prompts is far more than one batch: at n = 4096 and 200
prompts, 800k sequences. Sampling runs in chunks of at most ``chunk_sequences`` sequences; from each
chunk only per-sample rewards, successes and the identity of each success (its solution key, e.g.
the canonical form of a GeneralPoints expression) are kept, plus the token sequences (with the
sampler's log-probs) of the first ``keep_per_prompt`` samples of each prompt, which is all that the
distance and free-energy estimates need. Memory is then bounded by the chunk, not by n. With a
``record`` callback every sample (text, reward, reason, sampler log-prob) is handed out chunk by chunk,
so a caller can write them all to disk without holding them.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from reweightlab.data.store import SequenceStore
from reweightlab.rollout import HFRolloutEngine
from reweightlab.rollout.scored import sample_and_score
from reweightlab.tasks.base import Verdict
from reweightlab.tasks.hooks import failure_kind, solution_key

_SEED_STRIDE = 1_000_003  # chunk seeds: seed + stride * chunk, distinct for any realistic chunk count


@dataclass
class SampledCounts:
    """Per prompt: samples n_P, successes c_P; per sample rewards_PN, success_PN and the solution key of
    each success (``keys_P[p][j]`` for sample j, None where it failed); the kept sequences (P*keep)."""

    n_P: torch.Tensor
    c_P: torch.Tensor
    rewards_PN: torch.Tensor
    success_PN: torch.Tensor
    keys_P: list[list[str | None]]
    unlisted_PN: torch.Tensor | None
    """Successes that are not one of the task's listed solutions token for token (None: no list given)."""
    kept: SequenceStore
    keep_per_prompt: int
    failure_kinds: dict[str, int]
    """How the failed samples failed (the task's ``failure_kind``), counted over every sample."""
    completion_tokens: int
    seconds: float
    seed: int

    @property
    def p_P(self) -> torch.Tensor:
        """The sampling estimate of each prompt's success probability, c/n (float64)."""
        return self.c_P.double() / self.n_P.double()

    def c_first(self, k: int) -> torch.Tensor:
        """Successes among the first ``k`` samples of each prompt (the regime budget K of a model)."""
        if not 1 <= k <= int(self.n_P.min()):
            raise ValueError(f"k = {k} must lie in [1, n = {int(self.n_P.min())}]")
        return self.success_PN[:, :k].sum(1).long()

    def solutions(self, first: int | None = None) -> list[Counter]:
        """Per prompt, how often each distinct solution was sampled (among the first ``first`` samples)."""
        return [Counter(k for k in keys[:first] if k is not None) for keys in self.keys_P]


def _as_listed(tokenizer, text: str) -> list[int]:
    """The token ids p_known scores for a listed solution: its encoding followed by EOS."""
    return tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]


def chunk_plan(num_prompts: int, n: int, chunk_sequences: int) -> tuple[int, int]:
    """(prompts per chunk, samples per chunk): P_c * G_c <= chunk_sequences, G_c <= n, both >= 1."""
    if chunk_sequences < 1:
        raise ValueError(f"chunk_sequences must be >= 1, got {chunk_sequences}")
    samples = min(n, chunk_sequences)
    prompts = max(1, min(num_prompts, chunk_sequences // samples))
    return prompts, samples


Record = Callable[[list[int], list[str], list[float], list[bool], list[str], list[float]], None]


class _Tally:
    """What ``sample_counts`` keeps of each chunk (module docstring): every sample's reward and success, each
    success's solution key (and whether it is a listed solution token for token), the token count, and the
    first ``keep_per_prompt`` sequences of each prompt."""

    def __init__(self, P: int, n: int, keep_per_prompt: int, listed: list[set[str]] | None) -> None:
        self.rewards_PN = torch.empty(P, n, dtype=torch.float32)
        self.success_PN = torch.empty(P, n, dtype=torch.bool)
        self.keys_P: list[list[str | None]] = [[None] * n for _ in range(P)]
        self.unlisted_PN = None if listed is None else torch.zeros(P, n, dtype=torch.bool)
        self.listed, self.keep_per_prompt = listed, keep_per_prompt
        self.kept, self.tokens = [], 0
        self.failures: Counter = Counter()
        self._kind_of: dict[tuple[int, str], str] = {}  # one task call per distinct failed text of a prompt

    def add(self, scored, task, tokenizer, part, p0: int, g0: int, G: int) -> None:
        """One chunk: prompts ``p0 ..`` (``part``), their samples ``g0 .. g0 + G``."""
        self.rewards_PN[p0 : p0 + len(part), g0 : g0 + G] = scored.rewards_PG
        self.success_PN[p0 : p0 + len(part), g0 : g0 + G] = scored.success_PG.bool()
        # only successes get a key: one task call per success, none per failure
        wins = torch.nonzero(scored.success_PG.flatten()).flatten().tolist()
        ids = scored.rollout.completions_as_lists() if wins and self.listed is not None else None
        for i in wins:
            q, g = divmod(i, G)
            text = scored.texts[i]
            self.keys_P[p0 + q][g0 + g] = solution_key(task, part[q], text)
            if ids is not None:
                exact = text in self.listed[p0 + q] and ids[i] == _as_listed(tokenizer, text)
                self.unlisted_PN[p0 + q, g0 + g] = not exact
        self._count_failures(scored, task, part, p0, G)
        self.tokens += int(scored.rollout.completion_mask_NT.sum())
        if g0 == 0 and self.keep_per_prompt:  # the first samples of each prompt: sequence n = p * G + g
            index = (torch.arange(len(part))[:, None] * G + torch.arange(self.keep_per_prompt)[None, :]).flatten()
            self.kept.append(scored.store.select(index))


    def _count_failures(self, scored, task, part, p0: int, G: int) -> None:
        fails = torch.nonzero(~scored.success_PG.flatten().bool()).flatten().tolist()
        rewards = scored.rewards_PG.flatten().tolist()
        for i in fails:
            q = i // G
            text = scored.texts[i]
            kind = self._kind_of.get((p0 + q, text))
            if kind is None:
                reason = scored.reasons[i] if scored.reasons is not None else ""
                kind = failure_kind(task, part[q], text, Verdict(rewards[i], False, reason))
                self._kind_of[(p0 + q, text)] = kind
            self.failures[kind] += 1


def _hand_out(record: Record, scored, p0: int, num_prompts: int, G: int) -> None:
    """Every sample of one chunk to the ``record`` callback (--keep-samples)."""
    logp_N = scored.store.logp_sampler_NT.double().sum(1).tolist()
    record([p0 + i // G for i in range(num_prompts * G)], scored.texts, scored.rewards_PG.flatten().tolist(),
           scored.success_PG.flatten().bool().tolist(), scored.reasons, logp_N)


def sample_counts(
    model, tokenizer, task, problems, *, n: int, keep_per_prompt: int, max_new_tokens: int, seed: int,
    chunk_sequences: int = 8192, max_batch_sequences: int = 512, progress: bool = False, desc: str = "sampling",
    record: Record | None = None, listed: list[set[str]] | None = None,
) -> SampledCounts:
    """Sample ``n`` completions per problem at temperature 1 and verify each (module docstring).

    ``record(prompt_index, text, reward, success, reason, logp)`` (lists, one entry per sample) is called
    once per chunk.
    ``listed``: per problem, the task's listed solutions; a success counts as listed only when its
    tokens are exactly a listed solution's followed by EOS (what p_known sums), so ``unlisted_PN`` marks
    the successes the likelihood estimator cannot see (other spellings, no EOS, special tokens).
    """
    P = len(problems)
    if P == 0:
        raise ValueError("no problems to sample")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    prompts_per_chunk, samples_per_chunk = chunk_plan(P, n, chunk_sequences)
    if not 0 <= keep_per_prompt <= samples_per_chunk:
        raise ValueError(f"keep_per_prompt must lie in [0, {samples_per_chunk}], got {keep_per_prompt}")
    engine = HFRolloutEngine(
        model, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        max_batch_sequences=max_batch_sequences,
    )
    tally, chunk = _Tally(P, n, keep_per_prompt, listed), 0
    t0 = time.perf_counter()
    with tqdm(total=P * n, desc=desc, unit="seq", disable=not progress, leave=False) as bar:
        for p0 in range(0, P, prompts_per_chunk):
            part = problems[p0 : p0 + prompts_per_chunk]
            for g0 in range(0, n, samples_per_chunk):
                G = min(samples_per_chunk, n - g0)
                scored = sample_and_score(
                    engine, task, part, tokenizer, samples_per_prompt=G, max_new_tokens=max_new_tokens,
                    seed=seed + _SEED_STRIDE * chunk,
                )
                chunk += 1
                tally.add(scored, task, tokenizer, part, p0, g0, G)
                if record is not None:
                    _hand_out(record, scored, p0, len(part), G)
                bar.update(len(part) * G)
    return SampledCounts(
        n_P=torch.full((P,), n, dtype=torch.long), c_P=tally.success_PN.sum(1).long(), rewards_PN=tally.rewards_PN,
        success_PN=tally.success_PN, keys_P=tally.keys_P, unlisted_PN=tally.unlisted_PN,
        kept=SequenceStore.concat(tally.kept, tokenizer.pad_token_id) if tally.kept else None,
        keep_per_prompt=keep_per_prompt, failure_kinds=dict(sorted(tally.failures.items())),
        completion_tokens=tally.tokens, seconds=time.perf_counter() - t0, seed=seed,
    )
