"""Without the `control` extra (gymnasium, MuJoCo, stable-baselines3) the package and every command but
`reweightlab control` work, and a control command says which pip command installs what it needs.

Each check runs in a fresh interpreter in which those packages cannot be imported, whatever this
environment has installed: ``sys.modules[name] = None`` makes ``import name`` raise ImportError.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

EXTRA = ("gymnasium", "mujoco", "stable_baselines3")
HINT = "pip install 'reweightlab[control]'"


def _python(code: str, cwd) -> subprocess.CompletedProcess:
    block = "import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in EXTRA)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", block + textwrap.dedent(code)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_package_and_cli_work_without_the_control_extra(tmp_path):
    r = _python("""
        import importlib, pkgutil
        import reweightlab
        from reweightlab.cli import build_parser, main

        # every module of the package imports (control's too): none needs the extra at import time
        for info in pkgutil.walk_packages(reweightlab.__path__, "reweightlab."):
            importlib.import_module(info.name)
        build_parser()
        for argv in (["--help"], ["train", "--help"], ["probe", "--help"], ["control", "run", "--help"]):
            try:
                main(argv)
            except SystemExit as exc:
                assert exc.code == 0, (argv, exc.code)
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in EXTRA and sys.modules[m] is not None)
        assert not loaded, loaded
        print("all imported")
    """.replace("EXTRA", repr(EXTRA)), tmp_path)
    assert r.returncode == 0, r.stderr
    assert "all imported" in r.stdout and "control" in r.stdout and "--iw-refresh-every" in r.stdout


def test_control_commands_say_how_to_install_the_extra(tmp_path):
    r = _python("""
        from reweightlab.cli import main

        print(main(["control", "collect", "Pendulum-v1", "--out", "p.npz", "--episodes", "2"]))
        print(main(["control", "run", "Pendulum-v1", "--data", "p.npz", "--out", "run", "--no-progress"]))
    """, tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[-2:] == ["2", "2"]  # both exit codes: a user error, no traceback
    errors = r.stderr.strip().splitlines()
    assert len(errors) == 2, r.stderr
    for line in errors:
        assert line.startswith("error: ") and "gymnasium" in line and HINT in line
    assert not (tmp_path / "p.npz").exists() and not (tmp_path / "run").exists()
