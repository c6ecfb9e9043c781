"""Leaderboards from the results store: per agent × task, mean ± standard error over seeds.

For each agent and task, the metric (the ``score`` column: clean reward by default) is first
averaged over each seed's episodes; the task's score is the mean of those per-seed means, and its
standard error is their sample standard deviation / sqrt(number of seeds) (shown as "—" with one
seed). Seeds, not episodes, are the unit because episodes of one seed are not independent draws
of what a benchmark varies between runs. An agent's overall score is the unweighted mean of its
task scores; agents are ranked by it. Episodes that ended in ``agent_error``/``env_error`` count
with the score they reached (so a crashing agent is not flattered) and are shown as errors;
episodes stopped by a time limit (``agent_timeout``) count the same way.

A run is *incomplete* when it has fewer finished episodes of some task than the suite asks for
(an interrupted run, or one that never played a task). Incomplete runs are flagged (``11 of 13
(incomplete)`` in the Episodes column) and ranked after every complete run, whatever their score:
a run cut short at 314 of 600 episodes must not rank above the complete run it is a part of. What
a task asks for is read from the suite's recorded ``[leaderboard]`` settings when they hold it
(``task_episodes``: task -> episodes times seeds), and is otherwise inferred from the store: every
seed that any agent played of the task, times the episodes per seed (the highest episode index
any agent reached, plus one), since each seed of a task has the same episodes.

A task's column is headed by its metric: the env's ``score_metric`` keyword when its clean reward
is one named metric (MedDialog's ``BLEU-2``, ``Entity-F1``), else the suite's metric
(``clean_reward``, ``reward``, ``success``).

A mean of task scores only means something when the tasks share a scale. A suite whose tasks do
not (MedDialog's columns: BLEU, a reward above 1, F1, accuracy) names a primary task in its
``[leaderboard]`` table: the overall column is then that task's score, labelled with its name,
and every task's cell also shows the agent's rank on that task alone (``#1``), so that each
metric is ranked on its own scale. An agent with no episode of the primary task yet has no overall
score (shown as "—") and is listed after those that have one, by name (so before the primary task
has any rows, the board lists every agent by name). Agents the suite lists as
``reference_agents`` (e.g. an oracle that replays the data's own generator) are shown below the
ranked agents as reference rows, outside the ranking and the per-task ranks. An entry names an
agent by its name on the board, or by its spec and kwargs as its rows record them, written as
:func:`~arenagym.benchmarks.runner.agent_display_name` writes them (``"pkg.mod:Oracle"`` for the
spec run without kwargs, ``"pkg.mod:Oracle(seed=1)"`` with them): a spec run with other kwargs is
another agent, ranked as usual. The runner keeps
these settings in the results store (:meth:`~arenagym.benchmarks.store.ResultsStore.
leaderboard_settings`), so a board built from the store alone reads the same.

Rendered as a rich table (:func:`print_leaderboards`) or Markdown (:func:`to_markdown`,
:func:`write_markdown`); one board per suite.

Example:
    >>> from arenagym.benchmarks.store import EpisodeRow, ResultsStore
    >>> store = ResultsStore(":memory:")
    >>> for seed, score in [(0, 1.0), (1, 0.0)]:
    ...     _ = store.add(EpisodeRow(suite="s", task="t", env_id="E-v0", env_kwargs={},
    ...             agent="a", seed=seed, episode=0, reset_seed=0, metric="success",
    ...             score=score, reward=score, clean_reward=score, turns=1, stop_reason="solved"))
    >>> (board,) = build_leaderboards(store)
    >>> result = board.agents[0].scores["t"]
    >>> result.mean, result.se, result.n_episodes
    (0.5, 0.5, 2)
    >>> print(to_markdown([board]).splitlines()[4])
    | 1 | a | 0.500 ± 0.500 (n=2) | 0.500 | 2 | 0 |
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from rich.console import Console
from rich.table import Table

from arenagym.benchmarks.ratings import RatingBoard
from arenagym.benchmarks.runner import agent_display_name
from arenagym.benchmarks.store import EpisodeRow, ResultsStore


@dataclass(frozen=True)
class TaskScore:
    """One agent's result on one task. ``se`` is ``None`` when there is a single seed."""

    task: str
    metric: str
    mean: float
    se: float | None
    seed_means: dict[int, float]
    n_episodes: int
    n_errors: int

    @property
    def n_seeds(self) -> int:
        """How many seeds the mean is over."""
        return len(self.seed_means)


@dataclass(frozen=True)
class AgentResult:
    """One leaderboard line: an agent's task scores and its overall score (the unweighted mean
    of its task scores, or its primary task's score; ``None`` if it has no episode of that)."""

    agent: str
    scores: dict[str, TaskScore]
    overall: float | None
    n_episodes: int
    n_errors: int
    reference: bool = False
    #: The episodes the suite asks for over the board's tasks (``None``: not known).
    n_expected: int | None = None

    @property
    def complete(self) -> bool:
        """Whether the run has every episode the suite asks for (see the module doc)."""
        return self.n_expected is None or self.n_episodes >= self.n_expected


@dataclass(frozen=True)
class Leaderboard:
    """A suite's ranked agents; ``tasks`` are the columns, sorted by name.

    ``primary_task`` is the task whose score is the overall one (``None``: the mean of the task
    scores); ``references`` are the reference agents' lines (not ranked); ``task_ranks`` maps
    task -> ranked agent -> its rank on that task alone (ties share a rank).
    """

    suite: str
    tasks: tuple[str, ...]
    metrics: dict[str, str]
    agents: tuple[AgentResult, ...]
    primary_task: str | None = None
    references: tuple[AgentResult, ...] = ()
    task_ranks: dict[str, dict[str, int]] = field(default_factory=dict)
    #: task -> the episodes the suite asks for of it (episodes times seeds).
    expected_episodes: dict[str, int] = field(default_factory=dict)

    #: The note of a board with no primary task, no reference agents and no incomplete run.
    plain_note: ClassVar[str] = "n = episodes; overall = mean of the task scores"

    @property
    def overall_label(self) -> str:
        """The overall column's header: ``Overall``, or ``Overall (TASK)`` for a primary task."""
        return "Overall" if self.primary_task is None else f"Overall ({self.primary_task})"

    @property
    def note(self) -> str:
        """What the numbers are, for a caption or a footnote."""
        if self.primary_task is None:
            text = self.plain_note
        else:
            text = (
                f"n = episodes; overall = the score of task {self.primary_task} (the suite's "
                "primary task; its tasks are on different scales, so each is ranked on its own: "
                "#k)"
            )
        if self.references:
            text += "; ref = reference agents, outside the ranking"
        if any(not result.complete for result in (*self.agents, *self.references)):
            text += "; incomplete runs (fewer episodes than the suite asks for) rank last"
        return text


def build_leaderboards(store: ResultsStore, suite: str | None = None) -> list[Leaderboard]:
    """One :class:`Leaderboard` per suite in ``store`` (only ``suite``'s when given), read the
    way each suite's recorded ``[leaderboard]`` settings say."""
    suites = [suite] if suite is not None else store.suites()
    boards = []
    for name in suites:
        settings = store.leaderboard_settings(name)
        boards.append(
            leaderboard_from_rows(
                name,
                store.rows(suite=name),
                primary_task=settings.get("primary_task"),
                reference_agents=settings.get("reference_agents", ()),
                task_episodes=settings.get("task_episodes") or {},
            )
        )
    return [board for board in boards if board.agents or board.references]


def leaderboard_from_rows(
    suite: str,
    rows: Iterable[EpisodeRow],
    *,
    primary_task: str | None = None,
    reference_agents: Iterable[str] = (),
    task_episodes: dict[str, int] | None = None,
) -> Leaderboard:
    """The leaderboard of ``suite`` from its rows (rows of other suites are ignored).

    ``primary_task`` makes that task's score the overall one; agents whose name, or whose spec
    and kwargs (as :func:`~arenagym.benchmarks.runner.agent_display_name` writes them), are in
    ``reference_agents`` become reference lines (see the module doc). ``task_episodes`` (task ->
    episodes times seeds) says what the suite asks for; tasks it leaves out are inferred from the
    rows. Incomplete runs rank after complete ones:

    >>> from arenagym.benchmarks.store import EpisodeRow
    >>> def row(agent, seed, score):
    ...     return EpisodeRow(suite="s", task="t", env_id="E-v0", env_kwargs={}, agent=agent,
    ...         seed=seed, episode=0, reset_seed=0, metric="success", score=score, reward=score,
    ...         clean_reward=score, turns=1, stop_reason="x")
    >>> rows = [row("full", 0, 0.5), row("full", 1, 0.5), row("cut", 0, 1.0)]
    >>> board = leaderboard_from_rows("s", rows)
    >>> [(r.agent, r.overall, r.complete) for r in board.agents]
    [('full', 0.5, True), ('cut', 1.0, False)]
    """
    references = frozenset(reference_agents)
    by_cell: dict[tuple[str, str], list[EpisodeRow]] = defaultdict(list)
    specs: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        if row.suite == suite:
            by_cell[row.agent, row.task].append(row)
            if row.agent_spec:
                specs[row.agent].add(agent_display_name(row.agent_spec, row.agent_kwargs))
    tasks = tuple(sorted({task for _, task in by_cell}))
    metrics = {
        task: "/".join(
            sorted({metric_label(r) for (_, t), rs in by_cell.items() if t == task for r in rs})
        )
        for task in tasks
    }
    expected = expected_episodes(
        [row for rows_ in by_cell.values() for row in rows_], task_episodes or {}
    )
    results = []
    for agent in sorted({agent for agent, _ in by_cell}):
        scores = {
            task: task_score(task, by_cell[agent, task])
            for task in tasks
            if (agent, task) in by_cell
        }
        if primary_task is None:
            overall: float | None = statistics.fmean(score.mean for score in scores.values())
        else:
            primary = scores.get(primary_task)
            overall = None if primary is None else primary.mean
        results.append(
            AgentResult(
                agent=agent,
                scores=scores,
                overall=overall,
                n_episodes=sum(score.n_episodes for score in scores.values()),
                n_errors=sum(score.n_errors for score in scores.values()),
                reference=agent in references or bool(specs[agent] & references),
                n_expected=sum(expected.get(task, 0) for task in tasks) or None,
            )
        )
    results.sort(
        key=lambda r: (
            not r.complete,
            r.overall is None,
            -r.overall if r.overall is not None else 0.0,
            r.agent,
        )
    )
    ranked = tuple(result for result in results if not result.reference)
    task_ranks = {
        task: {
            result.agent: 1
            + sum(
                other.scores[task].mean > result.scores[task].mean
                for other in ranked
                if task in other.scores
            )
            for result in ranked
            if task in result.scores
        }
        for task in tasks
    }
    return Leaderboard(
        suite=suite,
        tasks=tasks,
        metrics=metrics,
        agents=ranked,
        primary_task=primary_task,
        references=tuple(result for result in results if result.reference),
        task_ranks=task_ranks,
        expected_episodes=expected,
    )


def metric_label(row: EpisodeRow) -> str:
    """The name of what ``row.score`` measures: the env's ``score_metric`` keyword when the
    clean reward is one named metric, else the suite's metric.

    >>> from dataclasses import replace
    >>> from arenagym.benchmarks.store import EpisodeRow
    >>> row = EpisodeRow(suite="s", task="t", env_id="MedDialog-v0",
    ...     env_kwargs={"score_metric": "BLEU-2"}, agent="a", seed=0, episode=0, reset_seed=0,
    ...     metric="clean_reward", score=0.1, reward=0.1, clean_reward=0.1, turns=1,
    ...     stop_reason="x")
    >>> metric_label(row), metric_label(replace(row, env_kwargs={}))
    ('BLEU-2', 'clean_reward')
    """
    named = row.env_kwargs.get("score_metric") if isinstance(row.env_kwargs, dict) else None
    if row.metric == "clean_reward" and isinstance(named, str) and named and named != "reward":
        return named
    return row.metric


def expected_episodes(
    rows: Iterable[EpisodeRow], recorded: dict[str, int] | None = None
) -> dict[str, int]:
    """Task -> the episodes its suite asks for: ``recorded[task]`` where given, else every seed
    any row has of the task times (the highest episode index + 1). Never fewer than the rows
    show.

    >>> from arenagym.benchmarks.store import EpisodeRow
    >>> def row(seed, episode):
    ...     return EpisodeRow(suite="s", task="t", env_id="E-v0", env_kwargs={}, agent="a",
    ...         seed=seed, episode=episode, reset_seed=0, metric="success", score=1.0,
    ...         reward=1.0, clean_reward=1.0, turns=1, stop_reason="x")
    >>> expected_episodes([row(0, 0), row(0, 2), row(1, 0)])
    {'t': 6}
    >>> expected_episodes([row(0, 0)], {"t": 10})
    {'t': 10}
    """
    seeds: dict[str, set[int]] = defaultdict(set)
    last: dict[str, int] = defaultdict(int)
    for row in rows:
        seeds[row.task].add(row.seed)
        last[row.task] = max(last[row.task], row.episode)
    inferred = {task: len(seeds[task]) * (last[task] + 1) for task in seeds}
    for task, count in (recorded or {}).items():
        if isinstance(count, int) and not isinstance(count, bool) and task in inferred:
            inferred[task] = max(inferred[task], count)
    return dict(sorted(inferred.items()))


def tied_ranks(intervals: Sequence[tuple[float, float]]) -> list[int]:
    """Ranks that do not tell apart what the data cannot: for lines listed best first with
    intervals ``(low, high)``, line i's rank is 1 + the number of lines whose whole interval lies
    above line i's (as LMSYS's Chatbot Arena ranks), made non-decreasing down the list. Lines
    that share a rank are not distinguishable.

    >>> tied_ranks([(19.7, 26.3), (17.9, 24.7), (1.0, 5.0)])  # 23.0±3.3 vs 21.3±3.4: tied
    [1, 1, 3]
    """
    ranks: list[int] = []
    for _low, high in intervals:
        rank = 1 + sum(other_low > high for other_low, _ in intervals)
        ranks.append(max(rank, ranks[-1]) if ranks else rank)
    return ranks


def rank_labels(ranks: Sequence[int]) -> list[str]:
    """``"1"`` for a rank held alone, ``"=2"`` for one shared (not distinguishable).

    >>> rank_labels([1, 2, 2, 4])
    ['1', '=2', '=2', '4']
    """
    return [f"={rank}" if ranks.count(rank) > 1 else str(rank) for rank in ranks]


#: How many standard deviations either side of a rating's mean its 95% interval spans.
RATING_Z = 1.96


def rating_interval(rating: Any) -> tuple[float, float]:
    """The 95% interval of an OpenSkill rating: ``mu ± 1.96 sigma``."""
    return (rating.mu - RATING_Z * rating.sigma, rating.mu + RATING_Z * rating.sigma)


def rating_rank_labels(board: RatingBoard) -> list[str]:
    """Rank labels of ``board.players`` (best first): players whose overall 95% intervals
    (``mu ± 1.96 sigma``) overlap share a rank, shown ``=k`` (see :func:`tied_ranks`)."""
    return rank_labels(tied_ranks([rating_interval(p.overall) for p in board.players]))


def task_score(task: str, rows: Sequence[EpisodeRow]) -> TaskScore:
    """Mean ± standard error over seeds of the rows' scores (see the module doc)."""
    if not rows:
        raise ValueError(f"task {task!r}: no episodes to score")
    per_seed: dict[int, list[float]] = defaultdict(list)
    for row in rows:
        per_seed[row.seed].append(row.score)
    seed_means = {seed: statistics.fmean(scores) for seed, scores in sorted(per_seed.items())}
    means = list(seed_means.values())
    se = statistics.stdev(means) / math.sqrt(len(means)) if len(means) > 1 else None
    return TaskScore(
        task=task,
        metric="/".join(sorted({row.metric for row in rows})),
        mean=statistics.fmean(means),
        se=se,
        seed_means=seed_means,
        n_episodes=len(rows),
        n_errors=sum(row.is_error for row in rows),
    )


def format_score(score: TaskScore | None, *, with_count: bool = True) -> str:
    """``"0.533 ± 0.041 (n=30)"``; ``"—"`` for a task the agent has no episodes of."""
    if score is None:
        return "—"
    se = "—" if score.se is None else f"{score.se:.3f}"
    count = f" (n={score.n_episodes})" if with_count else ""
    return f"{score.mean:.3f} ± {se}{count}"


#: Suites with more tasks than this are shown with one row per task and one column per agent.
WIDE_SUITE_TASKS = 5


def _rank_suffix(board: Leaderboard, result: AgentResult, task: str) -> str:
    """`` #k``: the agent's rank on ``task`` alone, shown when the board has a primary task."""
    rank = board.task_ranks.get(task, {}).get(result.agent)
    return f" #{rank}" if board.primary_task is not None and rank is not None else ""


def episodes_text(result: AgentResult) -> str:
    """The Episodes cell: ``"13"``, or ``"11 of 13 (incomplete)"`` for an incomplete run."""
    if result.complete:
        return str(result.n_episodes)
    return f"{result.n_episodes} of {result.n_expected} (incomplete)"


def _overall_text(result: AgentResult) -> str:
    return "—" if result.overall is None else f"{result.overall:.3f}"


def _lines(board: Leaderboard) -> list[tuple[str, AgentResult]]:
    """Every line of the board with its rank label: ranked agents, then reference agents."""
    ranked = [(str(rank), result) for rank, result in enumerate(board.agents, start=1)]
    return ranked + [("ref", result) for result in board.references]


def render_table(board: Leaderboard) -> Table:
    """``board`` as a rich :class:`~rich.table.Table` (transposed for suites with many tasks,
    so that it stays readable in a terminal)."""
    if len(board.tasks) > WIDE_SUITE_TASKS:
        return _render_transposed(board)
    table = Table(
        title=f"Suite [bold]{board.suite}[/] — mean ± standard error over seeds",
        caption=board.note,
    )
    table.add_column("Rank", justify="right")
    table.add_column("Agent", style="bold", overflow="fold", min_width=12)
    for task in board.tasks:
        table.add_column(f"{task}\n[dim]{board.metrics[task]}", justify="right")
    table.add_column(board.overall_label, justify="right", style="bold")
    table.add_column("Episodes", justify="right")
    table.add_column("Errors", justify="right")
    for rank, result in _lines(board):
        if rank == "ref" and result is board.references[0]:
            table.add_section()
        cells = []
        for task in board.tasks:
            score = result.scores.get(task)
            text = format_score(score, with_count=False)
            if score is not None:
                text += f" [dim](n={score.n_episodes})[/]" + _rank_suffix(board, result, task)
            cells.append(text)
        errors = f"[red]{result.n_errors}" if result.n_errors else "0"
        table.add_row(
            rank,
            result.agent,
            *cells,
            _overall_text(result),
            episodes_text(result),
            errors,
            style="dim" if result.reference else None,
        )
    return table


def _render_transposed(board: Leaderboard) -> Table:
    table = Table(
        title=f"Suite [bold]{board.suite}[/] — mean ± standard error over seeds",
        caption=f"agents ranked left to right; {board.note}",
    )
    table.add_column("Task", style="bold")
    table.add_column("Metric", style="dim")
    lines = _lines(board)
    for rank, result in lines:
        table.add_column(f"{rank}. {result.agent}", justify="right", overflow="fold")
    for task in board.tasks:
        table.add_row(
            task,
            board.metrics[task],
            *(
                format_score(result.scores.get(task)) + _rank_suffix(board, result, task)
                for _, result in lines
            ),
        )
    table.add_section()
    table.add_row(board.overall_label, "", *(_overall_text(r) for _, r in lines), style="bold")
    table.add_row("Episodes", "", *(episodes_text(r) for _, r in lines))
    table.add_row("Errors", "", *(f"[red]{r.n_errors}" if r.n_errors else "0" for _, r in lines))
    return table


def print_leaderboards(boards: Sequence[Leaderboard], console: Console | None = None) -> None:
    """Print each board as a rich table (to ``console``, default stdout)."""
    console = console or Console()
    if not boards:
        console.print("no results yet")
    for board in boards:
        console.print(render_table(board))


def to_markdown(boards: Sequence[Leaderboard]) -> str:
    """The boards as Markdown: a heading and a table per suite."""
    parts = []
    for board in boards:
        header = [
            "Rank",
            "Agent",
            *(f"{task} ({board.metrics[task]})" for task in board.tasks),
            board.overall_label,
            "Episodes",
            "Errors",
        ]
        align = ["---:", "---", *("---:" for _ in board.tasks), "---:", "---:", "---:"]
        lines = [
            f"## Suite `{board.suite}`",
            "",
            _markdown_row(header),
            _markdown_row(align),
        ]
        for rank, result in _lines(board):
            lines.append(
                _markdown_row(
                    [
                        rank,
                        result.agent,
                        *(
                            format_score(result.scores.get(task))
                            + _rank_suffix(board, result, task)
                            for task in board.tasks
                        ),
                        _overall_text(result),
                        episodes_text(result),
                        str(result.n_errors),
                    ]
                )
            )
        if board.primary_task is None and board.note == Leaderboard.plain_note:
            lines += [
                "",
                "Mean ± standard error over seeds; n = episodes; overall = mean of tasks.",
            ]
        else:
            lines += ["", f"Mean ± standard error over seeds; {board.note}."]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n" if parts else "No results yet.\n"


def write_markdown(
    boards: Sequence[Leaderboard], path: str | Path, ratings: Sequence[RatingBoard] = ()
) -> Path:
    """Write :func:`to_markdown` of ``boards`` (and :func:`ratings_to_markdown` of ``ratings``)
    to ``path`` (creating its folder); return it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = to_markdown(boards) if boards or not ratings else ""
    if ratings:
        text += ("\n" if text else "") + ratings_to_markdown(ratings)
    path.write_text(text, encoding="utf-8")
    return path


def _markdown_row(cells: Iterable[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


# ----------------------------------------------------------------------------- rated games
_RATING_TIES = "=k: a shared rank, 95% intervals (mu ± 1.96 sigma) overlap: not distinguishable"


def _rating_cell(rating: Any) -> str:
    if rating is None:
        return "—"
    wins, draws, losses = rating.record
    return f"{rating.mu:.1f}±{rating.sigma:.1f} {wins}/{draws}/{losses}"


def render_rating_table(board: RatingBoard) -> Table:
    """A :class:`~arenagym.benchmarks.ratings.RatingBoard` as a rich table: a column per
    player (best first), a row for the overall rating and one per game."""
    table = Table(
        title=f"Suite [bold]{board.suite}[/] — OpenSkill ratings (mu±sigma W/D/L)",
        caption=f"{board.n_games} games, {board.n_errors} errors (not rated); "
        f"players ranked by mu - 3 sigma over all games; {_RATING_TIES}",
    )
    table.add_column("Game", style="bold")
    for rank, line in zip(rating_rank_labels(board), board.players, strict=True):
        table.add_column(f"{rank}. {line.player}", justify="right", overflow="fold")
    table.add_row("Overall", *(_rating_cell(line.overall) for line in board.players), style="bold")
    for game in board.games:
        table.add_row(game, *(_rating_cell(line.games.get(game)) for line in board.players))
    return table


def print_rating_boards(boards: Sequence[RatingBoard], console: Console | None = None) -> None:
    """Print each rating board as a rich table (nothing when there are none)."""
    console = console or Console()
    for board in boards:
        console.print(render_rating_table(board))


def ratings_to_markdown(boards: Sequence[RatingBoard]) -> str:
    """The rating boards as Markdown: a heading and a table per suite ("" when none)."""
    parts = []
    for board in boards:
        labels = rating_rank_labels(board)
        header = [
            "Game",
            *(f"{rank}. {p.player}" for rank, p in zip(labels, board.players, strict=True)),
        ]
        lines = [
            f"## Suite `{board.suite}` — ratings",
            "",
            _markdown_row(header),
            _markdown_row(["---", *("---:" for _ in board.players)]),
            _markdown_row(["**Overall**", *(_rating_cell(p.overall) for p in board.players)]),
        ]
        for game in board.games:
            lines.append(
                _markdown_row([game, *(_rating_cell(p.games.get(game)) for p in board.players)])
            )
        lines += [
            "",
            f"OpenSkill (Plackett-Luce) mu±sigma and wins/draws/losses; {board.n_games} games, "
            f"{board.n_errors} errors (not rated); players ranked by mu - 3 sigma; "
            f"{_RATING_TIES}.",
        ]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n" if parts else ""
