"""Benchmark suites: TOML manifests of tasks (env id + kwargs + episodes + seeds + metric).

A suite file looks like this (every field but ``env``, ``episodes`` and ``seeds`` is optional)::

    name = "math"                        # default: the file's stem
    description = "Math-v0 at three difficulty levels"

    [[tasks]]
    name = "math-d1"                     # default: the env id (+ a digest of kwargs, if any)
    env = "Math-v0"                      # a registered id, or "package.module:Name-v0"
    kwargs = { difficulty = 1 }          # passed to gym.make; must be JSON-serialisable
    episodes = 10                        # per seed
    seeds = [0, 1, 2]
    metric = "clean_reward"              # clean_reward (default) | reward | success
    max_steps = 50                       # safety cap on steps per episode (default 1000)

A suite may also hold two-player (or one-player) games played *between* agents, rated with
OpenSkill (see :mod:`arenagym.benchmarks.matches` and :mod:`arenagym.benchmarks.ratings`)::

    [[players]]                          # who plays the matches (``arenagym run --agent`` adds one)
    name = "random"
    agent = "arenagym.envs.textarena.opponents:RandomLegalOpponent"
    kwargs = { seed = 0 }                # optional

    [[matches]]
    name = "tictactoe"                   # default: the env id
    env = "TextArena/TicTacToe-AEC-v0"   # a multi-agent (PettingZoo) id
    kwargs = {}                          # optional, for make_multi_agent
    episodes = 1                         # games per seed for each seating of each pair
    seeds = [0, 1]
    max_steps = 1000                     # optional safety cap on moves per game

A suite may set the generation budgets of LLM agents (``hf:``, ``vllm:``, ``openai:`` specs), as
lm-evaluation-harness tasks set their ``generation_kwargs``: every LLM agent that plays the suite
(``--agent`` or a ``[[players]]`` entry) gets these values for the keys its own spec and kwargs
do not set, so agents on one leaderboard answer under the same budgets::

    [generation]
    max_tokens = 32                      # completion tokens per reply
    max_total_tokens = 320               # completion tokens per episode (past it: stop_reason
                                         # max_tokens; in a game the seat forfeits)

Each (task, seed, episode) is one fixed episode: the env is reset with
:func:`episode_reset_seed` ``(seed, episode)``, which depends on nothing else (not the agent, not
the order episodes run in), so results of different agents and of resumed runs line up.

Suites are loaded by :func:`load_suite` from a path or by the name of a suite bundled in
``arenagym/benchmarks/suites/``. Every problem in a manifest raises :class:`SuiteError` with a
message that names the file, the task and the field.

Example:
    >>> suite = load_suite("smoke")
    >>> suite.name, [task.name for task in suite.tasks]
    ('smoke', ['math-d1'])
    >>> suite.n_episodes == sum(t.episodes * len(t.seeds) for t in suite.tasks)
    True
    >>> episode_reset_seed(0, 0) == episode_reset_seed(0, 0) != episode_reset_seed(0, 1)
    True
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import json
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import gymnasium as gym

#: What a task's score can be: the episode's summed clean reward (the noiseless score an env puts
#: in ``info["clean_reward"]``, else its reward), its summed raw reward, or 1.0 if it was solved.
METRICS: tuple[str, ...] = ("clean_reward", "reward", "success")

#: Steps per episode after which the runner stops an episode (``stop_reason="max_steps"``).
DEFAULT_MAX_STEPS = 1_000

_SUITE_KEYS = frozenset({"name", "description", "tasks", "players", "matches", "generation"})
#: The keys of a suite's ``[generation]`` table: what it may set for LLM agents.
GENERATION_KEYS: tuple[str, ...] = (
    "max_tokens",
    "max_total_tokens",
    "temperature",
    "top_p",
    "top_k",
    "stop",
)
_PLAYER_KEYS = frozenset({"name", "agent", "kwargs"})
_MATCH_KEYS = frozenset({"name", "env", "kwargs", "episodes", "seeds", "max_steps"})
_TASK_KEYS = frozenset({"name", "env", "kwargs", "episodes", "seeds", "metric", "max_steps"})


class SuiteError(ValueError):
    """A suite manifest that cannot be used; the message names the file, the task and the field."""


@dataclass(frozen=True)
class Task:
    """One line of a suite: ``episodes`` episodes of ``env(**kwargs)`` for each of ``seeds``."""

    name: str
    env: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    episodes: int = 1
    seeds: tuple[int, ...] = (0,)
    metric: str = "clean_reward"
    max_steps: int = DEFAULT_MAX_STEPS

    @property
    def n_episodes(self) -> int:
        """Episodes over all seeds."""
        return self.episodes * len(self.seeds)

    def episode_keys(self) -> Iterator[tuple[int, int]]:
        """Every ``(seed, episode)`` of this task, seed by seed."""
        for seed in self.seeds:
            for episode in range(self.episodes):
                yield seed, episode


@dataclass(frozen=True)
class Player:
    """A contestant of a suite's matches: a name on the leaderboard and an agent spec."""

    name: str
    agent: str
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MatchTask:
    """Games of a multi-agent env between a suite's players, over ``seeds``.

    Every ordered lineup of players (each pair in both seatings; each player alone in a
    one-player game) plays ``episodes`` games per seed.
    """

    name: str
    env: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    episodes: int = 1
    seeds: tuple[int, ...] = (0,)
    max_steps: int = DEFAULT_MAX_STEPS


@dataclass(frozen=True)
class Suite:
    """A named list of tasks (and matches); ``source`` is the file it came from (for messages)."""

    name: str
    tasks: tuple[Task, ...]
    description: str = ""
    source: str = "<string>"
    players: tuple[Player, ...] = ()
    matches: tuple[MatchTask, ...] = ()
    generation: dict[str, Any] = field(default_factory=dict)

    def agent_kwargs(self, agent_spec: str, kwargs: dict[str, Any] | None) -> dict[str, Any]:
        r"""``kwargs`` plus the suite's ``[generation]`` values that an LLM ``agent_spec`` and
        ``kwargs`` leave unset (other agents: ``kwargs`` unchanged).

        Example:
            >>> suite = parse_suite(
            ...     'tasks = [{env = "Math-v0", episodes = 1, seeds = [0]}]\n'
            ...     "[generation]\nmax_tokens = 32\nmax_total_tokens = 320",
            ...     default_name="demo",
            ... )
            >>> suite.agent_kwargs("hf:tiny,max_tokens=64", {"temperature": 0})
            {'temperature': 0, 'max_total_tokens': 320}
            >>> suite.agent_kwargs("random", {"seed": 1})
            {'seed': 1}
        """
        from arenagym.agents.base import parse_llm_spec

        merged = dict(kwargs or {})
        if not self.generation:
            return merged
        try:
            spec = parse_llm_spec(agent_spec)
        except ValueError:  # a bad LLM spec: the agent's own build reports it
            return merged
        if spec is None:
            return merged
        for key, value in self.generation.items():
            if key not in merged and key not in spec.sampling and key not in spec.agent:
                merged[key] = value
        return merged

    @property
    def n_episodes(self) -> int:
        """Episodes over all tasks and seeds."""
        return sum(task.n_episodes for task in self.tasks)

    def task(self, name: str) -> Task:
        """The task called ``name``; raises ``KeyError`` naming the tasks there are."""
        for task in self.tasks:
            if task.name == name:
                return task
        known = ", ".join(task.name for task in self.tasks)
        raise KeyError(f"suite {self.name!r} has no task {name!r}; its tasks: {known}")


def episode_reset_seed(seed: int, episode: int) -> int:
    """The ``env.reset`` seed of episode ``episode`` of seed ``seed``: a stable 32-bit hash.

    A hash rather than ``seed * episodes + episode`` so that changing a task's episode count
    neither moves existing episodes nor makes two seeds share one.
    """
    digest = hashlib.blake2b(f"arenagym-episode:{seed}:{episode}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big")


def bundled_suites() -> list[str]:
    """Names of the suites shipped in ``arenagym/benchmarks/suites/``."""
    folder = resources.files("arenagym.benchmarks").joinpath("suites")
    return sorted(
        entry.name.removesuffix(".toml")
        for entry in folder.iterdir()
        if entry.name.endswith(".toml")
    )


def load_suite(name_or_path: str | Path) -> Suite:
    """Load a suite from a ``.toml`` path, or by the name of a bundled suite (``"math"``)."""
    text_path = str(name_or_path)
    looks_like_path = (
        isinstance(name_or_path, Path)
        or text_path.endswith(".toml")
        or "/" in text_path
        or "\\" in text_path
    )
    if looks_like_path:
        path = Path(name_or_path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise SuiteError(f"{path}: cannot read the suite file ({error.strerror})") from None
        except UnicodeDecodeError as error:
            raise SuiteError(f"{path}: not UTF-8 text ({error.reason})") from None
        return parse_suite(text, source=str(path), default_name=path.stem)
    resource = resources.files("arenagym.benchmarks").joinpath("suites", f"{text_path}.toml")
    if not resource.is_file():
        known = ", ".join(bundled_suites()) or "none"
        raise SuiteError(
            f"unknown suite {text_path!r}: give a path to a .toml file or a bundled suite "
            f"name (bundled: {known})"
        )
    return parse_suite(
        resource.read_text(encoding="utf-8"),
        source=f"<bundled suite {text_path}>",
        default_name=text_path,
    )


def parse_suite(text: str, source: str = "<string>", default_name: str | None = None) -> Suite:
    """Parse and validate the TOML text of a suite; ``source`` names it in error messages."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SuiteError(f"{source}: not valid TOML ({error})") from None
    _check_keys(data, _SUITE_KEYS, source, "the top level")
    name = data.get("name", default_name)
    if name is None:
        raise SuiteError(f"{source}: field 'name' is missing (a suite needs a name)")
    if not isinstance(name, str) or not name.strip():
        raise SuiteError(f"{source}: field 'name' must be a non-empty string, got {name!r}")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise SuiteError(f"{source}: field 'description' must be a string, got {description!r}")
    players, matches = _parse_matches(data, source)
    generation = _parse_generation(data.get("generation", {}), source)
    raw_tasks = data.get("tasks")
    if raw_tasks is None and matches:
        raw_tasks = []
    if raw_tasks is None:
        raise SuiteError(
            f"{source}: field 'tasks' is missing; add at least one [[tasks]] table "
            "(or [[matches]] with [[players]])"
        )
    if not isinstance(raw_tasks, list) or not all(isinstance(t, dict) for t in raw_tasks):
        raise SuiteError(f"{source}: field 'tasks' must be an array of tables ([[tasks]])")
    if not raw_tasks and not matches:
        raise SuiteError(f"{source}: field 'tasks' is empty; add at least one [[tasks]] table")
    tasks: list[Task] = []
    first_index: dict[str, int] = {}
    for index, raw in enumerate(raw_tasks):
        task = _parse_task(raw, source, index)
        if task.name in first_index:
            raise SuiteError(
                f"{source}: tasks[{index}] (name {task.name!r}): field 'name': "
                f"{task.name!r} is already used by tasks[{first_index[task.name]}]; task names "
                "must be unique within a suite (set 'name' on one of them)"
            )
        first_index[task.name] = index
        tasks.append(task)
    return Suite(
        name=name,
        tasks=tuple(tasks),
        description=description,
        source=source,
        players=players,
        matches=matches,
        generation=generation,
    )


def _parse_generation(raw: Any, source: str) -> dict[str, Any]:
    """The ``[generation]`` table: budgets and sampling settings for LLM agents."""
    if not isinstance(raw, dict):
        raise SuiteError(f"{source}: field 'generation' must be a table ([generation])")
    _check_keys(raw, frozenset(GENERATION_KEYS), source, "[generation]")
    for key, value in raw.items():
        where = f"{source}: [generation]: field {key!r}"
        if key in ("max_tokens", "max_total_tokens"):
            ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
            need = "an integer >= 1"
        elif key == "top_k":
            ok = isinstance(value, int) and not isinstance(value, bool) and value >= -1
            need = "an integer >= -1 (-1 or 0: no limit)"
        elif key == "stop":
            ok = isinstance(value, list) and all(isinstance(v, str) and v for v in value)
            need = "a list of non-empty strings"
        elif key == "top_p":
            ok = isinstance(value, int | float) and not isinstance(value, bool) and 0 < value <= 1
            need = "a number in (0, 1]"
        else:  # temperature
            ok = isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
            need = "a number >= 0"
        if not ok:
            raise SuiteError(f"{where} must be {need}, got {value!r}")
    return dict(raw)


def _parse_matches(
    data: dict[str, Any], source: str
) -> tuple[tuple[Player, ...], tuple[MatchTask, ...]]:
    """The ``[[players]]`` and ``[[matches]]`` tables of a suite (both optional)."""
    raw_players = data.get("players", [])
    raw_matches = data.get("matches", [])
    for key, raw in (("players", raw_players), ("matches", raw_matches)):
        if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
            raise SuiteError(f"{source}: field {key!r} must be an array of tables ([[{key}]])")
    players: list[Player] = []
    for index, raw in enumerate(raw_players):
        where = f"{source}: players[{index}]"
        _check_keys(raw, _PLAYER_KEYS, source, f"players[{index}]")
        name, agent, kwargs = raw.get("name"), raw.get("agent"), raw.get("kwargs", {})
        if not isinstance(name, str) or not name.strip():
            raise SuiteError(f"{where}: field 'name' must be a non-empty string, got {name!r}")
        if not isinstance(agent, str) or not agent.strip():
            raise SuiteError(f"{where}: field 'agent' must be an agent spec string, got {agent!r}")
        if not isinstance(kwargs, dict):
            raise SuiteError(f"{where}: field 'kwargs' must be a table, got {kwargs!r}")
        if name in {p.name for p in players}:
            raise SuiteError(f"{where}: field 'name': {name!r} is already used by a player")
        players.append(Player(name, agent, kwargs))
    matches: list[MatchTask] = []
    for index, raw in enumerate(raw_matches):
        where = f"{source}: matches[{index}]"
        _check_keys(raw, _MATCH_KEYS, source, f"matches[{index}]")
        env = raw.get("env")
        if not isinstance(env, str) or not env.strip():
            raise SuiteError(f"{where}: field 'env' must be a multi-agent env id, got {env!r}")
        import arenagym.envs

        known = arenagym.envs.list_envs(multi_agent=True)
        if env not in known:
            close = difflib.get_close_matches(env, list(known), n=3)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            raise SuiteError(f"{where}: field 'env': {env!r} is not a multi-agent id{hint}")
        kwargs = raw.get("kwargs", {})
        episodes, seeds = raw.get("episodes", 1), raw.get("seeds")
        max_steps = raw.get("max_steps", DEFAULT_MAX_STEPS)
        if not isinstance(kwargs, dict):
            raise SuiteError(f"{where}: field 'kwargs' must be a table, got {kwargs!r}")
        if not _is_int(episodes) or episodes < 1:
            raise SuiteError(f"{where}: field 'episodes' must be an integer >= 1")
        if not isinstance(seeds, list) or not seeds or not all(_is_int(s) for s in seeds):
            raise SuiteError(f"{where}: field 'seeds' must be a non-empty list of integers")
        if len(set(seeds)) != len(seeds):
            raise SuiteError(f"{where}: field 'seeds' has repeated seeds: {seeds!r}")
        if not _is_int(max_steps) or max_steps < 1:
            raise SuiteError(f"{where}: field 'max_steps' must be an integer >= 1")
        name = raw.get("name", env)
        if name in {m.name for m in matches}:
            raise SuiteError(f"{where}: field 'name': {name!r} is already used by a match task")
        matches.append(MatchTask(name, env, kwargs, episodes, tuple(seeds), max_steps))
    if matches and not players:
        raise SuiteError(f"{source}: [[matches]] need [[players]] to play them")
    return tuple(players), tuple(matches)


def default_task_name(env: str, kwargs: dict[str, Any]) -> str:
    """``env``, plus a short digest of ``kwargs`` when there are any (stable across runs)."""
    if not kwargs:
        return env
    canonical = json.dumps(kwargs, sort_keys=True, separators=(",", ":"))
    return f"{env}-{hashlib.sha256(canonical.encode()).hexdigest()[:6]}"


def _parse_task(raw: dict[str, Any], source: str, index: int) -> Task:
    label = f"tasks[{index}]"
    if isinstance(raw.get("name"), str):
        label += f" (name {raw['name']!r})"
    where = f"{source}: {label}"
    _check_keys(raw, _TASK_KEYS, source, label)

    env = raw.get("env")
    if env is None:
        raise SuiteError(f"{where}: field 'env' is missing (the env id, e.g. 'Math-v0')")
    if not isinstance(env, str) or not env.strip():
        raise SuiteError(f"{where}: field 'env' must be a non-empty string, got {env!r}")
    _check_env_id(env, where)

    kwargs = raw.get("kwargs", {})
    if not isinstance(kwargs, dict):
        raise SuiteError(f"{where}: field 'kwargs' must be a table, got {kwargs!r}")
    try:
        json.dumps(kwargs, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise SuiteError(
            f"{where}: field 'kwargs' must be JSON-serialisable so results can record it ({error})"
        ) from None

    name = raw.get("name", default_task_name(env, kwargs))
    if not isinstance(name, str) or not name.strip():
        raise SuiteError(f"{where}: field 'name' must be a non-empty string, got {name!r}")

    if "episodes" not in raw:
        raise SuiteError(f"{where}: field 'episodes' is missing (episodes per seed, >= 1)")
    episodes = raw["episodes"]
    if not _is_int(episodes) or episodes < 1:
        raise SuiteError(f"{where}: field 'episodes' must be an integer >= 1, got {episodes!r}")

    if "seeds" not in raw:
        raise SuiteError(f"{where}: field 'seeds' is missing (a list of integers, e.g. [0, 1, 2])")
    seeds = raw["seeds"]
    if not isinstance(seeds, list) or not all(_is_int(seed) for seed in seeds):
        raise SuiteError(f"{where}: field 'seeds' must be a list of integers, got {seeds!r}")
    if not seeds:
        raise SuiteError(f"{where}: field 'seeds' is empty; give at least one seed")
    if len(set(seeds)) != len(seeds):
        raise SuiteError(f"{where}: field 'seeds' has repeated seeds: {seeds!r}")

    metric = raw.get("metric", "clean_reward")
    if metric not in METRICS:
        raise SuiteError(
            f"{where}: field 'metric' must be one of {', '.join(METRICS)}, got {metric!r}"
        )

    max_steps = raw.get("max_steps", DEFAULT_MAX_STEPS)
    if not _is_int(max_steps) or max_steps < 1:
        raise SuiteError(f"{where}: field 'max_steps' must be an integer >= 1, got {max_steps!r}")

    return Task(
        name=name,
        env=env,
        kwargs=kwargs,
        episodes=episodes,
        seeds=tuple(seeds),
        metric=metric,
        max_steps=max_steps,
    )


def _check_keys(table: dict[str, Any], allowed: frozenset[str], source: str, where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise SuiteError(
            f"{source}: {where}: unknown field {unknown[0]!r}"
            + (f" (and {', '.join(map(repr, unknown[1:]))})" if unknown[1:] else "")
            + f"; allowed fields: {', '.join(sorted(allowed))}"
        )


def _check_env_id(env: str, where: str) -> None:
    """Raise unless ``env`` is a Gymnasium id (``Name-v0``, or ``module:Name-v0`` like gym.make)."""
    import arenagym.envs  # noqa: F401  (registers every arenagym id)

    module, _, env_name = env.rpartition(":")
    if module:
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise SuiteError(
                f"{where}: field 'env': cannot import module {module!r} of {env!r} ({error})"
            ) from None
    if env_name in gym.registry:
        return
    close = difflib.get_close_matches(env_name, list(gym.registry), n=3)
    hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
    raise SuiteError(
        f"{where}: field 'env': unknown env id {env_name!r} (not registered with Gymnasium "
        f"after importing arenagym.envs{' and ' + repr(module) if module else ''}){hint} "
        "See `arenagym list`."
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
