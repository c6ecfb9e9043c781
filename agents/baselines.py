r"""Built-in baseline agents: random text, and a rule-based solver for procedural math problems.

Why: a benchmark needs floors and sanity checks that cost nothing to run. :class:`RandomTextAgent`
is the floor (any reward it earns is noise or a bug in a checker); :class:`MathSolverAgent`
shows that the procedural math families are solvable from their text alone and that their
answers survive math-verify, and it never boxes a guess for text it does not understand.

Example:
    >>> from arenagym.agents.specs import Agent
    >>> solver = MathSolverAgent()
    >>> solver.reset("Solve the problem.")
    >>> solver.act("Solve for x: 3x - 7 = 11.").endswith(r"\boxed{6}.")
    True
    >>> solver.act("Incorrect, try again.").endswith(r"\boxed{6}.")
    True
    >>> isinstance(RandomTextAgent(seed=1), Agent)
    True
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from math import comb, factorial, perm
from typing import ClassVar

import sympy

from arenagym.envs.math.procedural import FAMILIES as MATH_FAMILIES

__all__ = ["MathSolverAgent", "RandomTextAgent", "Solution"]

# --------------------------------------------------------------------------- random text

_NON_ASCII = "éüßñøåçλπΣΩ€£¥→≤≥√∞中文字한글日本"
_ALPHABET = string.ascii_letters + string.digits + string.punctuation + "     " + _NON_ASCII


class RandomTextAgent:
    """Replies with random text: letters, digits, punctuation, spaces and some non-ASCII.

    Each reply has a random length from 0 to ``max_length`` characters. Replies are a fixed
    sequence for a given ``seed`` (``None``: seeded from the OS); :meth:`reset` clears the
    episode state but does not reseed, so a new episode continues the sequence.

    Example:
        >>> a, b = RandomTextAgent(seed=7, max_length=20), RandomTextAgent(seed=7, max_length=20)
        >>> a.reset("Play.")
        >>> reply = a.act("Your move.")
        >>> reply == b.act("Anything.") and len(reply) <= 20
        True
    """

    def __init__(self, seed: int | None = None, max_length: int = 200) -> None:
        if max_length < 0:
            raise ValueError(f"max_length must be >= 0, got {max_length}")
        self.max_length = max_length
        self._rng = random.Random(seed)
        self.turns = 0

    def reset(self, system_prompt: str) -> None:
        """Start a new episode (the prompt is ignored; the random stream is not reseeded)."""
        self.turns = 0

    def act(self, observation: str) -> str:
        """A random string, whatever ``observation`` says."""
        self.turns += 1
        length = self._rng.randint(0, self.max_length)
        return "".join(self._rng.choice(_ALPHABET) for _ in range(length))


# --------------------------------------------------------------------------- tokens and runs

_MAX_TOKENS = 400
_MAX_DIGITS = 40
_MAX_EXPONENT = 64
_TOKEN = re.compile(r"[0-9]+(?:\.[0-9]+)?|[A-Za-z]+|\*\*|[-+*/^()=×÷·−]|\S")
_DIGITS = "0123456789"
_OPERATORS = {"+", "-", "*", "/", "^", "(", ")", "=", "×", "÷", "·", "−", "**"}
_NORMALISE = {"×": "*", "·": "*", "÷": "/", "−": "-", "**": "^"}


@dataclass(frozen=True)
class _Run:
    """A maximal stretch of math tokens (numbers, one-letter names, operators) in the text."""

    tokens: tuple[str, ...]
    start: int
    end: int
    text: str

    @property
    def has_digit(self) -> bool:
        return any(token[0] in _DIGITS for token in self.tokens)


def _runs(text: str) -> list[_Run]:
    """The math runs of ``text``; words of two or more letters and other symbols end a run."""
    runs: list[_Run] = []
    tokens: list[str] = []
    start = end = 0
    for match in _TOKEN.finditer(text):
        token = match.group()
        is_name = token.isalpha() and len(token) == 1
        is_math = token[0] in _DIGITS or token in _OPERATORS or is_name
        if is_math:
            if not tokens:
                start = match.start()
            tokens.append(_NORMALISE.get(token, token))
            end = match.end()
        elif tokens:
            runs.append(_Run(tuple(tokens), start, end, text[start:end]))
            tokens = []
    if tokens:
        runs.append(_Run(tuple(tokens), start, end, text[start:end]))
    return runs


def _digits_outside(text: str, runs: list[_Run]) -> bool:
    """Whether ``text`` has a digit that none of ``runs`` covers (so it holds more than we read)."""
    covered = [False] * len(text)
    for run in runs:
        for index in range(run.start, run.end):
            covered[index] = True
    return any(char.isdigit() and not covered[i] for i, char in enumerate(text))


# --------------------------------------------------------------------------- expression parser


class _ParseError(ValueError):
    """The tokens are not an expression this solver reads."""


class _Parser:
    """Recursive descent over one run: sums, products (also implicit: ``3x``, ``2(x + 1)``),
    unary signs, small integer powers; numbers become exact sympy Rationals."""

    def __init__(self, tokens: tuple[str, ...]) -> None:
        if len(tokens) > _MAX_TOKENS:
            raise _ParseError("expression too long")
        self.tokens = tokens
        self.position = 0

    def parse(self) -> sympy.Expr:
        value = self._sum()
        if self.position != len(self.tokens):
            raise _ParseError(f"unexpected {self.tokens[self.position]!r}")
        return value

    def _peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def _take(self) -> str:
        token = self._peek()
        if token is None:
            raise _ParseError("unexpected end")
        self.position += 1
        return token

    def _sum(self) -> sympy.Expr:
        value = self._product()
        while self._peek() in ("+", "-"):
            sign = self._take()
            right = self._product()
            value = value + right if sign == "+" else value - right
            _check_size(value)
        return value

    def _product(self) -> sympy.Expr:
        value = self._unary()
        while True:
            token = self._peek()
            if token in ("*", "/"):
                self._take()
                right = self._unary()
                if token == "*":
                    value = value * right
                else:
                    if right.free_symbols or right == 0:
                        raise _ParseError("division by zero or by a variable")
                    value = value / right
            elif token is not None and (token == "(" or token.isalpha()):
                value = value * self._power()  # implicit product: 3x, 2(x + 1), x(x + 4)
            else:
                return value
            _check_size(value)

    def _unary(self) -> sympy.Expr:
        if self._peek() in ("+", "-"):
            sign = self._take()
            value = self._unary()
            return -value if sign == "-" else value
        return self._power()

    def _power(self) -> sympy.Expr:
        base = self._atom()
        if self._peek() != "^":
            return base
        self._take()
        negative = self._peek() == "-"
        if negative:
            self._take()
        token = self._take()
        if not token.isdigit() or int(token) > _MAX_EXPONENT:
            raise _ParseError("only small whole-number exponents are read")
        exponent = -int(token) if negative else int(token)
        if exponent < 0 and (base.free_symbols or base == 0):
            raise _ParseError("negative power of a variable or of zero")
        value = base**exponent
        _check_size(value)
        return value

    def _atom(self) -> sympy.Expr:
        token = self._take()
        if token[0].isdigit():
            if len(token) > _MAX_DIGITS:
                raise _ParseError("number too long")
            return sympy.Rational(token)
        if token.isalpha():
            return sympy.Symbol(token)
        if token == "(":
            value = self._sum()
            if self._take() != ")":
                raise _ParseError("unbalanced parentheses")
            return value
        raise _ParseError(f"unexpected {token!r}")


def _check_size(value: sympy.Expr) -> None:
    if value.is_Rational and max(abs(value.p), value.q).bit_length() > 2000:
        raise _ParseError("number too large")


def _degree_bound(expr: sympy.Expr) -> int:
    """An upper bound on the total degree of ``expr`` once expanded (it is a polynomial)."""
    if expr.is_Symbol:
        return 1
    if expr.is_Add:
        return max(_degree_bound(arg) for arg in expr.args)
    if expr.is_Mul:
        return sum(_degree_bound(arg) for arg in expr.args)
    if expr.is_Pow:
        return _degree_bound(expr.base) * max(int(expr.exp), 0)
    return 0


def _parse(tokens: tuple[str, ...]) -> sympy.Expr:
    """The expanded polynomial of ``tokens``; refuses ones whose expansion would be huge."""
    value = _Parser(tokens).parse()
    degree = _degree_bound(value)
    if degree > 200 or comb(degree + len(value.free_symbols), degree) > 2_000:
        raise _ParseError("the expansion would be too large")
    return sympy.expand(value)


def _equation(run: _Run) -> tuple[sympy.Expr, sympy.Expr] | None:
    """The two sides of ``run`` if it is one equation ``lhs = rhs``."""
    if run.tokens.count("=") != 1:
        return None
    cut = run.tokens.index("=")
    return _parse(run.tokens[:cut]), _parse(run.tokens[cut + 1 :])


# --------------------------------------------------------------------------- answers


def _latex(value: sympy.Expr) -> str:
    return sympy.latex(value)


def _decimal_or_fraction(value: Fraction) -> str:
    """``12.5`` when the decimal terminates within 6 places, else ``\\frac{p}{q}``."""
    if (value * 10**6).denominator == 1:
        text = f"{value.numerator * 10**6 // value.denominator:d}"
        negative = text.startswith("-")
        digits = text.lstrip("-").rjust(7, "0")
        whole, part = digits[:-6], digits[-6:].rstrip("0")
        return ("-" if negative else "") + (f"{whole}.{part}" if part else whole)
    return _latex(sympy.Rational(value.numerator, value.denominator))


@dataclass(frozen=True)
class Solution:
    """A worked answer: a short derivation and the answer as LaTeX (without the box)."""

    reasoning: str
    answer: str

    def reply(self) -> str:
        return f"{self.reasoning} The answer is \\boxed{{{self.answer}}}."


# Words saying the question asks for something other than the solutions themselves.
_OTHER_TARGET = re.compile(
    r"\b(sum|product|difference|ratio|quotient|average|mean|greatest|least|largest|smallest|"
    r"maximum|minimum|positive|negative|integer|integers|how\s+many|count|probability|"
    r"perimeter|area|distance|slope|vertex|discriminant|factor|factori[sz]e|expand|prove|show|"
    r"inequality|approximate|nearest|round|rounded|decimal|percent|percentage|modulo|mod|"
    r"remainder|digit|digits)\b",
    re.IGNORECASE,
)


def _solve_equations(text: str, runs: list[_Run]) -> Solution | None:
    equation_runs = [run for run in runs if "=" in run.tokens]
    if not equation_runs or _digits_outside(text, equation_runs) or _OTHER_TARGET.search(text):
        return None
    equations = []
    for run in equation_runs:
        sides = _equation(run)
        if sides is None:
            return None
        equations.append(sympy.expand(sides[0] - sides[1]))
    symbols = sorted(set().union(*(e.free_symbols for e in equations)), key=str)
    names = {str(symbol) for symbol in symbols}
    # Letters named outside the equations ("solve for x", "(x, y)", "what is y?"): all must be
    # unknowns of the equations, and a word made of them ("xy") asks for something else.
    mentioned = {
        token
        for run in runs
        if run not in equation_runs
        for token in run.tokens
        if token.isalpha() and token not in ("a", "A", "I")
    }
    combined = [w for w in re.findall(r"\b[A-Za-z]{2,3}\b", text) if set(w) <= names]
    if mentioned - names or combined:
        return None
    if len(equations) == 1 and len(symbols) == 1:
        return _solve_one(equation_runs[0], equations[0], symbols[0], text)
    if len(equations) == 2 and len(symbols) == 2:
        return _solve_pair(equation_runs, equations, symbols, text, mentioned)
    return None


def _solve_one(run: _Run, expr: sympy.Expr, symbol: sympy.Symbol, text: str) -> Solution | None:
    poly = sympy.Poly(expr, symbol)
    degree = poly.degree()
    shown = run.text
    if degree == 1:
        a, b = poly.all_coeffs()
        root = -b / a
        return Solution(
            f"Collecting terms in {shown} gives {_latex(a * symbol + b)} = 0, so {symbol} = "
            f"{_latex(root)}.",
            _latex(root),
        )
    if degree != 2:
        return None
    a, b, c = poly.all_coeffs()
    disc = b * b - 4 * a * c
    standard = _latex(a * symbol**2 + b * symbol + c)
    if disc < 0:
        if not re.search(r"\breal\b", text, re.IGNORECASE):
            return None
        return Solution(
            f"Rewriting {shown} as {standard} = 0, the discriminant is {disc} < 0, so there are "
            "no real solutions.",
            "\\emptyset",
        )
    root = sympy.sqrt(disc)  # sympy writes it as k*sqrt(m), m square-free
    roots = [(-b - root) / (2 * a), (-b + root) / (2 * a)]
    roots = sorted({sympy.expand(r) for r in roots}, key=lambda r: float(sympy.N(r)))
    listed = ", ".join(_latex(r) for r in roots)
    return Solution(
        f"Rewriting {shown} as {standard} = 0, the discriminant is {disc}, and the quadratic "
        f"formula gives {symbol} = {listed}.",
        "\\{" + listed + "\\}",
    )


_PAIR = re.compile(r"\(\s*([A-Za-z])\s*,\s*([A-Za-z])\s*\)")


def _solve_pair(
    runs: list[_Run],
    equations: list[sympy.Expr],
    symbols: list[sympy.Symbol],
    text: str,
    mentioned: set[str],
) -> Solution | None:
    """Two linear equations in two unknowns: the pair, ordered as the text's ``(x, y)`` says
    (else alphabetically), or one unknown when the text names only that one."""
    if any(sympy.Poly(e, *symbols).total_degree() != 1 for e in equations):
        return None
    order = symbols
    pair = _PAIR.search(text)
    if pair and {pair.group(1), pair.group(2)} == {str(s) for s in symbols}:
        order = [sympy.Symbol(pair.group(1)), sympy.Symbol(pair.group(2))]
    solutions = sympy.linsolve(equations, order)
    if len(solutions) != 1:
        return None
    (values,) = solutions
    if any(v.free_symbols for v in values):
        return None  # infinitely many solutions
    shown = " and ".join(run.text for run in runs)
    if len(mentioned) == 1 and not pair:
        (name,) = mentioned
        value = dict(zip((str(s) for s in order), values, strict=True))[name]
        return Solution(
            f"Eliminating a variable from {shown} gives {name} = {_latex(value)}.", _latex(value)
        )
    answer = "(" + ", ".join(_latex(v) for v in values) + ")"
    names = ", ".join(str(s) for s in order)
    return Solution(f"Eliminating a variable from {shown} gives ({names}) = {answer}.", answer)


def _solve_arithmetic(text: str, runs: list[_Run]) -> Solution | None:
    numeric = [run for run in runs if run.has_digit]
    if len(numeric) != 1 or _digits_outside(text, numeric) or _OTHER_TARGET.search(text):
        return None
    (run,) = numeric
    if not any(op in run.tokens for op in ("+", "-", "*", "/", "^")) or "=" in run.tokens:
        return None
    value = _parse(run.tokens)
    if not value.is_Rational:
        return None
    return Solution(f"Working out {run.text} exactly gives {_latex(value)}.", _latex(value))


# --------------------------------------------------------------------------- percentages

_NUMBER = re.compile(r"(\$)?([0-9]+(?:\.[0-9]+)?)(\s*(?:%|percent\b))?", re.IGNORECASE)
_UP = (
    r"increase[sd]?|rais(?:e|es|ed|ing)|rises?|rose|risen|grow(?:s|n)?|grew|gain(?:s|ed)?|"
    r"earn(?:s|ed)?|interest|markup|up|more|appreciat\w*"
)
_DOWN = (
    r"decrease[sd]?|discount(?:s|ed)?|off|drop(?:s|ped)?|fall(?:s|en)?|fell|los(?:e|es|t|ing)|"
    r"leak(?:s|ed)?|reduc\w*|declin\w*|cut|less|down|depreciat\w*|lower(?:s|ed)?|shrink(?:s)?|"
    r"shrank"
)
_DIRECTION = re.compile(rf"\b(?:(?P<up>{_UP})|(?P<down>{_DOWN}))\b", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.?!;](?=\s|$)")


@dataclass(frozen=True)
class _Number:
    value: Fraction
    start: int
    end: int
    percent: bool


def _direction(text: str, number: _Number, percents: list[_Number]) -> int:
    """+1 / -1 for the change a percentage describes (the nearest verb in its clause), else 0."""
    left = max([m.end() for m in _SENTENCE_END.finditer(text, 0, number.start)], default=0)
    left = max([left] + [p.end for p in percents if p.end <= number.start])
    ends = [m.start() for m in _SENTENCE_END.finditer(text, number.end)]
    right = min(
        [ends[0] if ends else len(text)] + [p.start for p in percents if p.start > number.end]
    )
    before = list(_DIRECTION.finditer(text, left, number.start))
    after = list(_DIRECTION.finditer(text, number.end, right))
    match = before[-1] if before else after[0] if after else None
    if match is None:
        return 0
    return 1 if match.group("up") else -1


def _solve_percentage(text: str) -> Solution | None:
    if not re.search(r"%|\bpercent", text, re.IGNORECASE):
        return None
    numbers = [
        _Number(Fraction(m.group(2)), m.start(), m.end(), bool(m.group(3)))
        for m in _NUMBER.finditer(text)
    ]
    if any(len(m.group(2)) > _MAX_DIGITS for m in _NUMBER.finditer(text)):
        return None
    percents = [n for n in numbers if n.percent]
    plain = [n for n in numbers if not n.percent]
    sentences = [s for s in re.split(r"(?<=[.?!])\s+", text.strip()) if s]
    question = next(
        (s for s in reversed(sentences) if "?" in s), sentences[-1] if sentences else ""
    )
    lowered = text.lower()

    if re.search(r"what\s+(?:percent|percentage)", lowered):
        if percents or len(plain) != 2:
            return None
        change = re.search(
            r"from\s+\$?([0-9]+(?:\.[0-9]+)?)\s+to\s+\$?([0-9]+(?:\.[0-9]+)?)", lowered
        )
        if change:
            old, new = Fraction(change.group(1)), Fraction(change.group(2))
            if old == 0:
                return None
            value = abs(new - old) / old * 100
            return Solution(
                f"The change is |{new} - {old}| = {abs(new - old)} on a base of {old}, which is "
                f"{_decimal_or_fraction(value)} percent.",
                _decimal_or_fraction(value),
            )
        of = [n for n in plain if re.search(r"\bof\s+\$?$", text[: n.start])]
        whole = of[0] if len(of) == 1 else max(plain, key=lambda n: n.value)
        part = plain[1] if whole is plain[0] else plain[0]
        if whole.value == 0:
            return None
        value = part.value / whole.value * 100
        return Solution(
            f"The part is {part.value} out of {whole.value}, and {part.value}/{whole.value} = "
            f"{_decimal_or_fraction(value)} percent.",
            _decimal_or_fraction(value),
        )

    if not percents:
        return None
    periods = 1
    years = re.search(r"\b([0-9]+)\s+years?\b", text, re.IGNORECASE)
    if years:
        if not re.search(r"\b(?:every|each|per|a)\s+year\b|\bannually\b", text, re.IGNORECASE):
            return None
        periods = int(years.group(1))
        plain = [n for n in plain if n.start != years.start(1)]
        if periods > 100:
            return None
    if len(plain) != 1:
        return None
    base = plain[0].value
    directions = [_direction(text, p, percents) for p in percents]
    reverse = re.search(
        r"\b(?:original|originally|before|initial|initially|previous|previously)\b", question, re.I
    )
    if all(d == 0 for d in directions) and len(percents) == 1 and periods == 1 and not reverse:
        value = base * percents[0].value / 100
        return Solution(
            f"{percents[0].value}% of {base} is {base} × {percents[0].value}/100 = "
            f"{_decimal_or_fraction(value)}.",
            _decimal_or_fraction(value),
        )
    if any(d == 0 for d in directions):
        return None
    factor = Fraction(1)
    steps = []
    for percent, direction in zip(percents, directions, strict=True):
        factor *= 1 + direction * percent.value / 100
        steps.append(f"{'+' if direction > 0 else '-'}{percent.value}%")
    factor **= periods
    if factor == 0:
        return None
    value = base / factor if reverse else base * factor
    how = f"{', '.join(steps)}" + (f" for {periods} periods" if periods > 1 else "")
    verb = "Undoing" if reverse else "Applying"
    return Solution(
        f"{verb} the changes {how} to {base} multiplies by {'1/' if reverse else ''}{factor}, "
        f"giving {_decimal_or_fraction(value)}.",
        _decimal_or_fraction(value),
    )


# --------------------------------------------------------------------------- counting

_COEFFICIENT = re.compile(r"coefficient\s+of\s+", re.IGNORECASE)
_CONSTRAINT = re.compile(
    r"\b(at\s+least|at\s+most|exactly|must|if|not|refuse|together|next\s+to|order|orders|"
    r"arrange\w*|president|medals?|first|second|third|line|row|repeat\w*|replacement|circle)\b",
    re.IGNORECASE,
)


def _plain_numbers(text: str) -> list[int] | None:
    """The whole numbers of ``text`` in order, or ``None`` if one is a decimal or very large."""
    values = re.findall(r"[0-9]+(?:\.[0-9]+)?", text)
    if any("." in v or len(v) > 4 for v in values):
        return None
    return [int(v) for v in values]


def _solve_coefficient(text: str, runs: list[_Run]) -> Solution | None:
    found = _COEFFICIENT.search(text)
    if not found:
        return None
    after = [run for run in runs if run.start >= found.end()]
    if len(after) != 2 or _digits_outside(text, after):
        return None
    monomial, expression = _parse(after[0].tokens), _parse(after[1].tokens)
    symbols = monomial.free_symbols
    if len(symbols) != 1 or expression.free_symbols - symbols:
        return None
    (symbol,) = symbols
    term = sympy.Poly(monomial, symbol)
    if len(term.terms()) != 1 or term.LC() != 1:
        return None
    power = term.degree()
    value = sympy.Poly(expression, symbol).coeff_monomial(symbol**power)
    return Solution(
        f"Expanding {after[1].text}, the term in {_latex(monomial)} has coefficient {value}.",
        _latex(value),
    )


def _solve_counting(text: str) -> Solution | None:
    """Counting stories: letters of a word, handshakes, medals and posts, lines, committees."""
    lowered = text.lower()
    word = re.search(r"letters\s+(?:of|in)\s+the\s+word\s+([A-Za-z]+)", text)
    if word and not re.search(r"[0-9]", text):
        letters = word.group(1).upper()
        total = factorial(len(letters))
        for letter in sorted(set(letters)):
            total //= factorial(letters.count(letter))
        return Solution(
            f"{letters} has {len(letters)} letters; {len(letters)}! divided by the factorials of "
            f"the repeated letters' counts gives {total}.",
            str(total),
        )
    numbers = _plain_numbers(text)
    if not numbers:
        return None
    if re.search(r"shakes?\s+hands|handshakes", lowered) and len(numbers) == 1:
        n = numbers[0]
        return Solution(f"Each handshake is a pair of the {n} people: C({n}, 2).", str(comb(n, 2)))
    if len(numbers) == 1:
        ordered = _ordered_roles(lowered, numbers[0])
        if ordered is not None:
            return ordered
    lined = re.search(r"stand\s+in\s+a\s+line", lowered) and len(numbers) == 1
    if lined and "two particular" in lowered and "next to" in lowered:
        n = numbers[0]
        together = 2 * factorial(n - 1)
        if re.search(r"\b(?:refuse|not|never|cannot)\b", lowered):
            value = factorial(n) - together
            how = f"{n}! minus the {together} orders with the pair together"
        else:
            value, how = together, f"2·({n}-1)!, treating the pair as one block"
        return Solution(f"Counting: {how} = {value}.", str(value))
    if (
        len(numbers) == 1
        and re.search(r"\b(?:arranged|orders)\b", lowered)
        and re.search(r"\b(?:distinct|different)\b", lowered)
        and not re.search(
            r"\b(?:choose|chosen|pick|select|of\s+them|circle|round|next\s+to)\b", lowered
        )
    ):
        n = numbers[0]
        return Solution(f"{n} distinct items can be ordered in {n}! ways.", str(factorial(n)))
    if not re.search(r"\b(?:committee|team|choose|chosen|pick|select\w*|subsets?)\b", lowered):
        return None
    groups = re.findall(r"\b([0-9]+)\s+([a-z]+)\s+and\s+([0-9]+)\s+([a-z]+)", lowered)
    if len(groups) == 1 and len(numbers) in (3, 4):
        return _two_groups(lowered, numbers, groups[0])
    if len(groups) == 2 and len(numbers) == 4 and not re.search(r"at\s+least|exactly", lowered):
        (i, first, j, second), (a, first2, b, second2) = groups
        if _same_noun(first, first2) and _same_noun(second, second2):
            value = comb(int(a), int(i)) * comb(int(b), int(j))
            return Solution(
                f"Choose the {first} and the {second} independently: C({a}, {i})·C({b}, {j}) = "
                f"{value}.",
                str(value),
            )
    if len(numbers) == 2 and not _CONSTRAINT.search(lowered):
        k, n = sorted(numbers)
        return Solution(
            f"An unordered choice of {k} from {n}: C({n}, {k}) = {comb(n, k)}.", str(comb(n, k))
        )
    return None


def _ordered_roles(lowered: str, n: int) -> Solution | None:
    """Distinct medals or posts handed to different people among ``n``: P(n, k)."""
    medals = re.search(r"((?:[a-z]+,\s+)*[a-z]+),?\s+and\s+[a-z]+\s+medals", lowered)
    if medals and re.search(r"\bno\s+\w+\s+gets\s+two\b", lowered):
        k = medals.group(1).count(",") + 2
        return Solution(
            f"The {k} distinct medals go to different people: P({n}, {k}) = {perm(n, k)}.",
            str(perm(n, k)),
        )
    posts = re.search(r"\belects?\s+([^.(?]*)", lowered)
    if posts and "different" in lowered:
        k = len(re.findall(r"\ban?\s+[a-z-]+", posts.group(1)))
        if k >= 2:
            return Solution(
                f"The {k} distinct posts go to different members: P({n}, {k}) = {perm(n, k)}.",
                str(perm(n, k)),
            )
    return None


def _same_noun(a: str, b: str) -> bool:
    def stem(word: str) -> str:
        return word.replace("men", "man").removesuffix("s")

    return stem(a) == stem(b)


def _two_groups(
    lowered: str, numbers: list[int], group: tuple[str, str, str, str]
) -> Solution | None:
    """A committee of k from a of one kind and b of another, with one condition on the second."""
    a, first, b, second = group
    a_count, b_count = int(a), int(b)
    k = numbers[0]
    if numbers[1:3] != [a_count, b_count]:
        return None
    least = re.search(r"at\s+least\s+one\s+([a-z]+)", lowered)
    exactly = re.search(r"exactly\s+([0-9]+)\s+([a-z]+)", lowered)
    if least and not exactly and len(numbers) == 3 and _same_noun(least.group(1), second):
        value = comb(a_count + b_count, k) - comb(a_count, k)
        return Solution(
            f"All choices C({a_count + b_count}, {k}) minus those with no {least.group(1)}, "
            f"C({a_count}, {k}), leave {value}.",
            str(value),
        )
    if exactly and not least and len(numbers) == 4 and _same_noun(exactly.group(2), second):
        j = int(exactly.group(1))
        value = comb(b_count, j) * comb(a_count, k - j)
        return Solution(
            f"Choose {j} of the {b_count} {second} and {k - j} of the {a_count} {first}: "
            f"C({b_count}, {j})·C({a_count}, {k - j}) = {value}.",
            str(value),
        )
    return None


# --------------------------------------------------------------------------- the agent

_FEEDBACK = re.compile(
    r"\b(?:incorrect|wrong|try\s+again|not\s+(?:quite\s+)?(?:right|correct)|another\s+attempt|"
    r"attempts?\s+left)\b",
    re.IGNORECASE,
)
_CANNOT = "I cannot solve this problem."


class MathSolverAgent:
    r"""Solves procedural math problems by parsing their text; never guesses.

    It reads the statement only (never a hidden answer): it pulls out the arithmetic expression,
    the equation(s) or the percentage/counting story with regexes, computes exactly with
    fractions and sympy, and replies with a short derivation ending in ``\boxed{answer}``. Text it
    does not fully understand (a number it did not use, a question about something else, a word
    problem of an unknown shape) gets an honest :data:`_CANNOT` reply without a box. Feedback such
    as "Incorrect, try again" makes it repeat its last answer.

    ``FAMILIES`` lists the procedural families it solves: all of
    :data:`arenagym.envs.math.procedural.FAMILIES`.

    Example:
        >>> solver = MathSolverAgent()
        >>> solver.reset("")
        >>> reply = solver.act("Find all real solutions of x^2 - x - 6 = 0.")
        >>> reply.endswith(r"\boxed{\{-2, 3\}}.")
        True
        >>> solver.act("Who wrote Hamlet?")
        'I cannot solve this problem.'
    """

    #: Every procedural family of Math-v0 (the generators' own list, not a copy): the solver
    #: reads each of them, and ``tests/agents/test_baselines.py`` checks it family by family, so
    #: a new family fails there until the solver learns it.
    FAMILIES: ClassVar[tuple[str, ...]] = MATH_FAMILIES

    def __init__(self) -> None:
        self.last_reply: str | None = None

    def reset(self, system_prompt: str) -> None:
        """Start a new episode: forget the last answer."""
        self.last_reply = None

    def act(self, observation: str) -> str:
        """The worked answer to ``observation``, the last answer again after feedback, or
        an honest "cannot solve"."""
        text = observation if isinstance(observation, str) else str(observation)
        solution = self.solve(text)
        if solution is not None:
            self.last_reply = solution.reply()
            return self.last_reply
        if self.last_reply is not None and _FEEDBACK.search(text):
            return self.last_reply
        return _CANNOT

    @staticmethod
    def solve(text: str) -> Solution | None:
        """The solution of ``text``, or ``None`` when it is not a problem this solver reads."""
        strategies: tuple[Callable[[str, list[_Run]], Solution | None], ...] = (
            lambda t, r: _solve_coefficient(t, r),
            lambda t, r: _solve_percentage(t),
            lambda t, r: _solve_counting(t),
            _solve_equations,
            _solve_arithmetic,
        )
        try:
            runs = _runs(text)
        except Exception:  # never crash on odd input
            return None
        for strategy in strategies:
            try:
                solution = strategy(text, runs)
            except Exception:  # a strategy that cannot read the text just passes
                continue
            if solution is not None:
                return solution
        return None
