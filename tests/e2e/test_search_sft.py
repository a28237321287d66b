"""search_sft (expert iteration on search): its data are verified successes only, sampled or searched."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from reweightlab.algos.method import NothingToTrainError
from reweightlab.cli import main
from reweightlab.data.encoding import encode_completions, encode_prompts
from reweightlab.data.store import SequenceStore, microbatches
from reweightlab.models import EmbeddedSpec, build_char_tokenizer, build_embedded_model
from reweightlab.models.forward import forward_logits_logp
from reweightlab.rollout.search import SearchBudget
from reweightlab.tasks import get_task
from reweightlab.train.search_data import search_augmented
from reweightlab.train.step import make_optimizer

GP = get_task("generalpoints")
PROBLEMS = GP.problems("id", "train", 3, seed=0)


@pytest.fixture(scope="module")
def tok():
    return build_char_tokenizer()


@pytest.fixture(scope="module")
def tuned(tok):
    """A small model that favours the solver's solutions of PROBLEMS (so the search finds them)."""
    from reweightlab.data.encoding import solver_demonstrations

    model = build_embedded_model(tok, EmbeddedSpec(hidden_size=32, num_layers=2, num_heads=4, intermediate_size=64,
                                                   max_positions=96), seed=0)
    mbs = microbatches(solver_demonstrations(GP, PROBLEMS, tok, per_prompt=4, seed=0), 64)
    opt = make_optimizer(model, lr=1e-2, weight_decay=0.0)
    for _ in range(40):
        for mb in mbs:
            _, logp = forward_logits_logp(model, mb)
            (-(logp * mb.mask_BT).sum() / mb.mask_BT.sum()).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return model.eval()


def _sampled(tok, completions):
    """One 'sample' per problem: the first a solver solution, the others wrong."""
    verdicts = [GP.verify(p, c) for p, c in zip(PROBLEMS, completions, strict=True)]
    return SequenceStore.from_lists(
        encode_prompts(tok, [p.prompt for p in PROBLEMS]), encode_completions(tok, completions), tok.pad_token_id,
        reward_N=[v.score for v in verdicts], success_N=[float(v.success) for v in verdicts])


def _setup(model, tok, budget=None):
    return SimpleNamespace(cfg=SimpleNamespace(search=budget or SearchBudget(beam_width=8, expand_top=4)),
                           policy=model, tokenizer=tok, task=GP, device="cpu")


def _texts(store, tok):
    rows = [store.ids_NL[i, int(store.prompt_len_N[i]):int(store.total_len_N[i])].tolist() for i in range(len(store))]
    return tok.batch_decode(rows, skip_special_tokens=True)


def test_keeps_sampled_successes_and_adds_only_verified_search_successes(tuned, tok):
    first = GP.solutions(PROBLEMS[0])[0]
    logs = []
    store = search_augmented(_setup(tuned, tok), _sampled(tok, [first, "1+1", "2*2"]), PROBLEMS, logs.append)
    texts = _texts(store, tok)
    assert texts[0] == first and len(texts) == 3  # the sampled success, then what the search found
    prompts = tok.batch_decode([store.ids_NL[i, :int(store.prompt_len_N[i])].tolist() for i in range(len(store))],
                               skip_special_tokens=True)
    by_prompt = {p.prompt: p for p in PROBLEMS}
    assert all(GP.verify(by_prompt[p], t).success for p, t in zip(prompts, texts, strict=True))
    assert "1+1" not in texts and "2*2" not in texts  # failed samples never enter the data
    assert store.success_N.tolist() == [1.0] * 3 and "on the 2 others found 2" in logs[0]


def test_no_success_anywhere_is_a_clear_error(tok):
    untrained = build_embedded_model(tok, EmbeddedSpec(hidden_size=16, num_layers=1, num_heads=2,
                                                       intermediate_size=32, max_positions=96), seed=1)
    with pytest.raises(NothingToTrainError, match="neither sampling nor the search found a verified success"):
        search_augmented(_setup(untrained, tok, SearchBudget(beam_width=1, expand_top=1, max_new_tokens=3)),
                         _sampled(tok, ["1+1", "2*2", "3-3"]), PROBLEMS, lambda m: None)


def test_search_sft_trains_end_to_end_and_logs_its_budget(tmp_path, tuned, tok, capsys):
    model_dir = tmp_path / "tuned"
    tuned.save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    run = tmp_path / "run"
    code = main(["train", "method=search_sft", f"model.path={model_dir}", f"output_dir={run}", "data.num_prompts=3",
                 "data.base_samples_per_prompt=2", "search.beam_width=8", "search.expand_top=4", "optim.steps=2",
                 "optim.sequences_per_step=4", "--no-progress"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "[search_sft] sampling solved" in out.out and "search (beam 8 x top 4" in out.out
    assert (run / "final" / "model.safetensors").is_file()


def test_a_zero_search_budget_is_one_line(tmp_path, capsys):
    code = main(["train", "method=search_sft", "search.beam_width=0", f"output_dir={tmp_path / 'r'}"])
    assert code == 2 and "SearchBudget.beam_width must be an int >= 1, got 0" in capsys.readouterr().err
