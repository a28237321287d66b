"""Every method through `reweightlab train` on a tiny model built in-process."""

import json

import pytest
import torch

from reweightlab.cli import main
from reweightlab.models import load_model
from reweightlab.train.config import load_config
from reweightlab.train.loop import train

# An untrained tiny model never solves a hand, so offline filters keep everything here.
CASES = {  # case -> (method, extra overrides)
    "sft": ("sft", []),
    "dft": ("dft", []),
    "filtered_sft": ("filtered_sft", ["offline.threshold=-3"]),
    "sft_q": ("sft_q", ["offline.quality_thresholds=[-3.5,-2.5]"]),
    "sft_q_weight": ("sft_q", ["offline.quality_thresholds=[-3.5,-2.5]", "offline.quality_mode=weight"]),
    "iw_sft": ("iw_sft", ["offline.threshold=-3"]),
    "iw_sft_token": ("iw_sft", ["offline.threshold=-3", "offline.iw_preset=llm-token"]),
    "iw_sft_control": ("iw_sft", ["offline.threshold=-3", "offline.iw_preset=control"]),
    "rwr": ("rwr", []),
    "reinforce": ("reinforce", []),
    "rloo": ("rloo", ["rl.samples_per_prompt=4"]),
    "grpo": ("grpo", ["rl.kl_beta=0.1", "rl.epochs_per_batch=2"]),
    "reinforce_kl_reward": ("reinforce", ["rl.kl_beta=0.1", "rl.kl_mode=reward"]),
}
RL_KEYS = {"reward", "reward_std", "frac_reward_zero_std", "kl", "entropy", "clip_ratio",
           "completions/mean_length", "completions/clipped_ratio", "tokens_per_s", "time_generation", "time_training",
           "loss", "learning_rate"}


def _overrides(case, model_dir, out, steps=2):
    method, extra = CASES[case]
    common = [f"method={method}", f"model.path={model_dir}", f"output_dir={out}", f"optim.steps={steps}",
              "data.num_prompts=8", "data.max_new_tokens=12", "optim.sequences_per_microbatch=8"]
    if method in ("reinforce", "rloo", "grpo"):
        common += ["rl.prompts_per_step=4", "data.task=digits"]  # varied rewards even untrained
    else:
        common += ["optim.sequences_per_step=16"]
        if method not in ("sft", "dft"):
            common += ["data.base_samples_per_prompt=4"]
    return common + extra


@pytest.mark.parametrize("case", list(CASES))
def test_method_runs_and_writes_a_run_folder(case, tiny_model_dir, tmp_path):
    out = tmp_path / case
    cfg = load_config(None, _overrides(case, tiny_model_dir, out))
    method = cfg.method
    before = load_model(tiny_model_dir).state_dict()
    train(cfg, progress=False, log=lambda *_: None)
    resolved = json.loads((out / "config.json").read_text())
    assert resolved["method"] == method and resolved["optim"]["steps"] == 2
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2]
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in lines)
    if cfg.is_rl:  # the KL is logged where a reference exists (kl_beta > 0 or rl.log_kl), absent otherwise
        assert RL_KEYS - {"kl"} <= set(lines[0]) and ("kl" in lines[0]) == cfg.uses_reference()
    after = load_model(out / "final").state_dict()
    changed = any(not torch.equal(before[k], after[k]) for k in before)
    assert changed, "training did not change the model"


def test_iw_sft_weights_are_one_at_step_zero(tiny_model_dir, tmp_path):
    """pi = pi_ref at step 0, so the iw-SFT weight of every sequence is exactly 1."""
    out = tmp_path / "iw"
    cfg = load_config(None, _overrides("iw_sft", tiny_model_dir, out, steps=2) + ["optim.lr=0.05"])
    train(cfg, progress=False, log=lambda *_: None)
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert lines[0]["weight"] == pytest.approx(1.0, abs=1e-6)
    assert lines[1]["weight"] != pytest.approx(1.0, abs=1e-6)  # after a large step, q != pi_ref


def test_grpo_first_update_is_on_policy(tiny_model_dir, tmp_path):
    """Sampler log-probs serve as logp_old: on the first update ratio == 1, so nothing is clipped and KL == 0."""
    out = tmp_path / "g"
    cfg = load_config(None, _overrides("grpo", tiny_model_dir, out, steps=1) + ["rl.minibatches_per_epoch=2"])
    train(cfg, progress=False, log=lambda *_: None)
    line = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert line["kl"] >= 0.0 and line["clip_ratio"] < 0.5


def test_interrupt_leaves_last_checkpoint_readable(tiny_model_dir, tmp_path, monkeypatch):
    import reweightlab.train.loop as loop

    out = tmp_path / "int"
    cfg = load_config(None, _overrides("sft", tiny_model_dir, out, steps=5) + ["checkpoint_every=1"])
    real = loop._maybe_checkpoint

    def interrupt_after_two(s, step, state=None):
        real(s, step, state)
        if step == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(loop, "_maybe_checkpoint", interrupt_after_two)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, progress=False, log=lambda *_: None)
    ckpts = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert ckpts == ["step-000001", "step-000002"]  # no temporary folders left behind
    assert not (out / "final").exists()
    load_model(out / "checkpoints" / "step-000002")


def test_cli_errors_are_one_line(tiny_model_dir, tmp_path, capsys):
    assert main(["train", "method=sft", "optim.lrr=1"]) == 2
    assert "unknown config key 'optim.lrr'" in capsys.readouterr().err
    assert main(["train", "method=sft", f"model.path={tmp_path / 'missing'}", f"output_dir={tmp_path / 'o'}"]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and err.count("\n") == 1
    assert main(["train", "method=sft", "data.task=nosuchtask", f"model.path={tiny_model_dir}",
                 f"output_dir={tmp_path / 'o2'}"]) == 2
    assert "generalpoints" in capsys.readouterr().err


def test_finished_run_folder_is_not_overwritten(tiny_model_dir, tmp_path):
    out = tmp_path / "done"
    cfg = load_config(None, _overrides("sft", tiny_model_dir, out, steps=1))
    train(cfg, progress=False, log=lambda *_: None)
    assert main(["train", *_overrides("sft", tiny_model_dir, out, steps=1), "--no-progress"]) == 2
    (out / "final").rename(out / "moved")  # an interrupted run: metrics but no final model
    assert main(["train", *_overrides("sft", tiny_model_dir, out, steps=1), "--no-progress"]) == 2


def test_bad_model_path_leaves_no_run_folder(tmp_path):
    out = tmp_path / "never"
    assert main(["train", "method=sft", f"model.path={tmp_path / 'missing'}", f"output_dir={out}"]) == 2
    assert not out.exists()


@pytest.mark.parametrize("reduction", ["token_mean", "seq_mean"])
def test_gradient_accumulation_matches_one_microbatch(reduction, tiny_model_dir, tmp_path):
    """Micro-batches of 4 and one micro-batch of 16 give the same model: the loop normalises by the
    step's global token (or sequence) count, not per micro-batch. lr 1e-3: Adam divides by sqrt(v), so
    a gradient element near 0 (where fp32 sums of the micro-batches cancel) gets an update of order lr
    whose rounding differs between the two batchings; at lr 1e-2 one element in 1,024 moved 1.4e-5."""
    finals = []
    for mb in (16, 4):
        out = tmp_path / f"acc{mb}-{reduction}"
        ov = _overrides("sft", tiny_model_dir, out, steps=2)
        ov = [o for o in ov if not o.startswith("optim.sequences_per_microbatch")]
        cfg = load_config(None, [*ov, f"optim.sequences_per_microbatch={mb}", f"optim.reduction={reduction}",
                                 "optim.max_grad_norm=0", "optim.lr=0.001"])
        train(cfg, progress=False, log=lambda *_: None)
        finals.append(load_model(out / "final").state_dict())
    base = load_model(tiny_model_dir).state_dict()
    assert any(not torch.equal(base[k], finals[0][k]) for k in base)
    for k in finals[0]:
        torch.testing.assert_close(finals[0][k], finals[1][k], atol=1e-5, rtol=1e-4)


def test_rl_on_the_success_signal_trains_on_rewards_of_0_and_1(tiny_model_dir, tmp_path):
    """rl.reward=success: the logged reward is the success rate (0/1 per sample), the score's is not."""
    rows = {}
    for signal in ("score", "success"):
        out = tmp_path / signal
        cfg = load_config(None, _overrides("rloo", tiny_model_dir, out) + [f"rl.reward={signal}"])
        train(cfg, progress=False, log=lambda *_: None)
        rows[signal] = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    for r in rows["success"]:
        assert r["reward"] == pytest.approx(r["success"], abs=1e-6)
        assert r["reward_std"] <= (16 / 15) ** 0.5 / 2 + 1e-6  # a 0/1 variable's std over 16 samples (n - 1 normalised)
    # same seed, same samples in the first batch: only the signal differs
    assert rows["score"][0]["success"] == rows["success"][0]["success"]
    assert rows["score"][0]["reward"] != pytest.approx(rows["score"][0]["success"], abs=1e-6)


@pytest.mark.parametrize("method", ["sft", "reinforce"])
def test_a_non_finite_loss_stops_training_with_one_line_and_no_final(method, tiny_model_dir, tmp_path, capsys,
                                                                     monkeypatch):
    """A forward pass that turns NaN at step 1: one line naming the step, exit 2, no final/."""
    import reweightlab.train.loop as loop

    real = loop.forward_logits_logp

    def poisoned(model, mb):
        logits, logp = real(model, mb)
        return logits, logp * float("nan")

    monkeypatch.setattr(loop, "forward_logits_logp", poisoned)
    out = tmp_path / "run"
    assert main(["train", *_overrides(method, tiny_model_dir, out), "--no-progress"]) == 2
    errors = [x for x in capsys.readouterr().err.splitlines() if x.startswith("error")]
    assert len(errors) == 1 and errors[0].startswith("error: step 1: the loss is nan"), errors
    assert not (out / "final").exists()


def test_weights_holding_nan_never_start_a_run(tiny_model_dir, tmp_path, capsys):
    from reweightlab.models import load_tokenizer

    model = load_model(tiny_model_dir)
    with torch.no_grad():
        model.get_output_embeddings().weight[3, 0] = float("nan")
    bad = tmp_path / "nan-model"
    model.save_pretrained(bad)
    load_tokenizer(tiny_model_dir).save_pretrained(bad)
    out = tmp_path / "run"
    assert main(["train", *_overrides("sft", bad, out), "--no-progress"]) == 2
    errors = [x for x in capsys.readouterr().err.splitlines() if x.startswith("error")]
    assert len(errors) == 1 and "tensor model.embed_tokens.weight holds 1 non-finite value(s)" in errors[0], errors
    assert not out.exists()
