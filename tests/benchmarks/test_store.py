"""The SQLite results store: unique atomic rows, resume keys, read-back, schema versions."""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from arenagym.benchmarks.store import SCHEMA_VERSION, EpisodeRow, ResultsStore, StoreError


def make_row(**changes: object) -> EpisodeRow:
    row = EpisodeRow(
        suite="s",
        task="t",
        env_id="Math-v0",
        env_kwargs={"difficulty": 3, "nested": {"a": [1, 2]}},
        agent="random(seed=1)",
        seed=0,
        episode=0,
        reset_seed=123,
        metric="clean_reward",
        score=0.5,
        reward=0.7,
        clean_reward=0.5,
        turns=2,
        stop_reason="failed",
        info={"reward_components": {"correct": 0.5}, "task_id": "x/1"},
        agent_spec="random",
        agent_kwargs={"seed": 1},
        started_at=1000.0,
        finished_at=1001.5,
        duration_s=1.5,
    )
    return replace(row, **changes)  # type: ignore[arg-type]


def test_rows_round_trip_with_their_json_fields(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "folder" / "r.sqlite"
    with ResultsStore(path) as store:
        assert store.add(make_row())
    with ResultsStore(path) as reopened:  # written to disk, not just to the connection
        assert reopened.rows() == [make_row()]
        assert len(reopened) == 1


def test_a_key_is_stored_once_and_the_first_row_wins(tmp_path: Path) -> None:
    with ResultsStore(tmp_path / "r.sqlite") as store:
        assert store.add(make_row(score=1.0)) is True
        assert store.add(make_row(score=0.0)) is False
        assert [row.score for row in store.rows()] == [1.0]
        # any part of the key makes a new row
        for change in (
            {"suite": "s2"},
            {"task": "t2"},
            {"agent": "b"},
            {"seed": 1},
            {"episode": 1},
        ):
            assert store.add(make_row(**change)) is True
        assert len(store) == 6


def test_racing_writers_on_one_key_leave_one_row(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    stores = [ResultsStore(path) for _ in range(4)]  # separate connections, like processes
    results: list[bool] = []
    barrier = threading.Barrier(len(stores))

    def write(store: ResultsStore) -> None:
        barrier.wait()
        for episode in range(20):
            results.append(store.add(make_row(episode=episode)))

    threads = [threading.Thread(target=write, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(True) == 20
    assert len(stores[0]) == 20
    for store in stores:
        store.close()


def test_finished_keys_are_per_suite_and_agent() -> None:
    store = ResultsStore(":memory:")
    store.add(make_row())
    store.add(make_row(seed=1, episode=2))
    store.add(make_row(agent="other"))
    store.add(make_row(suite="other"))
    assert store.finished_keys("s", "random(seed=1)") == {("t", 0, 0), ("t", 1, 2)}
    assert store.finished_keys("s", "other") == {("t", 0, 0)}
    assert store.finished_keys("nope", "random(seed=1)") == set()


def test_rows_filter_and_keep_insertion_order() -> None:
    store = ResultsStore(":memory:")
    for episode in (2, 0, 1):
        store.add(make_row(episode=episode))
    store.add(make_row(task="u"))
    store.add(make_row(suite="s2"))
    assert [row.episode for row in store.rows(task="t", suite="s")] == [2, 0, 1]
    assert [row.task for row in store.rows(suite="s", task="u")] == ["u"]
    assert len(store.rows(agent="random(seed=1)")) == 5
    assert store.suites() == ["s", "s2"]


def test_delete_errors_removes_only_that_agents_error_rows() -> None:
    store = ResultsStore(":memory:")
    store.add(make_row(episode=0, stop_reason="agent_error"))
    store.add(make_row(episode=1, stop_reason="env_error"))
    store.add(make_row(episode=2, stop_reason="failed"))
    store.add(make_row(episode=3, stop_reason="env_error", agent="other"))
    assert store.delete_errors("s", "random(seed=1)") == 2
    assert sorted((row.agent, row.episode) for row in store.rows()) == [
        ("other", 3),
        ("random(seed=1)", 2),
    ]


def test_the_file_is_in_wal_mode_with_a_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    ResultsStore(path).close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        version = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    assert version == (str(SCHEMA_VERSION),)


def test_an_unknown_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    ResultsStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match=r"r\.sqlite: results store schema version 99"):
        ResultsStore(path)


def test_a_foreign_sqlite_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE users (name TEXT)")
    with pytest.raises(StoreError, match="not an arenagym results store"):
        ResultsStore(path)


def test_a_file_that_is_not_sqlite_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite"
    path.write_bytes(b"these are my notes, not a database " * 100)
    with pytest.raises(StoreError, match="cannot use as a results store"):
        ResultsStore(path)


def test_is_error_marks_runner_failures_only() -> None:
    assert make_row(stop_reason="agent_error").is_error
    assert make_row(stop_reason="env_error").is_error
    assert not make_row(stop_reason="failed").is_error
    assert make_row().key == ("s", "t", "random(seed=1)", 0, 0)


def test_leaderboard_settings_are_kept_per_suite_and_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    with ResultsStore(path) as store:
        assert store.leaderboard_settings("s") == {}
        store.set_leaderboard_settings("s", {"primary_task": "a", "reference_agents": []})
        store.set_leaderboard_settings("s", {"primary_task": "b", "reference_agents": ["o"]})
        store.set_leaderboard_settings("other", {"primary_task": None, "reference_agents": []})
    with ResultsStore(path) as store:
        assert store.leaderboard_settings("s") == {"primary_task": "b", "reference_agents": ["o"]}
        assert store.leaderboard_settings("other")["primary_task"] is None
        assert store.suites() == []  # settings alone are no results


def test_a_store_from_before_the_settings_table_gains_it(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    ResultsStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE suites")
    with ResultsStore(path) as store:
        store.add(make_row())
        assert store.leaderboard_settings("s") == {}
        store.set_leaderboard_settings("s", {"primary_task": "t"})
        assert len(store) == 1


def test_a_directory_is_not_a_store(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="is a directory; a results store is one SQLite file"):
        ResultsStore(tmp_path)


def test_an_agent_timeout_is_not_an_error_row() -> None:
    assert not make_row(stop_reason="agent_timeout").is_error
