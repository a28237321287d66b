"""The one place where a per-token loss becomes a scalar.

Which reduction is used changes the objective, not just its scale: `token_mean` weighs every token
equally (long completions count more), `seq_mean` weighs every sequence equally (Dr. GRPO, Liu et al.
2025, arXiv 2503.20783, points out the length bias this creates), `sum_over_constant` divides by a
number that does not depend on the batch's lengths.
"""

from __future__ import annotations

import torch

REDUCTIONS = ("token_mean", "seq_mean", "sum_over_constant")

Count = int | float | torch.Tensor


def _check_count(name: str, value: Count | None) -> None:
    """Counts are tensors under data parallelism (all-reduced), so only plain numbers are checked here."""
    if value is not None and not isinstance(value, torch.Tensor) and value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")


def _as_denominator(value: Count, like: torch.Tensor) -> torch.Tensor:
    """A count as a tensor of the loss's dtype, at least 1 so an empty batch gives 0 and not NaN."""
    return torch.as_tensor(value, dtype=like.dtype, device=like.device).clamp(min=1)


def reduce_loss(
    loss_BT: torch.Tensor,
    mask_BT: torch.Tensor,
    mode: str,
    *,
    global_tokens: Count | None = None,
    global_sequences: Count | None = None,
    constant: Count | None = None,
) -> torch.Tensor:
    """Reduce a per-token loss to a scalar over the completion tokens selected by ``mask_BT``.

    With ``M`` the mask (nonzero = completion token) and ``L_b = sum_t M_bt``:

    - ``token_mean``:        ``sum_bt M_bt loss_bt / N_tok``,
                             ``N_tok = global_tokens`` if given, else ``sum M``.
    - ``seq_mean``:          ``sum_b [sum_t M_bt loss_bt / max(L_b, 1)] / N_seq``,
                             ``N_seq = global_sequences`` if given, else ``B``.
    - ``sum_over_constant``: ``sum_bt M_bt loss_bt / constant`` (``constant`` required; e.g. the Dr. GRPO
                             choice ``max_new_tokens * sequences in the step``).

    Gradient accumulation and data parallelism: pass the optimizer step's total completion tokens
    (``global_tokens``) or sequences (``global_sequences``), summed over micro-batches and processes.
    Then summing the micro-batch losses' gradients gives exactly the full batch's gradient; a mean of
    per-micro-batch means does not when lengths differ (tests/invariants checks both).

    Each mode reads only its own count; the others are accepted and ignored, so a training loop can
    pass every count of the step without branching on the mode.

    Masked positions are selected with ``torch.where``, so NaN/inf stored there (e.g. in padding) cannot
    leak into the result. Empty masks give 0, never NaN.
    """
    if mode not in REDUCTIONS:
        raise ValueError(f"unknown reduction {mode!r}; allowed: {', '.join(REDUCTIONS)}")
    if loss_BT.shape != mask_BT.shape:
        raise ValueError(f"loss {tuple(loss_BT.shape)} and mask {tuple(mask_BT.shape)} differ in shape")
    if loss_BT.dim() < 1:
        raise ValueError("loss_BT needs at least one (sequence) dimension")
    _check_count("global_tokens", global_tokens)
    _check_count("global_sequences", global_sequences)
    valid_BT = mask_BT.bool()
    masked_BT = torch.where(valid_BT, loss_BT, torch.zeros_like(loss_BT))

    if mode == "token_mean":
        n_tok = global_tokens if global_tokens is not None else valid_BT.sum()
        return masked_BT.sum() / _as_denominator(n_tok, loss_BT)
    if mode == "seq_mean":
        len_B = valid_BT.sum(-1).to(loss_BT.dtype).clamp(min=1)
        per_seq_B = masked_BT.sum(-1) / len_B
        n_seq = global_sequences if global_sequences is not None else per_seq_B.numel()
        return per_seq_B.sum() / _as_denominator(n_seq, loss_BT)
    # sum_over_constant
    if constant is None:
        raise ValueError("mode 'sum_over_constant' needs constant= (e.g. max_new_tokens * sequences)")
    if not isinstance(constant, torch.Tensor) and constant <= 0:
        raise ValueError(f"constant must be > 0, got {constant}")
    return masked_BT.sum() / torch.as_tensor(constant, dtype=loss_BT.dtype, device=loss_BT.device)
