"""The demo's budget through the package's one configuration mechanism: file, key=value, --help."""

import pytest

from reweightlab.config import ConfigError
from reweightlab.recipes.demo import DEFAULT_BUDGET, QUICK_BUDGET, load_budget


def test_no_override_gives_the_preset_and_overrides_change_only_their_key():
    assert load_budget() == DEFAULT_BUDGET and load_budget(quick=True) == QUICK_BUDGET
    b = load_budget(True, None, ["eval_samples=64", "train_seeds=[3]", "search.beam_width=2"])
    assert (b.eval_samples, b.train_seeds, b.search.beam_width) == (64, (3,), 2)
    assert b.pretrain == QUICK_BUDGET.pretrain and b.num_prompts == QUICK_BUDGET.num_prompts


def test_a_config_file_then_overrides(tmp_path):
    path = tmp_path / "budget.yaml"
    path.write_text("offline_steps: 5\neval_prompts: 8\n")
    b = load_budget(True, str(path), ["eval_prompts=4"])
    assert (b.offline_steps, b.eval_prompts) == (5, 4)


@pytest.mark.parametrize(("items", "message"), [
    (["eval_sample=3"], "unknown config key 'eval_sample'"),
    (["eval_samples=many"], "config key 'eval_samples': expected an integer"),
    (["offline_steps=0"], "config key 'offline_steps': must be >= 1"),
    (["train_seeds=[]"], "config key 'train_seeds': needs at least one seed"),
])
def test_bad_budget_keys_are_one_line_errors(items, message):
    with pytest.raises(ConfigError, match=message):
        load_budget(True, None, items)


def test_demo_help_config_lists_every_budget_key_with_its_help(capsys):
    from reweightlab.cli import main

    assert main(["demo", "--help-config"]) == 0
    out = capsys.readouterr().out
    assert "eval_samples" in out and "samples per prompt in the probe; also the regime budget K" in out
