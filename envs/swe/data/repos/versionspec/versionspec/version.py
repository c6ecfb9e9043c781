"""The Version record: parsing, precedence and bumping (Semantic Versioning 2.0.0)."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

_VERSION = re.compile(
    r"^v?(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)"
    r"(?:-(?P<pre>[0-9A-Za-z.-]+))?(?:\+(?P<build>[0-9A-Za-z.-]+))?$"
)


class VersionError(ValueError):
    """Text that is not a valid semantic version or range."""


def _parse_prerelease(text: str) -> tuple[int | str, ...]:
    parts: list[int | str] = []
    for identifier in text.split("."):
        if not identifier:
            raise VersionError(f"empty pre-release identifier in {text!r}")
        if identifier.isdigit():
            if len(identifier) > 1 and identifier.startswith("0"):
                raise VersionError(f"numeric identifier {identifier!r} has a leading zero")
            parts.append(int(identifier))
        else:
            parts.append(identifier)
    return tuple(parts)


def _compare_identifiers(left: int | str, right: int | str) -> int:
    """Numeric identifiers sort before alphanumeric ones; like kinds compare naturally."""
    if isinstance(left, int) and isinstance(right, int):
        return (left > right) - (left < right)
    if isinstance(left, int):
        return -1
    if isinstance(right, int):
        return 1
    return (left > right) - (left < right)


@functools.total_ordering
@dataclass(frozen=True)
class Version:
    major: int
    minor: int
    patch: int
    prerelease: tuple[int | str, ...] = ()
    build: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Version:
        match = _VERSION.match(text.strip())
        if match is None:
            raise VersionError(f"not a semantic version: {text!r}")
        pre = match.group("pre")
        build = match.group("build")
        if build is not None and any(not part for part in build.split(".")):
            raise VersionError(f"empty build identifier in {text!r}")
        return cls(
            int(match.group("major")),
            int(match.group("minor")),
            int(match.group("patch")),
            _parse_prerelease(pre) if pre is not None else (),
            tuple(build.split(".")) if build is not None else (),
        )

    @classmethod
    def coerce(cls, value: Version | str) -> Version:
        return value if isinstance(value, Version) else cls.parse(value)

    @property
    def release(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch)

    def is_prerelease(self) -> bool:
        return bool(self.prerelease)

    def compare(self, other: Version) -> int:
        """-1, 0 or 1 by semver precedence (build metadata is ignored)."""
        if self.release != other.release:
            return -1 if self.release < other.release else 1
        if not self.prerelease and not other.prerelease:
            return 0
        if not self.prerelease:
            return 1
        if not other.prerelease:
            return -1
        for left, right in zip(self.prerelease, other.prerelease, strict=False):
            result = _compare_identifiers(left, right)
            if result != 0:
                return result
        size, other_size = len(self.prerelease), len(other.prerelease)
        return (size > other_size) - (size < other_size)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self.compare(other) == 0

    def __lt__(self, other: Version) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self.compare(other) < 0

    def __hash__(self) -> int:
        return hash((self.release, self.prerelease))

    def bump(self, part: str) -> Version:
        """The next version: ``major``, ``minor``, ``patch`` or ``prerelease``.

        Bumping a pre-release's own level releases it (``1.2.0-rc.1`` -> ``1.2.0`` for minor).
        """
        if part == "major":
            if self.prerelease and self.minor == 0 and self.patch == 0:
                return Version(self.major, 0, 0)
            return Version(self.major + 1, 0, 0)
        if part == "minor":
            if self.prerelease and self.patch == 0:
                return Version(self.major, self.minor, 0)
            return Version(self.major, self.minor + 1, 0)
        if part == "patch":
            if self.prerelease:
                return Version(self.major, self.minor, self.patch)
            return Version(self.major, self.minor, self.patch + 1)
        if part == "prerelease":
            if not self.prerelease:
                return Version(self.major, self.minor, self.patch + 1, (0,))
            identifiers = list(self.prerelease)
            for index in range(len(identifiers) - 1, -1, -1):
                value = identifiers[index]
                if isinstance(value, int):
                    identifiers[index] = value + 1
                    return Version(self.major, self.minor, self.patch, tuple(identifiers))
            return Version(self.major, self.minor, self.patch, (*identifiers, 0))
        raise VersionError(f"unknown version part {part!r}")

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += "-" + ".".join(str(part) for part in self.prerelease)
        if self.build:
            text += "+" + ".".join(self.build)
        return text
