"""Multi-part completions as sequences: a revision episode (attempt, verifier feedback, attempt ...).

An episode's completion is a list of ``Segment``s, each a run of token ids that either the model
wrote (``loss=True``: an attempt, its EOS included) or the environment appended (``loss=False``:
the verifier's feedback). The store keeps the whole text as one sequence, so a training forward sees
exactly the context the sampler saw, and ``loss_mask_NT`` keeps the feedback out of every loss, KL
and entropy (``SequenceStore.target_mask``). Built once per batch: a loop over episodes, never over
tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from reweightlab.data.store import SequenceStore, completion_to_targets


@dataclass(frozen=True)
class Segment:
    """A run of completion tokens; ``logp`` (the sampler's, one per token) for the ones the model wrote."""

    ids: list[int]
    loss: bool
    logp: list[float] | None = None


def episode_store(prompts: list[list[int]], episodes: list[list[Segment]], pad_id: int, **fields) -> SequenceStore:
    """One sequence per episode: its prompt, then its segments in order.

    ``loss_mask_NT`` is 1.0 on the targets of ``loss=True`` segments and 0.0 on the others; when any
    model-written segment carries ``logp``, every one must, and they fill ``logp_sampler_NT``.
    ``fields``: per-episode floats by name (``reward_N=...``), as in ``SequenceStore.from_lists``.
    """
    if len(prompts) != len(episodes):
        raise ValueError(f"{len(prompts)} prompts but {len(episodes)} episodes")
    completions, flags, logps = [], [], []
    with_logp = any(seg.logp is not None for ep in episodes for seg in ep if seg.loss)
    for i, ep in enumerate(episodes):
        ids, flag, logp = [], [], []
        for seg in ep:
            ids += seg.ids
            flag += [seg.loss] * len(seg.ids)
            if with_logp:
                if seg.loss and (seg.logp is None or len(seg.logp) != len(seg.ids)):
                    raise ValueError(f"episode {i}: a model-written segment without one log-prob per token")
                logp += seg.logp if seg.loss else [0.0] * len(seg.ids)
        if not ids:
            raise ValueError(f"episode {i} has no completion tokens")
        completions.append(ids)
        flags.append(flag)
        logps.append(logp)
    store = SequenceStore.from_lists(prompts, completions, pad_id, **fields)
    T = max(len(c) for c in completions)

    def left_aligned(rows: list[list], dtype) -> torch.Tensor:
        out = torch.zeros(len(rows), T, dtype=dtype)
        for n, row in enumerate(rows):  # once per episode
            out[n, : len(row)] = torch.tensor(row, dtype=dtype)
        return out

    mask_NT = left_aligned([[True] * len(c) for c in completions], torch.bool)
    L = store.ids_NL.shape[1]
    loss_NT = completion_to_targets(left_aligned(flags, torch.float32), mask_NT, store.prompt_len_N, L)
    out = {"loss_mask_NT": loss_NT}
    if with_logp:
        out["logp_sampler_NT"] = completion_to_targets(left_aligned(logps, torch.float32), mask_NT,
                                                       store.prompt_len_N, L)
    return store.replace(**out)
