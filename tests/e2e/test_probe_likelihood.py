"""The likelihood estimator of p(x) on a tiny model: exact against a manual forward, batch-invariant,
and in agreement with the sampling estimator on a model trained to put real mass on the solutions."""

import time

import pytest
import torch

from reweightlab.data.encoding import solver_demonstrations
from reweightlab.data.store import microbatches
from reweightlab.models import load_model, load_tokenizer
from reweightlab.models.forward import forward_logits_logp
from reweightlab.probe.likelihood import known_solution_stats, sequence_logprobs
from reweightlab.probe.regimes import agreement
from reweightlab.rollout import HFRolloutEngine
from reweightlab.rollout.scored import sample_and_score
from reweightlab.tasks import GeneralPoints
from reweightlab.train.step import make_optimizer

TASK = GeneralPoints()


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return load_tokenizer(tiny_model_dir), load_model(tiny_model_dir)


@pytest.fixture(scope="module")
def problems():
    return TASK.problems("id", "train", 3, seed=0)


def _manual_logp(model, tok, prompt: str, completion: str) -> float:
    """log pi(completion + EOS | prompt) by one plain forward of one unpadded sequence."""
    p = tok(prompt, add_special_tokens=True)["input_ids"]
    c = tok(completion, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    ids = torch.tensor([p + c])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, :-1].double()
    logp = torch.log_softmax(logits, -1).gather(1, ids[0, 1:, None])[:, 0]
    return float(logp[len(p) - 1 :].sum())  # target t predicts token t+1: completion starts at len(p)-1


def test_sequence_logprobs_equal_a_manual_forward(tiny, problems):
    tok, model = tiny
    prompts = [pr.prompt for pr in problems for _ in range(2)]
    comps = [s for pr in problems for s in TASK.solutions(pr)[:2]]
    prompts = prompts[: len(comps)]
    got = sequence_logprobs(model, tok, prompts, comps)
    assert got.dtype == torch.float64 and got.shape == (len(comps),)
    want = torch.tensor([_manual_logp(model, tok, p, c) for p, c in zip(prompts, comps, strict=True)])
    torch.testing.assert_close(got, want.double(), atol=1e-4, rtol=0)
    # the EOS term is included: dropping it changes the answer
    no_eos = sequence_logprobs(model, tok, prompts[:1], [comps[0][:-1]])
    assert abs(float(no_eos[0]) - float(got[0])) > 1e-3


def test_p_known_is_the_sum_over_solutions_and_batch_invariant(tiny, problems):
    tok, model = tiny
    stats = known_solution_stats(model, tok, TASK, problems)
    pk_P, n_sol = stats.p_known_P, stats.n_solutions_P.tolist()
    assert n_sol == [len(TASK.solutions(pr)) for pr in problems] and min(n_sol) >= 1
    assert pk_P.dtype == torch.float64 and pk_P.shape == (len(problems),)
    assert ((pk_P >= 0) & (pk_P <= 1)).all() and (pk_P > 0).all()
    # Per-token log-probs are fp32 (teacher_forced_logp) and depend slightly on the padded width of
    # the micro-batch; an untrained model's log p is ~ -50, where fp32 rounding is ~1e-6 absolute,
    # i.e. ~1e-6 relative in p. Hence rtol 1e-5 (p itself is ~1e-22 here, so an absolute tolerance
    # would test nothing).
    for i, pr in enumerate(problems):
        sols = TASK.solutions(pr)
        lp = sequence_logprobs(model, tok, [pr.prompt] * len(sols), sols)
        torch.testing.assert_close(pk_P[i], lp.exp().sum(), rtol=1e-5, atol=0)
    pk_small = known_solution_stats(model, tok, TASK, problems, max_batch_sequences=3).p_known_P
    torch.testing.assert_close(pk_small, pk_P, rtol=1e-5, atol=0)
    best = stats.max_logp_P
    assert (best.exp() <= pk_P * (1 + 1e-9)).all() and (best.exp() * torch.tensor(n_sol) >= pk_P * (1 - 1e-9)).all()


def test_p_known_needs_enumerable_solutions(tiny, problems):
    tok, model = tiny

    class NoSolutions:
        name = "opaque"

        def solutions(self, problem):
            return None

    with pytest.raises(ValueError, match="cannot enumerate"):
        known_solution_stats(model, tok, NoSolutions(), problems)


def _sft(model, tok, problem, steps: int, lr: float):
    store = solver_demonstrations(TASK, [problem], tok, per_prompt=64, seed=0)
    mbs = microbatches(store, len(store))
    opt = make_optimizer(model, lr=lr, weight_decay=0.0)
    model.train()
    for _ in range(steps):
        for mb in mbs:
            _, logp_BT = forward_logits_logp(model, mb)
            loss = -(logp_BT * mb.mask_BT).sum() / mb.mask_BT.sum()
            loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    model.eval()


def test_sampling_and_likelihood_agree_on_a_trained_model(tiny_model_dir):
    """After SFT on one hand's canonical solutions, c/n from 256 samples matches p_known.

    Sampling counts ANY verified expression, p_known only the enumerated canonical strings, so in
    expectation c/n >= p_known; a model trained only on canonical strings puts (nearly) all of its
    success mass on them, so the two agree within binomial sampling error.
    """
    tok, model = load_tokenizer(tiny_model_dir), load_model(tiny_model_dir)
    problem = TASK.problems("id", "train", 1, seed=7)[0]
    _sft(model, tok, problem, steps=100, lr=1e-2)

    t0 = time.perf_counter()
    pk_P = known_solution_stats(model, tok, TASK, [problem]).p_known_P
    t_known = time.perf_counter() - t0
    n = 256
    engine = HFRolloutEngine(model, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    t0 = time.perf_counter()
    scored = sample_and_score(
        engine, TASK, [problem], tok, samples_per_prompt=n, max_new_tokens=TASK.max_completion_chars, seed=0
    )
    t_sample = time.perf_counter() - t0
    c = float(scored.success_PG.sum())
    print(f"p_known={float(pk_P[0]):.4f} ({t_known * 1e3:.1f} ms)  c/n={c / n:.4f} ({t_sample * 1e3:.1f} ms)")
    assert float(pk_P[0]) > 0.2  # trained: substantial mass on the known solutions
    res = agreement(torch.tensor([c / n]), torch.tensor([n]), pk_P)
    assert res["within"] == 1.0, res
    # and the check can fail: a p_known off by a third is outside 3 sigma at n = 256
    assert agreement(torch.tensor([c / n]), torch.tensor([n]), pk_P * 2 / 3)["within"] == 0.0
