"""npm-style ranges: comparators joined by spaces (AND) and ``||`` (OR)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from versionspec.version import Version, VersionError

_OPERATORS = ("<=", ">=", "!=", "<", ">", "=")
_PARTIAL = re.compile(r"^v?(\d+|[xX*])(?:\.(\d+|[xX*]))?(?:\.(\d+|[xX*]))?(?:-([0-9A-Za-z.-]+))?$")


@dataclass(frozen=True)
class Comparator:
    operator: str
    version: Version

    def matches(self, version: Version) -> bool:
        result = version.compare(self.version)
        if self.operator == "=":
            return result == 0
        if self.operator == "!=":
            return result != 0
        if self.operator == "<":
            return result < 0
        if self.operator == "<=":
            return result <= 0
        if self.operator == ">":
            return result > 0
        if self.operator == ">=":
            return result >= 0
        raise VersionError(f"unknown operator {self.operator!r}")

    def __str__(self) -> str:
        return f"{self.operator}{self.version}"


def _partial(text: str) -> tuple[list[int | None], str | None]:
    """``"1.2.x"`` -> ([1, 2, None], None); missing parts are None (wildcards)."""
    match = _PARTIAL.match(text)
    if match is None:
        raise VersionError(f"not a version or partial version: {text!r}")
    parts: list[int | None] = []
    for group in match.groups()[:3]:
        if group is None or group in "xX*":
            parts.append(None)
        else:
            parts.append(int(group))
    for index, value in enumerate(parts):
        if value is None and any(later is not None for later in parts[index + 1 :]):
            raise VersionError(f"a wildcard cannot precede a number in {text!r}")
    return parts, match.group(4)


def _expand_caret(text: str) -> list[Comparator]:
    parts, pre = _partial(text)
    major, minor, patch = parts
    if major is None:
        return []
    low = Version(major, minor or 0, patch or 0, _pre(pre))
    if major > 0 or minor is None:
        high = Version(major + 1, 0, 0)
    elif minor > 0 or patch is None:
        high = Version(0, minor + 1, 0)
    else:
        high = Version(0, 0, patch + 1)
    return [Comparator(">=", low), Comparator("<", high)]


def _expand_tilde(text: str) -> list[Comparator]:
    parts, pre = _partial(text)
    major, minor, patch = parts
    if major is None:
        return []
    low = Version(major, minor or 0, patch or 0, _pre(pre))
    high = Version(major + 1, 0, 0) if minor is None else Version(major, minor + 1, 0)
    return [Comparator(">=", low), Comparator("<", high)]


def _pre(text: str | None) -> tuple[int | str, ...]:
    if text is None:
        return ()
    return Version.parse(f"0.0.0-{text}").prerelease


def _expand_partial(operator: str, text: str) -> list[Comparator]:
    parts, pre = _partial(text)
    major, minor, patch = parts
    if major is None:
        return [] if operator in ("", "=", ">=", "<=") else [Comparator("<", Version(0, 0, 0))]
    if patch is not None and minor is not None:
        return [Comparator(operator or "=", Version(major, minor, patch, _pre(pre)))]
    low = Version(major, minor or 0, 0)
    high = Version(major + 1, 0, 0) if minor is None else Version(major, minor + 1, 0)
    if operator in ("", "="):
        return [Comparator(">=", low), Comparator("<", high)]
    if operator == ">":
        return [Comparator(">=", high)]
    if operator == ">=":
        return [Comparator(">=", low)]
    if operator == "<":
        return [Comparator("<", low)]
    if operator == "<=":
        return [Comparator("<", high)]
    raise VersionError(f"operator {operator!r} cannot be used with a partial version {text!r}")


def _parse_group(text: str) -> list[Comparator]:
    tokens = text.split()
    if len(tokens) == 3 and tokens[1] == "-":
        low = _expand_partial(">=", tokens[0])
        high = _expand_partial("<=", tokens[2])
        return low + high
    comparators: list[Comparator] = []
    for token in tokens:
        if token.startswith("^"):
            comparators += _expand_caret(token[1:])
        elif token.startswith("~"):
            comparators += _expand_tilde(token[1:].lstrip(">"))
        else:
            operator = next((op for op in _OPERATORS if token.startswith(op)), "")
            rest = token[len(operator) :]
            if not rest:
                raise VersionError(f"operator {operator!r} without a version in {text!r}")
            comparators += _expand_partial(operator, rest)
    return comparators


class Range:
    """A union (``||``) of intersections (space-separated comparators)."""

    def __init__(self, groups: list[list[Comparator]], text: str = "") -> None:
        self.groups = groups
        self.text = text

    @classmethod
    def parse(cls, text: str) -> Range:
        if not text.strip():
            return cls([[]], "*")
        groups = []
        for part in text.split("||"):
            if not part.strip():
                raise VersionError(f"empty alternative in range {text!r}")
            groups.append(_parse_group(part))
        return cls(groups, text.strip())

    def contains(self, version: Version | str, *, include_prerelease: bool = False) -> bool:
        version = Version.coerce(version)
        for group in self.groups:
            if not all(comparator.matches(version) for comparator in group):
                continue
            if not version.prerelease or include_prerelease:
                return True
            if any(c.version.prerelease and c.version.release == version.release for c in group):
                return True
        return False

    __contains__ = contains

    def filter(self, versions: Iterable[Version | str]) -> list[Version]:
        return [v for v in map(Version.coerce, versions) if self.contains(v)]

    def max_satisfying(self, versions: Iterable[Version | str]) -> Version | None:
        matching = self.filter(versions)
        return max(matching) if matching else None

    def min_satisfying(self, versions: Iterable[Version | str]) -> Version | None:
        matching = self.filter(versions)
        return min(matching) if matching else None

    def __str__(self) -> str:
        return " || ".join(" ".join(str(c) for c in group) or "*" for group in self.groups)
