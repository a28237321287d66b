"""GeneralPoints' partial verifier: never rejects a prefix of a success, and rejects dead ends."""

import random
import re

import pytest

from reweightlab.tasks import GeneralPoints, Task
from reweightlab.tasks.generalpoints import cards_of, expression_prefix_feasible, values_of

TASK = GeneralPoints()


def _hands():
    """~50 hands per rule from both splits (OOD values reach 11-13, so two-digit literals matter)."""
    out = []
    for rule in ("id", "ood"):
        out += TASK.problems(rule, "train", 35, seed=3) + TASK.problems(rule, "test", 15, seed=3)
    return out


def _variants(solution: str, rng: random.Random) -> list[str]:
    """Non-canonical spellings of a success: spaces between tokens, a zero-padded literal, an outer
    group. Each is checked to still verify, so this test cannot pass on strings that are not successes."""
    tokens = re.findall(r"\d+|\S", solution)
    spaced = " " + " ".join(tokens) + " "
    padded = re.sub(r"\d+", lambda m: m.group(0).zfill(3) if rng.random() < 0.5 else m.group(0), solution)
    return [solution, spaced, padded, f"( ({solution}) )"]


def test_never_rejects_a_prefix_of_a_success():
    rng = random.Random(0)
    checked = 0
    for problem in _hands():
        solutions = TASK.solutions(problem)
        assert solutions
        for solution in solutions:
            for text in _variants(solution, rng):
                assert TASK.verify(problem, text).success, (cards_of(problem), text)
                for end in range(len(text) + 1):
                    assert TASK.prefix_feasible(problem, text[:end]), (cards_of(problem), problem.variant, text[:end])
                    checked += 1
    assert checked > 10_000


def test_rejects_dead_ends():
    hand = TASK.problem(("A", "8", "K", "5"), "id")  # values 1, 8, 10, 5
    assert values_of(hand) == (1, 8, 10, 5)
    feasible = ["", " ", "(", "((", "1", "10", "(10-8", "0", "08", "008", "8*(", "(1+10/", "(1+10/5)*", "1+5+8+10"]
    for prefix in feasible:
        assert TASK.prefix_feasible(hand, prefix), prefix
    dead = {
        "7": "no 7 in the hand",
        ")": "closes nothing",
        "(1)+5)": "closes more than it opened",
        "+": "operator where an operand is due",
        "1 5": "number right after an operand",
        "1x": "illegal character",
        "2": "no card starts with 2",
        "100": "10 grown past any card",
        "000": "the literal 0, not a card",
        "0000": "longer than any card literal",
        "8+8": "8 used twice",
        "1+1+1+1+1": "more numbers than cards (and 1 twice)",
        "1+5+8+10+": "an operand is due but no card is left",
        "1+5+8+10)": "closes nothing",
        "(1+5+8)*10 ": "every card spent: the value is bound to 140",
        "(1+5)*(10-8": "the last literal is written: bound to 12 once closed",
        "(1+5)*(10-8)": "value 12",
    }
    for prefix, why in dead.items():
        assert not TASK.prefix_feasible(hand, prefix), (prefix, why)


def test_an_open_literal_binds_only_when_it_is_the_last_card():
    hand = TASK.problem(("A", "8", "K", "5"), "ood")  # values 1, 8, 13, 5; solution (13-8)*5-1
    assert values_of(hand) == (1, 8, 13, 5)
    assert TASK.prefix_feasible(hand, "(13-8)*5-1")
    assert not TASK.prefix_feasible(hand, "(13-8)*5+1")  # 26 whatever follows
    # '1' may still become 13 while both 1 and 13 are left: not bound, so not rejected by value
    assert TASK.prefix_feasible(hand, "8*5-1")
    assert not TASK.prefix_feasible(hand, "8*5-13-1")  # 26
    # the same rules through the module-level helper, with another target
    assert expression_prefix_feasible("8*5-13-1", (1, 8, 13, 5), 26)
    assert not expression_prefix_feasible("8*5-13-1", (1, 8, 13, 5), 24)


def test_length_cap_and_protocol():
    hand = TASK.problem(("A", "8", "K", "5"), "id")
    assert TASK.prefix_feasible(hand, "(" * 200)
    assert not TASK.prefix_feasible(hand, "(" * 300)  # parse rejects inputs over MAX_EXPR_CHARS
    assert isinstance(TASK, Task) and callable(TASK.prefix_feasible)


@pytest.mark.parametrize("rule", ["id", "ood"])
def test_prunes_most_random_strings(rule):
    """The check is useful, not only safe: most random strings over the legal alphabet die early."""
    rng = random.Random(1)
    hand = TASK.problems(rule, "test", 1, seed=0)[0]
    alphabet = "0123456789+-*/() "
    dead = sum(
        not TASK.prefix_feasible(hand, "".join(rng.choice(alphabet) for _ in range(6))) for _ in range(500)
    )
    assert dead > 400
