"""The static web leaderboard (:mod:`arenagym.benchmarks.site`): pages, figures, intervals, ranks.

Small stores are built with the store API; no model runs. The browser checks (a real headless
Chromium) are in ``test_site_browser.py``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from arenagym.benchmarks.leaderboard import build_leaderboards
from arenagym.benchmarks.site import (
    bootstrap_interval,
    paired_difference,
    write_site,
)
from arenagym.benchmarks.store import EpisodeRow, MatchRow, ResultsStore
from arenagym.cli import main

SECRET = "sk-verysecret-123456"


def episode(agent: str, task: str, seed: int, ep: int, score: float, **extra: object) -> EpisodeRow:
    fields: dict = dict(
        suite="s", task=task, env_id="E-v0", env_kwargs={}, agent=agent, seed=seed, episode=ep,
        reset_seed=seed * 100 + ep, metric="clean_reward", score=score, reward=score,
        clean_reward=score, turns=1, stop_reason="solved", started_at=1_700_000_000.0,
        finished_at=1_700_000_060.0, duration_s=0.5,
    )  # fmt: skip
    fields.update(extra)
    return EpisodeRow(**fields)


def small_store(transcripts: bool = True) -> ResultsStore:
    """Three agents on two tasks (3 seeds x 4 episodes), one cut short, one with a transcript."""
    store = ResultsStore(":memory:")
    for agent, base in (("strong", 0.9), ("weak", 0.1), ("cut", 1.0)):
        for task in ("t1", "t2"):
            for seed in range(3):
                for ep in range(4):
                    if agent == "cut" and (task == "t2" or seed > 0):
                        continue  # an interrupted run: 4 of 24 episodes, every one perfect
                    score = base if (seed + ep) % 4 else base * 0.5
                    store.add(
                        episode(
                            agent, task, seed, ep, score,
                            agent_spec=f"openai:http://h/v1,model=m-{agent},api_key={SECRET}",
                        )
                    )  # fmt: skip
    if transcripts:
        try:
            from arenagym.benchmarks.transcripts import new_turn
        except ImportError:
            return store
        row = episode("strong", "t9", 0, 0, 1.0, agent_spec="random")
        store.add(row, transcript=[new_turn(1, "What is 6*7?", "THE-ANSWER-42", latency_s=0.2)])
    return store


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def suite_page(index: Path, suite: str = "s") -> Path:
    (name,) = re.findall(rf'href="(suite-{suite}-[0-9a-f]+\.html)"', read(index))
    return index.parent / name


def test_the_site_is_self_contained_reproducible_and_holds_the_board(tmp_path: Path) -> None:
    store = small_store()
    index = write_site(store, tmp_path / "a", draws=200)
    write_site(store, tmp_path / "b", draws=200)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.html"))
    assert files == sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*.html"))
    for name in files:  # seeded bootstrap, fixed SVG ids, no dates: byte for byte the same
        assert read(tmp_path / "a" / name) == read(tmp_path / "b" / name), name
    page = read(suite_page(index))
    for text in (read(tmp_path / "a" / name) for name in files):
        assert "<script" not in text and "@import" not in text and "url(http" not in text
        assert "data:image/png" not in text  # figures are vectors
        assert not re.search(r'(src|href)="(https?:)?//', text)
        assert SECRET not in text
    (board,) = build_leaderboards(store)
    for result in board.agents:
        for task, score in result.scores.items():
            cell = re.search(
                rf'data-agent="{result.agent}" data-task="{task}"><a href="[^"]+">([0-9.]+)</a>',
                page,
            )
            assert cell is not None and float(cell.group(1)) == pytest.approx(score.mean, abs=5e-4)
    assert "<svg" in page and "95% interval" in page


def test_an_incomplete_run_is_flagged_and_ranked_below_complete_runs(tmp_path: Path) -> None:
    store = small_store(transcripts=False)
    (board,) = build_leaderboards(store)
    assert [r.agent for r in board.agents] == ["strong", "weak", "cut"]  # cut's 1.000 ranks last
    cut = board.agents[-1]
    assert not cut.complete and (cut.n_episodes, cut.n_expected) == (4, 24)
    page = read(suite_page(write_site(store, tmp_path, draws=200)))
    row = re.search(r'<tr class="incomplete" data-agent="cut">.*?</tr>', page, re.S)
    assert row is not None and "incomplete: 4 of 24" in row.group(0)
    assert page.index('data-agent="strong"') < page.index('data-agent="weak"')
    assert page.index('data-agent="weak"') < page.index('data-agent="cut"')


def test_agents_that_cannot_be_told_apart_share_a_rank(tmp_path: Path) -> None:
    store = ResultsStore(":memory:")
    for seed in range(4):
        for ep in range(5):
            noise = ((seed * 5 + ep) * 37 % 11) / 10
            store.add(episode("a", "t", seed, ep, noise))
            store.add(episode("b", "t", seed, ep, noise + (0.01 if ep % 2 else -0.005)))
            store.add(episode("c", "t", seed, ep, noise - 5.0))
    page = read(suite_page(write_site(store, tmp_path, draws=300)))
    rows = {
        agent: re.search(rf'<tr class="" data-agent="{agent}">(.*?)</tr>', page, re.S).group(1)
        for agent in "abc"
    }
    assert "tied" in rows["a"] and "tied" in rows["b"] and "tied" not in rows["c"]
    assert rows["c"].startswith('<td class="num">3</td>')
    assert "≈" in page  # the pairwise table says a and b are not distinguishable


def test_columns_are_named_by_their_metric(tmp_path: Path) -> None:
    store = ResultsStore(":memory:")
    store.add(episode("a", "BLEU-2", 0, 0, 0.3, env_kwargs={"score_metric": "BLEU-2"}))
    store.add(episode("a", "acc", 0, 0, 1.0, metric="success"))
    (board,) = build_leaderboards(store)
    assert board.metrics == {"BLEU-2": "BLEU-2", "acc": "success"}
    page = read(suite_page(write_site(store, tmp_path, draws=50)))
    assert '<span class="ci">BLEU-2</span>' in page and "clean_reward" not in page


def test_agent_metadata_is_shown_with_secrets_redacted(tmp_path: Path) -> None:
    page = read(suite_page(write_site(small_store(), tmp_path, draws=50)))
    assert "api_key=***" in page and SECRET not in page
    assert "m-strong" in page  # the model the spec names
    assert "2023-11-14" in page  # the run's date
    assert "0.50 s" in page  # time per episode


def test_episode_pages_show_the_row_and_the_transcript_or_say_there_is_none(tmp_path: Path) -> None:
    index = write_site(small_store(), tmp_path, draws=50)
    pages = {p.name: read(p) for p in (tmp_path / "e").glob("ep-*.html")}
    without = next(text for name, text in pages.items() if "-t1-0-0-" in name)
    assert "No transcript stored for this episode." in without and "solved" in without
    if any("-t9-" in name for name in pages):  # the store has the transcript API
        with_one = next(text for name, text in pages.items() if "-t9-" in name)
        assert "THE-ANSWER-42" in with_one and "What is 6*7?" in with_one
    cell = next((tmp_path / "e").glob("cell-s-strong-t1-*.html"))
    assert len(re.findall(r'class="episode" href="ep-', read(cell))) == 12
    assert "index.html" in read(cell) and index.is_file()


def test_a_store_without_the_transcript_api_still_renders(tmp_path: Path) -> None:
    class OldStore:  # what a store from before transcripts offers
        def __init__(self, inner: ResultsStore) -> None:
            self._inner = inner

        def __getattr__(self, name: str) -> object:
            if name in {"transcript", "match_transcript"}:
                raise AttributeError(name)
            return getattr(self._inner, name)

    write_site(OldStore(small_store(transcripts=False)), tmp_path, draws=50)  # type: ignore[arg-type]
    (page,) = [p for p in (tmp_path / "e").glob("ep-s-strong-t1-0-0-*.html")]
    assert "No transcript stored" in read(page)


def test_pages_render_without_matplotlib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    page = read(suite_page(write_site(small_store(), tmp_path, draws=50)))
    assert "<svg" not in page and "matplotlib is not installed" in page
    assert 'class="leaderboard"' in page


def test_bootstrap_intervals_and_paired_differences() -> None:
    ones = {"t": {s: {e: 1.0 for e in range(5)} for s in range(3)}}
    assert bootstrap_interval(ones, ["k"]).text() == "1.000 [1.000, 1.000]"
    mixed = {"t": {s: {e: float((s + e) % 2) for e in range(6)} for s in range(4)}}
    interval = bootstrap_interval(mixed, ["k"])
    assert interval.low < interval.estimate == 0.5 < interval.high
    shifted = {"t": {s: {e: v + 0.2 for e, v in eps.items()} for s, eps in mixed["t"].items()}}
    difference = paired_difference(shifted, mixed, ["k"])  # the same episodes, +0.2 each
    assert difference.estimate == pytest.approx(0.2) and difference.excludes_zero()
    assert paired_difference(mixed, {"other": mixed["t"]}, ["k"]) is None


def test_match_suites_show_ratings_with_intervals_and_records(tmp_path: Path) -> None:
    pytest.importorskip("openskill")
    store = ResultsStore(":memory:")
    for seed in range(3):
        for lineup, rewards in (
            (("search", "random"), (1.0, -1.0)),
            (("random", "search"), (-1.0, 1.0)),
            (("random", "first"), (0.0, 0.0)),
        ):
            store.add_match(
                MatchRow(
                    suite="games", task="nim", env_id="E", env_kwargs={}, lineup=lineup,
                    seed=seed, episode=0, reset_seed=seed, rewards=rewards, moves=3,
                    stop_reason="won",
                )
            )  # fmt: skip
    index = write_site(store, tmp_path, draws=50)
    page = read(suite_page(index, "games"))
    assert 'class="ratings"' in page and "6/0/0" in page  # search won all six
    assert "tied" in page  # random and first drew every game: not distinguishable
    assert "<svg" in page
    games = next((tmp_path / "e").glob("games-games-search-overall-*.html"))
    assert len(re.findall(r'class="game" href="game-', read(games))) == 6
    game = next((tmp_path / "e").glob("game-*.html"))
    assert "No transcript stored" in read(game)


def test_the_leaderboard_command_writes_the_site(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "store.sqlite"
    with ResultsStore(path) as store:
        for row in small_store(transcripts=False).rows():
            store.add(row)
    site = tmp_path / "site"
    assert main(["leaderboard", "--store", str(path), "--html", str(site)]) == 0
    out = capsys.readouterr().out
    assert f"HTML leaderboard written to {site / 'index.html'}" in out
    assert "4 of 24 (incomplete)" in out  # the terminal board flags it too
    assert (site / "index.html").is_file()
