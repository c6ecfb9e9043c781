"""``arenagym export`` and ``arenagym store merge``: exports read back equal to the store's rows
(CSV, JSONL, Parquet; episodes and games; one suite), merges keep every episode once and report
conflicting duplicates, and bad input is one line with exit status 2."""

from __future__ import annotations

import json
import sys
from dataclasses import fields, replace
from pathlib import Path

import pytest

from arenagym.benchmarks.export import (
    ExportError,
    export_rows,
    merge_stores,
    read_rows,
)
from arenagym.benchmarks.store import EpisodeRow, MatchRow, ResultsStore
from arenagym.cli import main


def _episode(
    suite: str = "math", task: str = "t1", episode: int = 0, **extra: object
) -> EpisodeRow:
    values: dict[str, object] = {
        "suite": suite,
        "task": task,
        "env_id": "Math-v0",
        "env_kwargs": {"difficulty": 3, "families": ["add", "mul"]},
        "agent": "solver",
        "seed": 0,
        "episode": episode,
        "reset_seed": 1000 + episode,
        "metric": "success",
        "score": 1.0 / 3.0,
        "reward": 0.1 + episode,
        "clean_reward": -0.25,
        "turns": 2,
        "stop_reason": "solved",
        "info": {"reward_components": {"correct": 1.0}, "note": 'a "quoted", comma\nline'},
        "agent_spec": "math-solver",
        "agent_kwargs": {"seed": 1},
        "started_at": 1700000000.125,
        "finished_at": 1700000001.5,
        "duration_s": 1.375,
    }
    values.update(extra)
    return EpisodeRow(**values)  # type: ignore[arg-type]


def _match(episode: int = 0, **extra: object) -> MatchRow:
    values: dict[str, object] = {
        "suite": "dfc18",
        "task": "tictactoe",
        "env_id": "TextArena/TicTacToe-AEC-v0",
        "env_kwargs": {},
        "lineup": ("random", "solver"),
        "seed": 0,
        "episode": episode,
        "reset_seed": 7,
        "rewards": (1.0, -1.0),
        "moves": 5,
        "stop_reason": "won",
        "info": {"forfeit": None},
        "finished_at": 1700000002.0,
        "duration_s": 0.5,
    }
    values.update(extra)
    return MatchRow(**values)  # type: ignore[arg-type]


def _store(path: Path, episodes: list[EpisodeRow], matches: list[MatchRow] = ()) -> Path:  # type: ignore[assignment]
    with ResultsStore(path) as store:
        for row in episodes:
            assert store.add(row)
        for match in matches:
            assert store.add_match(match)
    return path


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    path = _store(
        tmp_path / "results.sqlite",
        [_episode(episode=i) for i in range(3)] + [_episode(suite="other", task="t2")],
        [_match(episode=i) for i in range(2)],
    )
    with ResultsStore(path) as store:
        store.set_leaderboard_settings("math", {"primary_task": "t1"})
    return path


# --------------------------------------------------------------------------- export


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
@pytest.mark.parametrize("suite", [None, "math"])
def test_exports_read_back_equal_the_store_rows(
    store_path: Path, tmp_path: Path, fmt: str, suite: str | None
) -> None:
    with ResultsStore(store_path) as store:
        episodes, matches = store.rows(suite=suite), store.match_rows(suite)
    out = tmp_path / f"episodes.{fmt}"
    argv = ["export", "--store", str(store_path), "--format", fmt, "-o", str(out)]
    assert main(argv + (["--suite", suite] if suite else [])) == 0
    assert read_rows(out) == episodes and len(episodes) == (3 if suite else 4)
    if suite is None:
        games = tmp_path / f"games.{fmt}"
        assert main([*argv[:-1], str(games), "--table", "matches"]) == 0
        assert read_rows(games, "matches") == matches and len(matches) == 2


def test_csv_has_a_header_and_json_cells(store_path: Path, tmp_path: Path) -> None:
    import csv

    export_rows(store_path, tmp_path / "out.csv", "csv", suite="other")
    with open(tmp_path / "out.csv", newline="", encoding="utf-8") as handle:
        (record,) = list(csv.DictReader(handle))
    assert list(record)[:3] == ["suite", "task", "env_id"]
    assert json.loads(record["env_kwargs"]) == {"difficulty": 3, "families": ["add", "mul"]}
    assert record["score"] == repr(1.0 / 3.0)


def test_export_to_stdout(store_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "--store", str(store_path), "--format", "jsonl"]) == 0
    captured = capsys.readouterr()
    rows = [json.loads(line) for line in captured.out.splitlines()]
    assert [r["episode"] for r in rows] == [0, 1, 2, 0]
    assert "exported 4 episodes row(s) as jsonl to stdout" in captured.err


def test_parquet_export_has_typed_columns(store_path: Path, tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow is not installed")
    with ResultsStore(store_path) as store:
        episodes, matches = store.rows(), store.match_rows()
    assert export_rows(store_path, tmp_path / "e.parquet", "parquet") == 4
    table = pq.read_table(tmp_path / "e.parquet")
    assert table.column_names == [f.name for f in fields(EpisodeRow)]
    records = table.to_pylist()
    for record in records:
        for name in ("env_kwargs", "info", "agent_kwargs"):
            record[name] = json.loads(record[name])
    assert [EpisodeRow(**r) for r in records] == episodes
    export_rows(store_path, tmp_path / "m.parquet", "parquet", table="matches")
    games = pq.read_table(tmp_path / "m.parquet").to_pylist()
    assert [tuple(g["lineup"]) for g in games] == [m.lineup for m in matches]
    assert [tuple(g["rewards"]) for g in games] == [m.rewards for m in matches]


def test_parquet_without_pyarrow_names_what_to_install(
    store_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow -> ImportError
    with pytest.raises(ExportError, match=r"needs pyarrow.*pip install 'arenagym\[parquet\]'"):
        export_rows(store_path, tmp_path / "e.parquet", "parquet")
    assert not (tmp_path / "e.parquet").exists()


def test_export_errors_are_one_line_with_status_2(
    store_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["export", "--store", str(store_path), "--format"]
    cases = [
        (
            [*base, "csv", "--suite", "nope"],
            "no suite 'nope' in the store (it has dfc18, math, other)",
        ),
        (["export", "--store", str(tmp_path / "x.sqlite"), "--format", "csv"], "no results store"),
        ([*base, "parquet"], "--format parquet writes a binary file: give one with -o FILE"),
        ([*base, "xml"], "argument --format: invalid choice: 'xml'"),
    ]
    for argv, message in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("arenagym export: error: ") and message in err, err
        assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.sqlite").exists()  # a missing store is not created
    (tmp_path / "junk.sqlite").write_text("not sqlite")
    assert main(["export", "--store", str(tmp_path / "junk.sqlite"), "--format", "csv"]) == 2
    assert "cannot use as a results store" in capsys.readouterr().err


def test_read_rows_names_the_line_of_a_bad_export(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    good = json.dumps({**_episode().__dict__})
    path.write_text(good + "\n" + json.dumps({"suite": "x"}) + "\n")
    with pytest.raises(ExportError, match=r"bad.jsonl:2: field 'task' is missing"):
        read_rows(path)
    path.write_text(good + "\n" + "[" * 100_000 + "\n")
    with pytest.raises(ExportError, match=r"bad.jsonl:2: not a row of episodes \(nested too"):
        read_rows(path)


# --------------------------------------------------------------------------- merge


def test_merge_gives_the_union_without_duplicates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shared = [_episode(episode=i) for i in range(2)]
    # the same episodes played on machine B: other timestamps, same results
    again = [replace(r, started_at=1.0, finished_at=2.0, duration_s=1.0) for r in shared]
    a = _store(tmp_path / "a.sqlite", [*shared, _episode(episode=5)], [_match(0)])
    b = _store(
        tmp_path / "b.sqlite",
        [*again, _episode(suite="other", task="t2")],
        [_match(0, finished_at=9.0), _match(1)],
    )
    with ResultsStore(a) as store:
        store.set_leaderboard_settings("math", {"primary_task": "t1", "reference_agents": ["x"]})
    with ResultsStore(b) as store:
        store.set_leaderboard_settings("other", {"primary_task": "t2"})
    out = tmp_path / "merged" / "c.sqlite"
    assert main(["store", "merge", str(a), str(b), "-o", str(out)]) == 0
    assert "3 duplicate(s) left out" in capsys.readouterr().out
    with ResultsStore(out) as merged:
        rows, games = merged.rows(), merged.match_rows()
        assert merged.leaderboard_settings("math") == {
            "primary_task": "t1",
            "reference_agents": ["x"],
        }
        assert merged.leaderboard_settings("other") == {"primary_task": "t2"}
    assert rows == [*shared, _episode(episode=5), _episode(suite="other", task="t2")]
    assert len({r.key for r in rows}) == len(rows) == 4
    assert games == [_match(0), _match(1)]
    assert sorted(p.name for p in out.parent.iterdir()) == ["c.sqlite"]  # no partial files


def test_a_conflicting_duplicate_is_reported_and_the_first_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = _store(tmp_path / "a.sqlite", [_episode(episode=0), _episode(episode=1)])
    b = _store(
        tmp_path / "b.sqlite",
        [_episode(episode=1, score=0.0, stop_reason="max_turns"), _episode(episode=2)],
        [_match(0)],
    )
    result = merge_stores([a, b], tmp_path / "direct.sqlite")
    (conflict,) = result.conflicts
    assert conflict.key == ("math", "t1", "solver", 0, 1)
    assert conflict.fields == ("score", "stop_reason")
    assert (conflict.kept, conflict.other) == (str(a), str(b))

    out = tmp_path / "c.sqlite"
    assert main(["store", "merge", str(a), str(b), "-o", str(out)]) == 1
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert lines[0].startswith("arenagym store merge: error: 1 conflicting duplicate(s)")
    assert lines[1] == (
        f"  episode suite='math' task='t1' agent='solver' seed=0 episode=1: kept {a}'s "
        f'score={1.0 / 3.0!r}, stop_reason="solved"; {b} has score=0.0, '
        'stop_reason="max_turns"'
    )
    assert "wrote" in captured.out
    with ResultsStore(out) as merged:  # written anyway, with the first store's row
        assert [r.episode for r in merged.rows()] == [0, 1, 2]
        assert merged.rows()[1].stop_reason == "solved"
        assert len(merged.match_rows()) == 1


def test_merge_refuses_bad_inputs_and_outputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = _store(tmp_path / "a.sqlite", [_episode()])
    cases = [
        (["store", "merge", str(a), "-o", str(a)], "already exists"),
        (["store", "merge", str(a), str(tmp_path / "b.sqlite"), "-o", "c"], "no results store"),
        (["store", "merge", "-o", str(tmp_path / "c.sqlite")], "required: STORE"),
        (["store", "merge", str(a)], "required: -o/--output"),
    ]
    for argv, message in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("arenagym store merge: error: ") and message in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.sqlite"]
    with pytest.raises(ExportError, match="is one of the inputs"):
        merge_stores([a, tmp_path / "x" / ".." / "c.sqlite"], tmp_path / "c.sqlite")


def test_merge_carries_transcripts_over(tmp_path: Path) -> None:
    from arenagym.benchmarks.transcripts import new_turn

    turns = [new_turn(1, "2+2?", "4", latency_s=0.5), new_turn(2, "and 3+3?", "6")]
    moves = [{**new_turn(1, "board", "move 1"), "seat": "player_0", "player": "random"}]
    a, b = tmp_path / "a.sqlite", tmp_path / "b.sqlite"
    with ResultsStore(a) as store:
        store.add(_episode(episode=0), transcript=turns)
        store.add(_episode(episode=1))  # recorded without one here...
        store.add(_episode(episode=2), transcript=turns[:1])
    with ResultsStore(b) as store:
        store.add(_episode(episode=1), transcript=turns[1:])  # ...and with one on machine B
        store.add(_episode(episode=2, score=0.0), transcript=turns)  # a conflict: not mixed in
        store.add_match(_match(0), transcript=moves)
    result = merge_stores([a, b], tmp_path / "c.sqlite")
    assert (result.transcripts, len(result.conflicts)) == (4, 1)
    with ResultsStore(tmp_path / "c.sqlite") as merged:
        got = [merged.transcript("math", "solver", "t1", 0, episode) for episode in range(3)]
        game = merged.match_transcript("dfc18", "tictactoe", ("random", "solver"), 0, 0)
    assert got == [turns, turns[1:], turns[:1]]
    assert game == moves
