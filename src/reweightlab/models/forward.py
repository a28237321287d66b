"""Forward passes: teacher-forced log-probs of stored sequences.

A micro-batch here is anything with ``input_ids_BL`` (right-padded ids), ``mask_BT`` (completion
targets) and ``index_B`` (its rows in the whole store): data/store.py's MicroBatch.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from reweightlab.data.store import MicroBatch
from reweightlab.math import token_logprobs


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
