"""GeneralPoints: cards and rules, prompts, dealing and splits, and the verifier's reward table."""

import itertools
import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reweightlab.tasks import Problem, Verdict
from reweightlab.tasks.generalpoints import (
    FACES,
    OTHER_RULE,
    RANKS,
    RULE_TEXT,
    GeneralPoints,
    card_values,
    cards_of,
    evaluate,
    hand_split,
    random_expression,
    render_prompt,
    solve,
    target_of,
    value_split,
    values_of,
    verify_expression,
)

SCORES = {5.0, -1.0, -2.0, -3.0}

# ---------------------------------------------------------------- cards, rules, prompts


def test_card_values_under_each_rule():
    assert card_values(("A", "8", "K", "5"), "id") == (1, 8, 10, 5)
    assert card_values(("A", "8", "K", "5"), "ood") == (1, 8, 13, 5)
    assert card_values(("J", "Q", "K", "10"), "id") == (10, 10, 10, 10)
    assert card_values(("J", "Q", "K", "10"), "ood") == (11, 12, 13, 10)
    assert card_values(RANKS, "ood") == tuple(range(1, 14))
    assert OTHER_RULE == {"id": "ood", "ood": "id"}
    with pytest.raises(ValueError):
        card_values(("1", "2", "3", "4"), "id")  # an ace is 'A'
    with pytest.raises(ValueError):
        card_values(("A", "2", "3", "4"), "weird")


def test_prompt_format():
    assert render_prompt(("A", "8", "K", "5"), "id") == "A 8 K 5|JQK=10|24:"
    assert render_prompt(("A", "8", "K", "5"), "ood") == "A 8 K 5|J=11 Q=12 K=13|24:"
    assert render_prompt(("10", "2", "3", "4"), "id", 10) == "10 2 3 4|JQK=10|10:"
    assert RULE_TEXT["id"] in render_prompt(("A",) * 4, "id")


# ---------------------------------------------------------------- dealing and splits


SIZES = {"train": 200, "test": 100}


@pytest.fixture(scope="module")
def dealt():  # noqa: D103
    gp = GeneralPoints()
    return {(v, s): gp.problems(v, s, SIZES[s], seed=7) for v in ("id", "ood") for s in ("train", "test")}


def test_dealing_is_deterministic_and_prefix_stable(dealt):
    gp = GeneralPoints()
    again = gp.problems("id", "train", 200, seed=7)
    assert again == dealt[("id", "train")]
    assert gp.problems("id", "train", 50, seed=7) == again[:50]
    assert gp.problems("id", "train", 50, seed=8) != again[:50]
    assert gp.problems("ood", "test", 0, seed=7) == []


def test_dealt_problems_are_well_formed(dealt):
    for (variant, split), probs in dealt.items():
        assert len(probs) == SIZES[split]
        assert len({cards_of(p) for p in probs}) == SIZES[split]  # distinct hands as dealt
        for i, p in enumerate(probs):
            assert isinstance(p, Problem)
            assert p.id == f"gp-{variant}-{split}-7-{i}"
            assert (p.variant, p.split, target_of(p)) == (variant, split, 24)
            assert values_of(p) == card_values(cards_of(p), variant)
            assert p.prompt == render_prompt(cards_of(p), variant, 24)
            assert p.prompt.isascii()
            assert len(cards_of(p)) == 4 and max(Counter(cards_of(p)).values()) <= 4
            assert hand_split(cards_of(p), variant) == split == value_split(values_of(p))


def test_every_dealt_hand_is_solvable(dealt):
    gp = GeneralPoints()
    for probs in dealt.values():
        for p in probs[:30]:  # solve() is the slow exhaustive check; a sample per split suffices
            sols = gp.solutions(p)
            assert sols, p
            assert gp.verify(p, sols[0]).success


def test_rule_specific_hands(dealt):
    for split in ("train", "test"):
        for p in dealt[("ood", split)]:
            assert FACES & set(cards_of(p)), p
            assert all(1 <= v <= 13 for v in values_of(p))
        for p in dealt[("id", split)]:
            assert all(1 <= v <= 10 for v in values_of(p))
    # The id rule does deal face cards (as 10s): otherwise 'JQK=10' would never matter.
    assert any(FACES & set(cards_of(p)) for p in dealt[("id", "train")])


def test_train_and_test_are_disjoint(dealt):
    def multisets(split, key):
        return {tuple(sorted(key(p))) for v in ("id", "ood") for p in dealt[(v, split)]}

    train_values = multisets("train", values_of)
    test_values = multisets("test", values_of)
    assert train_values and test_values and not train_values & test_values
    # test hands are distinct as value multisets (no two test prompts share their solutions)
    for v in ("id", "ood"):
        assert len({tuple(sorted(values_of(p))) for p in dealt[(v, "test")]}) == len(dealt[(v, "test")])


def test_test_split_is_bounded_by_its_value_multisets():
    gp = GeneralPoints()
    with pytest.raises(ValueError, match="solvable id/test distinct value multisets"):
        gp.problems("id", "test", 126, 0)  # 125 solvable ID test multisets exist at target 24


def test_about_a_fifth_of_hands_are_test():
    multisets = list(itertools.combinations_with_replacement(range(1, 14), 4))
    share = sum(value_split(v) == "test" for v in multisets) / len(multisets)
    assert 0.1 < share < 0.3
    assert hand_split(("K", "5", "A", "8"), "ood") == hand_split(("A", "8", "K", "5"), "ood")
    # under the ID rule J, Q, K and 10 are one value: the hands share a split
    same = value_split((1, 5, 8, 10))
    assert hand_split(("J", "5", "A", "8"), "id") == hand_split(("10", "8", "K", "5"), "id") == same


def test_problems_rejects_bad_arguments():
    gp = GeneralPoints()
    with pytest.raises(ValueError):
        gp.problems("both", "train", 1, 0)
    with pytest.raises(ValueError):
        gp.problems("id", "valid", 1, 0)
    with pytest.raises(ValueError):
        gp.problems("id", "train", -1, 0)
    with pytest.raises(TypeError):
        GeneralPoints(target=24.0)


def test_other_targets():
    gp = GeneralPoints(target=10)
    probs = gp.problems("ood", "train", 20, seed=0)
    for p in probs:
        assert p.prompt.endswith("|10:") and target_of(p) == 10
        assert all(evaluate(s) == 10 for s in gp.solutions(p))


def test_a_hand_lives_in_extra_normalised_and_hashable():
    """Problem has no card fields: the hand sits in ``extra``, as tuples, so problems stay hashable
    and equal however the cards were passed."""
    gp = GeneralPoints()
    a, b = gp.problem(["A", "8", "K", "5"], "ood"), gp.problem(("A", "8", "K", "5"), "ood")
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert cards_of(a) == ("A", "8", "K", "5") and values_of(a) == (1, 8, 13, 5) and target_of(a) == 24
    assert a.get("cards") == cards_of(a) and a.get("values") == values_of(a)
    assert gp.problem(("A", "8", "K", "5"), "id") != a  # the other rule: other values, another problem
    foreign = Problem("x", "x:", "id", "train")  # read as the old typed fields' defaults
    assert (cards_of(foreign), values_of(foreign), target_of(foreign)) == ((), (), 0)


# ---------------------------------------------------------------- verifier


def _hand(cards, variant="id"):
    return GeneralPoints().problem(cards, variant)


@pytest.mark.parametrize(
    "completion, score, reason",
    [
        ("8/(3-8/3)", 5, "correct"),
        ("  8 / ( 3 - 8 / 3 )\n", 5, "correct"),  # spaces anywhere, whitespace around
        ("(8/(3-(8/3)))", 5, "correct"),  # redundant parentheses are fine
        ("8+8+3+3", -1, "value 22, not 24"),
        ("8/3+8/3", -1, "value 16/3, not 24"),
        ("8/(3-3)*8", -1, "division by zero"),
        ("8*3", -2, "uses [8, 3] but the cards are [3, 8, 3, 8]"),
        ("8*3+8-8+3-3", -2, "uses [8, 3, 8, 8, 3, 3]"),
        ("24", -2, "uses [24]"),
        ("8/(3-8/4)", -2, "uses [8, 3, 8, 4]"),
        ("8/(3-3)*9", -2, "uses"),  # wrong numbers outrank the division by zero
        ("1000+3+8+8", -2, "uses 1000, which is not on the cards"),
        ("9" * 200, -2, "uses 999999999999..., which is not on the cards"),
        ("9" * 5000, -3, "illegal: longer than 256 characters"),
        ("8/(3-8/3", -3, 'illegal: unclosed "(" at 2'),
        ("8/(3-8/3))", -3, 'illegal: unmatched ")" at 9'),
        ("8 8 3 3", -3, "illegal: unexpected number at 2"),
        ("\u0668/(3-8/3)", -3, "illegal: unexpected character '\\u0668' at 0"),
        ("", -3, "illegal: empty expression"),
        ("8/(3-8/3)=24", -3, "illegal: unexpected character '='"),
    ],
)
def test_reward_table(completion, score, reason):
    v = GeneralPoints().verify(_hand(("3", "8", "3", "8")), completion)
    assert isinstance(v, Verdict)
    assert v.score == score
    assert v.success == (score == 5)
    assert reason in v.reason


def test_reason_lists_card_values_under_the_rule():
    v = verify_expression("10*8/5", card_values(("A", "8", "K", "5"), "id"), 24)
    assert (v.score, v.reason) == (-2, "uses [10, 8, 5] but the cards are [1, 8, 10, 5]")
    ood = _hand(("A", "8", "K", "5"), "ood")
    assert GeneralPoints().verify(ood, "(13-8)*5-1").score == 5
    assert GeneralPoints().verify(ood, "(10-8)*5+1").score == -2  # K is 13 under 'ood'


def test_non_string_completion_is_illegal():
    v = GeneralPoints().verify(_hand(("3", "8", "3", "8")), None)
    assert v.score == -3 and not v.success


_NASTY = st.one_of(
    st.text(max_size=80),
    st.text(alphabet="0123456789+-*/() \t\n", max_size=60),
    st.text(alphabet="38+-*/()", max_size=20),
    st.builds(lambda d, body: "(" * d + body + ")" * d, st.integers(0, 20_000), st.text("38/-", max_size=9)),
    st.builds(lambda d: "9" * d, st.integers(0, 20_000)),
    st.sampled_from(["8/0", "3/(8-8)", "(3-3)/(8-8)", "0/0", "\u0663\u0663", "\uff18"]),
)


@settings(max_examples=400, deadline=None)
@given(completion=_NASTY)
def test_verify_never_raises_and_scores_from_the_table(completion):
    gp = GeneralPoints()
    for p in (_hand(("3", "8", "3", "8")), _hand(("A", "J", "Q", "K"), "ood")):
        v = gp.verify(p, completion)
        assert v.score in SCORES
        assert v.success == (v.score == gp.success_score)
        assert isinstance(v.reason, str) and v.reason


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32), variant=st.sampled_from(["id", "ood"]))
def test_random_expressions_score_minus_one_or_five(seed, variant):
    rng = random.Random(seed)
    cards = tuple(rng.choice(RANKS) for _ in range(4))
    p = _hand(cards, variant)
    e = random_expression(values_of(p), rng)
    v = GeneralPoints().verify(p, e)
    assert v.score == (5 if evaluate(e) == 24 else -1)
    assert (e in solve(values_of(p), 24)) == v.success


def test_feedback_says_what_the_verifier_found_in_a_few_characters():
    from reweightlab.tasks import GeneralPoints

    gp = GeneralPoints()
    hand = gp.problem(("A", "8", "K", "5"), "id")  # values 1 8 10 5
    cases = {
        "8*3": "?used 8 3:",                      # numbers not the cards
        "(10-8)*(5+1+1)": "?used 10 8 5 1 1:",
        "(10-8)*(5+1)": "?got 12:",
        "1*8*10*5*1*1*1*1": "?used 1 8 10 5 1 1 ..:",  # at most six numbers shown
        "123456+1": "?used 123.. 1:",             # an over-long literal is cut
        "1+8+10+5": "?correct:",
        "10+8+5*1": "?got 23:",                   # the value, not the target
        "))": "?illegal:",
    }
    for completion, note in cases.items():
        verdict = gp.verify(hand, completion)
        assert gp.feedback(hand, completion, verdict) == note, completion
        assert verdict.success == (note == "?correct:")
    assert gp.verify(hand, "10+8+5*1").reason == "value 23, not 24"  # the long reason is unchanged
    assert gp.feedback(hand, "3/2", gp.verify(hand, "3/2")) == "?used 3 2:"
    pair = gp.problem(("5", "5", "8", "A"), "id")
    assert gp.feedback(pair, "(8+1)/(5-5)", gp.verify(pair, "(8+1)/(5-5)")) == "?div0:"
    ood = gp.problem(("A", "8", "K", "5"), "ood")  # K = 13: a misread of K as 10 uses 10
    assert gp.feedback(ood, "1+8+10+5", gp.verify(ood, "1+8+10+5")) == "?used 1 8 10 5:"


def test_failure_kind_names_the_other_rule_misread_apart_from_other_failures():
    from reweightlab.tasks import GeneralPoints

    gp = GeneralPoints()
    ood = gp.problem(("A", "8", "K", "5"), "ood")  # values 1 8 13 5; under the usual rule K is 10
    idr = gp.problem(("A", "8", "K", "5"), "id")   # values 1 8 10 5; under the changed rule K is 13
    plain = gp.problem(("A", "8", "3", "5"), "ood")  # no face card: no rule to misread
    cases = [
        (ood, "1+8+10+5", "other_rule"), (ood, "(10-8)*(5+1)", "other_rule"),   # K read as 10
        (ood, "13+8+5*1", "wrong_value"), (ood, "8*3", "wrong_numbers"), (ood, "))", "illegal"),
        (ood, "1+8+10+5+1", "wrong_numbers"),                                   # one number too many
        (idr, "13+8+5-1*2", "wrong_numbers"), (idr, "(13-8)*5-1", "other_rule"),  # K read as 13
        (idr, "10+8+5*1", "wrong_value"),
        (plain, "1+8+3+5+0", "wrong_numbers"), (plain, "1+8+3+5", "wrong_value"),
    ]
    for problem, completion, kind in cases:
        verdict = gp.verify(problem, completion)
        assert not verdict.success
        assert gp.failure_kind(problem, completion, verdict) == kind, (problem.prompt, completion)
