"""reweightlab against TRL (SFTTrainer, GRPOTrainer) and transformers' `generate`, at equal work, in one run.

Not a test and not part of `make test`: TRL is an optional extra.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python benchmarks/bench_vs_trl.py                 # both models, every comparison, 3 repeats
    .venv/bin/python benchmarks/bench_vs_trl.py --models embedded --work sampling --repeats 5

Work (the same for both libraries, in one process, float32 on the CPU, `--threads` threads):
- models: "embedded" (the default model's architecture: Llama, hidden 128, 3 layers, FFN 512, 0.8M
  parameters) and "4m" (hidden 256, 4 layers, FFN 1024, 4.2M parameters), random weights, the
  embedded character tokenizer;
- data: 2,000 prompt/completion pairs (GeneralPoints solver demonstrations, 500 hands x 4);
- sft: 32 sequences per step, loss on completions only, AdamW lr 3e-4, gradient clipping 1.0;
- grpo / grpo0: 8 prompts x 8 samples per step, at most 24 new tokens, temperature 1, no top-k/top-p,
  the GeneralPoints verifier as reward, beta (KL weight) 0.04 and 0;
- sampling: 64 prompts x 8 samples, 24 new tokens, temperature 1: reweightlab's engine against
  `model.generate(num_return_sequences=8, do_sample=True, top_k=0)`; and TRL's generation phase
  (its `_generate_single_turn`, timed inside the grpo runs) against reweightlab's sampler on that
  same 8 x 8 batch.
Each repeat runs every comparison once per library, alternating which goes first; figures are medians
over repeats of per-step times (the first step of each run, a warm-up, is excluded for both).
MFU = (6 x parameters x trained tokens/s, or 2 x parameters x sampled tokens/s) / the measured
float32 matmul peak at the same thread count; 1 / MFU is how far a figure is from that limit.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import torch

SFT_STEPS, GRPO_STEPS = 8, 5
MODELS = {"embedded": dict(hidden_size=128, intermediate_size=512, num_hidden_layers=3, num_attention_heads=4),
          "4m": dict(hidden_size=256, intermediate_size=1024, num_hidden_layers=4, num_attention_heads=4)}


def matmul_peak(threads: int) -> float:
    """Measured float32 matmul throughput (FLOP/s): median of 7 products of 1536 x 1536 matrices."""
    a, b = torch.randn(1536, 1536), torch.randn(1536, 1536)
    a @ b
    times = []
    for _ in range(7):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return 2 * 1536**3 / statistics.median(times)


def build_model(name: str, root: Path) -> tuple[str, int]:
    from transformers import LlamaConfig, LlamaForCausalLM

    from reweightlab.models import build_char_tokenizer

    tok = build_char_tokenizer()
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tok), max_position_embeddings=256, tie_word_embeddings=True,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                         **MODELS[name])
    model = LlamaForCausalLM(config)
    path = root / name
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return str(path), sum(p.numel() for p in model.parameters())


def make_rows(model_path: str, root: Path) -> tuple[Path, list[dict]]:
    from reweightlab.data.encoding import solver_demonstrations
    from reweightlab.models import load_tokenizer
    from reweightlab.tasks import get_task

    task, tok = get_task("generalpoints"), load_tokenizer(model_path)
    problems = task.problems("id", "train", 500, 0)
    store = solver_demonstrations(task, problems, tok, per_prompt=4, seed=0)
    rows = []
    for i in range(len(store)):
        plen, tlen = int(store.prompt_len_N[i]), int(store.total_len_N[i])
        rows.append({"prompt": tok.decode(store.ids_NL[i, 1:plen].tolist()),
                     "completion": tok.decode(store.ids_NL[i, plen : tlen - 1].tolist())})
    path = root / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path, rows


def tokens_per_row(model_path: str, rows: list[dict]) -> tuple[float, float]:
    """(mean prompt + completion tokens, mean completion tokens) per row, EOS counted."""
    from reweightlab.models import load_tokenizer

    tok = load_tokenizer(model_path)
    prompt = [len(tok(r["prompt"], add_special_tokens=False)["input_ids"]) for r in rows]
    completion = [len(tok(r["completion"], add_special_tokens=False)["input_ids"]) + 1 for r in rows]
    return (sum(prompt) + sum(completion)) / len(rows), sum(completion) / len(rows)


class StepTimer:
    """A transformers TrainerCallback recording each optimizer step's wall time."""

    def __new__(cls):
        from transformers import TrainerCallback

        class _Timer(TrainerCallback):
            def __init__(self):
                self.times, self._t = [], None

            def on_step_begin(self, args, state, control, **kw):
                self._t = time.perf_counter()

            def on_step_end(self, args, state, control, **kw):
                self.times.append(time.perf_counter() - self._t)

        return _Timer()


# ---------------------------------------------------------------------------------------------- ours
def ours_train(overrides: list[str], root: Path) -> list[dict]:
    from reweightlab.train.config import load_config
    from reweightlab.train.loop import train

    out = Path(tempfile.mkdtemp(dir=root)) / "run"
    train(load_config(None, [f"output_dir={out}", "log_every=1", *overrides]), progress=False, log=lambda *_: None)
    return [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()][1:]


def ours_sft(model: str, pairs: Path, root: Path) -> float:
    rows = ours_train(["method=sft", f"model.path={model}", f"data.path={pairs}", f"optim.steps={SFT_STEPS}",
                       "optim.sequences_per_step=32", "optim.sequences_per_microbatch=32", "optim.lr=3e-4",
                       "optim.warmup_steps=0", "optim.max_grad_norm=1.0"], root)
    return statistics.median(r["time_training"] for r in rows)


def ours_grpo(model: str, beta: float, root: Path) -> float:
    rows = ours_train(["method=grpo", f"model.path={model}", "data.task=generalpoints", "data.num_prompts=500",
                       f"optim.steps={GRPO_STEPS}", "rl.prompts_per_step=8", "rl.samples_per_prompt=8",
                       f"rl.kl_beta={beta}", "optim.lr=3e-4", "optim.warmup_steps=0", "data.max_new_tokens=24",
                       "optim.sequences_per_microbatch=64"], root)
    return statistics.median(r["time_generation"] + r["time_training"] for r in rows)


def ours_sampling(model_path: str, prompts: list[str], samples: int) -> tuple[float, int]:
    from reweightlab.models import load_model, load_tokenizer
    from reweightlab.rollout import HFRolloutEngine

    tok, model = load_tokenizer(model_path), load_model(model_path, dtype="float32", device="cpu")
    ids = [tok(p)["input_ids"] for p in prompts]
    engine = HFRolloutEngine(model, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    engine.generate(ids[:2], samples_per_prompt=2, max_new_tokens=4, seed=1)  # warm-up
    t = time.perf_counter()
    r = engine.generate(ids, samples_per_prompt=samples, max_new_tokens=24, seed=0)
    return time.perf_counter() - t, int(r.completion_mask_NT.sum())


# ---------------------------------------------------------------------------------------------- theirs
def trl_sft(model_path: str, rows: list[dict], root: Path) -> float:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    tok, model = AutoTokenizer.from_pretrained(model_path), AutoModelForCausalLM.from_pretrained(model_path)
    args = SFTConfig(
        output_dir=tempfile.mkdtemp(dir=root), per_device_train_batch_size=32, max_steps=SFT_STEPS,
        learning_rate=3e-4, lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0, max_grad_norm=1.0,
        logging_steps=10**6, save_strategy="no", report_to="none", use_cpu=True, dataloader_num_workers=0,
        max_length=128, packing=False, completion_only_loss=True, seed=0, disable_tqdm=True,
        gradient_checkpointing=False, bf16=False,  # TRL defaults to both; float32 without recomputation = equal work
    )
    timer = StepTimer()
    SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tok,
               callbacks=[timer]).train()
    return statistics.median(timer.times[1:])


def trl_grpo(model_path: str, beta: float, root: Path, generation_times: list[float]) -> float:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from reweightlab.tasks import get_task

    task = get_task("generalpoints")
    problems = {p.prompt: p for p in task.problems("id", "train", 500, 0)}

    def reward(prompts, completions, **_):
        return [task.verify(problems[p], c).score for p, c in zip(prompts, completions, strict=True)]

    tok, model = AutoTokenizer.from_pretrained(model_path), AutoModelForCausalLM.from_pretrained(model_path)
    args = GRPOConfig(
        output_dir=tempfile.mkdtemp(dir=root), per_device_train_batch_size=64, num_generations=8,
        max_completion_length=24, max_steps=GRPO_STEPS, learning_rate=3e-4, beta=beta, lr_scheduler_type="constant",
        warmup_steps=0, logging_steps=10**6, save_strategy="no", report_to="none", use_cpu=True,
        dataloader_num_workers=0, temperature=1.0, top_k=0, top_p=1.0, seed=0, disable_tqdm=True,
        gradient_checkpointing=False, bf16=False,
    )
    timer = StepTimer()
    trainer = GRPOTrainer(model=model, reward_funcs=reward, args=args, processing_class=tok, callbacks=[timer],
                          train_dataset=Dataset.from_list([{"prompt": p} for p in problems]))
    inner = trainer._generate_single_turn
    spent: list[float] = []

    def timed(*a, **k):
        t = time.perf_counter()
        out = inner(*a, **k)
        spent.append(time.perf_counter() - t)
        return out

    trainer._generate_single_turn = timed
    trainer.train()
    generation_times.extend(spent[1:])
    return statistics.median(timer.times[1:])


def hf_generate(model_path: str, prompts: list[str], samples: int) -> tuple[float, int]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok, model = AutoTokenizer.from_pretrained(model_path), AutoModelForCausalLM.from_pretrained(model_path).eval()
    tok.padding_side = "left"
    batch = tok(prompts, return_tensors="pt", padding=True)
    kw = dict(do_sample=True, temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=24, num_return_sequences=samples,
              pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    with torch.inference_mode():
        model.generate(**tok(prompts[:2], return_tensors="pt", padding=True), **{**kw, "max_new_tokens": 4})
        t = time.perf_counter()
        out = model.generate(**batch, **kw)
        dt = time.perf_counter() - t
    new = out[:, batch["input_ids"].shape[1]:]
    done = (new == tok.eos_token_id).int().cumsum(1)
    produced = int(((done == 0) | ((done == 1) & (new == tok.eos_token_id))).sum())
    return dt, produced


# ---------------------------------------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--models", default="embedded,4m")
    ap.add_argument("--work", default="sft,grpo,grpo0,sampling")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    import transformers
    import trl

    from reweightlab.models.fast_decode import ENV_SWITCH  # noqa: F401  (the fast path is on unless switched off)

    peak = matmul_peak(args.threads)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, TRL {trl.__version__}; "
          f"{args.threads} threads; float32 matmul peak {peak / 1e9:.0f} GFLOP/s", flush=True)
    work = args.work.split(",")
    results: dict = {"peak_flops": peak, "threads": args.threads, "repeats": args.repeats, "models": {}}
    with tempfile.TemporaryDirectory(prefix="bench-vs-trl-") as tmp:
        root = Path(tmp)
        for name in args.models.split(","):
            model, params = build_model(name, root)
            pairs, rows = make_rows(model, root)
            per_row, per_row_completion = tokens_per_row(model, rows)
            prompts = list(dict.fromkeys(r["prompt"] for r in rows))[:64]
            samples: dict[str, list] = {k: [] for k in ("sft", "trl_sft", "grpo", "trl_grpo", "grpo0", "trl_grpo0",
                                                         "sample", "generate", "trl_gen", "sample8")}
            trl_gen: list[float] = []
            for rep in range(args.repeats):
                first_ours = rep % 2 == 0
                for item in work:
                    jobs = {
                        "sft": [("sft", partial(ours_sft, model, pairs, root)),
                                ("trl_sft", partial(trl_sft, model, rows, root))],
                        "grpo": [("grpo", partial(ours_grpo, model, 0.04, root)),
                                 ("trl_grpo", partial(trl_grpo, model, 0.04, root, trl_gen))],
                        "grpo0": [("grpo0", partial(ours_grpo, model, 0.0, root)),
                                  ("trl_grpo0", partial(trl_grpo, model, 0.0, root, trl_gen))],
                        "sampling": [("sample", partial(ours_sampling, model, prompts, 8)),
                                     ("generate", partial(hf_generate, model, prompts, 8))],
                    }[item]
                    for key, job in (jobs if first_ours else jobs[::-1]):
                        samples[key].append(job())
                    if item == "sampling":
                        samples["sample8"].append(ours_sampling(model, prompts[:8], 8))
                print(f"  {name}: repeat {rep + 1}/{args.repeats} done", file=sys.stderr, flush=True)
            results["models"][name] = report(name, params, peak, samples, trl_gen, per_row, per_row_completion)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


def report(name, params, peak, s, trl_gen, per_row, per_row_completion) -> dict:
    med = statistics.median
    out = {"parameters": params}
    print(f"\n{name}: {params / 1e6:.2f}M parameters")
    print(f"{'work':<44}{'TRL / HF':>14}{'reweightlab':>14}{'ratio':>8}{'MFU ours':>10}")

    def row(label, theirs, ours, tokens_per_s_ours, flops_per_token, unit="s/step"):
        ratio = theirs / ours if unit == "s/step" else ours / theirs  # > 1: reweightlab is faster
        mfu = flops_per_token * params * tokens_per_s_ours / peak
        print(f"{label:<44}{theirs:>10.3f} {unit[:3]}{ours:>10.3f} {unit[:3]}{ratio:>7.2f}x{100 * mfu:>9.1f}%")
        return {"theirs": theirs, "ours": ours, "ratio": ratio, "mfu_ours": mfu, "tokens_per_s_ours": tokens_per_s_ours}

    if s["sft"]:
        ours, theirs = med(s["sft"]), med(s["trl_sft"])
        out["sft"] = row("SFT, 32 sequences/step (completion loss)", theirs, ours, 32 * per_row / ours, 6)
        out["sft"]["trained_tokens_per_step"] = 32 * per_row
    for key, beta in (("grpo", 0.04), ("grpo0", 0.0)):
        if s[key]:
            ours, theirs = med(s[key]), med(s[f"trl_{key}"])
            out[key] = row(f"GRPO 8x8, 24 new tokens, beta {beta}", theirs, ours, 64 * 24 / ours, 6)
    if s["sample"]:
        ours_t = med(t for t, _ in s["sample"])
        ours_n = med(n for _, n in s["sample"])
        hf_t, hf_n = med(t for t, _ in s["generate"]), med(n for _, n in s["generate"])
        out["sampling"] = row("sampling 64x8x24: tokens/s vs HF generate", hf_n / hf_t, ours_n / ours_t,
                              ours_n / ours_t, 2, unit="tok/s")
    if trl_gen and s["sample8"]:
        t8 = med(t for t, _ in s["sample8"])
        n8 = med(n for _, n in s["sample8"])
        gen = med(trl_gen)
        out["trl_generation"] = {"trl_s": gen, "ours_s": t8, "ratio": gen / t8, "tokens_ours": n8}
        print(f"{'sampling 8x8x24: TRL generation phase':<44}{gen:>10.3f} s  {t8:>10.3f} s  {gen / t8:>6.2f}x"
              f"{100 * 2 * params * n8 / t8 / peak:>9.1f}%")
    return out


if __name__ == "__main__":
    main()
