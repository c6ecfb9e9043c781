"""Leaderboards from the results store: per agent × task, mean ± standard error over seeds.

For each agent and task, the metric (the ``score`` column: clean reward by default) is first
averaged over each seed's episodes; the task's score is the mean of those per-seed means, and its
standard error is their sample standard deviation / sqrt(number of seeds) (shown as "—" with one
seed). Seeds, not episodes, are the unit because episodes of one seed are not independent draws
of what a benchmark varies between runs. An agent's overall score is the unweighted mean of its
task scores; agents are ranked by it. Episodes that ended in ``agent_error``/``env_error`` count
with the score they reached (so a crashing agent is not flattered) and are shown as errors;
episodes stopped by a time limit (``agent_timeout``) count the same way.

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
from typing import Any

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

    @property
    def overall_label(self) -> str:
        """The overall column's header: ``Overall``, or ``Overall (TASK)`` for a primary task."""
        return "Overall" if self.primary_task is None else f"Overall ({self.primary_task})"

    @property
    def note(self) -> str:
        """What the numbers are, for a caption or a footnote."""
        if self.primary_task is None:
            text = "n = episodes; overall = mean of the task scores"
        else:
            text = (
                f"n = episodes; overall = the score of task {self.primary_task} (the suite's "
                "primary task; its tasks are on different scales, so each is ranked on its own: "
                "#k)"
            )
        if self.references:
            text += "; ref = reference agents, outside the ranking"
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
            )
        )
    return [board for board in boards if board.agents or board.references]


def leaderboard_from_rows(
    suite: str,
    rows: Iterable[EpisodeRow],
    *,
    primary_task: str | None = None,
    reference_agents: Iterable[str] = (),
) -> Leaderboard:
    """The leaderboard of ``suite`` from its rows (rows of other suites are ignored).

    ``primary_task`` makes that task's score the overall one; agents whose name, or whose spec
    and kwargs (as :func:`~arenagym.benchmarks.runner.agent_display_name` writes them), are in
    ``reference_agents`` become reference lines (see the module doc).
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
            sorted({r.metric for (_, t), rs in by_cell.items() if t == task for r in rs})
        )
        for task in tasks
    }
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
            )
        )
    results.sort(
        key=lambda r: (r.overall is None, -r.overall if r.overall is not None else 0.0, r.agent)
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
    )


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
            str(result.n_episodes),
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
    table.add_row("Episodes", "", *(str(r.n_episodes) for _, r in lines))
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
                        str(result.n_episodes),
                        str(result.n_errors),
                    ]
                )
            )
        if board.primary_task is None and not board.references:
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
        "players ranked by mu - 3 sigma over all games",
    )
    table.add_column("Game", style="bold")
    for rank, line in enumerate(board.players, start=1):
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
        header = ["Game", *(f"{rank}. {p.player}" for rank, p in enumerate(board.players, 1))]
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
            f"{board.n_errors} errors (not rated); players ranked by mu - 3 sigma.",
        ]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n" if parts else ""
