"""Results people can see: a run that says what failed (grouped errors, exit status 1, progress
when piped, ``--limit``, ``--json``) and every episode's transcript in the store, read back with
``arenagym show``."""

from __future__ import annotations

import json
import socket
import sqlite3
import zlib
from pathlib import Path
from typing import Any

import pytest
from arenagym_bench_testkit import ENV_ID
from arenagym_bench_transcript_kit import ECHO_ENV_ID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arenagym.benchmarks import runner
from arenagym.benchmarks.runner import run_suite
from arenagym.benchmarks.store import EpisodeRow, ResultsStore
from arenagym.benchmarks.suite import Suite, Task
from arenagym.benchmarks.transcripts import TRANSCRIPT_CAP_BYTES, TURN_KEYS
from arenagym.cli import main

KIT = "arenagym_bench_testkit"
LEAKY = "arenagym_bench_transcript_kit:LeakyAgent"


def write_suite(
    tmp_path: Path, *, episodes: int = 1, seeds: str = "[0, 1]", turns: int = 1
) -> Path:
    path = tmp_path / "speak.toml"
    path.write_text(
        f'name = "speak"\n[[tasks]]\nname = "count"\nenv = "{ENV_ID}"\n'
        f"kwargs = {{ turns = {turns} }}\nepisodes = {episodes}\nseeds = {seeds}\n"
        f'[[tasks]]\nname = "other"\nenv = "{ENV_ID}"\nepisodes = {episodes}\nseeds = {seeds}\n',
        encoding="utf-8",
    )
    return path


def closed_port() -> int:
    """A loopback port where nothing listens (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------- a runner that speaks


def test_an_unreachable_openai_endpoint_fails_the_run_and_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("openai", reason="the openai extra is not installed")
    url = f"http://127.0.0.1:{closed_port()}/v1"
    agent = f"openai:{url},model=tiny,max_retries=0,timeout_s=5"
    store = tmp_path / "r.sqlite"
    argv = ["run", "--suite", str(write_suite(tmp_path)), "--agent", agent, "--store", str(store)]
    assert main([*argv, "--no-progress"]) == 1
    captured = capsys.readouterr()
    # the summary groups the four episodes' one error, naming the connection failure
    assert "failed episodes, by error:" in captured.out
    [line] = [line for line in captured.out.splitlines() if "× agent_error" in line]
    assert line.startswith("  4 × agent_error: BackendUnavailableError:")
    assert "Connection error" in line and url in line
    assert "count: seeds 0, 1; other: seeds 0, 1" in captured.out
    # one error line on stderr, which says how to see the episodes
    [error] = captured.err.splitlines()
    assert error.startswith("arenagym run: error: 4 of 4 episodes of suite 'speak' ended in")
    assert "arenagym show --store" in error and "--failed" in error
    assert "Future exception was never retrieved" not in captured.err


def test_json_prints_one_object_on_stdout_and_fails_with_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = str(tmp_path / "r.sqlite")
    run = ["run", "--suite", str(write_suite(tmp_path)), "--store", store, "--json"]
    assert main([*run, "--agent", f"{KIT}:ConstAgent"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)  # the whole of stdout is one JSON object
    assert report["exit_status"] == 0 and report["ran"] == 4 and report["errors"] == 0
    [episodes] = report["runs"]
    assert episodes["kind"] == "episodes" and episodes["stop_reasons"] == {"solved": 4}
    assert "4 episodes run" in captured.err  # the summary for people went to stderr

    crash = ["--agent", LEAKY, "--agent-kwargs", '{"fail_on": 1}']
    assert main([*run, *crash, "--agent-name", "crash", "--no-progress"]) == 1
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["exit_status"] == 1 and report["errors"] == 4
    [group] = report["runs"][0]["failures"]
    assert group["stop_reason"] == "agent_error" and group["count"] == 4
    assert len(group["examples"]) == 4 and "arenagym run: error:" in captured.err


def test_a_piped_long_run_prints_progress_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "PROGRESS_INTERVAL_S", 0.1)
    suite = write_suite(tmp_path, episodes=3)
    argv = ["run", "--suite", str(suite), "--store", str(tmp_path / "r.sqlite")]
    slow = ["--agent", f"{KIT}:SleepAgent", "--agent-kwargs", '{"delay": 0.1}']
    assert main([*argv, *slow, "--concurrency", "1"]) == 0
    err = capsys.readouterr().err  # captured: not a terminal
    lines = [line for line in err.splitlines() if line.startswith("[progress] speak")]
    assert len(lines) >= 4, err
    assert all("/12 episodes done" in line and "failed" in line for line in lines)
    assert "episodes/s" in lines[0] and "12/12 episodes done, 0 failed" in lines[-1]


def test_limit_plays_the_first_n_episodes_of_each_task(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "r.sqlite"
    suite = write_suite(tmp_path, episodes=2, seeds="[5, 3, 9]")
    run = ["run", "--suite", str(suite), "--store", str(store), "--no-progress"]
    assert main([*run, "--agent", f"{KIT}:ConstAgent", "--limit", "3"]) == 0
    assert "6 episodes run, 0 skipped" in capsys.readouterr().out
    with ResultsStore(store) as results:
        for task in ("count", "other"):
            keys = sorted((row.seed, row.episode) for row in results.rows(task=task))
            assert keys == [(3, 0), (5, 0), (5, 1)]  # seed 5 first: the suite's order
    assert main([*run, "--agent", f"{KIT}:ConstAgent", "--limit", "4"]) == 0
    assert "2 episodes run, 6 skipped" in capsys.readouterr().out
    assert main([*run, "--agent", f"{KIT}:ConstAgent", "--limit", "0"]) == 2
    assert "--limit" in capsys.readouterr().err


# --------------------------------------------------------------------------- transcripts


def test_a_runs_transcripts_are_stored_and_shown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "r.sqlite"
    suite = write_suite(tmp_path, turns=2)
    run = ["run", "--suite", str(suite), "--store", str(store), "--no-progress"]
    assert main([*run, "--agent", f"{KIT}:ConstAgent", "--agent-name", "const"]) == 0
    wrong = ["--agent", f"{KIT}:ConstAgent", "--agent-kwargs", '{"action": "nope"}']
    assert main([*run, *wrong, "--agent-name", "wrong"]) == 0
    capsys.readouterr()
    with ResultsStore(store) as results:
        row = results.rows(agent="const", task="count")[0]
        turns = results.transcript("speak", "const", "count", row.seed, row.episode)
    assert turns is not None and len(turns) == 2
    assert all(tuple(turn) == TURN_KEYS for turn in turns)
    first = turns[0]
    assert first["observation"].startswith("seed=") and first["action"] == "right"
    assert first["reward"] == first["clean_reward"] == 1.0 and first["invalid_action"] is False
    assert first["reward_components"] == {"right": 1.0, "noise": 0.0}
    assert first["latency_s"] >= 0 and first["error"] is None and first["clipped_chars"] == 0

    show = ["show", "--store", str(store), "--suite", "speak"]
    assert main([*show, "--agent", "const", "--task", "count"]) == 0
    out = capsys.readouterr().out
    assert out.count("=== speak · count · seed") == 2 and "--- turn 2" in out
    assert "  | right" in out and "reward 1.000 [right=1.000, noise=0.000]" in out
    assert main([*show, "--agent", "const", "--failed"]) == 0
    assert "no failed episodes of const" in capsys.readouterr().out
    assert main([*show, "--agent", "wrong", "--failed", "--limit", "1"]) == 0
    out = capsys.readouterr().out
    assert out.count("=== speak") == 1 and "stop reason failed" in out and "  | nope" in out
    assert "showed 1 of 4 failed episodes" in out

    assert main([*show, "--agent", "nobody"]) == 2
    assert "no agent 'nobody'" in capsys.readouterr().err
    assert main(["show", "--store", str(store), "--suite", "none", "--agent", "const"]) == 2
    assert "no results for suite 'none'" in capsys.readouterr().err


def test_show_prints_what_an_llm_wrote_with_its_token_counts(
    tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from arenagym.agents.specs import clear_backend_cache

    store = tmp_path / "r.sqlite"
    suite = write_suite(tmp_path, turns=2, seeds="[0]")
    agent = f"hf:{tiny_model_dir},temperature=0,max_tokens=6"
    run = ["run", "--suite", str(suite), "--store", str(store), "--no-progress"]
    clear_backend_cache()
    try:
        assert main([*run, "--agent", agent, "--agent-name", "tiny"]) == 0
    finally:
        clear_backend_cache()
    capsys.readouterr()
    with ResultsStore(store) as results:
        turns = results.transcript("speak", "tiny", "count", seed=0)
    assert turns is not None and len(turns) == 2
    for turn in turns:
        assert isinstance(turn["action"], str)
        assert turn["prompt_tokens"] > 0 and 0 < turn["completion_tokens"] <= 6
    assert turns[1]["prompt_tokens"] > turns[0]["prompt_tokens"]  # the chat grew
    assert main(["show", "--store", str(store), "--suite", "speak", "--agent", "tiny"]) == 0
    out = capsys.readouterr().out
    for turn in turns:
        wrote = turn["action"].splitlines() or [""]
        assert f"  | {wrote[0]}" in out  # what the model wrote, as it wrote it
        assert f"{turn['prompt_tokens']} prompt + {turn['completion_tokens']} completion" in out


def test_a_failed_turn_keeps_what_the_agent_saw_and_the_error() -> None:
    store = ResultsStore(":memory:")
    suite = Suite("s", (Task("echo", ECHO_ENV_ID, {"turns": 3}, seeds=(0,)),))
    summary = run_suite(suite, LEAKY, {"fail_on": 2}, store, progress=False, agent_name="leaky")
    assert summary.errors == 1 and summary.failures[0].message.startswith("ValueError")
    turns = store.transcript("s", "leaky", "echo", 0)
    assert turns is not None and [turn["action"] is None for turn in turns] == [False, True]
    assert turns[1]["observation"].startswith("you said: my key is")
    assert turns[1]["reward"] is None and turns[1]["error"].startswith("ValueError: the server")


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    secret=st.text(
        alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_",
        min_size=12,
        max_size=40,
    ),
    fail_on=st.integers(min_value=0, max_value=4),
)
def test_secrets_of_the_agent_never_reach_a_stored_transcript(
    tmp_path_factory: pytest.TempPathFactory, secret: str, fail_on: int
) -> None:
    """The agent writes its key in every action (and the env echoes it back in the next
    observation), and its error repeats it: the store, transcripts included, never holds it."""
    kwargs: dict[str, Any] = {"fail_on": fail_on, "api_key": secret}
    path = tmp_path_factory.mktemp("secret") / "r.sqlite"
    suite = Suite("s", (Task("echo", ECHO_ENV_ID, {"turns": 3}, seeds=(0, 1)),))
    with ResultsStore(path) as store:
        run_suite(suite, LEAKY, kwargs, store, progress=False, agent_name="leaky", concurrency=2)
        transcripts = [store.transcript("s", "leaky", "echo", seed) for seed in (0, 1)]
    assert all(turns for turns in transcripts)
    assert secret not in json.dumps(transcripts)
    actions = [turn["action"] for turns in transcripts for turn in turns or [] if turn["action"]]
    assert all("my key is ***" in action for action in actions) and (fail_on == 1) != bool(actions)
    with sqlite3.connect(path) as db:
        blobs = [bytes(data) for (data,) in db.execute("SELECT data FROM transcripts")]
        dump = "\n".join(db.iterdump())
    assert len(blobs) == 2 and all(secret.encode() not in zlib.decompress(b) for b in blobs)
    assert secret not in dump


def test_a_huge_transcript_is_clipped_to_the_cap_and_says_so() -> None:
    store = ResultsStore(":memory:")
    suite = Suite("s", (Task("echo", ECHO_ENV_ID, {"turns": 2}, seeds=(0,)),))
    verbose = "arenagym_bench_transcript_kit:VerboseAgent"
    run_suite(suite, verbose, {"size": 2_000_000}, store, progress=False, agent_name="v")
    turns = store.transcript("s", "v", "echo", 0)
    assert turns is not None and len(turns) == 2
    compact = json.dumps(turns, ensure_ascii=False, separators=(",", ":"))
    assert len(compact.encode()) <= TRANSCRIPT_CAP_BYTES
    assert all(turn["clipped_chars"] > 1_000_000 for turn in turns)
    assert "characters]…" in turns[0]["action"] and turns[0]["action"].startswith("vvvv")
    (clipped,) = store._db.execute("SELECT clipped_chars FROM transcripts").fetchone()
    assert clipped == sum(turn["clipped_chars"] for turn in turns)


def test_an_old_store_without_transcript_tables_keeps_working(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    row = EpisodeRow(
        suite="s", task="t", env_id=ENV_ID, env_kwargs={}, agent="a", seed=0, episode=0,
        reset_seed=1, metric="clean_reward", score=1.0, reward=1.0, clean_reward=1.0, turns=1,
        stop_reason="solved",
    )  # fmt: skip
    with ResultsStore(path) as store:
        store.add(row)
    with sqlite3.connect(path) as db:  # as a store written before transcripts were kept
        db.execute("DROP TABLE transcripts")
        db.execute("DROP TABLE match_transcripts")
    with ResultsStore(path) as store:
        assert store.rows()[0].stop_reason == "solved"
        assert store.transcript("s", "a", "t", 0) is None
        assert store.match_transcript("s", "t", ("a", "b"), 0) is None
        other = EpisodeRow(**{**row.__dict__, "seed": 1})
        assert store.add(other, [{"turn": 1, "observation": "o", "action": "a"}])
        assert store.transcript("s", "a", "t", 1) == [
            {"turn": 1, "observation": "o", "action": "a"}
        ]


def test_retrying_errors_replaces_their_transcripts() -> None:
    store = ResultsStore(":memory:")
    suite = Suite("s", (Task("echo", ECHO_ENV_ID, {"turns": 2}, seeds=(0,)),))
    run_suite(suite, LEAKY, {"fail_on": 1}, store, progress=False, agent_name="x")
    failed = store.transcript("s", "x", "echo", 0)
    assert failed is not None and failed[0]["error"] is not None
    assert store.add(store.rows()[0], [{"turn": 9}]) is False  # a duplicate writes nothing
    run_suite(suite, LEAKY, {}, store, progress=False, agent_name="x", retry_errors=True)
    again = store.transcript("s", "x", "echo", 0)
    assert again is not None and len(again) == 2 and again[0]["error"] is None


# --------------------------------------------------------------------------- match suites


def test_match_games_keep_every_seats_moves_and_limit_applies_per_lineup(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("textarena")
    pytest.importorskip("openskill")
    opp = "arenagym.envs.textarena.opponents:"
    suite = tmp_path / "games.toml"
    suite.write_text(
        'name = "games"\n'
        f'[[players]]\nname = "random"\nagent = "{opp}RandomLegalOpponent"\n'
        f'[[players]]\nname = "first"\nagent = "{opp}FirstLegalOpponent"\n'
        '[[matches]]\nname = "nim"\nenv = "TextArena/Nim-AEC-v0"\nseeds = [4, 2, 7]\n',
        encoding="utf-8",
    )
    store = tmp_path / "r.sqlite"
    run = ["run", "--suite", str(suite), "--store", str(store), "--no-progress", "--limit", "2"]
    assert main(run) == 0
    assert "4 played" in capsys.readouterr().out  # 2 lineups x the first 2 seeds
    with ResultsStore(store) as results:
        games = results.match_rows()
        assert sorted({game.seed for game in games}) == [2, 4]
        game = games[0]
        moves = results.match_transcript("games", game.task, game.lineup, game.seed)
    assert moves is not None and len(moves) == game.moves
    assert {move["player"] for move in moves} == set(game.lineup)
    assert {move["seat"] for move in moves} == {"player_0", "player_1"}
    assert all(isinstance(move["action"], str) and move["reward"] is not None for move in moves)

    show = ["show", "--store", str(store), "--suite", "games", "--agent", "first"]
    assert main([*show, "--limit", "0"]) == 0
    out = capsys.readouterr().out
    assert out.count("=== games · nim · seed") == 4 and "--- move 1 · player_0" in out


def test_a_game_with_an_agent_error_fails_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("textarena")
    pytest.importorskip("openskill")
    suite = tmp_path / "games.toml"
    suite.write_text(
        'name = "games"\n'
        '[[players]]\nname = "first"\n'
        'agent = "arenagym.envs.textarena.opponents:FirstLegalOpponent"\n'
        '[[matches]]\nname = "nim"\nenv = "TextArena/Nim-AEC-v0"\nseeds = [0]\n',
        encoding="utf-8",
    )
    store = tmp_path / "r.sqlite"
    run = ["run", "--suite", str(suite), "--store", str(store), "--no-progress"]
    crash = ["--agent", LEAKY, "--agent-kwargs", '{"fail_on": 1}']
    assert main([*run, *crash, "--agent-name", "crash"]) == 1
    captured = capsys.readouterr()
    assert "failed games, by error:" in captured.out
    assert "nim (crash vs first): seed 0" in captured.out
    assert "ended in agent/env errors" in captured.err and "--agent crash" in captured.err
    with ResultsStore(store) as results:
        game = next(g for g in results.match_rows() if g.lineup[0] == "crash")
        moves = results.match_transcript("games", "nim", game.lineup, 0)
    assert moves is not None and moves[-1]["action"] is None and moves[-1]["error"]


def test_an_action_no_utf8_can_hold_is_stored_not_a_crash() -> None:
    """An agent's str may hold a lone surrogate (no UTF-8 form): the transcript keeps the rest,
    with U+FFFD in its place, instead of the run ending in a UnicodeEncodeError."""
    from arenagym.benchmarks.transcripts import decode_transcript, encode_transcript, new_turn

    turn = new_turn(1, "question", "\ud800 answer \x00 \\boxed{2}")
    (stored,) = decode_transcript(encode_transcript([turn]).data)
    assert stored["action"] == "\ufffd answer \x00 \\boxed{2}"
