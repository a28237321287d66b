"""The report's look, as a reader compares runs with it: one colour per name on every page, training curves
found beside each probed model's folder, side-by-side figures on shared axes, the offline NLL and the RL
surrogate on separate axes, and no label that overlaps another or runs off its figure (with the controls
that show the overlap check finds both)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from matplotlib.figure import Figure
from test_report import SEEDS, write_demo_folder, write_probe_folder
from test_report import _figure as _fig

from reweightlab.algos import METHODS as TRAINING_METHODS
from reweightlab.recipes.demo import DEMO_METHODS
from reweightlab.report import figures, write_report

# every built-in colour at once, and three names the table does not know, two of them long
CROWDED = {m: 0.15 + 0.01 * i for i, m in enumerate(dict.fromkeys([*DEMO_METHODS, *TRAINING_METHODS]))}
CROWDED |= {"my_very_long_method_name_v2": 0.3, "another-custom-arm-with-a-long-name": 0.2, "x": 0.1}


def _swatches(html: str) -> dict[str, str]:
    return dict(re.findall(r'data-model="([^"]+)"><th scope="row"><span class="swatch" style="background:(#\w+)"',
                           html))


def test_every_built_in_name_has_its_own_fixed_colour():
    names = {"base", *DEMO_METHODS, *TRAINING_METHODS}
    assert names <= set(figures.FIXED_COLORS), names - set(figures.FIXED_COLORS)
    colours = list(figures.FIXED_COLORS.values())
    assert len(set(colours)) == len(colours)  # no two built-in names share one
    assert not set(figures.SPARE_COLORS) & set(colours)  # a user's name never takes a built-in method's colour


def test_a_name_keeps_its_colour_across_reports(tmp_path):
    a = write_demo_folder(tmp_path / "a", {"grpo": 0.4, "sft": 0.25, "mine": 0.3})
    b = write_demo_folder(tmp_path / "b", {"mine": 0.2, "dft": 0.3, "theirs": 0.1, "grpo": 0.5})
    ca, cb = (_swatches(write_report([f]).read_text(encoding="utf-8")) for f in (a, b))
    assert ca["grpo"] == cb["grpo"] == figures.FIXED_COLORS["grpo"] and ca["sft"] == figures.FIXED_COLORS["sft"]
    assert ca["mine"] == cb["mine"] == ca["mine-s1"]  # a name the table lacks: the same in both reports
    assert cb["theirs"] != cb["mine"]
    both = _swatches(write_report([b, a], tmp_path / "both.html").read_text(encoding="utf-8"))
    assert both["mine"] == ca["mine"] and both["grpo"] == ca["grpo"]  # order of the folders changes nothing


def test_two_unknown_names_that_hash_alike_get_different_colours():
    import zlib

    n = len(figures.SPARE_COLORS)
    first = "model-0"
    twin = next(f"model-{i}" for i in range(1, 10_000)
                if zlib.crc32(f"model-{i}".encode()) % n == zlib.crc32(first.encode()) % n)
    alone = figures.palette([first])
    together = figures.palette([twin, first])
    assert together[first] == alone[first] and together[twin] != together[first]  # the sorted-first keeps it


def _run_folder(root: Path, method: str, steps: int, *, rl: bool, under: str = "final") -> Path:
    """A `reweightlab train` run folder (config.json + metrics.jsonl); returns the model folder inside it."""
    (root / under).mkdir(parents=True)
    cfg = {"method": method, "resolved": {"data_source": "online" if rl else "solver"}}
    (root / "config.json").write_text(json.dumps(cfg))
    rows = [{"step": s, "loss": 0.5 / s, **({"reward": 0.1 * s, "kl": 0.02 * s} if rl else {})}
            for s in range(1, steps + 1)]
    (root / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root / under


def test_a_probe_folder_finds_the_training_curves_beside_each_model(tmp_path, drawn, monkeypatch):
    rl_model = _run_folder(tmp_path / "runs" / "grpo-run", "grpo", 6, rl=True)
    sft_model = _run_folder(tmp_path / "runs" / "sft-run", "sft", 4, rl=False, under="checkpoints/step-4")
    probe = write_probe_folder(tmp_path / "probe", {"copy": 0.125, "grpo": 0.4, "sft": 0.2})
    raw = json.loads((probe / "probe.json").read_text())
    # the RL model by an absolute path, the SFT checkpoint by one relative to the probe folder's parent; the
    # copy is a hub-style folder with no run around it
    raw["models"] |= {"grpo": str(rl_model), "sft": "runs/sft-run/checkpoints/step-4",
                      "copy": str(tmp_path / "hub-model")}
    (probe / "probe.json").write_text(json.dumps(raw))
    monkeypatch.chdir(tmp_path / "runs")  # not where the relative path starts: found from the probe folder
    text = write_report([probe]).read_text(encoding="utf-8")
    assert "No training curves" not in text and "No training log for copy" in text
    fig = _fig(drawn, "training curves")
    panels = {ax.get_title(): ax for ax in fig.axes if ax.get_visible()}
    got = {t: [tuple(ln.get_ydata()) for ln in ax.get_lines()] for t, ax in panels.items()}
    assert got["mean reward (RL)"] == [tuple(0.1 * s for s in range(1, 7))]
    assert got["surrogate loss (RL)"] == [tuple(0.5 / s for s in range(1, 7))]
    assert got["weighted NLL (offline methods)"] == [tuple(0.5 / s for s in range(1, 5))]
    colours = {t: [ln.get_color() for ln in ax.get_lines()] for t, ax in panels.items()}
    assert colours["weighted NLL (offline methods)"] == [figures.FIXED_COLORS["sft"]]
    assert str(sft_model).endswith("step-4")


def test_without_a_run_folder_the_probe_says_where_it_looked(tmp_path):
    text = write_report([write_probe_folder(tmp_path / "probe")]).read_text(encoding="utf-8")
    assert "No training curves: no trained model&#x27;s folder holds a training run" in text


def test_offline_nll_and_rl_surrogate_are_on_separate_axes(tmp_path, drawn):
    run = write_demo_folder(tmp_path / "run", {"sft": 0.25, "grpo": 0.4, "rloo": 0.3})
    write_report([run])
    fig = _fig(drawn, "training curves")
    panels = {ax.get_title(): ax for ax in fig.axes if ax.get_visible()}
    assert list(panels) == ["mean reward (RL)", "KL to the reference (RL)", "weighted NLL (offline methods)",
                            "surrogate loss (RL)"]
    colour = {c: m for m, c in figures.FIXED_COLORS.items()}
    def methods(title):
        return sorted(colour[ln.get_color()] for ln in panels[title].get_lines())
    assert methods("weighted NLL (offline methods)") == ["sft"] * len(SEEDS)
    assert methods("surrogate loss (RL)") == ["grpo"] * len(SEEDS) + ["rloo"] * len(SEEDS)
    assert methods("mean reward (RL)") == methods("surrogate loss (RL)")


def test_a_held_out_panel_appears_where_a_run_evaluated_during_training(tmp_path, drawn):
    run = write_demo_folder(tmp_path / "run", {"sft": 0.25, "grpo": 0.4})
    path = run / "grpo-s0" / "metrics.jsonl"
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    rows[-1]["eval/pass@1"] = 0.375
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    write_report([run])
    (ax,) = [a for a in _fig(drawn, "training curves").axes if a.get_title() == "held-out pass@1 (eval_every)"]
    assert [tuple(ln.get_ydata()) for ln in ax.get_lines()] == [(0.375,)]


def _limits(fig: Figure) -> list[tuple]:
    return [(ax.get_title(), tuple(round(x, 9) for x in (*ax.get_xlim(), *ax.get_ylim())))
            for ax in fig.axes if ax.get_visible()]


@pytest.fixture
def pictures(monkeypatch):
    """Every (alt text, Figure) a report renders, in order: a page of two runs draws each figure twice."""
    out: list[tuple[str, Figure]] = []
    original = figures._picture

    def keep(fig, alt):
        out.append((alt, fig))
        return original(fig, alt)

    monkeypatch.setattr(figures, "_picture", keep)
    return out


KINDS = ("pass@k against k", "pass@1 gain", "free-energy gap", "training curves")


def _by_kind(pictures: list) -> dict[str, list[Figure]]:
    return {k: [f for alt, f in pictures if k in alt] for k in KINDS}


def test_side_by_side_figures_share_their_axes(tmp_path, pictures):
    a = write_demo_folder(tmp_path / "a", {"sft": 0.1, "grpo": 0.15})
    b = write_demo_folder(tmp_path / "b", {"sft": 0.1, "rloo": 0.3}, scale=1.6)  # other values and more steps
    write_report([a])
    write_report([b])
    alone = _by_kind(pictures)
    for k in KINDS:  # on their own, the two runs' axes differ: the control
        assert dict(_limits(alone[k][0])) != dict(_limits(alone[k][1])), k
    pictures.clear()
    write_report([a, b])
    for k, (left, right) in _by_kind(pictures).items():
        lims_left, lims_right = dict(_limits(left)), dict(_limits(right))
        shared = set(lims_left) & set(lims_right)
        assert shared, k
        for title in shared:
            assert lims_left[title] == lims_right[title], (k, title)
    heat = [{im.norm.vmax for ax in f.axes for im in ax.get_images()} for alt, f in pictures
            if "regime transition" in alt]
    assert len(heat) == 2 and heat[0] == heat[1] and len(heat[0]) == 1  # one colour scale on the whole page


def test_layout_check_finds_an_overlap_and_a_label_off_the_figure():
    import matplotlib

    with matplotlib.rc_context(figures.STYLE):
        fig = figures.new_figure(3, 2)
        ax = fig.subplots()
        ax.set_title("a title")
        ax.text(0.5, 0.5, "first label", transform=ax.transAxes)
        ax.text(0.52, 0.5, "second label", transform=ax.transAxes)
        assert any("'first label' overlaps 'second label'" in p or "'second label' overlaps 'first label'" in p
                   for p in figures.layout_problems(fig))
        fig = figures.new_figure(3, 2)
        ax = fig.subplots()
        fig.text(0.9, 0.5, "a label that is far too long to fit")  # constrained layout leaves figure texts be
        assert figures.layout_problems(fig) == ["'a label that is far too long to fit' runs off the figure"]
        fig = figures.new_figure(3, 2)
        ax = fig.subplots()
        ax.set_title("clean")
        ax.plot([0, 1], [0, 1])
        assert figures.layout_problems(fig) == []


def test_no_label_overlaps_in_a_crowded_report(tmp_path, pictures):
    crowded = write_demo_folder(tmp_path / "crowded", CROWDED)
    probe = write_probe_folder(tmp_path / "probe", {"a-model-with-a-long-label": 0.2, "grpo": 0.4})
    write_report([crowded, probe])  # each figure of both folders, the crowded one in a column of its own
    assert len(pictures) >= 9
    problems = {f"{i}: {alt}": figures.layout_problems(fig) for i, (alt, fig) in enumerate(pictures)}
    assert not any(problems.values()), {a: p[:4] for a, p in problems.items() if p}
