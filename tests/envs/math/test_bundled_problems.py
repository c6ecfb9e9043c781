r"""The bundled Math-v0 problem set: size, coverage, and answers that math-verify can grade.

Every gold answer is parsed once (module-scoped fixture) the way the env parses it,
``parse("\\boxed{<answer>}", extraction_config=[LatexExtractionConfig(), ExprExtractionConfig()])``.
"""

from __future__ import annotations

from collections import Counter

import pytest
import sympy
from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

from arenagym.envs.math.problems import ANSWER_FORMS, Problem, load_bundled
from arenagym.envs.math.procedural import FAMILIES

CATEGORIES = frozenset(
    {
        "arithmetic",
        "fractions",
        "linear_equation",
        "linear_system",
        "quadratic",
        "percentage",
        "counting",
    }
)
NUMERIC_FORMS = frozenset({"integer", "decimal", "fraction", "surd"})
GOLD_CONFIG = [LatexExtractionConfig(), ExprExtractionConfig()]
MIN_PROBLEMS = 200
MIN_PER_CATEGORY = 25
MIN_PER_FORM = 10


def _gold(answer: str) -> list:
    return parse("\\boxed{" + answer + "}", extraction_config=GOLD_CONFIG)


def _response(answer: str) -> list:
    return parse("The answer is \\boxed{" + answer + "}.")


@pytest.fixture(scope="module")
def problems() -> list[Problem]:
    return load_bundled()


@pytest.fixture(scope="module")
def golds(problems: list[Problem]) -> dict[str, list]:
    return {problem.task_id: _gold(problem.answer) for problem in problems}


def test_categories_are_the_procedural_family_names() -> None:
    assert frozenset(FAMILIES) == CATEGORIES


def test_enough_problems_with_unique_ids(problems: list[Problem]) -> None:
    assert len(problems) >= MIN_PROBLEMS
    ids = [problem.task_id for problem in problems]
    assert len(set(ids)) == len(ids)


def test_fields_are_well_formed(problems: list[Problem]) -> None:
    for problem in problems:
        assert problem.category in CATEGORIES, problem.task_id
        assert problem.answer_form in ANSWER_FORMS, problem.task_id
        assert problem.task_id.startswith(f"bundled/{problem.category}/"), problem.task_id
        assert isinstance(problem.difficulty, int), problem.task_id
        assert 1 <= problem.difficulty <= 5, problem.task_id
        assert problem.problem.strip() and problem.answer.strip(), problem.task_id


def test_every_category_and_answer_form_is_covered(problems: list[Problem]) -> None:
    categories = Counter(problem.category for problem in problems)
    forms = Counter(problem.answer_form for problem in problems)
    assert {c: categories[c] for c in CATEGORIES if categories[c] < MIN_PER_CATEGORY} == {}
    assert {f: forms[f] for f in ANSWER_FORMS if forms[f] < MIN_PER_FORM} == {}


def test_difficulties_are_spread(problems: list[Problem]) -> None:
    assert {problem.difficulty for problem in problems} == {1, 2, 3, 4, 5}


def test_every_answer_parses_to_a_sympy_object(
    problems: list[Problem], golds: dict[str, list]
) -> None:
    unparsed = [
        (problem.task_id, problem.answer)
        for problem in problems
        if not golds[problem.task_id] or not isinstance(golds[problem.task_id][0], sympy.Basic)
    ]
    assert unparsed == []


def test_every_answer_verifies_against_itself(
    problems: list[Problem], golds: dict[str, list]
) -> None:
    failing = [
        (problem.task_id, problem.answer)
        for problem in problems
        if not verify(golds[problem.task_id], golds[problem.task_id])
        or not verify(golds[problem.task_id], _response(problem.answer))
    ]
    assert failing == []


def test_perturbed_numeric_answers_do_not_verify(
    problems: list[Problem], golds: dict[str, list]
) -> None:
    numeric = [problem for problem in problems if problem.answer_form in NUMERIC_FORMS]
    sample = numeric[::3]
    assert len(sample) >= 20
    accepted = [
        (problem.task_id, problem.answer)
        for problem in sample
        if verify(golds[problem.task_id], _response(problem.answer + " + 1"))
    ]
    assert accepted == []


def _flip_first_bracket(answer: str) -> str | None:
    """The interval with its first finite end switched between open and closed."""
    if answer.startswith("["):
        return "(" + answer[1:]
    if answer.startswith("(") and not answer.startswith("(-\\infty"):
        return "[" + answer[1:]
    first = answer.split("\\cup")[0].rstrip()
    if first.endswith(("]", ")")) and not first.endswith("\\infty)"):
        flipped = first[:-1] + (")" if first.endswith("]") else "]")
        return flipped + answer[len(first) :]
    return None


def test_intervals_distinguish_open_and_closed_ends(
    problems: list[Problem], golds: dict[str, list]
) -> None:
    intervals = [problem for problem in problems if problem.answer_form == "interval"]
    flipped = [(problem, _flip_first_bracket(problem.answer)) for problem in intervals]
    checked = [(problem, wrong) for problem, wrong in flipped if wrong is not None]
    assert len(checked) >= 10
    accepted = [
        (problem.task_id, problem.answer, wrong)
        for problem, wrong in checked
        if verify(golds[problem.task_id], _response(wrong))
    ]
    assert accepted == []


def test_sets_reject_a_missing_or_extra_element(
    problems: list[Problem], golds: dict[str, list]
) -> None:
    sets = [problem for problem in problems if problem.answer_form == "set"]
    accepted = []
    for problem in sets:
        elements = golds[problem.task_id][0]
        assert isinstance(elements, sympy.FiniteSet), problem.task_id
        fewer = sympy.FiniteSet(*list(elements)[1:])
        more = elements | sympy.FiniteSet(max(elements) + 1)
        for wrong in (fewer, more):
            if verify(golds[problem.task_id], [wrong]):
                accepted.append((problem.task_id, problem.answer, wrong))
    assert accepted == []
