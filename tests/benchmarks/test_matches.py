"""Games between agents: suites with [[matches]], the resumable match runner, OpenSkill ratings."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from arenagym.benchmarks.matches import run_matches
from arenagym.benchmarks.ratings import rate_matches
from arenagym.benchmarks.store import MatchRow, ResultsStore
from arenagym.benchmarks.suite import MatchTask, Player, Suite, SuiteError, load_suite, parse_suite
from arenagym.cli import main

pytest.importorskip("textarena")
pytest.importorskip("openskill")

OPP = "arenagym.envs.textarena.opponents:"
PLAYERS = (
    Player("random", OPP + "RandomLegalOpponent"),
    Player("search", OPP + "SearchOpponent", {"depth": 2}),
)


def _row(a: str, b: str, rewards: tuple[float, float], seed: int, task: str = "g") -> MatchRow:
    return MatchRow(
        suite="s", task=task, env_id="E", env_kwargs={}, lineup=(a, b), seed=seed, episode=0,
        reset_seed=seed, rewards=rewards, moves=3, stop_reason="won",
    )  # fmt: skip


def test_ratings_move_the_right_way_on_a_fixed_result_table() -> None:
    # alice beats bob and carol; bob beats carol; one draw between alice and bob
    table = [
        _row("alice", "bob", (1, -1), 0),
        _row("alice", "carol", (1, -1), 1),
        _row("bob", "carol", (1, -1), 2),
        _row("bob", "alice", (0, 0), 3),
        _row("carol", "alice", (-1, 1), 4, task="h"),
    ]
    board = rate_matches("s", table)
    order = [p.player for p in board.players]
    assert order == ["alice", "bob", "carol"]
    alice, bob, carol = board.players
    assert alice.overall.record == (3, 1, 0)
    assert bob.overall.record == (1, 1, 1) and carol.overall.record == (0, 0, 3)
    assert alice.overall.mu > 25 > carol.overall.mu
    assert set(board.games) == {"g", "h"} and "bob" not in {
        p.player for p in board.players if "h" in p.games
    }
    # the order games were stored in does not matter
    assert [p.overall.mu for p in rate_matches("s", table[::-1]).players] == [
        p.overall.mu for p in board.players
    ]
    # one more win for carol over alice raises carol and lowers alice
    more = rate_matches("s", [*table, _row("carol", "alice", (1, -1), 9)])
    after = {p.player: p.overall.mu for p in more.players}
    assert after["carol"] > carol.overall.mu and after["alice"] < alice.overall.mu


def test_match_runner_resumes_after_a_crash_without_duplicates(tmp_path: Path) -> None:
    suite = Suite(
        "t", (), players=PLAYERS,
        matches=(MatchTask("nim", "TextArena/Nim-AEC-v0", seeds=(0, 1, 2)),
                 MatchTask("guess", "TextArena/GuessTheNumber-AEC-v0", seeds=(0, 1))),
    )  # fmt: skip
    path = tmp_path / "r.sqlite"
    store = ResultsStore(path)
    real_add = store.add_match
    calls = {"n": 0}

    def crashing_add(row: MatchRow, transcript: Any = None) -> bool:
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt  # the process is killed mid-run
        return real_add(row, transcript)

    store.add_match = crashing_add  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        run_matches(suite, store, concurrency=2, progress=False)
    store.close()
    with ResultsStore(path) as store:
        saved = len(store.match_rows())
        assert 1 <= saved <= 4
        summary = run_matches(suite, store, concurrency=2, progress=False)
        rows = store.match_rows()
        assert summary.skipped == saved and summary.ran == summary.total - saved
        assert len(rows) == summary.total == 2 * 3 + 2 * 2
        assert len({row.key for row in rows}) == len(rows)
        assert run_matches(suite, store, progress=False).ran == 0
        board = rate_matches("t", rows)
        assert board.players[0].player == "search"


def test_bundled_dfc18_suites_hold_the_eighteen_games() -> None:
    from arenagym.envs.textarena.games import GAMES, aec_id

    for name in ("dfc18", "dfc18-quick"):
        suite = load_suite(name)
        assert [m.env for m in suite.matches] == [aec_id(g) for g in GAMES]
        assert len(suite.players) >= 3 and not suite.tasks
        text = resources.files("arenagym.benchmarks").joinpath("suites", f"{name}.toml")
        raw = text.read_text(encoding="utf-8")
        for game in GAMES.values():  # each game's DFC groups are written beside it
            assert (
                f"start={game.start}, base model can win={str(game.base_model_can_win).lower()}"
                in raw
            )
        tomllib.loads(raw)
    assert len(load_suite("dfc18").matches[0].seeds) > 1


def test_match_suite_errors_name_the_field() -> None:
    players = 'name = "x"\n[[players]]\nname = "a"\nagent = "random"\n'
    with pytest.raises(SuiteError, match="multi-agent"):
        parse_suite(players + '[[matches]]\nenv = "Math-v0"\nseeds = [0]\n')
    with pytest.raises(SuiteError, match="need \\[\\[players\\]\\]"):
        parse_suite('name = "x"\n[[matches]]\nenv = "TextArena/Nim-AEC-v0"\nseeds = [0]\n')
    with pytest.raises(SuiteError, match="seeds"):
        parse_suite(players + '[[matches]]\nenv = "TextArena/Nim-AEC-v0"\nseeds = []\n')


def test_cli_runs_a_match_suite_and_shows_ratings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = tmp_path / "mini.toml"
    suite.write_text(
        'name = "mini"\n'
        f'[[players]]\nname = "random"\nagent = "{OPP}RandomLegalOpponent"\n'
        '[[matches]]\nname = "ttt"\nenv = "TextArena/TicTacToe-AEC-v0"\nseeds = [0]\n',
        encoding="utf-8",
    )
    store = str(tmp_path / "r.sqlite")
    args = ["run", "--suite", str(suite), "--store", store, "--no-progress"]
    assert main([*args, "--agent", OPP + "SearchOpponent", "--agent-name", "search"]) == 0
    out = capsys.readouterr().out
    assert "2 played" in out and "OpenSkill" in out and "search" in out
    assert main(["leaderboard", "--store", store, "--markdown", str(tmp_path / "b.md")]) == 0
    assert "ratings" in (tmp_path / "b.md").read_text(encoding="utf-8")
    assert main(["run", "--suite", "smoke", "--store", store, "--no-progress"]) == 2


def test_a_player_that_stops_its_episode_forfeits_without_an_error(tmp_path: Path) -> None:
    players = (
        Player("stopper", "arenagym_bench_testkit:OutOfContextPlayer"),
        Player("first-legal", "arenagym.envs.textarena.opponents:FirstLegalOpponent"),
    )
    suite = Suite(
        "t", (), players=players, matches=(MatchTask("nim", "TextArena/Nim-AEC-v0", seeds=(0,)),)
    )
    with ResultsStore(tmp_path / "r.sqlite") as store:
        summary = run_matches(suite, store, concurrency=1, progress=False)
        rows = store.match_rows()
    assert summary.failed == 0 and len(rows) == 2
    for row in rows:
        assert row.stop_reason == "context_overflow" and not row.is_error
        stopper = row.lineup.index("stopper")
        assert row.rewards[stopper] == -1.0 and row.rewards[1 - stopper] == 1.0
        assert row.info["stopped"]["seat"] == "stopper"
        assert row.info["stopped"]["prompt_tokens"] == 9000


def test_opponents_limit_the_new_agents_games_but_not_the_pools(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = tmp_path / "pool.toml"
    suite.write_text(
        'name = "pool"\n'
        f'[[players]]\nname = "random"\nagent = "{OPP}RandomLegalOpponent"\n'
        f'[[players]]\nname = "first"\nagent = "{OPP}FirstLegalOpponent"\n'
        '[[matches]]\nname = "nim"\nenv = "TextArena/Nim-AEC-v0"\nseeds = [0]\n'
        '[[matches]]\nname = "guess"\nenv = "TextArena/GuessTheNumber-AEC-v0"\nseeds = [0]\n',
        encoding="utf-8",
    )
    store = tmp_path / "r.sqlite"
    args = ["run", "--suite", str(suite), "--store", str(store), "--no-progress"]
    new = ["--agent", OPP + "SearchOpponent", "--agent-name", "new"]
    assert main([*args, *new, "--opponents", "first"]) == 0
    with ResultsStore(store) as results:
        lineups = sorted(row.lineup for row in results.match_rows())
    assert lineups == sorted(
        [
            ("random", "first"), ("first", "random"),  # the pool's own games: all played
            ("new", "first"), ("first", "new"),  # the new agent meets only 'first'
            ("random",), ("first",), ("new",),  # one-player games: everyone alone
        ]
    )  # fmt: skip
    capsys.readouterr()
    assert main([*args, *new, "--opponents", " , "]) == 2
    assert "--opponents needs at least one player name" in capsys.readouterr().err
    assert main([*args, *new, "--opponents", "first,nobody"]) == 2
    assert "'nobody' is not a player of suite 'pool' (its players: random, first)" in (
        capsys.readouterr().err
    )
