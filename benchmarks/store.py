"""The results store: one SQLite row per finished benchmark episode, written atomically.

Why SQLite: a run is resumable only if every finished episode survives a crash at any moment and
is never counted twice. Each row goes in with its own ``INSERT OR IGNORE`` transaction on the
UNIQUE key ``(suite, task, agent, seed, episode)``, in WAL mode, so a killed run loses at most
the episodes in flight, a re-run skips what is there (:meth:`ResultsStore.finished_keys`), and two
runs racing on the same episode keep the first row. Several processes may share one file.

Beside the episodes, the store keeps what the leaderboard needs to know of each suite (its
primary task and reference agents, from the suite's ``[leaderboard]`` table), written by the
runner, so that ``arenagym leaderboard`` reads a store without the suite files.

The schema version is kept in a ``meta`` table; a file written by an unknown version is refused
with :class:`StoreError` rather than misread.

Example:
    >>> store = ResultsStore(":memory:")
    >>> row = EpisodeRow(suite="s", task="t", env_id="Math-v0", env_kwargs={}, agent="random",
    ...                  seed=0, episode=0, reset_seed=1, metric="success", score=1.0,
    ...                  reward=1.0, clean_reward=1.0, turns=1, stop_reason="solved")
    >>> store.add(row), store.add(row)
    (True, False)
    >>> store.finished_keys("s", "random")
    {('t', 0, 0)}
    >>> store.rows()[0].stop_reason
    'solved'
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

#: The version of the table layout below; bump it (and migrate) when the layout changes.
SCHEMA_VERSION = 1

#: Stop reasons the runner records when an episode could not be played to its end.
ERROR_STOP_REASONS: frozenset[str] = frozenset({"agent_error", "env_error"})

#: The stop reason of an episode whose agent ran past a time limit of its suite: a failure of the
#: agent, scored with what it reached; not an error row, so ``--retry-errors`` does not replay it.
AGENT_TIMEOUT = "agent_timeout"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS episodes (
    id           INTEGER PRIMARY KEY,
    suite        TEXT    NOT NULL,
    task         TEXT    NOT NULL,
    env_id       TEXT    NOT NULL,
    env_kwargs   TEXT    NOT NULL,  -- JSON object
    agent        TEXT    NOT NULL,  -- the agent's name on the leaderboard
    agent_spec   TEXT    NOT NULL,  -- what load_agent was given
    agent_kwargs TEXT    NOT NULL,  -- JSON object
    seed         INTEGER NOT NULL,
    episode      INTEGER NOT NULL,
    reset_seed   INTEGER NOT NULL,
    metric       TEXT    NOT NULL,
    score        REAL    NOT NULL,  -- the task's metric for this episode
    reward       REAL    NOT NULL,  -- sum of raw step rewards
    clean_reward REAL    NOT NULL,  -- sum of info["clean_reward"] (else the reward)
    turns        INTEGER NOT NULL,
    stop_reason  TEXT    NOT NULL,
    info         TEXT    NOT NULL,  -- JSON object: final reward_components, task_id, error, ...
    started_at   REAL    NOT NULL,  -- Unix time
    finished_at  REAL    NOT NULL,  -- Unix time
    duration_s   REAL    NOT NULL,
    UNIQUE (suite, task, agent, seed, episode)
);
CREATE INDEX IF NOT EXISTS episodes_by_suite_agent ON episodes (suite, agent);
CREATE TABLE IF NOT EXISTS matches (
    id           INTEGER PRIMARY KEY,
    suite        TEXT    NOT NULL,
    task         TEXT    NOT NULL,
    env_id       TEXT    NOT NULL,
    env_kwargs   TEXT    NOT NULL,  -- JSON object
    lineup       TEXT    NOT NULL,  -- JSON list: the player names by seat
    seed         INTEGER NOT NULL,
    episode      INTEGER NOT NULL,
    reset_seed   INTEGER NOT NULL,
    rewards      TEXT    NOT NULL,  -- JSON list: each seat's final reward
    moves        INTEGER NOT NULL,
    stop_reason  TEXT    NOT NULL,  -- e.g. won/lost/draw of seat 0, or agent_error/env_error
    info         TEXT    NOT NULL,  -- JSON object
    finished_at  REAL    NOT NULL,
    duration_s   REAL    NOT NULL,
    UNIQUE (suite, task, lineup, seed, episode)
);
CREATE TABLE IF NOT EXISTS suites (
    suite        TEXT PRIMARY KEY,
    leaderboard  TEXT NOT NULL      -- JSON object: the suite's [leaderboard] settings
);
"""


class StoreError(RuntimeError):
    """The results file cannot be used (not SQLite, not ours, or an unknown schema version)."""


@dataclass(frozen=True)
class EpisodeRow:
    """One finished episode, as stored. ``score`` is the value of ``metric`` for the episode."""

    suite: str
    task: str
    env_id: str
    env_kwargs: dict[str, Any]
    agent: str
    seed: int
    episode: int
    reset_seed: int
    metric: str
    score: float
    reward: float
    clean_reward: float
    turns: int
    stop_reason: str
    info: dict[str, Any] = field(default_factory=dict)
    agent_spec: str = ""
    agent_kwargs: dict[str, Any] = field(default_factory=dict)
    started_at: float = 0.0
    finished_at: float = 0.0
    duration_s: float = 0.0

    @property
    def key(self) -> tuple[str, str, str, int, int]:
        """The unique key: ``(suite, task, agent, seed, episode)``."""
        return (self.suite, self.task, self.agent, self.seed, self.episode)

    @property
    def is_error(self) -> bool:
        """Whether the episode ended because the agent or the env raised."""
        return self.stop_reason in ERROR_STOP_REASONS


@dataclass(frozen=True)
class MatchRow:
    """One finished game between agents: who sat where, and each seat's final reward.

    Added to schema version 1 as a new table (older files gain it when opened), so version-1
    files from before it stay readable.
    """

    suite: str
    task: str
    env_id: str
    env_kwargs: dict[str, Any]
    lineup: tuple[str, ...]
    seed: int
    episode: int
    reset_seed: int
    rewards: tuple[float, ...]
    moves: int
    stop_reason: str
    info: dict[str, Any] = field(default_factory=dict)
    finished_at: float = 0.0
    duration_s: float = 0.0

    @property
    def key(self) -> tuple[str, str, tuple[str, ...], int, int]:
        """The unique key: ``(suite, task, lineup, seed, episode)``."""
        return (self.suite, self.task, self.lineup, self.seed, self.episode)

    @property
    def is_error(self) -> bool:
        """Whether the game stopped because an agent or the env raised (an agent's error is rated as
        its forfeit, ``info["forfeit"]``; an env error is not rated)."""
        return self.stop_reason in ERROR_STOP_REASONS


_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(EpisodeRow))
_MATCH_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(MatchRow))
_MATCH_JSON = frozenset({"env_kwargs", "lineup", "rewards", "info"})
_JSON_COLUMNS = frozenset({"env_kwargs", "info", "agent_kwargs"})


class ResultsStore:
    """A SQLite file of :class:`EpisodeRow` s; ``":memory:"`` gives a throwaway store.

    Safe to use from several threads (calls are serialised) and several processes (SQLite's
    locking, WAL mode, a 30 s busy timeout). Use it as a context manager, or call :meth:`close`.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            if Path(self.path).is_dir():
                raise StoreError(
                    f"{self.path} is a directory; a results store is one SQLite file (e.g. "
                    f"{Path(self.path) / 'arenagym.sqlite'})"
                )
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(
                self.path, timeout=30.0, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as error:
            raise StoreError(f"{self.path}: cannot open the results store ({error})") from None
        self._db.row_factory = sqlite3.Row
        try:
            self._init_schema()
        except sqlite3.DatabaseError as error:
            self._db.close()
            raise StoreError(f"{self.path}: cannot use as a results store ({error})") from None
        except BaseException:
            self._db.close()
            raise

    def _init_schema(self) -> None:
        db = self._db
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")  # durable against process crashes in WAL mode
        db.execute("BEGIN IMMEDIATE")  # one process creates the tables; others wait and see them
        try:
            tables = {
                row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            if tables and "meta" not in tables:
                raise StoreError(
                    f"{self.path}: not an arenagym results store (an SQLite file without a "
                    f"'meta' table; it has {', '.join(sorted(tables))})"
                )
            version = None
            if "meta" in tables:
                found = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
                version = None if found is None else found[0]
            if version is not None and version != str(SCHEMA_VERSION):
                raise StoreError(
                    f"{self.path}: results store schema version {version} is not supported by "
                    f"this arenagym (it reads version {SCHEMA_VERSION}); use the arenagym "
                    "version that wrote it, or a new store file"
                )
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    # ----------------------------------------------------------------------------- writing
    def add(self, row: EpisodeRow) -> bool:
        """Insert ``row`` in its own transaction; ``False`` if its key was already there."""
        values = [
            json.dumps(value, sort_keys=True, default=repr) if name in _JSON_COLUMNS else value
            for name, value in asdict(row).items()
        ]
        placeholders = ", ".join("?" for _ in _COLUMNS)
        with self._lock:
            cursor = self._db.execute(
                f"INSERT OR IGNORE INTO episodes ({', '.join(_COLUMNS)}) VALUES ({placeholders})",
                values,
            )
        return cursor.rowcount == 1

    def add_match(self, row: MatchRow) -> bool:
        """Insert a finished game in its own transaction; ``False`` if its key was there."""
        values = [
            json.dumps(value, sort_keys=True, default=repr) if name in _MATCH_JSON else value
            for name, value in asdict(row).items()
        ]
        placeholders = ", ".join("?" for _ in _MATCH_COLUMNS)
        with self._lock:
            cursor = self._db.execute(
                f"INSERT OR IGNORE INTO matches ({', '.join(_MATCH_COLUMNS)}) "
                f"VALUES ({placeholders})",
                values,
            )
        return cursor.rowcount == 1

    def finished_matches(self, suite: str) -> set[tuple[str, tuple[str, ...], int, int]]:
        """``(task, lineup, seed, episode)`` of every game of ``suite`` in the store."""
        with self._lock:
            rows = self._db.execute(
                "SELECT task, lineup, seed, episode FROM matches WHERE suite = ?", (suite,)
            ).fetchall()
        return {(task, tuple(json.loads(lineup)), seed, ep) for task, lineup, seed, ep in rows}

    def match_rows(self, suite: str | None = None) -> list[MatchRow]:
        """Stored games, oldest first, optionally only ``suite``'s."""
        sql = f"SELECT {', '.join(_MATCH_COLUMNS)} FROM matches"
        params: tuple[Any, ...] = ()
        if suite is not None:
            sql, params = sql + " WHERE suite = ?", (suite,)
        with self._lock:
            records = self._db.execute(sql + " ORDER BY id", params).fetchall()
        rows = []
        for record in records:
            values = {
                name: json.loads(record[name]) if name in _MATCH_JSON else record[name]
                for name in _MATCH_COLUMNS
            }
            values["lineup"] = tuple(values["lineup"])
            values["rewards"] = tuple(float(r) for r in values["rewards"])
            rows.append(MatchRow(**values))
        return rows

    def set_leaderboard_settings(self, suite: str, settings: dict[str, Any]) -> None:
        """Keep ``suite``'s leaderboard settings (the latest run's win)."""
        text = json.dumps(settings, sort_keys=True)
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO suites (suite, leaderboard) VALUES (?, ?)", (suite, text)
            )

    def leaderboard_settings(self, suite: str) -> dict[str, Any]:
        """``suite``'s leaderboard settings as last recorded (``{}`` if none were)."""
        with self._lock:
            found = self._db.execute(
                "SELECT leaderboard FROM suites WHERE suite = ?", (suite,)
            ).fetchone()
        return {} if found is None else dict(json.loads(found[0]))

    def delete_errors(self, suite: str, agent: str) -> int:
        """Delete ``suite``'s ``agent_error``/``env_error`` rows of ``agent`` (to re-run them)."""
        marks = ", ".join("?" for _ in ERROR_STOP_REASONS)
        with self._lock:
            cursor = self._db.execute(
                f"DELETE FROM episodes WHERE suite = ? AND agent = ? AND stop_reason IN ({marks})",
                (suite, agent, *sorted(ERROR_STOP_REASONS)),
            )
        return cursor.rowcount

    # ----------------------------------------------------------------------------- reading
    def finished_keys(self, suite: str, agent: str) -> set[tuple[str, int, int]]:
        """``(task, seed, episode)`` of every episode of ``suite`` that ``agent`` has finished."""
        with self._lock:
            rows = self._db.execute(
                "SELECT task, seed, episode FROM episodes WHERE suite = ? AND agent = ?",
                (suite, agent),
            ).fetchall()
        return {(task, seed, episode) for task, seed, episode in rows}

    def rows(
        self, suite: str | None = None, agent: str | None = None, task: str | None = None
    ) -> list[EpisodeRow]:
        """Stored rows, oldest first, optionally only those of ``suite``/``agent``/``task``."""
        conditions = {"suite": suite, "agent": agent, "task": task}
        where = [f"{name} = ?" for name, value in conditions.items() if value is not None]
        params = [value for value in conditions.values() if value is not None]
        sql = f"SELECT {', '.join(_COLUMNS)} FROM episodes"
        if where:
            sql += " WHERE " + " AND ".join(where)
        with self._lock:
            records = self._db.execute(sql + " ORDER BY id", params).fetchall()
        return [
            EpisodeRow(
                **{
                    name: json.loads(record[name]) if name in _JSON_COLUMNS else record[name]
                    for name in _COLUMNS
                }
            )
            for record in records
        ]

    def suites(self) -> list[str]:
        """Names of the suites with at least one row (episode or game), sorted."""
        with self._lock:
            rows = self._db.execute(
                "SELECT suite FROM episodes UNION SELECT suite FROM matches ORDER BY suite"
            ).fetchall()
        return [row[0] for row in rows]

    def __len__(self) -> int:
        with self._lock:
            (count,) = self._db.execute("SELECT COUNT(*) FROM episodes").fetchone()
        return int(count)

    # ----------------------------------------------------------------------------- lifetime
    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ResultsStore({self.path!r})"
