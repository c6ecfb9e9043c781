"""SWE-v0's real-library task set: where it is built, and how per-library task files become one
set split into train and test by repository.

Why: the real-library tasks are synthesized (:mod:`~arenagym.envs.swe.synthesis`) in
repositories imported from the package registry (:mod:`~arenagym.envs.swe.sdist`) by
``scripts/build-swe-real``; the repositories are rebuilt from pinned releases, never committed.
The build writes into :func:`real_root` (``$ARENAGYM_SWE_REAL``, else
``~/.cache/arenagym/swe-real``), so ``gym.make("SWE-v0", tasks="real")`` (or ``"real-train"``,
``"real-test"``) finds the set wherever the build ran.

A task's repository is its ``repo`` field; the split keeps every task of a repository on one side
(:data:`TEST_REPOS` are held out), so a model is never tested on a library it trained on.

Example:
    >>> resolve_task_set("real-test", root=Path("/data/swe-real"))
    PosixPath('/data/swe-real/tasks-test.jsonl')
    >>> resolve_task_set("tasks.jsonl") is None
    True
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from arenagym.envs.swe.tasks import SWETask, dump_tasks, load_tasks

__all__ = [
    "SPLITS",
    "TEST_REPOS",
    "RealSetError",
    "merge_task_files",
    "real_root",
    "resolve_task_set",
]

#: The variable that moves the real-library set (default ``~/.cache/arenagym/swe-real``).
ROOT_VARIABLE = "ARENAGYM_SWE_REAL"

#: ``tasks=`` names of the real-library set and the files they name under :func:`real_root`.
SPLITS = {"real": "tasks.jsonl", "real-train": "tasks-train.jsonl", "real-test": "tasks-test.jsonl"}

#: Libraries held out for the test split (every other one is train).
TEST_REPOS = frozenset({"inflection", "tabulate", "jmespath"})


def library_of(repo: str) -> str:
    """The library a repository is a release of: ``"more-itertools-11.2.1"`` -> ``"more-itertools"``.

    >>> library_of("more-itertools-11.2.1"), library_of("rangeset")
    ('more-itertools', 'rangeset')
    """
    name, dash, version = repo.rpartition("-")
    return name if dash and version[:1].isdigit() else repo


class RealSetError(ValueError):
    """The real-library task set is not built, or its inputs are inconsistent."""


def real_root() -> Path:
    """``$ARENAGYM_SWE_REAL``, else ``~/.cache/arenagym/swe-real``."""
    configured = os.environ.get(ROOT_VARIABLE)
    return Path(configured).expanduser() if configured else Path.home() / ".cache/arenagym/swe-real"


def resolve_task_set(name: str, *, root: Path | None = None) -> Path | None:
    """The task file a ``tasks=`` name stands for (``None`` when it is not a set's name). Raises
    :class:`RealSetError`, saying how to build it, when the set is named but not built (only
    when ``root`` is not given)."""
    if name not in SPLITS:
        return None
    path = (root or real_root()) / SPLITS[name]
    if root is None and not path.is_file():
        raise RealSetError(
            f"SWE-v0 tasks={name!r}: the real-library task set is not built at {path.parent}; "
            f"build it with scripts/build-swe-real (or set ${ROOT_VARIABLE} to where it was built)"
        )
    return path


def _fingerprint(task: SWETask) -> str:
    """Two tasks are duplicates when they inject the same change into the same repository."""
    return hashlib.sha256(f"{task.repo}\0{task.base_patch}".encode()).hexdigest()


def merge_task_files(
    files: Sequence[Path], out_dir: Path, *, test_repos: Iterable[str] = TEST_REPOS
) -> dict[str, int]:
    """Merge per-library task files into ``out_dir``'s :data:`SPLITS` files: duplicates (the same
    bug in the same repository) dropped, tasks sorted by repository and id, every task of a
    repository of a library in :data:`TEST_REPOS` in the test split. The counts written, per file and per
    repository."""
    held_out = set(test_repos)
    seen: set[str] = set()
    ids: set[str] = set()
    tasks: list[SWETask] = []
    for path in files:
        for task in load_tasks(path, require_tests=True):
            key = _fingerprint(task)
            if key in seen:
                continue
            if task.instance_id in ids:
                raise RealSetError(f"{path}: instance id {task.instance_id} is used twice")
            seen.add(key)
            ids.add(task.instance_id)
            tasks.append(task)
    tasks.sort(key=lambda t: (t.repo, t.instance_id))
    test = [t for t in tasks if library_of(t.repo) in held_out]
    train = [t for t in tasks if library_of(t.repo) not in held_out]
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, chosen in (("real", tasks), ("real-train", train), ("real-test", test)):
        dump_tasks(chosen, out_dir / SPLITS[name])
    counts = {"real": len(tasks), "real-train": len(train), "real-test": len(test)}
    for task in tasks:
        counts[f"repo:{task.repo}"] = counts.get(f"repo:{task.repo}", 0) + 1
    return counts
