"""`reweightlab --help` (and any command's argument errors) must not import torch or transformers:
that is what makes it start in a fraction of a second (benchmarks/bench_cli_startup.py times it)."""

import subprocess
import sys

import pytest

PROBE = """
import sys
from reweightlab.cli import main
try:
    main({argv!r})
except SystemExit:
    pass
heavy = sorted(m for m in ("torch", "transformers", "numpy") if m in sys.modules)
print("HEAVY=" + ",".join(heavy))
"""


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["report", "--help"], ["--version"]])
def test_help_imports_nothing_heavy(argv):
    done = subprocess.run([sys.executable, "-c", PROBE.format(argv=argv)], capture_output=True, text=True,
                          timeout=120)
    line = [x for x in done.stdout.splitlines() if x.startswith("HEAVY=")]
    assert line == ["HEAVY="], (done.stdout[-500:], done.stderr[-500:])


def test_probe_help_still_lists_every_setting_with_its_default(capsys):
    from reweightlab.cli import main

    with pytest.raises(SystemExit):
        main(["probe", "--help"])
    out = capsys.readouterr().out
    assert "--variant VARIANT" in out and "(default: id)" in out and "--split" in out and "(default: auto)" in out
