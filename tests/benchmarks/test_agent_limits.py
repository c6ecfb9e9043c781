"""Agents that hang or raise SystemExit/KeyboardInterrupt: the run records them and goes on."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import arenagym_bench_faults as faults
import pytest
from arenagym_bench_testkit import ENV_ID

from arenagym.benchmarks.runner import AgentThread, RunSetupError, run_suite
from arenagym.benchmarks.store import EpisodeRow, ResultsStore
from arenagym.benchmarks.suite import MAX_TASK_EPISODES, Suite, Task, episode_reset_seed

FAULTS = "arenagym_bench_faults"
KIT = "arenagym_bench_testkit"
HERE = Path(__file__).resolve().parent


@pytest.fixture(autouse=True)
def hung_agents_are_let_go() -> Iterator[None]:
    faults.rearm()
    yield
    faults.release()


def countdown_suite(
    episodes: int = 3,
    seeds: tuple[int, ...] = (0, 1),
    call_s: float = 0.3,
    episode_s: float = 60.0,
    **kwargs: Any,
) -> Suite:
    task = Task(name="count", env=ENV_ID, kwargs=kwargs, episodes=episodes, seeds=seeds)
    return Suite(
        name="limits", tasks=(task,), agent_call_timeout_s=call_s, episode_timeout_s=episode_s
    )


def by_key(rows: list[EpisodeRow]) -> dict[tuple[int, int], EpisodeRow]:
    return {(row.seed, row.episode): row for row in rows}


def test_a_hung_act_ends_its_episode_as_an_agent_timeout_and_the_run_goes_on() -> None:
    hang_seed = episode_reset_seed(1, 2)
    store = ResultsStore(":memory:")
    summary = run_suite(
        countdown_suite(),
        f"{FAULTS}:HangAgent",
        {"on_seed": hang_seed},
        store,
        concurrency=2,
        progress=False,
    )
    assert (summary.ran, summary.failed) == (6, 1)
    assert summary.stop_reasons == {"solved": 5, "agent_timeout": 1}
    rows = by_key(store.rows())
    hung = rows.pop((1, 2))
    assert (hung.stop_reason, hung.turns, hung.score) == ("agent_timeout", 0, 0.0)
    assert not hung.is_error  # the agent's own result, not a fault to replay
    assert (
        "act() of turn 1 did not return within agent_call_timeout_s = 0.3 s" in (hung.info["error"])
    )
    assert hung.info["error"].startswith("AgentTimeout: ")
    # where the agent was stuck, from its thread's stack
    assert "in act" in hung.info["traceback"] and "RELEASE.wait()" in hung.info["traceback"]
    assert all(row.stop_reason == "solved" for row in rows.values())


def test_hung_agents_never_exhaust_the_pool() -> None:
    """Every episode hangs: with 2 workers, 8 episodes still all end (the hung threads are the
    agents' own daemon threads, not the runner's)."""
    store = ResultsStore(":memory:")
    started = time.perf_counter()
    summary = run_suite(
        countdown_suite(episodes=4, call_s=0.2),
        f"{FAULTS}:HangAgent",
        None,
        store,
        concurrency=2,
        progress=False,
    )
    assert summary.stop_reasons == {"agent_timeout": 8}
    assert time.perf_counter() - started < 30
    hung = [t for t in threading.enumerate() if t.name.startswith("arenagym-agent:count:")]
    assert len(hung) >= 8 and all(thread.daemon for thread in hung)
    faults.release()
    for thread in hung:
        thread.join(timeout=10)
    assert not any(thread.is_alive() for thread in hung)  # let go, they end


def test_a_hung_reset_is_an_agent_timeout() -> None:
    store = ResultsStore(":memory:")
    run_suite(
        countdown_suite(episodes=1, seeds=(0,)),
        f"{FAULTS}:HangAgent",
        {"where": "reset"},
        store,
        progress=False,
    )
    (row,) = store.rows()
    assert row.stop_reason == "agent_timeout" and "reset() did not return" in row.info["error"]


def test_the_episode_limit_bounds_the_agents_time_over_all_its_calls() -> None:
    store = ResultsStore(":memory:")
    suite = countdown_suite(episodes=1, seeds=(0,), call_s=30.0, episode_s=0.5, turns=1000)
    summary = run_suite(suite, f"{KIT}:SleepAgent", {"delay": 0.2}, store, progress=False)
    (row,) = store.rows()
    assert summary.failed == 1
    assert row.stop_reason == "agent_timeout"
    assert 1 <= row.turns <= 3  # each act took 0.2 s: the budget of 0.5 s ran out in turn 3
    assert row.score == row.turns  # scored with what it reached
    assert "episode_timeout_s = 0.5 s" in row.info["error"]
    assert 0.4 <= row.info["agent_time_s"] < 5


def test_a_hung_async_agent_is_cancelled_as_an_agent_timeout() -> None:
    store = ResultsStore(":memory:")
    summary = run_suite(
        countdown_suite(episodes=2, seeds=(0,), call_s=0.2),
        f"{FAULTS}:AsyncHangAgent",
        None,
        store,
        progress=False,
    )
    assert summary.stop_reasons == {"agent_timeout": 2}
    row = store.rows()[0]
    assert "act() of turn 1" in row.info["error"] and "in aact" in row.info["traceback"]


def test_the_limits_given_to_run_suite_override_the_suites() -> None:
    store = ResultsStore(":memory:")
    suite = countdown_suite(episodes=1, seeds=(0,), call_s=3600.0)
    run_suite(suite, f"{FAULTS}:HangAgent", None, store, progress=False, agent_call_timeout_s=0.2)
    assert store.rows()[0].stop_reason == "agent_timeout"
    with pytest.raises(ValueError, match="episode_timeout_s must be a number of seconds > 0"):
        run_suite(suite, f"{KIT}:ConstAgent", None, store, episode_timeout_s=0)


def test_retry_errors_does_not_replay_an_agent_timeout() -> None:
    store = ResultsStore(":memory:")
    suite = countdown_suite(episodes=1, seeds=(0,))
    run_suite(suite, f"{FAULTS}:HangAgent", None, store, progress=False, agent_name="x")
    faults.release()
    again = run_suite(
        suite, f"{KIT}:ConstAgent", None, store, progress=False, agent_name="x", retry_errors=True
    )
    assert again.ran == 0
    assert [row.stop_reason for row in store.rows()] == ["agent_timeout"]


@pytest.mark.parametrize(
    ("agent", "kwargs", "error"),
    [
        ("RaiseAgent", {"kind": "exit"}, "SystemExit: 3"),
        ("RaiseAgent", {"kind": "interrupt"}, "KeyboardInterrupt: "),
        ("RaiseAgent", {"kind": "exit", "where": "reset"}, "SystemExit: 3"),
        ("AsyncRaiseAgent", {"kind": "exit"}, "SystemExit: 3"),
        ("AsyncRaiseAgent", {"kind": "interrupt"}, "KeyboardInterrupt: "),
    ],
)
def test_system_exit_or_keyboard_interrupt_from_an_agent_is_its_episodes_error(
    agent: str, kwargs: dict[str, Any], error: str
) -> None:
    store = ResultsStore(":memory:")
    if agent == "RaiseAgent" and kwargs.get("where") != "reset":
        kwargs = {**kwargs, "on_seed": episode_reset_seed(0, 1)}
    summary = run_suite(countdown_suite(), f"{FAULTS}:{agent}", kwargs, store, progress=False)
    assert summary.ran == 6  # the run went on
    failed = [row for row in store.rows() if row.stop_reason == "agent_error"]
    assert len(failed) == summary.failed >= 1
    assert all(row.info["error"] == error for row in failed)
    assert all("Traceback" in row.info["traceback"] for row in failed)
    if agent == "RaiseAgent" and "where" not in kwargs:
        assert [(row.seed, row.episode) for row in failed] == [(0, 1)]


@pytest.mark.parametrize("kind", ["exit", "interrupt"])
def test_system_exit_while_building_the_agent_is_a_setup_error(kind: str) -> None:
    store = ResultsStore(":memory:")
    with pytest.raises(RunSetupError, match="cannot build agent"):
        run_suite(
            countdown_suite(),
            f"{FAULTS}:RaiseAgent",
            {"kind": kind, "where": "init"},
            store,
            progress=False,
        )
    assert len(store) == 0


def test_the_agent_thread_hands_every_exception_to_its_future() -> None:
    calls = AgentThread("test")
    assert isinstance(calls.submit(faults._raise, "interrupt").exception(), KeyboardInterrupt)
    assert calls.submit(int, "7").result() == 7  # the thread survived
    assert calls.stack() == ""  # idle
    calls.close()


def test_episodes_are_generated_lazily() -> None:
    """A task of the largest allowed size starts at once and holds no list of its episodes."""

    class StopAfter(ResultsStore):
        def add(self, row: EpisodeRow, transcript: Any = None) -> bool:
            if len(self) >= 3:
                raise KeyboardInterrupt  # as if the user pressed Ctrl-C
            return super().add(row, transcript)

    suite = countdown_suite(episodes=MAX_TASK_EPISODES, seeds=(0,))
    store = StopAfter(":memory:")
    tracemalloc.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            run_suite(suite, f"{KIT}:ConstAgent", None, store, concurrency=4, progress=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(store) == 3
    assert peak < 20 * 2**20, peak  # a million pending episodes would take hundreds of MB


def _cli(tmp_path: Path, suite_text: str, agent: str, *extra: str) -> list[str]:
    suite = tmp_path / "limits.toml"
    suite.write_text(suite_text, encoding="utf-8")
    return [
        sys.executable,
        "-m",
        "arenagym",
        "run",
        "--suite",
        str(suite),
        "--agent",
        agent,
        "--store",
        str(tmp_path / "r.sqlite"),
        "--no-progress",
        *extra,
    ]


def _env() -> dict[str, str]:
    pythonpath = os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": pythonpath}


HUNG_SUITE = f"""
name = "hung"
[settings]
agent_call_timeout_s = 0.5
[[tasks]]
name = "count"
env = "arenagym_bench_testkit:{ENV_ID}"
episodes = 2
seeds = [0, 1]
"""


@pytest.mark.slow
def test_the_process_exits_although_its_hung_agents_threads_never_return(tmp_path: Path) -> None:
    command = _cli(tmp_path, HUNG_SUITE, f"{FAULTS}:HangAgent", "--concurrency", "2")
    result = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "4 episodes run" in result.stdout and "stop reasons: 4 agent_timeout" in result.stdout


def _default_sigint() -> None:
    """Give the child the default Ctrl-C handling (run in the child before it starts): neither
    ignored nor blocked, whatever the test process inherited."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


@pytest.mark.slow
def test_a_real_ctrl_c_stops_a_run_with_hung_agents_and_keeps_its_rows(tmp_path: Path) -> None:
    text = HUNG_SUITE.replace("episodes = 2", "episodes = 200")
    command = _cli(tmp_path, text, f"{FAULTS}:HangAgent", "--concurrency", "2")
    store = tmp_path / "r.sqlite"
    process = subprocess.Popen(
        command,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # as from a terminal, whatever SIGINT disposition the test process inherited
        preexec_fn=_default_sigint,
    )
    try:
        deadline = time.monotonic() + 60
        while _count(store) < 2:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no rows within 60 s"
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, err
    assert "interrupted; finished episodes are saved" in err
    kept = _count(store)
    assert 2 <= kept < 400


def _count(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(path, timeout=5) as db:
            return int(db.execute("SELECT COUNT(*) FROM episodes").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


# ----------------------------------------------------------------------------- games
OPP = "arenagym.envs.textarena.opponents:"


def _match_suite(player: str, kwargs: dict[str, Any] | None = None) -> Suite:
    pytest.importorskip("textarena")
    from arenagym.benchmarks.suite import MatchTask, Player

    players = (Player("bad", player, kwargs or {}), Player("first", OPP + "FirstLegalOpponent"))
    task = MatchTask("nim", "TextArena/Nim-AEC-v0", seeds=(0,))
    return Suite("games", (), players=players, matches=(task,), agent_call_timeout_s=0.3)


def test_a_hung_player_forfeits_its_games_and_the_run_goes_on(tmp_path: Path) -> None:
    from arenagym.benchmarks.matches import run_matches

    suite = _match_suite(f"{FAULTS}:HangAgent")
    with ResultsStore(tmp_path / "r.sqlite") as store:
        summary = run_matches(suite, store, concurrency=2, progress=False)
        rows = store.match_rows()
    assert summary.ran == 2 and summary.stop_reasons == {"agent_timeout": 2}
    for row in rows:
        assert not row.is_error  # rated: the timeout counts against the agent
        bad = row.lineup.index("bad")
        assert row.rewards[bad] == -1.0 and row.rewards[1 - bad] == 1.0
        assert row.info["timed_out"] == "bad"
        assert "did not return within agent_call_timeout_s = 0.3 s" in row.info["error"]
        assert "RELEASE.wait()" in row.info["traceback"]


@pytest.mark.parametrize("kind", ["exit", "interrupt"])
def test_system_exit_or_keyboard_interrupt_from_a_player_is_an_agent_error(
    tmp_path: Path, kind: str
) -> None:
    from arenagym.benchmarks.matches import run_matches

    suite = _match_suite(f"{FAULTS}:RaiseAgent", {"kind": kind})
    with ResultsStore(tmp_path / "r.sqlite") as store:
        summary = run_matches(suite, store, concurrency=2, progress=False)
        rows = store.match_rows()
    assert summary.ran == 2 and summary.stop_reasons == {"agent_error": 2}
    expected = "SystemExit(3)" if kind == "exit" else "KeyboardInterrupt()"
    assert all(row.info["error"] == f"bad: {expected}" for row in rows)
    for row in rows:  # the raising seat forfeits: a losing agent cannot void its loss
        bad = row.lineup.index("bad")
        assert row.rewards[bad] == -1.0 and row.rewards[1 - bad] == 1.0
        assert row.info["forfeit"] == "bad"
    from arenagym.benchmarks.ratings import rate_matches

    board = rate_matches(suite.name, rows)
    losses = {p.player: p.overall.record[2] for p in board.players}
    assert board.n_errors == 0 and losses["bad"] == 2


def test_a_player_that_exits_while_being_built_is_a_setup_error(tmp_path: Path) -> None:
    from arenagym.benchmarks.matches import run_matches

    suite = _match_suite(f"{FAULTS}:RaiseAgent", {"kind": "exit", "where": "init"})
    with (
        ResultsStore(tmp_path / "r.sqlite") as store,
        pytest.raises(RunSetupError, match=r"cannot build player 'bad'.*SystemExit"),
    ):
        run_matches(suite, store, progress=False)


def test_match_time_limits_come_from_the_suite_or_the_caller(tmp_path: Path) -> None:
    from arenagym.benchmarks.matches import run_matches

    suite = replace(_match_suite(f"{FAULTS}:HangAgent"), agent_call_timeout_s=3600.0)
    with ResultsStore(tmp_path / "r.sqlite") as store:
        summary = run_matches(suite, store, progress=False, agent_call_timeout_s=0.2)
    assert summary.stop_reasons == {"agent_timeout": 2}


# ----------------------------------------------------------------------------- stops, loops
def _within(seconds: float, function: Any, *args: Any, **kwargs: Any) -> Any:
    """``function(*args, **kwargs)`` on a daemon thread; fails the test if it has not returned
    within ``seconds`` (a hang must not hang the test session)."""
    outcome: dict[str, Any] = {}

    def call() -> None:
        try:
            outcome["result"] = function(*args, **kwargs)
        except BaseException as error:
            outcome["error"] = error

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{getattr(function, '__name__', function)} hung"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def success_suite(**kwargs: Any) -> Suite:
    task = Task(name="count", env=ENV_ID, kwargs=kwargs, seeds=(0,), metric="success")
    return Suite(name="stops", tasks=(task,), agent_call_timeout_s=30.0)


@pytest.mark.parametrize(
    ("stop_reason", "shown"),
    [
        ("solved", "'solved' is a stop reason only the env or the runner records"),
        ("env_error", "'env_error' is a stop reason only the env or the runner records"),
        ("agent_timeout", "'agent_timeout' is a stop reason only the env or the runner records"),
        (["x"], "EpisodeStop(['x']), but a stop reason must be a snake_case string"),
        ("Solved ", "but a stop reason must be a snake_case string"),
    ],
)
def test_an_agent_cannot_give_a_reserved_or_malformed_stop_reason(
    stop_reason: Any, shown: str
) -> None:
    store = ResultsStore(":memory:")
    summary = run_suite(
        success_suite(), f"{FAULTS}:StopAgent", {"stop_reason": stop_reason}, store, progress=False
    )
    (row,) = store.rows()
    assert summary.stop_reasons == {"agent_error": 1}
    assert (row.stop_reason, row.score, row.turns) == ("agent_error", 0.0, 0)
    assert row.is_error and row.info["error"].startswith("RefusedEpisodeStop: ")
    assert shown in row.info["error"]
    assert "EpisodeStop" in row.info["traceback"] and "in act" in row.info["traceback"]


def test_every_reason_the_envs_and_runners_record_is_reserved() -> None:
    from arenagym.benchmarks.runner import RESERVED_STOP_REASONS
    from arenagym.envs.core.text_env import STOP_REASONS

    assert STOP_REASONS <= RESERVED_STOP_REASONS
    assert {"agent_error", "env_error", "agent_timeout", "max_steps", "won", "lost", "draw"} <= (
        RESERVED_STOP_REASONS
    )
    assert not {"context_overflow", "max_tokens"} & RESERVED_STOP_REASONS


@pytest.mark.parametrize(("metric", "score"), [("success", 0.0), ("clean_reward", 1.0)])
def test_an_agent_stopped_episode_scores_only_what_the_env_gave(metric: str, score: float) -> None:
    """An accepted stop of the agent's own, after one right move of three: the clean reward so
    far, and never a success (the env did not end the episode as solved)."""
    task = Task(name="count", env=ENV_ID, kwargs={"turns": 3}, seeds=(0,), metric=metric)
    store = ResultsStore(":memory:")
    run_suite(
        Suite(name="stops", tasks=(task,)),
        f"{FAULTS}:StopAgent",
        {"stop_reason": "gave_up", "message": "enough", "moves": 1},
        store,
        progress=False,
    )
    (row,) = store.rows()
    assert (row.stop_reason, row.turns, row.score) == ("gave_up", 1, score)
    assert not row.is_error and row.info["stop"] == {"message": "enough"}


def test_an_async_agent_that_ignores_cancellation_does_not_keep_the_run_from_returning() -> None:
    store = ResultsStore(":memory:")
    started = time.perf_counter()
    summary = _within(
        60,
        run_suite,
        countdown_suite(episodes=2, seeds=(0,), call_s=0.3),
        f"{FAULTS}:StubbornAsyncAgent",
        None,
        store,
        progress=False,
    )
    assert summary.stop_reasons == {"agent_timeout": 2}
    assert time.perf_counter() - started < 30
    assert "in aact" in store.rows()[0].info["traceback"]


def test_an_async_agent_that_blocks_its_loop_is_timed_out_by_the_call_limit() -> None:
    store = ResultsStore(":memory:")
    run_suite(
        countdown_suite(episodes=1, seeds=(0,), call_s=0.5),
        f"{FAULTS}:BlockingAsyncAgent",
        {"seconds": 2.0},
        store,
        progress=False,
    )
    (row,) = store.rows()
    assert row.stop_reason == "agent_timeout"
    assert "agent_call_timeout_s = 0.5 s" in row.info["error"]
    assert row.info["agent_time_s"] < 1.5  # the runner stopped waiting at the limit
    assert "time.sleep" in row.info["traceback"]


@pytest.mark.parametrize("where", ["act", "reset"])
def test_stop_iteration_from_an_agent_is_its_episodes_error(where: str) -> None:
    store = ResultsStore(":memory:")
    suite = countdown_suite(episodes=1, seeds=(0,), call_s=30.0)
    started = time.perf_counter()
    _within(
        60,
        run_suite,
        suite,
        f"{FAULTS}:StopIterationAgent",
        {"where": where},
        store,
        progress=False,
    )
    (row,) = store.rows()
    assert row.stop_reason == "agent_error"  # not an agent_timeout after 30 s
    assert time.perf_counter() - started < 20
    assert row.info["error"].startswith("RuntimeError: the call raised StopIteration(")
    assert "StopIteration: no more" in row.info["traceback"]


def test_stop_iteration_while_building_the_agent_is_a_setup_error() -> None:
    store = ResultsStore(":memory:")
    with pytest.raises(RunSetupError, match=r"cannot build agent.*StopIteration"):
        _within(
            60,
            run_suite,
            countdown_suite(),
            f"{FAULTS}:StopIterationAgent",
            {"where": "init"},
            store,
            progress=False,
        )


@pytest.mark.parametrize("where", ["reset", "step"])
def test_stop_iteration_from_the_env_is_an_env_error(where: str) -> None:
    task = Task(name="count", env=faults.STOP_ITERATION_ENV_ID, kwargs={"where": where}, seeds=(0,))
    store = ResultsStore(":memory:")
    _within(
        60,
        run_suite,
        Suite(name="env", tasks=(task,)),
        f"{KIT}:ConstAgent",
        None,
        store,
        progress=False,
    )
    (row,) = store.rows()
    assert row.stop_reason == "env_error"
    assert "StopIteration" in row.info["error"]


def test_a_stop_iteration_call_on_the_agent_thread_resolves_its_future() -> None:
    import asyncio

    calls = AgentThread("test")

    async def wait() -> BaseException | None:
        return await asyncio.wait_for(asyncio.wrap_future(calls.submit(next, iter([]))), timeout=10)

    with pytest.raises(RuntimeError, match="StopIteration") as caught:
        asyncio.run(wait())
    assert isinstance(caught.value.__cause__, StopIteration)
    calls.close()


def test_seeds_the_store_cannot_hold_are_a_setup_error() -> None:
    suite = replace(countdown_suite(), tasks=(replace(countdown_suite().tasks[0], seeds=(2**63,)),))
    with pytest.raises(RunSetupError, match="seed 9223372036854775808 is not an integer from 0"):
        run_suite(suite, f"{KIT}:ConstAgent", None, ResultsStore(":memory:"), progress=False)


def test_a_player_cannot_give_a_reserved_stop_reason(tmp_path: Path) -> None:
    from arenagym.benchmarks.matches import run_matches

    suite = _match_suite(f"{FAULTS}:StopAgent", {"stop_reason": "won"})
    with ResultsStore(tmp_path / "r.sqlite") as store:
        summary = run_matches(suite, store, concurrency=2, progress=False)
        rows = store.match_rows()
    assert summary.stop_reasons == {"agent_error": 2}
    assert all("'won' is a stop reason only the env" in row.info["error"] for row in rows)


def test_a_player_that_stops_with_a_reason_of_its_own_forfeits(tmp_path: Path) -> None:
    from arenagym.benchmarks.matches import run_matches

    suite = _match_suite(f"{FAULTS}:StopAgent", {"stop_reason": "gave_up", "message": "bye"})
    with ResultsStore(tmp_path / "r.sqlite") as store:
        summary = run_matches(suite, store, concurrency=2, progress=False)
        rows = store.match_rows()
    assert summary.stop_reasons == {"gave_up": 2}
    for row in rows:
        bad = row.lineup.index("bad")
        assert row.rewards[bad] == -1.0 and row.rewards[1 - bad] == 1.0
        assert row.info["stopped"] == {"message": "bye", "seat": "bad"}


def test_time_limits_beyond_what_a_wait_takes_mean_no_limit(tmp_path: Path) -> None:
    from arenagym.benchmarks.matches import run_matches

    suite = replace(
        _match_suite(OPP + "FirstLegalOpponent"),
        agent_call_timeout_s=1e10,
        episode_timeout_s=1e10,
    )
    with ResultsStore(tmp_path / "r.sqlite") as store:
        summary = run_matches(suite, store, concurrency=2, progress=False)
        again = run_matches(
            replace(suite, matches=(replace(suite.matches[0], seeds=(1,)),)),
            store,
            progress=False,
            agent_call_timeout_s=1e300,
        )
    assert summary.ran == 2 and again.ran == 2
    assert not ({*summary.stop_reasons, *again.stop_reasons} & FAILED)
    run = run_suite(
        countdown_suite(episodes=1, seeds=(0,), call_s=1e10, episode_s=10**400),
        f"{KIT}:ConstAgent",
        None,
        ResultsStore(":memory:"),
        progress=False,
    )
    assert run.stop_reasons == {"solved": 1}


FAILED = {"agent_error", "env_error", "agent_timeout"}
