import pytest
from versionspec import Range, Version, VersionError


def matching(spec, versions):
    rng = Range.parse(spec)
    return [v for v in versions if rng.contains(v)]


CANDIDATES = [
    "0.0.3",
    "0.0.4",
    "0.2.3",
    "0.2.9",
    "0.3.0",
    "1.2.2",
    "1.2.3",
    "1.2.9",
    "1.3.0",
    "1.9.9",
    "2.0.0",
    "2.5.1",
]


def test_exact_and_not_equal():
    assert matching("=1.2.3", CANDIDATES) == ["1.2.3"]
    assert matching("1.2.3", CANDIDATES) == ["1.2.3"]
    assert "1.2.3" not in matching("!=1.2.3", CANDIDATES)
    assert len(matching("!=1.2.3", CANDIDATES)) == len(CANDIDATES) - 1


def test_inequalities():
    assert matching(">1.9.9", CANDIDATES) == ["2.0.0", "2.5.1"]
    assert matching(">=1.9.9", CANDIDATES) == ["1.9.9", "2.0.0", "2.5.1"]
    assert matching("<0.2.3", CANDIDATES) == ["0.0.3", "0.0.4"]
    assert matching("<=0.2.3", CANDIDATES) == ["0.0.3", "0.0.4", "0.2.3"]


def test_and_of_comparators():
    assert matching(">=1.2.3 <1.3.0", CANDIDATES) == ["1.2.3", "1.2.9"]


def test_or_of_groups():
    assert matching("<0.1.0 || >=2.5.0", CANDIDATES) == ["0.0.3", "0.0.4", "2.5.1"]


def test_caret_ranges():
    assert matching("^1.2.3", CANDIDATES) == ["1.2.3", "1.2.9", "1.3.0", "1.9.9"]
    assert matching("^0.2.3", CANDIDATES) == ["0.2.3", "0.2.9"]
    assert matching("^0.0.3", CANDIDATES) == ["0.0.3"]
    assert matching("^1.2", CANDIDATES) == ["1.2.2", "1.2.3", "1.2.9", "1.3.0", "1.9.9"]
    assert matching("^0.0", CANDIDATES) == ["0.0.3", "0.0.4"]


def test_tilde_ranges():
    assert matching("~1.2.3", CANDIDATES) == ["1.2.3", "1.2.9"]
    assert matching("~1", CANDIDATES) == ["1.2.2", "1.2.3", "1.2.9", "1.3.0", "1.9.9"]
    assert matching("~0.2", CANDIDATES) == ["0.2.3", "0.2.9"]


def test_x_ranges():
    assert matching("1.2.x", CANDIDATES) == ["1.2.2", "1.2.3", "1.2.9"]
    assert matching("2.*", CANDIDATES) == ["2.0.0", "2.5.1"]
    assert matching("*", CANDIDATES) == CANDIDATES
    assert matching("", CANDIDATES) == CANDIDATES


def test_partial_versions_with_operators():
    assert matching(">1.2", CANDIDATES) == ["1.3.0", "1.9.9", "2.0.0", "2.5.1"]
    assert matching("<=1.2", CANDIDATES)[-1] == "1.2.9"
    assert matching("<1", CANDIDATES) == ["0.0.3", "0.0.4", "0.2.3", "0.2.9", "0.3.0"]
    assert matching(">=2", CANDIDATES) == ["2.0.0", "2.5.1"]


def test_hyphen_range_is_inclusive():
    assert matching("1.2.3 - 1.9.9", CANDIDATES) == ["1.2.3", "1.2.9", "1.3.0", "1.9.9"]
    assert matching("0.2 - 1.2", CANDIDATES) == [
        "0.2.3",
        "0.2.9",
        "0.3.0",
        "1.2.2",
        "1.2.3",
        "1.2.9",
    ]


def test_prereleases_only_match_on_the_same_release():
    rng = Range.parse(">=1.2.3-alpha.3")
    assert rng.contains("1.2.3-alpha.7")
    assert not rng.contains("1.2.3-alpha.2")
    assert not rng.contains("3.4.5-alpha.9")
    assert rng.contains("3.4.5")
    assert rng.contains("3.4.5-alpha.9", include_prerelease=True)


def test_max_and_min_satisfying():
    rng = Range.parse("^1.2.3 || >=3.0.0 <3.1.0")
    versions = ["1.2.0", "1.8.1", "3.0.4", "3.2.0"]
    assert str(rng.max_satisfying(versions)) == "3.0.4"
    assert str(rng.min_satisfying(versions)) == "1.8.1"
    assert Range.parse(">9").max_satisfying(versions) is None


def test_filter_keeps_order():
    assert [str(v) for v in Range.parse("1.x").filter(["1.3.0", "2.0.0", "1.0.0"])] == [
        "1.3.0",
        "1.0.0",
    ]


def test_contains_operator_and_version_objects():
    assert Version(1, 2, 5) in Range.parse("~1.2")


def test_str_shows_expanded_comparators():
    assert str(Range.parse("^1.2.3")) == ">=1.2.3 <2.0.0"
    assert str(Range.parse("~0.4 || 2.x")) == ">=0.4.0 <0.5.0 || >=2.0.0 <3.0.0"


@pytest.mark.parametrize("text", ["1.x.3", ">=", "1.2.3 ||", "abc", "^x.1"])
def test_invalid_ranges(text):
    with pytest.raises(VersionError):
        Range.parse(text)
