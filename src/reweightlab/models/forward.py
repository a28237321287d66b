"""Forward passes: teacher-forced log-probs of stored sequences, and cached forwards for decoding.

A micro-batch here is anything with ``input_ids_BL`` (right-padded ids), ``mask_BT`` (completion
targets) and ``index_B`` (its rows in the whole store): data/store.py's MicroBatch.

Cached forwards (the sampler, the likelihood estimator, the search): ``left_pad`` the prompts,
``prefill`` them once (only the last position is projected onto the vocabulary), ``CachedPrefix.reorder``
the rows (a repeating index copies a prompt to its samples; a beam index re-selects the beam), then
``extend`` with further tokens. A ``CachedPrefix`` keeps, next to the KV cache, each row's attention
mask over the cached columns and the position of its next token: positions count real tokens only,
so a left-padded prompt sees the positions it would alone.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from reweightlab.data.store import MicroBatch, completion_to_targets, microbatches
from reweightlab.math import token_logprobs
from reweightlab.models.fast_decode import KVBuffer, fast_decode_supported, fast_forward, new_buffer


def forward_logits_logp(model, mb: MicroBatch):
    """One forward over the micro-batch: (logits at target positions, logp of the targets)."""
    # use_cache=False: a training forward never decodes further, and gradient checkpointing
    # refuses a cache anyway
    logits = model(input_ids=mb.input_ids_BL, use_cache=False).logits[:, :-1]
    return logits, token_logprobs(logits, mb.targets_BT)


@torch.no_grad()
def teacher_forced_logp(model, mbs: Sequence[MicroBatch], N: int, L: int, device) -> torch.Tensor:
    """Target-aligned log-probs (N x L-1) of a whole store under `model`, with no gradient.

    Used once per batch (RL: old and reference log-probs) or once per dataset (iw-SFT reference).
    """
    was_training = model.training
    model.eval()
    out = torch.zeros(N, L - 1)
    for mb in mbs:
        mbd = mb.to(device)
        _, logp = forward_logits_logp(model, mbd)
        lb = logp.shape[1]
        out[mb.index_B, :lb] = (logp.float() * mbd.mask_BT).cpu()
    model.train(was_training)
    return out


@torch.no_grad()
def store_logp(model, store, device, *, sequences_per_microbatch: int = 128, bucketed: bool = False) -> torch.Tensor:
    """``teacher_forced_logp`` of a whole store (N x L-1, zero outside the targets that carry loss),
    running each prompt once for its samples (``completion_logits_by_prompt``) when the sequences come
    in groups sharing a prompt (two or more per prompt on average, no feedback inside completions);
    otherwise as plain forwards over length-sorted micro-batches (``bucketed``: data.store.microbatches')
    length buckets)."""
    N, L = len(store), store.ids_NL.shape[1]
    if store.loss_mask_NT is not None or N == 0 or 2 * len(prompt_groups(store)) > N:
        mbs = microbatches(store, sequences_per_microbatch, bucketed=bucketed)
        return teacher_forced_logp(model, mbs, N, L, device)
    out = torch.zeros(N, L - 1)
    for index_B, targets_BT, mask_BT, (logits_BTV,) in completion_logits_by_prompt(
            [model], store, sequences_per_chunk=sequences_per_microbatch, device=device):
        logp_BT = token_logprobs(logits_BTV, targets_BT).float().cpu()
        out[index_B] = completion_to_targets(logp_BT, mask_BT.cpu(), store.prompt_len_N[index_B], L)
    return out


def prompt_groups(store) -> list[tuple[int, int]]:
    """Runs ``[start, stop)`` of consecutive sequences of ``store`` that share their prompt (same length,
    same ids): a probe's or an RL batch's samples, a prompt's G completions one after the other."""
    plen_N, ids_NL = store.prompt_len_N, store.ids_NL
    if len(plen_N) == 0:
        return []
    in_prompt_NL = torch.arange(ids_NL.shape[1])[None, :] < plen_N[:, None]
    prompt_NL = torch.where(in_prompt_NL, ids_NL, -1)
    same_N = (plen_N[1:] == plen_N[:-1]) & (prompt_NL[1:] == prompt_NL[:-1]).all(1)
    starts = [0, *(torch.nonzero(~same_N).flatten() + 1).tolist()]
    return list(zip(starts, [*starts[1:], len(plen_N)], strict=True))


@torch.no_grad()
def completion_logits_by_prompt(models: Sequence[torch.nn.Module], store, *, sequences_per_chunk: int = 128,
                                device="cpu"):
    """Teacher-forced logits of every completion position of ``store`` under each of ``models``, with each
    prompt run once for all its samples: per chunk of whole prompt groups (``prompt_groups``; at most
    ``sequences_per_chunk`` rows unless one group is larger), yields ``(index_B, targets_BT, mask_BT,
    [logits_BTV per model])`` where position j holds completion token j (``mask_BT`` 1.0 on the real
    ones, EOS included) and the float32 logits that predict it.

    The prompt is prefilled once into a KV cache copied (shared, on the fast path) to its samples, and
    the completions are fed after it in one cached forward: the same numbers as a plain forward over
    each whole sequence up to float rounding, at the cost of the completions only (the prompts of a
    probe's samples are most of their tokens). No gradient; any causal LM (``prefill``/``extend``)."""
    if store.loss_mask_NT is not None:
        raise ValueError("completion_logits_by_prompt: the store has feedback text inside its completions "
                         "(loss_mask_NT); use microbatches")
    groups = prompt_groups(store)
    pad = int(store.ids_NL[0, 0]) if len(store) else 0  # any real id: fed padding is masked out
    chunk: list[tuple[int, int]] = []
    for g, (start, stop) in enumerate(groups):
        chunk.append((start, stop))
        rows = chunk[-1][1] - chunk[0][0]
        nxt = groups[g + 1][1] - groups[g + 1][0] if g + 1 < len(groups) else None
        if nxt is not None and rows + nxt <= sequences_per_chunk:
            continue
        yield _chunk_logits(models, store, chunk, pad, device)
        chunk = []


def _chunk_logits(models, store, chunk, pad, device):
    first, last = chunk[0][0], chunk[-1][1]
    index_B = torch.arange(first, last)
    plen_B, tlen_B = store.prompt_len_N[index_B], store.total_len_N[index_B]
    clen_B = tlen_B - plen_B
    T = int(clen_B.max())
    column_BT = plen_B[:, None] + torch.arange(T)[None, :]
    mask_BT = torch.arange(T)[None, :] < clen_B[:, None]
    ids_NL = store.ids_NL
    targets_BT = ids_NL[index_B].gather(1, column_BT.clamp(max=ids_NL.shape[1] - 1))
    targets_BT = torch.where(mask_BT, targets_BT, pad)
    prompts = [ids_NL[start, : int(store.prompt_len_N[start])].tolist() for start, _ in chunk]
    group_B = torch.cat([torch.full((stop - start,), p, dtype=torch.long)
                         for p, (start, stop) in enumerate(chunk)])
    ids_PL, mask_PL = left_pad(prompts, pad, device)
    fed_BT, fed_mask_BT = targets_BT[:, : max(T - 1, 0)].to(device), mask_BT[:, : max(T - 1, 0)].to(device)
    group_B = group_B.to(device)
    out = []
    for model in models:
        was_training = model.training
        model.eval()
        try:
            logits_PV, prefix = prefill(model, ids_PL, mask_PL, reserve=T)
            logits_BTV = logits_PV[group_B][:, None]
            if T > 1:
                prefix.reorder(group_B)
                rest_BTV = extend(model, prefix, fed_BT, fed_mask_BT, last_only=False)
                logits_BTV = torch.cat([logits_BTV, rest_BTV], dim=1)
            del prefix
        finally:
            model.train(was_training)
        out.append(logits_BTV if T > 0 else logits_BTV[:, :0])
    return index_B, targets_BT.to(device), mask_BT.float().to(device), out


def new_cache(model: torch.nn.Module):
    """An empty DynamicCache; given the config, transformers 5 picks sliding/linear layers per layer."""
    from transformers import DynamicCache

    try:
        return DynamicCache(config=model.config)
    except TypeError:  # transformers 4.x: no config argument
        return DynamicCache()


def _forward_parameters(model: torch.nn.Module) -> set[str]:
    """Named parameters of the model's forward; wrappers (e.g. PEFT) forward **kwargs, so the wrapped
    model's count too."""
    names: set[str] = set()
    for candidate in (model, *([model.get_base_model()] if hasattr(model, "get_base_model") else [])):
        names |= set(inspect.signature(candidate.forward).parameters)
    return names


def _cache_kwarg(model: torch.nn.Module) -> str:
    """The forward argument that takes the KV cache: ``cache`` from transformers 5.24 on (which deprecates
    ``past_key_values``, to be removed in 5.40), ``past_key_values`` before."""
    return "cache" if "cache" in _forward_parameters(model) else "past_key_values"


def _logits_kwarg(model: torch.nn.Module) -> str | None:
    """Name of the forward argument that limits the logits to the last positions, if any.

    transformers >= 4.50 calls it `logits_to_keep`; 4.45-4.49 called it `num_logits_to_keep`.
    Wrappers (e.g. PEFT) forward **kwargs, so look at the wrapped model too.
    """
    params = _forward_parameters(model)
    for name in ("logits_to_keep", "num_logits_to_keep"):
        if name in params:
            return name
    return None


def left_pad(prompts: Sequence[Sequence[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids_PL, mask_PL bool) on `device`: prompts right-aligned, so each one's last token sits in the
    last column (where ``prefill`` reads the logits)."""
    width = max(len(p) for p in prompts)
    ids_PL = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask_PL = torch.zeros((len(prompts), width), dtype=torch.bool)
    for i, prompt in enumerate(prompts):  # once per prompt, not per token
        ids_PL[i, width - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
        mask_PL[i, width - len(prompt) :] = True
    return ids_PL.to(device), mask_PL.to(device)


@dataclass
class CachedPrefix:
    """A KV cache and, per row, what a further forward needs to know about it."""

    cache: Any
    """The KV cache (B rows): a fast_decode.KVBuffer or a transformers DynamicCache."""
    mask_BS: torch.Tensor
    """long [B, S]: attention mask over the S cached columns (0 on padding)."""
    next_position_B: torch.Tensor
    """long [B]: position id of each row's next token."""
    logits_kwarg: str | None = field(default=None, repr=False)
    """The model's logits-to-keep argument, looked up once per prefill rather than per step."""
    cache_kwarg: str = field(default="past_key_values", repr=False)
    """The model's cache argument (``_cache_kwarg``), looked up once per prefill."""

    def reorder(self, index_B: torch.Tensor, reserve: int | None = None) -> None:
        """Row b becomes old row ``index_B[b]`` (B may change): a repeating index copies a prompt's
        cache to its samples, a beam index re-selects the beam. The cache is re-indexed in place;
        ``reserve``: the columns the caller adds next (the fast buffer makes room for them in the same copy)."""
        index_B = index_B.to(self.mask_BS.device)
        if isinstance(self.cache, KVBuffer):
            self.cache.reorder_cache(index_B, reserve)
        else:
            self.cache.reorder_cache(index_B)
        self.mask_BS = self.mask_BS[index_B]
        self.next_position_B = self.next_position_B[index_B]


def _cached_forward(model, prefix: CachedPrefix, ids_BT, mask_BS, position_BT, last_only: bool) -> torch.Tensor:
    if isinstance(prefix.cache, KVBuffer):
        return fast_forward(model, prefix.cache, ids_BT, mask_BS, position_BT, last_only)
    # logits_to_keep=1 projects one position onto the vocabulary instead of T (B x T x V floats)
    keep = {prefix.logits_kwarg: 1} if last_only and prefix.logits_kwarg else {}
    logits = model(
        input_ids=ids_BT, attention_mask=mask_BS, position_ids=position_BT,
        use_cache=True, **{prefix.cache_kwarg: prefix.cache}, **keep,
    ).logits
    return logits[:, -1, :].float() if last_only else logits.float()


def prefill(model, ids_BL: torch.Tensor, mask_BL: torch.Tensor, *,
            reserve: int = 0) -> tuple[torch.Tensor, CachedPrefix]:
    """Run left-padded prompts (``left_pad``) into a new cache: (float32 logits of the last position
    [B, V], which predict each prompt's next token; the CachedPrefix).

    Without gradients, a Llama-architecture model gets models/fast_decode.py's preallocated cache, with
    room for ``reserve`` tokens beyond the prompts (more still fits: the cache grows by doubling);
    otherwise transformers' DynamicCache.
    """
    mask_BL = mask_BL.long()
    # Positions count real tokens only, so padding does not shift a prompt's positions.
    position_BL = (mask_BL.cumsum(-1) - 1).clamp(min=0)
    if not torch.is_grad_enabled() and fast_decode_supported(model):
        cache = new_buffer(model, ids_BL.shape[0], ids_BL.shape[1] + max(int(reserve), 0))
        prefix = CachedPrefix(cache, mask_BL, mask_BL.sum(-1), None)
    else:
        prefix = CachedPrefix(new_cache(model), mask_BL, mask_BL.sum(-1), _logits_kwarg(model), _cache_kwarg(model))
    return _cached_forward(model, prefix, ids_BL, mask_BL, position_BL, last_only=True), prefix


def extend(
    model, prefix: CachedPrefix, ids_BT: torch.Tensor, mask_BT: torch.Tensor | None = None, *, last_only: bool = True
) -> torch.Tensor:
    """Feed T more tokens per row after what ``prefix`` holds (T = 1 for a decode step); float32
    logits of the last position [B, V], or with ``last_only=False`` of every fed position [B, T, V].

    ``mask_BT`` (default all ones) masks fed padding, on either side: positions count the real
    tokens only (a masked column takes its neighbour's position and is never attended to), so a
    left-padded block of feedback fed into the middle of a sequence (revision episodes) and a
    right-padded block of completions both keep the positions the tokens would have unpadded.
    ``prefix`` is updated in place (cache, mask, next positions).
    """
    T = ids_BT.shape[1]
    # A copy of the B x S mask per call: next to the cache's own copy of every key and value (DynamicCache
    # appends with torch.cat), of the order of 1 / (layers x hidden) of the bytes.
    if mask_BT is None:
        mask_BS = torch.nn.functional.pad(prefix.mask_BS, (0, T), value=1)
        position_BT = prefix.next_position_B[:, None] + torch.arange(T, device=ids_BT.device)
        real_B = T
    else:
        mask_BT = mask_BT.long()
        mask_BS = torch.cat([prefix.mask_BS, mask_BT], dim=1)
        seen_BT = mask_BT.cumsum(-1)
        position_BT = (prefix.next_position_B[:, None] + seen_BT - 1).clamp(min=0)
        real_B = seen_BT[:, -1]
    logits = _cached_forward(model, prefix, ids_BT, mask_BS, position_BT, last_only)
    prefix.mask_BS, prefix.next_position_B = mask_BS, prefix.next_position_B + real_B
    return logits
