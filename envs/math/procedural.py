r"""Procedural math problems in seven families, each with a difficulty knob from 1 to 5.

Why: a fixed problem file can be memorised and holds few easy or hard items; generated problems
give an unbounded, reproducible stream whose difficulty a curriculum or benchmark can set.

Every problem comes with an exact reference answer computed with :class:`fractions.Fraction`
(never floats), written as LaTeX that ``math_verify.parse("\\boxed{" + answer + "}")`` reads:
integers ``"-12"``, fractions ``"\\frac{7}{12}"``, decimals ``"12.5"``, sets of real roots
``"\\{-2, 3\\}"`` or ``"\\{1-\\sqrt{2}, 1+\\sqrt{2}\\}"`` and pairs ``"(2, -1)"`` read as (x, y).
Higher difficulty means bigger numbers, more operations, negative numbers, fractional
coefficients, irrational roots and multi-step word problems. The same generator state always
gives the same :class:`Problem`.

Example:
    >>> import numpy as np
    >>> problem = generate("linear_equation", 1, np.random.default_rng(0))
    >>> problem.category, problem.difficulty, problem.answer_form
    ('linear_equation', 1, 'integer')
    >>> problem.task_id.startswith("proc/linear_equation/d1/")
    True
    >>> problem == generate("linear_equation", 1, np.random.default_rng(0))
    True
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from math import comb, factorial, gcd, isqrt, perm

import numpy as np

from arenagym.envs.math.problems import Problem

FAMILIES: tuple[str, ...] = (
    "arithmetic",
    "fractions",
    "linear_equation",
    "linear_system",
    "quadratic",
    "percentage",
    "counting",
)

#: The lowest and highest difficulty :func:`generate` accepts.
MIN_DIFFICULTY = 1
MAX_DIFFICULTY = 5

# A builder returns (problem text, LaTeX answer, answer form).
_Built = tuple[str, str, str]


def generate(family: str, difficulty: int, rng: np.random.Generator) -> Problem:
    """One problem of ``family`` at ``difficulty`` (1 easiest .. 5 hardest), drawn with ``rng``.

    Raises ``ValueError`` for an unknown family or a difficulty outside 1..5.

    Example:
        >>> import numpy as np
        >>> generate("quadratic", 4, np.random.default_rng(3)).answer_form
        'surd'
    """
    if family not in _BUILDERS:
        raise ValueError(f"unknown problem family {family!r}; choose one of {', '.join(FAMILIES)}")
    if (
        not isinstance(difficulty, int | np.integer)
        or isinstance(difficulty, bool)
        or not MIN_DIFFICULTY <= difficulty <= MAX_DIFFICULTY
    ):
        raise ValueError(
            f"difficulty must be an integer from {MIN_DIFFICULTY} to {MAX_DIFFICULTY}, "
            f"got {difficulty!r}"
        )
    difficulty = int(difficulty)
    text, answer, form = _BUILDERS[family](difficulty, rng)
    digest = hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]
    task_id = f"proc/{family}/d{difficulty}/{digest}"
    return Problem(task_id, text, answer, family, difficulty, form)


# --------------------------------------------------------------------------- random helpers


def _int(rng: np.random.Generator, low: int, high: int) -> int:
    """A uniform integer in ``low..high`` inclusive."""
    return int(rng.integers(low, high + 1))


def _pick[T](rng: np.random.Generator, options: Sequence[T]) -> T:
    return options[int(rng.integers(len(options)))]


def _chance(rng: np.random.Generator, probability: float) -> bool:
    return bool(rng.random() < probability)


def _signed(rng: np.random.Generator, low: int, high: int, p_negative: float = 0.5) -> int:
    """A magnitude in ``low..high`` made negative with probability ``p_negative``."""
    value = _int(rng, low, high)
    return -value if _chance(rng, p_negative) else value


# --------------------------------------------------------------------------- number formatting


def _latex(value: Fraction | int) -> str:
    """``-12``, ``\\frac{7}{12}`` or ``-\\frac{3}{4}``."""
    value = Fraction(value)
    if value.denominator == 1:
        return str(value.numerator)
    sign = "-" if value < 0 else ""
    return f"{sign}\\frac{{{abs(value.numerator)}}}{{{value.denominator}}}"


def _number_form(value: Fraction) -> str:
    return "integer" if value.denominator == 1 else "fraction"


def _terminates(value: Fraction, max_places: int = 6) -> bool:
    return (value * 10**max_places).denominator == 1


def _decimal(value: Fraction) -> str:
    """The exact decimal of a terminating fraction, without trailing zeros (``12.5``, ``-3``)."""
    if not _terminates(value, 12):
        raise ValueError(f"{value} has no short exact decimal")
    sign = "-" if value < 0 else ""
    value = abs(value)
    whole, rest = divmod(value.numerator, value.denominator)
    digits = ""
    remainder = Fraction(rest, value.denominator)
    while remainder:
        remainder *= 10
        digit = remainder.numerator // remainder.denominator
        digits += str(digit)
        remainder -= digit
    return f"{sign}{whole}.{digits}" if digits else f"{sign}{whole}"


def _text_number(value: Fraction | int) -> str:
    """A plain-text number: ``7``, ``-3/4``."""
    value = Fraction(value)
    return str(value.numerator) if value.denominator == 1 else str(value)


def _terms(terms: Sequence[tuple[int, str]]) -> str:
    """Plain-text sum of integer-coefficient terms: ``[(2, "x^2"), (-1, "x"), (-6, "")]``.

    Gives ``2x^2 - x - 6``; zero terms are dropped and an empty sum is ``0``.
    """
    out = ""
    for coefficient, symbol in terms:
        if coefficient == 0:
            continue
        magnitude = abs(coefficient)
        body = f"{'' if magnitude == 1 and symbol else magnitude}{symbol}"
        if not out:
            out = f"-{body}" if coefficient < 0 else body
        else:
            out += f" {'-' if coefficient < 0 else '+'} {body}"
    return out or "0"


# --------------------------------------------------------------------------- expression trees


@dataclass(frozen=True)
class _Leaf:
    value: Fraction


@dataclass(frozen=True)
class _Power:
    base: int
    exponent: int


@dataclass(frozen=True)
class _Op:
    op: str  # one of + - × ÷
    left: _Node
    right: _Node


_Node = _Leaf | _Power | _Op
_PRECEDENCE = {"+": 1, "-": 1, "×": 2, "÷": 2}


def _evaluate(node: _Node) -> Fraction:
    if isinstance(node, _Leaf):
        return node.value
    if isinstance(node, _Power):
        return Fraction(node.base) ** node.exponent
    left, right = _evaluate(node.left), _evaluate(node.right)
    if node.op == "+":
        return left + right
    if node.op == "-":
        return left - right
    if node.op == "×":
        return left * right
    if right == 0:
        raise ZeroDivisionError("division by zero in a generated expression")
    return left / right


def _render(node: _Node) -> tuple[str, int]:
    """Plain text of ``node`` and its binding strength (0: must always be parenthesised)."""
    if isinstance(node, _Leaf):
        if node.value < 0:
            return f"-{_text_number(-node.value)}", 0
        return _text_number(node.value), 4 if node.value.denominator == 1 else 2
    if isinstance(node, _Power):
        base = f"({node.base})" if node.base < 0 else str(node.base)
        return f"{base}^{node.exponent}", 3
    precedence = _PRECEDENCE[node.op]
    multiplicative = precedence == 2
    parts = []
    for child, is_right in ((node.left, False), (node.right, True)):
        text, strength = _render(child)
        is_fraction = isinstance(child, _Leaf) and child.value.denominator != 1
        needs = (
            strength < precedence
            or strength == 0
            or (is_right and strength == precedence and node.op in "-÷")
            or (multiplicative and is_fraction)
        )
        parts.append(f"({text})" if needs else text)
    return f"{parts[0]} {node.op} {parts[1]}", precedence


def _expression_text(node: _Node) -> str:
    return _render(node)[0]


# --------------------------------------------------------------------------- arithmetic


@dataclass(frozen=True)
class _ArithmeticLevel:
    operations: tuple[int, int]
    leaf_max: int
    factor_max: int
    ops: str
    p_negative: float
    p_power: float


_ARITHMETIC = {
    1: _ArithmeticLevel((1, 1), 20, 9, "+-", 0.0, 0.0),
    2: _ArithmeticLevel((2, 2), 30, 9, "+-×", 0.0, 0.0),
    3: _ArithmeticLevel((2, 3), 60, 12, "+-×÷", 0.25, 0.0),
    4: _ArithmeticLevel((3, 4), 100, 12, "+-×÷", 0.3, 0.2),
    5: _ArithmeticLevel((4, 6), 250, 15, "+-×÷", 0.35, 0.3),
}


def _arithmetic_leaf(rng: np.random.Generator, level: _ArithmeticLevel, small: bool) -> _Node:
    if _chance(rng, level.p_power):
        exponent = _pick(rng, (2, 2, 3))
        base = _int(rng, 2, 9 if exponent == 2 else 5)
        if _chance(rng, level.p_negative):
            base = -base
        return _Power(base, exponent)
    top = level.factor_max if small else level.leaf_max
    low = 2 if small else 1
    return _Leaf(Fraction(_signed(rng, low, top, level.p_negative)))


def _arithmetic_tree(
    rng: np.random.Generator, level: _ArithmeticLevel, operations: int, small: bool = False
) -> _Node:
    if operations == 0:
        return _arithmetic_leaf(rng, level, small)
    op = _pick(rng, level.ops)
    left_ops = _int(rng, 0, operations - 1)
    if op == "÷":
        for _ in range(8):
            left = _arithmetic_tree(rng, level, left_ops, small=True)
            value = _evaluate(left)
            divisors = [d for d in range(2, level.factor_max + 1) if value and value % d == 0]
            if divisors:
                divisor = _pick(rng, divisors)
                if _chance(rng, level.p_negative):
                    divisor = -divisor
                right_ops = operations - 1 - left_ops
                right: _Node = _Leaf(Fraction(divisor))
                if right_ops:  # keep the operation count: add the rest on the left side
                    extra = _arithmetic_tree(rng, level, right_ops - 1, small=True)
                    return _Op("+", _Op("÷", left, right), extra)
                return _Op("÷", left, right)
        op = "×"
    small_children = small or op == "×"
    left = _arithmetic_tree(rng, level, left_ops, small_children)
    right = _arithmetic_tree(rng, level, operations - 1 - left_ops, small_children)
    return _Op(op, left, right)


_ARITHMETIC_PHRASES = (
    "Compute {e}.",
    "Evaluate {e}.",
    "What is the value of {e}?",
    "Calculate {e}.",
    "Find the value of {e}.",
)


def _arithmetic(difficulty: int, rng: np.random.Generator) -> _Built:
    level = _ARITHMETIC[difficulty]
    while True:
        tree = _arithmetic_tree(rng, level, _int(rng, *level.operations))
        value = _evaluate(tree)
        if value.denominator == 1 and abs(value) <= 10**6:
            break
    text = _pick(rng, _ARITHMETIC_PHRASES).format(e=_expression_text(tree))
    return text, _latex(value), "integer"


# --------------------------------------------------------------------------- fractions


def _fraction_leaf(rng: np.random.Generator, max_den: int, p_negative: float) -> Fraction:
    den = _int(rng, 2, max_den)
    num = _pick(rng, [n for n in range(1, den) if gcd(n, den) == 1])
    if _chance(rng, 0.2):  # an improper fraction now and then
        num += den * _int(rng, 1, 2)
    return -Fraction(num, den) if _chance(rng, p_negative) else Fraction(num, den)


def _fraction_tree(
    rng: np.random.Generator, operands: int, ops: str, max_den: int, p_neg: float, p_int: float
) -> _Node:
    if operands == 1:
        if _chance(rng, p_int):
            return _Leaf(Fraction(_signed(rng, 1, 9, p_neg)))
        return _Leaf(_fraction_leaf(rng, max_den, p_neg))
    left = _int(rng, 1, operands - 1)
    return _Op(
        _pick(rng, ops),
        _fraction_tree(rng, left, ops, max_den, p_neg, p_int),
        _fraction_tree(rng, operands - left, ops, max_den, p_neg, p_int),
    )


_FRACTION_PHRASES = (
    "Compute {e}. Give the answer as a fraction in lowest terms.",
    "Simplify {e}.",
    "Evaluate {e}, writing the result as a reduced fraction.",
    "What is {e}? Express the answer as a fraction in simplest form.",
)


def _fractions(difficulty: int, rng: np.random.Generator) -> _Built:
    while True:
        if difficulty == 1:  # same denominator, add or subtract
            den = _int(rng, 3, 12)
            a, b = _int(rng, 1, den - 1), _int(rng, 1, den - 1)
            op = _pick(rng, "+-")
            if op == "-" and a < b:
                a, b = b, a
            tree: _Node = _Op(op, _Leaf(Fraction(a, den)), _Leaf(Fraction(b, den)))
            if a == b or gcd(a, den) != 1 or gcd(b, den) != 1:
                continue
        elif difficulty == 2:  # different denominators
            tree = _fraction_tree(rng, 2, "+-", 12, 0.0, 0.0)
        elif difficulty == 3:
            tree = _fraction_tree(rng, 2, "+-×÷", 15, 0.3, 0.0)
        elif difficulty == 4:
            tree = _fraction_tree(rng, 3, "+-×÷", 12, 0.3, 0.15)
        else:
            tree = _fraction_tree(rng, 4, "+-×÷", 15, 0.35, 0.15)
        try:
            value = _evaluate(tree)
        except ZeroDivisionError:
            continue
        if value != 0 and value.denominator <= 2000 and abs(value.numerator) <= 10**5:
            break
    text = _pick(rng, _FRACTION_PHRASES).format(e=_expression_text(tree))
    return text, _latex(value), _number_form(value)


# --------------------------------------------------------------------------- linear equations

_LINEAR_PHRASES = (
    "Solve for {v}: {eq}.",
    "Find {v} if {eq}.",
    "What value of {v} satisfies {eq}?",
    "Solve the equation {eq} for {v}.",
)


def _scaled(coefficient: int, inner: str) -> str:
    """``3(x - 2)``, ``-(x + 1)``."""
    if coefficient == 1:
        return f"({inner})"
    if coefficient == -1:
        return f"-({inner})"
    return f"{coefficient}({inner})"


def _with_constant(text: str, constant: int) -> str:
    if constant == 0:
        return text
    return f"{text} {'-' if constant < 0 else '+'} {abs(constant)}"


def _over(numerator: str, denominator: int, *, is_sum: bool) -> str:
    """``x/3`` or ``(2x - 1)/4``."""
    return f"({numerator})/{denominator}" if is_sum else f"{numerator}/{denominator}"


def _linear_equation(difficulty: int, rng: np.random.Generator) -> _Built:
    v = _pick(rng, ("x", "x", "x", "y", "n", "t"))
    while True:
        if difficulty == 1:
            a, x, b = _int(rng, 2, 9), _int(rng, 1, 10), _signed(rng, 1, 20, 0.3)
            c = a * x + b
            if c <= 0:
                continue
            equation = f"{_terms([(a, v), (b, '')])} = {c}"
            solution = Fraction(x)
        elif difficulty == 2:
            a, x, b = _signed(rng, 2, 12), _int(rng, -12, 12), _signed(rng, 1, 30)
            c = a * x + b
            side = _terms([(b, ""), (a, v)]) if _chance(rng, 0.4) else _terms([(a, v), (b, "")])
            equation = f"{c} = {side}" if _chance(rng, 0.3) else f"{side} = {c}"
            solution = Fraction(x)
        elif difficulty == 3:
            a, c = _signed(rng, 1, 12), _signed(rng, 1, 12)
            if a == c:
                continue
            x, b = _int(rng, -15, 15), _signed(rng, 1, 30)
            d = (a - c) * x + b
            equation = f"{_terms([(a, v), (b, '')])} = {_terms([(c, v), (d, '')])}"
            solution = Fraction(x)
        elif difficulty == 4:  # a(x + b) + c = d(x + e) + f, rational solution
            a, d = _signed(rng, 2, 9), _signed(rng, 2, 9)
            if a == d:
                continue
            b, e = _signed(rng, 1, 9), _signed(rng, 1, 9)
            c, f = _signed(rng, 0, 15), _signed(rng, 0, 15)
            solution = Fraction(d * e + f - a * b - c, a - d)
            left = _with_constant(_scaled(a, _terms([(1, v), (b, "")])), c)
            right = _with_constant(_scaled(d, _terms([(1, v), (e, "")])), f)
            equation = f"{left} = {right}"
        else:  # fractional coefficients: (p v + q)/r + s = (t v + u)/w
            p, t = _signed(rng, 1, 5), _signed(rng, 1, 5)
            r, w = _int(rng, 2, 9), _int(rng, 2, 9)
            q, u, s = _signed(rng, 0, 9), _signed(rng, 0, 9), _signed(rng, 0, 9)
            slope = Fraction(p, r) - Fraction(t, w)
            if slope == 0:
                continue
            solution = (Fraction(u, w) - Fraction(q, r) - s) / slope
            if solution.denominator > 60:
                continue
            left = _with_constant(_over(_terms([(p, v), (q, "")]), r, is_sum=q != 0), s)
            right = _over(_terms([(t, v), (u, "")]), w, is_sum=u != 0)
            equation = f"{left} = {right}"
        break
    text = _pick(rng, _LINEAR_PHRASES).format(v=v, eq=equation)
    return text, _latex(solution), _number_form(solution)


# --------------------------------------------------------------------------- linear systems

_SYSTEM_PHRASES = (
    "Solve the system: {e1}, {e2}. Give (x, y).",
    "Find x and y such that {e1} and {e2}. Answer as an ordered pair (x, y).",
    "Solve the simultaneous equations {e1}; {e2}. Write the answer as (x, y).",
)


def _system_equation(rng: np.random.Generator, a: int, b: int, c: int, rearrange: bool) -> str:
    """``a x + b y = c``, in a rearranged but equivalent layout when ``rearrange``."""
    layout = _int(rng, 0, 3) if rearrange else 0
    if layout == 1 and a != 0:  # a x = c - b y
        return f"{_terms([(a, 'x')])} = {_terms([(c, ''), (-b, 'y')])}"
    if layout == 2 and b != 0:  # b y = c - a x
        return f"{_terms([(b, 'y')])} = {_terms([(c, ''), (-a, 'x')])}"
    if layout == 3:  # c = a x + b y
        return f"{c} = {_terms([(a, 'x'), (b, 'y')])}"
    return f"{_terms([(a, 'x'), (b, 'y')])} = {c}"


def _linear_system(difficulty: int, rng: np.random.Generator) -> _Built:
    while True:
        if difficulty == 1:
            a, b, c, d = (_int(rng, 1, 3) for _ in range(4))
            if _chance(rng, 0.5):
                b = -b  # one subtraction keeps the elimination visible
        else:
            top = {2: 5, 3: 9, 4: 9, 5: 9}[difficulty]
            a, b, c, d = (_signed(rng, 0 if difficulty >= 4 else 1, top) for _ in range(4))
        det = a * d - b * c
        if det == 0:
            continue
        if difficulty <= 3:
            span = {1: (0, 8), 2: (-8, 8), 3: (-12, 12)}[difficulty]
            x, y = Fraction(_int(rng, *span)), Fraction(_int(rng, *span))
            e, f = int(a * x + b * y), int(c * x + d * y)
        else:
            e, f = _signed(rng, 0, 30), _signed(rng, 0, 30)
            x, y = Fraction(e * d - b * f, det), Fraction(a * f - c * e, det)
            if max(x.denominator, y.denominator) > 30:
                continue
            if x.denominator == 1 and y.denominator == 1 and _chance(rng, 0.7):
                continue  # mostly fractional solutions at this level
        if (a == 0 and b == 0) or (c == 0 and d == 0):
            continue
        break
    rearrange = difficulty == 5
    e1 = _system_equation(rng, a, b, e, rearrange)
    e2 = _system_equation(rng, c, d, f, rearrange)
    text = _pick(rng, _SYSTEM_PHRASES).format(e1=e1, e2=e2)
    return text, f"({_latex(x)}, {_latex(y)})", "tuple"


# --------------------------------------------------------------------------- quadratics

_QUADRATIC_PHRASES = (
    "Find all real solutions of {eq}.",
    "Solve {eq} over the real numbers. Give all solutions.",
    "Find every real number {v} such that {eq}.",
    "Determine all real roots of the equation {eq}.",
)


def _squarefree(n: int) -> tuple[int, int]:
    """``(k, m)`` with ``n == k*k*m`` and ``m`` square-free."""
    k, m = 1, n
    factor = 2
    while factor * factor <= m:
        while m % (factor * factor) == 0:
            m //= factor * factor
            k *= factor
        factor += 1
    return k, m


def _roots_latex(a: int, b: int, c: int) -> tuple[str, str]:
    """The set of real roots of ``a x^2 + b x + c`` (discriminant >= 0) and its answer form."""
    disc = b * b - 4 * a * c
    root = isqrt(disc)
    if root * root == disc:
        roots = sorted({Fraction(-b - root, 2 * a), Fraction(-b + root, 2 * a)})
        return "\\{" + ", ".join(_latex(r) for r in roots) + "\\}", "set"
    k, m = _squarefree(disc)
    p, q = -b, 2 * a
    if q < 0:
        p, q = -p, -q  # (p ± k√m)/q with q > 0: the ± is symmetric
    g = gcd(gcd(p, k), q)
    p, k, q = p // g, k // g, q // g
    surd = f"{'' if k == 1 else k}\\sqrt{{{m}}}"
    if q == 1:
        low, high = (f"{p}-{surd}", f"{p}+{surd}") if p else (f"-{surd}", surd)
    elif p:
        low, high = f"\\frac{{{p}-{surd}}}{{{q}}}", f"\\frac{{{p}+{surd}}}{{{q}}}"
    else:
        low, high = f"-\\frac{{{surd}}}{{{q}}}", f"\\frac{{{surd}}}{{{q}}}"
    return f"\\{{{low}, {high}\\}}", "surd"


def _quadratic_layout(rng: np.random.Generator, a: int, b: int, c: int, v: str) -> str:
    """``a v^2 + b v + c = 0`` written in one of several equivalent layouts."""
    layout = _int(rng, 0, 3)
    sq = f"{v}^2"
    if layout == 1:  # a v^2 = -b v - c
        return f"{_terms([(a, sq)])} = {_terms([(-b, v), (-c, '')])}"
    if layout == 2 and c != 0:  # a v^2 + b v = -c
        return f"{_terms([(a, sq), (b, v)])} = {-c}"
    if layout == 3 and b != 0:  # v(a v + b) = -c
        return f"{v}({_terms([(a, v), (b, '')])}) = {-c}"
    return f"{_terms([(a, sq), (b, v), (c, '')])} = 0"


def _quadratic(difficulty: int, rng: np.random.Generator) -> _Built:
    v = _pick(rng, ("x", "x", "x", "t", "y"))
    while True:
        if difficulty == 1:
            r, s = _int(rng, -6, 6), _int(rng, -6, 6)
            if r == s:
                continue
            a, b, c = 1, -(r + s), r * s
        elif difficulty == 2:
            r = _int(rng, -10, 10)
            s = r if _chance(rng, 0.2) else _int(rng, -10, 10)
            k = _pick(rng, (1, 1, 2, 3, -1))
            a, b, c = k, -k * (r + s), k * r * s
        elif difficulty == 3:  # (p v - q)(r v - s): rational roots
            p, r = _int(rng, 1, 5), _int(rng, 1, 5)
            q, s = _signed(rng, 1, 9), _signed(rng, 0, 9)
            if p == 1 and r == 1:
                continue
            a, b, c = p * r, -(p * s + q * r), q * s
        elif difficulty == 4:
            a, b, c = 1, _signed(rng, 0, 10), _signed(rng, 1, 20)
        else:
            a, b, c = _signed(rng, 2, 5, 0.3), _signed(rng, 1, 12), _signed(rng, 1, 15)
        g = gcd(gcd(a, b), c)
        if difficulty >= 3 and g != 1:
            continue
        disc = b * b - 4 * a * c
        if disc < 0:
            continue
        is_square = isqrt(disc) ** 2 == disc
        if difficulty >= 4 and is_square:
            continue
        break
    answer, form = _roots_latex(a, b, c)
    if difficulty >= 4:
        equation = _quadratic_layout(rng, a, b, c, v)
    else:
        equation = f"{_terms([(a, f'{v}^2'), (b, v), (c, '')])} = 0"
    text = _pick(rng, _QUADRATIC_PHRASES).format(eq=equation, v=v)
    return text, answer, form


# --------------------------------------------------------------------------- percentages

_PERCENT_OF = (
    ("What is {p}% of {n}?", False),
    ("A class has {n} students, and {p}% of them walk to school. How many students walk?", True),
    ("A survey asked {n} people and {p}% of them said yes. How many people said yes?", True),
    (
        "A farmer harvested {n} kg of apples and sold {p}% of them. How many kilograms were sold?",
        False,
    ),
    (
        "A recipe needs {n} grams of flour, and {p}% of it is whole wheat. How many grams of whole "
        "wheat flour does it need?",
        False,
    ),
)
_PERCENT_CHANGE = (
    (
        "A jacket costs ${n}. It is on sale for {p}% off. What is the sale price in dollars?",
        -1,
        False,
    ),
    ("A shop raises the price of a ${n} lamp by {p}%. What is the new price in dollars?", 1, False),
    (
        "A town has {n} residents. Its population grows by {p}%. How many residents does it have "
        "now?",
        1,
        True,
    ),
    (
        "A tank holds {n} liters of water, and {p}% of the water leaks out. How many liters are "
        "left in the tank?",
        -1,
        False,
    ),
    (
        "Last year Maria earned ${n}. This year her salary increased by {p}%. What is her salary "
        "this year, in dollars?",
        1,
        False,
    ),
)
_PERCENT_RATIO = (
    "{a} is what percent of {b}?",
    "A student answered {a} of {b} questions correctly. What percentage of the questions did she "
    "answer correctly?",
    "A jar holds {b} marbles, and {a} of them are red. What percent of the marbles are red?",
)
_PERCENT_TWO_STEPS = (
    "The price of a ${n} bike is increased by {p}% and then the new price is decreased by {q}%. "
    "What is the final price, in dollars?",
    "A share worth ${n} rises {p}% on Monday and then falls {q}% on Tuesday. What is it worth "
    "after Tuesday, in dollars?",
    "A ${n} coat is discounted by {p}% and later the sale price is raised by {q}%. What does the "
    "coat cost now, in dollars?",
)
_PERCENT_REVERSE = (
    ("After a {p}% discount, a coat costs ${m}. What was the original price, in dollars?", -1),
    (
        "After a {p}% raise, Sam earns ${m} per month. How much did Sam earn per month before the "
        "raise, in dollars?",
        1,
    ),
    ("A town's population grew by {p}% to {m}. What was the population before the increase?", 1),
)
_PERCENT_COMPOUND = (
    (
        "${n} is deposited in an account that earns {p}% interest per year, compounded annually. "
        "How much is in the account after {k} years, in dollars?",
        1,
    ),
    (
        "A car worth ${n} loses {p}% of its value every year. What is it worth after {k} years, "
        "in dollars?",
        -1,
    ),
)


def _money(value: Fraction) -> bool:
    return value > 0 and (value * 100).denominator == 1


def _percentage(difficulty: int, rng: np.random.Generator) -> _Built:
    while True:
        if difficulty <= 2:
            template, counts = _pick(rng, _PERCENT_OF)
            if difficulty == 1:
                p, n = _pick(rng, (10, 20, 25, 50)), 20 * _int(rng, 1, 20)
            else:
                p, n = 5 * _int(rng, 1, 19), _int(rng, 10, 500)
            value = Fraction(p * n, 100)
            if counts and value.denominator != 1:
                continue
            text = template.format(p=p, n=n)
        elif difficulty == 3:
            if _chance(rng, 0.6):
                template, sign, counts = _pick(rng, _PERCENT_CHANGE)
                p, n = _int(rng, 1, 19) * 5, _int(rng, 20, 900)
                value = n * (1 + Fraction(sign * p, 100))
                if (counts and value.denominator != 1) or not _money(value):
                    continue
                text = template.format(p=p, n=n)
            else:
                b = _int(rng, 8, 200)
                a = _int(rng, 1, b)
                value = Fraction(100 * a, b)
                if value.denominator != 1:
                    continue
                text = _pick(rng, _PERCENT_RATIO).format(a=a, b=b)
        elif difficulty == 4:
            if _chance(rng, 0.7):
                index = _int(rng, 0, len(_PERCENT_TWO_STEPS) - 1)
                signs = (-1, 1) if index == 2 else (1, -1)
                p, q, n = _int(rng, 1, 12) * 5, _int(rng, 1, 12) * 5, _int(rng, 20, 2000)
                value = n * (1 + Fraction(signs[0] * p, 100)) * (1 + Fraction(signs[1] * q, 100))
                if not _money(value):
                    continue
                text = _PERCENT_TWO_STEPS[index].format(n=n, p=p, q=q)
            else:
                old = _int(rng, 10, 500)
                new = old + _signed(rng, 1, old - 1)
                change = Fraction(100 * (new - old), old)
                if change.denominator != 1:
                    continue
                value = abs(change)
                direction = "increase" if new > old else "decrease"
                text = (
                    f"The price of a ticket changed from ${old} to ${new}. By what percent did "
                    f"the price {direction}?"
                )
        else:
            if _chance(rng, 0.5):
                template, sign = _pick(rng, _PERCENT_REVERSE)
                p, value = _int(rng, 1, 18) * 5, Fraction(_int(rng, 20, 3000))
                m = value * (1 + Fraction(sign * p, 100))
                if m.denominator != 1:
                    continue
                text = template.format(p=p, m=m)
            else:
                template, sign = _pick(rng, _PERCENT_COMPOUND)
                p, k, n = _int(rng, 1, 12), _int(rng, 2, 3), 100 * _int(rng, 1, 100)
                value = n * (1 + Fraction(sign * p, 100)) ** k
                if not _money(value):
                    continue
                text = template.format(n=n, p=p, k=k)
        break
    return text, _decimal(value), "integer" if value.denominator == 1 else "decimal"


# --------------------------------------------------------------------------- counting

_WORDS = (
    "BANANA",
    "LETTER",
    "PEPPER",
    "BALLOON",
    "COFFEE",
    "ASSESS",
    "COMMITTEE",
    "TENNESSEE",
    "STATISTICS",
    "MISSISSIPPI",
    "BOOKKEEPER",
    "PARALLEL",
    "CINCINNATI",
    "ALABAMA",
    "BOOTH",
    "APPLE",
    "LLAMA",
    "TOMORROW",
    "RACECAR",
    "SUCCESS",
)
# (singular, plural) pairs of two kinds of people.
_GROUPS = (
    (("man", "men"), ("woman", "women")),
    (("teacher", "teachers"), ("student", "students")),
    (("boy", "boys"), ("girl", "girls")),
    (("senior", "seniors"), ("junior", "juniors")),
)


def _count(number: int, noun: tuple[str, str]) -> str:
    """``1 girl``, ``3 girls``."""
    return f"{number} {noun[0] if number == 1 else noun[1]}"


def _power(v: str, k: int) -> str:
    return v if k == 1 else f"{v}^{k}"


def _multinomial(word: str) -> int:
    total = factorial(len(word))
    for letter in sorted(set(word)):
        total //= factorial(word.count(letter))
    return total


def _binomial_term(a: int, b: int, v: str) -> str:
    """``(2x - 3)``-style base; ``a`` multiplies the variable."""
    return f"({_terms([(a, v), (b, '')])})"


def _counting(difficulty: int, rng: np.random.Generator) -> _Built:
    kind = _int(rng, 0, 2)
    if difficulty == 1:
        if kind == 0:
            n = _int(rng, 4, 12)
            k = _int(rng, 2, n - 1)
            text = f"In how many ways can a committee of {k} be chosen from {n} people?"
            value = comb(n, k)
        elif kind == 1:
            k = _int(rng, 3, 8)
            thing = _pick(rng, ("books", "paintings", "trophies"))
            place = {"books": "on a shelf", "paintings": "on a wall", "trophies": "in a cabinet"}
            text = (
                f"In how many different orders can {k} distinct {thing} be arranged {place[thing]}?"
            )
            value = factorial(k)
        else:
            n = _int(rng, 4, 12)
            k = _int(rng, 2, 4)
            items = _pick(rng, (("pizza shop", "toppings"), ("school", "elective courses")))
            text = (
                f"A {items[0]} offers {n} {items[1]}. How many ways are there to pick {k} "
                f"different {items[1]}?"
            )
            value = comb(n, k)
    elif difficulty == 2:
        n = _int(rng, 5, 15)
        if kind == 0:
            text = (
                f"In how many ways can gold, silver and bronze medals be awarded to {n} "
                "runners if no runner gets two medals?"
            )
            value = perm(n, 3)
        elif kind == 1:
            text = (
                f"At a party, each of {n} guests shakes hands with every other guest exactly "
                "once. How many handshakes take place?"
            )
            value = comb(n, 2)
        else:
            text = (
                f"A club of {n} members elects a president and a vice-president (two "
                "different people). How many outcomes are possible?"
            )
            value = perm(n, 2)
    elif difficulty == 3:
        if kind == 0:
            n = _int(rng, 5, 15)
            k = _int(rng, 2, n - 2)
            v = _pick(rng, ("x", "y", "t"))
            text = f"What is the coefficient of {v}^{k} in the expansion of (1 + {v})^{n}?"
            value = comb(n, k)
        else:
            first, second = _pick(rng, _GROUPS)
            a, b = _int(rng, 3, 9), _int(rng, 3, 9)
            i, j = _int(rng, 1, a - 1), _int(rng, 1, b - 1)
            text = (
                f"A committee of {_count(i, first)} and {_count(j, second)} is to be chosen from "
                f"{_count(a, first)} and {_count(b, second)}. How many different committees "
                "are possible?"
            )
            value = comb(a, i) * comb(b, j)
    elif difficulty == 4:
        if kind == 0:
            word = _pick(rng, _WORDS)
            text = f"How many distinct arrangements are there of the letters of the word {word}?"
            value = _multinomial(word)
        elif kind == 1:
            first, second = _pick(rng, _GROUPS)
            a, b = _int(rng, 3, 8), _int(rng, 3, 8)
            k = _int(rng, 2, min(a, 5))
            text = (
                f"A team of {k} is chosen from {_count(a, first)} and {_count(b, second)}. In how "
                f"many ways can this be done if the team must include at least one {second[0]}?"
            )
            value = comb(a + b, k) - comb(a, k)
        else:
            n = _int(rng, 4, 10)
            k = _int(rng, 1, n - 1)
            c = _int(rng, 2, 5)
            v = _pick(rng, ("x", "y"))
            text = f"Find the coefficient of {_power(v, k)} in the expansion of ({v} + {c})^{n}."
            value = comb(n, k) * c ** (n - k)
    else:
        if kind == 0:
            n = _int(rng, 4, 10)
            k = _int(rng, 1, n - 1)
            a, b = _signed(rng, 1, 4), _signed(rng, 1, 5)
            if abs(a) == 1 and abs(b) == 1:
                b = 2 * b
            v = _pick(rng, ("x", "y"))
            text = (
                f"What is the coefficient of {_power(v, k)} in the expansion of "
                f"{_binomial_term(a, b, v)}^{n}?"
            )
            value = comb(n, k) * a**k * b ** (n - k)
        elif kind == 1:
            n = _int(rng, 4, 9)
            together = _chance(rng, 0.5)
            how = "must" if together else "refuse to"
            text = (
                f"In how many ways can {n} people stand in a line if two particular people "
                f"{how} stand next to each other?"
            )
            value = 2 * factorial(n - 1) if together else factorial(n) - 2 * factorial(n - 1)
        else:
            first, second = _pick(rng, _GROUPS)
            a, b = _int(rng, 4, 9), _int(rng, 4, 9)
            k = _int(rng, 3, 6)
            j = _int(rng, 1, min(k, b) - 1)
            text = (
                f"A committee of {k} is chosen from {_count(a, first)} and {_count(b, second)}. In "
                f"how many ways can this be done if it contains exactly {_count(j, second)}?"
            )
            value = comb(b, j) * comb(a, k - j)
    return text, str(value), "integer"


_BUILDERS: dict[str, Callable[[int, np.random.Generator], _Built]] = {
    "arithmetic": _arithmetic,
    "fractions": _fractions,
    "linear_equation": _linear_equation,
    "linear_system": _linear_system,
    "quadratic": _quadratic,
    "percentage": _percentage,
    "counting": _counting,
}
