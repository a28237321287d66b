"""Decode steps that skip finished rows, against computing every row, on the probe's work.

A sampling chunk decodes until its longest completion ends; a row that has ended is fed masked padding
from then on. ``models/fast_decode.py`` computes the embedding, projections, MLP and head of a decode
step for the real rows only (``rows_to_compute``), and attention over every row. This script measures
what that saves where it matters: the packaged base (which ends its completions itself, unlike a
random-weight model), held-out GeneralPoints prompts of both rules, G samples each, max_new_tokens 24,
temperature 1, chunks of 512 sequences. Medians of ``--repeats`` interleaved runs (the two settings
alternate), after one warm-up run of each; both settings must draw identical tokens (checked).

    python benchmarks/bench_finished_rows.py --prompts 32 --samples 128 --repeats 5 --threads 1
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

# Denormal floats slow CPU matmuls several-fold on these machines (see DESIGN.md).
torch.set_flush_denormal(True)

from reweightlab.models import fast_decode, load_model, load_tokenizer  # noqa: E402
from reweightlab.recipes.pretrain import PACKAGED_BASE  # noqa: E402
from reweightlab.rollout import HFRolloutEngine  # noqa: E402
from reweightlab.tasks import get_task  # noqa: E402

OFF = 10**9  # COMPACT_MIN_ROWS that no chunk reaches: every row computed


def run(engine, ids, samples: int, min_rows: int, seed: int):
    fast_decode.COMPACT_MIN_ROWS = min_rows
    start = time.perf_counter()
    rollout = engine.generate(ids, samples_per_prompt=samples, max_new_tokens=24, seed=seed)
    return time.perf_counter() - start, rollout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=32, help="held-out prompts per rule")
    parser.add_argument("--samples", type=int, default=128, help="samples per prompt (the probe's n)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (a probe worker has 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="also write the figures to this JSON file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tok = load_tokenizer(str(PACKAGED_BASE))
    model = load_model(str(PACKAGED_BASE), dtype="float32", device="cpu")
    engine = HFRolloutEngine(model, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    task, default = get_task("generalpoints"), fast_decode.COMPACT_MIN_ROWS
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {args.threads} thread(s); "
          f"packaged base, {args.prompts} prompts x {args.samples} per rule, medians of {args.repeats}")
    figures = {}
    for rule in ("id", "ood"):
        ids = [tok(p.prompt)["input_ids"] for p in task.problems(rule, "test", args.prompts, args.seed)]
        run(engine, ids, args.samples, default, args.seed)
        run(engine, ids, args.samples, OFF, args.seed)
        times = {"compacted": [], "every row": []}
        for r in range(args.repeats):
            t_on, on = run(engine, ids, args.samples, default, args.seed + r)
            t_off, off = run(engine, ids, args.samples, OFF, args.seed + r)
            if not torch.equal(on.completion_ids_NT, off.completion_ids_NT):
                raise SystemExit(f"{rule}: compacted decode drew other tokens than computing every row")
            times["compacted"].append(t_on)
            times["every row"].append(t_off)
        tokens = int(on.completion_mask_NT.sum())
        steps = on.completion_mask_NT.shape[1]
        med = {k: statistics.median(v) for k, v in times.items()}
        figures[rule] = {"seconds": med, "generated_tokens": tokens, "decode_steps": steps,
                         "mean_completion": tokens / on.completion_mask_NT.shape[0],
                         "speedup": med["every row"] / med["compacted"]}
        print(f"{rule}: mean completion {figures[rule]['mean_completion']:.1f} of {steps} steps; "
              f"every row {med['every row']:.3f} s ({tokens / med['every row']:,.0f} tokens/s), "
              f"compacted {med['compacted']:.3f} s ({tokens / med['compacted']:,.0f} tokens/s): "
              f"{figures[rule]['speedup']:.2f}x, identical tokens")
    fast_decode.COMPACT_MIN_ROWS = default
    if args.out:
        with open(args.out, "w") as f:
            json.dump(figures, f, indent=1)


if __name__ == "__main__":
    main()
