"""Run by tests/e2e/test_distributed.py, under `accelerate launch` or alone: trains each case given.

Usage: python _dist_worker.py MODEL_DIR OUT_ROOT CASE [CASE ...]; each case's run goes to OUT_ROOT/CASE.
The test suite's 'digits' task (tests/conftest.py) is registered first, so GRPO sees varied rewards.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: its conftest registers 'digits'
import conftest  # noqa: E402,F401

from reweightlab.train.config import load_config  # noqa: E402
from reweightlab.train.loop import train  # noqa: E402

COMMON = ["data.num_prompts=8", "data.max_new_tokens=10", "optim.lr=3e-3", "optim.steps=4"]
CASES = {
    # 16 sequences per step in micro-batches of 4: each of 2 processes accumulates 2 micro-batches
    "sft": ["method=sft", "optim.sequences_per_step=16", "optim.sequences_per_microbatch=4"],
    # GRPO with a KL term and 2 epochs per batch: 4 prompts x 4 samples, 2 prompts per process
    "grpo": ["method=grpo", "data.task=digits", "rl.prompts_per_step=4", "rl.samples_per_prompt=4",
             "rl.kl_beta=0.1", "rl.epochs_per_batch=2", "optim.sequences_per_microbatch=4"],
    # iw-SFT on the base's own samples: each process samples half the prompts and computes half the
    # reference pass, then both are gathered (9 prompts: shards of 5 and 4, unequal on purpose)
    "iw_sft": ["method=iw_sft", "data.task=digits", "data.source=base_samples", "data.num_prompts=9",
               "data.base_samples_per_prompt=8", "offline.threshold=0.1", "optim.sequences_per_step=16",
               "optim.sequences_per_microbatch=4"],
}


def main(model_dir: str, out_root: str, *cases: str) -> None:
    for case in cases:
        overrides = [f"model.path={model_dir}", f"output_dir={Path(out_root) / case}", "model.device=cpu"]
        train(load_config(None, overrides + COMMON + CASES[case]), progress=False, log=lambda *_: None)


if __name__ == "__main__":
    main(*sys.argv[1:])
