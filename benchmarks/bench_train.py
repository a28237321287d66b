"""Training throughput on the embedded model: SFT steps and GRPO steps (sampling + update).

Not a test. Prints completion tokens/s for an SFT optimizer step, and for a GRPO step split into
generation and training, on the same model the demo uses (random weights unless --model is given;
with random weights the completions run to max_new_tokens, which is the worst case).

    .venv/bin/python benchmarks/bench_train.py [--model PATH] [--steps 10]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch


def _model_dir(path: str | None) -> str:
    if path:
        return path
    from reweightlab.models import build_char_tokenizer, build_embedded_model

    tok = build_char_tokenizer()
    d = tempfile.mkdtemp(prefix="bench-model-")
    build_embedded_model(tok).save_pretrained(d)
    tok.save_pretrained(d)
    return d


def _run(method: str, model: str, steps: int, extra: list[str]) -> dict:
    from reweightlab.train.config import load_config
    from reweightlab.train.loop import train

    out = Path(tempfile.mkdtemp(prefix=f"bench-{method}-")) / "run"
    cfg = load_config(None, [f"method={method}", f"model.path={model}", f"output_dir={out}",
                             f"optim.steps={steps}", *extra])
    train(cfg, progress=False, log=lambda *_: None)
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()][1:]  # skip warm-up
    keys = ("tokens_per_s", "total_tokens_per_s", "sample_tokens_per_s", "time_generation", "time_training")
    return {k: sum(r[k] for r in rows) / len(rows) for k in keys if k in rows[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", help="a model folder (default: the embedded architecture, random weights)")
    ap.add_argument("--steps", type=int, default=8)
    args = ap.parse_args()
    torch.set_flush_denormal(True)
    model = _model_dir(args.model)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, model {model}")
    sft = _run("sft", model, args.steps, ["optim.sequences_per_step=128", "optim.sequences_per_microbatch=128"])
    print(f"SFT  (128 sequences/step):            {sft['tokens_per_s']:>9.0f} completion tokens/s "
          f"({sft['total_tokens_per_s']:.0f} tokens/s with the prompts)")
    grpo = _run("grpo", model, args.steps, ["rl.prompts_per_step=32", "rl.samples_per_prompt=8",
                                             "rl.kl_beta=0.05", "optim.sequences_per_microbatch=256"])
    print(f"GRPO (32 prompts x 8, KL, 1 epoch):   {grpo['tokens_per_s']:>9.0f} completion tokens/s trained, "
          f"{grpo['sample_tokens_per_s']:.0f} sampled tokens/s; per step {grpo['time_generation']:.2f} s "
          f"generation + {grpo['time_training']:.2f} s training (incl. reference pass)")


if __name__ == "__main__":
    main()
