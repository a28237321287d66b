"""GeneralPoints' verifier and its partial form, the prefix check; both read ``arith``'s one grammar.

``verify_expression`` scores a whole completion with the paper's reward table. The prefix check
(``expression_prefix_feasible``) answers, for a completion still being written, whether any way of
finishing it can score +5: the probe's verifier-guided search prunes its beam with it. It walks the
prefix with ``arith.scan``, the tokenizer and grammar that ``arith.parse`` uses, so a grammar rule
is written once and the two cannot drift apart.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from reweightlab.tasks.base import Verdict
from reweightlab.tasks.generalpoints.arith import (
    IllegalExpression,
    evaluate,
    evaluate_rpn,
    is_literal,
    parse,
    scan,
)

# The paper's reward table.
REWARD_CORRECT = 5.0
REWARD_WRONG_VALUE = -1.0
REWARD_WRONG_NUMBERS = -2.0
REWARD_ILLEGAL = -3.0

# A card's number has at most 2 digits; a literal of more than 3 digits cannot be a card, so the
# verifier never builds its integer.
MAX_LITERAL_DIGITS = 3


def verify_expression(completion: str, values: Sequence[int], target: int) -> Verdict:
    """Score ``completion`` against the card values (paper's table). Never raises.

    +5 legal, each value used exactly once, equals target; -1 the same but another value (or a
    division by zero); -2 legal but the numbers are not the cards, each once; -3 illegal.
    """
    score, reason, _short = _check(completion, values, target)
    return Verdict(score, score == REWARD_CORRECT, reason)


# Feedback after a failed attempt, as a revision episode shows it to the model: short, because the
# embedded model reads characters. '?' opens it and ':' closes it, as ':' closes the prompt, so the
# next attempt follows directly. The cards and the target are in the prompt already.
FEEDBACK_OPEN, FEEDBACK_CLOSE = "?", ":"
FEEDBACK_MAX_NUMBERS = 6


def revision_feedback(completion: str, values: Sequence[int], target: int) -> str:
    """What the verifier tells the model after a failed attempt, e.g. ``'?used 1 8 11 5:'`` (the
    numbers are not the cards), ``'?got 23:'`` (the value, not the target), ``'?div0:'``,
    ``'?illegal:'``; ``'?correct:'`` for a success (a revision episode ends there, so it is never shown)."""
    return f"{FEEDBACK_OPEN}{_check(completion, values, target)[2]}{FEEDBACK_CLOSE}"


def _check(completion: str, values: Sequence[int], target: int) -> tuple[float, str, str]:
    """(score, reason, the reason in feedback form): the one place a completion is judged."""
    try:
        rpn = parse(completion)
    except IllegalExpression as err:
        return REWARD_ILLEGAL, f"illegal: {err}", "illegal"
    literals = [tok for tok in rpn if is_literal(tok)]
    shown = [tok if len(tok) <= MAX_LITERAL_DIGITS else tok[:MAX_LITERAL_DIGITS] + ".." for tok in literals]
    used_short = "used " + " ".join(shown[:FEEDBACK_MAX_NUMBERS]) + (" .." if len(shown) > FEEDBACK_MAX_NUMBERS else "")
    too_long = [tok for tok in literals if len(tok) > MAX_LITERAL_DIGITS]
    if too_long:
        long_shown = too_long[0] if len(too_long[0]) <= 12 else too_long[0][:12] + "..."
        return REWARD_WRONG_NUMBERS, f"uses {long_shown}, which is not on the cards", used_short
    used = [int(tok) for tok in literals]
    if sorted(used) != sorted(values):
        return REWARD_WRONG_NUMBERS, f"uses {used} but the cards are {list(values)}", used_short
    try:
        value = evaluate_rpn(rpn)
    except ZeroDivisionError:
        return REWARD_WRONG_VALUE, "division by zero", "div0"
    if value != target:
        return REWARD_WRONG_VALUE, f"value {value}, not {target}", f"got {value}"
    return REWARD_CORRECT, "correct", "correct"


def numbers_used(completion: str) -> list[int] | None:
    """The numbers an expression uses, in order; None when it does not parse (or a literal is too long
    to be a card)."""
    try:
        rpn = parse(completion)
    except IllegalExpression:
        return None
    literals = [tok for tok in rpn if is_literal(tok)]
    if any(len(tok) > MAX_LITERAL_DIGITS for tok in literals):
        return None
    return [int(tok) for tok in literals]


def expression_prefix_feasible(prefix: str, values: Sequence[int], target: int) -> bool:
    """False only if no string starting with ``prefix`` can verify as a success (+5); cheap, exact.

    The prefix must scan (``arith.scan``: the grammar of ``arith.parse``, so an illegal character,
    an operator or ')' where an operand must come, a number right after an operand, or a ')' with no
    open '(' ends it), and each completed literal (a digit run followed by something else; '08'
    counts as 8, as in ``verify_expression``) spends a card of the multiset. The trailing digit run
    may still grow, so it only has to be the start of some remaining card's literal. Once every card
    is spent, what can follow is only whitespace and the ')' that close open groups, so the value is
    fixed and must equal the target.
    """
    try:
        scanned = scan(prefix)  # also rejects a prefix over MAX_EXPR_CHARS, as parse would the whole
    except IllegalExpression:
        return False
    remaining = Counter(values)
    for pos, tok in scanned.tokens:
        if not is_literal(tok):
            continue
        if pos + len(tok) == len(prefix):  # the last token ends the prefix: the literal may still grow
            return _open_literal_feasible(prefix, tok, remaining, scanned.depth, target)
        if len(tok) > MAX_LITERAL_DIGITS or remaining[int(tok)] == 0:
            return False
        remaining[int(tok)] -= 1
    if remaining.total() == 0:
        # An operand is still due but no card is left; or the expression is complete up to ')'s.
        return not scanned.expect_operand and _closed_value_is(prefix, scanned.depth, target)
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
