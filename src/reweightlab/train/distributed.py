"""Data parallelism: the only module that touches torch.distributed (through accelerate).

`accelerate launch --num_processes N ...` (or `torchrun`) starts N copies of the same run. Each
process holds a full copy of the model (DDP; FSDP shards it), takes its share of each step's
sequences (offline) or prompts (RL), and the processes meet only where a sum over the whole step is
needed: the step's token and sequence counts, per-token statistics, and rewards for advantages.

A plain `reweightlab train` (no launcher) gets `SingleProcess`: the same interface, where every
collective is the identity, and accelerate is never imported.

Gradient scaling. Each process's loss is divided by the step's *global* token (or sequence) count,
so the sum over processes of their gradients is the full batch's gradient. DDP averages gradients
over processes instead of summing them, so each process multiplies its loss by `world_size`
(`grad_scale`); then a 2-process step equals a 1-process step over the same sequences.
"""

from __future__ import annotations

import contextlib
import os

import torch


def launched_world_size() -> int:
    """Processes started by a launcher (accelerate launch / torchrun set WORLD_SIZE); 1 otherwise."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def shard_range(n: int, rank: int, world_size: int) -> tuple[int, int]:
    """Contiguous slice [start, stop) of n items for `rank`; sizes differ by at most one."""
    base, extra = divmod(n, world_size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


class SingleProcess:
    """One process: every collective is the identity (no torch.distributed, no accelerate)."""

    rank = 0
    world_size = 1
    is_main = True
    grad_scale = 1.0

    def __init__(self, device: torch.device):
        self.device = device

    def all_reduce_sum(self, t: torch.Tensor) -> torch.Tensor:
        return t

    def all_gather_cat(self, t: torch.Tensor) -> torch.Tensor:
        return t

    def barrier(self) -> None:
        pass

    def shard(self, n: int) -> tuple[int, int]:
        return 0, n

    def wrap(self, model):
        return model

    def unwrap(self, model):
        return model

    def no_sync(self, model):
        return contextlib.nullcontext()

    def clip_grad_norm_(self, model, max_norm: float) -> torch.Tensor:
        return torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)

    def full_state_dict(self, model) -> dict | None:
        return None  # save_pretrained reads the module's own parameters


class AcceleratePeers:
    """N processes through `accelerate.Accelerator` (DDP, or FSDP with strategy='fsdp')."""

    def __init__(self, device_name: str, strategy: str):
        from accelerate import Accelerator

        kwargs = {}
        if strategy == "fsdp":
            from accelerate import FullyShardedDataParallelPlugin

            # use_orig_params keeps parameter names and lets the optimizer see LoRA's trainable subset
            kwargs["fsdp_plugin"] = FullyShardedDataParallelPlugin(use_orig_params=True)
        cpu = device_name == "cpu" or (device_name == "auto" and not torch.cuda.is_available())
        self._acc = Accelerator(cpu=cpu, **kwargs)
        self.strategy = strategy
        if strategy == "fsdp" and self._acc.distributed_type.name != "FSDP":
            # accelerate falls back to DDP where it cannot shard (e.g. CPU processes): say so, not silently
            raise ValueError(f"dist.strategy=fsdp: accelerate runs {self._acc.distributed_type.name} here "
                             "(FSDP needs CUDA devices); use dist.strategy=ddp")
        self.rank = self._acc.process_index
        self.world_size = self._acc.num_processes
        self.is_main = self._acc.is_main_process
        self.grad_scale = float(self.world_size)  # DDP/FSDP average gradients; we want their sum
        self.device = self._acc.device

    def all_reduce_sum(self, t: torch.Tensor) -> torch.Tensor:
        # gloo (CPU) and NCCL (GPU) each need tensors on their own device: move there and back
        out = t.detach().to(self.device).clone()
        torch.distributed.all_reduce(out, op=torch.distributed.ReduceOp.SUM)
        return out.to(t.device)

    def all_gather_cat(self, t: torch.Tensor) -> torch.Tensor:
        """Concatenate equal-shaped tensors of all processes along dim 0, in rank order."""
        local = t.detach().to(self.device).contiguous()
        parts = [torch.empty_like(local) for _ in range(self.world_size)]
        torch.distributed.all_gather(parts, local)
        return torch.cat(parts).to(t.device)

    def barrier(self) -> None:
        self._acc.wait_for_everyone()

    def shard(self, n: int) -> tuple[int, int]:
        return shard_range(n, self.rank, self.world_size)

    def wrap(self, model):
        return self._acc.prepare(model)

    def unwrap(self, model):
        return self._acc.unwrap_model(model)

    def no_sync(self, model):
        return self._acc.no_sync(model)

    def clip_grad_norm_(self, model, max_norm: float) -> torch.Tensor:
        # FSDP needs its own norm over shards; accelerate dispatches on the wrapper
        return self._acc.clip_grad_norm_(model.parameters(), max_norm)

    def full_state_dict(self, model) -> dict | None:
        if self.strategy != "fsdp":
            return None  # DDP: every process's module holds the full weights
        return self._acc.get_state_dict(model)  # gathers FSDP shards; every process must call it


def make_distributed(device_name: str, strategy: str, single_device: torch.device):
    """SingleProcess on `single_device` unless a launcher started more than one process."""
    if launched_world_size() > 1:
        return AcceleratePeers(device_name, strategy)
    if strategy != "ddp":
        raise ValueError(f"dist.strategy={strategy} does nothing in one process; start the run with "
                         "`accelerate launch --num_processes N` (N > 1)")
    return SingleProcess(single_device)


def gather_rows(dist, t: torch.Tensor) -> torch.Tensor:
    """Concatenate every process's rows of `t` in rank order, when the processes hold different numbers
    of rows (a shard of n items): pad to the largest count, gather, drop the padding. Identity in one
    process. All other dimensions must agree across processes."""
    if dist.world_size == 1:
        return t
    counts = dist.all_gather_cat(torch.tensor([t.shape[0]], dtype=torch.long)).tolist()
    pad = max(counts) - t.shape[0]
    padded = torch.cat([t, t.new_zeros((pad, *t.shape[1:]))]) if pad else t
    parts = dist.all_gather_cat(padded).split(max(counts))
    return torch.cat([part[:n] for part, n in zip(parts, counts, strict=True)])
