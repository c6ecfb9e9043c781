"""SWE-v0's real-library task set: the shipped tasks, the repositories they run in, and how
per-library task files become one set split into train and test by repository.

Why: the real-library tasks are synthesized (:mod:`~arenagym.envs.swe.synthesis`) in
repositories imported from the package registry (:mod:`~arenagym.envs.swe.sdist`) by
``scripts/build-swe-real``. The validated tasks ship with the package
(:data:`SHIPPED_TASKS`); the repositories do not: they are rebuilt from the pinned releases
(:data:`PINS`, the same release always gives the same commit). ``gym.make("SWE-v0",
tasks="real")`` (or ``"real-train"``, ``"real-test"``) imports the repositories it is missing
into :func:`real_root` (``$ARENAGYM_SWE_REAL``, else ``~/.cache/arenagym/swe-real``) the
first time, a few seconds per library.

A task's repository is its ``repo`` field; the split keeps every task of a library on one side
(:data:`TEST_REPOS` are held out), so a model is never tested on a library it trained on.

Example (``# doctest: +SKIP``: the first call downloads the held-out libraries' sdists):
    >>> tasks = real_tasks("real-test")  # doctest: +SKIP
    >>> sorted({library_of(t.repo) for t in tasks})  # doctest: +SKIP
    ['inflection', 'jmespath', 'tabulate']
    >>> resolve_task_set("tasks.jsonl") is None
    True
"""

from __future__ import annotations

import functools
import hashlib
import os
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

from arenagym.envs.core.locking import file_lock
from arenagym.envs.swe.pins import read_pin_file
from arenagym.envs.swe.sdist import SdistImportError, import_sdist
from arenagym.envs.swe.tasks import SWETask, dump_tasks, load_tasks

__all__ = [
    "PINS",
    "SHIPPED_TASKS",
    "SPLITS",
    "TEST_REPOS",
    "RealSetError",
    "library_of",
    "merge_task_files",
    "real_root",
    "real_tasks",
    "resolve_task_set",
]

#: The variable that moves the real-library repositories (default ``~/.cache/arenagym/swe-real``).
ROOT_VARIABLE = "ARENAGYM_SWE_REAL"

_DATA = Path(__file__).parent / "data"
#: The pinned releases the set is built from.
PINS = _DATA / "real-libraries.txt"
#: The validated real-library tasks (``scripts/build-swe-real``'s ``tasks.jsonl``, gzipped);
#: ``repo_path`` and ``environment`` are relative to :func:`real_root`.
SHIPPED_TASKS = _DATA / "real-tasks.jsonl.gz"

#: ``tasks=`` names of the real-library set and the files ``scripts/build-swe-real`` writes.
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


def resolve_task_set(name: str) -> str | None:
    """``name`` when it names a split of the real-library set (:data:`SPLITS`), else ``None``
    (a task file's path)."""
    return name if name in SPLITS else None


@functools.lru_cache(maxsize=4)
def _shipped(root: str) -> tuple[SWETask, ...]:
    return tuple(load_tasks(SHIPPED_TASKS, require_tests=True, base_dir=root))


def _commit_of(repo: Path) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
            timeout=30, check=False,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _imported(folder: Path, repo: str) -> bool:
    """Whether ``repo`` is imported in ``folder``: the repository and its provenance file, which
    the tasks' ``environment`` field names (an import killed part-way may leave only one)."""
    return (folder / repo / ".git").is_dir() and (folder / f"{repo}.json").is_file()


def real_tasks(name: str, *, root: Path | None = None, fetch: bool = True) -> tuple[SWETask, ...]:
    """The shipped tasks of the split ``name`` (``"real"``, ``"real-train"``, ``"real-test"``),
    their repositories under ``root`` (default :func:`real_root`). A repository not imported
    yet is imported from its pinned release (``fetch=False``: a :class:`RealSetError` saying
    how); one whose commit is not the tasks' is refused."""
    if name not in SPLITS:
        raise RealSetError(f"unknown real-library split {name!r}; use one of {', '.join(SPLITS)}")
    folder = (root or real_root()).expanduser().absolute()
    tasks = _shipped(str(folder))
    if name != "real":
        held_out = name == "real-test"
        tasks = tuple(t for t in tasks if (library_of(t.repo) in TEST_REPOS) == held_out)
    needed = {t.repo: t.base_commit for t in tasks}
    missing = sorted(repo for repo in needed if not _imported(folder, repo))
    if missing:
        pins = {pin.key: pin for pin in read_pin_file(PINS)}
        command = f"arenagym swe import-sdist -r {PINS} -o {folder}"
        if not fetch:
            raise RealSetError(
                f"SWE-v0 tasks={name!r}: repositories {', '.join(missing)} are not imported in "
                f"{folder}; import them with: {command}"
            )
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise RealSetError(
                f"SWE-v0 tasks={name!r}: cannot import repositories into {folder} ({error}); "
                f"set ${ROOT_VARIABLE} to a writable folder"
            ) from None
        with file_lock(folder / ".import.lock"):
            for repo in missing:
                if _imported(folder, repo):
                    continue  # imported meanwhile by another process
                try:
                    import_sdist(pins[repo], folder, build=False)
                except (SdistImportError, KeyError) as error:
                    raise RealSetError(
                        f"SWE-v0 tasks={name!r}: could not import {repo} into {folder} ({error}); "
                        f"import the repositories with: {command}"
                    ) from None
    for repo, commit in needed.items():
        found = _commit_of(folder / repo)
        if found != commit:
            raise RealSetError(
                f"SWE-v0 tasks={name!r}: {folder / repo} is at commit {found}, the shipped tasks "
                f"were made at {commit}; remove it and make the env again to re-import it"
            )
    return tasks


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


def compare_task_sets(built: Path, shipped: Path = SHIPPED_TASKS) -> dict[str, list[str]]:
    """How a rebuilt set differs from the shipped one, by instance id: ``same`` (equal patch,
    bug, tests and problem statement), ``changed``, ``only_built``, ``only_shipped``."""
    root = built.parent
    new = {t.instance_id: t for t in load_tasks(built, base_dir=root)}
    old = {t.instance_id: t for t in load_tasks(shipped, base_dir=root)}
    report: dict[str, list[str]] = {"same": [], "changed": [], "only_built": [], "only_shipped": []}
    for instance_id in sorted(new.keys() | old.keys()):
        if instance_id not in old:
            report["only_built"].append(instance_id)
        elif instance_id not in new:
            report["only_shipped"].append(instance_id)
        else:
            report["same" if new[instance_id] == old[instance_id] else "changed"].append(instance_id)
    return report
