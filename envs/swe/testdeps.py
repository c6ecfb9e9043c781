"""What an unpacked source distribution says its tests need, and where its code lives.

Libraries declare test requirements in several places, none standard; this reads the common
ones, in order, and keeps every requirement it finds (duplicates once):

1. ``PKG-INFO``: ``Requires-Dist`` without an ``extra`` marker (the library's own dependencies)
   and those of a ``test``/``tests``/``testing`` extra;
2. ``pyproject.toml``: ``[project.optional-dependencies]`` of those extras and
   ``[dependency-groups]`` (PEP 735) ``test``/``tests``/``testing`` (``dev`` when none of them
   exists), following ``include-group``;
3. requirement files: ``requirements-test.txt``, ``test-requirements.txt``,
   ``requirements/test*.txt``, ``tests/requirements.txt``, ``requirements-dev.txt``... (plain
   requirement lines only);
4. ``tox.ini``'s ``[testenv]`` ``deps`` (lines without a factor prefix or substitution) and
   the ``Requires-Dist`` of its ``extras``;
5. ``pytest-cov`` when a pytest configuration passes ``--cov``, and ``pytest`` always.

Markers other than ``extra`` are kept for pip to evaluate against the sandbox's interpreter.

Example:
    >>> import pathlib, tempfile
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (root / "PKG-INFO").write_text(
    ...     "Name: demo\\nVersion: 1.0\\nRequires-Dist: six>=1.5\\n"
    ...     "Requires-Dist: hypothesis; extra == 'tests'\\nRequires-Dist: sphinx; extra == 'docs'\\n")
    >>> declared_requirements(root).requirements
    ('six>=1.5', 'hypothesis', 'pytest')
    >>> (root / "src" / "demo").mkdir(parents=True)
    >>> _ = (root / "src" / "demo" / "__init__.py").write_text("")
    >>> source_paths(root)
    ('src',)
"""

from __future__ import annotations

import configparser
import email.parser
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Extras and dependency groups that hold test requirements.
TEST_EXTRAS = ("test", "tests", "testing")
#: Requirement files read for test requirements, relative to the root.
REQUIREMENT_FILES = (
    "requirements-test.txt",
    "requirements-tests.txt",
    "requirements-testing.txt",
    "test-requirements.txt",
    "tests-requirements.txt",
    "requirements/test.txt",
    "requirements/tests.txt",
    "requirements/testing.txt",
    "tests/requirements.txt",
    "test/requirements.txt",
    "requirements-dev.txt",
    "dev-requirements.txt",
    "requirements/dev.txt",
)
_EXTRA_CLAUSE = re.compile(
    r"""(?:\s+and\s+)?\(?\s*extra\s*==\s*['"]([^'"]+)['"]\s*\)?(?:\s+and\s+)?"""
)
_REQUIREMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\s*(\[[^\]]*\])?\s*([<>=!~;(].*)?$")


@dataclass(frozen=True)
class DeclaredRequirements:
    """Requirements found (in order, once each) and the files they came from."""

    requirements: tuple[str, ...]
    sources: tuple[str, ...]


def read_pkg_info(root: Path) -> email.message.Message:
    """The sdist's ``PKG-INFO`` (an empty message when it has none)."""
    path = root / "PKG-INFO"
    text = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
    return email.parser.Parser().parsestr(text, headersonly=True)


def declared_requirements(root: Path) -> DeclaredRequirements:
    """Everything ``root``'s tests need from the registry (see the module doc)."""
    found: dict[str, None] = {}
    sources: list[str] = []

    def add(requirements: list[str], source: str) -> None:
        kept = [r for r in (_clean(r) for r in requirements) if r]
        if kept:
            sources.append(source)
        for requirement in kept:
            found.setdefault(requirement, None)

    info = read_pkg_info(root)
    extras = (*TEST_EXTRAS, *_tox_extras(root / "tox.ini"))
    add(_pkg_info_requirements(info.get_all("Requires-Dist") or [], extras), "PKG-INFO")
    pyproject = _toml(root / "pyproject.toml")
    project = pyproject.get("project", {}) if isinstance(pyproject.get("project"), dict) else {}
    optional = project.get("optional-dependencies", {})
    if isinstance(optional, dict):
        for extra in TEST_EXTRAS:
            add(
                _strings(optional.get(extra)),
                f"pyproject.toml [project.optional-dependencies] {extra}",
            )
    groups = pyproject.get("dependency-groups", {})
    if isinstance(groups, dict):
        names = [name for name in TEST_EXTRAS if name in groups] or (
            ["dev"] if "dev" in groups else []
        )
        for name in names:
            add(_group(groups, name, set()), f"pyproject.toml [dependency-groups] {name}")
    for relative in REQUIREMENT_FILES:
        path = root / relative
        if path.is_file():
            add(_requirement_lines(path.read_text(errors="replace")), relative)
    add(_tox_deps(root / "tox.ini"), "tox.ini [testenv] deps")
    if _uses_coverage(root, pyproject):
        add(["pytest-cov"], "pytest --cov option")
    if not any(re.match(r"pytest\b(?!-)", r) for r in found):
        add(["pytest"], "the test runner")
    return DeclaredRequirements(tuple(found), tuple(dict.fromkeys(sources)))


def source_paths(root: Path) -> tuple[str, ...]:
    """Workspace folders to put on ``sys.path``: ``("src",)`` for a src layout (a package or
    module under ``src/``), else nothing (the workspace root is on it already)."""
    src = root / "src"
    if not src.is_dir():
        return ()
    for entry in src.iterdir():
        if (entry / "__init__.py").is_file() or entry.suffix == ".py":
            return ("src",)
    return ()


def entry_points(root: Path) -> str:
    """The ``entry_points.txt`` of the sdist's ``*.egg-info`` (setuptools puts one there),
    or empty."""
    for path in sorted(root.glob("*.egg-info/entry_points.txt")) + sorted(
        root.glob("src/*.egg-info/entry_points.txt")
    ):
        return path.read_text(errors="replace")
    return ""


def find_test_files(root: Path) -> list[str]:
    """The pytest files under ``root`` (``test_*.py``, ``*_test.py``), relative, sorted."""
    found = {
        path.relative_to(root).as_posix()
        for pattern in ("test_*.py", "*_test.py")
        for path in root.rglob(pattern)
        if path.is_file() and ".git" not in path.relative_to(root).parts
    }
    return sorted(found)


def _clean(requirement: str) -> str:
    text = requirement.split(" #", 1)[0].strip()
    return text if text and _REQUIREMENT.match(text) else ""


def _pkg_info_requirements(lines: list[str], extras: Sequence[str] = TEST_EXTRAS) -> list[str]:
    """``Requires-Dist`` lines without an extra, plus those of ``extras`` (marker dropped)."""
    kept: list[str] = []
    for line in lines:
        requirement, _, marker = line.partition(";")
        named = _EXTRA_CLAUSE.findall(marker)
        if not named:
            kept.append(line.strip())
            continue
        if " or " in marker or not any(extra in extras for extra in named):
            continue
        rest = _EXTRA_CLAUSE.sub(" ", marker).strip().strip("()").strip()
        kept.append(f"{requirement.strip()}; {rest}" if rest else requirement.strip())
    return kept


def _toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text(errors="replace"))
    except tomllib.TOMLDecodeError:
        return {}


def _strings(value: Any) -> list[str]:
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


def _group(groups: dict[str, Any], name: str, seen: set[str]) -> list[str]:
    """A dependency group's requirements, its ``include-group`` entries expanded (once)."""
    if name in seen:
        return []
    seen.add(name)
    found: list[str] = []
    for item in groups.get(name, []) if isinstance(groups.get(name), list) else []:
        if isinstance(item, str):
            found.append(item)
        elif isinstance(item, dict) and isinstance(item.get("include-group"), str):
            found.extend(_group(groups, item["include-group"], seen))
    return found


def _requirement_lines(text: str) -> list[str]:
    return [
        line.split("#", 1)[0].strip()
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith(("-", "#")) and "://" not in line
    ]


def _tox_extras(path: Path) -> list[str]:
    """The extras tox installs for ``[testenv]`` (``extras = unit: diagrams`` -> diagrams)."""
    parser = _ini(path)
    if parser is None or not parser.has_option("testenv", "extras"):
        return []
    names = []
    for line in parser.get("testenv", "extras").replace(",", "\n").splitlines():
        name = line.split(":", 1)[-1].strip()
        if re.fullmatch(r"[A-Za-z0-9._-]+", name):
            names.append(name)
    return names


def _ini(path: Path) -> configparser.ConfigParser | None:
    if not path.is_file():
        return None
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(path.read_text(errors="replace"))
    except configparser.Error:
        return None
    return parser


def _tox_deps(path: Path) -> list[str]:
    if not path.is_file():
        return []
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(path.read_text(errors="replace"))
    except configparser.Error:
        return []
    if not parser.has_option("testenv", "deps"):
        return []
    deps = parser.get("testenv", "deps")
    return [
        line.strip()
        for line in deps.splitlines()
        if line.strip()
        and "{" not in line
        and not line.strip().startswith("-")
        and not re.match(r"^\s*[\w!,.-]+\s*:", line)
    ]


def _uses_coverage(root: Path, pyproject: dict[str, Any]) -> bool:
    """Whether a pytest configuration of ``root`` passes ``--cov`` (pytest-cov then needed)."""
    tool = pyproject.get("tool", {}) if isinstance(pyproject.get("tool"), dict) else {}
    pytest_table = tool.get("pytest", {}) if isinstance(tool.get("pytest"), dict) else {}
    ini = pytest_table.get("ini_options", pytest_table)
    texts = [str(ini.get("addopts", "")) if isinstance(ini, dict) else ""]
    for name, section in (
        ("pytest.ini", "pytest"),
        ("setup.cfg", "tool:pytest"),
        ("tox.ini", "pytest"),
    ):
        path = root / name
        if not path.is_file():
            continue
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        try:
            parser.read_string(path.read_text(errors="replace"))
        except configparser.Error:
            continue
        if parser.has_option(section, "addopts"):
            texts.append(parser.get(section, "addopts"))
    return any("--cov" in text for text in texts)


def python_supported(requires_python: str, version: tuple[int, ...]) -> bool:
    """Whether ``version`` (``(3, 11, 2)``) meets a ``Requires-Python`` specifier
    (``>=3.9, !=3.0.*``); clauses it cannot read are taken as met (pip has the last word)."""
    for clause in requires_python.split(","):
        match = re.fullmatch(r"\s*(>=|<=|==|!=|~=|>|<)\s*([0-9]+(?:\.[0-9]+)*)(\.\*)?\s*", clause)
        if match is None:
            continue
        operator, text, wildcard = match.groups()
        wanted = tuple(int(part) for part in text.split("."))
        have = version[: len(wanted)] if wildcard or operator in ("==", "!=") else version
        if operator == "~=":
            ok = version >= wanted and version[: len(wanted) - 1] == wanted[:-1]
        else:
            ok = {
                ">=": have >= wanted,
                "<=": have <= wanted,
                ">": have > wanted,
                "<": have < wanted,
                "==": have == wanted,
                "!=": have != wanted,
            }[operator]
        if not ok:
            return False
    return True
