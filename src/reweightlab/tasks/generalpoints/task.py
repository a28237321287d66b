"""GeneralPoints (Chu et al., "SFT Memorizes, RL Generalizes", arXiv 2501.17161).

Four cards; write an expression that uses each card's number exactly once with ``+ - * / ( )`` and
equals the target. Rule 'id': J, Q, K count as 10. Rule 'ood': J=11, Q=12, K=13 and every hand holds
a face card. The variant of a problem is its rule, and the rule is stated in the prompt.

Two defects of the reference code are deliberately not copied: it scores with float ``eval`` (so
``8/(3-8/3)`` misses 24) and counts a space as illegal. Here arithmetic is exact (``arith``) and
whitespace is allowed anywhere.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Sequence

from reweightlab.tasks.arith import (
    MAX_EXPR_CHARS,
    WHITESPACE,
    IllegalExpression,
    canonical,
    evaluate,
    evaluate_rpn,
    is_literal,
    parse,
    random_expression,
    solvable,
    solve,
)
from reweightlab.tasks.base import SPLITS, Problem, Verdict

__all__ = [
    "FACES",
    "OTHER_RULE",
    "RANKS",
    "RULE_TEXT",
    "GeneralPoints",
    "canonical",
    "card_values",
    "evaluate",
    "expression_prefix_feasible",
    "hand_split",
    "value_split",
    "random_expression",
    "render_prompt",
    "solvable",
    "solve",
    "verify_expression",
]

RANKS = ("A", "2", "3", "4", "5", "6", "7", "8", "9", "10", "J", "Q", "K")
FACES = frozenset({"J", "Q", "K"})
RULES = ("id", "ood")
OTHER_RULE = {"id": "ood", "ood": "id"}
# The rule statement inside the prompt; kept short for the embedded character-level model.
RULE_TEXT = {"id": "JQK=10", "ood": "J=11 Q=12 K=13"}
_FACE_VALUES = {"id": {"J": 10, "Q": 10, "K": 10}, "ood": {"J": 11, "Q": 12, "K": 13}}

# The paper's reward table.
REWARD_CORRECT = 5.0
REWARD_WRONG_VALUE = -1.0
REWARD_WRONG_NUMBERS = -2.0
REWARD_ILLEGAL = -3.0

# A card's number has at most 2 digits; a literal of more than 3 digits cannot be a card, so the
# verifier never builds its integer.
MAX_LITERAL_DIGITS = 3
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


def verify_expression(completion: str, values: Sequence[int], target: int) -> Verdict:
    """Score ``completion`` against the card values (paper's table). Never raises.

    +5 legal, each value used exactly once, equals target; -1 the same but another value (or a
    division by zero); -2 legal but the numbers are not the cards, each once; -3 illegal.
    """
    try:
        rpn = parse(completion)
    except IllegalExpression as err:
        return Verdict(REWARD_ILLEGAL, False, f"illegal: {err}")
    literals = [tok for tok in rpn if is_literal(tok)]
    too_long = [tok for tok in literals if len(tok) > MAX_LITERAL_DIGITS]
    if too_long:
        shown = too_long[0] if len(too_long[0]) <= 12 else too_long[0][:12] + "..."
        return Verdict(REWARD_WRONG_NUMBERS, False, f"uses {shown}, which is not on the cards")
    used = [int(tok) for tok in literals]
    if sorted(used) != sorted(values):
        return Verdict(REWARD_WRONG_NUMBERS, False, f"uses {used} but the cards are {list(values)}")
    try:
        value = evaluate_rpn(rpn)
    except ZeroDivisionError:
        return Verdict(REWARD_WRONG_VALUE, False, "division by zero")
    if value != target:
        return Verdict(REWARD_WRONG_VALUE, False, f"value {value}, not {target}")
    return Verdict(REWARD_CORRECT, True, "correct")


_DIGIT_CHARS = frozenset("0123456789")
_WHITESPACE_CHARS = frozenset(WHITESPACE)


def expression_prefix_feasible(prefix: str, values: Sequence[int], target: int) -> bool:
    """False only if no string starting with ``prefix`` can verify as a success (+5); cheap, exact.

    Replays ``arith.parse``'s grammar on the prefix (so an illegal character, an operator or ')'
    where an operand must come, a number right after an operand, or a ')' with no open '(' ends it),
    and spends the cards as a multiset on each completed literal (a maximal digit run followed by a
    non-digit; '08' counts as 8, as in ``verify_expression``). The trailing digit run may still grow,
    so it only has to be the start of some remaining card's literal. Once every card is spent, what
    can follow is only whitespace and the ')' that close open groups, so the value is fixed and must
    equal the target. Used by the probe's verifier-guided search to prune its beam.
    """
    if len(prefix.strip(WHITESPACE)) > MAX_EXPR_CHARS:
        return False
    remaining = Counter(values)
    depth, expect_operand, i, n = 0, True, 0, len(prefix)
    while i < n:
        ch = prefix[i]
        if ch in _DIGIT_CHARS:
            if not expect_operand:
                return False
            j = i
            while j < n and prefix[j] in _DIGIT_CHARS:
                j += 1
            if j == n:  # the literal may still grow
                return _open_literal_feasible(prefix, prefix[i:], remaining, depth, target)
            literal = prefix[i:j]
            if len(literal) > MAX_LITERAL_DIGITS or remaining[int(literal)] == 0:
                return False
            remaining[int(literal)] -= 1
            i, expect_operand = j, False
            continue
        if ch == "(" and expect_operand:
            depth += 1
        elif ch == ")" and not expect_operand and depth > 0:
            depth -= 1
        elif ch in "+-*/" and not expect_operand:
            expect_operand = True
        elif ch not in _WHITESPACE_CHARS:
            return False
        i += 1
    if remaining.total() == 0:
        # An operand is still due but no card is left; or the expression is complete up to ')'s.
        return not expect_operand and _closed_value_is(prefix, depth, target)
    return True


def _open_literal_feasible(prefix: str, run: str, remaining: Counter, depth: int, target: int) -> bool:
    """Whether the trailing digit ``run`` can grow into a remaining card's literal (leading zeros
    allowed up to ``MAX_LITERAL_DIGITS`` digits), and, if it already is the last card, whether the
    value that the expression is then bound to equals the target."""
    if len(run) > MAX_LITERAL_DIGITS:
        return False
    stripped = run.lstrip("0")
    possible = [
        v for v, count in remaining.items()
        if count > 0 and str(v).startswith(stripped) and len(run) - len(stripped) + len(str(v)) <= MAX_LITERAL_DIGITS
    ]
    if stripped == "" and 0 in remaining and remaining[0] > 0:
        possible.append(0)  # a run of zeros is already the literal 0
    if not possible:
        return False
    # If the run already reads as the only card left, more digits would change its value (except
    # zeros after a zero run, which keep it 0), so the expression's value is fixed from here.
    if remaining.total() == 1 and int(run) in remaining and remaining[int(run)] > 0:
        return _closed_value_is(prefix, depth, target)
    return True


def _closed_value_is(prefix: str, depth: int, target: int) -> bool:
    """The value of ``prefix`` once its ``depth`` open groups are closed equals ``target``."""
    value = evaluate(prefix + ")" * depth)
    return value is not None and value == target


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
            cards=cards,
            values=card_values(cards, variant),
            target=self.target,
        )

    def verify(self, problem: Problem, completion: str) -> Verdict:
        """Score a completion for ``problem`` (see ``verify_expression``). Never raises."""
        return verify_expression(completion, problem.values, problem.target)

    def prefix_feasible(self, problem: Problem, prefix: str) -> bool:
        """False only if no completion starting with ``prefix`` can be a success (see
        ``expression_prefix_feasible``); the optional partial verifier of the Task protocol."""
        return expression_prefix_feasible(prefix, problem.values, problem.target)

    def solution_key(self, problem: Problem, completion: str) -> str:
        """The canonical form of a successful completion: ``3*8`` and ``(8*3)`` are one solution, and
        the key is the string ``solutions`` lists (the probe's support and diversity count these)."""
        return canonical(completion) or completion.strip()

    def solutions(self, problem: Problem) -> list[str]:
        """Every correct completion, canonical and sorted (``solve``)."""
        return solve(problem.values, problem.target)
