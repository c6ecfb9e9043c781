"""Leaderboards: mean ± standard error over seeds, ranking, rich and Markdown output."""

from __future__ import annotations

import io
import math
from dataclasses import replace
from pathlib import Path

import pytest
from rich.console import Console

from arenagym.benchmarks.leaderboard import (
    build_leaderboards,
    leaderboard_from_rows,
    print_leaderboards,
    to_markdown,
    write_markdown,
)
from arenagym.benchmarks.store import EpisodeRow, ResultsStore

# agent -> task -> seed -> episode scores
SCORES: dict[str, dict[str, dict[int, list[float]]]] = {
    "alpha": {
        "t1": {0: [1, 0, 1], 1: [0, 0, 1], 2: [1, 1, 1]},  # seed means 2/3, 1/3, 1
        "t2": {0: [0.5, 0.5], 1: [0.0, 1.0]},  # seed means 0.5, 0.5
    },
    "beta": {
        "t1": {0: [1, 1, 1], 1: [1, 1, 0], 2: [1, 1, 1]},  # 1, 2/3, 1
        "t2": {0: [0.25, 0.25]},  # one seed
    },
}


def filled_store() -> ResultsStore:
    store = ResultsStore(":memory:")
    for agent, tasks in SCORES.items():
        for task, seeds in tasks.items():
            for seed, scores in seeds.items():
                for episode, score in enumerate(scores):
                    store.add(
                        EpisodeRow(
                            suite="s",
                            task=task,
                            env_id="E-v0",
                            env_kwargs={},
                            agent=agent,
                            seed=seed,
                            episode=episode,
                            reset_seed=0,
                            metric="clean_reward",
                            score=float(score),
                            reward=float(score) + 5.0,  # noisy raw reward: must not be used
                            clean_reward=float(score),
                            turns=1,
                            stop_reason="agent_error" if (agent, episode) == ("beta", 2) else "x",
                        )
                    )
    return store


def test_mean_and_standard_error_over_seeds_match_a_hand_computation() -> None:
    (board,) = build_leaderboards(filled_store())
    assert board.suite == "s" and board.tasks == ("t1", "t2")
    assert board.metrics == {"t1": "clean_reward", "t2": "clean_reward"}
    alpha, beta = board.agents  # ranked by overall mean: 0.583 > 0.569

    t1 = alpha.scores["t1"]
    assert t1.seed_means == pytest.approx({0: 2 / 3, 1: 1 / 3, 2: 1.0})
    assert t1.mean == pytest.approx(2 / 3)
    # sample std of (2/3, 1/3, 1) is 1/3; SE = (1/3) / sqrt(3)
    assert t1.se == pytest.approx(1 / 3 / math.sqrt(3))
    assert (t1.n_seeds, t1.n_episodes, t1.n_errors) == (3, 9, 0)
    assert alpha.scores["t2"].mean == pytest.approx(0.5)
    assert alpha.scores["t2"].se == pytest.approx(0.0)
    assert alpha.overall == pytest.approx((2 / 3 + 0.5) / 2)
    assert (alpha.n_episodes, alpha.n_errors) == (13, 0)

    # seed means (1, 2/3, 1): mean 8/9, sample std sqrt((2 (1/9)^2 + (2/9)^2) / 2) = sqrt(3)/9
    assert beta.scores["t1"].mean == pytest.approx(8 / 9)
    assert beta.scores["t1"].se == pytest.approx(math.sqrt(3) / 9 / math.sqrt(3))
    assert beta.scores["t2"].se is None  # one seed
    assert beta.overall == pytest.approx((8 / 9 + 0.25) / 2)
    assert (beta.n_episodes, beta.n_errors) == (11, 3)  # episode 2 of each t1 seed


def test_an_episode_weighted_mean_would_differ() -> None:
    """Seeds with different episode counts weigh the same (mean of seed means)."""
    store = filled_store()
    store.add(
        EpisodeRow(
            suite="s", task="t2", env_id="E-v0", env_kwargs={}, agent="beta", seed=1, episode=0,
            reset_seed=0, metric="clean_reward", score=1.0, reward=1.0, clean_reward=1.0,
            turns=1, stop_reason="solved",
        )
    )  # fmt: skip
    (board,) = build_leaderboards(store)
    t2 = next(r for r in board.agents if r.agent == "beta").scores["t2"]
    assert t2.mean == pytest.approx((0.25 + 1.0) / 2)  # not (0.25 + 0.25 + 1) / 3
    assert t2.se == pytest.approx(0.375)  # std of (0.25, 1) = 0.75/sqrt(2); / sqrt(2)


def test_markdown_table() -> None:
    lines = to_markdown(build_leaderboards(filled_store())).splitlines()
    assert lines[:6] == [
        "## Suite `s`",
        "",
        "| Rank | Agent | t1 (clean_reward) | t2 (clean_reward) | Overall | Episodes | Errors |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: |",
        "| 1 | alpha | 0.667 ± 0.192 (n=9) | 0.500 ± 0.000 (n=4) | 0.583 | 13 | 0 |",
        # beta has no seed 1 of t2: 11 of the 13 episodes the suite asks for
        "| 2 | beta | 0.889 ± 0.111 (n=9) | 0.250 ± — (n=2) | 0.569 | 11 of 13 (incomplete) | 3 |",
    ]


def test_markdown_marks_missing_tasks_and_escapes_pipes(tmp_path: Path) -> None:
    store = filled_store()
    store.add(
        EpisodeRow(
            suite="s", task="t1", env_id="E-v0", env_kwargs={}, agent="a|b", seed=0, episode=0,
            reset_seed=0, metric="clean_reward", score=2.0, reward=2.0, clean_reward=2.0,
            turns=1, stop_reason="solved",
        )
    )  # fmt: skip
    path = write_markdown(build_leaderboards(store), tmp_path / "out" / "board.md")
    text = path.read_text(encoding="utf-8")
    # one episode of 13: ranked after the complete run (alpha) despite the best score
    assert "| 2 | a\\|b | 2.000 ± — (n=1) | — | 2.000 | 1 of 13 (incomplete) | 0 |" in text


def test_suites_get_separate_boards_and_can_be_filtered() -> None:
    store = filled_store()
    for row in store.rows(agent="alpha", task="t1"):
        store.add(EpisodeRow(**{**row.__dict__, "suite": "other"}))
    assert [board.suite for board in build_leaderboards(store)] == ["other", "s"]
    (only,) = build_leaderboards(store, suite="other")
    assert only.tasks == ("t1",) and [r.agent for r in only.agents] == ["alpha"]
    assert build_leaderboards(store, suite="absent") == []
    assert to_markdown([]) == "No results yet.\n"


def test_rich_rendering_shows_every_agent_and_task() -> None:
    buffer = io.StringIO()
    print_leaderboards(build_leaderboards(filled_store()), Console(file=buffer, width=160))
    text = buffer.getvalue()
    for word in ("alpha", "beta", "t1", "t2", "0.667 ± 0.192", "0.250 ± —", "n=9", "Overall"):
        assert word in text, word
    buffer = io.StringIO()
    print_leaderboards([], Console(file=buffer))
    assert "no results" in buffer.getvalue()


def test_suites_with_many_tasks_are_shown_one_row_per_task() -> None:
    store = filled_store()
    (row,) = [
        r for r in store.rows() if (r.agent, r.task, r.seed, r.episode) == ("alpha", "t1", 0, 0)
    ]
    for index in range(3, 9):  # six more tasks for alpha only: eight in all
        store.add(EpisodeRow(**{**row.__dict__, "task": f"t{index}", "score": index / 10}))
    (board,) = build_leaderboards(store)
    buffer = io.StringIO()
    print_leaderboards([board], Console(file=buffer, width=120))
    lines = buffer.getvalue().splitlines()
    header = next(line for line in lines if "Task" in line)
    ranked = [f"{rank}. {result.agent}" for rank, result in enumerate(board.agents, start=1)]
    assert header.index(ranked[0]) < header.index(ranked[1])  # agents as ranked columns
    t5 = next(line for line in lines if line.lstrip("│ ").startswith("t5 "))
    cells = dict(zip(ranked, [c.strip() for c in t5.split("│")[3:-1]], strict=True))
    assert cells == {  # beta has no t5
        next(r for r in ranked if r.endswith("alpha")): "0.500 ± — (n=1)",
        next(r for r in ranked if r.endswith("beta")): "—",
    }
    assert any(line.lstrip("│ ").startswith("Overall") for line in lines)


# agent -> spec, and its mean score on each task (one seed, one episode): BLEU-1 is a fraction,
# "reward" goes above 1, so a mean over the two would mix scales
MIXED: dict[str, tuple[str, dict[str, float]]] = {
    "oracle-doctor": ("pkg.baselines:OracleDoctor", {"BLEU-1": 0.90, "reward": 1.04}),
    "retrieval": ("pkg.baselines:RetrievalDoctor", {"BLEU-1": 0.30, "reward": 0.70}),
    "copy": ("pkg.baselines:CopyDoctor", {"BLEU-1": 0.50, "reward": 0.40}),
    "random": ("pkg.baselines:RandomDoctor", {"BLEU-1": 0.30, "reward": 0.10}),
}


def mixed_rows() -> list[EpisodeRow]:
    return [
        EpisodeRow(
            suite="med", task=task, env_id="E-v0", env_kwargs={}, agent=agent, seed=0,
            episode=0, reset_seed=0, metric="clean_reward", score=score, reward=score,
            clean_reward=score, turns=1, stop_reason="x", agent_spec=spec,
        )
        for agent, (spec, scores) in MIXED.items()
        for task, score in scores.items()
    ]  # fmt: skip


def test_a_primary_task_is_the_overall_and_every_task_is_ranked_on_its_own() -> None:
    board = leaderboard_from_rows(
        "med",
        mixed_rows(),
        primary_task="reward",
        reference_agents=["pkg.baselines:OracleDoctor"],  # matched by spec
    )
    assert [r.agent for r in board.agents] == ["retrieval", "copy", "random"]  # by reward
    assert [r.overall for r in board.agents] == [0.70, 0.40, 0.10]
    assert board.overall_label == "Overall (reward)"
    # ties share a rank; the reference agent takes no rank
    assert board.task_ranks == {
        "BLEU-1": {"copy": 1, "retrieval": 2, "random": 2},
        "reward": {"retrieval": 1, "copy": 2, "random": 3},
    }
    lines = to_markdown([board]).splitlines()
    assert lines[2] == (
        "| Rank | Agent | BLEU-1 (clean_reward) | reward (clean_reward) | Overall (reward) "
        "| Episodes | Errors |"
    )
    assert lines[4] == "| 1 | retrieval | 0.300 ± — (n=1) #2 | 0.700 ± — (n=1) #1 | 0.700 | 2 | 0 |"
    assert lines[7] == (
        "| ref | oracle-doctor | 0.900 ± — (n=1) | 1.040 ± — (n=1) | 1.040 | 2 | 0 |"
    )
    assert "overall = the score of task reward (the suite's primary task" in lines[-1]
    assert "ref = reference agents, outside the ranking" in lines[-1]


def test_reference_agents_match_by_name_too_and_stay_out_of_a_mean_ranking() -> None:
    board = leaderboard_from_rows("med", mixed_rows(), reference_agents=["oracle-doctor"])
    assert [r.agent for r in board.references] == ["oracle-doctor"]
    assert board.references[0].reference and board.agents[0].agent == "retrieval"
    assert board.agents[0].overall == pytest.approx(0.5)  # the mean of its two tasks
    assert board.overall_label == "Overall"
    text = to_markdown([board])
    assert "#1" not in text  # ranks per task only where a primary task says the scales differ


def test_an_agent_without_the_primary_task_ranks_last_with_no_overall() -> None:
    rows = [*mixed_rows(), replace(mixed_rows()[0], agent="bleu-only", task="BLEU-1")]
    board = leaderboard_from_rows("med", rows, primary_task="reward")
    assert board.agents[-1].agent == "bleu-only" and board.agents[-1].overall is None
    assert "| bleu-only | 0.900 ± — (n=1) #1 | — | — | 1 of 2 (incomplete) | 0 |" in to_markdown(
        [board]
    )


def test_rich_tables_show_references_and_the_primary_task() -> None:
    board = leaderboard_from_rows(
        "med", mixed_rows(), primary_task="reward", reference_agents=["oracle-doctor"]
    )
    buffer = io.StringIO()
    print_leaderboards([board], Console(file=buffer, width=200))
    text = buffer.getvalue()
    for word in ("Overall (reward)", "ref", "oracle-doctor", "#1", "primary task"):
        assert word in text, word
    wide = replace(board, tasks=(*board.tasks, "c", "d", "e", "f"))
    wide = replace(wide, metrics={**board.metrics, **dict.fromkeys("cdef", "clean_reward")})
    buffer = io.StringIO()
    print_leaderboards([wide], Console(file=buffer, width=200))
    text = buffer.getvalue()
    assert "ref. oracle-doctor" in text and "1. retrieval" in text
    assert "Overall (reward)" in text


def test_the_board_reads_the_settings_the_runner_recorded() -> None:
    from arenagym_bench_testkit import ENV_ID

    from arenagym.benchmarks.runner import run_suite
    from arenagym.benchmarks.suite import Suite, Task

    kit = "arenagym_bench_testkit"
    suite = Suite(
        name="recorded",
        tasks=(
            Task("one", ENV_ID, {"turns": 1}, episodes=1, seeds=(0,)),
            Task("three", ENV_ID, {"turns": 3}, episodes=1, seeds=(0,)),
        ),
        primary_task="one",
        reference_agents=(f"{kit}:SleepAgent(delay=0)",),  # its spec and kwargs
    )
    store = ResultsStore(":memory:")
    run_suite(suite, f"{kit}:ConstAgent", None, store, progress=False, agent_name="const")
    run_suite(suite, f"{kit}:SleepAgent", {"delay": 0}, store, progress=False, agent_name="ref")
    (board,) = build_leaderboards(store)
    assert board.primary_task == "one" and board.overall_label == "Overall (one)"
    assert [r.agent for r in board.agents] == ["const"]
    assert [r.agent for r in board.references] == ["ref"]
    assert board.agents[0].overall == 1.0  # task "one" alone, not the mean with "three" (3.0)


def test_a_reference_spec_names_that_spec_without_kwargs_only() -> None:
    """A reference entry ``spec`` is the agent run from that spec without kwargs: the same spec
    run with other kwargs is another agent, ranked as usual."""
    from arenagym_bench_testkit import ENV_ID

    from arenagym.benchmarks.runner import run_suite
    from arenagym.benchmarks.suite import Suite, Task

    const = "arenagym_bench_testkit:ConstAgent"
    suite = Suite(
        name="refs",
        tasks=(Task("one", ENV_ID, {"turns": 1}, episodes=1, seeds=(0,)),),
        reference_agents=(const,),
    )
    store = ResultsStore(":memory:")
    run_suite(suite, const, {"action": "wrong"}, store, progress=False)
    run_suite(suite, const, None, store, progress=False, agent_name="oracle")
    (board,) = build_leaderboards(store)
    assert [r.agent for r in board.agents] == [f'{const}(action="wrong")']
    assert [r.agent for r in board.references] == ["oracle"]


def test_before_the_primary_task_has_rows_agents_are_listed_by_name_with_no_overall() -> None:
    rows = [row for row in mixed_rows() if row.task == "BLEU-1"]
    board = leaderboard_from_rows("med", rows, primary_task="reward")
    assert [r.agent for r in board.agents] == sorted(MIXED)
    assert all(r.overall is None for r in board.agents)


def test_an_interrupted_run_never_ranks_above_the_complete_run() -> None:
    """314 of 600 episodes, all perfect, used to rank first with overall 1.000."""
    rows = []
    for agent, count, score in (("run-complete", 600, 0.5), ("run-interrupted", 314, 1.0)):
        for index in range(count):
            rows.append(
                EpisodeRow(
                    suite="s", task="t", env_id="E-v0", env_kwargs={}, agent=agent,
                    seed=index // 100, episode=index % 100, reset_seed=0, metric="success",
                    score=score, reward=score, clean_reward=score, turns=1, stop_reason="x",
                )
            )  # fmt: skip
    board = leaderboard_from_rows("s", rows)
    assert [r.agent for r in board.agents] == ["run-complete", "run-interrupted"]
    assert board.expected_episodes == {"t": 600}
    text = to_markdown([board])
    assert (
        "| 2 | run-interrupted | 1.000 ± 0.000 (n=314) | 1.000 | 314 of 600 (incomplete) |" in text
    )
    assert "incomplete runs (fewer episodes than the suite asks for) rank last" in text
    # what the suite asks for, when recorded, wins over what the rows show
    board = leaderboard_from_rows("s", rows, task_episodes={"t": 1000})
    assert all(not r.complete for r in board.agents) and board.agents[0].n_expected == 1000


def test_rating_ranks_whose_intervals_overlap_are_shown_tied() -> None:
    from arenagym.benchmarks.leaderboard import ratings_to_markdown
    from arenagym.benchmarks.ratings import PlayerRatings, Rating, RatingBoard

    players = tuple(
        PlayerRatings(name, Rating(mu, sigma, wins=1))
        for name, mu, sigma in (("a", 23.0, 3.3), ("b", 21.3, 3.4), ("c", 2.0, 1.0))
    )
    board = RatingBoard(suite="g", games=(), players=players, n_games=3, n_errors=0)
    header = ratings_to_markdown([board]).splitlines()[2]
    assert header == "| Game | =1. a | =1. b | 3. c |"
