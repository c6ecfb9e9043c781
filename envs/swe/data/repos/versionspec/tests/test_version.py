import itertools

import pytest
from versionspec import Version, VersionError


def test_parse_full_version():
    v = Version.parse("1.4.0-rc.2+build.7")
    assert v.release == (1, 4, 0)
    assert v.prerelease == ("rc", 2)
    assert v.build == ("build", "7")
    assert str(v) == "1.4.0-rc.2+build.7"


def test_parse_accepts_a_leading_v_and_spaces():
    assert Version.parse(" v2.0.1 ") == Version(2, 0, 1)


@pytest.mark.parametrize(
    "text", ["1.2", "1.2.3.4", "01.2.3", "1.02.3", "1.2.3-", "1.2.3-rc..1", "1.2.3-01", "1.2.3+"]
)
def test_parse_rejects_invalid_versions(text):
    with pytest.raises(VersionError):
        Version.parse(text)


def test_release_ordering():
    ordered = ["0.9.9", "1.0.0", "1.0.10", "1.2.0", "2.0.0", "10.0.0"]
    versions = [Version.parse(t) for t in reversed(ordered)]
    assert [str(v) for v in sorted(versions)] == ordered


def test_prerelease_precedence_follows_the_spec():
    chain = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
    ]
    versions = [Version.parse(t) for t in chain]
    for lower, higher in itertools.pairwise(versions):
        assert lower < higher
        assert higher > lower
        assert lower.compare(higher) == -1
        assert higher.compare(lower) == 1


def test_build_metadata_is_ignored_for_precedence():
    assert Version.parse("1.0.0+a") == Version.parse("1.0.0+b")
    assert hash(Version.parse("1.0.0+a")) == hash(Version.parse("1.0.0"))
    assert Version.parse("1.0.0+a").compare(Version.parse("1.0.0")) == 0


def test_comparison_operators():
    a, b = Version.parse("1.2.3"), Version.parse("1.3.0")
    assert a < b and a <= b and b > a and b >= a and a != b
    assert max([a, b]) is b


def test_is_prerelease():
    assert Version.parse("1.0.0-0").is_prerelease()
    assert not Version.parse("1.0.0").is_prerelease()


@pytest.mark.parametrize(
    ("start", "part", "expected"),
    [
        ("1.2.3", "major", "2.0.0"),
        ("1.2.3", "minor", "1.3.0"),
        ("1.2.3", "patch", "1.2.4"),
        ("2.0.0-rc.1", "major", "2.0.0"),
        ("2.1.0-rc.1", "major", "3.0.0"),
        ("1.3.0-beta", "minor", "1.3.0"),
        ("1.3.1-beta", "minor", "1.4.0"),
        ("1.2.4-rc.3", "patch", "1.2.4"),
        ("1.2.3", "prerelease", "1.2.4-0"),
        ("1.2.4-rc.3", "prerelease", "1.2.4-rc.4"),
        ("1.2.4-rc", "prerelease", "1.2.4-rc.0"),
        ("1.2.4-1.beta", "prerelease", "1.2.4-2.beta"),
    ],
)
def test_bump(start, part, expected):
    assert str(Version.parse(start).bump(part)) == expected


def test_bump_unknown_part():
    with pytest.raises(VersionError, match="unknown version part"):
        Version.parse("1.0.0").bump("micro")


def test_coerce():
    v = Version(1, 0, 0)
    assert Version.coerce(v) is v
    assert Version.coerce("1.0.0") == v
