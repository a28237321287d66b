"""search_sft's data: the reference's sampled successes, plus the successes the verifier-guided search
finds on the training prompts where no sample succeeded. Only verified successes are kept."""

from __future__ import annotations

import time

from reweightlab.algos.method import NothingToTrainError
from reweightlab.data.encoding import encode_completions, encode_prompts
from reweightlab.data.store import SequenceStore
from reweightlab.rollout.search import verifier_guided_search


def search_augmented(s, sampled: SequenceStore, problems: list, log) -> SequenceStore:
    """``sampled``: ``len(problems) x G`` scored samples of the reference, prompt by prompt (the order of
    rollout.scored.sample_and_score); ``s``: the loop's Setup (model, tokenizer, task, budget)."""
    if sampled.success_N is None or len(sampled) % len(problems):
        raise ValueError(f"search_sft needs the scored samples of its {len(problems)} prompts, prompt by prompt")
    success_PG = sampled.success_N.view(len(problems), -1) > 0
    unsolved = (~success_PG.any(1)).nonzero().flatten().tolist()
    budget = s.cfg.search
    t0 = time.perf_counter()
    # the model the run started from (the policy at step 0, also when resumed): pi_ref's own distribution
    start = getattr(s, "start_policy", None) or s.policy
    found = verifier_guided_search(start, s.tokenizer, s.task, [problems[i] for i in unsolved],
                                   budget=budget, device=s.device) if unsolved else None
    wins = sampled.select(sampled.success_N.nonzero().flatten()).replace(logp_sampler_NT=None)
    texts = [t for t in (found.solution_P if found else []) if t is not None]
    prompts = [problems[i].prompt for i, t in zip(unsolved, found.solution_P if found else [], strict=True)
               if t is not None]
    log(f"[search_sft] sampling solved {len(problems) - len(unsolved)} of {len(problems)} prompts "
        f"({len(wins)} successes); search (beam {budget.beam_width} x top {budget.expand_top}, at most "
        f"{budget.max_new_tokens} tokens) on the {len(unsolved)} others found {len(texts)} in "
        f"{time.perf_counter() - t0:.1f} s")
    if not texts:
        if not len(wins):
            raise NothingToTrainError(
                "search_sft: neither sampling nor the search found a verified success to train on")
        return wins
    n = len(texts)
    searched = SequenceStore.from_lists(
        encode_prompts(s.tokenizer, prompts), encode_completions(s.tokenizer, texts), s.tokenizer.pad_token_id,
        reward_N=[float(s.task.success_score)] * n, success_N=[1.0] * n,
    )
    if not len(wins):
        return searched
    return SequenceStore.concat([wins, searched], s.tokenizer.pad_token_id)
