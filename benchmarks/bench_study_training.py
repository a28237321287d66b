"""The study's training stage: length-bucketed micro-batches, and runs side by side in worker processes.

1. ``--part buckets``: one RL batch of revision episodes (16 training hands x 8 episodes of up to 5
   attempts, sampled from a model trained like the demo's warm-up, or the packaged base), forward and
   backward over its micro-batches: fixed chunks of ``sequences_per_microbatch`` (one micro-batch
   padded to the longest episode) against ``microbatches(bucketed=True)``. Padded tokens and medians of
   ``--repeats`` interleaved timings; both give the same gradient up to float rounding (checked).
2. ``--part pool``: the default budget's runs of ``--arms`` (seed 0) trained one after the other in this
   process with all its threads, against the pool of ``--workers`` one-thread processes
   (recipes/train_pool.py), spawning included; interleaved, ``--repeats`` each.

    python benchmarks/bench_study_training.py --part buckets --model runs/demo-*/sft-s0/final
    python benchmarks/bench_study_training.py --part pool --arms sft,grpo,dft,rloo,grpo_revision --repeats 2
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch

# Denormal floats slow CPU matmuls several-fold on these machines (see DESIGN.md).
torch.set_flush_denormal(True)

from reweightlab.data.store import microbatches  # noqa: E402
from reweightlab.models import load_model, load_tokenizer  # noqa: E402
from reweightlab.models.forward import forward_logits_logp  # noqa: E402
from reweightlab.recipes import train_pool  # noqa: E402
from reweightlab.recipes.arms import ARMS, arm_config  # noqa: E402
from reweightlab.recipes.demo import DEFAULT_BUDGET  # noqa: E402
from reweightlab.recipes.pretrain import PACKAGED_BASE  # noqa: E402
from reweightlab.rollout import HFRolloutEngine  # noqa: E402
from reweightlab.rollout.revision import sample_revisions  # noqa: E402
from reweightlab.tasks import get_task  # noqa: E402
from reweightlab.tasks.hooks import use_tokenizer  # noqa: E402
from reweightlab.train.config import config_from_dict  # noqa: E402
from reweightlab.train.loop import train  # noqa: E402


def bench_buckets(args) -> dict:
    tok, model = load_tokenizer(args.model), load_model(args.model, dtype="float32", device="cpu")
    task = get_task("generalpoints")
    use_tokenizer(task, tok)
    engine = HFRolloutEngine(model, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    store = sample_revisions(engine, task, task.problems("id", "train", 16, 3), tok, attempts=5, samples_per_prompt=8,
                             max_new_tokens=24, seed=1).store
    model.train()

    def step(bucketed: bool):
        model.zero_grad(set_to_none=True)
        mbs = microbatches(store, 128, bucketed=bucketed)
        for mb in mbs:
            _, logp = forward_logits_logp(model, mb)
            (logp * mb.mask_BT).sum().backward()
        return mbs, [p.grad.clone() for p in model.parameters()]

    out = {}
    for bucketed in (False, True):
        mbs, grads = step(bucketed)
        out[bucketed] = {"shapes": [list(m.input_ids_BL.shape) for m in mbs],
                         "padded_tokens": sum(m.input_ids_BL.numel() for m in mbs), "seconds": []}
        out[("g", bucketed)] = grads
    worst = max(float((a - b).abs().max()) for a, b in zip(out[("g", False)], out[("g", True)], strict=True))
    scale = max(float(a.abs().max()) for a in out[("g", False)])
    for _ in range(args.repeats):
        for bucketed in (False, True):
            t = time.perf_counter()
            step(bucketed)
            out[bucketed]["seconds"].append(time.perf_counter() - t)
    lengths = store.total_len_N.tolist()
    result = {"episodes": len(store), "lengths": [min(lengths), max(lengths)], "real_tokens": int(sum(lengths)),
              "grad_max_abs_diff": worst, "grad_max_abs": scale}
    for bucketed, name in ((False, "fixed"), (True, "bucketed")):
        r = out[bucketed]
        result[name] = {"micro_batches": r["shapes"], "padded_tokens": r["padded_tokens"],
                        "median_s": round(statistics.median(r["seconds"]), 4)}
    result["speedup"] = round(result["fixed"]["median_s"] / result["bucketed"]["median_s"], 2)
    return result


def bench_pool(args) -> dict:
    base = str(PACKAGED_BASE)
    names = args.arms.split(",")
    threads = torch.get_num_threads()

    def jobs(out: Path):
        return [train_pool.Job(f"{n}-s0", lambda done, a=ARMS[n]: arm_config(a, DEFAULT_BUDGET, base, out, 0,
                                                                            data={"task": "generalpoints"}))
                for n in names]

    times: dict[str, list[float]] = {"serial": [], "pool": []}
    runs: dict[str, list[float]] = {}
    for _ in range(args.repeats):
        for mode in ("pool", "serial"):
            out = Path(tempfile.mkdtemp(prefix="bench-pool-"))
            t = time.perf_counter()
            try:
                if mode == "serial":
                    for job in jobs(out):
                        train(config_from_dict(job.config({})), progress=False, log=lambda *_: None)
                else:
                    done = train_pool.run_pool(jobs(out), args.workers, {}, threads=max(1, threads // args.workers),
                                               quiet=(True, True), on_done=lambda d: None)
                    for label, d in done.items():
                        runs.setdefault(label, []).append(d.seconds)
            finally:
                shutil.rmtree(out, ignore_errors=True)
            times[mode].append(time.perf_counter() - t)
    serial, pool = statistics.median(times["serial"]), statistics.median(times["pool"])
    return {"arms": names, "workers": args.workers, "serial_threads": threads,
            "serial_s": round(serial, 1), "pool_s": round(pool, 1), "speedup": round(serial / pool, 2),
            "all": {k: [round(x, 1) for x in v] for k, v in times.items()},
            "pool_run_seconds": {k: statistics.median(v) for k, v in runs.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=("buckets", "pool"), required=True)
    parser.add_argument("--model", default=str(PACKAGED_BASE), help="buckets: the model that samples the episodes")
    parser.add_argument("--arms", default="sft,grpo,dft,rloo", help="pool: the default budget's arms to train")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    result = bench_buckets(args) if args.part == "buckets" else bench_pool(args)
    result |= {"threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine(),
               "torch": torch.__version__}
    print(json.dumps(result, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
