"""Sampling throughput of HFRolloutEngine against transformers' `generate` on the same batch.

The model has the embedded default's shape (Llama, hidden 128, 3 layers, 4 heads, FFN 512, tied
embeddings, vocabulary 100) with random weights; the work is the RL step's: P prompts of about 24
tokens, G samples each, max_new_tokens 24, temperature 1, no top-k/top-p.

    python benchmarks/bench_sampling.py                      # 400 x 64, batch sizes 512 1024 2048
    python benchmarks/bench_sampling.py --prompts 50 --batch-sizes 2048 --skip-generate
"""

from __future__ import annotations

import argparse
import time

import torch

# Denormal floats slow CPU matmuls several-fold on these machines (see DESIGN.md).
torch.set_flush_denormal(True)

from transformers import LlamaConfig, LlamaForCausalLM  # noqa: E402

from reweightlab.rollout import HFRolloutEngine  # noqa: E402

PAD, BOS, EOS = 0, 1, 2
VOCAB = 100


def build_model(device: str) -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=VOCAB, hidden_size=128, intermediate_size=512, num_hidden_layers=3,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=128,
        tie_word_embeddings=True, bos_token_id=BOS, eos_token_id=EOS, pad_token_id=PAD,
    )
    return LlamaForCausalLM(config).to(device).eval()


def make_prompts(num_prompts: int, seed: int) -> list[list[int]]:
    """Prompts of 20-28 tokens (mean 24): BOS then random symbols that are neither PAD, BOS nor EOS."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(20, 29, (num_prompts,), generator=g).tolist()
    return [[BOS] + torch.randint(3, VOCAB, (n - 1,), generator=g).tolist() for n in lengths]


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def bench_engine(model, prompts, args, batch: int) -> tuple[float, int]:
    engine = HFRolloutEngine(model, eos_token_id=EOS, pad_token_id=PAD, max_batch_sequences=batch)
    sync(args.device)
    start = time.perf_counter()
    rollout = engine.generate(
        prompts, samples_per_prompt=args.samples, max_new_tokens=args.max_new_tokens, seed=0
    )
    sync(args.device)
    return time.perf_counter() - start, int(rollout.lengths_N.sum())


def bench_generate(model, prompts, args, batch: int) -> tuple[float, int]:
    """`model.generate(do_sample=True)` over the same N sequences, in chunks of `batch` sequences."""
    repeated = [p for p in prompts for _ in range(args.samples)]
    tokens = 0
    torch.manual_seed(0)
    sync(args.device)
    start = time.perf_counter()
    for lo in range(0, len(repeated), batch):
        chunk = repeated[lo : lo + batch]
        width = max(len(p) for p in chunk)
        ids = torch.full((len(chunk), width), PAD, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for i, p in enumerate(chunk):
            ids[i, width - len(p) :] = torch.tensor(p)
            mask[i, width - len(p) :] = 1
        with torch.inference_mode():
            out = model.generate(
                input_ids=ids.to(args.device), attention_mask=mask.to(args.device),
                do_sample=True, temperature=1.0, top_k=0, top_p=1.0,
                max_new_tokens=args.max_new_tokens, eos_token_id=EOS, pad_token_id=PAD,
            )
        new = out[:, width:]
        # Count generated tokens up to and including the first EOS (generate pads after it).
        after_eos = (new == EOS).long().cumsum(-1) - (new == EOS).long()
        tokens += int((after_eos == 0).sum())
    sync(args.device)
    return time.perf_counter() - start, tokens


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--prompts", type=int, default=400)
    parser.add_argument("--samples", type=int, default=64, help="samples per prompt (G)")
    parser.add_argument("--max-new-tokens", type=int, default=24)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[512, 1024, 2048],
                        help="max_batch_sequences values to time")
    parser.add_argument("--generate-batch", type=int, default=2048, help="sequences per generate() call")
    parser.add_argument("--skip-generate", action="store_true")
    parser.add_argument("--repeats", type=int, default=1, help="runs per setting; the best is reported")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    model = build_model(args.device)
    prompts = make_prompts(args.prompts, seed=0)
    n = args.prompts * args.samples
    params = sum(p.numel() for p in model.parameters())
    print(f"model: {params / 1e6:.2f}M params on {args.device}, {torch.get_num_threads()} threads")
    mean_prompt = sum(map(len, prompts)) / len(prompts)
    print(f"work: {args.prompts} prompts x {args.samples} samples = {n} sequences, "
          f"prompt mean {mean_prompt:.1f} tokens, max_new_tokens {args.max_new_tokens}")
    print("note: random weights rarely emit EOS, so almost every sequence runs the full max_new_tokens")
    # Warm-up (allocator, kernels, lazy imports) outside the timings.
    bench_engine(model, prompts[:2], argparse.Namespace(**{**vars(args), "samples": 2}), 4)

    # Settings run interleaved, `--repeats` times each; the best time of each is reported, since
    # other work on a shared machine only ever adds time.
    settings = [(f"HFRolloutEngine max_batch_sequences={b}", bench_engine, b) for b in args.batch_sizes]
    if not args.skip_generate:
        settings.append((f"model.generate batch={args.generate_batch}", bench_generate, args.generate_batch))
    best = {}
    for repeat in range(args.repeats):
        for name, bench, batch in settings:
            seconds, tokens = bench(model, prompts, args, batch)
            rate = tokens / seconds
            print(f"[run {repeat + 1}] {name:<45} {seconds:8.2f} s {rate:12,.0f} tokens/s", flush=True)
            if name not in best or seconds < best[name][0]:
                best[name] = (seconds, tokens)
    print(f"best of {args.repeats}:")
    for name, (seconds, tokens) in best.items():
        print(f"  {name:<45} {seconds:8.2f} s {tokens / seconds:12,.0f} tokens/s  ({tokens:,} tokens)")
    print(f"at most {n * args.max_new_tokens:,} tokens per run; fewer where EOS was sampled")

if __name__ == "__main__":
    main()
