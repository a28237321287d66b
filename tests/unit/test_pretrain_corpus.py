from reweightlab.recipes.pretrain import PretrainSpec, build_corpus
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
    scores = [gp.verify(by_prompt[p], c).score for p, c in zip(prompts, completions, strict=True)]
    correct = sum(s == 5.0 for s in scores) / len(scores)
    # correct completions are exactly the 'correct' kind (a misread or wrong-value one never scores +5)
    assert correct == desc["kinds"]["correct"] / 1000
    assert abs(correct - spec.correct_fraction) < 0.05
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
