"""``arenagym run``, ``leaderboard`` and ``list`` (:mod:`arenagym.cli`): help, results, and exit
status 2 with one line ``arenagym COMMAND: error: ...`` on bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from arenagym_bench_testkit import ENV_ID

from arenagym.benchmarks.store import ResultsStore
from arenagym.cli import main

KIT = "arenagym_bench_testkit"

SUITE = f"""
name = "cli"
[[tasks]]
name = "count"
env = "{ENV_ID}"
episodes = 2
seeds = [0, 1]
"""


@pytest.fixture
def suite_file(tmp_path: Path) -> Path:
    path = tmp_path / "cli.toml"
    path.write_text(SUITE, encoding="utf-8")
    return path


def test_list_prints_every_id_with_its_description(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("  Math-v0 ") and "math" in line.lower() for line in lines)


def test_run_then_rerun_then_leaderboard(
    tmp_path: Path, suite_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "new" / "r.sqlite"
    run = ["run", "--suite", str(suite_file), "--store", str(store), "--no-progress"]
    assert main([*run, "--agent", f"{KIT}:ConstAgent"]) == 0
    out = capsys.readouterr().out
    assert f"cli · {KIT}:ConstAgent: 4 episodes run, 0 skipped" in out
    assert "0 failed" in out and "stop reasons: 4 solved" in out
    assert "1.000 ± 0.000" in out  # the leaderboard of the suite

    assert main([*run, "--agent", f"{KIT}:ConstAgent"]) == 0
    assert "0 episodes run, 4 skipped" in capsys.readouterr().out

    wrong = [*run, "--agent", f"{KIT}:ConstAgent", "--agent-kwargs", '{"action": "no"}']
    assert main([*wrong, "--agent-name", "wrong", "--concurrency", "2"]) == 0
    capsys.readouterr()
    with ResultsStore(store) as results:
        assert {row.agent for row in results.rows()} == {f"{KIT}:ConstAgent", "wrong"}

    markdown = tmp_path / "md" / "board.md"
    board = ["leaderboard", "--store", str(store), "--suite", "cli"]
    assert main([*board, "--markdown", str(markdown)]) == 0
    out = capsys.readouterr().out
    assert out.index(f"{KIT}:ConstAgent") < out.index("wrong")
    assert f"Markdown written to {markdown}" in out
    text = markdown.read_text(encoding="utf-8")
    assert "## Suite `cli`" in text and "| 2 | wrong | 0.000 ± 0.000 (n=4) |" in text


def test_run_shows_progress_on_stderr(
    suite_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = str(tmp_path / "r.sqlite")
    main(["run", "--suite", str(suite_file), "--agent", f"{KIT}:ConstAgent", "--store", store])
    assert "4/4" in capsys.readouterr().err


@pytest.mark.parametrize("command", [[], ["list"], ["run"], ["leaderboard"]])
def test_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "usage: arenagym" in out
    if command and command != ["list"]:
        assert "examples:" in out and "arenagym " + command[0] in out


def run_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    command = next(arg for arg in argv if not arg.startswith("-"))
    prog = "arenagym" if command not in ("run", "leaderboard") else f"arenagym {command}"
    assert captured.err.startswith(f"{prog}: error: ") and captured.err.count("\n") == 1
    return captured.err


def test_bad_input_exits_2_with_a_message(
    tmp_path: Path, suite_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = str(tmp_path / "r.sqlite")
    base = ["run", "--store", store, "--no-progress"]
    agent = ["--agent", f"{KIT}:ConstAgent"]
    suite = ["--suite", str(suite_file)]
    assert "unknown suite 'nope'" in run_error([*base, *agent, "--suite", "nope"], capsys)
    assert "cannot read the suite file" in run_error(
        [*base, *agent, "--suite", str(tmp_path / "absent.toml")], capsys
    )
    assert "--agent-kwargs is not valid JSON" in run_error(
        [*base, *suite, *agent, "--agent-kwargs", "{seed: 1}"], capsys
    )
    assert "must be a JSON object" in run_error(
        [*base, *suite, *agent, "--agent-kwargs", "[1]"], capsys
    )
    assert "unknown agent 'nobody'" in run_error([*base, *suite, "--agent", "nobody"], capsys)
    assert "cannot build agent" in run_error(
        [*base, *suite, *agent, "--agent-kwargs", '{"colour": 1}'], capsys
    )
    assert "--concurrency" in run_error([*base, *suite, *agent, "--concurrency", "0"], capsys)
    assert "required" in run_error(["run", *suite], capsys)
    assert "invalid choice" in run_error(["fly"], capsys)
    with ResultsStore(store) as results:
        assert len(results) == 0  # nothing was recorded by any failed run


def test_leaderboard_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = str(tmp_path / "absent.sqlite")
    assert "no results store" in run_error(["leaderboard", "--store", missing], capsys)
    assert not Path(missing).exists()
    store = tmp_path / "r.sqlite"
    ResultsStore(store).close()
    err = run_error(["leaderboard", "--store", str(store), "--suite", "math"], capsys)
    assert "no results for suite 'math'" in err
    notes = tmp_path / "notes.sqlite"
    notes.write_bytes(b"not a database " * 100)
    assert "cannot use as a results store" in run_error(
        ["leaderboard", "--store", str(notes)], capsys
    )


def test_empty_store_leaderboard(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "r.sqlite"
    ResultsStore(store).close()
    assert main(["leaderboard", "--store", str(store)]) == 0
    assert "no results yet" in capsys.readouterr().out


def test_python_dash_m_works(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "arenagym", "leaderboard", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "100"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "usage: arenagym leaderboard" in result.stdout


def test_several_suites_in_one_run_each_with_its_generation_budget(
    tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One process plays both suites (the model loads once) and each suite's [generation]
    budget reaches the LLM agent unless its spec sets the key."""
    from arenagym.agents.specs import _BACKENDS, clear_backend_cache

    suites = []
    for name, budget in (("short", 1), ("long", 3)):
        path = tmp_path / f"{name}.toml"
        header = f'name = "{name}"\n[generation]\nmax_tokens = {budget}'
        path.write_text(SUITE.replace('name = "cli"', header), encoding="utf-8")
        suites += ["--suite", str(path)]
    store = tmp_path / "r.sqlite"
    clear_backend_cache()
    agent = f"hf:{tiny_model_dir},temperature=0"
    run = ["run", *suites, "--store", str(store), "--no-progress", "--agent-name", "tiny"]
    assert main([*run, "--agent", agent]) == 0
    out = capsys.readouterr().out
    assert "short · tiny: 4 episodes run" in out and "long · tiny: 4 episodes run" in out
    assert len(_BACKENDS) == 1  # one model for both suites
    with ResultsStore(store) as results:
        kwargs = {row.suite: row.agent_kwargs for row in results.rows()}
    assert kwargs == {"short": {"max_tokens": 1}, "long": {"max_tokens": 3}}

    # a key in the spec wins over the suite's
    assert main([*run, "--agent", agent + ",max_tokens=2", "--agent-name", "own"]) == 0
    with ResultsStore(store) as results:
        own = {row.suite: row.agent_kwargs for row in results.rows(agent="own")}
    assert own == {"short": {}, "long": {}}
    clear_backend_cache()


def test_a_directory_given_as_the_store_is_named_as_such(
    tmp_path: Path, suite_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = run_error(["leaderboard", "--store", str(tmp_path)], capsys)
    assert f"{tmp_path} is a directory, not a results store" in err
    assert "SQLite file" in err and "did you mean" not in err
    ResultsStore(tmp_path / "arenagym.sqlite").close()
    err = run_error(["leaderboard", "--store", str(tmp_path)], capsys)
    assert f"did you mean --store {tmp_path / 'arenagym.sqlite'}?" in err
    run = ["run", "--suite", str(suite_file), "--agent", f"{KIT}:ConstAgent", "--no-progress"]
    assert "is a directory" in run_error([*run, "--store", str(tmp_path)], capsys)


def test_time_limits_from_the_command_line(
    tmp_path: Path, suite_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = str(tmp_path / "r.sqlite")
    run = ["run", "--suite", str(suite_file), "--store", store, "--no-progress"]
    hang = ["--agent", "arenagym_bench_faults:HangAgent", "--agent-call-timeout", "0.2"]
    import arenagym_bench_faults

    arenagym_bench_faults.rearm()
    try:
        assert main([*run, *hang]) == 0
    finally:
        arenagym_bench_faults.release()
    out = capsys.readouterr().out
    assert "4 failed (agent/env errors or agent timeouts)" in out
    assert "stop reasons: 4 agent_timeout" in out
    assert "--agent-call-timeout" in run_error(
        [*run, *hang[:2], "--agent-call-timeout", "0"], capsys
    )
    assert "--episode-timeout" in run_error([*run, *hang[:2], "--episode-timeout", "x"], capsys)


def test_deeply_nested_agent_kwargs_are_a_usage_error(
    tmp_path: Path, suite_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = ["run", "--suite", str(suite_file), "--store", str(tmp_path / "r.sqlite")]
    deep = '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}"
    err = run_error([*run, "--agent", f"{KIT}:ConstAgent", "--agent-kwargs", deep], capsys)
    assert "--agent-kwargs is nested too deeply" in err
