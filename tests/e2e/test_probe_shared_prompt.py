"""The prefix-shared scorer (one prefill per prompt, its KV cache copied to the completions) equals
the plain teacher-forced pass on whole (prompt + completion) sequences, per sequence."""

import pytest
import torch

from reweightlab.data.encoding import encode_completions, encode_prompts
from reweightlab.models import load_model, load_tokenizer
from reweightlab.probe.likelihood import (
    _score_chunk_tree,
    completion_logprobs_shared_prompt,
    known_solution_stats,
    sequence_logprobs,
)
from reweightlab.tasks import GeneralPoints

TASK = GeneralPoints()

# Prompts of different lengths (1 to ~30 characters) and completions of different lengths,
# including "" (the sequence is EOS alone) and a prompt with no completions at all.
PROMPTS = ["Cards: 3 5 K 9. Target 24.\nA:", "x", "Q", "a longer prompt that pads the others:"]
COMPLETIONS = [
    ["(3+5)*K-9", "", "1", "9*3-5+K", "((3*5)+9)"],
    ["", "abc"],
    [],
    ["z", "a much longer completion!", "", "z"],
]


@pytest.fixture(scope="module")
def sharp(tiny_model_dir):
    """The tiny model with large random weights: a near-uniform model (the default init) would hide
    a wrong position or mask behind log-probs that barely depend on context."""
    tok, model = load_tokenizer(tiny_model_dir), load_model(tiny_model_dir)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" not in name:
                param.copy_(torch.randn(param.shape, generator=g) * 0.3)
    return tok, model.eval()


def _reference(model, tok, prompts, completions_per_prompt) -> torch.Tensor:
    flat_prompts = [p for p, cs in zip(prompts, completions_per_prompt, strict=True) for _ in cs]
    flat = [c for cs in completions_per_prompt for c in cs]
    return sequence_logprobs(model, tok, flat_prompts, flat)


@pytest.mark.parametrize("method", ["cache", "tree"])
@pytest.mark.parametrize("chunk", [1024, 3, 1])
def test_shared_prompt_scorer_equals_whole_sequences(sharp, chunk, method):
    tok, model = sharp
    want = _reference(model, tok, PROMPTS, COMPLETIONS)
    # the test can fail: the contexts matter (log-probs far from uniform and context dependent)
    assert want.std() > 1.0 and (want[0] - want[6]).abs() > 1e-2  # "" after two different prompts
    model.train()
    got = completion_logprobs_shared_prompt(
        model, tok, PROMPTS, COMPLETIONS, max_batch_sequences=chunk, method=method
    )
    assert model.training  # training mode restored
    model.eval()
    assert got.dtype == torch.float64 and got.shape == want.shape == (11,)
    torch.testing.assert_close(got, want, atol=1e-4, rtol=0)
    assert torch.isfinite(got).all() and torch.isclose(got[7], got[10])  # same prompt, same completion "z"


def test_shared_prompt_scorer_edge_cases(sharp):
    tok, model = sharp
    assert completion_logprobs_shared_prompt(model, tok, ["a", "b"], [[], []]).shape == (0,)
    only_eos = completion_logprobs_shared_prompt(model, tok, ["a", "bc"], [[""], [""]])
    torch.testing.assert_close(only_eos, _reference(model, tok, ["a", "bc"], [[""], [""]]), atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="completion lists"):
        completion_logprobs_shared_prompt(model, tok, ["a"], [["x"], ["y"]])
    with pytest.raises(ValueError, match="max_batch_sequences"):
        completion_logprobs_shared_prompt(model, tok, ["a"], [["x"]], max_batch_sequences=0)


def test_known_solution_stats_from_one_pass(sharp):
    tok, model = sharp
    problems = TASK.problems("id", "train", 3, seed=1) + TASK.problems("ood", "test", 2, seed=1)

    class Partial:
        """GeneralPoints with a hand whose solution list is empty."""

        name = "partial"

        def solutions(self, problem):
            return [] if problem is problems[1] else TASK.solutions(problem)

    stats = known_solution_stats(model, tok, Partial(), problems, max_batch_sequences=7)
    n_sol = [len(Partial().solutions(p)) for p in problems]
    assert stats.n_solutions_P.tolist() == n_sol and stats.n_solutions_P.dtype == torch.long
    assert stats.p_known_P.dtype == stats.max_logp_P.dtype == torch.float64
    assert stats.p_known_P[1] == 0 and stats.max_logp_P[1] == -torch.inf
    for i, prob in enumerate(problems):
        if n_sol[i] == 0:
            continue
        lp = sequence_logprobs(model, tok, [prob.prompt] * n_sol[i], TASK.solutions(prob)).double()
        # log p_known and the max: each per-sequence term is within 1e-4, so their logsumexp is too
        torch.testing.assert_close(stats.p_known_P[i].log(), torch.logsumexp(lp, 0), atol=1e-4, rtol=0)
        torch.testing.assert_close(stats.max_logp_P[i], lp.max(), atol=1e-4, rtol=0)
    # chunk invariance: the default chunk (every solution at once) gives the same answer
    whole = known_solution_stats(model, tok, Partial(), problems)
    assert whole.n_solutions_P.tolist() == n_sol
    torch.testing.assert_close(whole.p_known_P, stats.p_known_P, rtol=1e-4, atol=0)


@pytest.mark.parametrize("width", [1, 12, 40, 256])
def test_prefix_tree_rows_equal_whole_sequences(sharp, width):
    """GeneralPoints solutions share long prefixes; narrow rows force a prompt's tree to be split
    over rows (its prompt re-run) and wide ones pack several prompts into one row."""
    tok, model = sharp
    problems = TASK.problems("id", "train", 3, seed=2)
    sols = [TASK.solutions(p)[:12] for p in problems]
    prompt_ids = encode_prompts(tok, [p.prompt for p in problems])
    completion_ids = encode_completions(tok, [y for s in sols for y in s])
    prompt_of_B = torch.repeat_interleave(torch.arange(3), torch.tensor([len(s) for s in sols]))
    with torch.inference_mode():
        got = _score_chunk_tree(model, prompt_ids, completion_ids, prompt_of_B, tok.pad_token_id, "cpu", width)
    want = _reference(model, tok, [p.prompt for p in problems], sols)
    torch.testing.assert_close(got, want, atol=1e-4, rtol=0)
