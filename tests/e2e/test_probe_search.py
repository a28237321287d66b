"""Verifier-guided search on tiny models: exact log-likelihoods, pruning, budgets."""

import json
import math

import pytest
import torch

from reweightlab.data.encoding import encode_prompts, solver_demonstrations
from reweightlab.data.store import microbatches
from reweightlab.models import EmbeddedSpec, build_char_tokenizer, build_embedded_model, load_model, load_tokenizer
from reweightlab.models.forward import forward_logits_logp
from reweightlab.probe.likelihood import sequence_logprobs
from reweightlab.rollout.search import SearchBudget, SearchResult, verifier_guided_search
from reweightlab.tasks import Verdict, get_task
from reweightlab.train.step import make_optimizer

GP = get_task("generalpoints")
# Prompts of different lengths (the rule text differs), so chunks are left-padded.
PROBLEMS = GP.problems("id", "train", 2, seed=0) + GP.problems("ood", "train", 1, seed=0)


def _sft(model, tok, problems, steps: int):
    """A few full-batch AdamW steps on 4 solver solutions per hand: the model comes to favour them."""
    store = solver_demonstrations(GP, problems, tok, per_prompt=4, seed=0)
    mbs = microbatches(store, len(store))
    opt = make_optimizer(model, lr=1e-2, weight_decay=0.0)
    model.train()
    for _ in range(steps):
        for mb in mbs:
            _, logp_BT = forward_logits_logp(model, mb)
            (-(logp_BT * mb.mask_BT).sum() / mb.mask_BT.sum()).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    model.eval()
    return model


@pytest.fixture(scope="module")
def tok():
    return build_char_tokenizer()


@pytest.fixture(scope="module")
def tuned(tok):
    spec = EmbeddedSpec(hidden_size=32, num_layers=2, num_heads=4, intermediate_size=64, max_positions=96)
    return _sft(build_embedded_model(tok, spec, seed=0), tok, PROBLEMS, steps=40)


@pytest.fixture(scope="module")
def untrained(tiny_model_dir):
    return load_tokenizer(tiny_model_dir), load_model(tiny_model_dir)


class Recording:
    """Wraps a task: records every text given to verify and prefix_feasible; optionally has no pruning."""

    def __init__(self, task, *, prune: bool = True, accept_all: bool = False):
        self.task, self.accept_all = task, accept_all
        self.name, self.success_score = task.name, task.success_score
        self.verified: list[tuple[str, str]] = []  # (problem id, completion)
        if prune:
            self.prefix_feasible = task.prefix_feasible

    def verify(self, problem, completion):
        self.verified.append((problem.id, completion))
        if self.accept_all:
            return Verdict(1.0, True, "accepted")
        return self.task.verify(problem, completion)


def test_finds_the_favoured_solutions_with_exact_logp(tuned, tok):
    res = verifier_guided_search(tuned, tok, GP, PROBLEMS)
    assert isinstance(res, SearchResult) and res.budget == SearchBudget()
    assert res.found_P.tolist() == [True, True, True]
    assert res.logp_P.dtype == torch.float64 and res.candidates_verified_P.dtype == torch.long
    for problem, solution in zip(PROBLEMS, res.solution_P, strict=True):
        assert GP.verify(problem, solution).success, solution
    # The reported log-likelihood is log pi(solution + EOS | prompt): compare with teacher forcing.
    teacher_P = sequence_logprobs(tuned, tok, [p.prompt for p in PROBLEMS], res.solution_P)
    torch.testing.assert_close(res.logp_P, teacher_P, atol=1e-4, rtol=0)
    # Each found success has probability < 1/32: 32 samples would draw that string less than once
    # in expectation, yet the search reaches it (the model ranks it high at every step).
    assert (res.logp_P < math.log(1 / 32)).all() and res.forward_tokens > 0
    assert (res.candidates_verified_P >= 1).all()


def test_untrained_model_finds_nothing(untrained):
    # The control for the test above: the same search on a model that does not favour solutions.
    tok, model = untrained
    res = verifier_guided_search(model, tok, GP, PROBLEMS)
    assert res.found_P.tolist() == [False, False, False]
    assert res.solution_P == [None] * 3 and torch.isinf(res.logp_P).all()
    d = res.to_dict()
    json.dumps(d, allow_nan=False)  # -inf is written as None
    assert d["logp"] == [None] * 3 and d["found"] == [False] * 3 and d["budget"]["beam_width"] == 32


def test_batch_and_chunk_invariance(tuned, tok):
    together = verifier_guided_search(tuned, tok, GP, PROBLEMS)
    alone = verifier_guided_search(tuned, tok, GP, PROBLEMS, max_batch_prompts=1)
    assert alone.solution_P == together.solution_P
    torch.testing.assert_close(alone.logp_P, together.logp_P, atol=1e-4, rtol=0)
    assert alone.candidates_verified_P.tolist() == together.candidates_verified_P.tolist()


def _manual_greedy(model, tok, prompt: str, max_new_tokens: int) -> tuple[list[int], float]:
    """Argmax decoding by full forwards without a cache; special tokens other than EOS are skipped,
    as in the search (they would decode to nothing)."""
    ids = encode_prompts(tok, [prompt])[0]
    banned = [i for i in tok.all_special_ids if i != tok.eos_token_id]
    out, logp = [], 0.0
    with torch.no_grad():
        for _ in range(max_new_tokens):
            logits = model(input_ids=torch.tensor([ids + out])).logits[0, -1].double()
            logp_V = torch.log_softmax(logits, -1)
            logp_V[banned] = -math.inf
            token = int(logp_V.argmax())
            out.append(token)
            logp += float(logp_V[token])
            if token == tok.eos_token_id:
                break
    return out, logp


def test_beam_one_expand_one_is_greedy_decoding(tuned, tok):
    budget = SearchBudget(beam_width=1, expand_top=1, max_new_tokens=24)
    task = Recording(GP, prune=False, accept_all=True)  # every completed candidate is a success
    res = verifier_guided_search(tuned, tok, task, PROBLEMS, budget=budget)
    for i, problem in enumerate(PROBLEMS):
        ids, logp = _manual_greedy(tuned, tok, problem.prompt, budget.max_new_tokens)
        assert ids[-1] == tok.eos_token_id  # the tuned model stops, so the comparison means something
        assert res.solution_P[i] == tok.decode(ids[:-1], skip_special_tokens=True)
        assert abs(float(res.logp_P[i]) - logp) < 1e-4
        assert int(res.candidates_verified_P[i]) == 1  # greedy completes exactly one candidate
    assert sorted(task.verified) == sorted(zip([p.id for p in PROBLEMS], res.solution_P, strict=True))


def test_verified_candidates_respect_the_partial_verifier(untrained):
    """Untrained model, wide expansion so candidates complete: with pruning every verified text has
    only feasible prefixes; without it (plain beam search), random dead ends get verified."""
    tok, model = untrained
    budget = SearchBudget(beam_width=8, expand_top=60, max_new_tokens=6)
    pruned = Recording(GP)
    res = verifier_guided_search(model, tok, pruned, PROBLEMS, budget=budget)
    assert len(pruned.verified) == int(res.candidates_verified_P.sum()) > 0
    by_id = {p.id: p for p in PROBLEMS}
    for problem, count in zip(PROBLEMS, res.candidates_verified_P.tolist(), strict=True):
        assert sum(pid == problem.id for pid, _ in pruned.verified) == count
    for pid, text in pruned.verified:
        assert all(GP.prefix_feasible(by_id[pid], text[:e]) for e in range(len(text) + 1)), text
    plain = Recording(GP, prune=False)
    verifier_guided_search(model, tok, plain, PROBLEMS, budget=budget)
    assert any(not GP.prefix_feasible(by_id[pid], text) for pid, text in plain.verified)


def test_model_mode_restored_and_position_limit(untrained):
    tok, model = untrained
    model.train()
    verifier_guided_search(model, tok, GP, PROBLEMS[:1], budget=SearchBudget(4, 4, 4))
    assert model.training
    model.eval()
    verifier_guided_search(model, tok, GP, PROBLEMS[:1], budget=SearchBudget(4, 4, 4))
    assert not model.training
    with pytest.raises(ValueError, match="max_position_embeddings"):
        verifier_guided_search(model, tok, GP, PROBLEMS[:1], budget=SearchBudget(max_new_tokens=90))


@pytest.mark.parametrize(
    "kwargs", [{"beam_width": 0}, {"expand_top": -1}, {"max_new_tokens": 0}, {"beam_width": 2.0}, {"expand_top": True}]
)
def test_bad_budgets_are_errors(kwargs):
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=f"SearchBudget.{name} must be an int >= 1"):
        SearchBudget(**kwargs)


def test_bad_arguments_are_errors(untrained):
    tok, model = untrained
    with pytest.raises(ValueError, match="max_batch_prompts"):
        verifier_guided_search(model, tok, GP, PROBLEMS, max_batch_prompts=0)
    with pytest.raises(TypeError, match="SearchBudget"):
        verifier_guided_search(model, tok, GP, PROBLEMS, budget={"beam_width": 4})
