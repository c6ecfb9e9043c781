"""Tests for arenagym.envs.math.procedural: shape, determinism, variety and exact answers.

Each answer is re-derived here independently of the generator (by re-reading the problem text
with sympy, or by substituting the answer back into the equation) and must agree with the
reference as math-verify reads it.
"""

from __future__ import annotations

import doctest
import hashlib
import re
from collections.abc import Callable
from fractions import Fraction
from math import comb, factorial, perm

import numpy as np
import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st
from math_verify import parse, verify
from sympy.parsing.sympy_parser import (
    convert_xor,
    implicit_multiplication_application,
    parse_expr,
    standard_transformations,
)

from arenagym.envs.math import procedural
from arenagym.envs.math.problems import ANSWER_FORMS, Problem
from arenagym.envs.math.procedural import FAMILIES, generate

DIFFICULTIES = range(1, 6)
# Tuple and set answers cost ~0.1 s each to parse with math-verify, so they get fewer seeds.
SEEDS = {
    family: range(4) if family in ("linear_system", "quadratic") else range(8)
    for family in FAMILIES
}
_TRANSFORMS = (*standard_transformations, implicit_multiplication_application, convert_xor)


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _expr(text: str) -> sympy.Expr:
    """Plain problem math (``3x - 7``, ``2 × (-3)^2``, ``(2/3) ÷ (4/5)``) as an exact sympy expr."""
    text = text.replace("×", "*").replace("÷", "/")
    return parse_expr(text, transformations=_TRANSFORMS, evaluate=True)


def _equation(text: str) -> sympy.Expr:
    """``lhs = rhs`` as the expression ``lhs - rhs``."""
    lhs, rhs = text.split("=")
    return sympy.expand(_expr(lhs) - _expr(rhs))


def _gold(problem: Problem) -> sympy.Basic:
    parsed = parse("\\boxed{" + problem.answer + "}")
    assert parsed, f"math-verify cannot parse {problem.answer!r}"
    assert isinstance(parsed[0], sympy.Basic), parsed
    return parsed[0]


def _agrees(problem: Problem, value: sympy.Expr) -> bool:
    """The reference answer and an independently computed number are equal for math-verify."""
    gold = parse("\\boxed{" + problem.answer + "}")
    return verify(gold, parse("\\boxed{" + sympy.latex(value) + "}"))


# --------------------------------------------------------------------------- recomputation

_ARITHMETIC_MATH = re.compile(r"[-(0-9][-0-9\s/()+×÷^]*[0-9)]")


def _recompute_expression(problem: Problem) -> sympy.Expr:
    match = _ARITHMETIC_MATH.search(problem.problem)
    assert match, problem.problem
    value = _expr(match.group())
    assert value.is_Rational, (problem.problem, value)
    return value


_LINEAR = re.compile(
    r"^(?:Solve for (?P<v1>\w): (?P<e1>.+)\.|Find (?P<v2>\w) if (?P<e2>.+)\."
    r"|What value of (?P<v3>\w) satisfies (?P<e3>.+)\?"
    r"|Solve the equation (?P<e4>.+) for (?P<v4>\w)\.)$"
)


def _pick_groups(match: re.Match[str], *names: str) -> list[str]:
    found = []
    for name in names:
        values = [v for k, v in match.groupdict().items() if k.rstrip("0123456789") == name and v]
        assert len(values) == 1, match.groupdict()
        found.append(values[0])
    return found


def _check_linear_equation(problem: Problem) -> None:
    match = _LINEAR.match(problem.problem)
    assert match, problem.problem
    name, text = _pick_groups(match, "v", "e")
    expr = _equation(text)
    symbol = sympy.Symbol(name)
    assert expr.free_symbols == {symbol}
    gold = _gold(problem)
    assert sympy.simplify(expr.subs(symbol, gold)) == 0  # the answer satisfies the equation
    assert sympy.Poly(expr, symbol).degree() == 1  # ... and it is the only solution


_SYSTEM = re.compile(
    r"^(?:Solve the system: (?P<a1>.+), (?P<b1>.+)\. Give \(x, y\)\."
    r"|Find x and y such that (?P<a2>.+) and (?P<b2>.+)\. Answer as an ordered pair \(x, y\)\."
    r"|Solve the simultaneous equations (?P<a3>.+); (?P<b3>.+)\. Write the answer as \(x, y\)\.)$"
)


def _check_linear_system(problem: Problem) -> None:
    match = _SYSTEM.match(problem.problem)
    assert match, problem.problem
    first, second = (_equation(text) for text in _pick_groups(match, "a", "b"))
    gold = _gold(problem)
    # math-verify reads "(a, b)" with a < b as an open interval and otherwise as a tuple.
    if isinstance(gold, sympy.Interval):
        pair = (gold.left, gold.right)
    else:
        assert isinstance(gold, sympy.Tuple), gold
        pair = tuple(gold)
    x, y = sympy.symbols("x y")
    for equation in (first, second):
        assert sympy.simplify(equation.subs({x: pair[0], y: pair[1]})) == 0
    assert sympy.Matrix(
        [[first.coeff(x), first.coeff(y)], [second.coeff(x), second.coeff(y)]]
    ).det()


_QUADRATIC = re.compile(
    r"^(?:Find all real solutions of (?P<e1>.+)\."
    r"|Solve (?P<e2>.+) over the real numbers\. Give all solutions\."
    r"|Find every real number (?P<v3>\w) such that (?P<e3>.+)\."
    r"|Determine all real roots of the equation (?P<e4>.+)\.)$"
)


def _check_quadratic(problem: Problem) -> None:
    match = _QUADRATIC.match(problem.problem)
    assert match, problem.problem
    (text,) = _pick_groups(match, "e")
    expr = _equation(text)
    (symbol,) = expr.free_symbols
    gold = _gold(problem)
    assert isinstance(gold, sympy.FiniteSet), gold
    for root in gold:
        assert sympy.simplify(expr.subs(symbol, root)) == 0
    real_roots = sympy.solveset(expr, symbol, domain=sympy.S.Reals)
    assert len(real_roots) == len(gold) >= 1
    irrational = any(not r.is_rational for r in real_roots)
    assert problem.answer_form == ("surd" if irrational else "set")


_N = r"\$?(\d+)"
_PERCENTAGE_RULES: tuple[tuple[str, Callable[..., Fraction]], ...] = (
    (rf"What is {_N}% of {_N}\?", lambda p, n: p * n / 100),
    (rf"has {_N} students, and {_N}% of them", lambda n, p: p * n / 100),
    (rf"asked {_N} people and {_N}% of them", lambda n, p: p * n / 100),
    (rf"harvested {_N} kg of apples and sold {_N}%", lambda n, p: p * n / 100),
    (rf"needs {_N} grams of flour, and {_N}%", lambda n, p: p * n / 100),
    (rf"costs {_N}\. It is on sale for {_N}% off", lambda n, p: n * (100 - p) / 100),
    (rf"of a {_N} lamp by {_N}%", lambda n, p: n * (100 + p) / 100),
    (rf"has {_N} residents\. Its population grows by {_N}%", lambda n, p: n * (100 + p) / 100),
    (
        rf"holds {_N} liters of water, and {_N}% of the water leaks",
        lambda n, p: n * (100 - p) / 100,
    ),
    (rf"earned {_N}\. This year her salary increased by {_N}%", lambda n, p: n * (100 + p) / 100),
    (rf"^{_N} is what percent of {_N}\?", lambda a, b: 100 * a / b),
    (rf"answered {_N} of {_N} questions", lambda a, b: 100 * a / b),
    (rf"holds {_N} marbles, and {_N} of them", lambda b, a: 100 * a / b),
    (
        rf"a {_N} bike is increased by {_N}% and then the new price is decreased by {_N}%",
        lambda n, p, q: n * (100 + p) * (100 - q) / 10**4,
    ),
    (
        rf"worth {_N} rises {_N}% on Monday and then falls {_N}%",
        lambda n, p, q: n * (100 + p) * (100 - q) / 10**4,
    ),
    (
        rf"A {_N} coat is discounted by {_N}% and later the sale price is raised by {_N}%",
        lambda n, p, q: n * (100 - p) * (100 + q) / 10**4,
    ),
    (rf"changed from {_N} to {_N}\.", lambda a, b: abs(b - a) * 100 / a),
    (rf"After a {_N}% discount, a coat costs {_N}\.", lambda p, m: m * 100 / (100 - p)),
    (rf"After a {_N}% raise, Sam earns {_N} per month", lambda p, m: m * 100 / (100 + p)),
    (rf"grew by {_N}% to {_N}\.", lambda p, m: m * 100 / (100 + p)),
    (
        rf"{_N} is deposited .* earns {_N}% interest .* after {_N} years",
        lambda n, p, k: n * ((100 + p) / 100) ** k,
    ),
    (
        rf"worth {_N} loses {_N}% of its value every year\. .* after {_N} years",
        lambda n, p, k: n * ((100 - p) / 100) ** k,
    ),
)


def _word(word: str) -> int:
    total = factorial(len(word))
    for letter in set(word):
        total //= factorial(word.count(letter))
    return total


_BINOMIAL_RULES: tuple[tuple[str, Callable[..., int]], ...] = (
    (r"committee of (\d+) be chosen from (\d+) people", lambda k, n: comb(n, k)),
    (r"can (\d+) distinct \w+ be arranged", factorial),
    (r"offers (\d+) [\w ]+\. How many ways are there to pick (\d+)", comb),
    (r"medals be awarded to (\d+) runners", lambda n: perm(n, 3)),
    (r"each of (\d+) guests shakes hands", lambda n: comb(n, 2)),
    (r"club of (\d+) members elects a president and a vice-president", lambda n: perm(n, 2)),
    (
        r"coefficient of (\w)\^(\d+) in the expansion of \(1 \+ \1\)\^(\d+)",
        lambda _, k, n: comb(n, k),
    ),
    (
        r"committee of (\d+) \w+ and (\d+) \w+ is to be chosen from (\d+) \w+ and (\d+) \w+\.",
        lambda i, j, a, b: comb(a, i) * comb(b, j),
    ),
    (r"letters of the word ([A-Z]+)\?", lambda w: _word(w)),
    (
        r"team of (\d+) is chosen from (\d+) \w+ and (\d+) \w+\. .* at least one",
        lambda k, a, b: comb(a + b, k) - comb(a, k),
    ),
    (r"(\d+) people stand in a line if two particular people must", lambda n: 2 * factorial(n - 1)),
    (
        r"(\d+) people stand in a line if two particular people refuse",
        lambda n: factorial(n) - 2 * factorial(n - 1),
    ),
    (
        r"committee of (\d+) is chosen from (\d+) \w+ and (\d+) \w+\. .* exactly (\d+)",
        lambda k, a, b, j: comb(b, j) * comb(a, k - j),
    ),
)


def _apply_rules(
    text: str, rules: tuple[tuple[str, Callable[..., object]], ...], number: type
) -> object:
    """Apply the one rule whose pattern matches ``text`` to its numbers (and words)."""
    matched = [
        (rule, m) for rule, (pattern, _) in enumerate(rules) if (m := re.search(pattern, text))
    ]
    assert len(matched) == 1, (text, [rules[i][0] for i, _ in matched])
    rule, match = matched[0]
    args = [number(g) if g.isdigit() else g for g in match.groups()]
    return rules[rule][1](*args)


def _recompute_percentage(problem: Problem) -> sympy.Expr:
    value = _apply_rules(problem.problem, _PERCENTAGE_RULES, Fraction)
    assert isinstance(value, Fraction)
    return sympy.Rational(value.numerator, value.denominator)


def _recompute_counting(problem: Problem) -> sympy.Expr:
    text = problem.problem
    general = re.search(
        r"coefficient of (\w)(?:\^(\d+))? in the expansion of (\(.+\))\^(\d+)", text
    )
    if general and not text.endswith(f"(1 + {general.group(1)})^{general.group(4)}?"):
        symbol = sympy.Symbol(general.group(1))
        power = int(general.group(2) or 1)
        expanded = sympy.expand(_expr(general.group(3)) ** int(general.group(4)))
        return sympy.Poly(expanded, symbol).coeff_monomial(symbol**power)
    value = _apply_rules(text, _BINOMIAL_RULES, int)
    assert isinstance(value, int)
    return sympy.Integer(value)


_NUMERIC: dict[str, Callable[[Problem], sympy.Expr]] = {
    "arithmetic": _recompute_expression,
    "fractions": _recompute_expression,
    "percentage": _recompute_percentage,
    "counting": _recompute_counting,
}


def _check_answer(problem: Problem) -> None:
    """Re-derive the answer independently and compare it with the reference."""
    family = problem.category
    if family == "linear_equation":
        _check_linear_equation(problem)
    elif family == "linear_system":
        _check_linear_system(problem)
    elif family == "quadratic":
        _check_quadratic(problem)
    else:
        value = _NUMERIC[family](problem)
        gold = _gold(problem)
        assert sympy.simplify(gold - value) == 0, (problem, value)
        assert _agrees(problem, value), (problem, value)


# --------------------------------------------------------------------------- tests

_FORM_SHAPES = {
    "integer": r"-?\d+",
    "fraction": r"-?\\frac\{\d+\}\{\d+\}",
    "decimal": r"-?\d+\.\d*[1-9]",
    "tuple": r"\(.+, .+\)",
    "set": r"\\\{.+\\\}",
    "surd": r"\\\{.*\\sqrt\{\d+\}.*\\\}",
}


def _number(answer: str) -> Fraction:
    """An integer, decimal or ``\\frac`` answer as a Fraction, read without math-verify."""
    match = re.fullmatch(r"(-?)\\frac\{(\d+)\}\{(\d+)\}", answer)
    if match:
        return Fraction(int(match[2]), int(match[3])) * (-1 if match[1] else 1)
    return Fraction(answer)


def _check_shape(problem: Problem, family: str, difficulty: int) -> None:
    assert isinstance(problem, Problem)
    digest = hashlib.sha1(problem.problem.encode("utf-8")).hexdigest()[:12]
    assert problem.task_id == f"proc/{family}/d{difficulty}/{digest}"
    assert problem.category == family
    assert problem.difficulty == difficulty
    assert problem.answer_form in ANSWER_FORMS
    assert re.fullmatch(_FORM_SHAPES[problem.answer_form], problem.answer), problem
    text = problem.problem
    assert text == text.strip() and text[-1] in ".?", text
    assert "{" not in text and "}" not in text and "  " not in text, text
    assert "+ -" not in text and "- -" not in text, text  # negatives are parenthesised


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
@pytest.mark.parametrize("family", FAMILIES)
def test_problems_are_well_formed_deterministic_and_correct(family: str, difficulty: int) -> None:
    for seed in SEEDS[family]:
        problem = generate(family, difficulty, _rng(seed))
        _check_shape(problem, family, difficulty)
        assert generate(family, difficulty, _rng(seed)) == problem
        _check_answer(problem)


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
@pytest.mark.parametrize("family", FAMILIES)
def test_problems_vary_across_seeds(family: str, difficulty: int) -> None:
    texts = {generate(family, difficulty, _rng(seed)).problem for seed in range(30)}
    assert len(texts) >= 18, sorted(texts)


def test_a_stream_from_one_generator_is_reproducible() -> None:
    first, second = _rng(123), _rng(123)
    for family in FAMILIES:
        for difficulty in DIFFICULTIES:
            assert generate(family, difficulty, first) == generate(family, difficulty, second)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=2**63 - 1),
    family=st.sampled_from(FAMILIES),
    difficulty=st.integers(min_value=1, max_value=5),
)
def test_any_seed_gives_a_sound_problem(seed: int, family: str, difficulty: int) -> None:
    problem = generate(family, difficulty, _rng(seed))
    _check_shape(problem, family, difficulty)
    assert generate(family, difficulty, _rng(seed)) == problem
    if family in _NUMERIC:  # cheap to recompute exactly; the rest are checked above
        value = _NUMERIC[family](problem)
        assert _number(problem.answer) == Fraction(int(value.p), int(value.q)), (problem, value)


def test_difficulty_raises_the_size_of_arithmetic() -> None:
    def mean_length(difficulty: int) -> float:
        return float(
            np.mean([len(generate("arithmetic", difficulty, _rng(s)).problem) for s in range(40)])
        )

    lengths = [mean_length(d) for d in DIFFICULTIES]
    assert lengths == sorted(lengths)


def test_hard_quadratics_have_irrational_roots_and_easy_ones_integers() -> None:
    for seed in range(20):
        assert generate("quadratic", 5, _rng(seed)).answer_form == "surd"
        easy = generate("quadratic", 1, _rng(seed))
        assert "\\frac" not in easy.answer and "\\sqrt" not in easy.answer


@pytest.mark.parametrize("difficulty", [0, 6, -1, True, 2.0, "3"])
def test_bad_difficulty_is_rejected(difficulty: object) -> None:
    with pytest.raises(ValueError, match="difficulty must be an integer from 1 to 5"):
        generate("arithmetic", difficulty, _rng(0))  # type: ignore[arg-type]


def test_family_names() -> None:
    assert FAMILIES == (
        "arithmetic",
        "fractions",
        "linear_equation",
        "linear_system",
        "quadratic",
        "percentage",
        "counting",
    )
    assert generate("counting", 1, _rng(0)).category == "counting"
    with pytest.raises(ValueError, match="unknown problem family 'binomial'"):
        generate("binomial", 1, _rng(0))


def test_unknown_family_is_rejected_naming_the_families() -> None:
    with pytest.raises(ValueError, match="linear_equation"):
        generate("calculus", 1, _rng(0))


def test_module_doctests_pass() -> None:
    assert doctest.testmod(procedural).failed == 0
