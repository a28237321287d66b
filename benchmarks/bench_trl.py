"""SFT and GRPO throughput against TRL (SFTTrainer, GRPOTrainer) on the same model, data and batch.

Not a test, and not part of `make test`: TRL is an optional extra.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python benchmarks/bench_trl.py --model PATH [--steps 30]

Both train the given model (default: the embedded architecture with random weights) with
completion-only loss on the same solver demonstrations for GeneralPoints, batch 128 sequences,
AdamW lr 3e-4, no gradient accumulation, on the CPU. Reported: wall time of the training steps
(model loading and data preparation excluded for both) and completion tokens per second.
GRPO: 16 prompts x 8 samples per step, at most 24 new tokens, KL 0.05, the GeneralPoints verifier as
the reward for both; reported: seconds per step (generation + update).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch


def _data(model_path: str, n_prompts: int, seed: int = 0):
    from reweightlab.data.encoding import solver_demonstrations
    from reweightlab.models import load_tokenizer
    from reweightlab.tasks import get_task

    task, tok = get_task("generalpoints"), load_tokenizer(model_path)
    problems = task.problems("id", "train", n_prompts, seed)
    store = solver_demonstrations(task, problems, tok, per_prompt=4, seed=seed)
    rows = []
    for i in range(len(store)):
        plen, tlen = int(store.prompt_len_N[i]), int(store.total_len_N[i])
        completion = tok.decode(store.ids_NL[i, plen : tlen - 1].tolist())  # without EOS
        rows.append({"prompt": tok.decode(store.ids_NL[i, 1:plen].tolist()), "completion": completion})
    return rows


def run_reweightlab(model_path: str, steps: int) -> dict:
    from reweightlab.train.config import load_config
    from reweightlab.train.loop import train

    out = Path(tempfile.mkdtemp(prefix="bench-rwl-")) / "run"
    cfg = load_config(None, [
        "method=sft", f"model.path={model_path}", f"output_dir={out}", f"optim.steps={steps}",
        "optim.sequences_per_step=128", "optim.sequences_per_microbatch=128", "optim.lr=3e-4",
        "optim.max_grad_norm=1.0", "data.num_prompts=512",
    ])
    train(cfg, progress=False, log=lambda *_: None)
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    seconds = sum(r["time_training"] for r in rows)
    tokens = sum(r["tokens_per_s"] * r["time_training"] for r in rows)
    return {"seconds": seconds, "completion_tokens": tokens}


def run_trl(model_path: str, steps: int, rows: list[dict]) -> dict:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    tok = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForCausalLM.from_pretrained(model_path)
    args = SFTConfig(
        output_dir=tempfile.mkdtemp(prefix="bench-trl-"), per_device_train_batch_size=128, max_steps=steps,
        learning_rate=3e-4, lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0,
        adam_beta1=0.9, adam_beta2=0.95, max_grad_norm=1.0, logging_steps=steps, save_strategy="no",
        report_to="none", use_cpu=True, dataloader_num_workers=0, max_length=64, packing=False,
        completion_only_loss=True, seed=0,
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tok)
    t0 = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - t0
    per_row = sum(len(tok(r["completion"], add_special_tokens=False)["input_ids"]) + 1 for r in rows) / len(rows)
    return {"seconds": seconds, "completion_tokens": per_row * 128 * steps}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="model folder (default: embedded architecture, random weights)")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--grpo-steps", type=int, default=10, help="GRPO steps (0 skips the GRPO comparison)")
    args = ap.parse_args()
    torch.set_flush_denormal(True)
    from bench_train import _model_dir  # same folder

    model = _model_dir(args.model)
    rows = _data(model, 512)
    ours = run_reweightlab(model, args.steps)
    theirs = run_trl(model, args.steps, rows)
    for name, r in (("reweightlab", ours), ("TRL SFTTrainer", theirs)):
        print(f"{name:<16} {args.steps} steps x 128 sequences: {r['seconds']:6.1f} s, "
              f"{r['completion_tokens'] / r['seconds']:8.0f} completion tokens/s")
    if args.grpo_steps:
        main_grpo(model, args.grpo_steps)


if __name__ == "__main__":
    main()


def run_reweightlab_grpo(model_path: str, steps: int) -> dict:
    from reweightlab.train.config import load_config
    from reweightlab.train.loop import train

    out = Path(tempfile.mkdtemp(prefix="bench-rwl-grpo-")) / "run"
    cfg = load_config(None, [
        "method=grpo", f"model.path={model_path}", f"output_dir={out}", f"optim.steps={steps}",
        "rl.prompts_per_step=16", "rl.samples_per_prompt=8", "rl.kl_beta=0.05", "optim.lr=3e-4",
        "data.num_prompts=512", "data.max_new_tokens=24", "optim.sequences_per_microbatch=128",
    ])
    train(cfg, progress=False, log=lambda *_: None)
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    return {"seconds": sum(r["time_generation"] + r["time_training"] for r in rows)}


def run_trl_grpo(model_path: str, steps: int) -> dict:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from reweightlab.tasks import get_task

    task = get_task("generalpoints")
    problems = {p.prompt: p for p in task.problems("id", "train", 512, 0)}

    def reward(prompts, completions, **_):
        return [task.verify(problems[p], c).score for p, c in zip(prompts, completions, strict=True)]

    tok = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForCausalLM.from_pretrained(model_path)
    args = GRPOConfig(
        output_dir=tempfile.mkdtemp(prefix="bench-trl-grpo-"), per_device_train_batch_size=128, num_generations=8,
        max_completion_length=24, max_steps=steps, learning_rate=3e-4, beta=0.05, lr_scheduler_type="constant",
        warmup_steps=0, logging_steps=steps, save_strategy="no", report_to="none", use_cpu=True,
        dataloader_num_workers=0, temperature=1.0, seed=0,
    )
    trainer = GRPOTrainer(model=model, reward_funcs=reward, args=args,
                          train_dataset=Dataset.from_list([{"prompt": p} for p in problems]), processing_class=tok)
    t0 = time.perf_counter()
    trainer.train()
    return {"seconds": time.perf_counter() - t0}


def main_grpo(model: str, steps: int) -> None:
    ours = run_reweightlab_grpo(model, steps)
    theirs = run_trl_grpo(model, steps)
    for name, r in (("reweightlab", ours), ("TRL GRPOTrainer", theirs)):
        print(f"{name:<16} GRPO {steps} steps x (16 prompts x 8 samples), KL 0.05: {r['seconds']:6.1f} s, "
              f"{r['seconds'] / steps:.2f} s/step")
