"""Run a suite's episodes as Ray tasks across a cluster (``arenagym run --ray``).

The driver (the process running ``arenagym run``) does everything the local runner does except
playing: it checks that the agent and the envs build, skips the episodes the store holds, and
alone writes the store, one transaction per episode. Each episode is one Ray task
(:func:`play_planned_episode` on a worker: the env and a fresh agent are built there from the
suite's task and the agent spec), and its row and encoded transcript stream back to the driver as
soon as it ends. So resume, skip-finished, ``--retry-errors`` and the leaderboard behave exactly
as in a local run.

A lost worker (its process or its node died): Ray re-runs its tasks (``max_retries``); a task
that still never comes back (:class:`ray.exceptions.WorkerCrashedError`, ``NodeDiedError``,
``ObjectLostError``, ...) is submitted again by the driver, up to ``resubmits`` times. An episode
is recorded once: the runner writes the first result of each key and drops any other copy, and a
result is one object (the row and its transcript together), so no half result is ever written.

Agents: anything that builds from its spec on a worker (built-in and scripted agents, a
``package.module:Class`` installed on every node, an ``openai:URL,...`` spec whose server every
node can reach). In-process model agents (``hf:``/``vllm:``) are refused: every worker process
would load its own copy of the model; serve the model (``arenagym serve``, ``vllm serve``) and
give its ``openai:`` spec instead.

Match suites: :func:`ray_games` plays each game (a lineup, a seed, an episode) as one Ray task
in the same way (``run_matches(..., start_game=ray_games(...))``): the driver checks the players,
skips the games the store holds and writes each game's row and transcript once.

Every node needs arenagym (and the suite's env families) installed at the same version as the
driver.

Example:
    >>> from arenagym.benchmarks.runner import run_suite
    >>> from arenagym.benchmarks.suite import load_suite
    >>> run_suite(load_suite("smoke"), "math-solver", None, "results/r.sqlite",
    ...           remote=ray_episodes("auto"))  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future
from contextlib import suppress
from typing import Any

from arenagym.agents import cluster
from arenagym.benchmarks.matches import GameStarter, play_planned_game
from arenagym.benchmarks.runner import (
    AgentClock,
    EpisodePlan,
    RemotePlay,
    RunSetupError,
    play_planned_episode,
)
from arenagym.benchmarks.store import EpisodeRow, MatchRow
from arenagym.benchmarks.transcripts import EncodedTranscript

__all__ = [
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_RESUBMITS",
    "IN_PROCESS_MODEL_KINDS",
    "check_ray_agent",
    "cluster_window",
    "connect",
    "ray_episodes",
    "ray_games",
]

#: Times Ray itself re-runs an episode's task whose worker died (``max_retries``).
DEFAULT_MAX_RETRIES = 3

#: Times the driver submits again an episode whose task never came back after Ray's retries.
DEFAULT_RESUBMITS = 3

#: Agent-spec kinds that load a model into the agent's own process: refused on Ray.
IN_PROCESS_MODEL_KINDS: frozenset[str] = frozenset({"hf", "vllm"})


def check_ray_agent(agent_spec: str) -> None:
    """Raise :class:`~arenagym.benchmarks.runner.RunSetupError` if ``agent_spec`` loads a model
    in its own process (``hf:``/``vllm:``): on Ray each worker process would load one copy.

    Example:
        >>> check_ray_agent("openai:http://10.0.0.5:8000/v1,model=tiny")
        >>> check_ray_agent("hf:smollm2-135m-instruct")
        Traceback (most recent call last):
        ...
        arenagym.benchmarks.runner.RunSetupError: --ray: agent 'hf:...' loads its model ...
    """
    kind = agent_spec.split(":", 1)[0].strip().lower() if ":" in agent_spec else ""
    if kind in IN_PROCESS_MODEL_KINDS:
        raise RunSetupError(
            f"--ray: agent '{kind}:...' loads its model in the agent's own process, so every "
            "Ray worker process would load one copy of it; serve the model instead "
            "(arenagym serve --model NAME, or vllm serve) and give its endpoint as the agent: "
            "--agent openai:http://HOST:PORT/v1,model=NAME"
        )


def connect(address: str) -> Any:
    """Connect this process to the Ray cluster at ``address`` (``"auto"``: the one started on
    this machine with ``ray start``; ``"local"``: start a private one-machine Ray) unless it is
    connected already (:func:`arenagym.agents.cluster.connect`); the ``ray`` module. Raises
    ``RunSetupError`` when Ray is not installed or no cluster answers.

    Example:
        >>> connect("127.0.0.1:1")
        Traceback (most recent call last):
        ...
        arenagym.benchmarks.runner.RunSetupError: --ray 127.0.0.1:1: nothing answers at that address (ConnectionRefusedError); start a cluster with `ray start --head`, or give its address
    """
    try:
        return cluster.connect(address)
    except cluster.ClusterSetupError as error:
        raise RunSetupError(str(error)) from None


def _warn_lost(key: tuple[str, int, int], error: BaseException) -> None:
    task, seed, episode = key
    print(
        f"[ray] episode {task} seed {seed} #{episode} was lost ({type(error).__name__}); "
        "playing it again",
        file=sys.stderr,
        flush=True,
    )


def _play(
    plan: EpisodePlan, task: str, seed: int, episode: int
) -> tuple[EpisodeRow, EncodedTranscript]:
    """The Ray task: one episode on a worker (:func:`play_planned_episode`)."""
    return play_planned_episode(plan, task, seed, episode)


def ray_episodes(
    address: str = "auto",
    *,
    max_in_flight: int | None = None,
    max_retries: int = DEFAULT_MAX_RETRIES,
    resubmits: int = DEFAULT_RESUBMITS,
    num_cpus: float = 1,
    on_lost: Callable[[tuple[str, int, int], BaseException], None] | None = None,
) -> RemotePlay:
    """What :func:`~arenagym.benchmarks.runner.run_suite` takes as ``remote=`` to play the
    episodes as Ray tasks on the cluster at ``address`` (see :func:`connect`).

    Args:
        address: the cluster: ``"auto"``, ``"local"`` or ``HOST:PORT`` / ``ray://HOST:10001``.
        max_in_flight: tasks submitted at once (default twice the cluster's CPUs, at least 2);
            the rest wait on the driver, so a huge suite costs the cluster no memory.
        max_retries: Ray's own re-runs of a task whose worker died.
        resubmits: the driver's re-submissions of an episode whose task never came back.
        num_cpus: CPUs one episode's task reserves on its node.
        on_lost: called with the key ``(task, seed, episode)`` and the error of each episode
            whose task never came back (before it is submitted again); default: a warning on
            stderr.

    Example:
        >>> remote = ray_episodes("auto", max_in_flight=16)
        >>> callable(remote)
        True
    """

    async def play(
        plan: EpisodePlan, keys: list[tuple[str, int, int]]
    ) -> AsyncIterator[tuple[EpisodeRow, EncodedTranscript]]:
        check_ray_agent(plan.agent_spec)
        ray = connect(address)
        lost = cluster.lost_errors(ray)
        task = ray.remote(num_cpus=num_cpus, max_retries=max_retries, retry_exceptions=False)(_play)
        plan_ref = ray.put(plan)
        window = max_in_flight or max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))
        waiting = iter(keys)
        tries: dict[tuple[str, int, int], int] = {}
        running: dict[asyncio.Future[Any], tuple[Any, tuple[str, int, int]]] = {}

        def submit(key: tuple[str, int, int]) -> None:
            tries[key] = tries.get(key, 0) + 1
            ref = task.remote(plan_ref, *key)
            running[asyncio.wrap_future(ref.future())] = (ref, key)

        def fill() -> None:
            while len(running) < window and (key := next(waiting, None)) is not None:
                submit(key)

        try:
            fill()
            while running:
                done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for future in done:
                    _, key = running.pop(future)
                    try:
                        result = future.result()
                    except lost as error:
                        (on_lost or _warn_lost)(key, error)
                        if tries[key] > resubmits:
                            raise RuntimeError(
                                f"episode {key} was lost {tries[key]} times on the Ray "
                                f"cluster ({type(error).__name__}); the others are recorded, "
                                "run the same command again to play it"
                            ) from error
                        submit(key)
                        continue
                    yield result
                fill()
        finally:
            for ref, _ in running.values():
                with suppress(Exception):  # the task or its node is gone already
                    ray.cancel(ref, force=True)

    return play


def cluster_window(address: str = "auto") -> int:
    """Tasks worth keeping in flight on the cluster at ``address``: twice its CPUs, at least 2
    (what ``arenagym run --ray`` uses as the games' concurrency of a match suite).

    Example:
        >>> cluster_window("auto")  # doctest: +SKIP
        8
    """
    ray = connect(address)
    return max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))


def _play_game(
    suite: str, game: Any, call_limit_s: float, episode_limit_s: float
) -> tuple[MatchRow, EncodedTranscript]:
    """The Ray task of one game on a worker (:func:`play_planned_game`)."""
    return play_planned_game(suite, game, call_limit_s, episode_limit_s)


def ray_games(
    address: str = "auto",
    *,
    max_retries: int = DEFAULT_MAX_RETRIES,
    resubmits: int = DEFAULT_RESUBMITS,
    num_cpus: float = 1,
    on_lost: Callable[[tuple[str, int, int], BaseException], None] | None = None,
) -> GameStarter:
    """What :func:`~arenagym.benchmarks.matches.run_matches` takes as ``start_game=`` to play
    each game as a Ray task on the cluster at ``address`` (see :func:`connect`): the game's row
    and transcript come back to the driver, which writes them. A game whose task never comes
    back (its worker or node died, after Ray's ``max_retries``) is submitted again, up to
    ``resubmits`` times; ``on_lost`` hears of each (default: a warning on stderr). The players'
    agents are built on the workers: in-process model players (``hf:``/``vllm:``) are refused
    by :func:`check_ray_agent` (``arenagym run`` checks every player first).

    Example:
        >>> start = ray_games("auto")
        >>> callable(start)
        True
    """
    remote: Any = None

    def start(
        suite: str, game: Any, limits: AgentClock, stop: threading.Event
    ) -> Future[tuple[MatchRow, EncodedTranscript]]:
        nonlocal remote
        ray = connect(address)
        if remote is None:
            remote = ray.remote(num_cpus=num_cpus, max_retries=max_retries, retry_exceptions=False)(
                _play_game
            )
        lost = cluster.lost_errors(ray)
        outer: Future[tuple[MatchRow, EncodedTranscript]] = Future()
        key = (game.task.name, game.seed, game.episode)

        def attempt(tries: int) -> None:
            ref = remote.remote(suite, game, limits.call_limit_s, limits.episode_limit_s)

            def cancel(future: Future[Any]) -> None:
                if future.cancelled():  # the run stopped: the game stops on the cluster too
                    with suppress(Exception):  # the task or its node is gone already
                        ray.cancel(ref, force=True)

            outer.add_done_callback(cancel)

            def done(inner: Future[Any]) -> None:
                if outer.cancelled():  # the run stopped: nobody waits for this game
                    return
                try:
                    result = inner.result()
                except lost as error:
                    if tries > resubmits:
                        outer.set_exception(
                            RuntimeError(
                                f"game {key} of {'-'.join(game.names)} was lost {tries} times "
                                f"on the Ray cluster ({type(error).__name__}); the others are "
                                "recorded, run the same command again to play it"
                            )
                        )
                        return
                    (on_lost or _warn_lost)(key, error)
                    attempt(tries + 1)
                except BaseException as error:
                    outer.set_exception(error)
                else:
                    outer.set_result(result)

            ref.future().add_done_callback(done)

        attempt(1)
        return outer

    return start
