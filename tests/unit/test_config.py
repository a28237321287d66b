import pytest

from reweightlab.config import ConfigError
from reweightlab.train.config import TrainConfig, config_from_dict, describe_fields, load_config


def test_defaults_and_overrides():
    cfg = load_config(None, ["method=grpo", "rl.kl_beta=0.05", "optim.lr=3e-5", "rl.samples_per_prompt=4"])
    assert isinstance(cfg, TrainConfig)
    assert cfg.method == "grpo" and cfg.rl.kl_beta == 0.05 and cfg.optim.lr == 3e-5
    assert cfg.rl.samples_per_prompt == 4 and cfg.resolved_source() == "online"


def test_yaml_and_toml_files_with_overrides(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text("method: iw_sft\noffline:\n  iw_preset: llm-token\noptim:\n  lr: 1e-5\n")
    cfg = load_config(y, ["optim.steps=7"])
    assert cfg.offline.iw_preset == "llm-token" and cfg.optim.lr == 1e-5 and cfg.optim.steps == 7
    t = tmp_path / "c.toml"
    t.write_text('method = "sft_q"\n[offline]\nquality_thresholds = [-1.5, 0.0]\n')
    cfg = load_config(t)
    assert cfg.offline.quality_thresholds == (-1.5, 0.0)


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        (["optim.lrr=1"], "unknown config key 'optim.lrr'; allowed: steps, lr"),
        (["optim.lr=abc"], "'optim.lr': expected a number"),
        (["optim.steps=2.5"], "'optim.steps': expected an integer"),
        (["method=ppo"], "'method': 'ppo' is not one of sft, filtered_sft"),
        (["rl.kl_beta=0.1"], "'rl.kl_beta' does nothing for method 'sft'"),
        (["method=sft", "offline.iw_preset=llm"], "'offline.iw_preset' does nothing for method 'sft'"),
        (["method=grpo", "rl.clip_eps_low=0.1"], "does nothing with one epoch and one minibatch"),
        (["method=grpo", "rl.kl_estimator=k1"], "'rl.kl_estimator' does nothing with rl.kl_beta = 0"),
        (["method=grpo", "rl.kl_beta=0.1", "rl.kl_estimator=k3"], "does nothing with rl.kl_mode = sequence"),
        (["method=grpo", "rl.kl_beta=0.1", "rl.kl_mode=loss"], "'rl.kl_mode': 'loss' is not one of sequence"),
        (["method=rloo", "rl.samples_per_prompt=1"], "rloo needs at least 2"),
        (["method=sft_q"], "needs at least one threshold"),
        (["method=sft_q", "offline.quality_thresholds=[1,0]"], "strictly increasing"),
        (["method=sft", "data.source=base_samples"], "trains on demonstrations"),
        (["method=filtered_sft", "data.demos_per_prompt=3"], "does nothing unless data.source is 'solver'"),
        (["optim.warmup_steps=100"], "'optim.warmup_steps': must be in [0, optim.steps)"),
        (["method=grpo", "rl.top_p=1.5"], "'rl.top_p': must be <= 1.0"),
        (["optim=3"], "'optim': expected a section"),
        (["method=grpo", "rl.prompts_per_step=3", "rl.samples_per_prompt=3", "rl.minibatches_per_epoch=2"],
         "does not divide the 9 sequences"),
    ],
)
def test_bad_config_is_one_clear_line(overrides, fragment):
    with pytest.raises(ConfigError) as err:
        load_config(None, overrides)
    msg = str(err.value)
    assert fragment in msg and "\n" not in msg


def test_clip_is_allowed_when_it_acts():
    cfg = load_config(None, ["method=grpo", "rl.epochs_per_batch=2", "rl.clip_eps_high=0.28"])
    assert cfg.rl.clip_eps_high == 0.28


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("method: [unclosed\n")
    with pytest.raises(ConfigError, match="is not valid"):
        load_config(bad)
    txt = tmp_path / "c.txt"
    txt.write_text("method: sft")
    with pytest.raises(ConfigError, match="expected a .yaml"):
        load_config(txt)


def test_config_is_frozen_and_serialises():
    cfg = config_from_dict({"method": "dft"})
    with pytest.raises(AttributeError):
        cfg.method = "sft"  # type: ignore[misc]
    assert '"method": "dft"' in cfg.to_json()
    keys = [k for k, _, _ in describe_fields()]
    assert "rl.kl_estimator" in keys and "optim.lr" in keys
    assert all(h for _, _, h in describe_fields())  # every field documents itself


def test_config_json_says_what_beta_means():
    """The default KL follows the sequence-level gradient; std scaling changes the beta in effect."""
    import json

    grpo = json.loads(config_from_dict({"method": "grpo", "rl": {"kl_beta": 0.05}}).to_json())["resolved"]
    assert grpo["adv_std"] == "group" and grpo["kl"]["mode"] == "sequence"
    assert grpo["kl"]["target"].startswith("pi_ref exp(r / beta) / Z")
    assert "group's reward std" in grpo["kl"]["effective_beta"]
    rloo = json.loads(config_from_dict({"method": "rloo", "rl": {"kl_beta": 0.05}}).to_json())["resolved"]
    assert rloo["adv_std"] == "none" and rloo["kl"]["effective_beta"] == "kl_beta"
    partial = config_from_dict({"method": "rloo", "rl": {"kl_beta": 0.05, "kl_mode": "per_token"}}).resolved()
    assert "partial gradient" in partial["kl"]["target"]
    assert config_from_dict({"method": "sft"}).resolved() == {"data_source": "solver"}


def _float_keys(cls, prefix=""):
    import dataclasses
    import typing

    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            yield from _float_keys(tp, f"{prefix}{f.name}.")
        elif tp is float:
            yield f"{prefix}{f.name}"


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf", "1e999"])
def test_every_float_setting_of_every_command_refuses_non_finite_values(bad):
    """Root cause: nan passes every range check and inf every lower bound; coercion refuses both, for every key."""
    from reweightlab.config import ConfigError, load
    from reweightlab.probe.study import ProbeSettings
    from reweightlab.recipes.demo import DemoBudget
    from reweightlab.train.config import TrainConfig

    checked = 0
    for cls in (TrainConfig, ProbeSettings, DemoBudget):
        for key in _float_keys(cls):
            with pytest.raises(ConfigError, match=rf"config key '{key}': must be a finite number"):
                load(cls, None, [f"{key}={bad}"])
            checked += 1
    assert checked >= 20  # lr, kl_beta, clip eps, reward_timeout, temperatures, thresholds, ...
