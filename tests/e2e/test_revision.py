"""Sequential revision: episodes of attempts with the verifier's feedback between them.

A toy task whose feedback names the answer ("?7:"). A model pretrained on episodes (a random wrong
digit, the feedback, the answer) learns to use it: within two attempts it succeeds almost always,
while its first attempt is a guess (about 1 in 10). A model pretrained on first attempts alone is the
control: a second attempt is one more guess.
"""

import hashlib
import json

import pytest
import torch

from reweightlab.cli import main
from reweightlab.data.encoding import encode_prompts
from reweightlab.data.episodes import Segment, episode_store
from reweightlab.data.store import microbatches
from reweightlab.models import build_char_tokenizer
from reweightlab.models.embedded import EmbeddedSpec, build_embedded_model
from reweightlab.models.forward import forward_logits_logp, teacher_forced_logp
from reweightlab.rollout import HFRolloutEngine
from reweightlab.rollout.revision import sample_revisions
from reweightlab.rollout.scored import sample_and_score
from reweightlab.tasks import Problem, Verdict, hooks
from reweightlab.tasks.registry import register_task


def _answer(i: int) -> int:
    return hashlib.sha256(f"answer-{i}".encode()).digest()[0] % 10


class Hidden:
    """Guess a hidden digit; the verifier's feedback after a miss names it."""

    name, variants, success_score, max_completion_chars = "hidden", ("id",), 1.0, 2

    def problems(self, variant, split, n, seed):
        start = 0 if split == "train" else 500
        return [Problem(f"h{i}", f"h{i:03d}:", variant, split, extra={"answer": _answer(i)})
                for i in range(start, start + n)]

    def verify(self, problem, completion):
        ok = completion.strip() == str(problem.get("answer"))
        return Verdict(1.0 if ok else -1.0, ok, "correct" if ok else "wrong digit")

    def feedback(self, problem, completion, verdict):
        return f"?{problem.get('answer')}:"

    def solutions(self, problem):
        return [str(problem.get("answer"))]


register_task("hidden", Hidden, replace=True)
TOK = build_char_tokenizer()
LR = 1e-2
SPEC = EmbeddedSpec(hidden_size=48, num_layers=2, num_heads=4, intermediate_size=96, max_positions=64)


def _pretrain(with_episodes: bool, steps: int = 500):
    """First attempts are uniform digits; with episodes, also (wrong digit, feedback, answer) with loss on
    the answer alone."""
    task, gen = Hidden(), torch.Generator().manual_seed(0)
    problems = task.problems("id", "train", 64, 0)
    prompts, episodes = [], []
    for j in range(4096):
        p = problems[j % len(problems)]
        guess = int(torch.randint(10, (1,), generator=gen))
        digit = TOK(str(guess), add_special_tokens=False)["input_ids"] + [TOK.eos_token_id]
        segs = [Segment(digit, True)]
        if with_episodes and j % 2:
            wrong = (p.get("answer") + 1 + guess % 9) % 10
            note = TOK(task.feedback(p, str(wrong), None), add_special_tokens=False)["input_ids"]
            answer = TOK(str(p.get("answer")), add_special_tokens=False)["input_ids"] + [TOK.eos_token_id]
            segs = [Segment(TOK(str(wrong), add_special_tokens=False)["input_ids"] + [TOK.eos_token_id], False),
                    Segment(note, False), Segment(answer, True)]
        prompts.append(p.prompt)
        episodes.append(segs)
    store = episode_store(encode_prompts(TOK, prompts), episodes, TOK.pad_token_id)
    model = build_embedded_model(TOK, SPEC, seed=0).train()
    opt = torch.optim.AdamW(model.parameters(), lr=LR)
    for _ in range(steps):
        idx = torch.randint(len(store), (64,), generator=gen)
        for mb in microbatches(store.select(idx), 64):
            _, logp = forward_logits_logp(model, mb)
            loss = -(logp * mb.mask_BT).sum() / mb.mask_BT.sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


@pytest.fixture(scope="module")
def feedback_model():
    return _pretrain(with_episodes=True)


@pytest.fixture(scope="module")
def plain_model():
    return _pretrain(with_episodes=False)


def _engine(model, chunk=64):
    return HFRolloutEngine(model, eos_token_id=TOK.eos_token_id, pad_token_id=TOK.pad_token_id,
                           max_batch_sequences=chunk)


def _revise(model, attempts=2, G=16, chunk=64, n=16):
    problems = Hidden().problems("id", "test", n, 0)
    return problems, sample_revisions(_engine(model, chunk), Hidden(), problems, TOK, attempts=attempts,
                                      samples_per_prompt=G, max_new_tokens=3, prompt_seeds=list(range(n)))


def test_revision_improves_a_model_pretrained_to_use_feedback(feedback_model, plain_model):
    _, r = _revise(feedback_model)
    first, within = float(r.first_success_PG.mean()), float(r.success_PG.mean())
    assert first < 0.3 and within > 0.9  # the feedback names the answer, and this model reads it
    _, c = _revise(plain_model)
    c_first, c_within = float(c.first_success_PG.mean()), float(c.success_PG.mean())
    assert c_first < 0.3 and c_within - c_first < 0.3  # the control: a second guess, no more
    assert within - first > 0.6


def test_episodes_end_at_a_success_and_carry_the_feedback_of_their_last_attempt(feedback_model):
    problems, r = _revise(feedback_model, attempts=3, G=8)
    store = r.store
    for n, (texts, verdicts) in enumerate(zip(r.texts, r.verdicts, strict=True)):
        assert 1 <= len(texts) <= 3 and len(verdicts) == len(texts) == int(r.attempts_PG.view(-1)[n])
        assert all(not v.success for v in verdicts[:-1])  # nothing follows a success
        assert len(verdicts) == 3 or verdicts[-1].success
        assert float(store.reward_N[n]) == verdicts[-1].score  # the episode's reward: its last attempt's
        p = problems[n // 8]
        expected = p.prompt + "".join(t + "<eos>" + (Hidden().feedback(p, t, v) if i < len(texts) - 1 else "")
                                      for i, (t, v) in enumerate(zip(texts, verdicts, strict=True)))
        assert TOK.decode(store.ids_NL[n, : store.total_len_N[n]]) == "<bos>" + expected
    # loss on the attempts only: the loss-carrying targets of an episode, in order, are exactly its attempts
    # (each with its EOS); no prompt or feedback token carries loss. (Not "digits only": a sampled attempt may
    # hold any token.)
    mask = store.target_mask().bool()
    targets = store.ids_NL[:, 1:]
    for n, texts in enumerate(r.texts):
        assert TOK.decode(targets[n][mask[n]]) == "".join(t + "<eos>" for t in texts), n
    assert store.completion_tokens() == int(mask.sum())


def test_the_extended_cache_gives_the_teacher_forced_log_probs(feedback_model):
    """No second prefill: the sampler's log-probs of every attempt, taken from the cache extended by the
    feedback, equal a plain forward over the whole episode (positions and masks right)."""
    _, r = _revise(feedback_model, attempts=3, G=8, chunk=24)  # chunks cut through prompts' episodes
    store = r.store
    tf = teacher_forced_logp(feedback_model, microbatches(store, 64), len(store), store.ids_NL.shape[1], "cpu")
    mask = store.target_mask()
    torch.testing.assert_close(tf * mask, store.logp_sampler_NT * mask, atol=2e-5, rtol=0)


def test_attempt_one_is_what_single_sampling_draws(feedback_model):
    problems = Hidden().problems("id", "test", 8, 0)
    r = sample_revisions(_engine(feedback_model), Hidden(), problems, TOK, attempts=3, samples_per_prompt=8,
                         max_new_tokens=3, prompt_seeds=list(range(8)))
    s = sample_and_score(_engine(feedback_model), Hidden(), problems, TOK, samples_per_prompt=8, max_new_tokens=3,
                         prompt_seeds=list(range(8)))
    assert [t[0] for t in r.texts] == s.texts
    one = sample_revisions(_engine(feedback_model), Hidden(), problems, TOK, attempts=1, samples_per_prompt=8,
                           max_new_tokens=3, prompt_seeds=list(range(8)))
    assert torch.equal(one.store.ids_NL, s.store.ids_NL) and torch.equal(one.attempts_PG, torch.ones(8, 8))


def test_revision_needs_a_feedback_hook_and_one_attempt(feedback_model):
    from tests.conftest import DigitsTask

    problems = DigitsTask().problems("id", "train", 2, 0)
    with pytest.raises(hooks.NoFeedbackError, match="needs a task with a feedback hook.*'digits' has none"):
        sample_revisions(_engine(feedback_model), DigitsTask(), problems, TOK, attempts=2, samples_per_prompt=2,
                         max_new_tokens=3)
    with pytest.raises(ValueError, match="revision attempts must be an int >= 1, got 0"):
        sample_revisions(_engine(feedback_model), Hidden(), problems, TOK, attempts=0, samples_per_prompt=2,
                         max_new_tokens=3)


@pytest.fixture(scope="module")
def feedback_dir(feedback_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("hidden") / "base"
    feedback_model.save_pretrained(path)
    TOK.save_pretrained(path)
    return path


def test_rl_with_revision_trains_on_episodes_with_per_episode_advantages(feedback_dir, tmp_path):
    from reweightlab.math import group_advantages
    from reweightlab.train.config import config_from_dict
    from reweightlab.train.loop import _rl_batch, setup

    cfg = config_from_dict({"method": "grpo", "output_dir": str(tmp_path / "r"), "model": {"path": str(feedback_dir)},
                            "data": {"task": "hidden", "num_prompts": 8, "max_new_tokens": 3},
                            "rl": {"prompts_per_step": 4, "samples_per_prompt": 4, "revision_attempts": 2}})
    s = setup(cfg, progress=False)
    batch, rewards_PG, episodes = _rl_batch(s, s.problems[:4], step=0)
    assert set(episodes) == {"success_first_attempt", "attempts", "adv_all_zero"} and 1.0 <= episodes["attempts"] <= 2.0
    assert torch.equal(batch.reward_N, rewards_PG.reshape(-1))  # one reward per episode
    torch.testing.assert_close(batch.adv_N, group_advantages(rewards_PG, std_scaling="group").reshape(-1))
    assert batch.loss_mask_NT is not None and batch.completion_tokens() == int(batch.target_mask().sum())
    # end to end from the command line: the metrics log both success rates
    out = tmp_path / "cli"
    assert main(["train", "method=grpo", f"model.path={feedback_dir}", "data.task=hidden", "data.num_prompts=8",
                 "data.max_new_tokens=3", "rl.prompts_per_step=4", "rl.samples_per_prompt=4", "rl.revision_attempts=2",
                 "optim.steps=2", "rl.kl_beta=0.05", f"output_dir={out}", "--no-progress"]) == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(r["success"] >= r["success_first_attempt"] for r in rows)
    assert all(torch.isfinite(torch.tensor([r["loss"], r["kl"]])).all() for r in rows)
    assert (out / "final" / "config.json").exists()


def test_bad_revision_settings_are_one_line(tmp_path, capsys, monkeypatch):
    # with the default model.path ('embedded'): the errors come when the config is read, so the embedded
    # model is never built (an empty cache stays empty)
    monkeypatch.setenv("REWEIGHTLAB_CACHE", str(tmp_path / "cache"))
    assert main(["train", "method=grpo", "rl.revision_attempts=0", f"output_dir={tmp_path / 'a'}",
                 "--no-progress"]) == 2
    assert "config key 'rl.revision_attempts': must be >= 1, got 0" in capsys.readouterr().err
    assert main(["train", "method=grpo", "data.task=digits", "rl.revision_attempts=2",
                 f"output_dir={tmp_path / 'b'}", "--no-progress"]) == 2
    assert not (tmp_path / "cache").exists()
    err = capsys.readouterr().err
    assert "config key 'rl.revision_attempts': 2 attempts need a task whose verifier gives feedback" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "b").exists()


def test_probe_reports_first_attempt_and_within_episode_success(feedback_dir, tmp_path, capsys):
    out = tmp_path / "p"
    args = ["probe", "--base", str(feedback_dir), "--task", "hidden", "--num-prompts", "8", "--n", "32",
            "--budget-k", "32", "--k", "1,32", "--max-new-tokens", "3", "--keep", "4", "--no-search",
            "--revision-attempts", "2", "--revision-episodes", "8", "--no-progress", "--out", str(out)]
    assert main(args) == 0
    table = capsys.readouterr().out
    assert "within 2" in table
    rev = json.loads((out / "probe.json").read_text())["per_model"]["base"]["revision"]
    assert rev["attempts"] == 2 and rev["episodes_per_prompt"] == 8
    assert rev["success_first_attempt"]["value"] < 0.4 and rev["success_within_episode"]["value"] > 0.85
    lo, hi = rev["revision_gain"]["ci95"]
    assert 0 < lo <= rev["revision_gain"]["value"] <= hi
    rows = [json.loads(line) for line in (out / "probe_prompts.jsonl").read_text().splitlines()]
    assert all(0 <= r["models"]["base"]["revision_first_attempt"] <= 1 for r in rows)
    assert main([*args[:-1], str(tmp_path / "q"), "--task", "digits"]) == 2
    assert "--revision-attempts 2 needs a task whose verifier gives feedback" in capsys.readouterr().err
    assert main([*args[:-1], str(tmp_path / "r"), "--revision-attempts", "0"]) == 2
    assert "--revision-attempts and --revision-episodes must be >= 1" in capsys.readouterr().err
