"""Write a tiny model folder and a small dataset, standing in for your own checkpoint and data.

    python examples/own_data/make_tiny.py runs/own-data

writes runs/own-data/model/ (a 30k-parameter Llama and a character tokenizer, saved with
save_pretrained exactly as a Qwen or Llama checkpoint is) and runs/own-data/data.jsonl (additions:
prompt, completion, answer; 48 train rows and 8 test rows).
"""

import json
import random
import sys
from pathlib import Path

from transformers.utils import logging as hf_logging

from reweightlab.models import EmbeddedSpec, build_char_tokenizer, build_embedded_model

hf_logging.disable_progress_bar()  # no per-file bar for a 100 kB model


def main(out: Path) -> None:
    tok = build_char_tokenizer()
    model = build_embedded_model(tok, EmbeddedSpec(hidden_size=32, num_layers=2, num_heads=4,
                                                   intermediate_size=64, max_positions=96), seed=0)
    model.save_pretrained(out / "model")
    tok.save_pretrained(out / "model")
    rng = random.Random(0)
    with (out / "data.jsonl").open("w") as fh:
        for i in range(56):
            a, b = rng.randint(0, 20), rng.randint(0, 20)
            row = {"prompt": f"{a}+{b}=", "completion": str(a + b), "answer": str(a + b),
                   "split": "test" if i >= 48 else "train"}
            fh.write(json.dumps(row) + "\n")
    print(f"wrote {out / 'model'} and {out / 'data.jsonl'}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/own-data"))
