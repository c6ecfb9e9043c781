"""Results people can take elsewhere: export a store's rows, merge stores from several machines.

**Export** (``arenagym export``, :func:`export_rows`) writes one table of a results store, its
episode rows (``--table episodes``, the default) or its game rows (``--table matches``), as
CSV, JSON Lines or Parquet, optionally one suite's only. The columns are the fields of
:class:`~arenagym.benchmarks.store.EpisodeRow` / :class:`~arenagym.benchmarks.store.MatchRow`,
in their order:

* **jsonl**: one JSON object per row, every field as its JSON value (``lineup`` and ``rewards``
  as lists);
* **csv**: a header line, then one line per row; numbers as Python writes them (floats round
  trip exactly), and the JSON-valued fields (``env_kwargs``, ``agent_kwargs``, ``info``;
  ``lineup`` and ``rewards`` of games) as JSON text in their cell;
* **parquet**: typed columns (strings, int64, float64; ``lineup`` a list of strings,
  ``rewards`` a list of doubles, the object fields JSON text). Needs ``pyarrow`` (the ``parquet``
  extra); without it the error says to ``pip install 'arenagym[parquet]'``.

:func:`read_rows` reads a CSV or JSONL export back into the row objects, equal to the store's.

**Merge** (``arenagym store merge A B ... -o C``, :func:`merge_stores`) writes a new store with
the union of the inputs' episodes and games, each once. Two rows with the same key (an
episode's ``(suite, task, agent, seed, episode)``, a game's ``(suite, task, lineup, seed,
episode)``) are the same episode: when their results agree (every field but the timestamps
``started_at``, ``finished_at`` and ``duration_s``), one is kept, the first input's; when they
differ, the first input's is kept too and the pair is reported as a :class:`Conflict`, which the
command prints (exit status 1, the merged store is still written). Each suite's leaderboard
settings are carried over from the first input that has them (differing settings are noted).
The output is written beside its final path and moved there once complete; an existing output
file is refused (merge into a copy: list the existing store among the inputs).

Transcripts are carried over with their rows: each kept episode or game gets the transcript of
the first input that holds the same results and has one (a row recorded without a transcript on
one machine takes it from another). A conflicting row's transcript is not mixed in: the kept row
keeps its own (or none).

Only :class:`~arenagym.benchmarks.store.ResultsStore`'s public methods are used, so whatever the
store checks on opening (schema version, not an arenagym file) holds for every input.

Example:
    >>> import tempfile, pathlib
    >>> from dataclasses import replace
    >>> from arenagym.benchmarks.store import EpisodeRow, ResultsStore
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> row = EpisodeRow(suite="s", task="t", env_id="Math-v0", env_kwargs={}, agent="a",
    ...                  seed=0, episode=0, reset_seed=1, metric="success", score=1.0,
    ...                  reward=1.0, clean_reward=1.0, turns=1, stop_reason="solved")
    >>> for name, score in (("a.sqlite", 1.0), ("b.sqlite", 0.0)):
    ...     with ResultsStore(folder / name) as store:
    ...         _ = store.add(row), store.add(replace(row, episode=1, score=score))
    >>> result = merge_stores([folder / "a.sqlite", folder / "b.sqlite"], folder / "c.sqlite")
    >>> result.episodes, result.duplicates, [c.fields for c in result.conflicts]
    (2, 1, [('score',)])
    >>> export_rows(folder / "c.sqlite", folder / "c.jsonl", "jsonl")
    2
    >>> [r.score for r in read_rows(folder / "c.jsonl")]
    [1.0, 1.0]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, TextIO

from arenagym.benchmarks.store import EpisodeRow, MatchRow, ResultsStore

__all__ = [
    "FORMATS",
    "TABLES",
    "Conflict",
    "ExportError",
    "MergeConflictError",
    "MergeResult",
    "export_command",
    "export_rows",
    "merge_command",
    "merge_stores",
    "read_rows",
]

FORMATS: tuple[str, ...] = ("csv", "jsonl", "parquet")
TABLES: tuple[str, ...] = ("episodes", "matches")
#: Fields that differ between two plays of the same episode without the result differing.
TIMING_FIELDS = frozenset({"started_at", "finished_at", "duration_s"})

_ROW_TYPES: dict[str, type[EpisodeRow] | type[MatchRow]] = {
    "episodes": EpisodeRow,
    "matches": MatchRow,
}


class ExportError(ValueError):
    """Bad input to ``export`` or ``store merge``: a missing store, an unknown suite, a format
    that needs a package that is not installed, an output that exists."""


@dataclass(frozen=True)
class Conflict:
    """Two inputs hold the same key with different results; ``kept`` is the row in the output."""

    table: str
    key: tuple[Any, ...]
    kept: str
    other: str
    #: The fields that differ (timestamps left out).
    fields: tuple[str, ...]
    kept_values: dict[str, Any]
    other_values: dict[str, Any]

    def describe(self) -> str:
        """One line: which episode, which stores, what differs.

        Example:
            >>> Conflict("episodes", ("s", "t", "a", 0, 1), "a.sqlite", "b.sqlite", ("score",),
            ...          {"score": 1.0}, {"score": 0.0}).describe()
            "episode suite='s' task='t' agent='a' seed=0 episode=1: kept a.sqlite's score=1.0; b.sqlite has score=0.0"
        """
        names = (
            ("suite", "task", "agent", "seed", "episode")
            if self.table == "episodes"
            else ("suite", "task", "lineup", "seed", "episode")
        )
        key = " ".join(f"{n}={v!r}" for n, v in zip(names, self.key, strict=True))

        def values(of: dict[str, Any]) -> str:
            return ", ".join(f"{n}={json.dumps(of[n], sort_keys=True)[:60]}" for n in self.fields)

        what = "episode" if self.table == "episodes" else "game"
        return (
            f"{what} {key}: kept {self.kept}'s {values(self.kept_values)}; "
            f"{self.other} has {values(self.other_values)}"
        )


@dataclass
class MergeResult:
    """What :func:`merge_stores` wrote: row counts, duplicates dropped, conflicts, notes."""

    output: Path
    episodes: int = 0
    matches: int = 0
    #: Rows left out because an earlier input had the same key with the same results.
    duplicates: int = 0
    #: Episodes and games written with their transcript.
    transcripts: int = 0
    conflicts: list[Conflict] = field(default_factory=list)
    #: Leaderboard settings that differ between inputs (the first input's are kept).
    notes: list[str] = field(default_factory=list)


class MergeConflictError(Exception):
    """The merged store was written, but some inputs disagree on an episode's results;
    ``details`` lists each conflict (printed after the one-line message, exit status 1)."""

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.details = details


# --------------------------------------------------------------------------- opening


def _open_existing(path: str | Path, what: str = "results store") -> ResultsStore:
    """Open a store that must already exist (``ResultsStore`` would create a new one)."""
    path = Path(path)
    if not path.is_file():
        raise ExportError(
            f"{path}: no {what} there"
            + (" (a directory; a results store is one SQLite file)" if path.is_dir() else "")
        )
    return ResultsStore(path)


def _rows(store: ResultsStore, table: str, suite: str | None) -> list[Any]:
    return store.rows(suite=suite) if table == "episodes" else store.match_rows(suite)


# --------------------------------------------------------------------------- export


def _record(row: EpisodeRow | MatchRow) -> dict[str, Any]:
    """``row`` as JSON-ready values (tuples as lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(row).items()}


def _csv_cell(value: Any) -> Any:
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, sort_keys=True)
    return value


def _parquet_table(table: str, rows: Sequence[EpisodeRow | MatchRow]) -> Any:
    try:
        import pyarrow as pa
    except ImportError:
        raise ExportError(
            "--format parquet needs pyarrow, which is not installed: pip install "
            "'arenagym[parquet]' (or pyarrow; or export as csv or jsonl)"
        ) from None
    scalars = {"int": pa.int64(), "float": pa.float64(), "str": pa.string()}
    columns, data = [], {}
    for f in fields(_ROW_TYPES[table]):
        values = [getattr(r, f.name) for r in rows]
        if f.name == "lineup":
            kind = pa.list_(pa.string())
        elif f.name == "rewards":
            kind = pa.list_(pa.float64())
        elif str(f.type) in scalars:
            kind = scalars[str(f.type)]
        else:  # objects (env_kwargs, info, ...): JSON text
            kind = pa.string()
            values = [json.dumps(v, sort_keys=True) for v in values]
        columns.append(pa.field(f.name, kind, nullable=False))
        data[f.name] = [list(v) if isinstance(v, tuple) else v for v in values]
    return pa.table(data, schema=pa.schema(columns))


def _write_text(rows: Sequence[EpisodeRow | MatchRow], table: str, fmt: str, out: TextIO) -> None:
    if fmt == "jsonl":
        for row in rows:
            out.write(json.dumps(_record(row), sort_keys=False) + "\n")
        return
    names = [f.name for f in fields(_ROW_TYPES[table])]
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(names)
    for row in rows:
        record = asdict(row)
        writer.writerow([_csv_cell(record[name]) for name in names])


def export_rows(
    store_path: str | Path,
    output: str | Path | None,
    fmt: str,
    *,
    table: str = "episodes",
    suite: str | None = None,
    stdout: TextIO | None = None,
) -> int:
    """Write ``table`` (``"episodes"`` or ``"matches"``) of the store at ``store_path`` to
    ``output`` as ``fmt`` (csv, jsonl, parquet), only ``suite``'s rows if given; how many rows.

    ``output=None`` writes csv and jsonl to ``stdout`` (default ``sys.stdout``); parquet needs a
    file. The file is written beside ``output`` and moved into place once complete. An unknown
    suite raises :class:`ExportError` naming the store's suites.
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    if table not in TABLES:
        raise ExportError(f"unknown table {table!r}: use one of {', '.join(TABLES)}")
    if fmt == "parquet" and output is None:
        raise ExportError("--format parquet writes a binary file: give one with -o FILE")
    with _open_existing(store_path) as store:
        if suite is not None and suite not in store.suites():
            known = ", ".join(store.suites()) or "none: the store is empty"
            raise ExportError(f"{store_path}: no suite {suite!r} in the store (it has {known})")
        rows = _rows(store, table, suite)
    if fmt == "parquet":
        parquet_table = _parquet_table(table, rows)
    if output is None:
        _write_text(rows, table, fmt, stdout or sys.stdout)
        return len(rows)
    output = Path(output)
    if output.is_dir():
        raise ExportError(f"-o {output}: is a directory; give a file name")
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(f".{output.name}.tmp-{os.getpid()}")
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            pq.write_table(parquet_table, partial)
        else:
            with open(partial, "w", encoding="utf-8", newline="") as handle:
                _write_text(rows, table, fmt, handle)
        partial.replace(output)
    finally:
        partial.unlink(missing_ok=True)
    return len(rows)


def _typed(row_type: type[EpisodeRow] | type[MatchRow], record: dict[str, Any]) -> Any:
    values: dict[str, Any] = {}
    for f in fields(row_type):
        value = record[f.name]
        if f.name == "lineup":
            value = tuple(value)
        elif f.name == "rewards":
            value = tuple(float(v) for v in value)
        elif str(f.type) == "float":
            value = float(value)
        elif str(f.type) == "int":
            value = int(value)
        values[f.name] = value
    return row_type(**values)


def read_rows(path: str | Path, table: str = "episodes") -> list[Any]:
    """The rows of a CSV (``.csv``) or JSONL (any other name) export of ``table``, as
    :class:`~arenagym.benchmarks.store.EpisodeRow` s or :class:`~arenagym.benchmarks.store.
    MatchRow` s; a malformed line raises :class:`ExportError` naming the file, line and field."""
    path = Path(path)
    row_type = _ROW_TYPES[table]
    names = [f.name for f in fields(row_type)]
    json_fields = {f.name for f in fields(row_type) if str(f.type) not in ("int", "float", "str")}
    rows = []
    with open(path, encoding="utf-8", newline="") as handle:
        if path.suffix == ".csv":
            reader = csv.DictReader(handle)
            records: Iterable[tuple[int, Any]] = ((reader.line_num, r) for r in reader)
        else:
            records = ((number, line) for number, line in enumerate(handle, 1) if line.strip())
        for number, raw in records:
            where = f"{path}:{number}"
            try:
                if isinstance(raw, dict):  # a CSV line: JSON fields are JSON text
                    record = {n: json.loads(raw[n]) if n in json_fields else raw[n] for n in names}
                else:
                    record = json.loads(raw)
                rows.append(_typed(row_type, record))
            except KeyError as error:
                raise ExportError(f"{where}: field {error.args[0]!r} is missing") from None
            except (ValueError, TypeError) as error:
                raise ExportError(f"{where}: not a row of {table} ({error})") from None
            except RecursionError:
                raise ExportError(f"{where}: not a row of {table} (nested too deeply)") from None
    return rows


# --------------------------------------------------------------------------- merge


def _result(row: EpisodeRow | MatchRow) -> dict[str, Any]:
    return {k: v for k, v in asdict(row).items() if k not in TIMING_FIELDS}


def merge_stores(inputs: Sequence[str | Path], output: str | Path) -> MergeResult:
    """Merge the stores ``inputs`` into a new store at ``output`` (see the module docstring):
    every episode and game once, conflicts reported in the result, the first input winning.

    Raises :class:`ExportError` if an input is missing or ``output`` exists or is an input.
    """
    output = Path(output)
    if not inputs:
        raise ExportError("no stores to merge")
    if output.exists():
        raise ExportError(
            f"-o {output}: already exists; merge writes a new store (to merge into an existing "
            "store, list it among the inputs and write to a new file)"
        )
    resolved = {Path(p).resolve() for p in inputs}
    if output.resolve() in resolved:
        raise ExportError(f"-o {output}: is one of the inputs")
    result = MergeResult(output)
    # key -> (the row kept, the inputs holding it with these results: where its transcript is)
    kept: dict[str, dict[tuple[Any, ...], tuple[Any, list[int]]]] = {t: {} for t in TABLES}
    settings: dict[str, tuple[dict[str, Any], str]] = {}
    names = [str(path) for path in inputs]
    for index, path in enumerate(inputs):
        name = names[index]
        with _open_existing(path) as store:
            for table in TABLES:
                for row in _rows(store, table, None):
                    seen = kept[table].get(row.key)
                    if seen is None:
                        kept[table][row.key] = (row, [index])
                        continue
                    first, holders = seen
                    a, b = _result(first), _result(row)
                    differ = tuple(k for k in a if a[k] != b[k])
                    if not differ:
                        result.duplicates += 1
                        holders.append(index)
                        continue
                    result.conflicts.append(
                        Conflict(
                            table,
                            row.key,
                            names[holders[0]],
                            name,
                            differ,
                            {k: a[k] for k in differ},
                            {k: b[k] for k in differ},
                        )
                    )
            for suite in store.suites():
                found = store.leaderboard_settings(suite)
                if not found:
                    continue
                if suite not in settings:
                    settings[suite] = (found, name)
                elif settings[suite][0] != found:
                    result.notes.append(
                        f"suite {suite!r}: leaderboard settings differ; kept "
                        f"{settings[suite][1]}'s {json.dumps(settings[suite][0], sort_keys=True)}"
                        f", {name} has {json.dumps(found, sort_keys=True)}"
                    )
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(f".{output.name}.tmp-{os.getpid()}")
    _remove_sqlite(partial)
    with contextlib.ExitStack() as stack:
        sources = [stack.enter_context(_open_existing(path)) for path in inputs]
        try:
            _write_merged(partial, kept, settings, sources, result)
            partial.replace(output)
        finally:
            _remove_sqlite(partial)
    return result


def _write_merged(
    partial: Path,
    kept: dict[str, dict[tuple[Any, ...], tuple[Any, list[int]]]],
    settings: dict[str, tuple[dict[str, Any], str]],
    sources: Sequence[ResultsStore],
    result: MergeResult,
) -> None:
    """Write the kept rows (with transcripts) and the settings into the new store ``partial``."""
    with ResultsStore(partial) as merged:
        for row, holders in kept["episodes"].values():
            transcript = _first_transcript(
                holders,
                lambda i, r=row: sources[i].transcript(r.suite, r.agent, r.task, r.seed, r.episode),
            )
            merged.add(row, transcript=transcript)
            result.transcripts += transcript is not None
        for row, holders in kept["matches"].values():
            transcript = _first_transcript(
                holders,
                lambda i, r=row: sources[i].match_transcript(
                    r.suite, r.task, r.lineup, r.seed, r.episode
                ),
            )
            merged.add_match(row, transcript=transcript)
            result.transcripts += transcript is not None
        for suite, (found, _) in settings.items():
            merged.set_leaderboard_settings(suite, found)
        result.episodes, result.matches = len(kept["episodes"]), len(kept["matches"])


def _first_transcript(
    holders: Sequence[int], read: Callable[[int], list[dict[str, Any]] | None]
) -> list[dict[str, Any]] | None:
    """The transcript of the first input (of those with the kept row's results) that has one."""
    for index in holders:
        found = read(index)
        if found is not None:
            return found
    return None


def _remove_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


# --------------------------------------------------------------------------- commands


def export_command(args: argparse.Namespace) -> int:
    """``arenagym export``: write the rows; say how many, on stderr when the rows go to stdout."""
    count = export_rows(args.store, args.output, args.format, table=args.table, suite=args.suite)
    where = args.output or "stdout"
    print(f"exported {count} {args.table} row(s) as {args.format} to {where}", file=sys.stderr)
    return 0


def merge_command(args: argparse.Namespace) -> int:
    """``arenagym store merge A B ... -o C``: merge, print what was written; exit status 1
    (:class:`MergeConflictError`, after writing) when inputs disagree on an episode."""
    result = merge_stores(args.stores, args.output)
    print(
        f"wrote {result.output}: {result.episodes} episode(s), {result.matches} game(s) "
        f"({result.transcripts} with a transcript) from {len(args.stores)} store(s); "
        f"{result.duplicates} duplicate(s) left out"
    )
    for note in result.notes:
        print(f"note: {note}")
    if result.conflicts:
        buffer = io.StringIO()
        for conflict in result.conflicts:
            buffer.write(f"  {conflict.describe()}\n")
        raise MergeConflictError(
            f"{len(result.conflicts)} conflicting duplicate(s): the same key with different "
            f"results in two stores; {result.output} keeps the first store's row of each",
            buffer.getvalue(),
        )
    return 0
