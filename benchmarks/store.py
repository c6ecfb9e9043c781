"""The results store: one SQLite row per finished benchmark episode, written atomically.

Why SQLite: a run is resumable only if every finished episode survives a crash at any moment and
is never counted twice. Each row goes in with its own ``INSERT OR IGNORE`` transaction on the
UNIQUE key ``(suite, task, agent, seed, episode)``, in WAL mode, so a killed run loses at most
the episodes in flight, a re-run skips what is there (:meth:`ResultsStore.finished_keys`), and two
runs racing on the same episode keep the first row. Several processes may share one file.

Beside the episodes, the store keeps what the leaderboard needs to know of each suite (its
primary task and reference agents, from the suite's ``[leaderboard]`` table), written by the
runner, so that ``arenagym leaderboard`` reads a store without the suite files.

Beside each row, its transcript: every turn of the episode (or every seat's moves of a game),
zlib-compressed JSON of at most 1 MiB (see :mod:`arenagym.benchmarks.transcripts` for the turns'
keys and the clipping), written in the same transaction as the row. Read them with
:meth:`ResultsStore.transcript` and :meth:`ResultsStore.match_transcript`, by the same key as the
row; episodes recorded before transcripts were kept (or by a caller that passed none) have
``None``. The transcript tables were added to schema version 1 (a file opened by this version
gains them), so older files keep working.

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

Transcripts, by the row's key (what an HTML leaderboard links each episode to):

    >>> from arenagym.benchmarks.transcripts import new_turn
    >>> other = EpisodeRow(**{**asdict(row), "seed": 1})
    >>> store.add(other, transcript=[new_turn(1, "2+2?", "4", latency_s=0.1)])
    True
    >>> turns = store.transcript("s", "random", "t", seed=1, episode=0)
    >>> [(turn["observation"], turn["action"]) for turn in turns]
    [('2+2?', '4')]
    >>> store.transcript("s", "random", "t", seed=0) is None   # stored without one
    True
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from arenagym.benchmarks.transcripts import (
    EncodedTranscript,
    decode_transcript,
    encode_transcript,
)

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
CREATE TABLE IF NOT EXISTS transcripts (
    suite         TEXT    NOT NULL,
    task          TEXT    NOT NULL,
    agent         TEXT    NOT NULL,
    seed          INTEGER NOT NULL,
    episode       INTEGER NOT NULL,
    turns         INTEGER NOT NULL,  -- entries in the transcript
    clipped_chars INTEGER NOT NULL,  -- characters cut by the size cap (0: whole)
    data          BLOB    NOT NULL,  -- zlib-compressed JSON (arenagym.benchmarks.transcripts)
    PRIMARY KEY (suite, task, agent, seed, episode)
);
CREATE TABLE IF NOT EXISTS match_transcripts (
    suite         TEXT    NOT NULL,
    task          TEXT    NOT NULL,
    lineup        TEXT    NOT NULL,  -- JSON list, as in matches
    seed          INTEGER NOT NULL,
    episode       INTEGER NOT NULL,
    turns         INTEGER NOT NULL,
    clipped_chars INTEGER NOT NULL,
    data          BLOB    NOT NULL,
    PRIMARY KEY (suite, task, lineup, seed, episode)
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


#: What :meth:`ResultsStore.add` takes as a transcript: the turns, or the turns encoded.
_Transcript = Sequence[Mapping[str, Any]] | EncodedTranscript


def _lineup_text(lineup: Sequence[str]) -> str:
    """A lineup as the ``matches`` table keeps it (JSON)."""
    return json.dumps(list(lineup), sort_keys=True, default=repr)


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
    def add(self, row: EpisodeRow, transcript: _Transcript | None = None) -> bool:
        """Insert ``row`` (and its ``transcript``: a list of turns, or one already encoded by
        :func:`~arenagym.benchmarks.transcripts.encode_transcript`) in one transaction; ``False``
        if its key was already there (then nothing is written: the first row and its transcript
        stay). The transcript is stored as it is given, clipped to the size cap: redact secrets
        before (the runner does)."""
        values = [
            json.dumps(value, sort_keys=True, default=repr) if name in _JSON_COLUMNS else value
            for name, value in asdict(row).items()
        ]
        placeholders = ", ".join("?" for _ in _COLUMNS)
        insert = f"INSERT OR IGNORE INTO episodes ({', '.join(_COLUMNS)}) VALUES ({placeholders})"
        key = (row.suite, row.task, row.agent, row.seed, row.episode)
        return self._insert(insert, values, "transcripts", key, transcript)

    def add_match(self, row: MatchRow, transcript: _Transcript | None = None) -> bool:
        """Insert a finished game (and its ``transcript``: every seat's moves, in order) in one
        transaction; ``False`` if its key was there."""
        values = [
            json.dumps(value, sort_keys=True, default=repr) if name in _MATCH_JSON else value
            for name, value in asdict(row).items()
        ]
        placeholders = ", ".join("?" for _ in _MATCH_COLUMNS)
        insert = (
            f"INSERT OR IGNORE INTO matches ({', '.join(_MATCH_COLUMNS)}) VALUES ({placeholders})"
        )
        key = (row.suite, row.task, _lineup_text(row.lineup), row.seed, row.episode)
        return self._insert(insert, values, "match_transcripts", key, transcript)

    def _insert(
        self,
        insert: str,
        values: list[Any],
        table: str,
        key: tuple[Any, ...],
        transcript: _Transcript | None,
    ) -> bool:
        """Run ``insert`` and, if it inserted and there is a transcript, store the transcript
        under ``key`` in ``table``: one transaction, so a row never lacks the transcript it was
        given (and a killed run loses both or neither)."""
        if transcript is None:
            with self._lock:
                return self._db.execute(insert, values).rowcount == 1
        if not isinstance(transcript, EncodedTranscript):
            transcript = encode_transcript(transcript)  # outside the lock: it may take a while
        data, clipped, entries = transcript
        columns = "suite, task, agent" if table == "transcripts" else "suite, task, lineup"
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                inserted = self._db.execute(insert, values).rowcount == 1
                if inserted:
                    self._db.execute(
                        f"INSERT OR REPLACE INTO {table} ({columns}, seed, episode, turns, "
                        "clipped_chars, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (*key, entries, clipped, data),
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return inserted

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
        where = f"suite = ? AND agent = ? AND stop_reason IN ({marks})"
        params = (suite, agent, *sorted(ERROR_STOP_REASONS))
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(  # their transcripts go with them
                    "DELETE FROM transcripts WHERE (suite, task, agent, seed, episode) IN "
                    f"(SELECT suite, task, agent, seed, episode FROM episodes WHERE {where})",
                    params,
                )
                cursor = self._db.execute(f"DELETE FROM episodes WHERE {where}", params)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
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

    def transcript(
        self, suite: str, agent: str, task: str, seed: int, episode: int = 0
    ) -> list[dict[str, Any]] | None:
        """The turns of the episode ``(suite, task, agent, seed, episode)`` — the key of its
        :class:`EpisodeRow` — in order, or ``None`` if none was stored (an episode recorded
        before transcripts were kept).

        Each turn is a dict with the keys of
        :data:`~arenagym.benchmarks.transcripts.TURN_KEYS` (``observation``, ``action``,
        ``reward``, ``latency_s``, ``prompt_tokens``, ``error``, ``clipped_chars``, ...); a
        transcript over the size cap has clipped texts (``clipped_chars > 0``) and possibly one
        ``{"omitted_turns": n, "clipped_chars": c}`` entry (see
        :mod:`arenagym.benchmarks.transcripts`).

        Example:
            >>> with ResultsStore(":memory:") as store:
            ...     store.transcript("math", "random", "math-d1", seed=0) is None
            True
        """
        with self._lock:
            found = self._db.execute(
                "SELECT data FROM transcripts WHERE suite = ? AND task = ? AND agent = ? "
                "AND seed = ? AND episode = ?",
                (suite, task, agent, seed, episode),
            ).fetchone()
        return None if found is None else decode_transcript(found[0])

    def match_transcript(
        self, suite: str, task: str, lineup: Sequence[str], seed: int, episode: int = 0
    ) -> list[dict[str, Any]] | None:
        """The moves of the game ``(suite, task, lineup, seed, episode)`` — the key of its
        :class:`MatchRow` — every seat's in the order they were made, or ``None`` if none was
        stored. Each move is a turn as in :meth:`transcript` plus ``seat`` (the env's agent id)
        and ``player`` (the player's name).

        Example:
            >>> with ResultsStore(":memory:") as store:
            ...     store.match_transcript("dfc18", "nim", ("random", "search"), seed=0) is None
            True
        """
        with self._lock:
            found = self._db.execute(
                "SELECT data FROM match_transcripts WHERE suite = ? AND task = ? AND lineup = ? "
                "AND seed = ? AND episode = ?",
                (suite, task, _lineup_text(tuple(lineup)), seed, episode),
            ).fetchone()
        return None if found is None else decode_transcript(found[0])

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
