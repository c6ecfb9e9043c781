"""The root package ``arenagym``: ``__version__``, ``make`` for both kinds of env, and the one
command module (``arenagym.cli``, ``python -m arenagym``): every command in one tree, one error
format, ``list``'s two groups."""

from __future__ import annotations

import doctest
import os
import re
import subprocess
import sys
from importlib.metadata import entry_points, version
from pathlib import Path

import gymnasium as gym
import pytest
from pettingzoo import AECEnv, ParallelEnv

import arenagym
import arenagym.cli
from arenagym.cli import COMMANDS, build_parser, main

TOP_LEVEL = ("list", "run", "leaderboard", "models", "serve", "train", "merge", "rm", "dfc", "swe")


def test_version_is_the_distributions_and_python_dash_m_prints_it() -> None:
    assert arenagym.__version__ == version("arenagym")
    result = subprocess.run(
        [sys.executable, "-m", "arenagym", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"arenagym {version('arenagym')}"


def test_the_console_script_is_the_command_module() -> None:
    [script] = entry_points(group="console_scripts", name="arenagym")
    assert script.value == "arenagym.cli:main"


def test_importing_the_root_and_asking_for_help_loads_no_subpackage() -> None:
    code = (
        "import sys, contextlib, io\n"
        "import arenagym\n"
        "from arenagym.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert main(['--help']) == 0\n"
        "print(sorted(m for m in sys.modules if m.startswith(('arenagym.', 'torch', 'gymnasium'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['arenagym.cli']"


def test_make_builds_a_gymnasium_env_through_gymnasium_make() -> None:
    env = arenagym.make("Math-v0", difficulty=3)
    try:
        assert isinstance(env, gym.Env) and env.spec is not None
        assert env.spec.id == "Math-v0" and env.spec.kwargs["difficulty"] == 3
        observation, info = env.reset(seed=0)
        assert isinstance(observation, str) and "system_prompt" in info
    finally:
        env.close()


def test_make_builds_multi_agent_envs_that_gymnasium_does_not_know() -> None:
    game = arenagym.make("TextArena/TicTacToe-AEC-v0")
    market = arenagym.make("RecInter-Market-v0")
    try:
        assert isinstance(game, AECEnv) and isinstance(market, ParallelEnv)
        game.reset(seed=0)
        assert game.agent_selection in game.possible_agents
    finally:
        game.close()
        market.close()
    with pytest.raises(gym.error.Error):
        gym.make("TextArena/TicTacToe-AEC-v0")  # what `arenagym list` says: arenagym.make only


def test_make_of_an_unknown_id_names_the_close_ones() -> None:
    with pytest.raises(gym.error.VersionNotFound, match=r"'Math-v9'.*did you mean .*Math-v0"):
        arenagym.make("Math-v9")
    with pytest.raises(gym.error.NameNotFound, match="TextArena/TicTacToe-AEC-v0"):
        arenagym.make("TextArena/TicTacToe-AEK-v0")
    with pytest.raises(gym.error.UnregisteredEnv, match="arenagym list"):
        arenagym.make("Zzzzzzzzzzzz-v0")


def test_list_separates_gymnasium_ids_from_multi_agent_ids(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from arenagym.envs.core.registration import list_envs

    assert main(["list"]) == 0
    single_text, multi_text = capsys.readouterr().out.split("\n\n")
    single_title, *single_rows = single_text.splitlines()
    multi_title, *multi_rows = multi_text.strip("\n").splitlines()
    assert "gymnasium.make(ID)" in single_title and "arenagym.make(ID)" in single_title
    assert "arenagym.make(ID)" in multi_title and "gymnasium.make does not know" in multi_title
    single = [row.split()[0] for row in single_rows]
    multi = [row.split()[0] for row in multi_rows]
    assert single == list(list_envs(multi_agent=False)) and "Math-v0" in single
    assert multi == list(list_envs(multi_agent=True))
    assert {"TextArena/TicTacToe-AEC-v0", "RecInter-Market-v0"} <= set(multi)
    assert all(env_id in gym.registry for env_id in single)
    assert not any(env_id in gym.registry for env_id in multi)


def test_help_lists_every_command_with_its_help_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: arenagym [-h] [--version] COMMAND ...")
    for name in TOP_LEVEL:
        help_line = " ".join(arenagym.cli._TOP_LEVEL[name][0].split()[:3])
        assert re.search(rf"^    {name}\b", out, re.MULTILINE) and help_line in out, name


#: A minimal command line for every leaf command.
LEAVES = {
    "list": ["list"],
    "run": ["run", "--suite", "math"],
    "leaderboard": ["leaderboard"],
    "show": ["show", "--suite", "math", "--agent", "random"],
    "models list": ["models", "list"],
    "models fetch": ["models", "fetch", "tiny"],
    "models path": ["models", "path", "tiny"],
    "models remove": ["models", "remove", "tiny"],
    "serve": ["serve", "--model", "tiny"],
    "train": ["train", "grpo"],
    "merge": ["merge", "--method", "linear", "--models", "a", "--output", "m"],
    "rm train": ["rm", "train", "p.jsonl", "--model", "m", "--output", "o"],
    "rm eval": ["rm", "eval", "p.jsonl", "--model", "m"],
    "dfc": ["dfc", "dfc18"],
    "swe validate": ["swe", "validate", "c.jsonl", "-o", "o.jsonl"],
    "swe synthesize": ["swe", "synthesize", "repo", "-o", "o.jsonl"],
    "swe import-sdist": ["swe", "import-sdist", "a==1", "-o", "repos"],
    "swe collect": ["swe", "collect", "t.jsonl", "--agent", "x", "-o", "o.jsonl"],
    "report": ["report", "runs/x"],
    "export": ["export", "--format", "csv"],
    "store merge": ["store", "merge", "a", "-o", "c"],
}


def test_the_one_tree_holds_every_command() -> None:
    assert set(LEAVES) == set(COMMANDS)
    whole = build_parser()
    for name, argv in LEAVES.items():
        for parser in (whole, build_parser([argv[0]])):
            args = parser.parse_args(argv)
            assert args.handler is COMMANDS[name]
            assert callable(COMMANDS[name].function())
            assert COMMANDS[name].prog == "arenagym " + name


@pytest.mark.parametrize(
    ("argv", "prog", "message"),
    [
        (["fly"], "arenagym", "argument COMMAND: invalid choice: 'fly'"),
        (["run"], "arenagym run", "the following arguments are required: --suite"),
        (["run", "--suite", "math", "--concurrency", "0"], "arenagym run", "--concurrency"),
        (["swe", "validate", "c.jsonl"], "arenagym swe validate", "required: -o/--output"),
        (["swe"], "arenagym swe", "the following arguments are required: COMMAND"),
        (["train", "grpo", "--steps", "x"], "arenagym train", "argument --steps: invalid int"),
        (["models", "fetch"], "arenagym models fetch", "the following arguments are required"),
        (["serve"], "arenagym serve", "the following arguments are required: --model"),
        (["dfc"], "arenagym dfc", "the following arguments are required: config"),
    ],
)
def test_usage_errors_are_one_line_with_status_2(
    argv: list[str], prog: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"{prog}: error: ") and message in captured.err
    assert captured.err.count("\n") == 1 and f"(see `{prog} --help`)" in captured.err


@pytest.mark.parametrize(
    ("argv", "prog", "message"),
    [
        (["run", "--suite", "nope", "--agent", "random"], "arenagym run", "unknown suite 'nope'"),
        (["leaderboard", "--store", "{tmp}/none.sqlite"], "arenagym leaderboard", "no results"),
        (["swe", "validate", "{tmp}/c.jsonl", "-o", "{tmp}/o"], "arenagym swe validate", "exist"),
        (["swe", "synthesize", "{tmp}", "-o", "{tmp}/o", "--runs", "0"], "arenagym swe synthesize",
         "--runs must be at least 1"),
        (["train", "no-such-preset"], "arenagym train", "neither a config file nor a preset"),
        (["dfc", "no-such-config"], "arenagym dfc", "bundled configs: dfc18"),
        (["models", "path", "nope/nope", "--no-fetch"], "arenagym models path", "hub id"),
    ],
)  # fmt: skip
def test_bad_input_found_by_a_command_is_one_line_with_status_2(
    argv: list[str], prog: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([part.format(tmp=tmp_path) for part in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{prog}: error: ") and message in err and err.count("\n") == 1
    assert "--help" not in err


def test_failed_commands_exit_1_in_the_same_format(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from arenagym.envs.swe import cli as swe_cli
    from arenagym.trainers import cli as trainers_cli

    def train(args: object) -> int:
        raise trainers_cli.RunFailed("step 1: every episode failed", "Traceback:\n  boom")

    def synthesize(args: object) -> int:
        raise swe_cli.NoTasksError("no candidate survived validation (see the report)")

    monkeypatch.setattr(trainers_cli, "train", train)
    monkeypatch.setattr(swe_cli, "synthesize", synthesize)
    assert main(["train", "grpo"]) == 1
    assert capsys.readouterr().err == (
        "arenagym train: error: step 1: every episode failed\nTraceback:\n  boom\n"
    )
    assert main(["swe", "synthesize", "repo", "-o", "o.jsonl"]) == 1
    assert capsys.readouterr().err == (
        "arenagym swe synthesize: error: no candidate survived validation (see the report)\n"
    )


def test_a_reader_that_goes_away_ends_the_command_quietly() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # `arenagym list | head` once head has exited
    try:
        result = subprocess.run(
            [sys.executable, "-m", "arenagym", "list"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write_end)
    assert result.returncode == 141
    assert result.stderr == ""


def test_interrupts_exit_130_and_bugs_keep_their_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from arenagym.benchmarks import cli as benchmarks_cli

    def interrupted(args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(benchmarks_cli, "run", interrupted)
    assert main(["run", "--suite", "math", "--agent", "random"]) == 130
    assert capsys.readouterr().err == (
        "arenagym run: interrupted; finished episodes are saved, run the same command again to "
        "resume\n"
    )

    def buggy(args: object) -> int:
        raise ValueError("a bug, not bad input")

    monkeypatch.setattr(benchmarks_cli, "run", buggy)
    with pytest.raises(ValueError, match="a bug"):
        main(["run", "--suite", "math", "--agent", "random"])


@pytest.mark.parametrize("module", [arenagym, arenagym.cli])
def test_docstring_examples(module: object) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)  # type: ignore[arg-type]
    assert result.attempted and result.failed == 0
