"""GeneralPoints (Chu et al., "SFT Memorizes, RL Generalizes", arXiv 2501.17161).

Four cards; write an expression that uses each card's number exactly once with ``+ - * / ( )`` and
equals the target. Rule 'id': J, Q, K count as 10. Rule 'ood': J=11, Q=12, K=13 and every hand holds
a face card. The variant of a problem is its rule, and the rule is stated in the prompt.

Two defects of the reference code are deliberately not copied: it scores with float ``eval`` (so
``8/(3-8/3)`` misses 24) and counts a space as illegal. Here arithmetic is exact (``arith``) and
whitespace is allowed anywhere.

A problem's hand lives in the generic ``Problem.extra`` (keys ``cards``, ``values``, ``target``), so
``Problem`` stays task-neutral; ``cards_of``, ``values_of`` and ``target_of`` read it back typed.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence

from reweightlab.tasks.base import SPLITS, Problem, Verdict
from reweightlab.tasks.generalpoints.arith import canonical, solvable, solve
from reweightlab.tasks.generalpoints.verify import (
    REWARD_CORRECT,
    REWARD_ILLEGAL,
    REWARD_WRONG_VALUE,
    expression_prefix_feasible,
    numbers_used,
    revision_feedback,
    verify_expression,
)

RANKS = ("A", "2", "3", "4", "5", "6", "7", "8", "9", "10", "J", "Q", "K")
FACES = frozenset({"J", "Q", "K"})
RULES = ("id", "ood")
OTHER_RULE = {"id": "ood", "ood": "id"}
# The rule statement inside the prompt; kept short for the embedded character-level model.
RULE_TEXT = {"id": "JQK=10", "ood": "J=11 Q=12 K=13"}
_FACE_VALUES = {"id": {"J": 10, "Q": 10, "K": 10}, "ood": {"J": 11, "Q": 12, "K": 13}}

TEST_FRACTION = 0.2
_DECK = tuple((rank, suit) for rank in RANKS for suit in range(4))  # 52 cards: at most 4 of a rank


def _check_rule(rule: str) -> None:
    if rule not in RULES:
        raise ValueError(f"unknown GeneralPoints rule {rule!r}; expected one of {RULES}")


def card_values(cards: Sequence[str], rule: str) -> tuple[int, ...]:
    """The number of each card under ``rule`` ('id' or 'ood'), in the cards' order."""
    _check_rule(rule)
    out = []
    for card in cards:
        if card not in RANKS:
            raise ValueError(f"unknown card {card!r}; expected one of {RANKS}")
        out.append(_FACE_VALUES[rule].get(card) or (1 if card == "A" else int(card)))
    return tuple(out)


def render_prompt(cards: Sequence[str], rule: str, target: int = 24) -> str:
    """E.g. ``'A 8 K 5|JQK=10|24:'``; the completion (an expression) follows the ':' directly."""
    _check_rule(rule)
    return f"{' '.join(cards)}|{RULE_TEXT[rule]}|{target}:"


def value_split(values: Sequence[int]) -> str:
    """'train' or 'test', from a stable hash of a hand's *value* multiset (order does not matter).

    Completions are written over values, so two hands with one value multiset share every solution
    string: a test hand must share its value multiset with no training hand (pretraining or
    post-training), or its "held-out" success could be recall. ID hands (values 1-10) and OOD hands
    (at least one of 11-13) never share a value multiset, so one hash splits both rules. About a fifth
    of the multisets are test: 125 solvable ID and 174 solvable OOD multisets at target 24.
    sha256, not hash(): Python's string hash changes from process to process.
    """
    key = ",".join(str(v) for v in sorted(values))
    digest = hashlib.sha256(f"generalpoints-values|{key}".encode()).digest()
    return "test" if int.from_bytes(digest[:8], "big") < TEST_FRACTION * 2**64 else "train"


def hand_split(cards: Sequence[str], rule: str) -> str:
    """The split of a hand under ``rule``: that of its value multiset (``value_split``)."""
    return value_split(card_values(cards, rule))


def _derive_seed(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:8], "big")


def _deal(rng: random.Random, rule: str) -> tuple[str, ...]:
    """Four cards in dealt order; under 'ood' redealt until the hand holds a face card."""
    while True:
        cards = tuple(rank for rank, _suit in rng.sample(_DECK, 4))
        if rule != "ood" or any(card in FACES for card in cards):
            return cards


class GeneralPoints:
    """The GeneralPoints task; ``target`` is configurable (24 in the paper)."""

    name = "generalpoints"
    variants = RULES
    success_score = REWARD_CORRECT
    # A canonical four-card answer is at most 15 characters ("(10+10)/(10-10)"); leave room for
    # spaces and non-canonical parentheses.
    max_completion_chars = 32

    def __init__(self, target: int = 24) -> None:
        if isinstance(target, bool) or not isinstance(target, int):
            raise TypeError(f"target must be an int, got {target!r}")
        self.target = target

    def __repr__(self) -> str:
        return f"GeneralPoints(target={self.target})"

    def problems(self, variant: str, split: str, n: int, seed: int) -> list[Problem]:
        """``n`` solvable hands of one rule and split, in dealing order.

        Training hands are distinct as dealt; test hands are distinct as value multisets, so no two
        test prompts share their solutions (prompts are the resampling unit of every interval) and
        a request for more test hands than there are solvable test multisets is an error.
        Deterministic in (variant, split, n, seed, target); a larger ``n`` extends a smaller one.
        """
        _check_rule(variant)
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"n must be a non-negative int, got {n!r}")
        rng = random.Random(_derive_seed("generalpoints", variant, split, seed))
        out: list[Problem] = []
        seen: set[tuple] = set()
        # Each try accepts with probability well above 1/10 until distinct hands run short; the cap
        # turns an impossible request (say, more distinct hands than exist) into an error, not a hang.
        max_deals = 10_000 + 1_000 * n
        for _ in range(max_deals):
            if len(out) == n:
                return out
            cards = _deal(rng, variant)
            values = card_values(cards, variant)
            key = tuple(sorted(values)) if split == "test" else cards
            if key in seen or value_split(values) != split:
                continue
            if not solvable(values, self.target):
                continue
            seen.add(key)
            out.append(self._problem(f"gp-{variant}-{split}-{seed}-{len(out)}", cards, variant, split))
        if len(out) == n:
            return out
        what = "distinct value multisets" if split == "test" else "distinct hands"
        raise ValueError(f"GeneralPoints has only {len(out)} solvable {variant}/{split} {what} at target "
                         f"{self.target} (found in {max_deals} deals); {n} were asked for")

    def problem(self, cards: Sequence[str], variant: str, id: str | None = None) -> Problem:
        """A problem for a given hand (its split from ``hand_split``); for tests and hand-made probes."""
        cards = tuple(cards)
        _check_rule(variant)
        card_values(cards, variant)  # validates the cards
        split = hand_split(cards, variant)
        return self._problem(id or f"gp-{variant}-{split}-{'-'.join(cards)}", cards, variant, split)

    def _problem(self, id: str, cards: tuple[str, ...], variant: str, split: str) -> Problem:
        return Problem(
            id=id,
            prompt=render_prompt(cards, variant, self.target),
            variant=variant,
            split=split,
            extra={"cards": cards, "values": card_values(cards, variant), "target": self.target},
        )

    def verify(self, problem: Problem, completion: str) -> Verdict:
        """Score a completion for ``problem`` (see ``verify_expression``). Never raises."""
        return verify_expression(completion, values_of(problem), target_of(problem))

    def prefix_feasible(self, problem: Problem, prefix: str) -> bool:
        """False only if no completion starting with ``prefix`` can be a success (see
        ``expression_prefix_feasible``); the Task protocol's optional partial verifier."""
        return expression_prefix_feasible(prefix, values_of(problem), target_of(problem))

    def feedback(self, problem: Problem, completion: str, verdict: Verdict) -> str:
        """The verifier's reason in a form the embedded model reads, e.g. ``'?used 1 8 11 5:'`` or
        ``'?got 23:'`` (``revision_feedback``): the Task protocol's optional feedback hook, which
        revision episodes need. ``verdict`` is this completion's; the text is recomputed from it."""
        return revision_feedback(completion, values_of(problem), target_of(problem))

    def failure_kind(self, problem: Problem, completion: str, verdict: Verdict) -> str:
        """How a failed completion failed: ``illegal`` (not an expression), ``wrong_value`` (the cards'
        numbers, each once, but not the target; division by zero included), ``other_rule`` (exactly
        the numbers the face cards have under the *other* rule: J, Q, K read as 10 under the changed
        rule, or as 11, 12, 13 under the usual one), or ``wrong_numbers`` (any other numbers)."""
        if verdict.score == REWARD_ILLEGAL:
            return "illegal"
        if verdict.score == REWARD_WRONG_VALUE:
            return "wrong_value"
        cards = cards_of(problem)
        used = numbers_used(completion)
        if used is not None and FACES & set(cards) and problem.variant in OTHER_RULE:
            if sorted(used) == sorted(card_values(cards, OTHER_RULE[problem.variant])):
                return "other_rule"
        return "wrong_numbers"

    def solution_key(self, problem: Problem, completion: str) -> str:
        """The canonical form of a successful completion: ``3*8`` and ``(8*3)`` are one solution, and
        the key is the string ``solutions`` lists (the probe's support and diversity count these)."""
        return canonical(completion) or completion.strip()

    def solutions(self, problem: Problem) -> list[str]:
        """Every correct completion, canonical and sorted (``solve``)."""
        return solve(values_of(problem), target_of(problem))


# A hand is stored in Problem.extra; the defaults are what the old typed fields held for a problem of
# another task, so reading a foreign problem behaves as it always did.
def cards_of(problem: Problem) -> tuple[str, ...]:
    """The cards of a GeneralPoints problem, in dealt order."""
    return problem.get("cards", ())


def values_of(problem: Problem) -> tuple[int, ...]:
    """The card numbers of a GeneralPoints problem under its rule, in the cards' order."""
    return problem.get("values", ())


def target_of(problem: Problem) -> int:
    """The number a GeneralPoints problem's expression must equal."""
    return problem.get("target", 0)
