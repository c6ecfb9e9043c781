"""SWE-smith-style bug injection: AST mutations of one function at a time, as minimal diffs.

A *mutation* changes one spot of one function in a library's source (never its tests): a flipped
comparison, an off-by-one constant or bound, a dropped ``if``/``elif``/``else`` branch, swapped
call arguments or operands, a wrong arithmetic or boolean operator, a negated condition, a return
value replaced by ``None``, a removed statement, or (SWE-smith's function rewrite) a documented
function's whole implementation replaced by ``raise NotImplementedError``. The change is found on the AST and written
back by replacing only the exact source segment (or whole lines, for dropped branches and
statements), so the diff is minimal and the file's formatting is untouched; every mutated file is
re-parsed, and mutations that do not parse or leave the AST unchanged are discarded.

A mutation gives a candidate task: ``base_patch`` (the bug, applied to make the agent's base) and
``patch`` (the gold fix: the inverse diff). :func:`write_problem_statement` then describes the bug
the way a user would report it, from the failing tests' behaviour only: the public function or
class that misbehaves (as called by the failing test), a reproduction built from the test body,
and the expected versus actual value from pytest's assertion output. It never names the test
file, the test, the mutated line or the fix.

Everything is deterministic given the seed (candidates are enumerated in source order and picked
with ``random.Random(seed)``).

Example:
    >>> source = "def clamp(x, low, high):\\n    if x < low:\\n        return low\\n    return x\\n"
    >>> found = mutations_for_source(source, "lib/clamp.py")
    >>> flip = next(m for m in found if m.operator == "flip_comparison")
    >>> flip.mutated.splitlines()[1]
    '    if x <= low:'
    >>> print(flip.bug_patch, end="")
    --- a/lib/clamp.py
    +++ b/lib/clamp.py
    @@ -1,4 +1,4 @@
     def clamp(x, low, high):
    -    if x < low:
    +    if x <= low:
             return low
         return x
    >>> sorted({m.operator for m in found})  # doctest: +NORMALIZE_WHITESPACE
    ['change_return', 'drop_if', 'flip_comparison', 'negate_condition']
"""

from __future__ import annotations

import ast
import difflib
import hashlib
import math
import random
import re
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath


def _parse(source: str) -> ast.Module:
    """``ast.parse`` without the ``SyntaxWarning`` warnings a library's own source may raise (invalid
    escape sequences in old string literals): they are the library's, not ours to print."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)
        return ast.parse(source)


#: Every mutation operator, in the order candidates are enumerated.
OPERATORS: tuple[str, ...] = (
    "flip_comparison",
    "off_by_one",
    "off_by_one_bound",
    "wrong_arithmetic",
    "swap_operands",
    "wrong_boolean",
    "negate_condition",
    "drop_else",
    "drop_elif",
    "drop_if",
    "swap_arguments",
    "change_return",
    "remove_statement",
    "remove_body",
)

_FLIP = {
    ast.Lt: "<=",
    ast.LtE: "<",
    ast.Gt: ">=",
    ast.GtE: ">",
    ast.Eq: "!=",
    ast.NotEq: "==",
    ast.In: "not in",
    ast.NotIn: "in",
    ast.Is: "is not",
    ast.IsNot: "is",
}
_COMPARE_TOKEN = re.compile(r"not\s+in\b|is\s+not\b|<=|>=|==|!=|<|>|\bin\b|\bis\b")
_ARITHMETIC = {
    ast.Add: ("+", "-"),
    ast.Sub: ("-", "+"),
    ast.Mult: ("*", "/"),
    ast.Div: ("/", "*"),
    ast.FloorDiv: ("//", "/"),
    ast.Mod: ("%", "//"),
    ast.Pow: ("**", "*"),
}
_NON_COMMUTATIVE = (ast.Sub, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow)
#: Calls whose argument order is structural, not a plausible bug.
_NO_SWAP_CALLS = frozenset(
    {"isinstance", "issubclass", "getattr", "setattr", "hasattr", "super", "print", "zip"}
)
#: Operands that need parentheses when moved next to a binary operator.
_LOOSE = (ast.BinOp, ast.BoolOp, ast.Compare, ast.IfExp, ast.UnaryOp, ast.Lambda, ast.NamedExpr)


class SynthesisError(ValueError):
    """A repository that bugs cannot be injected into (no source files, unparsable source...)."""


@dataclass(frozen=True)
class Edit:
    """Replace the characters ``start:end`` of a file with ``text``."""

    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Mutation:
    """One injected bug: the file before and after, and where and how it was changed."""

    operator: str
    path: str  # POSIX path relative to the repository root
    function: str  # qualified name, e.g. "RangeSet.add"
    line: int  # first changed line (1-based) in the original file
    description: str  # for logs and reports only, never for the agent
    original: str
    mutated: str

    @property
    def bug_patch(self) -> str:
        """The unified diff that injects the bug."""
        return unified_file_diff(self.path, self.original, self.mutated)

    @property
    def fix_patch(self) -> str:
        """The gold patch: the inverse of :attr:`bug_patch`."""
        return unified_file_diff(self.path, self.mutated, self.original)

    @property
    def key(self) -> str:
        """A short content hash that names this mutation stably."""
        digest = hashlib.sha256(f"{self.path}\0{self.mutated}".encode()).hexdigest()
        return digest[:10]


def unified_file_diff(path: str, before: str, after: str, context: int = 3) -> str:
    """A ``git apply``-able unified diff of one file (``a/`` and ``b/`` prefixes)."""
    lines = difflib.unified_diff(
        before.splitlines(keepends=True),
        after.splitlines(keepends=True),
        fromfile=f"a/{path}",
        tofile=f"b/{path}",
        n=context,
    )
    out = []
    for line in lines:
        if not line.endswith("\n"):
            line += "\n\\ No newline at end of file\n"
        out.append(line)
    return "".join(out)


# ------------------------------------------------------------------------------ positions
class _Source:
    """Character offsets of AST nodes (``col_offset`` counts UTF-8 bytes)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.lines = text.splitlines(keepends=True)
        self.starts = [0]
        for line in self.lines:
            self.starts.append(self.starts[-1] + len(line))

    def offset(self, line: int, byte_col: int) -> int:
        raw = self.lines[line - 1].encode("utf-8")[:byte_col]
        return self.starts[line - 1] + len(raw.decode("utf-8", "replace"))

    def span(self, node: ast.AST) -> tuple[int, int]:
        start = self.offset(node.lineno, node.col_offset)  # type: ignore[attr-defined]
        end = self.offset(node.end_lineno, node.end_col_offset)  # type: ignore[attr-defined]
        return start, end

    def segment(self, node: ast.AST) -> str:
        start, end = self.span(node)
        return self.text[start:end]

    def lines_span(self, first: int, last: int) -> tuple[int, int]:
        """Offsets covering whole lines ``first..last`` (1-based, inclusive)."""
        return self.starts[first - 1], self.starts[last]

    def owns_lines(self, node: ast.AST) -> bool:
        """Whether ``node`` alone occupies its lines (nothing but blanks/comments around it)."""
        start, end = self.span(node)
        line_start, line_end = self.lines_span(node.lineno, node.end_lineno)  # type: ignore[attr-defined]
        before = self.text[line_start:start]
        after = self.text[end:line_end].strip()
        return not before.strip() and (not after or after.startswith("#"))


def _wrap(node: ast.AST, text: str) -> str:
    return f"({text})" if isinstance(node, _LOOSE) else text


# ---------------------------------------------------------------------------- operators
Found = tuple[int, str, list[Edit]]  # (line, description, edits)
OperatorFunction = Callable[[ast.AST, _Source, frozenset[int]], Iterator[Found]]


def _flip_comparison(fn: ast.AST, src: _Source, in_while: frozenset[int]) -> Iterator[Found]:
    for node in _walk(fn):
        if not isinstance(node, ast.Compare) or id(node) in in_while:
            continue
        operands = [node.left, *node.comparators]
        for index, op in enumerate(node.ops):
            gap_start = src.span(operands[index])[1]
            gap_end = src.span(operands[index + 1])[0]
            match = _COMPARE_TOKEN.search(src.text, gap_start, gap_end)
            if match is None:
                continue
            new = _FLIP[type(op)]
            yield (
                node.lineno,
                f"comparison `{match.group(0)}` -> `{new}`",
                [Edit(match.start(), match.end(), new)],
            )


def _off_by_one(fn: ast.AST, src: _Source, in_while: frozenset[int]) -> Iterator[Found]:
    for node in _walk(fn):
        if isinstance(node, ast.Constant) and type(node.value) is int and id(node) not in in_while:
            start, end = src.span(node)
            for delta in (1, -1):
                value = node.value + delta
                if value < 0:
                    continue
                yield (
                    node.lineno,
                    f"constant {node.value} -> {value}",
                    [Edit(start, end, str(value))],
                )


def _bounds(fn: ast.AST) -> Iterator[ast.expr]:
    for node in _walk(fn):
        if isinstance(node, ast.Slice):
            yield from (bound for bound in (node.lower, node.upper) if bound is not None)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "range"
        ):
            yield from (arg for arg in node.args[:2] if not isinstance(arg, ast.Starred))


def _off_by_one_bound(fn: ast.AST, src: _Source, in_while: frozenset[int]) -> Iterator[Found]:
    for bound in _bounds(fn):
        if isinstance(bound, ast.Constant) or id(bound) in in_while:
            continue  # constants are off_by_one's
        start, end = src.span(bound)
        text = src.text[start:end]
        simple = not isinstance(bound, _LOOSE) or (
            isinstance(bound, ast.BinOp) and isinstance(bound.op, ast.Add | ast.Sub)
        )
        base = text if simple else f"({text})"
        for sign in ("+", "-"):
            yield (
                bound.lineno,
                f"bound `{text}` -> `{base} {sign} 1`",
                [Edit(start, end, f"{base} {sign} 1")],
            )


def _operator_token(src: _Source, left: ast.AST, right: ast.AST, token: str) -> tuple[int, int]:
    gap_start, gap_end = src.span(left)[1], src.span(right)[0]
    position = src.text.find(token, gap_start, gap_end)
    return position, position + len(token)


def _wrong_arithmetic(fn: ast.AST, src: _Source, in_while: frozenset[int]) -> Iterator[Found]:
    for node in _walk(fn):
        if isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC:
            if _is_string_expr(node.left) or _is_string_expr(node.right):
                continue
            old, new = _ARITHMETIC[type(node.op)]
            start, end = _operator_token(src, node.left, node.right, old)
            if start >= 0 and src.text[start:end] == old and src.text[end : end + 1] not in "*/=":
                yield node.lineno, f"operator `{old}` -> `{new}`", [Edit(start, end, new)]
        elif isinstance(node, ast.AugAssign) and type(node.op) in _ARITHMETIC:
            if id(node) in in_while or _is_string_expr(node.value):
                continue
            old, new = _ARITHMETIC[type(node.op)]
            start, end = _operator_token(src, node.target, node.value, old + "=")
            if start >= 0:
                yield node.lineno, f"operator `{old}=` -> `{new}=`", [Edit(start, end, new + "=")]


def _is_string_expr(node: ast.AST) -> bool:
    return isinstance(node, ast.JoinedStr) or (
        isinstance(node, ast.Constant) and isinstance(node.value, str | bytes)
    )


def _swap_operands(fn: ast.AST, src: _Source, in_while: frozenset[int]) -> Iterator[Found]:
    for node in _walk(fn):
        if not (isinstance(node, ast.BinOp) and isinstance(node.op, _NON_COMMUTATIVE)):
            continue
        if _is_string_expr(node.left) or id(node) in in_while:
            continue  # "%" formatting
        left, right = src.segment(node.left), src.segment(node.right)
        if left == right:
            continue
        (l_start, l_end), (r_start, r_end) = src.span(node.left), src.span(node.right)
        yield (
            node.lineno,
            f"operands of `{src.segment(node)}` swapped",
            [
                Edit(l_start, l_end, _wrap(node.right, right)),
                Edit(r_start, r_end, _wrap(node.left, left)),
            ],
        )


def _wrong_boolean(fn: ast.AST, src: _Source, in_while: frozenset[int]) -> Iterator[Found]:
    for node in _walk(fn):
        if not isinstance(node, ast.BoolOp) or id(node) in in_while:
            continue
        old, new = ("and", "or") if isinstance(node.op, ast.And) else ("or", "and")
        edits = []
        for left, right in zip(node.values, node.values[1:], strict=False):
            gap_start, gap_end = src.span(left)[1], src.span(right)[0]
            match = re.compile(rf"\b{old}\b").search(src.text, gap_start, gap_end)
            if match is None:
                break
            edits.append(Edit(match.start(), match.end(), new))
        else:
            yield node.lineno, f"boolean `{old}` -> `{new}`", edits


def _negate_condition(fn: ast.AST, src: _Source, in_while: frozenset[int]) -> Iterator[Found]:
    for node in _walk(fn):
        if not isinstance(node, ast.If | ast.IfExp):
            continue
        test = node.test
        start, end = src.span(test)
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            inner = src.segment(test.operand)
            yield node.lineno, "`not` removed from a condition", [Edit(start, end, inner)]
        else:
            text = src.text[start:end]
            negated = f"not ({text})" if isinstance(test, ast.BoolOp | ast.IfExp) else f"not {text}"
            yield node.lineno, "condition negated", [Edit(start, end, negated)]


def _line_text(src: _Source, line: int) -> str:
    return src.lines[line - 1].strip() if 0 < line <= len(src.lines) else ""


def _drop_else(fn: ast.AST, src: _Source, in_while: frozenset[int]) -> Iterator[Found]:
    for node in _walk(fn):
        if not isinstance(node, ast.If) or not node.orelse:
            continue
        if _line_text(src, node.orelse[0].lineno).startswith("elif"):
            continue
        body_end = node.body[-1].end_lineno or node.body[-1].lineno
        else_line = next(
            (n for n in range(body_end + 1, node.orelse[0].lineno + 1)
             if re.match(r"else\s*:", _line_text(src, n))),
            None,
        )  # fmt: skip
        if else_line is None:
            continue
        last = node.orelse[-1].end_lineno or node.orelse[-1].lineno
        start, end = src.lines_span(else_line, last)
        yield else_line, "else branch removed", [Edit(start, end, "")]


def _drop_elif(fn: ast.AST, src: _Source, in_while: frozenset[int]) -> Iterator[Found]:
    for node in _walk(fn):
        if not isinstance(node, ast.If) or len(node.orelse) != 1:
            continue
        branch = node.orelse[0]
        if not isinstance(branch, ast.If) or not _line_text(src, branch.lineno).startswith("elif"):
            continue
        last = branch.body[-1].end_lineno or branch.body[-1].lineno
        start, end = src.lines_span(branch.lineno, last)
        yield branch.lineno, "elif branch removed", [Edit(start, end, "")]


def _blocks(fn: ast.AST) -> Iterator[list[ast.stmt]]:
    yield fn.body  # type: ignore[attr-defined]
    for node in _walk(fn):
        for name in ("body", "orelse", "finalbody"):
            block = getattr(node, name, None)
            if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
                yield block
        if isinstance(node, ast.Try):
            for handler in node.handlers:
                yield handler.body


def _drop_if(fn: ast.AST, src: _Source, in_while: frozenset[int]) -> Iterator[Found]:
    for block in _blocks(fn):
        if len(block) < 2:
            continue
        for statement in block:
            if (
                isinstance(statement, ast.If)
                and not statement.orelse
                and _line_text(src, statement.lineno).startswith("if")
                and src.owns_lines(statement)
                and _others_remain(block, statement)
            ):
                start, end = src.lines_span(statement.lineno, statement.end_lineno or 0)
                yield statement.lineno, "if statement removed", [Edit(start, end, "")]


def _others_remain(block: list[ast.stmt], removed: ast.stmt) -> bool:
    """True when the block keeps a statement other than a docstring."""
    rest = [s for s in block if s is not removed]
    return any(not _is_docstring(s) for s in rest)


def _is_docstring(statement: ast.stmt) -> bool:
    return (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Constant)
        and isinstance(statement.value.value, str)
    )


def _swap_arguments(fn: ast.AST, src: _Source, in_while: frozenset[int]) -> Iterator[Found]:
    for node in _walk(fn):
        if not isinstance(node, ast.Call) or len(node.args) < 2:
            continue
        name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
        if name in _NO_SWAP_CALLS or any(isinstance(a, ast.Starred) for a in node.args):
            continue
        for first, second in zip(node.args, node.args[1:], strict=False):
            a, b = src.segment(first), src.segment(second)
            if a == b:
                continue
            (a_start, a_end), (b_start, b_end) = src.span(first), src.span(second)
            yield (
                node.lineno,
                f"arguments of `{name}()` swapped",
                [
                    Edit(a_start, a_end, b),
                    Edit(b_start, b_end, a),
                ],
            )


def _change_return(fn: ast.AST, src: _Source, in_while: frozenset[int]) -> Iterator[Found]:
    for node in _walk(fn):
        if not isinstance(node, ast.Return) or node.value is None:
            continue
        if isinstance(node.value, ast.Constant) and node.value.value is None:
            continue
        if isinstance(node.value, ast.Tuple) and len(node.value.elts) >= 2:
            first, second = node.value.elts[0], node.value.elts[1]
            a, b = src.segment(first), src.segment(second)
            if a != b:
                (a_start, a_end), (b_start, b_end) = src.span(first), src.span(second)
                yield (
                    node.lineno,
                    "returned tuple items swapped",
                    [
                        Edit(a_start, a_end, b),
                        Edit(b_start, b_end, a),
                    ],
                )
            continue
        start, end = src.span(node.value)
        yield node.lineno, "return value replaced by None", [Edit(start, end, "None")]


def _remove_statement(fn: ast.AST, src: _Source, in_while: frozenset[int]) -> Iterator[Found]:
    for block in _blocks(fn):
        if len(block) < 2:
            continue
        for statement in block:
            removable = isinstance(statement, ast.Assign | ast.AugAssign | ast.AnnAssign) or (
                isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call)
            )
            if (
                removable
                and id(statement) not in in_while
                and src.owns_lines(statement)
                and _others_remain(block, statement)
            ):
                start, end = src.lines_span(statement.lineno, statement.end_lineno or 0)
                text = src.segment(statement).splitlines()[0]
                yield statement.lineno, f"statement `{text}` removed", [Edit(start, end, "")]


def _remove_body(fn: ast.AST, src: _Source, in_while: frozenset[int]) -> Iterator[Found]:
    """SWE-smith's function rewrite: a documented function's implementation is replaced by
    ``raise NotImplementedError``, leaving its signature and docstring, so the task is to write
    it again from its documentation and the tests' behaviour. Only functions with a docstring
    and at least two statements of their own (a one-liner is too easy to guess back)."""
    body: list[ast.stmt] = list(getattr(fn, "body", []))
    if len(body) < 3 or not _is_docstring(body[0]):
        return
    first, last = body[1], body[-1]
    first_line = min([first.lineno] + [d.lineno for d in getattr(first, "decorator_list", [])])
    line_text = src.lines[first_line - 1]
    indent = line_text[: len(line_text) - len(line_text.lstrip())]
    if not src.owns_lines(first) or not indent:
        return
    start, _ = src.lines_span(first_line, first_line)
    _, end = src.lines_span(last.end_lineno or last.lineno, last.end_lineno or last.lineno)
    name = getattr(fn, "name", "?")
    yield (
        first_line,
        f"implementation of `{name}` removed (raise NotImplementedError)",
        [Edit(start, end, f"{indent}raise NotImplementedError\n")],
    )


_OPERATOR_FUNCTIONS: dict[str, OperatorFunction] = {
    "flip_comparison": _flip_comparison,
    "off_by_one": _off_by_one,
    "off_by_one_bound": _off_by_one_bound,
    "wrong_arithmetic": _wrong_arithmetic,
    "swap_operands": _swap_operands,
    "wrong_boolean": _wrong_boolean,
    "negate_condition": _negate_condition,
    "drop_else": _drop_else,
    "drop_elif": _drop_elif,
    "drop_if": _drop_if,
    "swap_arguments": _swap_arguments,
    "change_return": _change_return,
    "remove_statement": _remove_statement,
    "remove_body": _remove_body,
}


# ------------------------------------------------------------------------------ walking
def _walk(fn: ast.AST) -> Iterator[ast.AST]:
    """Nodes of a function's body (not its signature, decorators or annotations)."""
    for statement in getattr(fn, "body", []):
        yield from ast.walk(statement)


def _while_guarded(fn: ast.AST) -> frozenset[int]:
    """Ids of nodes whose mutation could make a ``while`` loop endless: the loop conditions
    and every statement and expression of augmented assignments inside ``while`` bodies."""
    guarded: set[int] = set()
    for node in _walk(fn):
        if isinstance(node, ast.While):
            guarded.update(id(inner) for inner in ast.walk(node.test))
            for statement in node.body:
                for inner in ast.walk(statement):
                    if isinstance(inner, ast.AugAssign | ast.Assign):
                        guarded.update(id(part) for part in ast.walk(inner))
    return frozenset(guarded)


def functions_of(tree: ast.Module) -> list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """Module-level functions and class methods (nested classes too), with qualified names."""
    found: list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]] = []

    def visit(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                found.append((prefix + node.name, node))
            elif isinstance(node, ast.ClassDef):
                visit(node.body, f"{prefix}{node.name}.")

    visit(tree.body, "")
    return found


def _apply(text: str, edits: Sequence[Edit]) -> str:
    for edit in sorted(edits, key=lambda e: e.start, reverse=True):
        text = text[: edit.start] + edit.text + text[edit.end :]
    return text


def mutations_for_source(
    source: str, path: str, operators: Sequence[str] = OPERATORS
) -> list[Mutation]:
    """Every mutation of every function in ``source`` (the file at ``path``), in source order.

    Raises :class:`SynthesisError` when ``source`` does not parse or an operator is unknown.
    """
    unknown = [name for name in operators if name not in _OPERATOR_FUNCTIONS]
    if unknown:
        raise SynthesisError(f"unknown mutation operator(s) {unknown}; known: {list(OPERATORS)}")
    try:
        tree = _parse(source)
    except SyntaxError as error:
        raise SynthesisError(f"{path}: cannot parse ({error.msg}, line {error.lineno})") from None
    src = _Source(source)
    original_dump = ast.dump(tree)
    seen: set[str] = set()
    result: list[Mutation] = []
    for qualname, function in functions_of(tree):
        in_while = _while_guarded(function)
        for name in operators:
            for line, description, edits in _OPERATOR_FUNCTIONS[name](function, src, in_while):
                mutated = _apply(source, edits)
                if mutated in seen:
                    continue
                try:
                    changed = ast.dump(_parse(mutated)) != original_dump
                except SyntaxError:
                    continue
                if changed:
                    seen.add(mutated)
                    result.append(
                        Mutation(name, path, qualname, line, description, source, mutated)
                    )
    return result


def is_test_path(path: PurePosixPath) -> bool:
    """Test files and folders, which are never mutated."""
    name = path.name
    return (
        any(part in ("test", "tests", "testing") for part in path.parts[:-1])
        or name.startswith("test_")
        or name.endswith("_test.py")
        or name in ("conftest.py", "setup.py", "noxfile.py")
    )


def library_source_files(root: Path) -> list[str]:
    """The repository's non-test Python files (POSIX paths relative to ``root``), sorted."""
    files = []
    for path in sorted(root.rglob("*.py")):
        relative = PurePosixPath(path.relative_to(root).as_posix())
        if any(
            part.startswith(".") or part in ("__pycache__", "build", "dist")
            for part in relative.parts
        ):
            continue
        if not is_test_path(relative):
            files.append(str(relative))
    return files


def enumerate_mutations(
    root: Path, files: Sequence[str] | None = None, operators: Sequence[str] = OPERATORS
) -> list[Mutation]:
    """Every mutation of every library source file under ``root``."""
    chosen = list(files) if files is not None else library_source_files(root)
    if not chosen:
        raise SynthesisError(f"{root}: no Python source files outside the tests")
    result: list[Mutation] = []
    for relative in chosen:
        text = (root / relative).read_text(encoding="utf-8")
        result += mutations_for_source(text, relative, operators)
    return result


def select_mutations(
    mutations: Sequence[Mutation], *, seed: int, per_function: int = 2, limit: int | None = None
) -> list[Mutation]:
    """Pick at most ``per_function`` mutations per function (different operators first), then
    order them round-robin over operators so that any prefix is diverse; deterministic in
    ``seed``."""
    rng = random.Random(seed)
    by_function: dict[tuple[str, str], list[Mutation]] = {}
    for mutation in mutations:
        by_function.setdefault((mutation.path, mutation.function), []).append(mutation)
    picked: list[Mutation] = []
    for key in sorted(by_function):
        options = list(by_function[key])
        rng.shuffle(options)
        chosen: list[Mutation] = []
        for mutation in options:  # one per operator first
            if len(chosen) < per_function and all(m.operator != mutation.operator for m in chosen):
                chosen.append(mutation)
        for mutation in options:
            if len(chosen) < per_function and mutation not in chosen:
                chosen.append(mutation)
        picked += chosen
    by_operator: dict[str, list[Mutation]] = {}
    for mutation in picked:
        by_operator.setdefault(mutation.operator, []).append(mutation)
    for group in by_operator.values():
        rng.shuffle(group)
    ordered: list[Mutation] = []
    queues = [by_operator[name] for name in OPERATORS if name in by_operator]
    while any(queues):
        for queue in queues:
            if queue:
                ordered.append(queue.pop(0))
    return ordered[:limit] if limit is not None else ordered


# ----------------------------------------------------------------------- problem statements
@dataclass(frozen=True)
class Failure:
    """What one failing test showed: the failing statement, the reproduction and the error."""

    subject_names: tuple[str, ...]  # public names used by the failing statement
    reproduction: str  # runnable-looking snippet (setup + the failing call), may be ""
    expected: str | None
    actual: str | None
    error: str  # e.g. "AssertionError", "IndexError: list index out of range", "DID NOT RAISE"


_SECTION = re.compile(r"^_{3,} (?P<title>.+?) _{3,}$", re.MULTILINE)
_LOCATION = re.compile(
    r"^(?P<path>[\w./-]+\.py):(?P<line>\d+):(?: (?P<kind>\S+))?\s*$", re.MULTILINE
)


def failure_section(output: str, test_id: str) -> str | None:
    """The part of pytest's long report about ``test_id`` (``_____ title _____`` sections)."""
    _, _, rest = test_id.partition("::")
    title = rest.replace("::", ".")
    headers = list(_SECTION.finditer(output))
    for index, header in enumerate(headers):
        if header.group("title") == title:
            end = headers[index + 1].start() if index + 1 < len(headers) else len(output)
            section = output[header.end() : end]
            cut = re.search(r"^(-{3,}|={3,}) ", section, re.MULTILINE)
            return section[: cut.start()] if cut else section
    return None


_SAFE_NODES = (
    ast.Constant, ast.UnaryOp, ast.BinOp, ast.Tuple, ast.List, ast.Set, ast.Dict, ast.USub,
    ast.UAdd, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.Load,
)  # fmt: skip


def _safe_value(node: ast.expr) -> object:
    """The value of a literal expression, arithmetic on literals included (``-86400 * 3``), and
    ``float("inf")``, ``-math.inf``-style constants (pytest names parameters by value)."""
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "float"
        and len(node.args) == 1
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    ):
        return float(node.args[0].value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        operand = _safe_value(node.operand)  # ``-math.inf``
        if isinstance(operand, int | float) and not isinstance(operand, bool):
            return -operand if isinstance(node.op, ast.USub) else operand
    if (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "math"
        and node.attr in ("inf", "nan", "pi", "e", "tau")
    ):
        return float(getattr(math, node.attr))
    if not all(isinstance(inner, _SAFE_NODES) for inner in ast.walk(node)):
        raise ValueError("not a literal")
    code = compile(ast.Expression(node), "<parameter>", "eval")
    return eval(code, {"__builtins__": {}})  # only literals and arithmetic, checked above


def _parametrize_values(
    function: ast.FunctionDef, param_id: str, constants: dict[str, ast.Assign] | None = None
) -> dict[str, str] | None:
    """Source of each parameter's value for the case whose pytest id is ``param_id`` (cases
    given inline, or as a module-level list or tuple in ``constants``)."""
    for decorator in function.decorator_list:
        if not (
            isinstance(decorator, ast.Call)
            and isinstance(decorator.func, ast.Attribute)
            and decorator.func.attr == "parametrize"
            and len(decorator.args) >= 2
        ):
            continue
        cases_node = decorator.args[1]
        if isinstance(cases_node, ast.Name) and cases_node.id in (constants or {}):
            cases_node = (constants or {})[cases_node.id].value
        if not isinstance(cases_node, ast.List | ast.Tuple):
            continue
        try:
            names_value = ast.literal_eval(decorator.args[0])
        except ValueError:
            return None
        names = (
            [n.strip() for n in names_value.split(",")]
            if isinstance(names_value, str)
            else list(names_value)
        )
        cases: list[tuple[str, list[ast.expr]]] = []
        for index, case in enumerate(cases_node.elts):
            nodes = case.elts if len(names) > 1 and isinstance(case, ast.Tuple) else [case]
            parts = []
            for name, node in zip(names, nodes, strict=False):
                try:
                    value = _safe_value(node)
                except (ValueError, TypeError, ArithmeticError):
                    value = ...
                simple = isinstance(value, str | int | float | bool) or value is None
                parts.append(str(value) if simple else f"{name}{index}")
            cases.append(("-".join(parts), nodes))
        counts = Counter(case_id for case_id, _ in cases)
        seen: Counter[str] = Counter()
        for case_id, nodes in cases:
            # pytest numbers ids that occur twice: "inf0", "inf1" (or "x1_0" after a digit)
            ids = {case_id}
            if counts[case_id] > 1:
                ids = {f"{case_id}{seen[case_id]}", f"{case_id}_{seen[case_id]}"}
                seen[case_id] += 1
            if param_id in ids:
                return {name: ast.unparse(node) for name, node in zip(names, nodes, strict=False)}
    return None


_TEST_PARTS = frozenset({"test", "tests", "testing"})


def _library_names(tree: ast.Module, packages: set[str]) -> set[str]:
    """Names a test module imports from the library (not from the library's own tests)."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module:
            parts = node.module.split(".")
            if parts[0] in packages and not _TEST_PARTS & set(parts):
                names.update(alias.asname or alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in packages:
                    names.add(alias.asname or alias.name.split(".")[0])
    return names


def _called_names(node: ast.AST, library: set[str]) -> list[str]:
    """Calls in ``node``, outermost first: ``name``, ``Library.attr`` or ``.method``."""
    found: list[str] = []
    for inner in ast.walk(node):
        if not isinstance(inner, ast.Call):
            continue
        func = inner.func
        if isinstance(func, ast.Name):
            found.append(func.id)
        elif isinstance(func, ast.Attribute):
            root = func.value
            if isinstance(root, ast.Name) and root.id in library:
                found.append(f"{root.id}.{func.attr}")
            else:
                found.append(f".{func.attr}")
    return list(dict.fromkeys(found))


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]{4,}>")


def without_addresses(text: str) -> str:
    """``text`` without the memory addresses of default reprs, which differ at every run (a
    problem statement must be the same each time the set is built).

    >>> without_addresses("<function merge at 0x7fbe50fe1b20> != <Box object at 0x7f01>")
    '<function merge> != <Box object>'
    >>> without_addresses("got <function test_it.<locals>.foo at 0x7ff7d8c73380>.")
    'got <function test_it.<locals>.foo>.'
    >>> without_addresses("parse('{:x}', '0xABCDEF')")
    "parse('{:x}', '0xABCDEF')"
    """
    return _ADDRESS.sub(">", text)


def describe_failure(repo: Path, test_id: str, output: str, packages: set[str]) -> Failure | None:
    """Read the failing statement of ``test_id`` from the test source and pytest's report."""
    file_part, _, rest = test_id.partition("::")
    path = repo / file_part
    section = failure_section(output, test_id)
    if section is None:
        return None
    error_lines = [
        without_addresses(text[1:].strip())
        for text in section.splitlines()
        if text.startswith("E ")
    ]
    error = next((text for text in error_lines if text), "AssertionError")
    if len(error) > 300:  # e.g. a subprocess's whole traceback in one line
        error = error[:300] + "..."
    only_error = Failure((), "", None, None, error)  # the test's source could not be read
    if not path.is_file():
        return only_error
    source = path.read_text(encoding="utf-8")
    tree = _parse(source)
    src = _Source(source)
    names = rest.split("::")
    test_name, _, param_id = names[-1].partition("[")
    param_id = param_id[:-1] if param_id.endswith("]") else param_id
    scope: list[ast.stmt] = tree.body
    for class_name in names[:-1]:
        cls = next((n for n in scope if isinstance(n, ast.ClassDef) and n.name == class_name), None)
        if cls is None:
            return only_error
        scope = cls.body
    function = next(
        (n for n in scope if isinstance(n, ast.FunctionDef) and n.name == test_name), None
    )
    if function is None:  # e.g. a unittest method inherited from a mixin in another module
        return only_error
    line = None
    for match in _LOCATION.finditer(section):
        if match.group("path") == file_part:
            line = int(match.group("line"))
    statement = None
    if line is not None:
        for candidate in function.body:
            if candidate.lineno <= line <= (candidate.end_lineno or candidate.lineno):
                statement = candidate
                break
    library = _library_names(tree, packages)
    helpers = {
        node.name: node
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("test")
    }
    constants = {
        target.id: node
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    if statement is None:
        called = _called_names(function, library)
        subject = tuple(n for n in called if _is_library_call(n, library) and n not in helpers)
        return Failure(subject, "", None, None, error)
    # The subject: public library calls of the failing statement (through test helpers too).
    called = _called_names(statement, library)
    for name in list(called):
        if name in helpers:
            called += _called_names(helpers[name], library)
    subject = tuple(
        dict.fromkeys(n for n in called if _is_library_call(n, library) and n not in helpers)
    )
    expected, actual, shown = _expected_actual(statement, src, error_lines)
    setup = [
        s for s in function.body[: function.body.index(statement)]
        if not isinstance(s, ast.Assert)
    ]  # fmt: skip
    lines: list[str] = []
    if param_id:
        values = _parametrize_values(function, param_id, constants)
        if values is None:
            return Failure(subject, "", expected, actual, error)
        lines += [f"{name} = {value}" for name, value in values.items()]
        if expected is not None:  # ``== expected`` names a parameter: show its value
            prefix = "approximately " if expected.startswith("approximately ") else ""
            name = expected.removeprefix(prefix)
            if name in values:
                expected = prefix + values[name]
    lines += [_dedent(src.segment(s), s.col_offset) for s in setup]
    lines.append(
        shown if shown is not None else _dedent(src.segment(statement), statement.col_offset)
    )
    definitions: list[str] = []
    used = _names_in("\n".join(lines))
    local_modules, local_imports = _inline_local_helpers(path, tree, packages, used, definitions)
    pending = sorted(used)
    while pending:  # module-level constants and helpers the snippet needs, and theirs
        name = pending.pop(0)
        node = constants.get(name) or helpers.get(name)
        if node is None:
            continue
        text = src.segment(node)
        if text not in definitions:
            definitions.append(text)
            for extra in sorted(_names_in(text) - used):
                used.add(extra)
                pending.append(extra)
    imports = local_imports + [
        src.segment(node)
        for node in tree.body
        if isinstance(node, ast.Import | ast.ImportFrom) and node not in local_modules
        and (names := [a.name if isinstance(node, ast.ImportFrom) else a.name.split(".")[0]
                       for a in node.names])
        and any((alias.asname or name) in used for alias, name in zip(node.names, names, strict=True))
    ]  # fmt: skip
    imports = [_only_used(text, used) for text in imports]
    prelude = imports + ([""] if imports and definitions else []) + definitions
    reproduction = "\n".join(prelude + ([""] if prelude else []) + lines)
    return Failure(subject, reproduction, expected, actual, error)


def _inline_local_helpers(
    path: Path, tree: ast.Module, packages: set[str], used: set[str], definitions: list[str]
) -> tuple[list[ast.stmt], list[str]]:
    """Helpers a test imports from a module beside it (``from common import assert_equal``),
    which a reader cannot import: their definitions are appended to ``definitions`` (with the
    names they use added to ``used``). Returns the import statements of such modules (left out
    of the snippet) and the imports the inlined helpers need."""
    local: list[ast.stmt] = []
    needed: list[str] = []
    for node in tree.body:
        if not (isinstance(node, ast.ImportFrom) and node.module and node.level in (0, 1)):
            continue
        if node.module.split(".")[0] in packages:
            continue
        module_path = path.parent / (node.module.replace(".", "/") + ".py")
        if not module_path.is_file():
            continue
        local.append(node)
        try:
            module_source = module_path.read_text(encoding="utf-8")
            module_tree = _parse(module_source)
        except (OSError, UnicodeDecodeError, SyntaxError):
            continue
        module_src = _Source(module_source)
        helpers = {n.name: n for n in module_tree.body if isinstance(n, ast.FunctionDef)}
        for alias in node.names:
            if alias.asname is None and alias.name in used and alias.name in helpers:
                text = module_src.segment(helpers[alias.name])
                definitions.append(text)
                names = _names_in(text)
                used |= names
                needed += [
                    _only_used(module_src.segment(statement), names)
                    for statement in module_tree.body
                    if isinstance(statement, ast.Import | ast.ImportFrom)
                    and {a.asname or a.name.split(".")[0] for a in statement.names} & names
                ]
    return local, list(dict.fromkeys(needed))


def _names_in(text: str) -> set[str]:
    try:
        return {n.id for n in ast.walk(_parse(text)) if isinstance(n, ast.Name)}
    except SyntaxError:
        return set()


def _only_used(import_text: str, used: set[str]) -> str:
    """``from m import a, b, c`` reduced to the names the snippet uses."""
    node = _parse(import_text).body[0]
    if isinstance(node, ast.ImportFrom):
        kept = [a for a in node.names if (a.asname or a.name) in used]
        node.names = kept or node.names
    return ast.unparse(node)


_NOT_SUBJECTS = frozenset(
    {"approx", "raises", "replace", "join", "split", "append", "startswith", "endswith", "strip",
     "format", "items", "keys", "values", "read_text", "write_text", "lower", "upper", "copy"}
)  # fmt: skip


def _is_library_call(name: str, library: set[str]) -> bool:
    """Library functions/classes, their attributes, and methods (of library objects)."""
    last = name.rpartition(".")[2]
    if last.startswith(("test", "Test")) or last.endswith("Test"):
        return False
    if name.startswith("."):
        return not name[1:].startswith("_") and name[1:] not in _NOT_SUBJECTS
    if "." in name:
        return not name.rpartition(".")[2].startswith("_")
    return name in library


def _dedent(text: str, column: int) -> str:
    lines = text.splitlines()
    return "\n".join([lines[0], *(line[column:] if line[:column].isspace() else line.lstrip()
                                  for line in lines[1:])])  # fmt: skip


def _expected_actual(
    statement: ast.stmt, src: _Source, error_lines: list[str]
) -> tuple[str | None, str | None, str | None]:
    """(expected, actual, reproduction line) for an ``assert`` statement, else Nones."""
    first = error_lines[0] if error_lines else ""
    first = first.removeprefix("AssertionError: ")
    if isinstance(statement, ast.Assert):
        test = statement.test
        if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq):
            call, wanted = test.left, test.comparators[0]
            if _is_literal(call) and not _is_literal(wanted):  # ``assert [1, 2] == f()``
                call, wanted = wanted, call
            expected = src.segment(wanted)
            actual = None
            if first.startswith("assert ") and " == " in first:
                actual = first[len("assert ") :].split(" == ")[0]
            expected = _literal_or_source(wanted, expected)
            return expected, actual, f"print({src.segment(call)})"
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            return "False", "True", f"print({src.segment(test.operand)})"
        if isinstance(test, ast.Compare | ast.Call | ast.Attribute | ast.Name):
            return "True", "False", f"print({src.segment(test)})"
    if isinstance(statement, ast.With):
        call = statement.items[0].context_expr
        if isinstance(call, ast.Call) and getattr(call.func, "attr", "") == "raises" and call.args:
            exception = src.segment(call.args[0])
            inner = "\n".join(_dedent(src.segment(s), s.col_offset) for s in statement.body)
            return f"`{exception}` to be raised", "no exception", inner
    return None, None, None


def _is_literal(node: ast.expr) -> bool:
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def _literal_or_source(node: ast.expr, text: str) -> str:
    if (
        isinstance(node, ast.Call)
        and getattr(node.func, "attr", getattr(node.func, "id", "")) == "approx"
        and len(node.args) == 1
    ):
        return f"approximately {_literal_or_source(node.args[0], ast.unparse(node.args[0]))}"
    try:
        return repr(ast.literal_eval(node))
    except ValueError:
        return text


_OPENERS = (
    "{subject} returns the wrong result for some inputs.",
    "I think there is a bug in {subject}.",
    "Unexpected behaviour from {subject}.",
    "{subject} does not behave as documented.",
    "After upgrading, {subject} gives results I did not expect.",
)
_CONTEXTS = (
    "Here is a small example that shows it:",
    "Minimal reproduction:",
    "To reproduce:",
    "Steps to reproduce:",
)
_CLOSERS = (
    "",
    "Could you take a look?",
    "This breaks code that relied on the previous behaviour.",
    "Other inputs seem fine, it is only cases like this one.",
)
_DUNDER_PHRASES = {
    "__contains__": "`in` checks on `{cls}`",
    "__len__": "`len()` of a `{cls}`",
    "__eq__": "comparing `{cls}` objects with `==`",
    "__lt__": "ordering `{cls}` objects",
    "__str__": "`str()` of a `{cls}`",
    "__iter__": "iterating over a `{cls}`",
    "__init__": "creating a `{cls}`",
    "__post_init__": "creating a `{cls}`",
    "__add__": "adding `{cls}` objects",
    "__sub__": "subtracting `{cls}` objects",
    "__mul__": "scaling a `{cls}`",
    "__matmul__": "multiplying `{cls}` objects with `@`",
    "__hash__": "hashing a `{cls}`",
}


def _methods_by_class(source: str) -> dict[str, list[str]]:
    """Method name -> the classes of ``source`` that define it."""
    owners: dict[str, list[str]] = {}
    try:
        tree = _parse(source)
    except SyntaxError:
        return owners
    for qualname, _ in functions_of(tree):
        if "." in qualname:
            cls, _, method = qualname.rpartition(".")
            owners.setdefault(method, []).append(cls)
    return owners


def subject_phrase(
    function: str, failure_subjects: Sequence[str], methods: dict[str, list[str]] | None = None
) -> str:
    """How a user would name what misbehaves: the mutated function when the failing test calls
    it (or a special method of a public class), else the first public call of the failing test
    (``.method`` calls are qualified with their class when ``methods`` knows it)."""
    methods = methods or {}
    parts = function.split(".")
    name = parts[-1]
    public_owner = all(not part.startswith("_") for part in parts[:-1])
    if public_owner and name in _DUNDER_PHRASES and len(parts) > 1:
        return _DUNDER_PHRASES[name].format(cls=parts[-2])
    called = {subject.lstrip(".").rpartition(".")[2] for subject in failure_subjects}
    if public_owner and not name.startswith("_") and name in called:
        return f"`{function}()`"
    for subject in failure_subjects:
        if subject.startswith("."):
            method = subject[1:]
            owners = methods.get(method, [])
            preferred = [o for o in owners if len(parts) > 1 and o == ".".join(parts[:-1])]
            owner = (preferred or owners or [""])[0]
            return f"`{owner}.{method}()`" if owner else f"`{method}()`"
        if "." not in subject and subject[:1].isupper():
            return f"`{subject}`"
        return f"`{subject}()`"
    if public_owner and not name.startswith("_"):
        return f"`{function}()`"
    return "the library"


def importable_module(path: str) -> str:
    """The module a source file is imported as: ``src/`` and ``lib/`` layouts and packages'
    ``__init__`` files included.

    >>> importable_module("src/humanize/number.py"), importable_module("tabulate/__init__.py")
    ('humanize.number', 'tabulate')
    """
    parts = list(PurePosixPath(path).with_suffix("").parts)
    if len(parts) > 1 and parts[0] in ("src", "lib"):
        parts = parts[1:]
    if len(parts) > 1 and parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def write_problem_statement(
    mutation: Mutation, failures: Sequence[Failure], *, seed: int, package: str
) -> str:
    """A user-style bug report from what the failing tests showed (see the module docstring)."""
    rng = random.Random(f"{seed}:{mutation.key}")
    subjects = [name for failure in failures for name in failure.subject_names]
    subject = subject_phrase(mutation.function, subjects, _methods_by_class(mutation.original))
    if mutation.operator == "remove_body":  # a re-implementation task: say what to write
        module = importable_module(mutation.path)
        opener = (
            f"`{mutation.function}` in `{module}` is not implemented: it raises "
            "`NotImplementedError`. Implement it as its docstring describes, so that code "
            f"using {subject} works again."
        )
    else:
        opener = rng.choice(_OPENERS).format(subject=subject)
        opener = opener[0].upper() + opener[1:]
    paragraphs = [opener]
    shown = [failure for failure in failures if failure.reproduction][:2]
    if shown:
        paragraphs.append(rng.choice(_CONTEXTS))
        for failure in shown:
            block = f"```python\n{failure.reproduction}\n```"
            if failure.expected is not None and failure.actual is not None:
                block += f"\n\nI expected {failure.expected}, but got {failure.actual}."
            elif failure.expected is not None:
                block += f"\n\nI expected {failure.expected}, but it fails with: {failure.error}"
            else:
                block += f"\n\nThis fails with: {failure.error}"
            paragraphs.append(block)
    else:
        errors = sorted({failure.error for failure in failures})[:2]
        paragraphs.append(
            f"Using it from `{package}` fails with: {'; '.join(errors)}"
            if errors
            else f"Using it from `{package}` gives wrong results."
        )
    closer = rng.choice(_CLOSERS)
    if closer:
        paragraphs.append(closer)
    return "\n\n".join(paragraphs) + "\n"
