r"""Math problems: the :class:`Problem` record, JSONL files of them, and the bundled set.

Two JSONL layouts are read, one JSON object per line:

- ``{"problem": ..., "answer": ...}`` — the answer as LaTeX or plain text (``"\\frac{1}{2}"``,
  ``"[1, 3)"``, ``"\\{1, 2\\}"``, ``"2\\sqrt{3}"``);
- MATH-style ``{"problem": ..., "solution": ...}`` — the answer is the last ``\boxed{}`` of the
  solution.

Optional fields: ``id`` (else ``<file stem>/<line>``), ``category``, ``difficulty`` (int),
``answer_form``. A bad file raises :class:`ProblemFileError` naming the file, line and field.

Example:
    >>> problems = load_bundled()
    >>> len(problems) >= 200
    True
"""

from __future__ import annotations

import codecs
import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from arenagym.envs.core.parsing import last_boxed

#: Answer forms the bundled set and the generators use.
ANSWER_FORMS: frozenset[str] = frozenset(
    {"integer", "decimal", "fraction", "surd", "interval", "set", "expression", "tuple"}
)


@dataclass(frozen=True)
class Problem:
    """One math problem with an exact reference answer (LaTeX or plain text)."""

    task_id: str
    problem: str
    answer: str
    category: str = "unknown"
    difficulty: int | None = None
    answer_form: str = "expression"


class ProblemFileError(ValueError):
    """A JSONL problem file that cannot be used; the message names the file, line and field."""


def load_jsonl(path: str | Path) -> list[Problem]:
    """Read every problem in the JSONL file ``path`` (blank lines are skipped)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ProblemFileError(f"{path}: cannot read the problem file ({error.strerror})") from None
    data = data.removeprefix(codecs.BOM_UTF8)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ProblemFileError(f"{path}:{line}: not UTF-8 text ({error.reason})") from None
    problems: list[Problem] = []
    lines: dict[str, int] = {}
    # not str.splitlines(): it would also break at U+2028 inside JSON strings
    for number, line in enumerate(re.split(r"\r\n|\r|\n", text), start=1):
        if not line.strip():
            continue
        problem = _problem_from_record(path, number, line)
        if problem.task_id in lines:
            raise ProblemFileError(
                f"{path}:{number}: field 'id': {problem.task_id!r} already appears on line "
                f"{lines[problem.task_id]}"
            )
        lines[problem.task_id] = number
        problems.append(problem)
    if not problems:
        raise ProblemFileError(f"{path}: the file holds no problems")
    return problems


def load_bundled() -> list[Problem]:
    """The problems shipped with arenagym (``envs/math/data/problems.jsonl``)."""
    data = resources.files("arenagym.envs.math").joinpath("data/problems.jsonl")
    with resources.as_file(data) as path:
        return load_jsonl(path)


def _problem_from_record(path: Path, number: int, line: str) -> Problem:
    where = f"{path}:{number}"
    try:
        record: Any = json.loads(line)
    except json.JSONDecodeError as error:
        raise ProblemFileError(
            f"{where}: not valid JSON ({error.msg}; column {error.colno})"
        ) from None
    except (ValueError, RecursionError) as error:  # nested too deeply, or too long a number
        raise ProblemFileError(f"{where}: not valid JSON ({error})") from None
    if not isinstance(record, dict):
        raise ProblemFileError(
            f"{where}: each line must be a JSON object, got {type(record).__name__}"
        )

    problem = _text_field(record, "problem", where)
    if "answer" in record:
        answer = _text_field(record, "answer", where)
    elif "solution" in record:
        solution = _text_field(record, "solution", where)
        boxed = last_boxed(solution)
        if not boxed:
            raise ProblemFileError(
                f"{where}: field 'solution': holds no complete \\boxed{{...}} answer"
            )
        answer = boxed
    else:
        raise ProblemFileError(f"{where}: missing field 'answer' (or a MATH-style 'solution')")

    task_id = record.get("id", f"{path.stem}/{number}")
    if not isinstance(task_id, str | int) or isinstance(task_id, bool) or str(task_id) == "":
        raise ProblemFileError(f"{where}: field 'id': must be a non-empty string or an integer")
    category = record.get("category", "unknown")
    if not isinstance(category, str) or not category:
        raise ProblemFileError(f"{where}: field 'category': must be a non-empty string")
    difficulty = record.get("difficulty")
    if difficulty is not None and (not isinstance(difficulty, int) or isinstance(difficulty, bool)):
        raise ProblemFileError(
            f"{where}: field 'difficulty': must be an integer, got {difficulty!r}"
        )
    answer_form = record.get("answer_form", "expression")
    if answer_form not in ANSWER_FORMS:
        raise ProblemFileError(
            f"{where}: field 'answer_form': {answer_form!r} is not one of {sorted(ANSWER_FORMS)}"
        )
    return Problem(str(task_id), problem, answer, category, difficulty, answer_form)


def _text_field(record: dict[str, Any], name: str, where: str) -> str:
    value = record.get(name)
    if not isinstance(value, str):
        kind = "missing" if value is None else f"must be a string, not {type(value).__name__}"
        raise ProblemFileError(f"{where}: field {name!r}: {kind}")
    if not value.strip():
        raise ProblemFileError(f"{where}: field {name!r}: is empty")
    return value
