"""The real-library task set: built from a pinned release by the same steps as
``scripts/build-swe-real`` (import from the registry, synthesize with validation, merge); the
shipped set named ``tasks="real"`` / ``"real-train"`` / ``"real-test"`` by SWE-v0, split by
library, its repositories imported from the registry on first use, and played by the
``swe-real-quick`` suite (the gold patches resolve it, giving up resolves nothing)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import gymnasium as gym
import pytest

from arenagym.benchmarks.runner import run_suite
from arenagym.benchmarks.store import ResultsStore
from arenagym.benchmarks.suite import load_suite
from arenagym.cli import main
from arenagym.envs.swe.env import BUNDLED_TASKS
from arenagym.envs.swe.pins import parse_pin, read_pin_file
from arenagym.envs.swe.realset import (
    PINS,
    ROOT_VARIABLE,
    SHIPPED_TASKS,
    TEST_REPOS,
    RealSetError,
    compare_task_sets,
    library_of,
    merge_task_files,
    real_tasks,
    resolve_task_set,
)
from arenagym.envs.swe.runtime.bubblewrap import bubblewrap_unavailable_reason
from arenagym.envs.swe.runtime.pyenv import CACHE_VARIABLE
from arenagym.envs.swe.sdist import import_sdist
from arenagym.envs.swe.tasks import dump_tasks, load_tasks

needs_bubblewrap = pytest.mark.skipif(
    bubblewrap_unavailable_reason() is not None, reason=str(bubblewrap_unavailable_reason())
)
PIN = parse_pin("iniconfig==2.3.1")  # a 54-test suite: validation takes seconds


@pytest.fixture(scope="module")
def real_set(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """iniconfig imported from the registry, 3 tasks synthesized (validated), merged, with an
    environment cache of this module's own."""
    root = tmp_path_factory.mktemp("swe-real")
    patcher = pytest.MonkeyPatch()
    patcher.setenv(CACHE_VARIABLE, str(root / "env-cache"))
    result = import_sdist(PIN, root)
    synthesized = root / "synthesized" / "iniconfig.jsonl"
    status = main(
        ["swe", "synthesize", str(result.repo), "-o", str(synthesized), "--runs", "1",
         "--max-tasks", "3", "--seed", "0", "--no-progress", "--cache", str(root / "cache")]
    )  # fmt: skip
    assert status == 0
    counts = merge_task_files([synthesized, synthesized], root, test_repos={"iniconfig"})
    yield SimpleNamespace(root=root, counts=counts, repo=result.repo)
    patcher.undo()


def test_library_names_drop_the_version() -> None:
    assert library_of("iniconfig-2.3.1") == "iniconfig"
    assert library_of("more-itertools-11.2.1") == "more-itertools"
    assert library_of("datekit") == "datekit"


def test_merging_drops_duplicates_and_splits_by_library(tmp_path: Path) -> None:
    tasks = load_tasks(BUNDLED_TASKS)
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    dump_tasks(tasks[:30], first)
    dump_tasks(tasks[20:], second)  # 10 tasks in both files
    counts = merge_task_files([first, second], tmp_path / "set", test_repos={"textkit"})
    assert counts["real"] == len(tasks) == counts["real-train"] + counts["real-test"]
    test = load_tasks(tmp_path / "set" / "tasks-test.jsonl")
    train = load_tasks(tmp_path / "set" / "tasks-train.jsonl")
    assert {t.repo for t in test} == {"textkit"} and "textkit" not in {t.repo for t in train}
    assert counts["repo:textkit"] == len(test) == 12
    # the paths still lead to the repositories from the new folder
    assert all(Path(t.repo_path or "").is_dir() for t in train)


def test_an_id_used_by_two_different_tasks_is_refused(tmp_path: Path) -> None:
    [task, other] = load_tasks(BUNDLED_TASKS)[:2]
    clash = tmp_path / "clash.jsonl"
    dump_tasks([task, type(other)(**{**other.__dict__, "instance_id": task.instance_id})], clash)
    with pytest.raises((RealSetError, ValueError), match=task.instance_id):
        merge_task_files([clash], tmp_path / "set")


@needs_bubblewrap
def test_the_build_steps_give_a_validated_set(real_set: SimpleNamespace) -> None:
    assert real_set.counts["real"] == 3 == real_set.counts["real-test"]
    assert real_set.counts["real-train"] == 0
    built = real_set.root / "tasks-test.jsonl"
    env = gym.make("SWE-v0", tasks=str(built))
    try:
        assert len(env.unwrapped.tasks) == 3
        assert {t.repo for t in env.unwrapped.tasks} == {"iniconfig-2.3.1"}
        assert all(t.environment for t in env.unwrapped.tasks)  # each names its runtime
    finally:
        env.close()
    # the build's comparison with the shipped set accounts for every task of both
    report = compare_task_sets(real_set.root / "tasks.jsonl")
    built = sorted(t.instance_id for t in load_tasks(real_set.root / "tasks.jsonl"))
    assert sorted(report["same"] + report["changed"] + report["only_built"]) == built
    assert len(report["only_shipped"]) >= len(load_tasks(SHIPPED_TASKS)) - 3


# ------------------------------------------------------------------------- the shipped set
def test_the_shipped_set_is_large_validated_and_split_by_library() -> None:
    tasks = load_tasks(SHIPPED_TASKS, require_tests=True)
    libraries = {library_of(t.repo) for t in tasks}
    assert len(tasks) >= 300 and len(libraries) >= 10
    pinned = {pin.key for pin in read_pin_file(PINS)}
    assert {t.repo for t in tasks} <= pinned  # every repository is rebuilt from a pin
    assert all(t.environment == f"{PINS.parent}/{t.repo}.json" for t in tasks)
    train = {library_of(t.repo) for t in tasks if library_of(t.repo) not in TEST_REPOS}
    assert libraries >= TEST_REPOS and train and not train & TEST_REPOS
    for task in tasks:
        statement = task.problem_statement
        assert task.FAIL_TO_PASS  # (PASS_TO_PASS is empty when the bug breaks every test)
        assert not set(task.FAIL_TO_PASS) & set(task.PASS_TO_PASS)
        for test_id in task.FAIL_TO_PASS:  # the failing tests are never named
            assert test_id.split("::")[0] not in statement
        added = [line[1:].strip() for line in task.patch.splitlines()
                 if line.startswith("+") and not line.startswith("+++")]  # fmt: skip
        assert not any(len(line) > 12 and f"`{line}`" in statement for line in added)


def test_an_unimported_set_says_how_to_import_it(tmp_path: Path) -> None:
    with pytest.raises(RealSetError, match=f"arenagym swe import-sdist -r {PINS} -o {tmp_path}"):
        real_tasks("real-test", root=tmp_path, fetch=False)
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    with pytest.raises(RealSetError, match=f"cannot import repositories into {blocked}"):
        real_tasks("real-test", root=blocked)
    with pytest.raises(RealSetError, match="unknown real-library split 'real-dev'"):
        real_tasks("real-dev", root=tmp_path)
    assert resolve_task_set("tasks.jsonl") is None and resolve_task_set("real") == "real"


@pytest.fixture(scope="module")
def shipped_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An empty root for the shipped set and its own environment cache: the first
    ``gym.make`` imports the held-out libraries from the registry."""
    root = tmp_path_factory.mktemp("swe-real-shipped")
    patcher = pytest.MonkeyPatch()
    patcher.setenv(CACHE_VARIABLE, str(root / "env-cache"))
    patcher.setenv(ROOT_VARIABLE, str(root))
    yield root
    patcher.undo()


@needs_bubblewrap
def test_the_shipped_test_split_imports_its_repositories_on_first_use(shipped_root: Path) -> None:
    env = gym.make("SWE-v0", tasks="real-test")
    try:
        tasks = env.unwrapped.tasks
        assert {library_of(t.repo) for t in tasks} == TEST_REPOS
        assert all(Path(t.repo_path or "").parent == shipped_root for t in tasks)
    finally:
        env.close()
    imported = sorted(path.name for path in shipped_root.iterdir() if (path / ".git").is_dir())
    assert [library_of(name) for name in imported] == sorted(TEST_REPOS)  # only what it needs


@needs_bubblewrap
def test_the_quick_suite_runs_on_the_shipped_set(shipped_root: Path, tmp_path: Path) -> None:
    suite = load_suite("swe-real-quick")
    store = ResultsStore(tmp_path / "results.sqlite")
    try:
        for spec, name in (
            ("arenagym.envs.swe.baselines:GoldPatchAgent", "gold-patch"),
            ("arenagym.envs.swe.baselines:GiveUpAgent", "give-up"),
        ):
            kwargs = {"tasks": "real-test"} if name == "gold-patch" else {}
            run_suite(suite, spec, kwargs, store, 2, progress=False, agent_name=name)
        rows = store.rows(suite="swe-real-quick")
    finally:
        store.close()
    scores = {
        name: [r.score for r in rows if r.agent == name] for name in ("gold-patch", "give-up")
    }
    assert scores["gold-patch"] == [1.0] * 8
    assert scores["give-up"] == [0.0] * 8
    assert {library_of(r.info["task_id"].rsplit("-", 1)[0]) for r in rows} <= TEST_REPOS


@needs_bubblewrap
def test_an_import_killed_part_way_is_redone_on_next_use(shipped_root: Path) -> None:
    """A repository left without its provenance file (which the tasks' ``environment`` names)
    is imported again by the next use; one with the user's changes is refused and kept."""
    real_tasks("real-test")  # imported by the tests above, or now
    [repo] = [p for p in shipped_root.glob("inflection-*") if p.is_dir()]
    provenance = shipped_root / f"{repo.name}.json"
    commit = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    provenance.unlink()
    with pytest.raises(RealSetError, match=f"repositories {repo.name} are not imported"):
        real_tasks("real-test", fetch=False)
    tasks = real_tasks("real-test")
    assert provenance.is_file() and all(
        t.base_commit == commit for t in tasks if t.repo == repo.name
    )
    provenance.unlink()
    (repo / "notes.txt").write_text("mine\n")
    with pytest.raises(RealSetError, match="is not an untouched import"):
        real_tasks("real-test")
    assert (repo / "notes.txt").read_text() == "mine\n" and not provenance.exists()
    (repo / "notes.txt").unlink()
    real_tasks("real-test")  # untouched again: imported again
    assert provenance.is_file()


def test_a_repository_at_another_commit_is_refused(tmp_path: Path) -> None:
    tasks = [t for t in load_tasks(SHIPPED_TASKS) if library_of(t.repo) in TEST_REPOS]
    for name in sorted({t.repo for t in tasks}):  # look imported, but are other code
        repo = tmp_path / name
        repo.mkdir()
        (repo / "README").write_text("not the release\n")
        git = ["git", "-C", str(repo), "-c", "user.name=x", "-c", "user.email=x@x"]
        subprocess.run(["git", "init", "-q", str(repo)], check=True)
        subprocess.run([*git, "add", "README"], check=True)
        subprocess.run([*git, "commit", "-qm", "x"], check=True)
        (tmp_path / f"{name}.json").write_text("{}\n")
    with pytest.raises(RealSetError, match=r"the shipped tasks\s+were made at [0-9a-f]{40}"):
        real_tasks("real-test", root=tmp_path, fetch=False)
