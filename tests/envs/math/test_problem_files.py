r"""The JSONL problem loader: both layouts, optional fields, and every error path, whose message
must name the file, the line and the field."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from arenagym.envs.math.problems import ANSWER_FORMS, Problem, ProblemFileError, load_jsonl


def write_lines(tmp_path: Path, lines: list[str], name: str = "probs.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_rows(tmp_path: Path, rows: list[Any], name: str = "probs.jsonl") -> Path:
    return write_lines(tmp_path, [json.dumps(row) for row in rows], name)


GOOD = {"problem": "What is 1+1?", "answer": "2"}


# ------------------------------------------------------------------------ good files
def test_answer_layout_with_defaults(tmp_path: Path) -> None:
    path = write_rows(tmp_path, [GOOD, {"problem": "Half?", "answer": "\\frac{1}{2}"}])
    assert load_jsonl(path) == [
        Problem("probs/1", "What is 1+1?", "2", "unknown", None, "expression"),
        Problem("probs/2", "Half?", "\\frac{1}{2}", "unknown", None, "expression"),
    ]
    assert load_jsonl(str(path)) == load_jsonl(path)


def test_math_solution_layout_takes_the_last_boxed(tmp_path: Path) -> None:
    solution = r"First $\boxed{3}$, but in the end $x = \boxed{\frac{\sqrt{2}}{2}}$."
    path = write_rows(tmp_path, [{"problem": "Find x.", "solution": solution}])
    (problem,) = load_jsonl(path)
    assert problem.answer == r"\frac{\sqrt{2}}{2}"
    assert problem.task_id == "probs/1"


def test_answer_wins_over_solution(tmp_path: Path) -> None:
    path = write_rows(tmp_path, [{"problem": "p", "answer": "7", "solution": r"\boxed{8}"}])
    assert load_jsonl(path)[0].answer == "7"


def test_optional_fields(tmp_path: Path) -> None:
    row = {"id": "alg/7", "problem": "Roots?", "answer": r"\{1, 2\}", "category": "quadratics",
           "difficulty": 3, "answer_form": "set", "source": "ignored extra field"}  # fmt: skip
    path = write_rows(tmp_path, [row, {**GOOD, "id": 12}])
    assert load_jsonl(path) == [
        Problem("alg/7", "Roots?", r"\{1, 2\}", "quadratics", 3, "set"),
        Problem("12", "What is 1+1?", "2", "unknown", None, "expression"),
    ]


@pytest.mark.parametrize("form", sorted(ANSWER_FORMS))
def test_every_answer_form_is_accepted(tmp_path: Path, form: str) -> None:
    path = write_rows(tmp_path, [{**GOOD, "answer_form": form}])
    assert load_jsonl(path)[0].answer_form == form


def test_blank_lines_are_skipped_and_numbering_follows_lines(tmp_path: Path) -> None:
    path = write_lines(tmp_path, ["", json.dumps(GOOD), "   ", "", json.dumps(GOOD)])
    assert [p.task_id for p in load_jsonl(path)] == ["probs/2", "probs/5"]


def test_crlf_line_endings(tmp_path: Path) -> None:
    path = tmp_path / "crlf.jsonl"
    path.write_bytes((json.dumps(GOOD) + "\r\n" + json.dumps(GOOD) + "\r\n").encode())
    assert [p.task_id for p in load_jsonl(path)] == ["crlf/1", "crlf/2"]


def test_unicode_text(tmp_path: Path) -> None:
    row = {"problem": "Combien font ½ + ¼ ? 中文", "answer": "\\frac{3}{4}"}
    path = tmp_path / "u.jsonl"
    path.write_text(json.dumps(row, ensure_ascii=False) + "\n", encoding="utf-8")
    assert load_jsonl(path)[0].problem == "Combien font ½ + ¼ ? 中文"


# ------------------------------------------------------------------------ bad records
BAD_RECORDS: list[tuple[str, str, str]] = [
    # (second line of the file, field named in the message, other text in the message)
    ('{"problem": "p", "answer": ', "", "not valid JSON"),
    ("{'problem': 'p', 'answer': '1'}", "", "not valid JSON"),
    ('["p", "1"]', "", "must be a JSON object, got list"),
    ('"just a string"', "", "must be a JSON object, got str"),
    ('{"answer": "1"}', "'problem'", "missing"),
    ('{"problem": null, "answer": "1"}', "'problem'", "missing"),
    ('{"problem": 3, "answer": "1"}', "'problem'", "must be a string, not int"),
    ('{"problem": "  ", "answer": "1"}', "'problem'", "is empty"),
    ('{"problem": "p"}', "'answer'", "missing field"),
    ('{"problem": "p", "answer": 5}', "'answer'", "must be a string, not int"),
    ('{"problem": "p", "answer": 0.5}', "'answer'", "must be a string, not float"),
    ('{"problem": "p", "answer": true}', "'answer'", "must be a string, not bool"),
    ('{"problem": "p", "answer": {"x": 1}}', "'answer'", "must be a string, not dict"),
    ('{"problem": "p", "answer": ["1"]}', "'answer'", "must be a string, not list"),
    ('{"problem": "p", "answer": ""}', "'answer'", "is empty"),
    ('{"problem": "p", "answer": " \\t"}', "'answer'", "is empty"),
    ('{"problem": "p", "solution": 5}', "'solution'", "must be a string, not int"),
    ('{"problem": "p", "solution": "\\\\boxed{1} then \\\\boxed{2"}', "'solution'", "\\boxed"),
    ('{"problem": "p", "solution": "no box at all"}', "'solution'", "\\boxed"),
    ('{"problem": "p", "solution": "so \\\\boxed{3"}', "'solution'", "\\boxed"),
    ('{"problem": "p", "solution": "\\\\boxed{ }"}', "'solution'", "\\boxed"),
    ('{"problem": "p", "answer": "1", "difficulty": "hard"}', "'difficulty'", "integer"),
    ('{"problem": "p", "answer": "1", "difficulty": 2.5}', "'difficulty'", "integer"),
    ('{"problem": "p", "answer": "1", "difficulty": true}', "'difficulty'", "integer"),
    ('{"problem": "p", "answer": "1", "answer_form": "matrix"}', "'answer_form'", "'matrix'"),
    ('{"problem": "p", "answer": "1", "answer_form": 3}', "'answer_form'", "not one of"),
    ('{"problem": "p", "answer": "1", "id": ""}', "'id'", "non-empty"),
    ('{"problem": "p", "answer": "1", "id": true}', "'id'", "non-empty"),
    ('{"problem": "p", "answer": "1", "id": 1.5}', "'id'", "non-empty"),
    ('{"problem": "p", "answer": "1", "category": ""}', "'category'", "non-empty"),
    ('{"problem": "p", "answer": "1", "category": 7}', "'category'", "non-empty"),
]


@pytest.mark.parametrize(("line", "field", "text"), BAD_RECORDS)
def test_bad_record_names_file_line_and_field(
    tmp_path: Path, line: str, field: str, text: str
) -> None:
    path = write_lines(tmp_path, [json.dumps(GOOD), line, json.dumps(GOOD)])
    with pytest.raises(ProblemFileError) as caught:
        load_jsonl(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:2: ")
    assert text in message
    if field:
        assert f"field {field}" in message
    assert isinstance(caught.value, ValueError)


def test_line_numbers_count_blank_lines(tmp_path: Path) -> None:
    path = write_lines(tmp_path, [json.dumps(GOOD), "", "", '{"problem": "p"}'])
    with pytest.raises(ProblemFileError, match=r"probs\.jsonl:4: missing field 'answer'"):
        load_jsonl(path)


def test_non_string_field_message_exactly(tmp_path: Path) -> None:
    path = write_lines(tmp_path, [json.dumps(GOOD), '{"problem": "p", "answer": 5}'])
    with pytest.raises(ProblemFileError) as caught:
        load_jsonl(path)
    assert str(caught.value) == f"{path}:2: field 'answer': must be a string, not int"


def test_invalid_json_reports_the_column(tmp_path: Path) -> None:
    bad = '{"problem": "p", "answer": 1,}'
    with pytest.raises(json.JSONDecodeError) as decoding:
        json.loads(bad)
    reason = decoding.value.msg  # worded differently across Python versions
    path = write_lines(tmp_path, [json.dumps(GOOD), bad])
    with pytest.raises(ProblemFileError) as caught:
        load_jsonl(path)
    assert str(caught.value) == f"{path}:2: not valid JSON ({reason}; column 30)"


def test_solution_nested_boxes_belong_to_the_outer_one(tmp_path: Path) -> None:
    path = write_rows(tmp_path, [{"problem": "p", "solution": r"\boxed{a \boxed{b}} done"}])
    assert load_jsonl(path)[0].answer == r"a \boxed{b}"


def test_duplicate_id(tmp_path: Path) -> None:
    path = write_rows(tmp_path, [{**GOOD, "id": "a"}, {**GOOD, "id": "b"}, {**GOOD, "id": "a"}])
    with pytest.raises(ProblemFileError) as caught:
        load_jsonl(path)
    assert str(caught.value) == f"{path}:3: field 'id': 'a' already appears on line 1"


def test_duplicate_id_from_int_and_str(tmp_path: Path) -> None:
    path = write_rows(tmp_path, [{**GOOD, "id": 7}, {**GOOD, "id": "7"}])
    with pytest.raises(ProblemFileError) as caught:
        load_jsonl(path)
    assert str(caught.value) == f"{path}:2: field 'id': '7' already appears on line 1"


def test_explicit_id_clashing_with_a_default_id(tmp_path: Path) -> None:
    path = write_rows(tmp_path, [GOOD, {**GOOD, "id": "probs/1"}])
    with pytest.raises(ProblemFileError) as caught:
        load_jsonl(path)
    assert str(caught.value) == f"{path}:2: field 'id': 'probs/1' already appears on line 1"


def test_duplicate_id_names_the_file_line(tmp_path: Path) -> None:
    """Regression: the message used to number problems (blank lines skipped), with no location."""
    path = write_lines(
        tmp_path, [json.dumps({**GOOD, "id": "a"}), "", json.dumps({**GOOD, "id": "a"})]
    )
    with pytest.raises(ProblemFileError) as caught:
        load_jsonl(path)
    assert str(caught.value) == f"{path}:3: field 'id': 'a' already appears on line 1"


def test_duplicate_id_is_reported_before_later_bad_lines(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path, [json.dumps({**GOOD, "id": "a"}), json.dumps({**GOOD, "id": "a"}), "{bad"]
    )
    with pytest.raises(ProblemFileError, match=rf"^{re.escape(str(path))}:2: field 'id'"):
        load_jsonl(path)


# ------------------------------------------------------------------------ bad files
@pytest.mark.parametrize("content", ["", "\n\n", "   \n\t\n"])
def test_empty_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text(content)
    with pytest.raises(ProblemFileError, match="holds no problems") as caught:
        load_jsonl(path)
    assert str(caught.value).startswith(str(path))


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "missing.jsonl"
    with pytest.raises(ProblemFileError, match="cannot read the problem file") as caught:
        load_jsonl(path)
    assert str(caught.value) == f"{path}: cannot read the problem file (No such file or directory)"


def test_unreadable_path(tmp_path: Path) -> None:
    # a directory cannot be read as a file (chmod 000 is not unreadable for root, so not used)
    with pytest.raises(ProblemFileError, match="cannot read the problem file") as caught:
        load_jsonl(tmp_path)
    assert str(caught.value).startswith(f"{tmp_path}: ")


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(json.dumps(GOOD).encode() + b'\n{"problem": "caf\xe9", "answer": "1"}\n')
    with pytest.raises(ProblemFileError, match="not UTF-8") as caught:
        load_jsonl(path)
    assert str(caught.value).startswith(f"{path}")


def test_non_utf8_file_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(json.dumps(GOOD).encode() + b'\n\n{"problem": "caf\xe9", "answer": "1"}\n')
    with pytest.raises(ProblemFileError) as caught:
        load_jsonl(path)
    assert str(caught.value) == f"{path}:3: not UTF-8 text (invalid continuation byte)"


def test_non_utf8_on_the_first_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"problem": "\xff", "answer": "1"}\n' + json.dumps(GOOD).encode() + b"\n")
    with pytest.raises(ProblemFileError) as caught:
        load_jsonl(path)
    assert str(caught.value) == f"{path}:1: not UTF-8 text (invalid start byte)"


@pytest.mark.parametrize("char", ["\u2028", "\u2029", "\x85"])
def test_json_line_with_unicode_line_separator(tmp_path: Path, char: str) -> None:
    """Regression: str.splitlines() split lines at these characters inside JSON strings."""
    row = {"problem": f"Line one{char}line two: what is 1+1?", "answer": "2"}
    path = tmp_path / "sep.jsonl"
    path.write_text(
        json.dumps(row, ensure_ascii=False) + "\n" + json.dumps(GOOD) + "\n", encoding="utf-8"
    )
    first, second = load_jsonl(path)
    assert first.problem == row["problem"]
    assert (first.task_id, second.task_id) == ("sep/1", "sep/2")  # numbering follows "\n" only


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    # files saved by Windows editors start with a BOM
    path = tmp_path / "bom.jsonl"
    path.write_bytes(
        b"\xef\xbb\xbf" + json.dumps(GOOD).encode() + b"\n" + json.dumps(GOOD).encode()
    )
    assert load_jsonl(path) == [
        Problem("bom/1", "What is 1+1?", "2", "unknown", None, "expression"),
        Problem("bom/2", "What is 1+1?", "2", "unknown", None, "expression"),
    ]


def test_non_utf8_line_after_a_bom(tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(GOOD).encode() + b"\n\xe9\n")
    with pytest.raises(ProblemFileError) as caught:
        load_jsonl(path)
    assert str(caught.value) == f"{path}:2: not UTF-8 text (invalid continuation byte)"


def test_bom_only_at_the_start(tmp_path: Path) -> None:
    # a BOM anywhere else is an ordinary U+FEFF character, which JSON does not allow outside strings
    path = tmp_path / "bom.jsonl"
    path.write_bytes(json.dumps(GOOD).encode() + b"\n\xef\xbb\xbf" + json.dumps(GOOD).encode())
    with pytest.raises(ProblemFileError, match=rf"^{re.escape(str(path))}:2: not valid JSON"):
        load_jsonl(path)
