"""Two CPU processes (gloo, through `accelerate launch`) train like one process (issue 5, item 5).

Each process trains its half of every step's sequences (SFT) or prompts (GRPO); token counts are
summed across processes and DDP's gradient average is undone, so the two-process gradient is the
one-process gradient up to float summation order. GRPO's samples are seeded per prompt by its index
in the whole batch, so both runs draw the same completions.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

WORKER = Path(__file__).with_name("_dist_worker.py")
# Float32 sums in a different order (per-process micro-batches, gloo's all-reduce) differ by ~1e-7
# relative per step; over 4 AdamW steps at lr 3e-3 they stay far below this. A one-token change in
# any sample, or a gradient off by the world-size factor, moves the loss by > 1e-3.
TOL = 1e-5
CASES = ("sft", "grpo", "iw_sft")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _curve(run_dir: Path, key: str) -> list[float]:
    return [json.loads(x)[key] for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_two_processes_match_one(tiny_model_dir, tmp_path):
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent)) or shutil.which("accelerate")
    if accelerate is None:
        pytest.fail("the accelerate command is missing (it is a dependency of reweightlab)")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    one = subprocess.run([sys.executable, str(WORKER), str(tiny_model_dir), str(tmp_path / "one"), *CASES],
                         env=env, capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr[-3000:]
    # --multi_gpu on a machine without CUDA starts CPU processes joined by gloo
    two = subprocess.run(
        [accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
         "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
         str(WORKER), str(tiny_model_dir), str(tmp_path / "two"), *CASES],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert two.returncode == 0, two.stderr[-3000:]
    for case in CASES:
        a, b = _curve(tmp_path / "one" / case, "loss"), _curve(tmp_path / "two" / case, "loss")
        assert len(a) == len(b) == 4
        diff = max(abs(x - y) for x, y in zip(a, b, strict=True))
        print(f"{case}: one-process losses {a}; max |difference| {diff:.2e}")
        assert diff <= TOL, (case, a, b)
        assert len(set(a)) > 1, "the loss never changed: the test could not tell the runs apart"
        # AdamW is nearly blind to a constant gradient scale, so the loss alone would not notice a
        # missing world-size factor; the (pre-clipping) gradient norm does
        ga, gb = _curve(tmp_path / "one" / case, "grad_norm"), _curve(tmp_path / "two" / case, "grad_norm")
        assert gb == pytest.approx(ga, rel=1e-4), (case, ga, gb)
    # only rank 0 writes the run folder
    assert (tmp_path / "two" / "sft" / "final" / "config.json").is_file()
