"""The likelihood estimator of p(x): teacher-forced log-probs of known solutions.

Where a task enumerates its correct completions, ``p_known(x) = sum_{y in Sol(x)} pi(y + EOS | x)``
is the probability that the model emits exactly one of them and stops. It is exact for the
enumerated set (a lower bound on the success probability when other strings also verify) and costs
one teacher-forced pass over all solutions, instead of sampling K completions per prompt.

The pass shares prefixes (``completion_logprobs_shared_prompt``). A GeneralPoints prompt is ~20-27
tokens and its ~24 solutions ~11 tokens each (EOS included), many starting alike. Scoring every
(prompt + solution) sequence whole fed ~57k tokens for 64 ID test prompts (1,544 solutions); running
each prompt once and copying its KV cache to its solutions, ~23k (solutions right-padded); laying
each prompt and the prefix tree of its solutions into one row with a tree attention mask, ~12k.
Times and the comparison with sampling: benchmarks/bench_probe_estimators.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from reweightlab.data.encoding import encode_completions, encode_prompts
from reweightlab.data.store import SequenceStore
from reweightlab.models.forward import extend, left_pad, prefill, store_logp


@dataclass
class KnownSolutionStats:
    """Per problem, from one pass over its enumerated solutions."""

    p_known_P: torch.Tensor
    """float64: sum over the solutions y of pi(y + EOS | x); 0 for a problem without solutions."""
    max_logp_P: torch.Tensor
    """float64: log pi of the most likely solution; -inf for a problem without solutions."""
    n_solutions_P: torch.Tensor
    """long: how many solutions the task enumerated."""


def _solutions_per_problem(task, problems) -> list[list[str]]:
    """Every problem's enumerated solutions; an error if the task cannot enumerate them."""
    out = []
    for prob in problems:
        sols = task.solutions(prob)
        if sols is None:
            raise ValueError(
                f"task {getattr(task, 'name', task)!r} cannot enumerate solutions (solutions() returned None); "
                "the likelihood estimator needs them: use the sampling estimator (evaluate_passk) instead"
            )
        out.append(list(sols))
    return out


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
    logp_NT = store_logp(model, store, device, sequences_per_microbatch=sequences_per_microbatch)
    # store_logp already zeroes everything outside the completion (prompt and padding).
    return logp_NT.double().sum(1)


def _right_pad(seqs: list[list[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids_BT, mask_BT): sequences left-aligned, padding on the right (one tensor built from all tokens)."""
    lengths_B = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    mask_BT = torch.arange(int(lengths_B.max()))[None, :] < lengths_B[:, None]
    ids_BT = torch.full(mask_BT.shape, pad_id, dtype=torch.long)
    ids_BT[mask_BT] = torch.tensor([t for s in seqs for t in s], dtype=torch.long)  # row-major: rows in order
    return ids_BT.to(device), mask_BT.to(device)


def _score_chunk(model, prompts: list[list[int]], completions: list[list[int]], prompt_of_B, pad_id, device):
    """log pi(completion_b | prompts[prompt_of_B[b]]) per completion (EOS already appended), float64.

    1. prefill the distinct prompts once, left-padded, keeping only the last position's logits
       (they predict each completion's first token);
    2. copy each prompt's KV cache to its completions (``CachedPrefix.reorder``, a repeating index);
    3. one forward over every completion token, right-padded, attending to [prompt mask | completion
       mask], positions continuing from the prompt's own length (padding never shifts a position).
    """
    prompt_of_B = torch.as_tensor(prompt_of_B, dtype=torch.long, device=device)
    ids_BT, mask_BT = _right_pad(completions, pad_id, device)
    T = ids_BT.shape[1]
    first_logits_PV, prefix = prefill(model, *left_pad(prompts, pad_id, device), reserve=T)
    prefix.reorder(prompt_of_B)
    predictors_BTV = first_logits_PV[prompt_of_B, None]
    if T > 1:
        # The last column is never fed: its output would predict what follows the longest
        # completion's EOS. (A shorter completion's EOS is fed; its output lands on padding.)
        logits_BTV = extend(model, prefix, ids_BT[:, : T - 1], mask_BT[:, : T - 1], last_only=False)
        # Logits at completion position t predict token t + 1; token 0 is predicted by the prompt's
        # last position.
        predictors_BTV = torch.cat([predictors_BTV, logits_BTV], dim=1)
    del prefix  # free the cache before the B x T x V log-softmax
    logp_BT = torch.log_softmax(predictors_BTV, dim=-1).gather(-1, ids_BT.unsqueeze(-1)).squeeze(-1)
    return (logp_BT.double() * mask_BT).sum(1).cpu()


class _TreeRows:
    """Prompts and the prefix trees of their completions, packed into rows of ``width`` tokens.

    A segment is one prompt followed by the trie of (some of) its completions: a node per distinct
    proper prefix y[:d] (d >= 1) holding token y[d-1] at position len(prompt) + d - 1, whose parent is
    the node of y[:d-1] (the prompt's last token for d = 1). The full completion y (ending in EOS) is
    never fed: its output would predict what follows EOS. A token attends to its ancestors and
    itself, so every node sees exactly the context it has in the whole sequence prompt + y. Segments
    are laid out next-fit; one that outgrows its row continues in a new row with the prompt re-run.
    Building the tries is a Python loop over completion tokens (dict look-ups, milliseconds); the
    model runs once on all rows.
    """

    def __init__(self, width: int) -> None:
        self.width = width
        self.ids, self.pos, self.parent = [], [], []  # per row, lists of equal length
        self.predictor_cols, self.row_of = [], []  # per completion

    def _open_segment(self, prompt: list[int], need: int) -> None:
        if not self.ids or self.width - len(self.ids[-1]) < len(prompt) + need:
            for rows in (self.ids, self.pos, self.parent):
                rows.append([])
        start = len(self.ids[-1])
        self.ids[-1] += prompt
        self.pos[-1] += range(len(prompt))
        self.parent[-1] += range(start - 1, start + len(prompt) - 1)
        self.parent[-1][start] = -1
        self.prompt, self.last_col, self.nodes = prompt, start + len(prompt) - 1, {}

    def add(self, prompt: list[int], completion: list[int], same_prompt: bool) -> None:
        proper = len(completion) - 1  # proper prefixes y[:1] .. y[:len-1] are fed
        path = []  # the column of each of y's proper prefixes y[:1], y[:2], ...
        if same_prompt:
            while len(path) < proper and (node := self.nodes.get(tuple(completion[: len(path) + 1]))) is not None:
                path.append(node)
        if not same_prompt or self.width - len(self.ids[-1]) < proper - len(path):
            self._open_segment(prompt, proper)
            path = []
        ids, pos, parent = self.ids[-1], self.pos[-1], self.parent[-1]
        for d in range(len(path) + 1, proper + 1):
            parent.append(path[-1] if path else self.last_col)
            path.append(len(ids))
            self.nodes[tuple(completion[:d])] = path[-1]
            ids.append(completion[d - 1])
            pos.append(len(prompt) + d - 1)
        self.predictor_cols.append([self.last_col, *path])
        self.row_of.append(len(self.ids) - 1)

    def tensors(self, pad_id: int, device):
        """(ids_RS, position_RS, allowed_RSS): allowed[r, q, k] says whether token q attends to key k."""
        R, S = len(self.ids), max(len(r) for r in self.ids)
        ids_RS = torch.full((R, S), pad_id, dtype=torch.long)
        position_RS = torch.zeros((R, S), dtype=torch.long)
        parent_RS = torch.full((R, S), -1, dtype=torch.long)
        for r in range(R):
            n = len(self.ids[r])
            ids_RS[r, :n], position_RS[r, :n] = torch.tensor(self.ids[r]), torch.tensor(self.pos[r])
            parent_RS[r, :n] = torch.tensor(self.parent[r])
        # Ancestor closure by pointer jumping, one step per tree level (vectorised over all tokens).
        # Padding has no parent and attends only to itself, so no softmax row is empty.
        allowed_RSS = torch.eye(S, dtype=torch.bool).repeat(R, 1, 1)
        flat_allowed = allowed_RSS.view(-1)
        query_RS = torch.arange(R * S).view(R, S) * S  # flat offset of each query's row of keys
        ptr_RS = parent_RS.clone()
        while (valid_RS := ptr_RS >= 0).any():
            flat_allowed.index_fill_(0, (query_RS + ptr_RS)[valid_RS], True)  # much faster than x[i] = True
            ptr_RS = torch.where(valid_RS, parent_RS.gather(1, ptr_RS.clamp(min=0)), -1)
        return ids_RS.to(device), position_RS.to(device), allowed_RSS.to(device)


def _score_chunk_tree(model, prompts, completions, prompt_of_B, pad_id, device, width: int = 128):
    """As ``_score_chunk``, but with prefix trees and a custom 4D attention mask (``_TreeRows``):
    each prompt (per row it spans) and each shared completion prefix runs once; rows are padded only
    up to the fullest row, which next-fit packing keeps close to ``width``."""
    prompt_of = prompt_of_B.tolist()
    # Wide enough for any one prompt + completion, so every segment fits in a row.
    width = max(width, max(len(prompts[p]) + len(c) - 1 for p, c in zip(prompt_of, completions, strict=True)))
    rows = _TreeRows(width)
    previous = None
    for p, completion in zip(prompt_of, completions, strict=True):
        rows.add(prompts[p], completion, same_prompt=p == previous)
        previous = p
    ids_RS, position_RS, allowed_RSS = rows.tensors(pad_id, device)
    dtype = model.get_input_embeddings().weight.dtype
    # Additive mask (0 = attend), which both the eager and the SDPA attention take as given.
    mask_R1SS = torch.zeros(allowed_RSS.shape, dtype=dtype, device=device).masked_fill_(
        ~allowed_RSS, torch.finfo(dtype).min
    )[:, None]
    logits_RSV = model(input_ids=ids_RS, attention_mask=mask_R1SS, position_ids=position_RS, use_cache=False).logits
    logp_RSV = torch.log_softmax(logits_RSV.float(), dim=-1)
    targets_BT, mask_BT = _right_pad(completions, pad_id, device)
    predictor_BT, _ = _right_pad(rows.predictor_cols, 0, device)
    row_B = torch.tensor(rows.row_of, device=device)
    logp_BT = logp_RSV[row_B[:, None], predictor_BT, targets_BT]
    return (logp_BT.double() * mask_BT).sum(1).cpu()


def _chunk_scorer(model, method: str):
    """The chunk scorer for ``method``; "tree" needs a model that applies a custom 4D additive mask
    as given (eager and SDPA attention do; flash-attention kernels take only padding masks)."""
    tree_ok = getattr(model.config, "_attn_implementation", None) in ("eager", "sdpa")
    if method == "auto":
        method = "tree" if tree_ok else "cache"
    if method not in ("cache", "tree"):
        raise ValueError(f"method must be 'auto', 'cache' or 'tree', got {method!r}")
    if method == "tree" and not tree_ok:
        raise ValueError("method='tree' needs eager or SDPA attention (a custom 4D mask); use 'cache'")
    return _score_chunk_tree if method == "tree" else _score_chunk


def completion_logprobs_shared_prompt(
    model, tokenizer, prompts: list[str], completions_per_prompt: list[list[str]], *, device="cpu",
    max_batch_sequences: int = 256, method: str = "auto",
) -> torch.Tensor:
    """log pi(y + EOS | x) for every completion y of every prompt x, float64, flat, shape N.

    Entry n belongs to prompt-major order: the completions of prompt 0 first, then of prompt 1, ...;
    N = sum of len(completions_per_prompt[p]) (a prompt may have none). Equal to
    ``sequence_logprobs`` on the repeated prompts, but each prompt's prefix runs once per chunk of at
    most ``max_batch_sequences`` completions (a prompt split over two chunks is prefilled in both).
    The chunk bounds the memory of the copied KV cache and of the float32 logits (B x T x V).

    ``method``: "cache" prefills each prompt once and copies its KV cache to its completions
    (``_score_chunk``); "tree" also shares the completions' common prefixes, with a custom attention
    mask (``_score_chunk_tree``; eager or SDPA attention only); "auto" picks "tree" where it applies.
    On the embedded model (64 ID test prompts, 1,544 solutions, 1 thread, best of 3) "tree" took
    0.46 s at 256 completions per chunk and 128-token rows, 0.60 s at 1,024 (larger activations
    fall out of the processor caches), 0.96-1.15 s for "cache".
    """
    score_chunk = _chunk_scorer(model, method)
    if len(prompts) != len(completions_per_prompt):
        raise ValueError(f"{len(prompts)} prompts but {len(completions_per_prompt)} completion lists")
    if max_batch_sequences < 1:
        raise ValueError(f"max_batch_sequences must be >= 1, got {max_batch_sequences}")
    counts = [len(c) for c in completions_per_prompt]
    flat = [c for cs in completions_per_prompt for c in cs]
    if not flat:
        return torch.zeros(0, dtype=torch.float64)
    prompt_ids = encode_prompts(tokenizer, prompts)
    completion_ids = encode_completions(tokenizer, flat)
    prompt_of_N = torch.repeat_interleave(torch.arange(len(prompts)), torch.tensor(counts, dtype=torch.long))
    logp_chunks = []
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for start in range(0, len(flat), max_batch_sequences):
                stop = min(start + max_batch_sequences, len(flat))
                used_P, prompt_of_B = torch.unique(prompt_of_N[start:stop], return_inverse=True)
                logp_chunks.append(score_chunk(
                    model, [prompt_ids[p] for p in used_P.tolist()], completion_ids[start:stop],
                    prompt_of_B, tokenizer.pad_token_id, device,
                ))
    finally:
        model.train(was_training)
    return torch.cat(logp_chunks)


def known_solution_stats(
    model, tokenizer, task, problems, *, device="cpu", max_batch_sequences: int = 256
) -> KnownSolutionStats:
    """p_known, the best solution's log-likelihood and the solution count per problem, from one pass.

    The per-solution log-probs are combined per problem with a segment logsumexp in float64, so that
    many tiny probabilities add without underflowing before the final exp.
    """
    sols = _solutions_per_problem(task, problems)
    P = len(sols)
    n_solutions_P = torch.tensor([len(s) for s in sols], dtype=torch.long)
    logp_N = completion_logprobs_shared_prompt(
        model, tokenizer, [p.prompt for p in problems], sols, device=device, max_batch_sequences=max_batch_sequences
    )
    problem_N = torch.repeat_interleave(torch.arange(P), n_solutions_P)
    max_P = torch.full((P,), -torch.inf, dtype=torch.float64).scatter_reduce(
        0, problem_N, logp_N, reduce="amax", include_self=True
    )
    # Segment logsumexp: subtract each problem's max, scatter-add the exps, add the max back. A
    # problem without solutions keeps max -inf, a zero sum, and p_known exp(-inf) = 0.
    shift_P = torch.where(torch.isfinite(max_P), max_P, torch.zeros_like(max_P))
    sum_P = torch.zeros(P, dtype=torch.float64).scatter_add_(0, problem_N, torch.exp(logp_N - shift_P[problem_N]))
    return KnownSolutionStats(
        p_known_P=torch.exp(torch.log(sum_P) + shift_P), max_logp_P=max_P, n_solutions_P=n_solutions_P
    )

