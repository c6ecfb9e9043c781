"""``arenagym run --ray``: a suite's episodes as Ray tasks on a simulated multi-node cluster.

One machine plays the cluster (:class:`ray.cluster_utils.Cluster`: a head without CPUs and two
worker nodes with one CPU each, so every episode runs on a worker node). The same suite run
locally and on the cluster must give the same store (rows and transcripts, timings aside), and
killing a worker node mid-run must lose and duplicate nothing.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

from arenagym.agents.baselines import MathSolverAgent  # noqa: E402
from arenagym.benchmarks.distributed import ray_episodes, ray_games  # noqa: E402
from arenagym.benchmarks.matches import run_matches  # noqa: E402
from arenagym.benchmarks.runner import run_suite  # noqa: E402
from arenagym.benchmarks.store import ResultsStore  # noqa: E402
from arenagym.benchmarks.suite import MatchTask, Player, Suite, parse_suite  # noqa: E402
from arenagym.cli import main  # noqa: E402
from arenagym.envs.textarena.opponents import FirstLegalOpponent  # noqa: E402

_HERE = str(Path(__file__).resolve().parent)

SUITE = """
name = "ray-test"
[[tasks]]
name = "math-d1"
env = "Math-v0"
kwargs = { difficulty = 1 }
episodes = 2
seeds = [0, 1, 2]
max_steps = 10
[[tasks]]
name = "math-d2"
env = "Math-v0"
kwargs = { difficulty = 2 }
episodes = 1
seeds = [3, 4]
max_steps = 10
"""

TIMINGS = {"started_at", "finished_at", "duration_s"}


class SlowSolver(MathSolverAgent):
    """math-solver that thinks for a while before each answer (so a node dies mid-episode)."""

    def act(self, observation: Any) -> str:
        time.sleep(0.8)  # long beside the 0.2 s the node-kill helper waits: a node is never idle
        return super().act(observation)


class SlowFirstLegal(FirstLegalOpponent):
    """first-legal that thinks for a while before each move (so a node dies mid-game)."""

    def choose(self, moves: list[str]) -> str:
        time.sleep(0.5)  # long beside the 0.2 s the node-kill helper waits: a node is never idle
        return super().choose(moves)


def _kill_a_worker_node_once_results_flow(cluster: Cluster, results: list[Any]) -> None:
    """Wait until the cluster has sent a result back and a little more, then kill a worker node
    (no grace) and add a fresh one, as an autoscaled cluster would."""
    deadline = time.monotonic() + 60
    while not results and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)  # the nodes finished their first tasks together: now both are mid-task
    victim = next(node for node in cluster.worker_nodes)
    cluster.remove_node(victim, allow_graceful=False)
    cluster.add_node(num_cpus=1)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    # the workers import this module (SlowSolver): put its folder on their path
    old_path = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (_HERE, old_path) if p)
    simulated = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    try:
        for _ in range(2):
            simulated.add_node(num_cpus=1)
        ray.init(address=simulated.address, log_to_driver=False)
        yield simulated
    finally:
        ray.shutdown()
        simulated.shutdown()
        if old_path is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old_path


def _rows(store: ResultsStore) -> list[dict[str, Any]]:
    return sorted(
        ({k: v for k, v in asdict(row).items() if k not in TIMINGS} for row in store.rows()),
        key=lambda row: (row["task"], row["seed"], row["episode"]),
    )


def _transcripts(store: ResultsStore) -> list[Any]:
    out = []
    for row in sorted(store.rows(), key=lambda r: (r.task, r.seed, r.episode)):
        turns = store.transcript(row.suite, row.agent, row.task, row.seed, row.episode)
        out.append([{k: v for k, v in turn.items() if "latency" not in k} for turn in turns])
    return out


def test_cluster_store_equals_local_store(cluster: Cluster, tmp_path: Path) -> None:
    suite = parse_suite(SUITE, default_name="ray-test")
    local = ResultsStore(tmp_path / "local.sqlite")
    remote = ResultsStore(tmp_path / "ray.sqlite")
    run_suite(suite, "math-solver", None, local, progress=False)
    summary = run_suite(
        suite, "math-solver", None, remote, progress=False, remote=ray_episodes("auto")
    )
    assert (summary.ran, summary.skipped, summary.failed) == (8, 0, 0)
    assert _rows(remote) == _rows(local)
    assert _transcripts(remote) == _transcripts(local)
    # resume: a second run on the cluster skips everything and writes nothing
    again = run_suite(
        suite, "math-solver", None, remote, progress=False, remote=ray_episodes("auto")
    )
    assert (again.ran, again.skipped) == (0, 8)
    assert len(remote) == 8


@pytest.mark.parametrize("max_retries", [3, 0], ids=["ray-retries", "driver-resubmits"])
def test_losing_a_node_mid_run_loses_and_duplicates_nothing(
    cluster: Cluster, tmp_path: Path, max_retries: int
) -> None:
    """Ray re-runs a lost task (``max_retries``); without Ray's retries the driver submits the
    lost episode again. Either way every episode is recorded once, as a local run records it."""
    suite = parse_suite(SUITE, default_name="ray-test")
    spec = "test_ray_cluster:SlowSolver"
    local = ResultsStore(tmp_path / "local.sqlite")
    run_suite(suite, spec, None, local, progress=False)
    store = ResultsStore(tmp_path / "ray.sqlite")
    added: list[tuple[Any, ...]] = []
    add = store.add

    def counting_add(row: Any, transcript: Any = None) -> bool:
        added.append(row.key)
        return add(row, transcript)

    store.add = counting_add  # type: ignore[method-assign]
    outcome: dict[str, Any] = {}
    lost: list[tuple[str, int, int]] = []
    remote = ray_episodes(
        "auto", max_retries=max_retries, on_lost=lambda key, error: lost.append(key)
    )

    def play() -> None:
        try:
            outcome["summary"] = run_suite(suite, spec, None, store, progress=False, remote=remote)
        except BaseException as error:  # pragma: no cover - reported below
            outcome["error"] = error

    runner = threading.Thread(target=play)
    runner.start()
    _kill_a_worker_node_once_results_flow(cluster, added)
    runner.join(timeout=120)
    assert not runner.is_alive()
    assert "error" not in outcome, outcome.get("error")
    assert outcome["summary"].ran == 8
    assert len(added) == len(set(added)) == 8  # the driver wrote each episode once
    assert _rows(store) == _rows(local)
    assert all(row.stop_reason == "solved" for row in store.rows())
    if max_retries == 0:  # the node died with episodes on it: the driver played them again
        assert lost


def test_cli_refuses_in_process_models(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    store = str(tmp_path / "r.sqlite")
    argv = ["run", "--suite", "smoke", "--agent", "hf:tiny", "--ray", "auto", "--store", store]
    assert main(argv) == 2
    assert "openai:http://HOST:PORT/v1" in capsys.readouterr().err


def _match_suite() -> Suite:
    opponents = "arenagym.envs.textarena.opponents:"
    return Suite(
        "ray-games",
        (),
        players=(
            Player("random", opponents + "RandomLegalOpponent", {"seed": 3}),
            Player("search", opponents + "SearchOpponent"),
        ),
        matches=(MatchTask("nim", "TextArena/Nim-AEC-v0", episodes=2, seeds=(0, 1)),),
    )


def _games(store: ResultsStore) -> list[dict[str, Any]]:
    return sorted(
        ({k: v for k, v in asdict(row).items() if k not in TIMINGS} for row in store.match_rows()),
        key=lambda row: (row["task"], row["lineup"], row["seed"], row["episode"]),
    )


def test_match_suite_on_the_cluster_equals_local(cluster: Cluster, tmp_path: Path) -> None:
    suite = _match_suite()
    local = ResultsStore(tmp_path / "local.sqlite")
    remote = ResultsStore(tmp_path / "ray.sqlite")
    run_matches(suite, local, progress=False)
    summary = run_matches(suite, remote, progress=False, start_game=ray_games("auto"))
    assert (summary.ran, summary.failed) == (8, 0)
    assert _games(remote) == _games(local)
    for row in local.match_rows():
        key = (row.suite, row.task, row.lineup, row.seed, row.episode)
        assert remote.match_transcript(*key) is not None
    again = run_matches(suite, remote, progress=False, start_game=ray_games("auto"))
    assert (again.ran, again.skipped) == (0, 8)


def test_cli_runs_on_the_cluster(cluster: Cluster, tmp_path: Path) -> None:
    store = tmp_path / "r.sqlite"
    argv = ["run", "--suite", "smoke", "--agent", "math-solver", "--ray", "auto"]
    assert main([*argv, "--store", str(store), "--no-progress", "--json"]) == 0
    with ResultsStore(store) as opened:
        assert len(opened) == 4


def test_cli_runs_a_match_suite_on_the_cluster(cluster: Cluster, tmp_path: Path) -> None:
    suite = tmp_path / "games.toml"
    suite.write_text(
        'name = "ray-cli-games"\n'
        '[[players]]\nname = "first-legal"\n'
        'agent = "arenagym.envs.textarena.opponents:FirstLegalOpponent"\n'
        '[[matches]]\nname = "nim"\nenv = "TextArena/Nim-AEC-v0"\nseeds = [0]\n'
    )
    store = tmp_path / "r.sqlite"
    argv = ["run", "--suite", str(suite), "--agent", "math-solver", "--ray", "--store", str(store)]
    assert main([*argv, "--no-progress", "--json"]) in (0, 1)  # math-solver may forfeit
    with ResultsStore(store) as opened:
        assert len(opened.match_rows()) == 2  # both seatings, once each


def test_losing_a_node_mid_match_loses_and_duplicates_nothing(
    cluster: Cluster, tmp_path: Path
) -> None:
    """Games too: without Ray's retries the driver plays a lost game again; each game is
    recorded once, as a local run records it."""
    suite = Suite(
        "ray-lost-games",
        (),
        players=(
            Player("slow", "test_ray_cluster:SlowFirstLegal"),
            Player("search", "arenagym.envs.textarena.opponents:SearchOpponent"),
        ),
        matches=(MatchTask("nim", "TextArena/Nim-AEC-v0", seeds=(0, 1, 2)),),
    )
    local = ResultsStore(tmp_path / "local.sqlite")
    run_matches(suite, local, progress=False)
    store = ResultsStore(tmp_path / "ray.sqlite")
    added: list[Any] = []
    add = store.add_match

    def counting_add(row: Any, transcript: Any = None) -> bool:
        added.append(row.key)
        return add(row, transcript)

    store.add_match = counting_add  # type: ignore[method-assign]
    lost: list[Any] = []
    start = ray_games("auto", max_retries=0, on_lost=lambda key, error: lost.append(key))
    outcome: dict[str, Any] = {}

    def play() -> None:
        try:
            outcome["summary"] = run_matches(
                suite, store, concurrency=4, progress=False, start_game=start
            )
        except BaseException as error:  # pragma: no cover - reported below
            outcome["error"] = error

    runner = threading.Thread(target=play)
    runner.start()
    _kill_a_worker_node_once_results_flow(cluster, added)
    runner.join(timeout=120)
    assert not runner.is_alive()
    assert "error" not in outcome, outcome.get("error")
    assert outcome["summary"].ran == 6
    assert len(added) == len(set(added)) == 6
    assert _games(store) == _games(local)
    assert lost


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("127.0.0.1:1", "nothing answers at that address"),
        ("no-such-host.invalid:6379", "nothing answers at that address"),
        ("nonsense", "expected auto, local, HOST:PORT"),
        ("host:99999", "expected auto, local, HOST:PORT"),
    ],
)
def test_a_cluster_address_that_cannot_work_fails_at_once(
    address: str, message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    started = time.monotonic()
    argv = ["run", "--suite", "smoke", "--agent", "math-solver", "--ray", address]
    assert main([*argv, "--store", str(tmp_path / "s.sqlite")]) == 2
    assert message in capsys.readouterr().err
    assert time.monotonic() - started < 30  # Ray alone would retry for minutes
