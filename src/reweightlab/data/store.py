"""Sequence storage and length-bucketed micro-batches.

Sequences (prompt + completion token ids) are kept in one right-padded id matrix with their prompt
and total lengths, so that a micro-batch is one index + slice, never a Python loop over tokens.
Micro-batches are formed after sorting a step's sequences by length, so each is padded only to the
longest sequence in it (length bucketing); padding sits on the right, where a causal model never
lets it influence the real positions, so no attention mask is needed in training forwards.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

# The optional per-sequence fields of a store, and what fills them. The suffix names the shape:
# _N one value per sequence, _NT one per target position (N x L-1, aligned with ids_NL[:, 1:], zero
# outside the completion). A micro-batch carries the same fields as _B / _BT. None = absent.
FIELDS: dict[str, str] = {
    "reward_N": "the sequence's reward (a verifier, a reward function or a data file's score field)",
    "success_N": "1.0 where the verifier counts the sequence a success",
    "weight_N": "a weight fixed before training (SFT(Q) levels as weights, a data file's weight column)",
    "step_weight_N": "a weight that needs the whole optimizer step (RWR, self-normalised iw-SFT)",
    "adv_N": "the RL advantage",
    "logp_sampler_NT": "log-probs the sampler returned with each completion token",
    "logp_old_NT": "log-probs under the policy that sampled the batch (RL ratio denominator)",
    "logp_ref_NT": "log-probs under the frozen reference pi_ref",
    "loss_mask_NT": "1.0 on the completion targets that carry loss, 0.0 on text the model did not write "
                    "(a revision episode's verifier feedback); absent: every completion token carries loss",
}


def _batch_name(name: str) -> str:
    return name.replace("_NT", "_BT") if name.endswith("_NT") else name[:-2] + "_B"


@dataclass
class SequenceStore:
    """N sequences: ids_NL right-padded, prompt_len_N, total_len_N, and the optional fields of FIELDS."""

    ids_NL: torch.Tensor
    prompt_len_N: torch.Tensor
    total_len_N: torch.Tensor
    reward_N: torch.Tensor | None = None
    success_N: torch.Tensor | None = None
    weight_N: torch.Tensor | None = None
    step_weight_N: torch.Tensor | None = None
    adv_N: torch.Tensor | None = None
    logp_sampler_NT: torch.Tensor | None = None
    logp_old_NT: torch.Tensor | None = None
    logp_ref_NT: torch.Tensor | None = None
    loss_mask_NT: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.ids_NL.shape[0])

    def present(self) -> dict[str, torch.Tensor]:
        """The optional fields this store holds, in FIELDS order."""
        return {k: getattr(self, k) for k in FIELDS if getattr(self, k) is not None}

    @classmethod
    def from_lists(cls, prompts: list[list[int]], completions: list[list[int]], pad_id: int, **fields):
        """Per-sequence fields by name (``reward_N=[...]``): floats, one per sequence."""
        if len(prompts) != len(completions):
            raise ValueError("prompts and completions differ in number")
        if not prompts:
            raise ValueError("no sequences")
        plen = torch.tensor([len(p) for p in prompts], dtype=torch.long)
        tlen = plen + torch.tensor([len(c) for c in completions], dtype=torch.long)
        ids = torch.full((len(prompts), int(tlen.max())), pad_id, dtype=torch.long)
        for i, (p, c) in enumerate(zip(prompts, completions, strict=True)):  # once per dataset, not per step
            ids[i, : len(p) + len(c)] = torch.tensor(p + c, dtype=torch.long)
        return cls(ids, plen, tlen, **{k: torch.as_tensor(v, dtype=torch.float32) for k, v in fields.items()})

    @classmethod
    def from_rollout(cls, prompt_ids: list[list[int]], rollout, pad_id: int, **fields):
        """Join each sequence's prompt (by rollout.prompt_index_N) with its sampled completion."""
        comp = rollout.completion_ids_NT
        lens = rollout.completion_mask_NT.sum(1).long()
        idx = rollout.prompt_index_N.long()
        plen_P = torch.tensor([len(p) for p in prompt_ids], dtype=torch.long)
        Lp = int(plen_P.max())
        prompts_PL = torch.full((len(prompt_ids), Lp), pad_id, dtype=torch.long)
        for i, p in enumerate(prompt_ids):  # once per batch of prompts
            prompts_PL[i, : len(p)] = torch.tensor(p, dtype=torch.long)
        plen = plen_P[idx]
        tlen = plen + lens
        N, T = comp.shape
        ids = torch.full((N, Lp + T), pad_id, dtype=torch.long)
        ids[:, :Lp] = prompts_PL[idx]
        # place each completion right after its own prompt: scatter by computed column positions
        cols_NT = plen[:, None] + torch.arange(T)[None, :]
        ids.scatter_(1, cols_NT, torch.where(rollout.completion_mask_NT, comp, torch.full_like(comp, pad_id)))
        L = int(tlen.max())
        per_seq = {k: torch.as_tensor(v, dtype=torch.float32) for k, v in fields.items()}
        logp = completion_to_targets(rollout.logp_NT.float(), rollout.completion_mask_NT, plen, L)
        return cls(ids[:, :L], plen, tlen, logp_sampler_NT=logp, **per_seq)

    def replace(self, **fields) -> SequenceStore:
        """A copy with some fields set (tensors are shared, not copied)."""
        return dataclasses.replace(self, **fields)

    def select(self, index: torch.Tensor) -> SequenceStore:
        index = index.long()
        return SequenceStore(
            self.ids_NL[index], self.prompt_len_N[index], self.total_len_N[index],
            **{k: v[index] for k, v in self.present().items()},
        )

    def completion_tokens(self) -> int:
        """Tokens that carry loss: every completion token, less feedback text (``loss_mask_NT``)."""
        if self.loss_mask_NT is not None:
            return int(self.loss_mask_NT.sum())
        return int((self.total_len_N - self.prompt_len_N).sum())

    def target_mask(self) -> torch.Tensor:
        """N x L-1 float: 1.0 on the targets that carry loss (``completion_mask``, times ``loss_mask_NT``)."""
        mask = completion_mask(self.prompt_len_N, self.total_len_N, self.ids_NL.shape[1])
        return mask if self.loss_mask_NT is None else mask * self.loss_mask_NT

    @classmethod
    def concat(cls, stores: list[SequenceStore], pad_id: int, width: int = 0) -> SequenceStore:
        """Stores one after the other, right-padded to the longest (or to ``width`` if wider); they must
        hold the same fields."""
        if not stores:
            raise ValueError("no stores to concatenate")
        names = list(stores[0].present())
        if any(list(s.present()) != names for s in stores):
            raise ValueError(f"stores differ in fields: {[list(s.present()) for s in stores]}")
        L = max(width, *(s.ids_NL.shape[1] for s in stores))

        def pad(x: torch.Tensor, width: int, value) -> torch.Tensor:
            return torch.nn.functional.pad(x, (0, width - x.shape[1]), value=value)

        fields = {k: torch.cat([getattr(s, k) if k.endswith("_N") else pad(getattr(s, k), L - 1, 0.0)
                                for s in stores]) for k in names}
        return cls(
            torch.cat([pad(s.ids_NL, L, pad_id) for s in stores]),
            torch.cat([s.prompt_len_N for s in stores]),
            torch.cat([s.total_len_N for s in stores]),
            **fields,
        )


@dataclass
class MicroBatch:
    """Inputs and target mask for one forward. Targets are input_ids[:, 1:]; mask_BT marks the completion
    targets that carry loss (``SequenceStore.target_mask``).

    The optional fields are the store's (FIELDS), for these B sequences: ``reward_B``, ``logp_ref_BT`` ...
    """

    input_ids_BL: torch.Tensor
    mask_BT: torch.Tensor  # float, shape (B, L-1)
    index_B: torch.Tensor  # positions of these sequences in the step's selection
    reward_B: torch.Tensor | None = None
    success_B: torch.Tensor | None = None
    weight_B: torch.Tensor | None = None
    step_weight_B: torch.Tensor | None = None
    adv_B: torch.Tensor | None = None
    logp_sampler_BT: torch.Tensor | None = None
    logp_old_BT: torch.Tensor | None = None
    logp_ref_BT: torch.Tensor | None = None
    loss_mask_BT: torch.Tensor | None = None

    @property
    def targets_BT(self) -> torch.Tensor:
        return self.input_ids_BL[:, 1:]

    def optional(self) -> dict[str, torch.Tensor]:
        names = (_batch_name(k) for k in FIELDS)
        return {k: getattr(self, k) for k in names if getattr(self, k) is not None}

    def to(self, device) -> MicroBatch:
        return MicroBatch(
            self.input_ids_BL.to(device), self.mask_BT.to(device), self.index_B.to(device),
            **{k: v.to(device) for k, v in self.optional().items()},
        )


def completion_mask(prompt_len_B: torch.Tensor, total_len_B: torch.Tensor, L: int) -> torch.Tensor:
    """Mask over target positions t = 0..L-2 (predicting token t+1): completion tokens only."""
    t = torch.arange(L - 1)[None, :] + 1  # index of the predicted token
    return ((t >= prompt_len_B[:, None]) & (t < total_len_B[:, None])).float()


MICROBATCH_OVERHEAD_TOKENS = 512
"""What a training forward/backward costs beyond its (padded) tokens, in tokens: the fixed price that
``microbatches(bucketed=True)`` weighs against padding. Measured on the embedded model (2 CPU threads):
a micro-batch costs about 50-65 us per padded token plus ~5 ms (~100 tokens); 512 leaves room for an
accelerator's higher per-call cost, so only splits that save more padding than that are made."""


def length_buckets(lengths: list[int], max_per_bucket: int, overhead_tokens: int) -> list[int]:
    """Split ascending ``lengths`` into consecutive buckets of at most ``max_per_bucket`` that minimise
    sum(overhead_tokens + size x longest) (padded tokens plus a fixed cost per bucket); returns the
    bucket ends. Dynamic programming over the split points, O(N x max_per_bucket)."""
    n = len(lengths)
    best, cut = [0.0] + [float("inf")] * n, [0] * (n + 1)
    for j in range(1, n + 1):
        longest = lengths[j - 1]
        for i in range(max(0, j - max_per_bucket), j):
            c = best[i] + overhead_tokens + (j - i) * longest
            if c < best[j]:  # strict: ties keep the earliest split point, so the result is deterministic
                best[j], cut[j] = c, i
    ends, j = [], n
    while j > 0:
        ends.append(j)
        j = cut[j]
    return ends[::-1]


def microbatches(store: SequenceStore, sequences_per_microbatch: int, *, bucketed: bool = False) -> list[MicroBatch]:
    """Split a step's sequences into length-sorted micro-batches, each trimmed to its longest sequence:
    chunks of ``sequences_per_microbatch``, or with ``bucketed`` the length buckets (at most that many
    each) that trade padding against a fixed cost per micro-batch (``length_buckets``,
    ``MICROBATCH_OVERHEAD_TOKENS``): a batch of revision episodes, a few short and a few five attempts
    long, no longer pads every episode to the longest."""
    order = torch.argsort(store.total_len_N, stable=True)
    if bucketed and len(store):
        ends = length_buckets(store.total_len_N[order].tolist(), sequences_per_microbatch, MICROBATCH_OVERHEAD_TOKENS)
    else:
        ends = [min(s + sequences_per_microbatch, len(store)) for s in range(0, len(store), sequences_per_microbatch)]
    out = []
    for start, stop in zip([0, *ends[:-1]], ends, strict=True):
        idx = order[start:stop]
        L = int(store.total_len_N[idx].max())
        ids = store.ids_NL[idx, :L]
        mask = completion_mask(store.prompt_len_N[idx], store.total_len_N[idx], L)
        if store.loss_mask_NT is not None:  # feedback text inside a completion carries no loss
            mask = mask * store.loss_mask_NT[idx, : L - 1]
        fields = {_batch_name(k): (v[idx, : L - 1] if k.endswith("_NT") else v[idx])
                  for k, v in store.present().items()}
        out.append(MicroBatch(ids, mask, idx, **fields))
    return out


def completion_to_targets(values_NT, mask_NT, prompt_len_N, L: int) -> torch.Tensor:
    """Move per-completion-token values (left-aligned, N x T) to target positions (N x L-1).

    Completion token j of sequence n is predicted at target position prompt_len_n + j - 1.
    """
    N, T = values_NT.shape
    out = torch.zeros(N, L - 1 + T, dtype=values_NT.dtype)
    pos = prompt_len_N[:, None] - 1 + torch.arange(T)[None, :]
    out.scatter_(1, pos, torch.where(mask_NT.bool(), values_NT, torch.zeros_like(values_NT)))
    return out[:, : L - 1]
