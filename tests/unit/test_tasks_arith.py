"""Exact expression parsing, evaluation, canonical rendering and the solver."""

import itertools
import random
import re
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reweightlab.tasks.generalpoints import arith
from reweightlab.tasks.generalpoints.arith import (
    IllegalExpression,
    canonical,
    evaluate,
    parse,
    random_expression,
    solvable,
    solve,
)

# ---------------------------------------------------------------- evaluation


@pytest.mark.parametrize(
    "expr, value",
    [
        ("8/(3-8/3)", Fraction(24)),  # a float eval gives 23.999...
        ("1/3+1/6", Fraction(1, 2)),
        ("2+3*4", Fraction(14)),
        ("(2+3)*4", Fraction(20)),
        ("8-3-2", Fraction(3)),  # left associative
        ("8-(3-2)", Fraction(7)),
        ("8/4/2", Fraction(1)),
        ("8/(4/2)", Fraction(4)),
        ("2*3/4", Fraction(3, 2)),
        (" ( 1 +\t2 ) * 3 \n", Fraction(9)),
        ("007", Fraction(7)),
        ("(((5)))", Fraction(5)),
    ],
)
def test_evaluate_exact(expr, value):
    got = evaluate(expr)
    assert isinstance(got, Fraction)
    assert got == value


@pytest.mark.parametrize(
    "expr, reason",
    [
        ("", "empty expression"),
        ("   ", "empty expression"),
        ("(", "ends early"),
        ("1+", "ends early"),
        ("()", 'unexpected ")" at 1'),
        ("1 2", "unexpected number at 2"),
        ("2(3)", 'unexpected "(" at 1'),
        ("(1+2)3", "unexpected number at 5"),
        ("-1+2", 'unexpected "-" at 0'),
        ("+1", 'unexpected "+" at 0'),
        ("1++2", 'unexpected "+" at 2'),
        ("1*-2", 'unexpected "-" at 2'),
        (")1", 'unexpected ")" at 0'),
        ("1)", 'unmatched ")" at 1'),
        ("(1+2", 'unclosed "(" at 0'),
        ("1.5+2", "unexpected character '.' at 1"),
        ("2^3", "unexpected character '^' at 1"),
        ("2x3", "unexpected character 'x' at 1"),
        ("\u0663+1", "unexpected character '\\u0663' at 0"),  # ARABIC-INDIC DIGIT THREE
        ("\uff11+1", "unexpected character '\\uff11' at 0"),  # FULLWIDTH DIGIT ONE
        ("2\u00b2", "unexpected character '\\xb2' at 1"),  # SUPERSCRIPT TWO
        ("1\u00a0+2", "unexpected character '\\xa0' at 1"),  # no-break space is not ASCII space
        ("9" * 257, "longer than 256 characters"),
    ],
)
def test_illegal_expressions_and_reasons(expr, reason):
    with pytest.raises(IllegalExpression) as err:
        parse(expr)
    assert reason in str(err.value)
    assert evaluate(expr) is None
    assert canonical(expr) is None


def test_length_cap_ignores_surrounding_whitespace():
    assert evaluate(" " * 1000 + "1+2" + "\n" * 1000) == 3


def test_division_by_zero_is_none_not_an_error():
    assert evaluate("1/0") is None
    assert evaluate("8/(3-3)") is None
    assert evaluate("0/8") == 0


def test_deep_nesting_uses_no_recursion(monkeypatch):
    # Lift the length cap: the parser itself must cope with nesting far past the recursion limit.
    monkeypatch.setattr(arith, "MAX_EXPR_CHARS", 10**6)
    depth = 50_000
    assert evaluate("(" * depth + "7" + ")" * depth) == 7
    assert evaluate("(" * depth + "7") is None
    assert evaluate("1" + "+1" * depth) == depth + 1


def test_rpn_keeps_literal_order():
    assert parse("10 - (8 + 5) * 1") == ("10", "8", "5", "+", "1", "*", "-")


def test_scan_gives_tokens_and_the_grammar_state():
    assert arith.scan(" (12 +\t3") == ([(1, "("), (2, "12"), (5, "+"), (7, "3")], False, 1)  # a group open
    assert arith.scan("1+") == ([(0, "1"), (1, "+")], True, 0)  # an operand due
    for text, reason in [("()", 'unexpected ")" at 1'), ("1)", 'unmatched ")" at 1'),
                         ("1(", 'unexpected "(" at 1'), ("1 2", "unexpected number at 2"),
                         ("+", 'unexpected "+" at 0'), ("1x", "unexpected character")]:
        with pytest.raises(IllegalExpression, match=re.escape(reason)):
            arith.scan(text)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="0123456789+-*/() x", max_size=20))
def test_parse_is_the_scan_plus_a_complete_ending(text):
    """parse accepts exactly the texts that scan, ending with an operand and no open group: the
    grammar is the scanner's alone."""
    try:
        _, expect_operand, depth = arith.scan(text)
        complete = not expect_operand and depth == 0
    except IllegalExpression:
        complete = False
    try:
        parse(text)
        parsed = True
    except IllegalExpression:
        parsed = False
    assert parsed == complete


# ---------------------------------------------------------------- canonical rendering


@pytest.mark.parametrize(
    "expr, canon",
    [
        ("(1+2)+(3-4)", "1+2+3-4"),  # '+' never parenthesises its right operand
        ("1+(2*3)", "1+2*3"),
        ("1-(2-3)", "1-(2-3)"),  # '-' keeps an equal-precedence right operand
        ("1-(2*3)", "1-2*3"),
        ("(1-2)-3", "1-2-3"),
        ("(1+2)*3", "(1+2)*3"),  # looser left operand
        ("3*(1+2)", "3*(1+2)"),  # looser right operand
        ("1*(2/3)", "1*2/3"),  # '*' never parenthesises an equal-precedence right operand
        ("(1*2)/3", "1*2/3"),
        ("1/(2/3)", "1/(2/3)"),  # '/' keeps it
        ("1/(2*3)", "1/(2*3)"),
        ("( 10 )", "10"),
        ("08+1", "8+1"),
    ],
)
def test_canonical_examples(expr, canon):
    assert canonical(expr) == canon
    assert evaluate(canon) == evaluate(expr)


def _trees(max_leaves=6):
    literal = st.integers(0, 13).map(str)
    return st.recursive(
        literal,
        lambda sub: st.tuples(sub, st.sampled_from(arith.OPERATORS), sub).map(
            lambda t: f"({t[0]}{t[1]}{t[2]})"
        ),
        max_leaves=max_leaves,
    )


@settings(max_examples=300, deadline=None)
@given(_trees())
def test_canonical_keeps_value_and_is_a_fixed_point(expr):
    canon = canonical(expr)
    assert canon is not None and " " not in canon
    assert canonical(canon) == canon
    assert evaluate(canon) == evaluate(expr)  # both None when expr divides by zero
    # Same literals in the same order: canonical form only moves parentheses.
    assert [t for t in parse(canon) if arith.is_literal(t)] == [t for t in parse(expr) if arith.is_literal(t)]


# ---------------------------------------------------------------- solver


def _brute_force(values, target):
    """Independent oracle: every fully parenthesised expression over every ordering, via evaluate()."""

    def exprs(seq):
        if len(seq) == 1:
            yield str(seq[0])
            return
        for k in range(1, len(seq)):
            for left in exprs(seq[:k]):
                for right in exprs(seq[k:]):
                    for op in "+-*/":
                        yield f"({left}{op}{right})"

    found = set()
    for perm in set(itertools.permutations(values)):
        for e in exprs(perm):
            if evaluate(e) == target:
                found.add(canonical(e))
    return sorted(found)


@pytest.mark.parametrize("values", [(3, 3, 8, 8), (1, 5, 5, 5), (4, 7, 8, 8), (1, 2, 3, 4), (2, 2, 10, 10)])
def test_solver_matches_brute_force(values):
    assert solve(values, 24) == _brute_force(values, 24)


@pytest.mark.parametrize("values,target", [((0, 3, 8, 8), 24), ((0, 0, 5, 7), 0), ((0, 1, 2, 3), 0),
                                           ((2, 3, 4, 6), 1), ((1, 5, 5, 5), -4), ((2, 4, 6), 3)])
def test_solver_matches_brute_force_with_zeros_and_other_targets(values, target):
    """The solver's look-ups special-case a zero factor, a zero dividend and a zero target."""
    want = _brute_force(values, target)
    assert want  # each case has solutions, so a solver that found none would fail
    assert solve(values, target) == want


def test_known_hands():
    assert solve((3, 3, 8, 8), 24) == ["8/(3-8/3)"]
    assert solve((8, 3, 8, 3), 24) == ["8/(3-8/3)"]  # order of the values does not matter
    assert solve((1, 1, 1, 1), 24) == []
    assert solve((10, 10, 10, 10), 24) == []
    assert solve((1, 5, 5, 5), 24) == ["(5-1/5)*5", "5*(5-1/5)"]
    assert solve((7,), 7) == ["7"]
    assert solve((7,), 24) == []


def _random_hands(count, seed, high=13):
    rng = random.Random(seed)
    return [tuple(rng.randint(1, high) for _ in range(4)) for _ in range(count)]


def test_every_solution_is_canonical_exact_and_uses_each_value_once():
    checked = 0
    for values in _random_hands(60, seed=1):
        sols = solve(values, 24)
        assert sols == sorted(set(sols))
        for s in sols:
            assert " " not in s
            assert canonical(s) == s
            assert evaluate(s) == 24
            assert sorted(int(t) for t in parse(s) if arith.is_literal(t)) == sorted(values)
            checked += 1
    assert checked > 100  # the sample must actually exercise the loop


def test_solve_returns_a_fresh_list():
    first = solve((3, 3, 8, 8), 24)
    first.append("junk")
    assert solve((3, 3, 8, 8), 24) == ["8/(3-8/3)"]


@pytest.mark.parametrize("target", [24, 0, 1, -5, 100])
def test_solvable_agrees_with_solve(target):
    hands = _random_hands(25, seed=target + 1000) + [(0, 0, 0, 0), (0, 1, 2, 3), (13, 13, 13, 13)]
    for values in hands:
        assert solvable(values, target) == bool(solve(values, target)), values


def test_solver_rejects_values_it_cannot_write():
    with pytest.raises(ValueError):
        solve((-1, 2, 3, 4), 24)
    with pytest.raises(ValueError):
        solve((), 24)


# ---------------------------------------------------------------- random expressions


def test_random_expression_is_legal_canonical_and_uses_each_value_once():
    rng = random.Random(0)
    for values in _random_hands(200, seed=2) + [(0, 0, 0, 0), (1, 1, 1, 1)]:
        e = random_expression(values, rng)
        assert canonical(e) == e
        assert evaluate(e) is not None
        assert sorted(int(t) for t in parse(e) if arith.is_literal(t)) == sorted(values)


def test_random_expression_is_deterministic_and_varied():
    a = [random_expression((1, 8, 10, 5), random.Random(s)) for s in range(300)]
    b = [random_expression((1, 8, 10, 5), random.Random(s)) for s in range(300)]
    assert a == b
    assert len(set(a)) > 150
    assert len(arith._shapes(4)) == 5  # the shapes it draws from: all 5 binary trees on 4 leaves
    assert any("(" not in e for e in a) and any(")*(" in e or ")/(" in e for e in a)
