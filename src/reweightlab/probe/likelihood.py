"""The likelihood estimator of p(x) (SPEC 3.2): teacher-forced log-probs of known solutions.

Where a task enumerates its correct completions, ``p_known(x) = sum_{y in Sol(x)} pi(y + EOS | x)``
is the probability that the model emits exactly one of them and stops. It is exact for the
enumerated set (a lower bound on the success probability when other strings also verify) and costs
one teacher-forced pass over all solutions, instead of sampling K completions per prompt.
"""

from __future__ import annotations

import torch

from reweightlab.train.batching import SequenceStore, microbatches
from reweightlab.train.data import encode_completions, encode_prompts
from reweightlab.train.step import teacher_forced_logp


def _flat_solutions(task, problems) -> tuple[list[str], list[str], list[int]]:
    """Every (prompt, solution) pair of all problems, problem-major, and the solution count per problem."""
    prompts, completions, n_solutions_P = [], [], []
    for prob in problems:
        sols = task.solutions(prob)
        if sols is None:
            raise ValueError(
                f"task {getattr(task, 'name', task)!r} cannot enumerate solutions (solutions() returned None); "
                "the likelihood estimator needs them: use the sampling estimator (evaluate_passk) instead"
            )
        n_solutions_P.append(len(sols))
        prompts += [prob.prompt] * len(sols)
        completions += list(sols)
    return prompts, completions, n_solutions_P


def sequence_logprobs(
    model, tokenizer, prompts: list[str], completions: list[str], *, device="cpu",
    sequences_per_microbatch: int = 256,
) -> torch.Tensor:
    """log pi(y + EOS | x) per (prompt, completion) pair, float64, shape N.

    The sum runs over every completion token and the appended EOS: the log-probability that the
    model produces exactly ``y`` and then stops (not merely a string starting with ``y``).
    """
    if len(prompts) != len(completions):
        raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
    if sequences_per_microbatch < 1:
        raise ValueError(f"sequences_per_microbatch must be >= 1, got {sequences_per_microbatch}")
    store = SequenceStore.from_lists(
        encode_prompts(tokenizer, prompts), encode_completions(tokenizer, completions), tokenizer.pad_token_id
    )
    mbs = microbatches(store, sequences_per_microbatch)
    logp_NT = teacher_forced_logp(model, mbs, len(store), store.ids_NL.shape[1], device)
    # teacher_forced_logp already zeroes everything outside the completion (prompt and padding).
    return logp_NT.double().sum(1)


def p_known(model, tokenizer, task, problems, *, device="cpu", sequences_per_microbatch: int = 256):
    """(p_known_P, n_solutions_P): each problem's total probability of its enumerated solutions.

    All solutions of all problems go through one batched teacher-forced pass; the per-sequence
    log-probs are then combined per problem with a segment logsumexp in float64, so that many tiny
    probabilities add without underflowing before the final exp. A problem with no solutions gets 0.
    """
    prompts, completions, n_solutions_P = _flat_solutions(task, problems)
    P = len(n_solutions_P)
    if not completions:
        return torch.zeros(P, dtype=torch.float64), n_solutions_P
    logp_N = sequence_logprobs(
        model, tokenizer, prompts, completions, device=device, sequences_per_microbatch=sequences_per_microbatch
    )
    problem_N = torch.repeat_interleave(torch.arange(P), torch.tensor(n_solutions_P, dtype=torch.long))
    # Segment logsumexp: subtract each problem's max, scatter-add the exps, add the max back.
    max_P = torch.full((P,), -torch.inf, dtype=torch.float64).scatter_reduce(
        0, problem_N, logp_N, reduce="amax", include_self=True
    )
    shift_P = torch.where(torch.isfinite(max_P), max_P, torch.zeros_like(max_P))
    sum_P = torch.zeros(P, dtype=torch.float64).scatter_add_(0, problem_N, torch.exp(logp_N - shift_P[problem_N]))
    return torch.exp(torch.log(sum_P) + shift_P), n_solutions_P


def max_known_logp(model, tokenizer, task, problems, *, device="cpu") -> torch.Tensor:
    """Per problem, the log-likelihood of its most likely known solution (-inf if it has none).

    This is the quantity the regime classifier compares with ``floor`` (barrier vs singularity).
    """
    prompts, completions, n_solutions_P = _flat_solutions(task, problems)
    index = torch.repeat_interleave(torch.arange(len(n_solutions_P)), torch.tensor(n_solutions_P, dtype=torch.long))
    out_P = torch.full((len(problems),), -torch.inf, dtype=torch.float64)
    if completions:
        logp_N = sequence_logprobs(model, tokenizer, prompts, completions, device=device)
        out_P.scatter_reduce_(0, index, logp_N, reduce="amax", include_self=True)
    return out_P
