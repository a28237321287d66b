"""Sequential-revision episodes against single-attempt sampling, on the same prompts, with the embedded model.

The work: P GeneralPoints "id" train prompts, G samples each, max_new_tokens 24 per attempt, temperature
1, one seed per prompt (`prompt_seeds`) so every variant draws the same first attempt. Variants:
  single       `sample_and_score`: one attempt per sequence, verified;
  revision R   `sample_revisions(attempts=R)`: after a failed attempt the verifier's feedback is appended
               and the model tries again, up to R attempts (an episode ends at its first success).
Per variant: episodes/s (sequences/s for single), generated tokens/s (tokens the model wrote, EOS
included, feedback excluded; "episode tok/s" counts the feedback too), attempts per episode, success at
attempt 1 and within the episode. Times include verification and feedback; medians of `--repeats`
interleaved runs (the variants alternate within each run), after one warm-up run of each.
Sanity check: attempt 1 of a revision episode draws what single-attempt sampling draws with the same
prompt seeds, so its success should equal the single attempt's, episode by episode.

    python benchmarks/bench_revision.py --model PATH --repeats 3 --out /tmp/revision.json
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

from reweightlab.models import load_model, load_tokenizer  # noqa: E402
from reweightlab.rollout import HFRolloutEngine  # noqa: E402
from reweightlab.rollout.revision import sample_revisions  # noqa: E402
from reweightlab.rollout.scored import sample_and_score  # noqa: E402
from reweightlab.tasks import GeneralPoints  # noqa: E402


def run_variant(engine, task, problems, tok, args, attempts: int | None) -> dict:
    """One timed run: attempts=None is single-attempt sampling, else revision over `attempts`."""
    seeds = [args.seed + p for p in range(len(problems))]
    kw = dict(samples_per_prompt=args.samples, max_new_tokens=args.max_new_tokens, prompt_seeds=seeds)
    start = time.perf_counter()
    if attempts is None:
        out = sample_and_score(engine, task, problems, tok, **kw)
        seconds = time.perf_counter() - start
        generated = episode_tokens = out.store.completion_tokens()
        first = within = out.success_PG
        attempts_PG = torch.ones_like(first)
    else:
        out = sample_revisions(engine, task, problems, tok, attempts=attempts, **kw)
        seconds = time.perf_counter() - start
        generated = out.attempt_tokens
        episode_tokens = int((out.store.total_len_N - out.store.prompt_len_N).sum())
        first, within, attempts_PG = out.first_success_PG, out.success_PG, out.attempts_PG
    return {"seconds": seconds, "episodes": first.numel(), "generated_tokens": generated,
            "episode_tokens": episode_tokens, "attempts_per_episode": float(attempts_PG.mean()),
            "success_at_1": float(first.mean()), "success_within": float(within.mean()),
            "first_PG": first}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None,
                        help="an embedded model folder (default: ensure_embedded(), which may pretrain first)")
    parser.add_argument("--prompts", type=int, default=64, help="P")
    parser.add_argument("--samples", type=int, default=8, help="samples (episodes) per prompt (G)")
    parser.add_argument("--attempts", type=int, nargs="+", default=[2, 3], help="revision R values to time")
    parser.add_argument("--max-new-tokens", type=int, default=24, help="per attempt")
    parser.add_argument("--max-batch-sequences", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0, help="prompt p gets seed + p; also the problems' seed")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved runs; medians are reported")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.model is None:
        from reweightlab.recipes.pretrain import ensure_embedded

        args.model = str(ensure_embedded(progress=False))
    tok, model = load_tokenizer(args.model), load_model(args.model).eval()
    engine = HFRolloutEngine(model, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                             max_batch_sequences=args.max_batch_sequences)
    task = GeneralPoints()
    problems = task.problems("id", "train", args.prompts, args.seed)
    variants = [("single", None)] + [(f"revision R={r}", r) for r in args.attempts]
    machine = f"{platform.platform()} ({platform.machine()}, {platform.processor() or '?'})"
    print(f"machine: {machine}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"model: {args.model}; {args.prompts} prompts x {args.samples} = {args.prompts * args.samples} "
          f"episodes, max_new_tokens {args.max_new_tokens} per attempt, max_batch_sequences "
          f"{args.max_batch_sequences}, {args.repeats} repeats")

    for _, r in variants:  # warm-up (allocator, kernels, lazy imports, verifier caches) outside the timings
        run_variant(engine, task, problems[:4], tok, args, r)
    runs: dict[str, list[dict]] = {name: [] for name, _ in variants}
    for repeat in range(args.repeats):
        order = variants if repeat % 2 == 0 else variants[::-1]  # alternate, so drift hits all alike
        for name, r in order:
            res = run_variant(engine, task, problems, tok, args, r)
            runs[name].append(res)
            print(f"[run {repeat + 1}] {name:<13} {res['seconds']:7.2f} s", flush=True)

    rows = []
    for name, _ in variants:
        rs = runs[name]
        row = {"variant": name, "seconds": statistics.median(x["seconds"] for x in rs),
               **{f"{k}_per_s": statistics.median(x[k] / x["seconds"] for x in rs)
                  for k in ("episodes", "generated_tokens", "episode_tokens")},
               **{k: statistics.median(x[k] for x in rs) for k in ("episodes", "generated_tokens", "episode_tokens",
                                                                   "attempts_per_episode", "success_at_1",
                                                                   "success_within")}}
        rows.append(row)
    print(f"\nmedians of {args.repeats} runs:")
    head = (f"{'variant':<13} {'s':>7} {'episodes/s':>11} {'gen tok/s':>10} {'episode tok/s':>14} "
            f"{'gen tokens':>11} {'attempts/ep':>12} {'succ@1':>7} {'succ within':>12}")
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['variant']:<13} {r['seconds']:7.2f} {r['episodes_per_s']:11,.0f} "
              f"{r['generated_tokens_per_s']:10,.0f} {r['episode_tokens_per_s']:14,.0f} "
              f"{r['generated_tokens']:11,.0f} {r['attempts_per_episode']:12.3f} {r['success_at_1']:7.3f} "
              f"{r['success_within']:12.3f}")
    print("(single: episodes/s are sequences/s; episode tok/s counts the feedback text as well)")

    single = runs["single"][-1]["first_PG"]
    checks = {}
    for name, _ in variants[1:]:
        first = runs[name][-1]["first_PG"]
        same = int((first == single).sum())
        checks[name] = {"equal": bool(torch.equal(first, single)), "episodes_matching": same}
        print(f"sanity: {name} success at attempt 1 == single-attempt success (same prompt seeds): "
              f"{checks[name]['equal']} ({same}/{single.numel()} episodes agree; "
              f"{float(first.mean()):.4f} vs {float(single.mean()):.4f})")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"machine": machine, "torch": torch.__version__, "threads": torch.get_num_threads(),
                       "model": args.model, "args": vars(args), "results": rows, "sanity": checks}, f, indent=2)


if __name__ == "__main__":
    main()
