"""Playing one episode of a single-agent env: the one loop the benchmark runner and the rollout
engine share.

Both play an episode the same way, so it is written once, here, in :func:`aplay_episode`:

1. make the env and ``reset(seed=..., options=...)`` it; ``info["system_prompt"]`` and
   ``info["task_id"]`` of the reset are the episode's;
2. build the agent and ``reset`` it with the system prompt;
3. until the env ends the episode or the turn limit is reached (``max_steps``: then the stop
   reason is ``max_steps_reason``): ``act`` on the observation, ``step`` the env with the
   action, add up ``reward`` and ``clean_reward`` (``info["clean_reward"]``, else the reward;
   leaderboards use the clean one), count ``info["invalid_action"]``, keep the latest
   ``info["reward_components"]``;
4. an episode the env ends gets the env's ``info["stop_reason"]`` (else ``"terminated"`` /
   ``"truncated"``, :func:`env_ending`), and an env that reports its own fault
   (``stop_reason="env_error"``) has its ``info["error"]`` kept;
5. an agent that raises :class:`~arenagym.agents.agent.EpisodeStop` ends the episode with its own
   stop reason (not an error); an :class:`EpisodeFailure` ends it with the failure's stop reason
   and error: every env call that raises is ``env_error``; what an agent call that fails or runs
   out of time is, its caller's :class:`AgentCalls` says;
6. the env is closed whatever happened; a failure to close is recorded, never raised.

The result is an :class:`EpisodeResult`; each caller turns it into its own record (a results-store
row, a :class:`~arenagym.agents.rollout.Trajectory`). :func:`play_episode` runs the same loop
from synchronous code.

What callers choose, and why they differ:

- **How the agent is called** (:class:`AgentCalls`). The benchmark runner plays untrusted agents
  under the suite's time limits: each call runs on an agent thread (or, for ``async`` agents, a
  separate agent event loop) so that a hung agent can be abandoned, and an ``EpisodeStop`` whose
  reason only an env or the runner may give is refused as an ``agent_error``. The rollout engine
  plays its own :class:`~arenagym.agents.chat.ChatAgent` and awaits ``aact`` directly on the
  engine's event loop, because its :class:`~arenagym.agents.batching.BatchingQueue` batches the
  generation of every episode waiting on that loop (a thread hop and a timer per call would only
  add latency), and it records a failed generation as ``env_error`` (infrastructure, from the
  trainer's point of view: a step whose episodes all end in ``env_error`` stops the run), while
  an ``agent_factory`` or ``reset`` that raises is the trainer's bug and propagates.
- **Where env calls run** (``run_env``): each caller's own thread pool (:func:`in_executor`), so
  a slow env never holds up the event loop; :func:`play_episode` runs them inline.
- **The turn limit and its name**: a suite task's ``max_steps`` (``"max_steps"``), the rollout
  config's ``max_turns`` (``"max_turns"``).
- **What is kept per step** (``on_step``): the rollout engine keeps every turn with its token ids
  for training; the runner keeps only the totals.

The match runner (:mod:`arenagym.benchmarks.matches`) does not use this loop: its games are
PettingZoo AEC envs, with several seats in one env, the turn order from ``agent_iter``, a reward
per seat from ``env.last()``, seats that end at different times, and a seat whose agent fails
forfeiting the game. It shares the pieces that are the same: :class:`EpisodeFailure` for an agent
call that ends the game, :func:`env_ending` for the reasons the env gives, and the runner's timed
agent calls.

Example:
    >>> import gymnasium as gym
    >>> import arenagym.envs
    >>> from arenagym.agents.baselines import MathSolverAgent
    >>> result = play_episode(lambda: gym.make("Math-v0", difficulty=1), MathSolverAgent, seed=0)
    >>> result.stop_reason, result.turns, result.clean_reward
    ('solved', 1, 1.0)
"""

from __future__ import annotations

import asyncio
import inspect
import traceback
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from arenagym.agents.agent import EpisodeStop

__all__ = [
    "AgentCalls",
    "EnvStep",
    "EpisodeFailure",
    "EpisodeResult",
    "aplay_episode",
    "close_quietly",
    "describe",
    "env_ending",
    "in_executor",
    "no_stop_iteration",
    "play_episode",
]

T = TypeVar("T")

#: How :func:`aplay_episode` runs a blocking env call: ``await run_env(call)``.
RunEnv = Callable[[Callable[[], Any]], Awaitable[Any]]


class EpisodeFailure(Exception):
    """Raised inside an episode to end it with ``stop_reason`` (``env_error``, ``agent_error``,
    ``agent_timeout``...) because of ``error``; ``trace`` replaces the error's own traceback in
    the record when given (e.g. where a timed-out agent was stuck)."""

    def __init__(self, stop_reason: str, error: BaseException, trace: str | None = None) -> None:
        super().__init__(stop_reason)
        self.stop_reason = stop_reason
        self.error = error
        self.trace = trace

    @property
    def trace_text(self) -> str:
        """``trace``, or else the formatted traceback of ``error``."""
        return self.trace or "".join(traceback.format_exception(self.error))


def describe(error: BaseException) -> str:
    """``"TypeName: message"``: how records show an error.

    >>> describe(ValueError("bad move"))
    'ValueError: bad move'
    """
    return f"{type(error).__name__}: {error}"


def no_stop_iteration[R](function: Callable[..., R], /, *args: Any, **kwargs: Any) -> R:
    """``function(*args, **kwargs)``, with a ``StopIteration`` it raises re-raised as a
    ``RuntimeError`` caused by it (as a generator does): a future cannot carry StopIteration
    into asyncio (``asyncio.wrap_future`` would never resolve).

    Example:
        >>> no_stop_iteration(next, iter([]))
        Traceback (most recent call last):
        ...
        RuntimeError: the call raised StopIteration()
    """
    try:
        return function(*args, **kwargs)
    except StopIteration as error:
        raise RuntimeError(f"the call raised {error!r}") from error


def env_ending(terminated: bool, truncated: bool, info: Mapping[str, Any]) -> str:
    """The stop reason of an episode (or a game seat) the env ended: ``info["stop_reason"]``,
    else ``"terminated"`` / ``"truncated"``.

    >>> env_ending(True, False, {"stop_reason": "solved"}), env_ending(False, True, {})
    ('solved', 'truncated')
    """
    return str(info.get("stop_reason") or ("terminated" if terminated else "truncated"))


def close_quietly(env: Any) -> str | None:
    """Close ``env``; the error (:func:`describe`) if closing raised: an episode's result stands
    whether or not its env closes cleanly."""
    try:
        env.close()
    except Exception as error:
        return describe(error)
    return None


def in_executor(executor: Executor | None = None) -> RunEnv:
    """``run_env`` for :func:`aplay_episode`: each env call on ``executor`` (``None``: the event
    loop's default one). Whatever the call raises there — ``SystemExit`` and
    ``KeyboardInterrupt`` included: on a pool thread they are the env's, never the user's Ctrl-C —
    ends the episode as ``env_error``; ``StopIteration`` is carried as a ``RuntimeError``
    (:func:`no_stop_iteration`)."""

    async def run(call: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(executor, no_stop_iteration, call)
        except asyncio.CancelledError:
            raise
        except BaseException as error:
            raise EpisodeFailure("env_error", error) from error

    return run


async def _inline[R](call: Callable[[], R]) -> R:
    return call()


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


class AgentCalls:
    """How :func:`aplay_episode` builds its agent and calls it; override to run the calls
    elsewhere or under limits (the benchmark runner) or to judge failures differently (the
    rollout engine).

    Each method may raise :class:`~arenagym.agents.agent.EpisodeStop` (the agent ends the episode
    with a stop reason of its own) or :class:`EpisodeFailure` (the episode ends with that
    failure); anything else propagates out of :func:`aplay_episode`. By default ``build()`` calls
    ``build``, and ``reset`` / ``act`` await the agent's ``areset`` / ``aact`` coroutines where
    it has them, else call ``reset`` / ``act``; an ``Exception`` from any of them ends the
    episode with :attr:`failure_reason`.
    """

    #: The stop reason of an episode whose agent call raised.
    failure_reason: str = "agent_error"

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build = build

    async def build(self) -> Any:
        """A new agent for the episode."""
        return await self.call(self._build)

    async def reset(self, agent: Any, system_prompt: str) -> None:
        """Start ``agent``'s episode with ``system_prompt``."""
        await self.call(self.method(agent, "reset"), system_prompt)

    async def act(self, agent: Any, observation: Any, turn: int) -> str:
        """``agent``'s action for ``observation`` in turn ``turn`` (1-based)."""
        return await self.call(self.method(agent, "act"), observation)

    @staticmethod
    def method(agent: Any, name: str) -> Callable[..., Any]:
        """``agent.a<name>`` if it is a coroutine function, else ``agent.<name>``."""
        coroutine = getattr(agent, "a" + name, None)
        return coroutine if inspect.iscoroutinefunction(coroutine) else getattr(agent, name)

    async def call(self, function: Callable[..., Any], *args: Any) -> Any:
        """``function(*args)``, awaited if it returns an awaitable; an ``Exception`` it raises
        (other than EpisodeStop / EpisodeFailure) as an :class:`EpisodeFailure`."""
        try:
            return await _maybe_await(function(*args))
        except (EpisodeStop, EpisodeFailure):
            raise
        except Exception as error:
            raise EpisodeFailure(self.failure_reason, error) from error


@dataclass(frozen=True)
class EnvStep:
    """One step of an episode, as :func:`aplay_episode` gives it to ``on_step``: what the agent
    saw, what it did, and what the env answered."""

    observation: Any
    action: str
    reward: float
    terminated: bool
    truncated: bool
    info: Mapping[str, Any]


@dataclass
class EpisodeResult:
    """What happened in one episode (see the module docstring for how each field is counted).

    ``env_stop_reason`` is set only when the env itself ended the episode (``""`` when the agent
    or the caller did: a stop, a failure, the turn limit); ``reset_info`` is ``None`` until the
    env's reset returned; ``observation`` is the latest observation (after the reset: the task
    prompt); ``env_error`` is the ``info["error"]`` of an env that ended the episode with
    ``stop_reason="env_error"``; ``stop`` the agent's accepted
    :class:`~arenagym.agents.agent.EpisodeStop`, ``failure`` the :class:`EpisodeFailure` that
    ended the episode; ``agent`` the agent built for it (``None`` if none was).
    """

    stop_reason: str = ""
    env_stop_reason: str = ""
    reset_info: Mapping[str, Any] | None = None
    observation: Any = ""
    turns: int = 0
    reward: float = 0.0
    clean_reward: float = 0.0
    invalid_actions: int = 0
    reward_components: Any = None
    env_error: Any = None
    stop: EpisodeStop | None = None
    failure: EpisodeFailure | None = None
    close_error: str | None = None
    agent: Any = None

    @property
    def system_prompt(self) -> str:
        """The reset's ``info["system_prompt"]`` (``""`` without one)."""
        return str((self.reset_info or {}).get("system_prompt", ""))

    @property
    def task_id(self) -> Any:
        """The reset's ``info["task_id"]`` (``None`` without one)."""
        return (self.reset_info or {}).get("task_id")


async def aplay_episode(
    make_env: Callable[[], Any],
    calls: AgentCalls,
    *,
    seed: int | None = None,
    options: Mapping[str, Any] | None = None,
    max_steps: int | None = None,
    max_steps_reason: str = "max_steps",
    run_env: RunEnv | None = None,
    on_step: Callable[[EnvStep], None] | None = None,
) -> EpisodeResult:
    """Play one episode of the env ``make_env()`` builds with the agent ``calls`` builds; see
    the module docstring.

    Args:
        make_env: builds the env (e.g. ``partial(gym.make, env_id, **kwargs)``).
        calls: builds and calls the agent (:class:`AgentCalls`).
        seed: the reset's seed.
        options: the reset's options (passed only when given).
        max_steps: the most agent actions (``None``: no limit but the env's).
        max_steps_reason: the stop reason of an episode that reached ``max_steps``.
        run_env: runs each blocking env call (default :func:`in_executor` on the loop's
            default executor).
        on_step: called after each successful step with its :class:`EnvStep`.
    """
    run = run_env or in_executor()
    result = EpisodeResult()

    async def env_call(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return await run(partial(function, *args, **kwargs))
        except EpisodeFailure:
            raise
        except Exception as error:
            raise EpisodeFailure("env_error", error) from error

    env: Any = None
    reset_kwargs: dict[str, Any] = {"seed": seed}
    if options is not None:
        reset_kwargs["options"] = dict(options)
    try:
        env = await env_call(make_env)
        result.observation, result.reset_info = await env_call(env.reset, **reset_kwargs)
        agent = result.agent = await calls.build()
        await calls.reset(agent, result.system_prompt)
        while True:
            if max_steps is not None and result.turns >= max_steps:
                result.stop_reason = max_steps_reason
                break
            seen = result.observation
            action = await calls.act(agent, seen, result.turns + 1)
            observation, reward, terminated, truncated, info = await env_call(env.step, action)
            result.observation = observation
            result.turns += 1
            result.reward += float(reward)
            result.clean_reward += float(info.get("clean_reward", reward))
            result.invalid_actions += bool(info.get("invalid_action", False))
            if "reward_components" in info:
                result.reward_components = info["reward_components"]
            if on_step is not None:
                on_step(EnvStep(seen, action, float(reward), terminated, truncated, info))
            if terminated or truncated:
                result.stop_reason = result.env_stop_reason = env_ending(
                    terminated, truncated, info
                )
                if result.stop_reason == "env_error" and "error" in info:  # the env's own report
                    result.env_error = info["error"]
                break
    except EpisodeStop as stop:  # the agent ends the episode on purpose (e.g. context_overflow)
        result.stop_reason = stop.stop_reason
        result.stop = stop
    except EpisodeFailure as failure:
        result.stop_reason = failure.stop_reason
        result.failure = failure
    finally:
        if env is not None:
            try:
                result.close_error = await run(partial(close_quietly, env))
            except EpisodeFailure as failure:  # close raised SystemExit on a pool thread
                result.close_error = describe(failure.error)
    return result


def play_episode(
    make_env: Callable[[], Any],
    build_agent: Callable[[], Any],
    *,
    seed: int | None = None,
    options: Mapping[str, Any] | None = None,
    max_steps: int | None = None,
    max_steps_reason: str = "max_steps",
    on_step: Callable[[EnvStep], None] | None = None,
) -> EpisodeResult:
    """:func:`aplay_episode` from synchronous code, with the default :class:`AgentCalls` on
    ``build_agent`` and every env call inline. Not callable from inside a running event loop
    (await :func:`aplay_episode` there)."""
    return asyncio.run(
        aplay_episode(
            make_env,
            AgentCalls(build_agent),
            seed=seed,
            options=options,
            max_steps=max_steps,
            max_steps_reason=max_steps_reason,
            run_env=_inline,
            on_step=on_step,
        )
    )
