"""Benchmark suites: TOML manifests of tasks (env id + kwargs + episodes + seeds + metric).

A suite file looks like this (every field but ``env``, ``episodes`` and ``seeds`` is optional)::

    name = "math"                        # default: the file's stem
    description = "Math-v0 at three difficulty levels"

    [[tasks]]
    name = "math-d1"                     # default: the env id (+ a digest of kwargs, if any)
    env = "Math-v0"                      # a registered id, or "package.module:Name-v0"
    kwargs = { difficulty = 1 }          # passed to gym.make; must be JSON-serialisable
    episodes = 10                        # per seed
    seeds = [0, 1, 2]                    # integers from 0 to 2**63 - 1
    metric = "clean_reward"              # clean_reward (default) | reward | success
    max_steps = 50                       # safety cap on steps per episode (default 1000)

A suite may also hold two-player (or one-player) games played *between* agents, rated with
OpenSkill (see :mod:`arenagym.benchmarks.matches` and :mod:`arenagym.benchmarks.ratings`)::

    [[players]]                          # who plays the matches (``arenagym run --agent`` adds one)
    name = "random"
    agent = "arenagym.envs.textarena.opponents:RandomLegalOpponent"
    kwargs = { seed = 0 }                # optional; must be JSON-serialisable

    [[matches]]
    name = "tictactoe"                   # default: the env id
    env = "TextArena/TicTacToe-AEC-v0"   # a multi-agent (PettingZoo) id
    kwargs = {}                          # optional, for make_multi_agent; JSON-serialisable
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

A suite may bound the time an agent gets (``[settings]``; both in seconds, ``inf`` for no
limit). An agent that exceeds either limit ends its episode with ``stop_reason="agent_timeout"``
(a failure of the agent, scored with what it reached, and not replayed by ``--retry-errors``;
in a game it forfeits) and the run goes on::

    [settings]
    agent_call_timeout_s = 600           # one call: building the agent, reset, act (default 600)
    episode_timeout_s = 3600             # the agent's calls of one episode together (default 3600)

(A limit beyond ``threading.TIMEOUT_MAX``, about 292 years, is no limit.)

A suite may say how its leaderboard reads (``[leaderboard]``, see
:mod:`arenagym.benchmarks.leaderboard`)::

    [leaderboard]
    primary_task = "Entity-F1"           # the Overall column is this task's score (default: the
                                         # mean of the task scores, for tasks on one scale); each
                                         # task is then also ranked on its own
    reference_agents = ["pkg.mod:Oracle"]  # agents shown as reference rows, outside the
                                         # ranking (e.g. an oracle upper bound): by name on the
                                         # board, or by spec and kwargs as in the default name
                                         # ("pkg.mod:Oracle(seed=1)")

A task (and a match task, per lineup) holds at most :data:`MAX_TASK_EPISODES` episodes
(``episodes`` times the number of seeds). Messages about a field name the line it is on where the
file has one (``suite.toml:12: tasks[0] (name 'x'): field 'episodes' ...``); a field that is
missing, at the line of its table's header.

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
import json
import math
import re
import sys
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

#: The most episodes one task may hold (``episodes`` x seeds; for a match task, per lineup): a
#: bound that keeps a typo (``episodes = 100000000000``) a clear error instead of a run that
#: never ends.
MAX_TASK_EPISODES = 1_000_000

#: The largest seed of a task: seeds are integers from 0 (Gymnasium's seeds are non-negative)
#: to 2**63 - 1 (the results store keeps them as signed 64-bit SQLite integers).
MAX_SEED = 2**63 - 1

#: Seconds one agent call (building the agent, ``reset``, ``act``) may take by default.
DEFAULT_AGENT_CALL_TIMEOUT_S = 600.0
#: Seconds the agent's calls of one episode (of one seat, in a game) may take together by default.
DEFAULT_EPISODE_TIMEOUT_S = 3600.0

_SUITE_KEYS = frozenset(
    {"name", "description", "tasks", "players", "matches", "generation", "settings", "leaderboard"}
)
_SETTINGS_KEYS = frozenset({"agent_call_timeout_s", "episode_timeout_s"})
_LEADERBOARD_KEYS = frozenset({"primary_task", "reference_agents"})
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
    agent_call_timeout_s: float = DEFAULT_AGENT_CALL_TIMEOUT_S
    episode_timeout_s: float = DEFAULT_EPISODE_TIMEOUT_S
    primary_task: str | None = None
    reference_agents: tuple[str, ...] = ()

    def leaderboard_settings(self) -> dict[str, Any]:
        """What the leaderboard needs to know of this suite (kept in the results store, so that
        ``arenagym leaderboard`` reads it without the suite file): ``task_episodes`` (task ->
        episodes times seeds) tells a complete run from an interrupted one."""
        return {
            "primary_task": self.primary_task,
            "reference_agents": list(self.reference_agents),
            "task_episodes": {task.name: task.n_episodes for task in self.tasks},
        }

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
        from arenagym.agents.specs import parse_llm_spec

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
    except ValueError as error:  # e.g. an integer over Python's digit limit for int(str)
        line = _long_number_line(text)
        if line is None:
            raise SuiteError(f"{source}: not valid TOML ({error})") from None
        limit = sys.get_int_max_str_digits()
        raise SuiteError(
            f"{source}:{line}: not valid TOML (an integer has more than {limit} digits, "
            "more than Python reads)"
        ) from None
    except RecursionError:  # tomllib reads nested arrays and inline tables recursively
        line = _deepest_line(text)
        raise SuiteError(
            f"{source}{f':{line}' if line else ''}: arrays or inline tables nested too deeply "
            "to read (a suite needs a few levels at most)"
        ) from None
    lines = _Lines(text)
    top = _Where(source, "", lines)
    _check_keys(data, _SUITE_KEYS, top)
    name = data.get("name", default_name)
    if name is None:
        raise SuiteError(f"{top('name')}: field 'name' is missing (a suite needs a name)")
    if not isinstance(name, str) or not name.strip():
        raise SuiteError(f"{top('name')}: field 'name' must be a non-empty string, got {name!r}")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise SuiteError(
            f"{top('description')}: field 'description' must be a string, got {description!r}"
        )
    players, matches = _parse_matches(data, source, lines)
    generation = _parse_generation(_table(data, "generation", top), source, lines)
    timeouts = _parse_settings(_table(data, "settings", top), source, lines)
    raw_tasks = data.get("tasks")
    if raw_tasks is None and matches:
        raw_tasks = []
    if raw_tasks is None:
        raise SuiteError(
            f"{source}: field 'tasks' is missing; add at least one [[tasks]] table "
            "(or [[matches]] with [[players]])"
        )
    if not isinstance(raw_tasks, list) or not all(isinstance(t, dict) for t in raw_tasks):
        raise SuiteError(f"{top('tasks')}: field 'tasks' must be an array of tables ([[tasks]])")
    if not raw_tasks and not matches:
        raise SuiteError(
            f"{top('tasks')}: field 'tasks' is empty; add at least one [[tasks]] table"
        )
    tasks: list[Task] = []
    first_index: dict[str, int] = {}
    task_lines = lines if lines.count("tasks") == len(raw_tasks) else None
    for index, raw in enumerate(raw_tasks):
        task = _parse_task(raw, source, index, task_lines)
        if task.name in first_index:
            at = _Where(source, f"tasks[{index}] (name {task.name!r})", task_lines, "tasks", index)
            raise SuiteError(
                f"{at('name')}: field 'name': {task.name!r} is already used by "
                f"tasks[{first_index[task.name]}]; task names must be unique within a suite "
                "(set 'name' on one of them)"
            )
        first_index[task.name] = index
        tasks.append(task)
    primary_task, reference_agents = _parse_leaderboard(
        _table(data, "leaderboard", top), source, lines, [task.name for task in tasks]
    )
    return Suite(
        name=name,
        tasks=tuple(tasks),
        description=description,
        source=source,
        players=players,
        matches=matches,
        generation=generation,
        agent_call_timeout_s=timeouts["agent_call_timeout_s"],
        episode_timeout_s=timeouts["episode_timeout_s"],
        primary_task=primary_task,
        reference_agents=reference_agents,
    )


class _Lines:
    """Where the tables of a suite's TOML text and their fields are (1-based line numbers), so
    that messages can point at them.

    A scan of header lines (``[[tasks]]``, ``[generation]``, ``[tasks.kwargs]``) and
    ``key = ...`` lines, not a TOML parser: a table written inline (``tasks = [{...}]``) has no
    line of its own, and callers use the lines of an array of tables only when the scan found as
    many headers as the parser found tables (:meth:`count`). A sub-table header
    (``[tasks.kwargs]``, after ``[[tasks]]``) is the line of its field (``kwargs``) in the table
    it belongs to; the keys under it are not fields of that table. After a header the scan
    cannot read (quoted keys), keys are not attributed to any table.
    """

    _NAME = r"[A-Za-z0-9_-]+"
    _DOTTED = rf"{_NAME}(?:\s*\.\s*{_NAME})*"
    _ARRAY = re.compile(rf"\[\[\s*({_DOTTED})\s*\]\]\s*(#.*)?$")
    _TABLE = re.compile(rf"\[\s*({_DOTTED})\s*\]\s*(#.*)?$")
    _KEY = re.compile(rf"({_NAME})\s*[.=]")

    def __init__(self, text: str) -> None:
        self._lines: dict[tuple[str, int | None, str], int] = {}
        self._counts: dict[str, int] = {}
        # the table keys now go to: (name, index of an array's table), or None (no table)
        table: tuple[str, int | None] | None = ("", None)
        for number, line in enumerate(text.splitlines(), start=1):
            stripped = line.strip()
            if array := self._ARRAY.match(stripped):
                table = self._header(array[1], number, array=True)
            elif header := self._TABLE.match(stripped):
                table = self._header(header[1], number, array=False)
            elif stripped.startswith("["):  # a header this scan cannot read
                table = None
            elif table is not None and (key := self._KEY.match(stripped)):
                self._lines.setdefault((table[0], table[1], key[1]), number)

    def _header(self, dotted: str, number: int, *, array: bool) -> tuple[str, int | None] | None:
        """Record the header ``[dotted]`` (or ``[[dotted]]``) at line ``number``; the table its
        keys belong to (``None`` for a sub-table: its keys are not fields of a suite table)."""
        parts = [part.strip() for part in dotted.split(".")]
        if len(parts) == 1:
            index = None
            if array:
                index = self._counts.get(parts[0], 0)
                self._counts[parts[0]] = index + 1
            self._lines.setdefault((parts[0], index, ""), number)
            return (parts[0], index)
        # a sub-table of the latest table of an array ([[tasks]] ... [tasks.kwargs]), or of a
        # table ([generation.x]): the line of field parts[1] there
        parent = parts[0]
        count = self._counts.get(parent, 0)
        index = count - 1 if count else None
        self._lines.setdefault((parent, index, parts[1]), number)
        return None

    def count(self, array: str) -> int:
        """How many ``[[array]]`` headers the text has."""
        return self._counts.get(array, 0)

    def line(self, table: str, index: int | None, field: str = "") -> int | None:
        """The line of ``field`` in the table (else of the table's header), or ``None``."""
        return self._lines.get((table, index, field)) or self._lines.get((table, index, ""))


@dataclass(frozen=True)
class _Where:
    """The head of a message about one table of a suite: ``file:line: label``.

    ``fields`` are the keys the table has, when known: a message about a field it lacks points
    at the table's header line.
    """

    source: str
    label: str
    lines: _Lines | None
    table: str = ""
    index: int | None = None
    fields: frozenset[str] | None = None

    def __call__(self, field: str = "") -> str:
        if field and self.fields is not None and field not in self.fields:
            field = ""  # missing: the header's line
        line = self.lines.line(self.table, self.index, field) if self.lines else None
        head = f"{self.source}:{line}" if line else self.source
        return f"{head}: {self.label}" if self.label else head


def _long_number_line(text: str) -> int | None:
    """The line of the first run of more digits than Python's limit for ``int(str)``."""
    limit = sys.get_int_max_str_digits()
    if not limit:
        return None
    match = re.search(rf"[0-9_]{{{limit + 1},}}", text)
    return text.count("\n", 0, match.start()) + 1 if match else None


def _deepest_line(text: str) -> int | None:
    """The line where ``[``/``{`` nesting (outside strings and comments) is deepest."""
    depth = deepest = 0
    where: int | None = None
    quote = ""
    line = 1
    escaped = False
    in_comment = False
    for char in text:
        if char == "\n":
            line += 1
            in_comment = False
        elif in_comment:
            continue
        elif quote:
            if escaped:
                escaped = False
            elif char == "\\" and quote == '"':
                escaped = True
            elif char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char == "#":
            in_comment = True
        elif char in "[{":
            depth += 1
            if depth > deepest:
                deepest, where = depth, line
        elif char in "]}":
            depth = max(depth - 1, 0)
    return where


def _table(data: dict[str, Any], key: str, top: _Where) -> dict[str, Any]:
    """The optional table ``[key]`` of a suite (empty when absent)."""
    raw = data.get(key, {})
    if not isinstance(raw, dict):
        raise SuiteError(f"{top(key)}: field {key!r} must be a table ([{key}])")
    return raw


def _parse_generation(raw: dict[str, Any], source: str, lines: _Lines) -> dict[str, Any]:
    """The ``[generation]`` table: budgets and sampling settings for LLM agents."""
    at = _Where(source, "[generation]", lines, "generation", fields=frozenset(raw))
    _check_keys(raw, frozenset(GENERATION_KEYS), at)
    for key, value in raw.items():
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
            raise SuiteError(f"{at(key)}: field {key!r} must be {need}, got {value!r}")
    return dict(raw)


def _parse_settings(raw: dict[str, Any], source: str, lines: _Lines) -> dict[str, float]:
    """The ``[settings]`` table: the agent's time limits, in seconds (defaults filled in)."""
    at = _Where(source, "[settings]", lines, "settings", fields=frozenset(raw))
    _check_keys(raw, _SETTINGS_KEYS, at)
    defaults = {
        "agent_call_timeout_s": DEFAULT_AGENT_CALL_TIMEOUT_S,
        "episode_timeout_s": DEFAULT_EPISODE_TIMEOUT_S,
    }
    settings: dict[str, float] = {}
    for key, default in defaults.items():
        value = raw.get(key, default)
        if not _is_seconds(value):
            raise SuiteError(
                f"{at(key)}: field {key!r} must be a number of seconds > 0 (inf: no limit), "
                f"got {value!r}"
            )
        try:
            settings[key] = float(value)
        except OverflowError:  # an integer beyond any float: no limit
            settings[key] = math.inf
    return settings


def _parse_leaderboard(
    raw: dict[str, Any], source: str, lines: _Lines, task_names: list[str]
) -> tuple[str | None, tuple[str, ...]]:
    """The ``[leaderboard]`` table: ``(primary_task, reference_agents)``."""
    at = _Where(source, "[leaderboard]", lines, "leaderboard", fields=frozenset(raw))
    _check_keys(raw, _LEADERBOARD_KEYS, at)
    primary = raw.get("primary_task")
    if primary is not None and primary not in task_names:
        known = ", ".join(map(repr, task_names)) or "none"
        raise SuiteError(
            f"{at('primary_task')}: field 'primary_task' must name one of the suite's [[tasks]] "
            f"(its tasks: {known}), got {primary!r}"
        )
    references = raw.get("reference_agents", [])
    if not isinstance(references, list) or not all(
        isinstance(name, str) and name.strip() for name in references
    ):
        raise SuiteError(
            f"{at('reference_agents')}: field 'reference_agents' must be a list of agent names "
            f"or specs, got {references!r}"
        )
    if len(set(references)) != len(references):
        raise SuiteError(
            f"{at('reference_agents')}: field 'reference_agents' has repeated names: {references!r}"
        )
    return primary, tuple(references)


def _parse_matches(
    data: dict[str, Any], source: str, lines: _Lines
) -> tuple[tuple[Player, ...], tuple[MatchTask, ...]]:
    """The ``[[players]]`` and ``[[matches]]`` tables of a suite (both optional)."""
    top = _Where(source, "", lines)
    raw_players = data.get("players", [])
    raw_matches = data.get("matches", [])
    for key, raw in (("players", raw_players), ("matches", raw_matches)):
        if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
            raise SuiteError(f"{top(key)}: field {key!r} must be an array of tables ([[{key}]])")
    player_lines = lines if lines.count("players") == len(raw_players) else None
    players: list[Player] = []
    for index, raw in enumerate(raw_players):
        at = _Where(source, f"players[{index}]", player_lines, "players", index, frozenset(raw))
        _check_keys(raw, _PLAYER_KEYS, at)
        name, agent, kwargs = raw.get("name"), raw.get("agent"), raw.get("kwargs", {})
        if not isinstance(name, str) or not name.strip():
            raise SuiteError(f"{at('name')}: field 'name' must be a non-empty string, got {name!r}")
        if not isinstance(agent, str) or not agent.strip():
            raise SuiteError(
                f"{at('agent')}: field 'agent' must be an agent spec string, got {agent!r}"
            )
        _check_kwargs(kwargs, at)
        if name in {p.name for p in players}:
            raise SuiteError(f"{at('name')}: field 'name': {name!r} is already used by a player")
        players.append(Player(name, agent, kwargs))
    match_lines = lines if lines.count("matches") == len(raw_matches) else None
    matches: list[MatchTask] = []
    for index, raw in enumerate(raw_matches):
        at = _Where(source, f"matches[{index}]", match_lines, "matches", index, frozenset(raw))
        _check_keys(raw, _MATCH_KEYS, at)
        env = raw.get("env")
        if not isinstance(env, str) or not env.strip():
            raise SuiteError(f"{at('env')}: field 'env' must be a multi-agent env id, got {env!r}")
        import arenagym.envs

        known = arenagym.envs.list_envs(multi_agent=True)
        if env not in known:
            close = difflib.get_close_matches(env, list(known), n=3)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            raise SuiteError(f"{at('env')}: field 'env': {env!r} is not a multi-agent id{hint}")
        kwargs = raw.get("kwargs", {})
        episodes, seeds = raw.get("episodes", 1), raw.get("seeds")
        max_steps = raw.get("max_steps", DEFAULT_MAX_STEPS)
        _check_kwargs(kwargs, at)
        if not _is_int(episodes) or episodes < 1:
            raise SuiteError(f"{at('episodes')}: field 'episodes' must be an integer >= 1")
        if not isinstance(seeds, list) or not seeds or not all(_is_int(s) for s in seeds):
            raise SuiteError(f"{at('seeds')}: field 'seeds' must be a non-empty list of integers")
        _check_seed_range(seeds, at)
        if len(set(seeds)) != len(seeds):
            raise SuiteError(f"{at('seeds')}: field 'seeds' has repeated seeds: {seeds!r}")
        _check_size(episodes, len(seeds), at, "a match task may hold per lineup")
        if not _is_int(max_steps) or max_steps < 1:
            raise SuiteError(f"{at('max_steps')}: field 'max_steps' must be an integer >= 1")
        name = raw.get("name", env)
        if not isinstance(name, str) or not name.strip():
            raise SuiteError(f"{at('name')}: field 'name' must be a non-empty string, got {name!r}")
        if name in {m.name for m in matches}:
            raise SuiteError(
                f"{at('name')}: field 'name': {name!r} is already used by a match task"
            )
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


def _parse_task(raw: dict[str, Any], source: str, index: int, lines: _Lines | None) -> Task:
    label = f"tasks[{index}]"
    if isinstance(raw.get("name"), str):
        label += f" (name {raw['name']!r})"
    at = _Where(source, label, lines, "tasks", index, frozenset(raw))
    _check_keys(raw, _TASK_KEYS, at)

    env = raw.get("env")
    if env is None:
        raise SuiteError(f"{at('env')}: field 'env' is missing (the env id, e.g. 'Math-v0')")
    if not isinstance(env, str) or not env.strip():
        raise SuiteError(f"{at('env')}: field 'env' must be a non-empty string, got {env!r}")
    _check_env_id(env, at("env"))

    kwargs = raw.get("kwargs", {})
    _check_kwargs(kwargs, at)

    name = raw.get("name", default_task_name(env, kwargs))
    if not isinstance(name, str) or not name.strip():
        raise SuiteError(f"{at('name')}: field 'name' must be a non-empty string, got {name!r}")

    if "episodes" not in raw:
        raise SuiteError(f"{at('episodes')}: field 'episodes' is missing (episodes per seed, >= 1)")
    episodes = raw["episodes"]
    if not _is_int(episodes) or episodes < 1:
        raise SuiteError(
            f"{at('episodes')}: field 'episodes' must be an integer >= 1, got {episodes!r}"
        )

    if "seeds" not in raw:
        raise SuiteError(
            f"{at('seeds')}: field 'seeds' is missing (a list of integers, e.g. [0, 1, 2])"
        )
    seeds = raw["seeds"]
    if not isinstance(seeds, list) or not all(_is_int(seed) for seed in seeds):
        raise SuiteError(f"{at('seeds')}: field 'seeds' must be a list of integers, got {seeds!r}")
    if not seeds:
        raise SuiteError(f"{at('seeds')}: field 'seeds' is empty; give at least one seed")
    _check_seed_range(seeds, at)
    if len(set(seeds)) != len(seeds):
        raise SuiteError(f"{at('seeds')}: field 'seeds' has repeated seeds: {seeds!r}")
    _check_size(episodes, len(seeds), at, "a task may hold")

    metric = raw.get("metric", "clean_reward")
    if metric not in METRICS:
        raise SuiteError(
            f"{at('metric')}: field 'metric' must be one of {', '.join(METRICS)}, got {metric!r}"
        )

    max_steps = raw.get("max_steps", DEFAULT_MAX_STEPS)
    if not _is_int(max_steps) or max_steps < 1:
        raise SuiteError(
            f"{at('max_steps')}: field 'max_steps' must be an integer >= 1, got {max_steps!r}"
        )

    return Task(
        name=name,
        env=env,
        kwargs=kwargs,
        episodes=episodes,
        seeds=tuple(seeds),
        metric=metric,
        max_steps=max_steps,
    )


def _check_kwargs(kwargs: Any, at: _Where) -> None:
    """Raise unless ``kwargs`` is a table that JSON can record (as the results store does)."""
    if not isinstance(kwargs, dict):
        raise SuiteError(f"{at('kwargs')}: field 'kwargs' must be a table, got {kwargs!r}")
    try:
        json.dumps(kwargs, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as error:
        raise SuiteError(
            f"{at('kwargs')}: field 'kwargs' must be JSON-serialisable so results can record it "
            f"({type(error).__name__ if isinstance(error, RecursionError) else error})"
        ) from None


def _check_seed_range(seeds: list[int], at: _Where) -> None:
    """Raise unless every seed is from 0 to :data:`MAX_SEED`."""
    for seed in seeds:
        if not 0 <= seed <= MAX_SEED:
            raise SuiteError(
                f"{at('seeds')}: field 'seeds': seed {seed} is out of range; seeds are integers "
                f"from 0 to {MAX_SEED} (2**63 - 1)"
            )


def _check_size(episodes: int, n_seeds: int, at: _Where, holder: str) -> None:
    """Raise unless ``episodes`` per seed over ``n_seeds`` seeds stay within the bound."""
    if episodes * n_seeds > MAX_TASK_EPISODES:
        raise SuiteError(
            f"{at('episodes')}: field 'episodes': {episodes:,} episodes x {n_seeds} seed(s) is "
            f"more than the {MAX_TASK_EPISODES:,} episodes {holder} (MAX_TASK_EPISODES); "
            "lower 'episodes' or split the task"
        )


def _check_keys(table: dict[str, Any], allowed: frozenset[str], at: _Where) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        head = at(unknown[0]) if at.label else f"{at(unknown[0])}: the top level"
        raise SuiteError(
            f"{head}: unknown field {unknown[0]!r}"
            + (f" (and {', '.join(map(repr, unknown[1:]))})" if unknown[1:] else "")
            + f"; allowed fields: {', '.join(sorted(allowed))}"
        )


def _check_env_id(env: str, where: str) -> None:
    """Raise unless ``env`` is a Gymnasium id (``Name-v0``, or ``module:Name-v0`` like gym.make)."""
    import arenagym.envs  # noqa: F401  (registers every arenagym id)
    from arenagym.envs.core.loading import LoadError, import_modules

    module, _, env_name = env.rpartition(":")
    if module:  # gym.make's "module:Name-v0": the module registers the id
        try:
            import_modules([module], what="module")
        except LoadError as error:
            raise SuiteError(f"{where}: field 'env' {env!r}: {error}") from None
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


def _is_seconds(value: Any) -> bool:
    """Whether ``value`` is a time limit: a number > 0 (``inf`` allowed, ``nan`` not)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0
