"""Every arenagym id as a `verifiers <https://github.com/PrimeIntellect-ai/verifiers>`_ environment.

Why: prime-rl trains on verifiers environments. verifiers 0.4.0 (``verifiers.v1``) builds one from
three plugins, found by id: a *taskset* (config in, tasks out), an *env* (how one task becomes one
episode: ``run(task, agents)``) and a *harness* (the program that asks the model). This module is
all three for arenagym:

- :class:`ArenaTaskset` yields one :class:`ArenaTask` per seed. Its data is the episode's opening
  chat (``system_prompt`` and ``prompt``) plus the columns that rebuild it (``env_id``,
  ``env_kwargs`` as JSON, ``seed``: :func:`~arenagym.envs.integrations.session.dataset_rows`).
- :class:`ArenaEnv` plays the episode turn by turn: the model replies, the reply steps a
  :class:`~arenagym.envs.integrations.session.TextSession` kept in the rollout state
  (:class:`ArenaState`), the env's observation is the next user turn, until the env ends the
  episode (one turn for single-turn ids such as ``Math-v0``; ``max_turns`` caps the others).
  The session is closed when the rollout ends, whatever happened.
- :class:`ArenaTask`'s ``@vf.reward`` ``env_reward`` is the episode's total env reward (its
  rubric); ``clean_reward``, ``turns`` and ``solved`` are ``@vf.metric``\\ s, and the trace's
  ``info["arenagym"]`` keeps the episode's stop reason and totals.
  Garbage replies are the env's business: a penalised step, never an exception.
- :class:`ArenaHarness` asks the model in-process, one chat completion per turn through the
  rollout's interception endpoint (verifiers records and scores what passes there), so nothing is
  installed or launched.

verifiers resolves plugins by an importable top-level module name: arenagym installs
``arenagym_verifiers`` (a re-export of this module), so the id :data:`TASKSET_ID` names it in
``vf-eval`` and prime-rl configs.
:func:`load_environment` builds the env; run it with verifiers' own eval runner::

    from verifiers.v1.cli.eval.runner import run_eval
    from verifiers.v1.configs.cli.eval import EvalConfig
    episodes = asyncio.run(run_eval(EvalConfig(env=env.config, model="tiny", client=...)))

Example:
    >>> env = load_environment("Math-v0", seeds=[0, 1], env_kwargs={"difficulty": 1})
    >>> type(env).__name__, env.config.taskset.id
    ('ArenaEnv', 'arenagym-verifiers')
    >>> task = next(iter(env.taskset))
    >>> task.data.env_id, task.data.env_kwargs, task.data.seed, task.data.name
    ('Math-v0', '{"difficulty": 1}', 0, 'Math-v0#0')
    >>> load_environment("Math-v0", seeds=[-1])
    Traceback (most recent call last):
    ...
    ValueError: seeds: expected ints >= 0, got -1
"""

from __future__ import annotations

import asyncio
import difflib
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import gymnasium as gym

from arenagym.envs.integrations.session import EpisodeRef, TextSession, dataset_rows

try:
    import verifiers.v1 as vf
    from openai import AsyncOpenAI
    from pydantic import ConfigDict, Field, field_validator
    from verifiers.v1.dialects.chat import message_to_wire
    from verifiers.v1.runtimes import ProgramResult, SubprocessConfig
    from verifiers.v1.types import AssistantMessage, content_text
except ImportError as error:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "arenagym.envs.integrations.verifiers needs verifiers >= 0.4 (verifiers.v1): "
        "pip install 'arenagym[verifiers]'"
    ) from error

__all__ = [
    "TASKSET_ID",
    "ArenaEnv",
    "ArenaEnvConfig",
    "ArenaHarness",
    "ArenaHarnessConfig",
    "ArenaState",
    "ArenaTask",
    "ArenaTaskData",
    "ArenaTaskset",
    "ArenaTasksetConfig",
    "load_environment",
]

TASKSET_ID = "arenagym-verifiers"
"""The verifiers plugin id of this module (taskset, env and harness at once)."""


DEFAULT_NUM_EXAMPLES = 10


def _check_env_id(env_id: Any) -> str:
    """``env_id`` when it is a registered id, else a ``ValueError`` naming close ids."""
    if not isinstance(env_id, str) or not env_id:
        raise ValueError(f"env_id: expected an arenagym id such as 'Math-v0', got {env_id!r}")
    import arenagym.envs  # noqa: F401  (registers every id)

    if env_id not in gym.registry:
        close = difflib.get_close_matches(env_id, list(gym.registry), n=3)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"env_id: {env_id!r} is not a registered arenagym id{hint}")
    return env_id


def _check_seeds(seeds: Any) -> list[int]:
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Iterable):
        raise ValueError(f"seeds: expected a list of ints >= 0, got {seeds!r}")
    checked = list(seeds)
    for seed in checked:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seeds: expected ints >= 0, got {seed!r}")
    if not checked:
        raise ValueError("seeds: expected at least one seed, got none")
    return checked


class ArenaTasksetConfig(vf.TasksetConfig):
    """Which episodes to play: an arenagym id, its keyword arguments and the seeds."""

    env_id: str = "Math-v0"
    """The arenagym id (any single-agent text env)."""
    env_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments of ``gymnasium.make(env_id, ...)``."""
    seeds: list[int] = Field(default_factory=lambda: list(range(DEFAULT_NUM_EXAMPLES)))
    """One task per seed, in this order."""

    @field_validator("env_id", mode="before")
    @classmethod
    def _env_id(cls, value: Any) -> str:
        return _check_env_id(value)

    @field_validator("seeds", mode="before")
    @classmethod
    def _seeds(cls, value: Any) -> list[int]:
        return _check_seeds(value)


class ArenaTaskData(vf.TaskData):
    """One episode: its opening chat (``system_prompt``, ``prompt``) and what rebuilds it."""

    env_id: str
    env_kwargs: str = "{}"
    """The env's keyword arguments as a JSON object (one schema for every env)."""
    seed: int | None = None

    @property
    def ref(self) -> EpisodeRef:
        """The episode these columns name."""
        return EpisodeRef.from_columns(self.env_id, self.env_kwargs, self.seed)


class ArenaState(vf.State):
    """Rollout state: the live episode, stepped by :meth:`ArenaEnv.run`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    session: TextSession | None = None


class ArenaTask(vf.Task[ArenaTaskData, ArenaState, vf.TaskConfig]):
    """An arenagym episode; its rubric is the env's own reward."""

    @staticmethod
    def _session(trace: vf.Trace) -> TextSession | None:
        return getattr(trace.state, "session", None)

    @vf.reward
    async def env_reward(self, trace: vf.Trace) -> float:
        """The episode's total env reward (0.0 for an episode that never started)."""
        session = self._session(trace)
        return session.total_reward if session is not None else 0.0

    @vf.metric
    async def clean_reward(self, trace: vf.Trace) -> float:
        """The total clean reward (before reward wrappers; what leaderboards use)."""
        session = self._session(trace)
        return session.total_clean_reward if session is not None else 0.0

    @vf.metric
    async def turns(self, trace: vf.Trace) -> float:
        """How many replies stepped the env."""
        session = self._session(trace)
        return float(session.turns) if session is not None else 0.0

    @vf.metric
    async def solved(self, trace: vf.Trace) -> float:
        """1.0 when the env ended the episode as ``solved``."""
        session = self._session(trace)
        return float(session is not None and session.stop_reason == "solved")


class ArenaTaskset(vf.Taskset[ArenaTask, ArenaTasksetConfig]):
    """One :class:`ArenaTask` per seed of ``config.env_id``."""

    def load(self) -> Iterator[ArenaTask]:
        config = self.config
        for row in dataset_rows(config.env_id, config.seeds, config.env_kwargs):
            messages = row["prompt"]
            system = next((m["content"] for m in messages if m["role"] == "system"), None)
            prompt = next(m["content"] for m in messages if m["role"] == "user")
            data = ArenaTaskData(
                name=f"{row['env_id']}#{row['seed']}",
                prompt=prompt,
                system_prompt=system,
                env_id=row["env_id"],
                env_kwargs=row["env_kwargs"],
                seed=row["seed"],
            )
            yield ArenaTask(data, config.task)


class ArenaHarnessConfig(vf.HarnessConfig):
    """The in-process chat harness has no settings of its own."""


class ArenaHarness(vf.Harness[ArenaHarnessConfig]):
    """One chat completion per segment, asked in-process through the rollout's endpoint.

    The conversation is the task's system prompt and every turn so far, exactly the messages
    arenagym's own chat agent sends; verifiers imposes the model and sampling at its
    interception server and records the reply on the trace.
    """

    APPENDS_SYSTEM_PROMPT = True
    SUPPORTS_RESUME = True
    EXECUTES_CODE = False
    NEEDS_CONTAINER = False

    async def launch(
        self,
        ctx: vf.ModelContext,
        trace: vf.Trace,
        runtime: vf.Runtime,
        endpoint: str,
        secret: str,
        mcp_urls: dict[str, str],
        data: vf.TaskData,
        tool_interception_url: str | None = None,
    ) -> ProgramResult:
        system, prompt = self.resolve_prompt(data)
        messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
        if isinstance(prompt, str):
            messages.append({"role": "user", "content": prompt})
        else:
            messages.extend(message_to_wire(message) for message in prompt or [])
        client = AsyncOpenAI(base_url=endpoint, api_key=secret, max_retries=0)
        try:
            await client.chat.completions.create(model=ctx.model, messages=messages)  # type: ignore[arg-type]
        finally:
            await client.close()
        return ProgramResult(exit_code=0, stdout="", stderr="")


class ArenaEnvConfig(vf.EnvConfig):
    """The env's one seat, ``player``: the policy under evaluation or training."""

    taskset: ArenaTasksetConfig = ArenaTasksetConfig(id=TASKSET_ID)
    player: vf.AgentConfig = vf.AgentConfig(runtime=SubprocessConfig(), network_notice=False)
    """Its harness defaults to :class:`ArenaHarness` (the taskset's own); it runs on the host."""


def _reply_text(segment: vf.Segment) -> str:
    """The model's reply as it wrote it (``Segment.last_reply`` strips whitespace)."""
    for message in reversed(segment.messages):
        if isinstance(message, AssistantMessage):
            return content_text(message.content)
    return segment.last_reply


class ArenaEnv(vf.Env[ArenaEnvConfig]):
    """Plays one arenagym episode per task: each reply steps the env, each observation is the
    next user turn, until the env ends the episode or the player's ``max_turns`` is spent."""

    async def run(self, task: vf.Task, agents: vf.Agents) -> None:
        data = task.data
        if not isinstance(data, ArenaTaskData):
            raise TypeError(f"{type(self).__name__} plays ArenaTask, got {type(task).__name__}")
        session = await asyncio.to_thread(TextSession, data.ref)
        try:
            async with agents.player.interaction(task) as interaction:
                interaction.trace.state.session = session
                segment = await interaction.turn()
                while not segment.terminated:
                    outcome = await asyncio.to_thread(session.send, _reply_text(segment))
                    if outcome.done:
                        break
                    segment = await interaction.turn(outcome.observation)
                interaction.trace.info["arenagym"] = {
                    "stop_reason": session.stop_reason if session.done else "max_turns",
                    "turns": session.turns,
                    "reward": session.total_reward,
                    "clean_reward": session.total_clean_reward,
                }
        finally:
            await asyncio.to_thread(session.close)


def load_environment(
    env_id: str,
    *,
    seeds: Iterable[int] | None = None,
    num_examples: int | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    max_turns: int | None = None,
) -> ArenaEnv:
    """The verifiers environment of ``env_id``: one task per seed.

    Args:
        env_id: a registered single-agent arenagym id (``Math-v0``, ``TextArena/...``).
        seeds: the episodes' seeds; default ``range(num_examples)``.
        num_examples: how many seeds from 0 when ``seeds`` is not given (default 10).
        env_kwargs: keyword arguments of ``gymnasium.make``; must be JSON values.
        max_turns: the most model replies per episode (default: until the env ends it).
    """
    _check_env_id(env_id)
    if seeds is not None and num_examples is not None:
        raise ValueError("seeds, num_examples: give one of them, not both")
    if seeds is None:
        count = DEFAULT_NUM_EXAMPLES if num_examples is None else num_examples
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"num_examples: expected an int >= 1, got {num_examples!r}")
        seeds = range(count)
    seed_list = _check_seeds(seeds)
    if env_kwargs is not None and not isinstance(env_kwargs, Mapping):
        raise ValueError(f"env_kwargs: expected a mapping, got {type(env_kwargs).__name__}")
    kwargs = dict(env_kwargs or {})
    try:
        json.dumps(kwargs)
    except (TypeError, ValueError) as error:
        raise ValueError(f"env_kwargs: must be JSON values ({error})") from None
    if max_turns is not None and (
        isinstance(max_turns, bool) or not isinstance(max_turns, int) or max_turns < 1
    ):
        raise ValueError(f"max_turns: expected an int >= 1 or None, got {max_turns!r}")
    try:
        gym.make(env_id, **kwargs).close()
    except (TypeError, ValueError) as error:
        raise ValueError(f"env_kwargs: {env_id} rejects them ({error})") from None
    default = ArenaEnvConfig.model_fields["player"].default
    config = ArenaEnvConfig(
        taskset=ArenaTasksetConfig(
            id=TASKSET_ID, env_id=env_id, env_kwargs=kwargs, seeds=seed_list
        ),
        player=default.model_copy(update={"max_turns": max_turns}),
    )
    return ArenaEnv(config)
