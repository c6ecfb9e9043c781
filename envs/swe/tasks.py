"""SWE tasks in the SWE-bench JSONL format, plus arenagym's own optional fields.

One JSON object per line with SWE-bench's fields (``instance_id``, ``repo``, ``base_commit``,
``patch``, ``test_patch``, ``problem_statement``, ``hints_text``, ``FAIL_TO_PASS``,
``PASS_TO_PASS``, ``version``, ``environment_setup_commit``); ``FAIL_TO_PASS``/``PASS_TO_PASS``
may be JSON lists or strings holding a JSON list (as on the Hugging Face hub). arenagym adds:

- ``repo_path``: where the source comes from, a local git repository (exported at
  ``base_commit``) or a plain directory snapshot; a relative path is resolved against the folder
  of the JSONL file when it is loaded (and ``~`` expanded). Whoever materialises the task checks
  it with :func:`~arenagym.envs.swe.workspace.check_repo_path`: a git repository or a folder you
  own, never a system folder, home secret or virtual environment, and a size cap;
- ``base_patch``: applied to the source before the agent's base commit is made (e.g. an injected
  bug), never shown to the agent as a patch;
- ``setup_commands``: shell commands run in the sandbox before the tests (list or JSON string);
- ``test_command``: the pytest invocation (``python -m pytest`` plus fixed options);
- ``image``: the runtime image for image-based runtimes (Docker);
- ``environment``: the repository's Python environment, as the path of its spec file (a JSON
  spec, or an imported repository's provenance file holding one under ``"environment"``, see
  :mod:`arenagym.envs.swe.sdist`); relative paths are resolved like ``repo_path``. The
  environment is built from the registry when missing (:mod:`arenagym.envs.swe.taskenv`) and
  mounted read-only into every sandbox of the task.

Unknown fields (e.g. SWE-bench's ``created_at``) are ignored. Every error names the file, the
line and the field.

Example:
    >>> import json, pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "tasks.jsonl"
    >>> row = {"instance_id": "demo-1", "repo": "demo/lib", "base_commit": "abc",
    ...        "patch": "", "test_patch": "", "problem_statement": "Fix it.",
    ...        "FAIL_TO_PASS": '["tests/test_a.py::test_x"]', "PASS_TO_PASS": []}
    >>> _ = path.write_text(json.dumps(row) + "\\n")
    >>> [task] = load_tasks(path)
    >>> task.FAIL_TO_PASS, task.test_command
    (('tests/test_a.py::test_x',), 'python -m pytest')
    >>> _ = path.write_text(json.dumps({**row, "instance_id": 3}) + "\\n")
    >>> load_tasks(path)
    Traceback (most recent call last):
    ...
    arenagym.envs.swe.tasks.TaskFormatError: ...tasks.jsonl:1: field 'instance_id': expected a string, got int
"""

from __future__ import annotations

import gzip
import json
import os
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

#: Fields every line must have.
REQUIRED_FIELDS: tuple[str, ...] = (
    "instance_id",
    "repo",
    "base_commit",
    "patch",
    "problem_statement",
)
#: Fields holding a list of strings (a JSON list, or a string that holds one).
_LIST_FIELDS = ("FAIL_TO_PASS", "PASS_TO_PASS", "setup_commands")
#: Fields holding a string or null.
_OPTIONAL_STRING_FIELDS = ("repo_path", "image", "environment")
#: Fields holding a path resolved against the task file's folder.
_PATH_FIELDS = ("repo_path", "environment")


class TaskFormatError(ValueError):
    """A task file that does not follow the format; says where (file, line, field) and why."""

    def __init__(self, path: str | os.PathLike[str], line: int, field: str | None, problem: str):
        self.path = str(path)
        self.line = line
        self.field = field
        self.problem = problem
        where = f"{self.path}:{line}"
        super().__init__(f"{where}: field {field!r}: {problem}" if field else f"{where}: {problem}")


@dataclass(frozen=True)
class SWETask:
    """One repository task: the source at a base commit, a problem statement, and the tests
    that decide whether it is solved (all ``FAIL_TO_PASS`` and ``PASS_TO_PASS`` must pass).

    ``patch`` (the gold fix) and ``test_patch`` are never shown to the agent. Test ids are
    pytest node ids relative to the repository root (``tests/test_x.py::TestY::test_z[1]``).
    """

    instance_id: str
    repo: str
    base_commit: str
    patch: str
    test_patch: str
    problem_statement: str
    hints_text: str = ""
    FAIL_TO_PASS: tuple[str, ...] = ()
    PASS_TO_PASS: tuple[str, ...] = ()
    version: str = ""
    environment_setup_commit: str = ""
    repo_path: str | None = None
    base_patch: str = ""
    setup_commands: tuple[str, ...] = ()
    test_command: str = "python -m pytest"
    image: str | None = None
    environment: str | None = None

    @property
    def selected_tests(self) -> tuple[str, ...]:
        """``FAIL_TO_PASS`` then ``PASS_TO_PASS``, without duplicates, in order."""
        return tuple(dict.fromkeys(self.FAIL_TO_PASS + self.PASS_TO_PASS))

    def to_json(self) -> dict[str, Any]:
        """The JSONL row: SWE-bench's fields first, list fields as JSON lists."""
        row: dict[str, Any] = {}
        for spec in fields(self):
            value = getattr(self, spec.name)
            row[spec.name] = list(value) if isinstance(value, tuple) else value
        return row


_FIELD_NAMES = tuple(spec.name for spec in fields(SWETask))


def _string_list(value: Any, where: tuple[Path, int, str]) -> tuple[str, ...]:
    path, line, name = where
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else []
        except (ValueError, RecursionError) as error:  # bad, too deep, or too long a number
            raise TaskFormatError(
                path, line, name, f"a string here must hold a JSON list of strings ({error})"
            ) from None
    if not isinstance(value, list):
        raise TaskFormatError(
            path, line, name, f"expected a list of strings, got {type(value).__name__}"
        )
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise TaskFormatError(
                path, line, name, f"item {index} must be a non-empty string, got {item!r:.80}"
            )
    return tuple(value)


def parse_task(
    row: Any,
    *,
    path: str | os.PathLike[str] = "<task>",
    line: int = 1,
    base_dir: str | os.PathLike[str] | None = None,
) -> SWETask:
    """Validate one decoded JSON row and build its :class:`SWETask`.

    Relative ``repo_path`` and ``environment`` values are resolved against ``base_dir``
    (default: ``path``'s folder).
    """
    source = Path(path)
    base = Path(base_dir) if base_dir is not None else source.parent
    if not isinstance(row, dict):
        raise TaskFormatError(
            source, line, None, f"expected a JSON object, got {type(row).__name__}"
        )
    for name in REQUIRED_FIELDS:
        if name not in row:
            raise TaskFormatError(source, line, name, "missing")
    values: dict[str, Any] = {}
    for name in _FIELD_NAMES:
        if name not in row:
            continue
        value = row[name]
        if name in _LIST_FIELDS:
            values[name] = _string_list(value, (source, line, name))
        elif name in _OPTIONAL_STRING_FIELDS:
            if value is not None and not isinstance(value, str):
                raise TaskFormatError(
                    source, line, name, f"expected a string or null, got {type(value).__name__}"
                )
            values[name] = value or None
        elif name == "version" and isinstance(value, int | float) and not isinstance(value, bool):
            values[name] = str(value)  # SWE-bench versions like 3.0 sometimes arrive as numbers
        elif name in ("hints_text", "environment_setup_commit", "version") and value is None:
            values[name] = ""
        elif not isinstance(value, str):
            raise TaskFormatError(
                source, line, name, f"expected a string, got {type(value).__name__}"
            )
        else:
            values[name] = value
    for name in ("instance_id", "repo", "problem_statement", "test_command"):
        if name in values and not values[name].strip():
            raise TaskFormatError(source, line, name, "must not be empty")
    for name in _PATH_FIELDS:
        if values.get(name):
            resolved = Path(values[name]).expanduser()
            if not resolved.is_absolute():
                resolved = base / resolved
            values[name] = os.path.normpath(resolved.absolute())
    for name in ("FAIL_TO_PASS", "PASS_TO_PASS"):
        for test_id in values.get(name, ()):
            if test_id != test_id.strip() or "\n" in test_id:
                raise TaskFormatError(
                    source,
                    line,
                    name,
                    f"test id {test_id!r:.80} has surrounding or inner newlines/spaces",
                )
    values.setdefault("test_patch", "")
    return SWETask(**values)


def load_tasks(
    path: str | os.PathLike[str],
    *,
    require_tests: bool = False,
    base_dir: str | os.PathLike[str] | None = None,
) -> list[SWETask]:
    """Read and validate a SWE-bench-format JSONL file (blank lines are skipped; a name ending
    in ``.gz`` is read through gzip).

    ``require_tests=True`` also demands a non-empty ``FAIL_TO_PASS`` on every task (what an
    env needs to grade; candidate tasks before validation have none). Instance ids must be
    unique. Relative paths in the tasks are resolved against ``base_dir`` (default: the file's
    folder). Raises :class:`TaskFormatError` naming the file, line and field.
    """
    source = Path(path)
    try:
        raw = source.read_bytes()
        if source.name.endswith(".gz"):
            raw = gzip.decompress(raw)
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"task file {source} does not exist") from None
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        raise TaskFormatError(source, 1, None, f"not a whole gzip file ({error})") from None
    except UnicodeDecodeError as error:
        raise TaskFormatError(source, 1, None, f"not UTF-8 text ({error})") from None
    tasks: list[SWETask] = []
    seen: dict[str, int] = {}
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (ValueError, RecursionError) as error:  # bad, too deep, or too long a number
            raise TaskFormatError(source, line_number, None, f"invalid JSON ({error})") from None
        task = parse_task(row, path=source, line=line_number, base_dir=base_dir)
        if task.instance_id in seen:
            raise TaskFormatError(
                source,
                line_number,
                "instance_id",
                f"{task.instance_id!r} already used on line {seen[task.instance_id]}",
            )
        if require_tests and not task.FAIL_TO_PASS:
            raise TaskFormatError(
                source, line_number, "FAIL_TO_PASS", "empty: the task has nothing to solve"
            )
        seen[task.instance_id] = line_number
        tasks.append(task)
    if not tasks:
        raise TaskFormatError(source, 1, None, "the file holds no tasks")
    return tasks


def dump_tasks(
    tasks: Iterable[SWETask],
    path: str | os.PathLike[str],
    *,
    relative_to_file: bool = True,
) -> None:
    """Write ``tasks`` as JSONL that :func:`load_tasks` reads back to equal tasks.

    With ``relative_to_file`` a ``repo_path`` or ``environment`` under the output file's folder
    is written relative to it, so a task file and its repositories can move together.
    """
    target = Path(path)
    folder = target.parent.absolute()
    lines = []
    for task in tasks:
        row = task.to_json()
        for name in _PATH_FIELDS:
            if relative_to_file and row[name]:
                path = Path(row[name])
                if path.is_absolute() and path.is_relative_to(folder):
                    row[name] = path.relative_to(folder).as_posix()
        lines.append(json.dumps(row, ensure_ascii=False))
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(target.name + ".tmp")
    temporary.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    temporary.replace(target)
