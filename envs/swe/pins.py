"""``NAME==VERSION`` pins of registry packages: parsing and pin files.

The one way a real library is named for ``arenagym swe import-sdist``: a distribution name as
PEP 508 spells it and an exact PEP 440 version (no ranges: a repository is built from one
release, so that the same pin gives the same repository). A pin file holds one pin a line,
with ``#`` comments and blank lines; every error names the file and the line.

Example:
    >>> parse_pin("More_Itertools==10.5.0")
    Pin(name='More_Itertools', version='10.5.0')
    >>> parse_pin("more-itertools==10.5.0").key
    'more-itertools-10.5.0'
    >>> parse_pin("more-itertools>=10")
    Traceback (most recent call last):
    ...
    arenagym.envs.swe.pins.PinError: 'more-itertools>=10' is not NAME==VERSION (e.g. more-itertools==10.5.0)
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

#: A distribution name (PEP 508): letters and digits, with ``.``, ``_``, ``-`` inside.
_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")
#: A PEP 440 version (packaging's VERSION_PATTERN), matched whole and case-insensitively.
_VERSION = re.compile(
    r"""^v?
    (?:(?:[0-9]+)!)?
    (?:[0-9]+(?:\.[0-9]+)*)
    (?:[-_\.]?(?:alpha|a|beta|b|preview|pre|c|rc)[-_\.]?(?:[0-9]+)?)?
    (?:-(?:[0-9]+)|[-_\.]?(?:post|rev|r)[-_\.]?(?:[0-9]+)?)?
    (?:[-_\.]?dev[-_\.]?(?:[0-9]+)?)?
    (?:\+[a-z0-9]+(?:[-_\.][a-z0-9]+)*)?
    $""",
    re.VERBOSE | re.IGNORECASE,
)
_EXAMPLE = "e.g. more-itertools==10.5.0"


class PinError(ValueError):
    """A pin that is not ``NAME==VERSION``; says which text and why (and, in a pin file, where)."""


@dataclass(frozen=True)
class Pin:
    """One release of a registry package: its name as given and its exact version."""

    name: str
    version: str

    @property
    def canonical_name(self) -> str:
        """The name as the registry compares it (PEP 503: lower case, runs of ``-_.`` as ``-``)."""
        return canonical_name(self.name)

    @property
    def key(self) -> str:
        """``canonical-name-version``: the folder name of the imported repository."""
        return f"{self.canonical_name}-{self.version}"

    def __str__(self) -> str:
        return f"{self.name}=={self.version}"


def canonical_name(name: str) -> str:
    """``name`` as the registry compares names (PEP 503): ``Foo_Bar.baz`` -> ``foo-bar-baz``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_pin(text: str) -> Pin:
    """The :class:`Pin` that ``text`` spells (surrounding blanks are ignored), or
    :class:`PinError` saying what is wrong with it."""
    if not isinstance(text, str):
        raise PinError(f"a pin must be a string, got {type(text).__name__}")
    stripped = text.strip()
    name, separator, version = stripped.partition("==")
    name, version = name.strip(), version.strip()
    if not separator or not name or not version or "==" in version:
        raise PinError(f"{stripped!r:.120} is not NAME==VERSION ({_EXAMPLE})")
    if not _NAME.match(name):
        raise PinError(
            f"{stripped!r:.120}: {name!r:.80} is not a package name "
            "(letters, digits and . _ - inside)"
        )
    if not _VERSION.match(version):
        raise PinError(f"{stripped!r:.120}: {version!r:.80} is not an exact PEP 440 version")
    return Pin(name, version)


def read_pin_file(path: str | os.PathLike[str]) -> list[Pin]:
    """The pins of a pin file (one a line; ``#`` starts a comment). A bad line raises
    :class:`PinError` naming the file and the line; a pin listed twice is refused too."""
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PinError(f"pin file {source} does not exist") from None
    except UnicodeDecodeError as error:
        raise PinError(f"{source}:1: not UTF-8 text ({error})") from None
    pins: list[Pin] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        content = line.split("#", 1)[0].strip()
        if not content:
            continue
        try:
            pin = parse_pin(content)
        except PinError as error:
            raise PinError(f"{source}:{number}: {error}") from None
        if pin.canonical_name in seen:
            raise PinError(
                f"{source}:{number}: {pin.canonical_name} is already pinned on line "
                f"{seen[pin.canonical_name]}"
            )
        seen[pin.canonical_name] = number
        pins.append(pin)
    if not pins:
        raise PinError(f"{source}:1: the file holds no pins")
    return pins
