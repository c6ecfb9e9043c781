"""The static web leaderboard: ``arenagym leaderboard --html DIR`` writes a self-contained site.

The site is plain files: ``index.html`` (every suite), one page per suite, and under ``e/`` one
page per number (the episodes behind it) and one per episode (its stored row and transcript). It
needs no server and nothing from the network at view time: no scripts, no web fonts, no CDN; the
style sheet is inline in every page. Open ``index.html`` from disk, or publish the folder as is.

What a suite page shows:

* **Scores**: per agent, the overall score and each task's mean with its 95% bootstrap confidence
  interval. Every number links to the list of episodes behind it, each of which links to the
  episode's page (the row: stop reason, error, rewards; and its transcript when the store has
  one, :meth:`~arenagym.benchmarks.store.ResultsStore.transcript`). Columns are headed by the
  task's metric (:func:`~arenagym.benchmarks.leaderboard.metric_label`).
* **Intervals**: a two-stage (cluster) bootstrap that follows the leaderboard's unit: resample the
  seeds of a task with replacement, then each chosen seed's episodes, take the mean of the seed
  means (and the mean over tasks for the overall score); 1000 draws, 2.5th and 97.5th
  percentiles. The generator is seeded from the suite, agent and task names, so the same store
  writes the same pages, and adding an agent does not move another agent's intervals.
* **Ranks that say what the data can tell apart**: two agents are compared by a *paired*
  bootstrap on the episodes both played (same task, seed and episode: the same problem), which
  resamples the per-episode differences as above; when the difference's 95% interval holds 0
  the pair is "not distinguishable" (the pairwise table shows ``≈``). An agent's rank is 1 + the
  number of agents distinguishably better than it (made non-decreasing down the list), so agents
  that cannot be told apart share a rank, shown ``=k``. Incomplete runs (fewer episodes than the
  suite asks for) are flagged and listed after every complete run, never above one.
* **Ratings** of suites with games: OpenSkill mu ± sigma, the 95% interval mu ± 1.96 sigma, and
  W/D/L, overall and per game; players whose intervals overlap share a rank (``=k``).
* **Agents**: spec (secrets redacted with :func:`~arenagym.agents.specs.redact_spec`), model,
  parameters, dates, tokens (summed from transcripts, where the agent reported them) and time per
  episode.
* **Plots**: each task's scores with their intervals, per-game rating bars, and a heat map of
  agents x tasks (colour: the score scaled within its task, since tasks have different scales;
  the number printed is the score itself).

Why matplotlib writing inline SVG: the figures are drawn by the same library as the rest of the
project's plots (the ``plots`` and ``test`` extras), computed once when the site is written, and
embedded in the page as SVG elements: the pages stay single self-contained files, need no
JavaScript to draw anything, and the figures are vectors, crisp at any zoom and in print, with
their text searchable. (A JavaScript charting library would need a CDN or a bundled script; PNG
would blur when zoomed.) When matplotlib is not installed the pages are written without plots and
say so.

Example:
    >>> import tempfile
    >>> from arenagym.benchmarks.store import EpisodeRow, ResultsStore
    >>> store = ResultsStore(":memory:")
    >>> for seed in (0, 1):
    ...     _ = store.add(EpisodeRow(suite="s", task="t", env_id="E-v0", env_kwargs={},
    ...             agent="a", seed=seed, episode=0, reset_seed=0, metric="success",
    ...             score=float(seed), reward=0.0, clean_reward=0.0, turns=1, stop_reason="x"))
    >>> folder = tempfile.mkdtemp()
    >>> index = write_site(store, folder, plots=False)
    >>> index.name, "suite-s" in index.read_text(encoding="utf-8")
    ('index.html', True)
"""

from __future__ import annotations

import datetime
import hashlib
import html
import io
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from arenagym.agents.specs import LLM_SPEC_KINDS, redact_secrets, redact_spec
from arenagym.benchmarks.leaderboard import (
    AgentResult,
    Leaderboard,
    build_leaderboards,
    episodes_text,
    rank_labels,
    rating_interval,
    tied_ranks,
)
from arenagym.benchmarks.store import EpisodeRow, MatchRow, ResultsStore

__all__ = [
    "BOOTSTRAP_DRAWS",
    "Interval",
    "bootstrap_interval",
    "paired_difference",
    "site_figures",
    "write_site",
]

#: Bootstrap draws per interval.
BOOTSTRAP_DRAWS = 1000

#: The confidence level of every interval on the site.
CONFIDENCE = 0.95

#: Scores per (task, seed): the scores of a seed's episodes, by episode index.
Samples = dict[str, dict[int, dict[int, float]]]


# ----------------------------------------------------------------------------- statistics
@dataclass(frozen=True)
class Interval:
    """A point estimate and its 95% bootstrap interval ``[low, high]``."""

    estimate: float
    low: float
    high: float

    def excludes_zero(self) -> bool:
        """Whether the interval lies wholly above or below 0 (a distinguishable difference)."""
        return self.low > 0 or self.high < 0

    def text(self) -> str:
        """``"0.500 [0.250, 0.750]"``."""
        return f"{self.estimate:.3f} [{self.low:.3f}, {self.high:.3f}]"


def _rng(*key: object) -> np.random.Generator:
    """A generator seeded from ``key`` (names, not positions: stable when agents are added)."""
    digest = hashlib.sha256(json.dumps([str(k) for k in key]).encode("utf-8")).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _statistic(samples: Samples) -> float:
    """The mean over tasks of the mean over seeds of the mean of the episodes."""
    return float(
        np.mean(
            [
                np.mean([np.mean(list(s.values())) for s in seeds.values()])
                for seeds in samples.values()
            ]
        )
    )


def bootstrap_interval(
    samples: Samples, key: Sequence[object], draws: int = BOOTSTRAP_DRAWS
) -> Interval | None:
    """The 95% two-stage bootstrap interval of :func:`_statistic` over ``samples`` (task -> seed
    -> episode -> score): per draw, each task's seeds are resampled with replacement and each
    seed's episodes too; the generator is seeded from ``key``. ``None`` without samples.

    >>> samples = {"t": {0: {0: 1.0, 1: 0.0}, 1: {0: 1.0, 1: 1.0}}}
    >>> a = bootstrap_interval(samples, ["s", "a", "t"])
    >>> a.estimate, a == bootstrap_interval(samples, ["s", "a", "t"]), 0.0 <= a.low <= a.high <= 1.0
    (0.75, True, True)
    """
    samples = {task: seeds for task, seeds in samples.items() if seeds}
    if not samples:
        return None
    rng = _rng(*key)
    total = np.zeros(draws)
    for task in sorted(samples):
        seeds = [
            np.array([s[e] for e in sorted(s)], dtype=float)
            for _, s in sorted(samples[task].items())
        ]
        # each seed's resampled episode means, one per draw: shape (seeds, draws)
        seed_means = np.stack(
            [
                values[rng.integers(0, len(values), (draws, len(values)))].mean(axis=1)
                for values in seeds
            ]
        )
        picks = rng.integers(0, len(seeds), (draws, len(seeds)))
        total += seed_means[picks, np.arange(draws)[:, None]].mean(axis=1)
    total /= len(samples)
    alpha = (1 - CONFIDENCE) / 2
    low, high = np.quantile(total, [alpha, 1 - alpha])
    return Interval(_statistic(samples), float(low), float(high))


def paired_difference(
    first: Samples, second: Samples, key: Sequence[object], draws: int = BOOTSTRAP_DRAWS
) -> Interval | None:
    """``first - second`` on the episodes both have (same task, seed and episode), with its
    paired bootstrap interval (:func:`bootstrap_interval` of the per-episode differences);
    ``None`` when they share no episode.

    >>> a = {"t": {0: {0: 1.0, 1: 1.0}, 1: {0: 1.0}}}
    >>> b = {"t": {0: {0: 0.0, 1: 0.0}, 2: {0: 0.0}}}
    >>> paired_difference(a, b, ["k"]).estimate   # seed 0 only: shared
    1.0
    """
    shared: Samples = {}
    for task in first.keys() & second.keys():
        for seed in first[task].keys() & second[task].keys():
            episodes = first[task][seed].keys() & second[task][seed].keys()
            if episodes:
                shared.setdefault(task, {})[seed] = {
                    e: first[task][seed][e] - second[task][seed][e] for e in episodes
                }
    return bootstrap_interval(shared, key, draws) if shared else None


def _paired_ranks(agents: Sequence[str], better: Callable[[str, str], bool]) -> list[int]:
    """Ranks of ``agents`` (listed best first): 1 + how many are distinguishably better
    (``better(j, i)``), made non-decreasing."""
    ranks: list[int] = []
    for agent in agents:
        rank = 1 + sum(better(other, agent) for other in agents if other != agent)
        ranks.append(max(rank, ranks[-1]) if ranks else rank)
    return ranks


# ----------------------------------------------------------------------------- one suite's data
@dataclass
class _SuiteData:
    """Everything a suite page needs, computed once."""

    board: Leaderboard | None
    rows: list[EpisodeRow]
    samples: dict[str, Samples] = field(default_factory=dict)  # agent -> samples
    cells: dict[tuple[str, str], Interval | None] = field(default_factory=dict)
    overall: dict[str, Interval | None] = field(default_factory=dict)
    pairs: dict[tuple[str, str], Interval | None] = field(default_factory=dict)
    ranks: dict[str, str] = field(default_factory=dict)  # agent -> rank label
    task_ranks: dict[str, dict[str, str]] = field(default_factory=dict)
    ratings: Any = None
    rating_note: str = ""
    matches: list[MatchRow] = field(default_factory=list)


def _samples(rows: Iterable[EpisodeRow]) -> dict[str, Samples]:
    found: dict[str, Samples] = defaultdict(lambda: defaultdict(dict))
    for row in rows:
        found[row.agent][row.task].setdefault(row.seed, {})[row.episode] = row.score
    return {agent: {t: dict(s) for t, s in tasks.items()} for agent, tasks in found.items()}


def _overall_tasks(board: Leaderboard, samples: Samples) -> Samples:
    """The samples the overall score is over: the primary task's, or every task's."""
    if board.primary_task is not None:
        return {t: s for t, s in samples.items() if t == board.primary_task}
    return samples


def _suite_data(
    store: ResultsStore, board: Leaderboard | None, suite: str, draws: int
) -> _SuiteData:
    rows = store.rows(suite=suite) if board is not None else []
    data = _SuiteData(board=board, rows=rows)
    if board is not None:
        data.samples = _samples(rows)
        lines = [*board.agents, *board.references]
        for result in lines:
            samples = data.samples.get(result.agent, {})
            for task in board.tasks:
                if task in samples:
                    data.cells[result.agent, task] = bootstrap_interval(
                        {task: samples[task]}, [suite, result.agent, task], draws
                    )
            data.overall[result.agent] = bootstrap_interval(
                _overall_tasks(board, samples), [suite, result.agent, "overall"], draws
            )
        ranked = [r.agent for r in board.agents]
        for first in ranked:
            for second in ranked:
                if first != second:
                    data.pairs[first, second] = paired_difference(
                        _overall_tasks(board, data.samples.get(first, {})),
                        _overall_tasks(board, data.samples.get(second, {})),
                        [suite, first, second, "overall"],
                        draws,
                    )
        data.ranks = _board_rank_labels(board, data)
        for task in board.tasks:
            data.task_ranks[task] = _task_rank_labels(board, data, task, suite, draws)
    data.matches = store.match_rows(suite=suite)
    if data.matches:
        try:
            from arenagym.benchmarks.ratings import rate_matches

            data.ratings = rate_matches(suite, data.matches)
        except ImportError as error:
            data.rating_note = f"ratings need the openskill package ({error})"
    return data


def _board_rank_labels(board: Leaderboard, data: _SuiteData) -> dict[str, str]:
    """Tie-aware rank labels of the ranked agents: complete runs first, then incomplete ones
    (ranked among themselves after the last complete one); no rank without an overall score."""
    labels: dict[str, str] = {}
    offset = 0
    for complete in (True, False):
        group = [r.agent for r in board.agents if r.complete == complete and r.overall is not None]

        def better(first: str, second: str) -> bool:
            difference = data.pairs.get((first, second))
            return difference is not None and difference.low > 0

        ranks = _paired_ranks(group, better)
        for agent, label in zip(group, rank_labels(ranks), strict=True):
            tie = label.startswith("=")
            labels[agent] = ("=" if tie else "") + str(int(label.lstrip("=")) + offset)
        offset += len(group)
    return labels


def _task_rank_labels(
    board: Leaderboard, data: _SuiteData, task: str, suite: str, draws: int
) -> dict[str, str]:
    """Tie-aware ranks of the ranked agents on ``task`` alone (paired bootstrap)."""
    group = sorted(
        (r for r in board.agents if task in r.scores),
        key=lambda r: (-r.scores[task].mean, r.agent),
    )
    agents = [r.agent for r in group]
    cache: dict[tuple[str, str], bool] = {}

    def better(first: str, second: str) -> bool:
        if (first, second) not in cache:
            difference = paired_difference(
                {task: data.samples[first][task]},
                {task: data.samples[second][task]},
                [suite, first, second, task],
                draws,
            )
            cache[first, second] = difference is not None and difference.low > 0
        return cache[first, second]

    return dict(zip(agents, rank_labels(_paired_ranks(agents, better)), strict=True))


# ----------------------------------------------------------------------------- HTML helpers
_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;
max-width:1200px;padding:1rem 1.5rem;color:#1a1a1a;background:#fff;line-height:1.4}
a{color:#0b57d0}h1{font-size:1.6rem}h2{margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.9rem}
th,td{border:1px solid #ddd;padding:.25rem .5rem;vertical-align:top}
th{background:#f3f3f3;text-align:left}td.num{text-align:right;white-space:nowrap}
tr.ref td{color:#666;font-style:italic}tr.incomplete td{background:#fff8e1}
.badge{display:inline-block;font-size:.75rem;padding:0 .35rem;border-radius:.6rem;
background:#eee;margin-left:.3rem;font-style:normal}
.badge.incomplete{background:#ffe08a}.badge.error{background:#f8c7c7}
.badge.tie{background:#dde8ff}.ci{color:#555;font-size:.8rem}
.note{color:#555;font-size:.9rem}figure{margin:.5rem 0 1.5rem}
figure svg{max-width:100%;height:auto}pre{white-space:pre-wrap;word-break:break-word;
background:#f7f7f7;padding:.5rem;border:1px solid #e3e3e3;margin:.2rem 0}
.turn{border-left:3px solid #0b57d0;padding-left:.6rem;margin:1rem 0}
.turn h3{font-size:1rem;margin:.2rem 0}td.same{color:#666}td.diff-pos{background:#e6f4ea}
td.diff-neg{background:#fce8e6}nav{font-size:.9rem;margin-bottom:1rem}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _slug(*parts: object) -> str:
    """A file name stem for ``parts``: readable, and unique by a hash of the parts."""
    text = "-".join(str(p) for p in parts)
    readable = re.sub(r"[^A-Za-z0-9._]+", "-", text).strip("-.")[:60] or "x"
    digest = hashlib.sha256(json.dumps([str(p) for p in parts]).encode("utf-8")).hexdigest()[:10]
    return f"{readable}-{digest}"


def _page(title: str, body: str, *, root: str, crumbs: Sequence[tuple[str, str]] = ()) -> str:
    """A whole HTML page; ``root`` is the relative path to the site's root ("" or "../")."""
    nav = [f'<a href="{root}index.html">All suites</a>'] + [
        f'<a href="{_e(href)}">{_e(text)}</a>' for href, text in crumbs
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<link rel="icon" href="data:,">\n'
        f"<title>{_e(title)} — arenagym</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"<nav>{' › '.join(nav)}</nav>\n<h1>{_e(title)}</h1>\n{body}\n"
        '<p class="note">Written by <code>arenagym leaderboard --html</code>; no scripts, '
        "nothing loaded from the network.</p>\n</body>\n</html>\n"
    )


def _table(header: Sequence[str], rows: Iterable[str], cls: str = "") -> str:
    head = "".join(f"<th>{h}</th>" for h in header)
    klass = f' class="{cls}"' if cls else ""
    return f"<table{klass}><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _num(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _time(stamp: float) -> str:
    if not stamp:
        return "—"
    return datetime.datetime.fromtimestamp(stamp, datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, indent=1, default=repr)


# ----------------------------------------------------------------------------- plots
def _matplotlib() -> Any:
    """matplotlib's ``Figure`` class, or ``None`` when matplotlib is not installed."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return None
    return Figure


def _svg(figure: Any, name: str, label: str) -> str:
    """``figure`` as an inline ``<svg>`` element (reproducible: fixed ids, no date)."""
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": name, "svg.fonttype": "none"}):
        figure.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches="tight")
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    text = text.replace("<svg ", f'<svg role="img" aria-label="{_e(label)}" ', 1)
    return f'<figure>{text}<figcaption class="note">{_e(label)}</figcaption></figure>'


def site_figures(data: _SuiteData, suite: str) -> dict[str, str]:
    """The suite's plots as inline SVG, by name (``heatmap``, ``task:NAME``, ``ratings``); empty
    when matplotlib is missing."""
    figure_class = _matplotlib()
    if figure_class is None:
        return {}
    figures: dict[str, str] = {}
    board = data.board
    if board is not None and board.tasks:
        lines = [*board.agents, *board.references]
        for task in board.tasks:
            shown = [r for r in lines if data.cells.get((r.agent, task)) is not None]
            if not shown:
                continue
            fig = figure_class(figsize=(6.0, 0.45 * len(shown) + 1.0))
            ax = fig.subplots()
            ys = np.arange(len(shown))[::-1]
            for y, result in zip(ys, shown, strict=True):
                cell = data.cells[result.agent, task]
                ax.errorbar(
                    cell.estimate,
                    y,
                    xerr=[[cell.estimate - cell.low], [cell.high - cell.estimate]],
                    fmt="o",
                    color="#888" if result.reference or not result.complete else "#0b57d0",
                    capsize=4,
                )
            ax.set_yticks(ys, [r.agent for r in shown])
            ax.set_xlabel(f"{task}: {board.metrics[task]} (mean, 95% bootstrap interval)")
            ax.grid(axis="x", alpha=0.3)
            figures[f"task:{task}"] = _svg(
                fig, f"{suite}/{task}", f"{task}: each agent's score with its 95% interval"
            )
        if len(board.tasks) > 1 or len(lines) > 1:
            matrix = np.full((len(lines), len(board.tasks)), np.nan)
            for i, result in enumerate(lines):
                for j, task in enumerate(board.tasks):
                    if task in result.scores:
                        matrix[i, j] = result.scores[task].mean
            scaled = matrix.copy()
            for j in range(matrix.shape[1]):
                column = matrix[:, j]
                low, high = np.nanmin(column), np.nanmax(column)
                scaled[:, j] = (column - low) / (high - low) if high > low else 0.5
            fig = figure_class(figsize=(1.1 * len(board.tasks) + 2.5, 0.45 * len(lines) + 1.6))
            ax = fig.subplots()
            ax.pcolormesh(  # vector cells (imshow would embed a raster image)
                np.ma.masked_invalid(scaled),
                cmap="viridis",
                vmin=0,
                vmax=1,
                edgecolors="white",
                linewidth=0.5,
            )
            ax.invert_yaxis()
            for i in range(matrix.shape[0]):
                for j in range(matrix.shape[1]):
                    if not np.isnan(matrix[i, j]):
                        ax.text(
                            j + 0.5,
                            i + 0.5,
                            f"{matrix[i, j]:.2f}",
                            ha="center",
                            va="center",
                            color="white" if scaled[i, j] < 0.6 else "black",
                            fontsize=8,
                        )
            ax.set_xticks(np.arange(len(board.tasks)) + 0.5, board.tasks, rotation=45, ha="right")
            ax.set_yticks(np.arange(len(lines)) + 0.5, [r.agent for r in lines])
            figures["heatmap"] = _svg(
                fig,
                f"{suite}/heatmap",
                "Agents x tasks: colour is the score scaled within its task (tasks have "
                "different scales), the number is the score",
            )
    ratings = data.ratings
    if ratings is not None and ratings.players:
        pools = ["Overall", *ratings.games]
        columns = min(3, len(pools))
        rows_ = -(-len(pools) // columns)
        fig = figure_class(
            figsize=(4.2 * columns, 0.35 * len(ratings.players) * rows_ + 1.2 * rows_)
        )
        axes = np.atleast_1d(fig.subplots(rows_, columns, squeeze=False)).ravel()
        names = [p.player for p in ratings.players]
        for ax, pool in zip(axes, pools, strict=False):
            got = [(p.overall if pool == "Overall" else p.games.get(pool)) for p in ratings.players]
            ys = np.arange(len(names))[::-1]
            mus = [g.mu if g is not None else np.nan for g in got]
            errors = [1.96 * g.sigma if g is not None else 0.0 for g in got]
            ax.barh(ys, mus, xerr=errors, color="#0b57d0", alpha=0.75, capsize=3)
            ax.set_yticks(ys, names, fontsize=8)
            ax.set_title(pool, fontsize=9)
            ax.tick_params(axis="x", labelsize=8)
        for ax in axes[len(pools) :]:
            ax.set_visible(False)
        fig.tight_layout()
        figures["ratings"] = _svg(
            fig, f"{suite}/ratings", "OpenSkill mu per game with its 95% interval (mu ± 1.96 sigma)"
        )
    return figures


# ----------------------------------------------------------------------------- agents
def _model_of(spec: str) -> str:
    """The model an LLM spec names (``hf:MODEL``, ``openai:URL,model=NAME``), else "—"."""
    kind, colon, rest = spec.partition(":")
    if not colon or kind not in LLM_SPEC_KINDS:
        return "—"
    target, *pairs = rest.split(",")
    for pair in pairs:
        key, _, value = pair.partition("=")
        if key.strip() == "model":
            return value
    return target if kind != "openai" else "—"


@dataclass
class _AgentInfo:
    specs: set[str] = field(default_factory=set)
    kwargs: set[str] = field(default_factory=set)
    first: float = 0.0
    last: float = 0.0
    durations: list[float] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    with_tokens: int = 0


def _agent_infos(rows: Sequence[EpisodeRow]) -> dict[str, _AgentInfo]:
    infos: dict[str, _AgentInfo] = defaultdict(_AgentInfo)
    for row in rows:
        info = infos[row.agent]
        if row.agent_spec:
            info.specs.add(redact_spec(row.agent_spec))
        info.kwargs.add(json.dumps(redact_secrets(row.agent_kwargs), sort_keys=True, default=repr))
        if row.started_at:
            info.first = min(info.first, row.started_at) if info.first else row.started_at
        info.last = max(info.last, row.finished_at)
        info.durations.append(row.duration_s)
    return dict(infos)


def _count_tokens(info: _AgentInfo, turns: list[dict[str, Any]] | None) -> None:
    if not turns:
        return
    found = False
    for turn in turns:
        if not isinstance(turn, dict):
            continue
        for key in ("prompt_tokens", "completion_tokens"):
            value = turn.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                found = True
                setattr(info, key, getattr(info, key) + value)
    info.with_tokens += found


def _agents_table(board: Leaderboard, infos: dict[str, _AgentInfo]) -> str:
    rows = []
    for result in [*board.agents, *board.references]:
        info = infos.get(result.agent, _AgentInfo())
        specs = sorted(info.specs)
        spec = "<br>".join(f"<code>{_e(s)}</code>" for s in specs) or "—"
        model = ", ".join(sorted({_model_of(s) for s in specs})) or "—"
        kwargs = "<br>".join(f"<code>{_e(k)}</code>" for k in sorted(info.kwargs) if k != "{}")
        tokens = (
            f"{info.prompt_tokens:,} prompt + {info.completion_tokens:,} completion "
            f"(from {info.with_tokens} transcripts)"
            if info.with_tokens
            else "not recorded"
        )
        per_episode = f"{float(np.mean(info.durations)):.2f} s" if info.durations else "—"
        dates = f"{_time(info.first)} – {_time(info.last)}"
        rows.append(
            f'<tr data-agent="{_e(result.agent)}"><td><a href="e/{_agent_page(board.suite, result.agent)}">'
            f"{_e(result.agent)}</a></td><td>{spec}</td><td>{_e(model)}</td>"
            f"<td>{kwargs or '—'}</td><td>{_e(dates)}</td><td>{_e(tokens)}</td>"
            f'<td class="num">{_e(per_episode)}</td></tr>'
        )
    return _table(
        [
            "Agent",
            "Spec (secrets redacted)",
            "Model",
            "Parameters",
            "Run (first – last episode)",
            "Tokens",
            "Time per episode",
        ],
        rows,
    )


# ----------------------------------------------------------------------------- page names
def _suite_page(suite: str) -> str:
    return f"suite-{_slug(suite)}.html"


def _cell_page(suite: str, agent: str, task: str) -> str:
    return f"cell-{_slug(suite, agent, task)}.html"


def _agent_page(suite: str, agent: str) -> str:
    return f"agent-{_slug(suite, agent)}.html"


def _episode_page(row: EpisodeRow) -> str:
    return f"ep-{_slug(row.suite, row.agent, row.task, row.seed, row.episode)}.html"


def _games_page(suite: str, player: str, game: str | None) -> str:
    return f"games-{_slug(suite, player, game or '*overall*')}.html"


def _game_page(row: MatchRow) -> str:
    return f"game-{_slug(row.suite, row.task, *row.lineup, row.seed, row.episode)}.html"


# ----------------------------------------------------------------------------- suite page
def _incomplete_badge(result: AgentResult) -> str:
    if result.complete:
        return ""
    return (
        f'<span class="badge incomplete" title="fewer episodes than the suite asks for">'
        f"incomplete: {result.n_episodes} of {result.n_expected}</span>"
    )


def _rank_cell(label: str) -> str:
    if label.startswith("="):
        return (
            f'<td class="num" title="not distinguishable from the others ranked {label[1:]}">'
            f'{_e(label[1:])}<span class="badge tie">tied</span></td>'
        )
    return f'<td class="num">{_e(label)}</td>'


def _scores_section(data: _SuiteData, figures: dict[str, str]) -> str:
    board = data.board
    assert board is not None
    header = ["Rank", "Agent", f'{_e(board.overall_label)}<br><span class="ci">95% interval</span>']
    header += [
        f'<a href="#task-{_slug(task)}">{_e(task)}</a><br><span class="ci">{_e(board.metrics[task])}</span>'
        for task in board.tasks
    ]
    header += ["Episodes", "Errors"]
    rows = []
    for result in [*board.agents, *board.references]:
        overall = data.overall.get(result.agent)
        link = f"e/{_agent_page(board.suite, result.agent)}"
        if result.overall is None:
            overall_cell = '<td class="num">—</td>'
        else:
            interval = (
                f'<br><span class="ci">[{overall.low:.3f}, {overall.high:.3f}]</span>'
                if overall is not None
                else ""
            )
            overall_cell = (
                f'<td class="num overall" data-agent="{_e(result.agent)}">'
                f'<a href="{_e(link)}">{result.overall:.3f}</a>{interval}</td>'
            )
        cells = []
        for task in board.tasks:
            score = result.scores.get(task)
            cell = data.cells.get((result.agent, task))
            if score is None:
                cells.append('<td class="num">—</td>')
                continue
            interval = (
                f'<br><span class="ci">[{cell.low:.3f}, {cell.high:.3f}]</span>' if cell else ""
            )
            href = f"e/{_cell_page(board.suite, result.agent, task)}"
            cells.append(
                f'<td class="num score" data-agent="{_e(result.agent)}" data-task="{_e(task)}">'
                f'<a href="{_e(href)}">{score.mean:.3f}</a>{interval}</td>'
            )
        if result.reference:
            rank = '<td class="num">ref</td>'
        elif result.agent in data.ranks:
            rank = _rank_cell(data.ranks[result.agent])
        else:
            rank = '<td class="num">—</td>'
        classes = " ".join(
            c for c, on in (("ref", result.reference), ("incomplete", not result.complete)) if on
        )
        errors = f'<span class="badge error">{result.n_errors}</span>' if result.n_errors else "0"
        rows.append(
            f'<tr class="{classes}" data-agent="{_e(result.agent)}">{rank}'
            f'<td><a href="{_e(link)}">{_e(result.agent)}</a>{_incomplete_badge(result)}</td>'
            f'{overall_cell}{"".join(cells)}<td class="num episodes">{_e(episodes_text(result))}</td>'
            f'<td class="num">{errors}</td></tr>'
        )
    parts = [
        '<h2 id="scores">Scores</h2>',
        f'<p class="note">Mean over seeds of each seed\'s mean episode score; below each, its '
        f"95% bootstrap interval (seeds resampled, then each seed's episodes; seeded, so this page "
        f"is reproducible). {_e(board.note)}. Ranks come from paired bootstrap comparisons on "
        'shared episodes (see "Pairwise comparisons"): agents that cannot be told apart share a '
        'rank, marked <span class="badge tie">tied</span>. Incomplete runs are never ranked '
        "above complete ones. Every number links to the episodes behind it.</p>",
        _table(header, rows, "leaderboard"),
    ]
    if "heatmap" in figures:
        parts.append(figures["heatmap"])
    return "\n".join(parts)


def _tasks_section(data: _SuiteData, figures: dict[str, str]) -> str:
    board = data.board
    assert board is not None
    parts = ['<h2 id="tasks">Tasks</h2>']
    for task in board.tasks:
        parts.append(
            f'<h3 id="task-{_slug(task)}">{_e(task)} <span class="ci">metric: '
            f"{_e(board.metrics[task])}; expected episodes: "
            f"{board.expected_episodes.get(task, '—')}</span></h3>"
        )
        lines = sorted(
            (r for r in [*board.agents, *board.references] if task in r.scores),
            key=lambda r: (r.reference, -r.scores[task].mean, r.agent),
        )
        rows = []
        for result in lines:
            score = result.scores[task]
            cell = data.cells.get((result.agent, task))
            href = f"e/{_cell_page(board.suite, result.agent, task)}"
            label = data.task_ranks.get(task, {}).get(result.agent)
            rank = '<td class="num">ref</td>' if result.reference else _rank_cell(label or "—")
            rows.append(
                f'<tr class="{"ref" if result.reference else ""}">{rank}<td>{_e(result.agent)}</td>'
                f'<td class="num"><a href="{_e(href)}">{score.mean:.3f}</a></td>'
                f'<td class="num">{"—" if cell is None else f"[{cell.low:.3f}, {cell.high:.3f}]"}</td>'
                f'<td class="num">{_num(score.se)}</td><td class="num">{score.n_seeds}</td>'
                f'<td class="num"><a href="{_e(href)}">{score.n_episodes}</a></td>'
                f'<td class="num">{score.n_errors}</td></tr>'
            )
        parts.append(
            _table(
                [
                    "Rank on task",
                    "Agent",
                    "Mean",
                    "95% interval",
                    "± SE",
                    "Seeds",
                    "Episodes",
                    "Errors",
                ],
                rows,
            )
        )
        if f"task:{task}" in figures:
            parts.append(figures[f"task:{task}"])
    return "\n".join(parts)


def _pairs_section(data: _SuiteData) -> str:
    board = data.board
    assert board is not None
    agents = [r.agent for r in board.agents]
    if len(agents) < 2:
        return ""
    rows = []
    for first in agents:
        cells = []
        for second in agents:
            if first == second:
                cells.append('<td class="num same">·</td>')
                continue
            difference = data.pairs.get((first, second))
            if difference is None:
                cells.append('<td class="num same" title="no shared episodes">n/a</td>')
            elif difference.excludes_zero():
                klass = "diff-pos" if difference.estimate > 0 else "diff-neg"
                cells.append(
                    f'<td class="num {klass}" title="distinguishable">{difference.estimate:+.3f}'
                    f'<br><span class="ci">[{difference.low:+.3f}, {difference.high:+.3f}]</span></td>'
                )
            else:
                cells.append(
                    f'<td class="num same" title="not distinguishable: the interval holds 0">'
                    f'≈ {difference.estimate:+.3f}<br><span class="ci">[{difference.low:+.3f}, '
                    f"{difference.high:+.3f}]</span></td>"
                )
        rows.append(f"<tr><th>{_e(first)}</th>{''.join(cells)}</tr>")
    return "\n".join(
        [
            '<h2 id="pairs">Pairwise comparisons</h2>',
            '<p class="note">Row minus column on the overall score, computed on the episodes both '
            "agents played (same task, seed and episode) with a paired bootstrap of the "
            "per-episode differences (95% interval). <b>≈</b>: the interval holds 0, the two are "
            "not distinguishable on this data; coloured cells are.</p>",
            _table(["row − column", *(_e(a) for a in agents)], rows, "pairs"),
        ]
    )


def _ratings_section(data: _SuiteData, figures: dict[str, str], suite: str) -> str:
    if data.ratings is None:
        return (
            f'<h2 id="ratings">Ratings</h2><p class="note">{_e(data.rating_note)}</p>'
            if data.rating_note
            else ""
        )
    board = data.ratings
    labels = rank_labels(tied_ranks([rating_interval(p.overall) for p in board.players]))

    def rating_cell(rating: Any, player: str, game: str | None) -> str:
        if rating is None:
            return '<td class="num">—</td>'
        low, high = rating_interval(rating)
        wins, draws, losses = rating.record
        href = f"e/{_games_page(suite, player, game)}"
        return (
            f'<td class="num rating" data-player="{_e(player)}" data-game="{_e(game or "")}">'
            f'<a href="{_e(href)}">{rating.mu:.1f} ± {rating.sigma:.1f}</a><br>'
            f'<span class="ci">[{low:.1f}, {high:.1f}] · {wins}/{draws}/{losses}</span></td>'
        )

    rows = []
    for label, player in zip(labels, board.players, strict=True):
        rows.append(
            f'<tr data-player="{_e(player.player)}">{_rank_cell(label)}<td>{_e(player.player)}</td>'
            f"{rating_cell(player.overall, player.player, None)}"
            + "".join(rating_cell(player.games.get(g), player.player, g) for g in board.games)
            + "</tr>"
        )
    parts = [
        '<h2 id="ratings">Ratings</h2>',
        f'<p class="note">OpenSkill (Plackett-Luce) mu ± sigma, the 95% interval mu ± 1.96 '
        f"sigma and wins/draws/losses, overall and per game; {board.n_games} games, "
        f"{board.n_errors} errors (not rated). Players are listed by mu − 3 sigma; those whose "
        'overall intervals overlap share a rank (<span class="badge tie">tied</span>: not '
        "distinguishable). Every rating links to the games behind it.</p>",
        _table(["Rank", "Player", "Overall", *(_e(g) for g in board.games)], rows, "ratings"),
    ]
    if "ratings" in figures:
        parts.append(figures["ratings"])
    return "\n".join(parts)


# ----------------------------------------------------------------------------- detail pages
def _episode_rows_table(rows: Sequence[EpisodeRow], with_task: bool) -> str:
    lines = []
    for row in sorted(rows, key=lambda r: (r.task, r.seed, r.episode)):
        task = f"<td>{_e(row.task)}</td>" if with_task else ""
        error = row.info.get("error") if isinstance(row.info, dict) else None
        lines.append(
            f'<tr data-seed="{row.seed}" data-episode="{row.episode}">{task}'
            f'<td class="num">{row.seed}</td><td class="num">{row.episode}</td>'
            f'<td class="num"><a class="episode" href="{_e(_episode_page(row))}">{row.score:.3f}</a></td>'
            f'<td class="num">{row.reward:.3f}</td><td class="num">{row.clean_reward:.3f}</td>'
            f'<td class="num">{row.turns}</td><td>{_e(row.stop_reason)}'
            f"{'<span class="badge error">error</span>' if row.is_error else ''}</td>"
            f"<td>{_e(str(error)[:120]) if error else ''}</td>"
            f'<td class="num">{row.duration_s:.2f} s</td></tr>'
        )
    header = ["Task"] if with_task else []
    header += [
        "Seed",
        "Episode",
        "Score",
        "Reward",
        "Clean reward",
        "Turns",
        "Stop reason",
        "Error",
        "Time",
    ]
    return _table(header, lines, "episodes")


def _transcript_html(turns: list[dict[str, Any]] | None, error: str | None) -> str:
    if error is not None:
        return (
            f'<p class="note transcript-missing">The transcript could not be read: {_e(error)}</p>'
        )
    if not turns:
        return '<p class="note transcript-missing">No transcript stored for this episode.</p>'
    parts = [f'<p class="note">{len(turns)} entries.</p>']
    for index, turn in enumerate(turns, start=1):
        if not isinstance(turn, dict):
            parts.append(f'<div class="turn"><pre>{_e(_json(turn))}</pre></div>')
            continue
        if "omitted_turns" in turn:
            parts.append(
                f'<div class="turn"><p class="note">… {_e(turn["omitted_turns"])} turns omitted '
                "(size cap) …</p></div>"
            )
            continue
        who = f" · {_e(turn['player'])}" if turn.get("player") else ""
        seat = f" ({_e(turn['seat'])})" if turn.get("seat") else ""
        body = []
        for key in ("observation", "action", "error"):
            value = turn.get(key)
            if value is not None:
                text = value if isinstance(value, str) else _json(value)
                body.append(f"<h4>{key}</h4><pre>{_e(text)}</pre>")
        facts = {
            k: v
            for k, v in turn.items()
            if k not in {"observation", "action", "error", "turn", "player", "seat"}
            and v is not None
        }
        if facts:
            body.append(
                '<p class="note">'
                + "; ".join(
                    f"{_e(k)}: {_e(v if not isinstance(v, dict | list) else _json(v))}"
                    for k, v in facts.items()
                )
                + "</p>"
            )
        parts.append(
            f'<div class="turn"><h3>Turn {_e(turn.get("turn", index))}{who}{seat}</h3>{"".join(body)}</div>'
        )
    return "\n".join(parts)


def _read_transcript(read: Callable[[], Any]) -> tuple[list[dict[str, Any]] | None, str | None]:
    """Call a transcript reader; ``(None, None)`` where the store has no transcripts."""
    try:
        return read(), None
    except AttributeError:  # a store without the transcript API
        return None, None
    except Exception as error:  # a damaged transcript must not stop the site
        return None, f"{type(error).__name__}: {error}"


def _facts_table(facts: Sequence[tuple[str, str]]) -> str:
    return (
        '<table class="facts"><tbody>'
        + "".join(f"<tr><th>{_e(k)}</th><td>{v}</td></tr>" for k, v in facts)
        + "</tbody></table>"
    )


def _episode_html(
    store: ResultsStore, row: EpisodeRow, crumbs: list[tuple[str, str]]
) -> tuple[str, list[dict[str, Any]] | None]:
    turns, error = _read_transcript(
        lambda: store.transcript(row.suite, row.agent, row.task, seed=row.seed, episode=row.episode)  # type: ignore[attr-defined]
    )
    info = redact_secrets(row.info) if isinstance(row.info, dict) else {}
    facts = [
        ("Suite", _e(row.suite)),
        ("Agent", _e(row.agent)),
        ("Task", _e(row.task)),
        (
            "Env",
            f"<code>{_e(row.env_id)}</code> <code>{_e(_json(redact_secrets(row.env_kwargs)))}</code>",
        ),
        ("Seed / episode / reset seed", f"{row.seed} / {row.episode} / {row.reset_seed}"),
        ("Metric", _e(row.metric)),
        ("Score", f'<span class="score">{row.score:.6g}</span>'),
        ("Reward / clean reward", f"{row.reward:.6g} / {row.clean_reward:.6g}"),
        ("Turns", str(row.turns)),
        (
            "Stop reason",
            _e(row.stop_reason)
            + ('<span class="badge error">error</span>' if row.is_error else ""),
        ),
        ("Started / duration", f"{_e(_time(row.started_at))} / {row.duration_s:.2f} s"),
    ]
    if info.get("error"):
        facts.append(("Error", f"<pre>{_e(info['error'])}</pre>"))
    if info.get("traceback"):
        facts.append(("Traceback", f"<pre>{_e(info['traceback'])}</pre>"))
    if info.get("reward_components") is not None:
        facts.append(("Reward components", f"<pre>{_e(_json(info['reward_components']))}</pre>"))
    rest = {k: v for k, v in info.items() if k not in {"error", "traceback", "reward_components"}}
    if rest:
        facts.append(("Info", f"<pre>{_e(_json(rest))}</pre>"))
    body = (
        _facts_table(facts) + '<h2 id="transcript">Transcript</h2>' + _transcript_html(turns, error)
    )
    title = f"{row.agent} · {row.task} · seed {row.seed} episode {row.episode}"
    return _page(title, body, root="../", crumbs=crumbs), turns


def _outcome(row: MatchRow, player: str) -> str:
    if row.is_error and "forfeit" not in row.info:
        return "error"
    seat = row.lineup.index(player)
    reward = row.rewards[seat]
    if len(row.lineup) == 1:
        return "win" if reward >= 1.0 else "loss"
    best = max(row.rewards)
    if reward < best:
        return "loss"
    return "draw" if row.rewards.count(best) > 1 else "win"


def _game_html(store: ResultsStore, row: MatchRow, crumbs: list[tuple[str, str]]) -> str:
    turns, error = _read_transcript(
        lambda: store.match_transcript(
            row.suite, row.task, row.lineup, seed=row.seed, episode=row.episode
        )  # type: ignore[attr-defined]
    )
    facts = [
        ("Suite", _e(row.suite)),
        ("Game", _e(row.task)),
        ("Env", f"<code>{_e(row.env_id)}</code>"),
        ("Lineup (by seat)", _e(", ".join(row.lineup))),
        ("Rewards", _e(", ".join(f"{r:g}" for r in row.rewards))),
        ("Seed / episode", f"{row.seed} / {row.episode}"),
        ("Moves", str(row.moves)),
        ("Stop reason", _e(row.stop_reason)),
        ("Finished / duration", f"{_e(_time(row.finished_at))} / {row.duration_s:.2f} s"),
    ]
    info = redact_secrets(row.info) if isinstance(row.info, dict) else {}
    if info:
        facts.append(("Info", f"<pre>{_e(_json(info))}</pre>"))
    body = (
        _facts_table(facts) + '<h2 id="transcript">Transcript</h2>' + _transcript_html(turns, error)
    )
    title = f"{row.task} · {' vs '.join(row.lineup)} · seed {row.seed} game {row.episode}"
    return _page(title, body, root="../", crumbs=crumbs)


# ----------------------------------------------------------------------------- the site
def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def write_site(
    store: ResultsStore,
    directory: str | Path,
    suite: str | None = None,
    *,
    draws: int = BOOTSTRAP_DRAWS,
    plots: bool = True,
) -> Path:
    """Write the static leaderboard of ``store`` (only ``suite``'s when given) into
    ``directory`` (created; files of earlier runs are overwritten) and return its
    ``index.html``. ``plots=False`` leaves the figures out (they are also left out, with a note,
    when matplotlib is missing)."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    suites = [suite] if suite is not None else store.suites()
    boards = {board.suite: board for board in build_leaderboards(store, suite=suite)}
    have_plots = plots and _matplotlib() is not None
    index_rows = []
    for name in suites:
        data = _suite_data(store, boards.get(name), name, draws)
        if data.board is None and not data.matches:
            continue
        figures = site_figures(data, name) if have_plots else {}
        page = _suite_page(name)
        crumbs = [(f"../{page}", f"Suite {name}")]
        parts = []
        infos = _agent_infos(data.rows)
        if data.board is not None:
            board = data.board
            by_cell: dict[tuple[str, str], list[EpisodeRow]] = defaultdict(list)
            for row in data.rows:
                by_cell[row.agent, row.task].append(row)
            for row in data.rows:
                text, turns = _episode_html(
                    store,
                    row,
                    [*crumbs, (_cell_page(name, row.agent, row.task), f"{row.agent} · {row.task}")],
                )
                _write(out / "e" / _episode_page(row), text)
                _count_tokens(infos.setdefault(row.agent, _AgentInfo()), turns)
            for result in [*board.agents, *board.references]:
                for task in board.tasks:
                    rows = by_cell.get((result.agent, task))
                    if not rows:
                        continue
                    cell = data.cells.get((result.agent, task))
                    score = result.scores[task]
                    summary = (
                        f'<p>Mean <b class="mean">{score.mean:.3f}</b> over {score.n_seeds} seeds '
                        f"({score.n_episodes} episodes, {score.n_errors} errors); 95% interval "
                        f"{'—' if cell is None else f'[{cell.low:.3f}, {cell.high:.3f}]'}; metric "
                        f"{_e(board.metrics[task])}. Each score links to its episode.</p>"
                    )
                    _write(
                        out / "e" / _cell_page(name, result.agent, task),
                        _page(
                            f"{result.agent} · {task}",
                            summary + _episode_rows_table(rows, with_task=False),
                            root="../",
                            crumbs=crumbs,
                        ),
                    )
                rows = [r for r in data.rows if r.agent == result.agent]
                overall = data.overall.get(result.agent)
                summary = (
                    f"<p>{_e(board.overall_label)}: <b>{_overall_text(result)}</b>"
                    f"{'' if overall is None else f' (95% interval [{overall.low:.3f}, {overall.high:.3f}])'}"
                    f"; episodes: {_e(episodes_text(result))}.{_incomplete_badge(result)}</p>"
                )
                _write(
                    out / "e" / _agent_page(name, result.agent),
                    _page(
                        f"{result.agent} in {name}",
                        summary + _episode_rows_table(rows, with_task=True),
                        root="../",
                        crumbs=crumbs,
                    ),
                )
            parts += [
                _scores_section(data, figures),
                _pairs_section(data),
                _tasks_section(data, figures),
            ]
            parts += ['<h2 id="agents">Agents</h2>', _agents_table(board, infos)]
        if data.matches:
            parts.append(_ratings_section(data, figures, name))
            _write_games(store, out, name, data, crumbs)
        if plots and not have_plots:
            parts.insert(
                0,
                '<p class="note">Plots are left out: matplotlib is not installed '
                "(pip install 'arenagym[plots]').</p>",
            )
        _write(out / page, _page(f"Suite {name}", "\n".join(p for p in parts if p), root=""))
        index_rows.append(_index_row(name, page, data))
    body = (
        '<p class="note">Benchmark results from the arenagym results store. Each suite page has '
        "its scores with 95% bootstrap intervals, pairwise comparisons, ratings of games, the "
        "agents' details, and links down to every episode.</p>"
        + (
            _table(
                ["Suite", "Agents", "Tasks / games", "Episodes / games", "Leader"],
                index_rows,
                "suites",
            )
            if index_rows
            else "<p>No results yet.</p>"
        )
    )
    index = out / "index.html"
    _write(index, _page("arenagym leaderboard", body, root=""))
    return index


def _overall_text(result: AgentResult) -> str:
    return "—" if result.overall is None else f"{result.overall:.3f}"


def _index_row(name: str, page: str, data: _SuiteData) -> str:
    board = data.board
    agents = len(board.agents) + len(board.references) if board is not None else 0
    players = len(data.ratings.players) if data.ratings is not None else 0
    tasks = len(board.tasks) if board is not None else 0
    games = len(data.ratings.games) if data.ratings is not None else 0
    leader = "—"
    if board is not None and board.agents and board.agents[0].overall is not None:
        first = board.agents[0]
        label = data.ranks.get(first.agent, "1")
        leader = f"{first.agent} ({_overall_text(first)})" + (
            " — tied" if label.startswith("=") else ""
        )
    elif data.ratings is not None and data.ratings.players:
        leader = data.ratings.players[0].player
    return (
        f'<tr><td><a href="{_e(page)}">{_e(name)}</a></td><td class="num">{max(agents, players)}</td>'
        f'<td class="num">{tasks} / {games}</td><td class="num">{len(data.rows)} / {len(data.matches)}</td>'
        f"<td>{_e(leader)}</td></tr>"
    )


def _write_games(
    store: ResultsStore, out: Path, suite: str, data: _SuiteData, crumbs: list[tuple[str, str]]
) -> None:
    for row in data.matches:
        _write(out / "e" / _game_page(row), _game_html(store, row, crumbs))
    if data.ratings is None:
        return
    for player in data.ratings.players:
        mine = [row for row in data.matches if player.player in row.lineup]
        for game in (None, *data.ratings.games):
            rows = [row for row in mine if game is None or row.task == game]
            if not rows:
                continue
            lines = [
                f'<tr><td>{_e(row.task)}</td><td class="num">{row.seed}</td>'
                f'<td class="num">{row.episode}</td><td>{_e(" vs ".join(row.lineup))}</td>'
                f'<td class="num">{_e(", ".join(f"{r:g}" for r in row.rewards))}</td>'
                f"<td>{_e(_outcome(row, player.player))}</td><td>{_e(row.stop_reason)}</td>"
                f'<td><a class="game" href="{_e(_game_page(row))}">game</a></td></tr>'
                for row in sorted(rows, key=lambda r: (r.task, r.seed, r.episode, r.lineup))
            ]
            title = f"{player.player} · {game or 'all games'}"
            _write(
                out / "e" / _games_page(suite, player.player, game),
                _page(
                    title,
                    _table(
                        [
                            "Game",
                            "Seed",
                            "Episode",
                            "Lineup",
                            "Rewards",
                            "Outcome",
                            "Stop reason",
                            "",
                        ],
                        lines,
                        "games",
                    ),
                    root="../",
                    crumbs=crumbs,
                ),
            )
