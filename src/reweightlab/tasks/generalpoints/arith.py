"""Exact arithmetic over card expressions: parse, evaluate, render canonically, solve.

The expression language: non-negative integer literals written with ASCII digits, the
binary operators ``+ - * /``, parentheses, and ASCII whitespace anywhere. There is no unary minus or
plus and no implicit multiplication. Values are ``fractions.Fraction`` throughout, never floats, so
``8/(3-8/3)`` is exactly 24.

The grammar lives in one place, ``scan`` (tokens and what may follow what); ``parse`` adds an
explicit-stack shunting-yard pass (no recursion), so input such as ``'(' * 10000`` cannot reach
Python's recursion limit; inputs longer than ``MAX_EXPR_CHARS`` are rejected before scanning, which
also bounds the size of any integer built from a literal.

Canonical format (what ``solve``, ``canonical`` and ``random_expression`` produce): no spaces,
``* /`` bind tighter than ``+ -``, left-associative, and the fewest parentheses that keep the value:
a left operand is parenthesised only if its operator binds looser than the parent's; a right operand
is parenthesised if it binds looser than the parent (``a*(b+c)``), or binds equally and the parent is
``-`` or ``/`` (``a-(b+c)``, ``a/(b*c)``). Equal-precedence right operands of ``+`` and ``*`` drop
their parentheses: ``a+(b-c)`` renders as ``a+b-c``, which has the same exact value.
"""

from __future__ import annotations

import functools
import itertools
import random
from collections.abc import Sequence
from fractions import Fraction
from typing import NamedTuple

# Longer inputs are illegal outright: a four-card answer needs ~15 characters, and the cap keeps
# every literal (hence every Fraction) small no matter what a model emits.
MAX_EXPR_CHARS = 256
OPERATORS = ("+", "-", "*", "/")
WHITESPACE = " \t\r\n\f\v"

_DIGITS = frozenset("0123456789")  # str.isdigit() would accept unicode digits such as '\u0663'
_SPACES = frozenset(WHITESPACE)
_PREC = {"+": 1, "-": 1, "*": 2, "/": 2}
_ATOM = 3  # precedence of a literal or a parenthesised group: never needs parentheses

# A rendered sub-expression: exact value (None if it divides by zero), precedence of its top
# operator, and its canonical text.
_Node = tuple[Fraction | None, int, str]


class IllegalExpression(ValueError):
    """The text is not a legal expression; ``str(err)`` is a short reason with a character position."""


class Scan(NamedTuple):
    """A text's tokens in order, ``(position, token)``, and the grammar state after the last one:
    ``expect_operand`` (an operand must come next) and ``depth`` (groups still open)."""

    tokens: list[tuple[int, str]]
    expect_operand: bool
    depth: int


def scan(text: str) -> Scan:
    """The expression grammar, written once: ``text`` as tokens, each checked against what came before.

    A literal is its maximal digit run, any other token one character of ``( ) + - * /``; whitespace
    is skipped. The first token that cannot follow raises ``IllegalExpression``: an illegal
    character, an operator or ')' where an operand must come, a number or '(' right after an
    operand, or a ')' with no open '('. A complete expression also ends with an operand and no open
    group; ``parse`` checks that, GeneralPoints' prefix check reads the state of a prefix instead.
    """
    if not isinstance(text, str):
        raise IllegalExpression("not a string")
    if len(text.strip(WHITESPACE)) > MAX_EXPR_CHARS:
        raise IllegalExpression(f"longer than {MAX_EXPR_CHARS} characters")
    tokens: list[tuple[int, str]] = []
    expect_operand, depth = True, 0
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in _SPACES:
            i += 1
            continue
        if ch in _DIGITS:
            if not expect_operand:
                raise IllegalExpression(f"unexpected number at {i}")
            j = i
            while j < n and text[j] in _DIGITS:
                j += 1
            tokens.append((i, text[i:j]))
            i, expect_operand = j, False
            continue
        if ch == "(" and expect_operand:
            depth += 1
        elif ch == ")" and not expect_operand:
            if depth == 0:
                raise IllegalExpression(f'unmatched ")" at {i}')
            depth -= 1
        elif ch in _PREC and not expect_operand:
            expect_operand = True
        elif ch in "()+-*/":
            raise IllegalExpression(f'unexpected "{ch}" at {i}')
        else:
            raise IllegalExpression(f"unexpected character {ascii(ch)} at {i}")
        tokens.append((i, ch))
        i += 1
    return Scan(tokens, expect_operand, depth)


def parse(expr: str) -> tuple[str, ...]:
    """Return ``expr`` in reverse Polish notation, or raise ``IllegalExpression``.

    Literals stay digit strings (so a 200-digit literal costs nothing until someone evaluates it);
    operators are single characters. Literals appear in the output in their textual order.
    Positions in error messages index into ``expr`` as given.
    """
    scanned = scan(expr)
    out: list[str] = []
    ops: list[tuple[str, int]] = []  # pending operators and '(' with their positions
    for pos, tok in scanned.tokens:
        if tok[0] in _DIGITS:
            out.append(tok)
        elif tok == "(":
            ops.append((tok, pos))
        elif tok == ")":  # the scanner has checked that a '(' is open
            while ops[-1][0] != "(":
                out.append(ops.pop()[0])
            ops.pop()
        else:
            # Left associativity: pop every pending operator that binds at least as tightly.
            while ops and ops[-1][0] != "(" and _PREC[ops[-1][0]] >= _PREC[tok]:
                out.append(ops.pop()[0])
            ops.append((tok, pos))
    if scanned.expect_operand:
        raise IllegalExpression("expression ends early" if out or ops else "empty expression")
    while ops:
        op, pos = ops.pop()
        if op == "(":
            raise IllegalExpression(f'unclosed "(" at {pos}')
        out.append(op)
    return tuple(out)


def is_literal(token: str) -> bool:
    """True for a literal token of ``parse``'s output, False for an operator."""
    return token[0] in _DIGITS


def _apply(op: str, a: Fraction, b: Fraction) -> Fraction:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    return a / b  # raises ZeroDivisionError on b == 0


def evaluate_rpn(rpn: Sequence[str]) -> Fraction:
    """Exact value of a ``parse`` result; raises ``ZeroDivisionError`` on division by zero."""
    stack: list[Fraction] = []
    for tok in rpn:
        if is_literal(tok):
            stack.append(Fraction(int(tok)))
        else:
            b = stack.pop()
            a = stack.pop()
            stack.append(_apply(tok, a, b))
    return stack[0]


def evaluate(expr: str) -> Fraction | None:
    """Exact value of ``expr``; None if it is illegal or divides by zero."""
    try:
        return evaluate_rpn(parse(expr))
    except (IllegalExpression, ZeroDivisionError):
        return None


def _combine(op: str, left: _Node, right: _Node) -> _Node:
    """Render ``left op right`` canonically and compute its value (None once anything divides by 0)."""
    lval, lprec, ltext = left
    rval, rprec, rtext = right
    prec = _PREC[op]
    if lprec < prec:
        ltext = f"({ltext})"
    # Right operand: '+' never needs parentheses around a '+'/'-' (exact arithmetic keeps the value),
    # '*' never around a '*'/'/'; '-' and '/' flip the sign/exponent of an equal-precedence right side.
    if rprec < prec or (rprec == prec and op in "-/"):
        rtext = f"({rtext})"
    value = None
    if lval is not None and rval is not None and not (op == "/" and rval == 0):
        value = _apply(op, lval, rval)
    return value, prec, f"{ltext}{op}{rtext}"


def _leaf(value: int) -> _Node:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"values must be non-negative ints, got {value!r}")
    return Fraction(value), _ATOM, str(value)


def canonical(expr: str) -> str | None:
    """The canonical rendering of a legal expression (same exact value), or None if illegal."""
    try:
        rpn = parse(expr)
    except IllegalExpression:
        return None
    stack: list[_Node] = []
    for tok in rpn:
        if is_literal(tok):
            stack.append((None, _ATOM, str(int(tok))))  # value unused; int() drops leading zeros
        else:
            right = stack.pop()
            stack.append(_combine(tok, stack.pop(), right))
    return stack[0][2]


def solve(values: Sequence[int], target: int) -> list[str]:
    """Every expression that uses each of ``values`` exactly once and equals ``target`` exactly.

    Covers all orderings of the values, all binary tree shapes and all operator choices; rendered
    canonically, deduplicated as strings, sorted. Cached by (sorted values, target).
    """
    return list(_solve_sorted(tuple(sorted(values)), target))


@functools.lru_cache(maxsize=8192)
def _solve_sorted(values: tuple[int, ...], target: int) -> tuple[str, ...]:
    leaves = [_leaf(v) for v in values]
    if not leaves:
        raise ValueError("solve needs at least one value")
    full = (1 << len(leaves)) - 1
    if full == 1:
        return (leaves[0][2],) if leaves[0][0] == target else ()
    table = _subexpressions(leaves)
    goal = Fraction(target)
    found: set[str] = set()
    by_value: dict[int, dict[Fraction, list[_Node]]] = {}

    def indexed(mask: int) -> dict[Fraction, list[_Node]]:
        if mask not in by_value:
            groups: dict[Fraction, list[_Node]] = {}
            for node in table[mask]:
                groups.setdefault(node[0], []).append(node)
            by_value[mask] = groups
        return by_value[mask]

    # The top level renders only the combinations that hit the target. Rather than trying every pair of
    # the two halves, walk one half and look up, by exact value, the partner each operator would need.
    for left_mask, right_mask in _ordered_splits(full):
        for left, right in _matching_pairs(table[left_mask], table[right_mask], indexed(left_mask),
                                           indexed(right_mask), goal):
            found.add(_combine(left[3], left[:3], right)[2])
    return tuple(sorted(found))


def _matching_pairs(left_nodes, right_nodes, left_by, right_by, t: Fraction):
    """Every (left + (op,), right) with ``left op right == t`` (division by 0 excluded), by look-up.

    Each operator walks the smaller side and looks up the partner's exact value in the other: l + r = t,
    l - r = t, l * r = t (a zero factor matches everything iff t = 0), l / r = t (r != 0; walking the
    left side, l = 0 matches every r != 0 iff t = 0)."""
    if len(left_nodes) <= len(right_nodes):
        for left in left_nodes:
            x = left[0]
            for op, partners in (("+", right_by.get(t - x, ())), ("-", right_by.get(x - t, ())),
                                 ("*", (right_nodes if t == 0 else ()) if x == 0 else right_by.get(t / x, ())),
                                 ("/", ((right_nodes if t == 0 else ()) if x == 0 else
                                        (right_by.get(x / t, ()) if t != 0 else ())))):
                for right in partners:
                    if op != "/" or right[0] != 0:
                        yield (*left, op), right
        return
    for right in right_nodes:
        x = right[0]
        for op, partners in (("+", left_by.get(t - x, ())), ("-", left_by.get(t + x, ())),
                             ("*", (left_nodes if t == 0 else ()) if x == 0 else left_by.get(t / x, ())),
                             ("/", left_by.get(t * x, ()) if x != 0 else ())):
            for left in partners:
                yield (*left, op), right


def _ordered_splits(mask: int):
    """All (left, right) pairs of non-empty disjoint sub-masks whose union is ``mask``."""
    sub = (mask - 1) & mask
    while sub:
        yield sub, mask ^ sub
        sub = (sub - 1) & mask


def _subexpressions(leaves: list[_Node]) -> dict[int, list[_Node]]:
    """For every proper subset (bit mask) of the leaves, its distinct canonical expressions.

    Subsets are built smallest first so both halves of a split are ready. Expressions that divide by
    zero are dropped: nothing built on them can equal a target. Deduplicating by text is sound
    because the canonical text determines the value and the top precedence class.
    """
    n = len(leaves)
    table: dict[int, list[_Node]] = {1 << i: [leaf] for i, leaf in enumerate(leaves)}
    for mask in sorted(range(1, (1 << n) - 1), key=int.bit_count):
        if mask.bit_count() < 2:
            continue
        by_text: dict[str, _Node] = {}
        for left_mask, right_mask in _ordered_splits(mask):
            for left, right in itertools.product(table[left_mask], table[right_mask]):
                for op in OPERATORS:
                    node = _combine(op, left, right)
                    if node[0] is not None:
                        by_text.setdefault(node[2], node)
        table[mask] = list(by_text.values())
    return table


def solvable(values: Sequence[int], target: int) -> bool:
    """Whether some expression over ``values`` (each once) equals ``target``; much faster than ``solve``.

    Splits the multiset in two and, for each value ``a`` of one side, asks whether the other side's
    reachable set holds the one ``b`` that would give the target with each operator: set look-ups
    instead of building every value of the full hand (most of the work, and thrown away).
    """
    values = tuple(sorted(values))
    target = Fraction(target)
    if len(values) == 1:
        return _leaf(values[0])[0] == target
    for left, right in _unordered_splits(values):
        other = _reachable(right)
        for a in _reachable(left):
            if _completes(a, other, target):
                return True
    return False


def _completes(a: Fraction, other: frozenset[Fraction], t: Fraction) -> bool:
    """Whether some b in ``other`` makes a+b, a-b, b-a, a*b, a/b or b/a equal t (b/0 excluded)."""
    if t - a in other or a - t in other or t + a in other:
        return True
    if a != 0:
        # a*b = t <=> b = t/a;  b/a = t <=> b = t*a;  a/b = t <=> b = a/t (needs t != 0; b != 0 follows)
        return t / a in other or t * a in other or (t != 0 and a / t in other)
    # a == 0: a*b = 0 for any b; a/b = 0 for any b != 0; b/a is a division by zero.
    return t == 0 and bool(other)


def _unordered_splits(values: tuple[int, ...]) -> set[tuple[tuple[int, ...], tuple[int, ...]]]:
    """Each split of a sorted multiset into two non-empty sorted parts, once (the part holding
    position 0 on the left; repeated values make repeated splits, which the set removes)."""
    n = len(values)
    out = set()
    for mask in range(1, 1 << n, 2):  # odd masks: position 0 always on the left
        if mask == (1 << n) - 1:
            continue
        left = tuple(v for i, v in enumerate(values) if mask >> i & 1)
        right = tuple(v for i, v in enumerate(values) if not mask >> i & 1)
        out.add((left, right))
    return out


@functools.lru_cache(maxsize=65536)
def _reachable(values: tuple[int, ...]) -> frozenset[Fraction]:
    """Every exact value reachable from the sorted multiset ``values``; recursion depth = len(values)."""
    if len(values) == 1:
        return frozenset({_leaf(values[0])[0]})
    out: set[Fraction] = set()
    for left, right in _unordered_splits(values):
        for a in _reachable(left):
            for b in _reachable(right):
                out.update((a + b, a - b, b - a, a * b))
                if b != 0:
                    out.add(a / b)
                if a != 0:
                    out.add(b / a)
    return frozenset(out)


@functools.lru_cache(maxsize=16)
def _shapes(n: int) -> tuple:
    """All binary tree shapes with ``n`` leaves: a leaf is None, an inner node is (left, right)."""
    if n == 1:
        return (None,)
    return tuple((l, r) for k in range(1, n) for l in _shapes(k) for r in _shapes(n - k))


def _build(shape, leaves: list[_Node], ops: list[str]) -> _Node:
    """Fill ``shape`` with leaves left to right and operators in post-order (both consumed)."""
    if shape is None:
        return leaves.pop(0)
    left = _build(shape[0], leaves, ops)
    right = _build(shape[1], leaves, ops)
    return _combine(ops.pop(0), left, right)


def random_expression(values: Sequence[int], rng: random.Random) -> str:
    """A random legal canonical expression using each value exactly once; it may miss any target.

    Orders the values, picks a tree shape uniformly among all shapes and each operator uniformly.
    Draws that divide by zero are redrawn (the corpus wants legal, evaluable expressions); the
    all-'+' fallback is reached only if 64 draws in a row divide by zero. Deterministic given rng.
    """
    leaves = [_leaf(v) for v in values]
    if not leaves:
        raise ValueError("random_expression needs at least one value")
    for _ in range(64):
        order = list(leaves)
        rng.shuffle(order)
        shape = rng.choice(_shapes(len(order)))
        ops = [rng.choice(OPERATORS) for _ in range(len(order) - 1)]
        node = _build(shape, order, ops)
        if node[0] is not None:
            return node[2]
    return "+".join(leaf[2] for leaf in leaves)
