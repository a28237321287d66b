"""The package's import graph follows its layers (README, "Layout"): dependencies point down.

Every import in src/reweightlab is read from the source (imports inside functions included, which
is where a cycle hides), and each must go from a layer to a lower one. ``report`` reads files and
imports nothing of the package but ``files``. No module imports another package's private names.
"""

import ast
import sys
from pathlib import Path

import pytest

import reweightlab

SRC = Path(reweightlab.__file__).parent

# lower number = lower layer; a package may import packages of strictly lower layers only
LAYERS = {
    "math": 0, "files": 0, "config": 0, "quiet": 0,  # config.py: the generic mechanism (stdlib + PyYAML only)
    "data": 1,
    "models": 2,
    "tasks": 3, "algos": 3,
    "rollout": 4,  # samples are verified by the task (rollout/scored.py)
    "train": 6, "probe": 6, "control": 6,
    "recipes": 7,
    "cli": 8,
}
REPORT_MAY_IMPORT = {"files"}


def _package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports():
    """(importing file, its package, imported module, imported names) for every reweightlab import."""
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC.parent).with_suffix("")
        module = ".".join(rel.parts)
        package = _package_of(module)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level:  # relative: resolve against this module's package
                    base = module.split(".")[: -node.level]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                names = [a.name for a in node.names]
                if target == "reweightlab":  # `from reweightlab import algos` imports a package
                    for n in names:
                        yield path, package, f"reweightlab.{n}" if n in LAYERS or n == "report" else target, [n]
                    continue
                yield path, package, target, names
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    yield path, package, alias.name, []


def _violations():
    found = []
    for path, package, target, names in _imports():
        if not target.startswith("reweightlab"):
            continue
        dep = _package_of(target)
        where = f"{path.relative_to(SRC)}: imports {target}"
        if dep in ("", package):  # the root package (__version__) or the same package
            continue
        private = [n for n in names if n.startswith("_")]
        if private:
            found.append(f"{where} private names {private}")
        if package == "report":
            if dep not in REPORT_MAY_IMPORT:
                found.append(f"{where} (report only reads files)")
            continue
        if dep == "report":  # anything above report may call it to write the page
            if LAYERS.get(package, -1) < LAYERS["recipes"]:
                found.append(f"{where} (only recipes and cli write reports)")
            continue
        if package not in LAYERS or dep not in LAYERS:
            found.append(f"{where}: package {package or dep!r} has no layer; add it to LAYERS and the README")
        elif LAYERS[dep] >= LAYERS[package]:
            found.append(f"{where} (layer {LAYERS[package]} -> {LAYERS[dep]}: must point down)")
    return found


def test_every_import_points_down_the_layers():
    found = _violations()
    assert not found, "imports against the layers:\n" + "\n".join(found)


def test_every_package_has_a_layer():
    packages = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    modules = {p.stem for p in SRC.glob("*.py") if p.stem != "__init__"}
    assert packages | modules == set(LAYERS) | {"report"}


@pytest.mark.parametrize(("package", "line"), [
    ("math", "from reweightlab.train.loop import train"),  # upward
    ("train", "from reweightlab.math.kl import _private"),  # downward, but a private name
    ("data", "    from reweightlab.models import load_model"),  # upward, hidden inside a function
])
def test_the_check_catches_a_bad_import(tmp_path, monkeypatch, package, line):
    """The checker itself: each planted import is found, and nothing else."""
    fake = tmp_path / "reweightlab"
    (fake / package).mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    body = f"def f():\n{line}\n" if line.startswith(" ") else line + "\n"
    (fake / package / "__init__.py").write_text(body)
    monkeypatch.setattr(sys.modules[__name__], "SRC", fake)
    found = _violations()
    assert len(found) == 1 and f"{package}/__init__.py" in found[0], found
