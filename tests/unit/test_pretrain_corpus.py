import torch

from reweightlab.models.embedded import build_char_tokenizer
from reweightlab.recipes.pretrain import PretrainSpec, build_corpus, encode_corpus
from reweightlab.tasks import get_task


def test_corpus_mix_matches_its_description():
    spec = PretrainSpec(steps=10, sequences_per_step=100, pool_hands=200)
    prompts, completions, desc = build_corpus(spec, progress=False)
    assert len(prompts) == len(completions) == 1000
    gp = get_task("generalpoints")
    by_prompt = {}
    for variant in ("id", "ood"):
        for p in gp.problems(variant, "train", 200, spec.seed):
            by_prompt[p.prompt] = p
    plain = [(p, c[0][0]) for p, c in zip(prompts, completions, strict=True) if len(c) == 1]
    episodes = [(p, c) for p, c in zip(prompts, completions, strict=True) if len(c) > 1]
    assert len(plain) + len(episodes) == 1000
    assert abs(len(episodes) / 1000 - spec.revision_fraction) < 0.04
    assert desc["kinds"]["revision_1"] + desc["kinds"]["revision_2"] == len(episodes)
    assert abs(desc["kinds"]["revision_2"] / len(episodes) - spec.second_revision_fraction) < 0.1
    scores = [gp.verify(by_prompt[p], c).score for p, c in plain]
    correct = sum(s == 5.0 for s in scores) / len(scores)
    # correct completions are exactly the 'correct' kind (a misread or wrong-value one never scores +5)
    assert correct == desc["kinds"]["correct"] / len(plain)
    assert abs(correct - spec.correct_fraction) < 0.05
    for p, parts in episodes:  # wrong attempt, its own feedback, ..., then a solution (the only loss)
        prob = by_prompt[p]
        assert [loss for _, loss in parts] == [False] * (len(parts) - 1) + [True] and len(parts) in (3, 5)
        for attempt, note in zip(parts[:-1:2], parts[1:-1:2], strict=True):
            verdict = gp.verify(prob, attempt[0])
            assert not verdict.success and note[0] == gp.feedback(prob, attempt[0], verdict)
        assert gp.verify(prob, parts[-1][0]).success
    assert desc["kinds"]["misread"] > 0 and desc["kinds"]["wrong_value"] > 0
    assert all(s in (5.0, -1.0, -2.0) for s in scores)  # always legal: the base learns the format
    ood_share = sum("J=11" in p for p in prompts) / len(prompts)
    assert abs(ood_share - (1 - spec.id_fraction)) < 0.05


def test_no_test_value_multiset_reaches_the_corpus():
    """A test hand shares its value multiset (hence its solution strings) with no pretraining hand."""
    from reweightlab.tasks.generalpoints import card_values, value_split, values_of

    spec = PretrainSpec(steps=10, sequences_per_step=100, pool_hands=300)
    prompts, _, _ = build_corpus(spec, progress=False)
    gp = get_task("generalpoints")
    test = {tuple(sorted(values_of(p))) for v in ("id", "ood") for p in gp.problems(v, "test", 100, 0)}
    corpus = set()
    for prompt in prompts:
        cards, rule_text, _ = prompt.split("|")
        rule = "ood" if "J=11" in rule_text else "id"
        corpus.add(tuple(sorted(card_values(cards.split(), rule))))
    assert len(corpus) > 100 and len(test) == 200
    assert not corpus & test
    assert all(value_split(v) == "train" for v in corpus)


def test_encoded_corpus_puts_loss_on_the_corrected_attempt_only():
    spec = PretrainSpec(steps=2, sequences_per_step=50, pool_hands=100, revision_fraction=0.5)
    prompts, completions, _ = build_corpus(spec, progress=False)
    tok = build_char_tokenizer()
    store = encode_corpus(tok, prompts, completions)
    mask = store.target_mask()
    for n, parts in enumerate(completions):
        ids = store.ids_NL[n, : store.total_len_N[n]].tolist()
        text = tok.decode(ids)
        # attempts end with EOS, feedback does not
        expected = "<bos>" + prompts[n] + "".join(t + ("" if t.startswith("?") else "<eos>") for t, _ in parts)
        assert text == expected
        loss_text = "".join(t + "<eos>" for t, loss in parts if loss)
        predicted = [ids[t + 1] for t in torch.nonzero(mask[n]).flatten().tolist()]
        assert tok.decode(predicted) == loss_text
