"""The runner: every episode once, resume, real concurrency, contained failures, fixed seeds."""

from __future__ import annotations

import importlib
import itertools
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from arenagym_bench_testkit import ENV_ID, CountingAgent

from arenagym.benchmarks.runner import (
    RunSetupError,
    agent_display_name,
    run_suite,
)
from arenagym.benchmarks.store import EpisodeRow, ResultsStore
from arenagym.benchmarks.suite import Suite, Task, episode_reset_seed, load_suite

KIT = "arenagym_bench_testkit"


def suite_of(*tasks: Task, name: str = "test") -> Suite:
    return Suite(name=name, tasks=tasks)


def countdown(
    name: str = "count", episodes: int = 3, seeds: tuple[int, ...] = (0, 1), **kw: Any
) -> Task:
    metric = kw.pop("metric", "clean_reward")
    max_steps = kw.pop("max_steps", 1000)
    return Task(
        name=name,
        env=ENV_ID,
        kwargs=kw,
        episodes=episodes,
        seeds=seeds,
        metric=metric,
        max_steps=max_steps,
    )


def by_key(rows: list[EpisodeRow]) -> dict[tuple[str, int, int], EpisodeRow]:
    return {(row.task, row.seed, row.episode): row for row in rows}


def test_every_episode_is_recorded_once_with_its_fields() -> None:
    suite = suite_of(countdown("a", turns=2), countdown("b", episodes=2, seeds=(5,)))
    store = ResultsStore(":memory:")
    summary = run_suite(suite, f"{KIT}:ConstAgent", None, store, concurrency=3, progress=False)
    assert (summary.total, summary.ran, summary.skipped, summary.failed) == (8, 8, 0, 0)
    assert summary.stop_reasons == {"solved": 8}
    rows = store.rows()
    expected = {("a", s, e) for s in (0, 1) for e in range(3)} | {("b", 5, 0), ("b", 5, 1)}
    assert set(by_key(rows)) == expected and len(rows) == 8
    row = by_key(rows)["a", 1, 2]
    assert row.suite == "test" and row.agent == f"{KIT}:ConstAgent"
    assert row.env_id == ENV_ID and row.env_kwargs == {"turns": 2}
    assert row.reset_seed == episode_reset_seed(1, 2)
    assert (row.turns, row.reward, row.clean_reward, row.score) == (2, 2.0, 2.0, 2.0)
    assert row.stop_reason == "solved"
    assert row.info["task_id"] == f"countdown-{row.reset_seed}"
    assert row.info["reward_components"] == {"right": 1.0, "noise": 0.0}
    assert row.started_at <= row.finished_at and row.duration_s >= 0


def test_scores_use_the_clean_reward_not_the_noisy_one() -> None:
    suite = suite_of(
        countdown("clean", noise=0.25),
        countdown("raw", noise=0.25, metric="reward"),
        countdown("success", noise=0.25, metric="success"),
    )
    store = ResultsStore(":memory:")
    run_suite(suite, f"{KIT}:ConstAgent", None, store, progress=False)
    for row in store.rows():
        assert (row.reward, row.clean_reward) == (1.25, 1.0)
    assert {row.task: row.score for row in store.rows()} == {
        "clean": 1.0,
        "raw": 1.25,
        "success": 1.0,
    }
    store2 = ResultsStore(":memory:")
    run_suite(suite, f"{KIT}:ConstAgent", {"action": "wrong"}, store2, progress=False)
    assert {row.task: row.score for row in store2.rows()} == {
        "clean": 0.0,
        "raw": 0.25,
        "success": 0.0,
    }
    assert {row.stop_reason for row in store2.rows()} == {"failed"}


def test_resume_plays_only_the_missing_episodes(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    suite = suite_of(countdown(episodes=4))
    first = run_suite(suite, f"{KIT}:ConstAgent", None, path, progress=False)
    assert (first.ran, first.skipped) == (8, 0)
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM episodes WHERE seed = 1 AND episode IN (0, 3)")
    kept = {row.key: row.finished_at for row in ResultsStore(path).rows()}

    CountingAgent.zero()
    second = run_suite(
        suite, f"{KIT}:CountingAgent", None, path, progress=False, agent_name=f"{KIT}:ConstAgent"
    )
    assert (second.ran, second.skipped, second.total) == (2, 6, 8)
    assert CountingAgent.resets == 2  # only the two missing episodes were played
    rows = ResultsStore(path).rows()
    assert len(rows) == 8 and len({row.key for row in rows}) == 8
    assert all(kept[row.key] == row.finished_at for row in rows if row.key in kept)

    third = run_suite(suite, f"{KIT}:ConstAgent", None, path, progress=False)
    assert (third.ran, third.skipped) == (0, 8)


def test_each_episode_gets_a_fresh_agent() -> None:
    CountingAgent.zero()
    run_suite(suite_of(countdown()), f"{KIT}:CountingAgent", None, ":memory:", progress=False)
    # one agent per episode, plus the one built up front to check the spec and kwargs
    assert (CountingAgent.instances, CountingAgent.resets) == (6 + 1, 6)


def intervals(rows: list[EpisodeRow]) -> list[tuple[float, float]]:
    return sorted((row.started_at, row.finished_at) for row in rows)


def test_episodes_overlap_up_to_the_concurrency_limit() -> None:
    suite = suite_of(countdown(episodes=4, seeds=(0,)))
    store = ResultsStore(":memory:")
    run_suite(suite, f"{KIT}:SleepAgent", {"delay": 0.3}, store, concurrency=4, progress=False)
    spans = intervals(store.rows())
    # all four were in flight at once: the last to start started before the first to finish ended
    assert max(start for start, _ in spans) < min(end for _, end in spans)


def test_concurrency_one_runs_episodes_one_after_another() -> None:
    suite = suite_of(countdown(episodes=3, seeds=(0,)))
    store = ResultsStore(":memory:")
    run_suite(suite, f"{KIT}:SleepAgent", {"delay": 0.05}, store, concurrency=1, progress=False)
    spans = intervals(store.rows())
    assert all(prev_end <= start for (_, prev_end), (start, _) in itertools.pairwise(spans))


def test_coroutine_agents_are_awaited_not_threaded() -> None:
    suite = suite_of(countdown(episodes=6, seeds=(0,)))
    store = ResultsStore(":memory:")
    summary = run_suite(
        suite, f"{KIT}:AsyncAgent", {"delay": 0.3}, store, concurrency=6, progress=False
    )
    assert summary.stop_reasons == {"solved": 6}, [row.info for row in store.rows()]
    spans = intervals(store.rows())
    assert max(start for start, _ in spans) < min(end for _, end in spans)


def test_a_crashing_agent_fails_only_its_own_episode() -> None:
    crash_seed = episode_reset_seed(1, 2)
    store = ResultsStore(":memory:")
    summary = run_suite(
        suite_of(countdown()), f"{KIT}:CrashAgent", {"crash_on": crash_seed}, store, progress=False
    )
    assert (summary.ran, summary.failed) == (6, 1)
    rows = by_key(store.rows())
    crashed = rows.pop(("count", 1, 2))
    assert crashed.stop_reason == "agent_error"
    assert crashed.info["error"] == f"ValueError: agent gave up on seed {crash_seed}"
    assert "Traceback" in crashed.info["traceback"]
    assert (crashed.score, crashed.turns) == (0.0, 0)
    assert all(row.stop_reason == "solved" for row in rows.values())


@pytest.mark.parametrize("where", ["crash_on_reset", "crash_on_step"])
def test_a_crashing_env_fails_only_its_own_episode(where: str) -> None:
    crash_seed = episode_reset_seed(0, 1)
    store = ResultsStore(":memory:")
    suite = suite_of(countdown(**{where: [crash_seed]}))
    summary = run_suite(suite, f"{KIT}:ConstAgent", None, store, progress=False)
    assert (summary.ran, summary.failed) == (6, 1)
    rows = by_key(store.rows())
    crashed = rows.pop(("count", 0, 1))
    assert crashed.stop_reason == "env_error"
    assert "exploded" in crashed.info["error"]
    assert all(row.stop_reason == "solved" for row in rows.values())


def test_an_env_reported_fault_is_an_env_error_with_its_message() -> None:
    store = ResultsStore(":memory:")
    suite = suite_of(countdown(fault_on_step=[episode_reset_seed(1, 1)]))
    summary = run_suite(suite, f"{KIT}:ConstAgent", None, store, progress=False)
    assert summary.failed == 1
    faulted = by_key(store.rows())["count", 1, 1]
    assert (faulted.stop_reason, faulted.info["error"], faulted.turns) == (
        "env_error",
        "sandbox died",
        1,
    )
    assert all("error" not in row.info for row in store.rows() if row.key != faulted.key)


def test_max_steps_stops_an_endless_episode() -> None:
    store = ResultsStore(":memory:")
    suite = suite_of(countdown(episodes=1, seeds=(0,), turns=10**6, max_steps=5))
    run_suite(suite, f"{KIT}:ConstAgent", None, store, progress=False)
    (row,) = store.rows()
    assert (row.stop_reason, row.turns, row.clean_reward) == ("max_steps", 5, 5.0)


def test_reset_seeds_do_not_depend_on_agent_or_order() -> None:
    suite = suite_of(countdown(episodes=5, seeds=(3, 4)))
    store = ResultsStore(":memory:")
    run_suite(suite, f"{KIT}:ConstAgent", None, store, concurrency=1, progress=False)
    run_suite(suite, f"{KIT}:SleepAgent", {"delay": 0.0}, store, concurrency=7, progress=False)
    agents: dict[str, dict[tuple[str, int, int], tuple[int, str]]] = {}
    for row in store.rows():
        agents.setdefault(row.agent, {})[row.task, row.seed, row.episode] = (
            row.reset_seed,
            row.info["task_id"],
        )
    first, second = agents.values()
    assert first == second
    assert all(reset == episode_reset_seed(s, e) for (_, s, e), (reset, _) in first.items())


def test_retry_errors_replays_error_rows() -> None:
    store = ResultsStore(":memory:")
    suite = suite_of(countdown())
    crash = {"crash_on": episode_reset_seed(0, 0)}
    run_suite(suite, f"{KIT}:CrashAgent", crash, store, progress=False, agent_name="x")
    again = run_suite(suite, f"{KIT}:ConstAgent", None, store, progress=False, agent_name="x")
    assert again.ran == 0  # error rows are finished episodes unless asked to retry
    retried = run_suite(
        suite, f"{KIT}:ConstAgent", None, store, progress=False, agent_name="x", retry_errors=True
    )
    assert (retried.ran, retried.failed) == (1, 0)
    assert {row.stop_reason for row in store.rows()} == {"solved"}


def test_agent_names_default_to_spec_and_sorted_kwargs() -> None:
    assert agent_display_name("random") == "random"
    assert agent_display_name("random", {"seed": 1}) == "random(seed=1)"
    assert agent_display_name("x:Y", {"b": "s", "a": [1]}) == 'x:Y(a=[1], b="s")'
    store = ResultsStore(":memory:")
    suite = suite_of(countdown(episodes=1, seeds=(0,)))
    run_suite(suite, f"{KIT}:SleepAgent", {"delay": 0.0}, store, progress=False)
    run_suite(suite, f"{KIT}:ConstAgent", None, store, progress=False, agent_name="mine")
    assert {row.agent for row in store.rows()} == {f"{KIT}:SleepAgent(delay=0.0)", "mine"}
    (recorded,) = store.rows(agent="mine")
    assert (recorded.agent_spec, recorded.agent_kwargs) == (f"{KIT}:ConstAgent", {})


@pytest.mark.parametrize(
    ("spec", "kwargs", "task_kwargs", "message"),
    [
        ("no_such_agent", None, {}, "unknown agent 'no_such_agent'"),
        (f"{KIT}:Missing", None, {}, "has no 'Missing'"),
        (f"{KIT}:ConstAgent", {"colour": 1}, {}, "cannot build agent .*colour"),
        (f"{KIT}:ConstAgent", None, {"turns": 0}, "task 'count'.*turns must be >= 1"),
        (f"{KIT}:ConstAgent", {"f": {1, 2}}, {}, "JSON-serialisable"),
    ],
)
def test_setup_errors_raise_before_any_episode_is_recorded(
    spec: str, kwargs: dict[str, Any] | None, task_kwargs: dict[str, Any], message: str
) -> None:
    store = ResultsStore(":memory:")
    with pytest.raises(RunSetupError, match=message):
        run_suite(suite_of(countdown(**task_kwargs)), spec, kwargs, store, progress=False)
    assert len(store) == 0


def test_bad_concurrency_is_rejected() -> None:
    with pytest.raises(ValueError, match="concurrency"):
        run_suite(suite_of(countdown()), f"{KIT}:ConstAgent", None, ":memory:", concurrency=0)


def test_the_progress_bar_goes_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    run_suite(suite_of(countdown()), f"{KIT}:ConstAgent", None, ":memory:", progress=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "test" in captured.err and "6/6" in captured.err


def _math_env_available() -> bool:
    try:
        importlib.import_module("arenagym.envs.math.env")
        importlib.import_module("arenagym.agents.baselines")
    except Exception:
        return False
    return True


@pytest.mark.skipif(not _math_env_available(), reason="Math-v0 or the baselines do not import yet")
def test_the_smoke_suite_runs_on_math_v0() -> None:
    store = ResultsStore(":memory:")
    suite = load_suite("smoke")
    for agent in ("math-solver", "random"):
        summary = run_suite(suite, agent, None, store, progress=False)
        assert (summary.ran, summary.failed) == (suite.n_episodes, 0), store.rows(agent=agent)
    solver = [row.score for row in store.rows(agent="math-solver")]
    assert sum(solver) >= sum(row.score for row in store.rows(agent="random"))
