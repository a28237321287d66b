"""The pieces every training loop shares: optimizer, schedule, one accumulated step."""

from __future__ import annotations

import contextlib
import math as pymath
from collections.abc import Callable, Sequence

import torch

from reweightlab.data.store import MicroBatch
from reweightlab.math import reduce_loss
from reweightlab.train.distributed import SingleProcess


class NonFiniteError(ArithmeticError):
    """A step whose loss or gradient is not finite: training stops there, before the optimizer moves."""


def make_optimizer(model, *, lr: float, weight_decay: float, betas=(0.9, 0.95)) -> torch.optim.AdamW:
    # No weight decay on norms and biases (1-d parameters): decaying a gain towards 0 is never intended.
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    fused = all(p.is_cuda for p in decay)
    return torch.optim.AdamW(groups, lr=lr, betas=tuple(betas), fused=fused or None)


def make_scheduler(opt, *, schedule: str, warmup_steps: int, total_steps: int):
    """Linear warm-up, then constant or cosine decay to 0 over the remaining steps."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        if schedule == "constant":
            return 1.0
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + pymath.cos(pymath.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def accumulated_step(
    model,
    opt,
    sched,
    mbs: Sequence[MicroBatch],
    token_loss: Callable[[MicroBatch], tuple[torch.Tensor, dict[str, torch.Tensor]]],
    *,
    reduction: str,
    max_grad_norm: float,
    device,
    constant_per_sequence: float,
    dist=None,
) -> dict[str, torch.Tensor]:
    """One optimizer step over micro-batches, normalised by the step's global counts.

    `token_loss(mb)` returns the per-token loss (B x T) and named per-token statistics (B x T) that
    are averaged over the step's completion tokens for logging. Because every micro-batch divides
    by the step's total token (or sequence) count, the summed gradients equal the full batch's.

    Data parallel (`dist` from train/distributed.py): `mbs` are this process's share of the step; the
    counts are summed over processes, and each loss is scaled by `dist.grad_scale` because DDP
    averages gradients over processes. Gradients are synchronised once, on the last micro-batch.
    Returned statistics are over the whole step (all processes).
    """
    dist = dist or SingleProcess(device)
    local_tokens = sum(float(mb.mask_BT.sum()) for mb in mbs)
    local_sequences = sum(mb.input_ids_BL.shape[0] for mb in mbs)
    counts = torch.tensor([local_tokens, float(local_sequences)], dtype=torch.float64)
    global_tokens, global_sequences = (float(c) for c in dist.all_reduce_sum(counts))
    totals: dict[str, torch.Tensor] = {}
    loss_total = torch.zeros((), device=device)
    for i, mb in enumerate(mbs):
        mbd = mb.to(device)
        with dist.no_sync(model) if i < len(mbs) - 1 else contextlib.nullcontext():
            loss_BT, stats = token_loss(mbd)
            loss = reduce_loss(
                loss_BT, mbd.mask_BT, reduction, global_tokens=global_tokens,
                global_sequences=global_sequences, constant=constant_per_sequence * global_sequences,
            )
            (loss * dist.grad_scale).backward()  # x 1.0 in one process: exact
        loss_total += loss.detach()
        for k, v in stats.items():
            s = (v.detach().float() * mbd.mask_BT).sum()
            totals[k] = totals.get(k, 0) + s
    if dist.world_size > 1:  # one collective for the loss and every statistic
        names = sorted(totals)
        summed = dist.all_reduce_sum(torch.stack([loss_total.float()] + [totals[k].float() for k in names]))
        loss_total, totals = summed[0], dict(zip(names, summed[1:], strict=True))
    grad_norm = dist.clip_grad_norm_(model, max_grad_norm if max_grad_norm > 0 else float("inf"))
    # one host sync (the step's metrics need one anyway): a non-finite loss or gradient never reaches the weights
    finite = torch.isfinite(torch.stack([loss_total.float().reshape(()), grad_norm.float().reshape(())]))
    if not bool(finite.all()):
        raise NonFiniteError(f"the loss is {float(loss_total):g} and the gradient norm {float(grad_norm):g}")
    opt.step()
    sched.step()
    opt.zero_grad(set_to_none=True)
    out = {k: v / max(global_tokens, 1.0) for k, v in totals.items()}
    out["loss"] = loss_total
    out["grad_norm"] = grad_norm.detach()
    return out
