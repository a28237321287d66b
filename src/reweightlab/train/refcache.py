"""Reference log-probs of an offline dataset, computed once and kept in the run folder.

pi_ref is frozen, so logp_ref of a fixed dataset never changes: it is computed once per dataset
(not per epoch or per step) and written to `ref_logp.safetensors` with a fingerprint of what it
depends on: the sequences (token ids and lengths) and the reference model's weights. A later run
(e.g. resumed) in the same folder reuses the file when the fingerprint matches and recomputes it
(overwriting) when the data or the reference changed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from reweightlab.data.store import SequenceStore, microbatches
from reweightlab.files import atomic_file
from reweightlab.models.forward import teacher_forced_logp

CACHE_NAME = "ref_logp.safetensors"


def _hash_tensor(h, t: torch.Tensor) -> None:
    t = t.detach().cpu().contiguous()
    h.update(str((t.dtype, tuple(t.shape))).encode())
    h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())  # raw bytes: any dtype, bf16 included


def fingerprint(store: SequenceStore, ref_model) -> str:
    """sha256 of the sequences and of the reference's weights (every parameter and buffer, by name)."""
    h = hashlib.sha256()
    for t in (store.ids_NL, store.prompt_len_N, store.total_len_N):
        _hash_tensor(h, t)
    # a LoRA reference (models/adapters.ReferenceView) names its base weights itself
    weights = getattr(ref_model, "reference_weights", ref_model.state_dict)()
    for name, t in sorted(weights.items()):
        h.update(name.encode())
        _hash_tensor(h, t)
    return h.hexdigest()


def reference_logp(run_dir, store: SequenceStore, ref_model, *, sequences_per_microbatch: int, device,
                   write: bool = True, log=None, dist=None) -> torch.Tensor:
    """Target-aligned logp_ref (N x L-1) of `store`: from run_dir's cache if it matches, else computed.

    `write=False` on processes other than rank 0, which compute (or read) but never write. With
    `dist` (several processes), each process computes its shard of the sequences and the shards are
    gathered, so the reference pass costs 1/world_size of the time on each.
    """
    from safetensors.torch import load_file, save_file

    path = Path(run_dir) / CACHE_NAME
    key = fingerprint(store, ref_model)
    if path.is_file():
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            cached_key = (f.metadata() or {}).get("fingerprint")
        if cached_key == key:
            if log:
                log(f"reference log-probs: reusing {path}")
            return load_file(str(path))["logp_ref"]
        if log:
            log(f"reference log-probs: {path} was made for other data or another reference; recomputing")
    part = store
    if dist is not None and dist.world_size > 1:
        start, stop = dist.shard(len(store))
        part = store.select(torch.arange(start, stop))  # keeps the store's width L
    mbs = microbatches(part, sequences_per_microbatch)
    logp_ref = teacher_forced_logp(ref_model, mbs, len(part), store.ids_NL.shape[1], device)
    if part is not store:
        from reweightlab.train.distributed import gather_rows

        logp_ref = gather_rows(dist, logp_ref)
    if write:
        with atomic_file(path) as tmp:  # a reader never sees half a file
            save_file({"logp_ref": logp_ref.contiguous()}, str(tmp), metadata={"fingerprint": key})
    return logp_ref
