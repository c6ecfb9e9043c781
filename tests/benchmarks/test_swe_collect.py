"""``arenagym swe collect``: runtime-validated SWE-v0 trajectories in an SFT chat format.

Real episodes in the bubblewrap sandbox on a few bundled tasks of two repositories: the gold-patch
agent's episodes are all resolved and kept, the give-up agent's none; every kept row is a chat
whose tool calls and tool answers pair up, and the statistics count per repository.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from arenagym.benchmarks.swe_collect import collect, collection_stats, write_trajectories
from arenagym.envs.swe.env import BUNDLED_TASKS
from arenagym.envs.swe.runtime.bubblewrap import bubblewrap_unavailable_reason
from arenagym.envs.swe.tasks import dump_tasks, load_tasks

pytestmark = pytest.mark.skipif(
    bubblewrap_unavailable_reason() is not None, reason=str(bubblewrap_unavailable_reason())
)
GOLD = "arenagym.envs.swe.baselines:GoldPatchAgent"
GIVE_UP = "arenagym.envs.swe.baselines:GiveUpAgent"


@pytest.fixture(scope="module")
def task_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tasks = load_tasks(BUNDLED_TASKS)
    chosen = [t for t in tasks if t.repo == "datekit"][:2] + [
        t for t in tasks if t.repo == "textkit"
    ][:1]
    path = tmp_path_factory.mktemp("collect") / "tasks.jsonl"
    dump_tasks(chosen, path)
    return path


def _check_chat(messages: list[dict[str, Any]]) -> None:
    assert [m["role"] for m in messages[:2]] == ["system", "user"]
    open_calls: set[str] = set()
    for message in messages[2:]:
        if message["role"] == "assistant" and "tool_calls" in message:
            [call] = message["tool_calls"]
            json.loads(call["function"]["arguments"])
            open_calls.add(call["id"])
        elif message["role"] == "tool":
            open_calls.remove(message["tool_call_id"])  # answers a call made before it


def test_gold_patch_episodes_are_resolved_and_written_for_sft(
    task_file: Path, tmp_path: Path, tiny_model_dir: Path
) -> None:
    from transformers import AutoTokenizer

    seen: list[str] = []
    result = collect(
        GOLD,
        task_file,
        agent_kwargs={"tasks": str(task_file)},
        workers=2,
        tokenizer=AutoTokenizer.from_pretrained(tiny_model_dir),
        on_episode=lambda e: seen.append(e.instance_id),
    )
    assert sorted(seen) == sorted(e.instance_id for e in result.episodes)
    assert [e.resolved for e in result.episodes] == [True, True, True]
    assert len(result.kept) == 3
    out = tmp_path / "traj.jsonl"
    assert write_trajectories(result.kept, out) == 3
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    for row in rows:
        _check_chat(row["messages"])
        names = [
            m["tool_calls"][0]["function"]["name"] for m in row["messages"] if "tool_calls" in m
        ]
        assert names == ["execute_bash", "finish"]
        assert "git apply" in row["messages"][2]["tool_calls"][0]["function"]["arguments"]
        assert row["tools"][0]["function"]["name"] == "execute_bash"
        assert row["tokens"] > 100 and row["turns"] == 2 and row["reward"] == 1.0
    stats = collection_stats(result)
    assert stats["resolve_rate"] == 1.0 and stats["kept"] == 3
    assert stats["repos"]["datekit"] == {"episodes": 2, "resolved": 2, "resolve_rate": 1.0}
    assert stats["turns"]["mean"] == 2.0


def test_unresolved_episodes_are_dropped_unless_all_are_kept(task_file: Path) -> None:
    result = collect(GIVE_UP, task_file, attempts=2, workers=2)
    assert len(result.episodes) == 6 and not result.kept
    assert collection_stats(result)["resolve_rate"] == 0.0
    everything = collect(GIVE_UP, task_file, keep="all", workers=2)
    assert len(everything.kept) == 3
    for episode in everything.kept:
        _check_chat(episode.messages)
        assert episode.stop_reason == "failed" and not episode.resolved


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"keep": "some"}, "keep must be one of resolved, all"),
        ({"attempts": 0}, "attempts must be an int >= 1"),
        ({"workers": 0}, "workers must be an int >= 1"),
    ],
)
def test_bad_arguments_are_clear_errors(
    task_file: Path, kwargs: dict[str, Any], words: str
) -> None:
    with pytest.raises(ValueError, match=words):
        collect(GIVE_UP, task_file, **kwargs)


def test_an_unknown_agent_is_a_clear_error(task_file: Path) -> None:
    with pytest.raises(ValueError, match="no_such"):
        collect("no_such.module:Agent", task_file)


def test_the_command_writes_trajectories_and_statistics(
    task_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from arenagym.cli import main

    out = tmp_path / "traj.jsonl"
    argv = ["swe", "collect", str(task_file), "--agent", GOLD, "-o", str(out)]
    assert main([*argv, "--agent-kwargs", json.dumps({"tasks": str(task_file)})]) == 0
    captured = capsys.readouterr()
    assert len(out.read_text().splitlines()) == 3
    stats = json.loads((tmp_path / "traj.jsonl.stats.json").read_text())
    assert stats["resolved"] == 3 and json.loads(captured.out) == stats
    assert captured.err.count(": resolved, 2 turns") == 3

    assert main([*argv, "--agent-kwargs", "{oops"]) == 2
    assert "arenagym swe collect: error: --agent-kwargs/--env-kwargs: not JSON" in (
        capsys.readouterr().err
    )
    missing = ["swe", "collect", str(tmp_path / "none.jsonl"), "--agent", GIVE_UP, "-o", str(out)]
    assert main(missing) == 2
    assert "does not exist" in capsys.readouterr().err


def test_a_task_whose_repository_is_missing_fails_before_any_episode(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from arenagym.cli import main

    task = load_tasks(BUNDLED_TASKS)[0]
    moved = tmp_path / "moved.jsonl"
    dump_tasks([dataclasses.replace(task, repo_path=str(tmp_path / "gone"))], moved)
    with pytest.raises(ValueError, match="gone does not exist"):
        collect(GIVE_UP, moved)
    out = tmp_path / "traj.jsonl"
    assert main(["swe", "collect", str(moved), "--agent", GIVE_UP, "-o", str(out)]) == 2
    assert "gone does not exist" in capsys.readouterr().err
    assert not out.exists()  # no rows of env_error episodes


def test_two_bugs_with_one_problem_statement_are_both_resolved_by_the_gold_agent(
    tmp_path: Path,
) -> None:
    """The same symptom from two different bugs: the reference agent applies the fix that fits
    the repository it is in (it cannot tell the tasks apart by their text)."""
    first, second = [t for t in load_tasks(BUNDLED_TASKS) if t.repo == "datekit"][:2]
    assert first.patch != second.patch
    shared = tmp_path / "shared.jsonl"
    twin = dataclasses.replace(second, problem_statement=first.problem_statement)
    dump_tasks([first, twin], shared)
    result = collect(GOLD, shared, agent_kwargs={"tasks": str(shared)}, keep="all")
    assert [e.resolved for e in result.episodes] == [True, True]
    assert all(e.error is None for e in result.episodes)
