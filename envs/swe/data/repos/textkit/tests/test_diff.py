import pytest
from textkit import diff_lines, levenshtein, similarity, unified_diff


@pytest.mark.parametrize(
    ("a", "b", "distance"),
    [
        ("kitten", "sitting", 3),
        ("", "abc", 3),
        ("abc", "", 3),
        ("flaw", "lawn", 2),
        ("same", "same", 0),
        ("ab", "ba", 2),
    ],
)
def test_levenshtein(a, b, distance):
    assert levenshtein(a, b) == distance
    assert levenshtein(b, a) == distance


def test_similarity():
    assert similarity("", "") == 1.0
    assert similarity("abcd", "abcd") == 1.0
    assert similarity("abcd", "wxyz") == 0.0
    assert similarity("abcd", "abce") == 0.75


def test_diff_lines_replacement():
    assert diff_lines(["a", "b", "c"], ["a", "x", "c"]) == [
        (" ", "a"),
        ("-", "b"),
        ("+", "x"),
        (" ", "c"),
    ]


def test_diff_lines_insertions_and_deletions():
    assert diff_lines([], ["x"]) == [("+", "x")]
    assert diff_lines(["x"], []) == [("-", "x")]
    assert diff_lines(["a", "c"], ["a", "b", "c"]) == [(" ", "a"), ("+", "b"), (" ", "c")]
    assert diff_lines(["a", "b", "c"], ["a", "c"]) == [(" ", "a"), ("-", "b"), (" ", "c")]


def test_diff_lines_keeps_a_longest_common_subsequence():
    a = ["x", "a", "b", "c", "y"]
    b = ["a", "b", "z", "c"]
    script = diff_lines(a, b)
    kept = [line for tag, line in script if tag == " "]
    assert kept == ["a", "b", "c"]
    assert [line for tag, line in script if tag != "+"] == a
    assert [line for tag, line in script if tag != "-"] == b


def test_unified_diff_single_hunk():
    assert unified_diff(["a", "b", "c"], ["a", "x", "c"]) == [
        "@@ -1,3 +1,3 @@",
        " a",
        "-b",
        "+x",
        " c",
    ]


def test_unified_diff_equal_inputs():
    assert unified_diff(["a"], ["a"]) == []


def test_unified_diff_context_trims_far_lines():
    a = [str(n) for n in range(1, 11)]
    b = list(a)
    b[4] = "five"
    assert unified_diff(a, b, context=1) == ["@@ -4,3 +4,3 @@", " 4", "-5", "+five", " 6"]


def test_unified_diff_splits_distant_changes_into_hunks():
    a = [str(n) for n in range(1, 21)]
    b = list(a)
    b[1] = "two"
    b[17] = "eighteen"
    hunks = [line for line in unified_diff(a, b, context=2) if line.startswith("@@")]
    assert hunks == ["@@ -1,4 +1,4 @@", "@@ -16,5 +16,5 @@"]


def test_unified_diff_merges_close_changes():
    a = [str(n) for n in range(1, 11)]
    b = list(a)
    b[2] = "three"
    b[5] = "six"
    hunks = [line for line in unified_diff(a, b, context=2) if line.startswith("@@")]
    assert hunks == ["@@ -1,8 +1,8 @@"]


def test_unified_diff_pure_insertion_into_empty():
    assert unified_diff([], ["x", "y"]) == ["@@ -0,0 +1,2 @@", "+x", "+y"]
