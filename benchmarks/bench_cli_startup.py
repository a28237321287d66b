"""How long `reweightlab --help` and `reweightlab train --help` take: medians of interleaved repeats.

    python benchmarks/bench_cli_startup.py [repeats]

The parser imports neither torch nor transformers for them (tests/unit/test_cli_startup.py checks
that); this script measures the wall time a user waits.
"""

import statistics
import subprocess
import sys
import time
from pathlib import Path

EXE = Path(sys.executable).with_name("reweightlab")


def main(repeats: int = 7) -> None:
    cases = {"reweightlab --help": [str(EXE), "--help"], "reweightlab train --help": [str(EXE), "train", "--help"]}
    times: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(repeats):
        for name, cmd in cases.items():
            t0 = time.perf_counter()
            subprocess.run(cmd, capture_output=True, check=True)
            times[name].append(time.perf_counter() - t0)
    for name, ts in times.items():
        print(f"{name:<28} median {statistics.median(ts):.3f} s over {repeats} runs")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 7)
