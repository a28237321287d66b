"""The probe's settings through the one configuration mechanism: flags generated from the fields, a
config file and key=value overrides, the optional search section, and the two rules the flags keep."""

from __future__ import annotations

import argparse

import pytest

from reweightlab.config import ConfigError, describe, flag_values, load
from reweightlab.probe.command import ProbeCommand, add_probe_arguments, probe_settings
from reweightlab.probe.regimes import RegimeThresholds
from reweightlab.probe.study import ProbeSettings
from reweightlab.rollout.search import SearchBudget

# every flag the probe had before its flags were generated (README, docs/probe.md and scripts use them)
OLD_FLAGS = ("--base", "--trained", "--task", "--reward", "--reward-timeout", "--success-threshold", "--chat-template",
             "--variant", "--split", "--num-prompts", "--n", "--k", "--budget-k", "--estimator", "--theta-basin",
             "--delta", "--floor", "--beta", "--betas", "--bootstrap", "--keep-samples", "--no-search",
             "--search-beams", "--search-expand", "--max-new-tokens", "--keep", "--chunk", "--seed", "--device",
             "--out", "--no-progress")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="probe")
    add_probe_arguments(p)
    return p


def _settings(argv: list[str], path=None) -> tuple[ProbeCommand, ProbeSettings]:
    args = _parser().parse_args(argv)
    cmd, keys = load(ProbeCommand, path or args.config, args.overrides, flag_values(args, ProbeCommand))
    return cmd, probe_settings(cmd, keys)


def test_every_old_flag_is_generated():
    flags = {s for a in _parser()._actions for s in a.option_strings}
    assert set(OLD_FLAGS) <= flags


def test_flags_mean_what_they_meant():
    cmd, s = _settings(["--base", "B", "--trained", "x=T1", "--trained", "T2", "--variant", "ood", "--split", "both",
                        "--k", "1,2,4", "--budget-k", "64", "--theta-basin", "0.2", "--delta", "0.1",
                        "--floor", "1e-9", "--betas", "0.5,2", "--search-beams", "4", "--search-expand", "3",
                        "--max-new-tokens", "7", "--keep", "8", "--chunk", "100", "--n", "64", "--no-progress",
                        "--keep-samples", "--estimator", "likelihood"])
    assert cmd.base == "B" and cmd.trained == ("x=T1", "T2") and cmd.progress is False
    assert s == ProbeSettings(variant="ood", split="both", ks=(1, 2, 4), n=64, keep_per_prompt=8,
                              thresholds=RegimeThresholds(theta_basin=0.2, budget_K=64, delta=0.1, floor=1e-9),
                              betas=(0.5, 2.0), search=SearchBudget(beam_width=4, expand_top=3, max_new_tokens=7),
                              max_new_tokens=7, chunk_sequences=100, keep_samples=True, estimator="likelihood")


def test_defaults_are_the_settings_defaults():
    cmd, s = _settings(["--base", "B"])
    assert s == ProbeSettings() and cmd.out == "" and cmd.trained == ()


def test_file_then_overrides_then_flags(tmp_path):
    path = tmp_path / "probe.yaml"
    path.write_text("base: B\nn: 64\nnum_prompts: 4\nthresholds:\n  budget_K: 64\nsearch:\n  beam_width: 2\n")
    _, s = _settings(["--config", str(path), "num_prompts=5", "seed=3", "--seed", "4"])
    assert (s.n, s.num_prompts, s.seed, s.thresholds.budget_K, s.search.beam_width) == (64, 5, 4, 64, 2)
    toml = tmp_path / "probe.toml"
    toml.write_text('base = "B"\nks = [1, 4]\n[search]\nexpand_top = 3\n')
    _, s = _settings(["--config", str(toml)])
    assert s.ks == (1, 4) and s.search.expand_top == 3


def test_search_off_by_flag_file_or_override(tmp_path):
    assert _settings(["--base", "B", "--no-search"])[1].search is None
    assert _settings(["--base", "B", "search=null"])[1].search is None
    # off wins over the section's own keys given beside it (as --no-search always ignored --search-beams)
    assert _settings(["--base", "B", "--search-beams", "4", "--no-search"])[1].search is None
    path = tmp_path / "off.yaml"
    path.write_text("base: B\nsearch: null\n")
    assert _settings(["--config", str(path)])[1].search is None
    assert _settings(["--config", str(path), "--search-beams", "4"])[1].search.beam_width == 4  # a flag turns it on


def test_search_length_follows_max_new_tokens_unless_set():
    assert _settings(["--base", "B", "--max-new-tokens", "9"])[1].search.max_new_tokens == 9
    s = _settings(["--base", "B", "--max-new-tokens", "9", "--search-max-new-tokens", "5"])[1]
    assert s.search.max_new_tokens == 5 and s.max_new_tokens == 9


def test_keep_is_cut_to_n():
    assert _settings(["--base", "B", "--n", "8"])[1].keep_per_prompt == 8
    assert _settings(["--base", "B", "--n", "8", "--keep", "4"])[1].keep_per_prompt == 4


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--n", "abc"], "config key 'n': expected an integer, got 'abc'"),
        (["--k", "1,x"], "config key 'ks': expected an integer"),
        (["--estimator", "exact"], "config key 'estimator': 'exact' is not one of sampling, likelihood"),
        (["--split", "all"], "config key 'split': 'all' is not one of test, train, both"),
        (["nn=3"], "unknown config key 'nn'"),
        (["thresholds.delta=2"], "config section 'thresholds': delta must lie in (0, 1)"),
        (["--search-beams", "0"], "config section 'search': SearchBudget.beam_width must be an int >= 1"),
        (["search=3"], "config key 'search': expected a section (mapping) or null (off)"),
        (["--max-new-tokens", "0"], "config key 'max_new_tokens'"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_key(argv, fragment):
    with pytest.raises(ConfigError) as err:
        _settings(["--base", "B", *argv])
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_every_setting_documents_itself():
    rows = describe(ProbeCommand)
    keys = [k for k, _, _ in rows]
    assert {"search", "search.beam_width", "thresholds.budget_K", "ks", "base"} <= set(keys)
    assert all(h for _, _, h in rows)
    help_text = _parser().format_help()
    assert "p(x) from which a prompt is basin (default: 0.1) [key thresholds.theta_basin]" in " ".join(
        help_text.split())


def test_python_construction_keeps_its_keywords():
    s = ProbeSettings(task="digits", n=64, ks=(1, 8), thresholds=RegimeThresholds(budget_K=64), search=None, seed=3)
    assert s.search is None and s.thresholds.budget_K == 64 and s.to_dict()["ks"] == [1, 8]
    assert SearchBudget(4, 4, 4) == SearchBudget(beam_width=4, expand_top=4, max_new_tokens=4)


@pytest.mark.parametrize(("argv", "message"), [
    (["--prompts", "both"], "--prompts is now --split"),
    (["--split", "ood"], "did you mean --variant ood?"),
    (["prompt_split=train"], "config key 'prompt_split' is now 'split'"),
])
def test_the_old_spellings_point_to_the_new_ones(argv, message, capsys):
    from reweightlab.cli import main

    assert main(["probe", "--base", "B", *argv, "--no-progress"]) == 2
    assert message in capsys.readouterr().err
