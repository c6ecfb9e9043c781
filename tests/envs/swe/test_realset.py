"""The real-library task set: built from a pinned release by the same steps as
``scripts/build-swe-real`` (import from the registry, synthesize with validation, merge), named
``tasks="real"`` / ``"real-train"`` / ``"real-test"`` by SWE-v0, split by library, and played by
the ``swe-real-quick`` suite."""

from __future__ import annotations

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
from arenagym.envs.swe.pins import parse_pin
from arenagym.envs.swe.realset import (
    ROOT_VARIABLE,
    RealSetError,
    library_of,
    merge_task_files,
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
    """iniconfig imported from the registry, 3 tasks synthesized (validated), merged; the set's
    root and the environment cache are this module's own (found through their variables)."""
    root = tmp_path_factory.mktemp("swe-real")
    patcher = pytest.MonkeyPatch()
    patcher.setenv(CACHE_VARIABLE, str(root / "env-cache"))
    patcher.setenv(ROOT_VARIABLE, str(root))
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


def test_an_unbuilt_set_says_how_to_build_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ROOT_VARIABLE, str(tmp_path / "nothing"))
    with pytest.raises(RealSetError, match="scripts/build-swe-real"):
        gym.make("SWE-v0", tasks="real")
    assert resolve_task_set("tasks.jsonl") is None


@needs_bubblewrap
def test_the_built_set_is_played_by_name(real_set: SimpleNamespace) -> None:
    assert real_set.counts["real"] == 3 == real_set.counts["real-test"]
    assert real_set.counts["real-train"] == 0
    env = gym.make("SWE-v0", tasks="real-test")
    try:
        assert len(env.unwrapped.tasks) == 3
        assert {t.repo for t in env.unwrapped.tasks} == {"iniconfig-2.3.1"}
        assert all(t.environment for t in env.unwrapped.tasks)  # each names its runtime
    finally:
        env.close()


@needs_bubblewrap
def test_the_quick_suite_runs_on_the_set(real_set: SimpleNamespace, tmp_path: Path) -> None:
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
    assert all(r.info.get("task_id", "").startswith("iniconfig-2.3.1-") for r in rows)
