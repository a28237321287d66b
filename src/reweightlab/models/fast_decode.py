"""Cached forwards for Llama-architecture models without the framework's per-step overhead.

A decode step of a small model on a CPU is dominated by work that is not the model's arithmetic: a
generic cache that appends every step with ``torch.cat`` (copying all keys and values so far), the
construction of a 4-D attention mask by generic code, and dozens of Python-level checks per layer.
For the architectures whose forward is the plain pre-norm Llama block (Llama, Qwen2 without sliding
windows), this module runs the same modules (embedding, norms, projections, MLP, rotary embedding,
head; so adapters and biases inside them still apply) around its own cache:

- ``KVBuffer``: per layer, keys and values in one preallocated [B, H_kv, capacity, D] tensor; a
  forward writes its T new columns in place. Capacity is reserved at prefill (prompt + the tokens
  the caller expects to add) and doubles if outgrown, so appending is amortised O(new tokens).
- The attention mask is the boolean [B, 1, T, S] of "column is a real token at or before me"; a
  query that has none (left padding at prefill) sees its own column, so no row is empty (its output
  is never read: no real token attends to a padding column).

- A decode step computes only the rows whose fed token is real (``rows_to_compute``): once rows have
  finished (they are fed masked padding), the embedding, projections, MLP and head run on the others
  (at least ``COMPACT_MIN_ROWS``, a multiple of ``COMPACT_ROUND``), and only attention, whose cost is
  reading the cache, runs over every row. A finished row's new cache column is zero (it is masked, so
  never read) and its logits are zero: a caller never uses the logits after a masked token.

The numbers equal the reference forward's up to float rounding (tests/unit/test_fast_decode.py
compares both on models built in the test). Anything else (other architectures, models split across
devices, gradient-carrying forwards) goes through the generic path of models/forward.py.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F

_FAST_CLASSES = ("LlamaForCausalLM", "Qwen2ForCausalLM")
ENV_SWITCH = "REWEIGHTLAB_FAST_DECODE"
"""Set to 0 to send every cached forward through the generic transformers path (for comparison)."""


def fast_decode_supported(model: torch.nn.Module) -> bool:
    """True when ``model``'s forward is the plain Llama block on one device and the switch is not off."""
    if os.environ.get(ENV_SWITCH, "1") == "0":
        return False
    if type(model).__name__ not in _FAST_CLASSES or getattr(model, "hf_device_map", None):
        return False
    config = model.config
    if getattr(config, "use_sliding_window", False):
        return False
    if any(kind != "full_attention" for kind in (getattr(config, "layer_types", None) or [])):
        return False
    if getattr(config, "pretraining_tp", 1) not in (None, 1):
        return False
    if getattr(model, "is_quantized", False) or getattr(model, "quantization_method", None):
        return False
    inner = getattr(model, "model", None)
    if inner is None or not all(hasattr(inner, name) for name in ("embed_tokens", "layers", "norm", "rotary_emb")):
        return False
    devices = {p.device for p in model.parameters()}
    return len(devices) == 1


COMPACT_MIN_ROWS = 16
COMPACT_ROUND = 8
"""A compacted decode step computes at least COMPACT_MIN_ROWS rows, a multiple of COMPACT_ROUND (finished
rows fill the rest). Matrix products of fewer rows take other kernels, whose rounding differs from the
full batch's; from about 12 rows on, this machine's products give every row the bits it gets in the
full batch (measured), so compacting does not change a sample."""


def rows_to_compute(real_B: torch.Tensor) -> torch.Tensor | None:
    """Indices (ascending) of the rows a decode step computes, given which fed tokens are real; None
    when compacting would save nothing (then every row is computed). Reads the count of real rows on the
    host (a sync per decode step on an accelerator, next to the sampler's own)."""
    B = real_B.shape[0]
    real = int(real_B.sum())
    want = max(COMPACT_MIN_ROWS, -(-real // COMPACT_ROUND) * COMPACT_ROUND)
    if want >= B:
        return None
    chosen_B = real_B.clone()
    if want > real:  # fill up with the first finished rows
        spare = (~real_B).nonzero().squeeze(-1)[: want - real]
        chosen_B[spare] = True
    return chosen_B.nonzero().squeeze(-1)


# RoPE variants whose angles depend on the position alone (not on the sequence length, as "dynamic"
# and "longrope" do): their cos/sin can be tabulated once per buffer and looked up by position.
_STATIC_ROPE = ("default", "linear", "llama3", "yarn")


def _signed_sin(sin: torch.Tensor) -> torch.Tensor:
    """sin with its first half negated: x * cos + roll(x, half) * signed_sin is the rotary embedding
    (x * cos + rotate_half(x) * sin, rotate_half(x) = (-x2, x1)) with the same float operations, in
    two kernels fewer."""
    half = sin.shape[-1] // 2
    return torch.cat((-sin[..., :half], sin[..., half:]), dim=-1)


def _rope(x: torch.Tensor, cos: torch.Tensor, signed_sin: torch.Tensor) -> torch.Tensor:
    return x * cos + x.roll(x.shape[-1] // 2, -1) * signed_sin


class KVBuffer:
    """Preallocated keys and values of every layer.

    ``k[l]``, ``v[l]`` are [B, H_kv, capacity, D]; their first ``length`` columns are filled (the same
    count for every row: per-row padding is in the attention mask). After a reorder that repeats each
    of P rows G times in order (a prompt copied to its G samples), the P rows' columns are not copied
    G times: they stay as ``shared_k[l]``, ``shared_v[l]`` ([P, H_kv, shared_length, D]) and attention
    over them runs as one [G x D] @ [D x shared_length] product per prompt and head, which reads the
    prompt's keys once instead of G times (on a CPU, decode attention is bound by reading the cache).
    The cache's columns are then the shared ones followed by the row's own.
    """

    def __init__(self, model: torch.nn.Module, batch: int, capacity: int, device, dtype) -> None:
        config = model.config
        self.num_layers = len(model.model.layers)
        attn = model.model.layers[0].self_attn
        self.head_dim = attn.head_dim
        self.kv_heads = config.num_key_value_heads
        self.length = 0
        shape = (batch, self.kv_heads, max(int(capacity), 1), self.head_dim)
        self.k = [torch.empty(shape, device=device, dtype=dtype) for _ in range(self.num_layers)]
        self.v = [torch.empty(shape, device=device, dtype=dtype) for _ in range(self.num_layers)]
        self.shared_k: list[torch.Tensor] | None = None
        self.shared_v: list[torch.Tensor] | None = None
        self.group = 1
        self.rope: tuple[torch.Tensor, torch.Tensor] | None = None
        """(cos, signed sin) per position [n, D] for a position-only RoPE (``_rotary``)."""

    @property
    def capacity(self) -> int:
        return self.k[0].shape[2]

    @property
    def shared_length(self) -> int:
        return 0 if self.shared_k is None else self.shared_k[0].shape[2]

    def reserve(self, extra: int) -> None:
        """Make room for ``extra`` more columns (doubling, so repeated growth stays amortised)."""
        need = self.length + extra
        if need <= self.capacity:
            return
        new_capacity = max(need, 2 * self.capacity)
        for store in (self.k, self.v):
            for i, old in enumerate(store):
                grown = old.new_empty((*old.shape[:2], new_capacity, old.shape[3]))
                grown[:, :, : self.length] = old[:, :, : self.length]
                store[i] = grown

    def reorder_cache(self, index_B: torch.Tensor, reserve: int | None = None) -> None:
        """Row b becomes old row ``index_B[b]`` (same name as transformers' caches). ``reserve``: columns
        the caller will add next (a revision episode: its feedback and the next attempt), so the copy is
        made with room for them and no growth follows; None keeps the capacity."""
        rows = self.k[0].shape[0]
        B = index_B.shape[0]
        group = B // rows if B % rows == 0 else 0
        if (self.shared_k is None and group > 1 and self.length > 0
                and torch.equal(index_B, torch.arange(B, device=index_B.device) // group)):
            spare = self.capacity - self.length
            self.shared_k = [k[:, :, : self.length].contiguous() for k in self.k]
            self.shared_v = [v[:, :, : self.length].contiguous() for v in self.v]
            self.k = [k.new_empty((B, k.shape[1], max(spare, 1), k.shape[3])) for k in self.k]
            self.v = [v.new_empty((B, v.shape[1], max(spare, 1), v.shape[3])) for v in self.v]
            self.group, self.length = group, 0
            return
        if self.shared_k is not None and B == rows and torch.equal(index_B, torch.arange(B, device=index_B.device)):
            return
        # Any other order: each new row's shared columns (if any) then its own, gathered once into a
        # buffer of the final capacity (a fresh allocation costs more than the copy on a CPU).
        Ls, L = self.shared_length, self.length
        capacity = Ls + (self.capacity if reserve is None else L + max(int(reserve), 0))
        owner_B = None if self.shared_k is None else (torch.arange(rows, device=index_B.device) // self.group)[index_B]
        for store, shared in ((self.k, self.shared_k), (self.v, self.shared_v)):
            for i, old in enumerate(store):
                new = old.new_empty((B, old.shape[1], max(capacity, 1), old.shape[3]))
                if owner_B is not None:
                    torch.index_select(shared[i], 0, owner_B, out=new[:, :, :Ls])
                torch.index_select(old[:, :, :L], 0, index_B, out=new[:, :, Ls : Ls + L])
                store[i] = new
        self.length = Ls + L
        self.shared_k = self.shared_v = None
        self.group = 1


def new_buffer(model: torch.nn.Module, batch: int, capacity: int) -> KVBuffer:
    weight = model.model.embed_tokens.weight
    dtype = model.model.layers[0].self_attn.k_proj.weight.dtype
    if not dtype.is_floating_point:  # a quantised weight would have been refused; keep a float cache
        dtype = weight.dtype
    return KVBuffer(model, batch, capacity, weight.device, dtype)


def fast_forward(model: torch.nn.Module, buffer: KVBuffer, ids_BT: torch.Tensor, mask_BS: torch.Tensor,
                 position_BT: torch.Tensor, last_only: bool) -> torch.Tensor:
    """Feed ids_BT (B x T) after the ``buffer.length`` cached columns; ``mask_BS`` (S = length + T) marks
    the real columns, ``position_BT`` the fed tokens' positions. Returns float32 logits of the last
    position [B, V] (``last_only``) or of every fed position [B, T, V]; the buffer holds the T new columns.
    A decode step (T = 1, ``last_only``) computes only the rows that ``rows_to_compute`` picks; the
    others' logits are zero."""
    inner = model.model
    B, T = ids_BT.shape
    S0 = buffer.shared_length + buffer.length
    S = S0 + T
    buffer.reserve(T)
    decode = T == 1 and S0 > 0
    rows_M = rows_to_compute(mask_BS[:, -1].bool()) if decode and last_only else None
    if rows_M is not None:
        ids_BT, position_BT = ids_BT[rows_M], position_BT[rows_M]
    M = ids_BT.shape[0]  # the rows computed outside attention (B unless compacted)
    hidden = inner.embed_tokens(ids_BT)
    cos, sin = _rotary(inner.rotary_emb, buffer, hidden, position_BT, S)
    device = ids_BT.device
    if decode:
        # a decode step: the query is the last column, so causality allows every column, and the row's
        # cached columns hold its prompt's real tokens (prompts are never empty), so none is empty
        allowed_B1TS = mask_BS.bool()[:, None, None, :]
    else:
        column_S = torch.arange(S, device=device)
        query_T = torch.arange(S0, S, device=device)
        causal_TS = column_S[None, :] <= query_T[:, None]
        own_TS = column_S[None, :] == query_T[:, None]
        allowed_B1TS = mask_BS.bool()[:, None, None, :] & causal_TS
        # a query with no real column before it (left padding at prefill) sees its own, so no row is empty
        allowed_B1TS = allowed_B1TS | (own_TS & ~allowed_B1TS.any(-1, keepdim=True))
    D, H_kv = buffer.head_dim, buffer.kv_heads
    for i, layer in enumerate(inner.layers):
        attn = layer.self_attn
        x = layer.input_layernorm(hidden)
        q = attn.q_proj(x).view(M, T, -1, D).transpose(1, 2)
        k = attn.k_proj(x).view(M, T, H_kv, D).transpose(1, 2)
        v = attn.v_proj(x).view(M, T, H_kv, D).transpose(1, 2)
        q = _rope(q, cos, sin)
        k = _rope(k, cos, sin)
        own = buffer.length
        if rows_M is None:
            buffer.k[i][:, :, own : own + T] = k
            buffer.v[i][:, :, own : own + T] = v
        else:  # the other rows' column is masked for them and never read: zero, so it is finite
            q = q.new_zeros((B, *q.shape[1:])).index_copy_(0, rows_M, q)
            for store, new in ((buffer.k[i], k), (buffer.v[i], v)):
                column = store[:, :, own : own + T]
                column.zero_()
                column.index_copy_(0, rows_M, new)
        if buffer.shared_k is None:
            out = F.scaled_dot_product_attention(
                q, buffer.k[i][:, :, : own + T], buffer.v[i][:, :, : own + T], attn_mask=allowed_B1TS,
                scale=attn.scaling, enable_gqa=q.shape[1] != H_kv)
        else:
            out = _shared_attention(q, buffer, i, own + T, allowed_B1TS, attn.scaling)
        if rows_M is not None:
            out = out.index_select(0, rows_M)
        hidden = hidden + attn.o_proj(out.transpose(1, 2).reshape(M, T, -1))
        hidden = hidden + layer.mlp(layer.post_attention_layernorm(hidden))
        buffer.length = own  # restored for the next layer; advanced once below
    buffer.length += T
    if last_only:
        hidden = hidden[:, -1:]
    logits = model.lm_head(inner.norm(hidden)).float()
    if rows_M is not None:
        return logits.new_zeros((B, logits.shape[-1])).index_copy_(0, rows_M, logits[:, -1])
    return logits[:, -1] if last_only else logits


def _rotary(rotary: torch.nn.Module, buffer: KVBuffer, hidden: torch.Tensor, position_BT: torch.Tensor,
            S: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(cos, signed sin) of the fed positions, [B, 1, T, D]. A position-only RoPE is tabulated once per
    buffer by the model's own rotary module (the same elementwise operations, so the same values) for
    at least the S columns so far (a position never exceeds its column), and looked up."""
    if getattr(rotary, "rope_type", None) not in _STATIC_ROPE:
        cos, sin = rotary(hidden, position_BT)
        return cos.unsqueeze(1), _signed_sin(sin).unsqueeze(1)
    table = buffer.rope
    if table is None or table[0].shape[0] < S or table[0].dtype != hidden.dtype or table[0].device != hidden.device:
        have = 0 if table is None else table[0].shape[0]
        n = max(S, 2 * have, buffer.shared_length + buffer.capacity)
        cos, sin = rotary(hidden, torch.arange(n, device=hidden.device)[None])
        table = buffer.rope = (cos[0], _signed_sin(sin[0]))
    return table[0][position_BT].unsqueeze(1), table[1][position_BT].unsqueeze(1)


def _shared_attention(q_BHTD, buffer: KVBuffer, layer: int, own: int, allowed_B1TS: torch.Tensor,
                      scale: float) -> torch.Tensor:
    """Attention over [shared prompt columns | the row's own ``own`` columns], one softmax over both.

    Query rows are grouped by key-value head (grouped-query attention: head h reads kv head h // rep),
    so no key or value is ever repeated: a kv head's R = rep x T query rows form one product."""
    B, H, T, D = q_BHTD.shape
    G, H_kv = buffer.group, buffer.kv_heads
    P, Ls, rep = B // G, buffer.shared_length, H // H_kv
    R = rep * T
    q_BKRD = q_BHTD.reshape(B, H_kv, R, D)
    allowed_B1RS = allowed_B1TS[:, :, None].expand(B, 1, rep, T, allowed_B1TS.shape[-1]).reshape(B, 1, R, -1)
    k_sh, v_sh = buffer.shared_k[layer], buffer.shared_v[layer]
    k_own, v_own = buffer.k[layer][:, :, :own], buffer.v[layer][:, :, :own]
    # a prompt's G samples against its shared keys: one product per prompt and kv head
    q_PKQD = q_BKRD.reshape(P, G, H_kv, R, D).transpose(1, 2).reshape(P, H_kv, G * R, D)
    scores_sh = (q_PKQD @ k_sh.transpose(-1, -2)).reshape(P, H_kv, G, R, Ls).transpose(1, 2).reshape(B, H_kv, R, Ls)
    scores = torch.cat([scores_sh, q_BKRD @ k_own.transpose(-1, -2)], dim=-1).float() * scale
    weights = scores.masked_fill(~allowed_B1RS, float("-inf")).softmax(-1).to(q_BHTD.dtype)
    w_sh = weights[..., :Ls].reshape(P, G, H_kv, R, Ls).transpose(1, 2).reshape(P, H_kv, G * R, Ls)
    out_sh = (w_sh @ v_sh).reshape(P, H_kv, G, R, D).transpose(1, 2).reshape(B, H_kv, R, D)
    return (out_sh + weights[..., Ls:] @ v_own).reshape(B, H, T, D)
