"""Per-token log-probabilities and entropies from logits.

Both functions work on rows of the vocabulary axis in chunks, in float32, so that a bf16 model with a
large vocabulary never needs a full float32 copy of its logits (the copy would be 2x the logits' own
size and is the usual memory peak of an LLM loss).
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

# A float32 chunk of this many elements is 64 MiB: large enough that the Python loop is negligible,
# small enough to stay far below the logits themselves for any real vocabulary.
_CHUNK_ELEMENTS = 1 << 24


def _flat_view(t: torch.Tensor) -> torch.Tensor | None:
    try:
        return t.view(-1, t.shape[-1])
    except RuntimeError:  # strides that a view cannot merge, e.g. logits[:, :-1]
        return None


def _row_blocks(*tensors: torch.Tensor) -> list[tuple[int, int, list[torch.Tensor]]]:
    """Split the rows (leading dims flattened, vocabulary last) of same-shaped tensors into blocks
    ``(start, stop, [view of each tensor's rows start:stop])`` of at most about _CHUNK_ELEMENTS values.

    Views, never copies: ``logits[:, :-1]``, the usual causal-LM slice, cannot be reshaped to
    ``[-1, V]`` without copying all the logits, so such tensors are cut along their outer dims (a block
    is then ``[k, T, V]`` or ``[t, V]``). Callers flatten each block after casting it, a bounded copy.
    """
    vocab = tensors[0].shape[-1]
    step = max(1, _CHUNK_ELEMENTS // max(vocab, 1))
    flat = [_flat_view(t) for t in tensors]
    if all(f is not None for f in flat):
        n_rows = flat[0].shape[0]
        return [(s, min(s + step, n_rows), [f[s : s + step] for f in flat]) for s in range(0, n_rows, step)]
    views = [t.flatten(0, -3) for t in tensors]  # [R, T, V]; merging the outer dims is a view in practice
    n_outer, n_inner = views[0].shape[:2]
    blocks = []
    if n_inner <= step:  # whole [k, T, V] slabs, k rows of the outer dim at a time
        k = step // max(n_inner, 1)
        for r in range(0, n_outer, k):
            stop = min(r + k, n_outer)
            blocks.append((r * n_inner, stop * n_inner, [v[r:stop] for v in views]))
        return blocks
    for r in range(n_outer):  # one outer row split into [t, V] pieces
        for s in range(0, n_inner, step):
            stop = min(s + step, n_inner)
            blocks.append((r * n_inner + s, r * n_inner + stop, [v[r, s:stop] for v in views]))
    return blocks


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float32 for half/bf16/float32 inputs; float64 stays float64 (gradcheck needs it)."""
    return torch.float64 if dtype == torch.float64 else torch.float32


class _TokenLogProb(torch.autograd.Function):
    """logp[n] = log_softmax(logits[n])[tok[n]] over flattened rows n, chunked in both passes.

    Autograd through ``logits.float().log_softmax(-1)`` would keep the float32 log-softmax of every
    position alive until backward; this Function saves only the original logits (any dtype) and the
    token ids, and recomputes softmax one chunk at a time in backward:
    d logp[n] / d logits[n, v] = 1[v = tok[n]] - p[n, v].
    The fused (max-shifted) softmax kernels stay precise for logits of any magnitude.
    """

    @staticmethod
    def forward(ctx, logits_BTV: torch.Tensor, tokens_N: torch.Tensor) -> torch.Tensor:
        dtype = _compute_dtype(logits_BTV.dtype)
        logp_N = torch.empty(tokens_N.shape[0], dtype=dtype, device=logits_BTV.device)
        for start, stop, (z,) in _row_blocks(logits_BTV):
            index = tokens_N[start:stop].view(*z.shape[:-1], 1)  # blocks keep their own shape: no copy
            logp_chunk = torch.log_softmax(z.to(dtype), dim=-1)
            logp_N[start:stop] = logp_chunk.gather(-1, index).reshape(-1)
        ctx.save_for_backward(logits_BTV, tokens_N)
        return logp_N

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_N: torch.Tensor):
        logits_BTV, tokens_N = ctx.saved_tensors
        dtype = _compute_dtype(logits_BTV.dtype)
        grad_logits = torch.empty(logits_BTV.shape, dtype=logits_BTV.dtype, device=logits_BTV.device)
        grad_NV = grad_logits.view(-1, logits_BTV.shape[-1])  # freshly allocated: always viewable
        for start, stop, (z,) in _row_blocks(logits_BTV):
            g_n1 = grad_N[start:stop].to(dtype).view(*z.shape[:-1], 1)
            chunk = torch.softmax(z.to(dtype), dim=-1).mul_(-g_n1)
            chunk.scatter_add_(-1, tokens_N[start:stop].view(*z.shape[:-1], 1), g_n1)
            grad_NV[start:stop] = chunk.view(stop - start, -1)
        return grad_logits, None


def token_logprobs(logits_BTV: torch.Tensor, tokens_BT: torch.Tensor) -> torch.Tensor:
    """Log-probability of each given token: ``logp[b, t] = log softmax(logits[b, t])[tokens[b, t]]``.

    Computed in float32 (float64 if the logits are float64) whatever the logits' dtype, one bounded
    chunk of rows at a time, so neither a float32 copy of the logits nor a full log-softmax is ever
    materialised or kept for backward. Gradients flow into the
    logits (returned in the logits' dtype). Leading dimensions are free: ``logits[..., V]``,
    ``tokens[...]``. Tokens must be valid ids (no -100): mask ignored positions separately.

    Standard autoregressive likelihood; for a causal LM pass ``logits[:, :-1]`` and ``ids[:, 1:]``.
    """
    if logits_BTV.shape[:-1] != tokens_BT.shape:
        raise ValueError(
            f"logits {tuple(logits_BTV.shape)} and tokens {tuple(tokens_BT.shape)} disagree on leading dims"
        )
    if tokens_BT.dtype != torch.long:
        tokens_BT = tokens_BT.long()
    logp_N = _TokenLogProb.apply(logits_BTV, tokens_BT.reshape(-1))
    return logp_N.reshape(tokens_BT.shape)


def token_entropy(logits_BTV: torch.Tensor) -> torch.Tensor:
    """Entropy of each next-token distribution: ``H = -sum_v p_v log p_v``, ``p = softmax(z)`` (nats).

    Float32 (float64 for float64 logits), in row chunks so a bf16 vocabulary is never copied whole.
    Vocabulary entries with probability exactly 0 (logit -inf) contribute 0, not NaN. Differentiable
    (usable as an entropy bonus); usually logged under no_grad.
    """
    dtype = _compute_dtype(logits_BTV.dtype)
    pieces = []
    for start, stop, (z,) in _row_blocks(logits_BTV):
        # -sum p log p with log_softmax (max-shifted): no cancellation between two large numbers.
        logp = torch.log_softmax(z.to(dtype).reshape(stop - start, -1), dim=-1)
        probs = torch.exp(logp)
        # 0 * (-inf) would be NaN: a token the model cannot emit adds nothing to the entropy.
        # log p is masked too, so that backward sees no 0 * inf either.
        support = probs > 0
        logp_safe = torch.where(support, logp, torch.zeros_like(logp))
        pieces.append(-torch.where(support, probs * logp_safe, torch.zeros_like(logp)).sum(-1))
    if not pieces:
        return torch.zeros(logits_BTV.shape[:-1], dtype=dtype, device=logits_BTV.device)
    return torch.cat(pieces).reshape(logits_BTV.shape[:-1])
