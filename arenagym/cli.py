"""The ``arenagym`` command: one tree of commands, one error format (also ``python -m arenagym``).

::

    arenagym list                                        # every env id, Gymnasium and PettingZoo
    arenagym run --suite math --agent math-solver        # play a suite, then its leaderboard
    arenagym leaderboard --suite math --markdown results/leaderboard.md
    arenagym show --suite math --agent random --failed   # the transcripts of its episodes
    arenagym models fetch smollm2-135m-instruct          # models by name (also list, path, remove)
    arenagym serve --model tiny --port 8000              # an OpenAI-compatible server
    arenagym train or1 --model DIR --output runs/or1     # and merge, rm, dfc
    arenagym swe synthesize path/to/repo -o tasks.jsonl  # and swe validate, import-sdist, collect
    arenagym report runs/or1                             # curves as HTML + PNGs
    arenagym export --format csv -o results.csv          # and store merge A B -o C
    arenagym --version

Every parser of the tree is built here; the work of a command is done by a function of a
subpackage that takes the parsed arguments (``arenagym.benchmarks.cli.run``,
``arenagym.trainers.cli.train``, ``arenagym.envs.swe.cli.validate``, ...) and is imported only
when that command runs, so ``arenagym list`` never loads torch. Only the arguments of the
command being run are added to its parser (``build_parser([command])``); ``build_parser()``
builds the whole tree.

Errors are reported in one format, one line on stderr, for every command:
``arenagym COMMAND [SUBCOMMAND]: error: MESSAGE``. Exit status 2: bad input, whether argparse
finds it (an unknown option, a missing argument) or the command does (an unknown suite, agent,
model or preset, a malformed file); 1: the command ran and failed (every episode of a training
step failed, no SWE task survived validation, the server could not listen); 130: interrupted
(Ctrl-C), with what is kept. A command's own error types are mapped to these statuses in
:data:`COMMANDS`; any other exception is a bug and shows its traceback.

Example:
    >>> main(["run", "--suite", "math", "--concurrency", "0"])
    2
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import NoReturn

__all__ = ["COMMANDS", "Command", "build_parser", "main"]


@dataclass(frozen=True)
class Command:
    """A leaf of the command tree (``run``, ``swe validate``): what runs it and how it fails."""

    #: What the command is called in messages: ``"arenagym swe validate"``.
    prog: str
    #: ``"module:function"``: called with the parsed arguments, returns the exit status.
    target: str
    #: ``("module:ExceptionClass", exit status)`` pairs, first match wins: the errors that are
    #: reported as one line rather than a traceback (2: bad input, 1: the command failed).
    errors: tuple[tuple[str, int], ...] = ()
    #: What Ctrl-C leaves behind, said after ``interrupted;`` (exit status 130).
    interrupted: str = ""

    def function(self) -> Callable[[argparse.Namespace], int]:
        """The implementation, imported now."""
        from arenagym.envs.core.loading import load_object

        return load_object(self.target, what="command")

    def status_of(self, error: BaseException) -> int | None:
        """The exit status for ``error``, or ``None`` if it is not one of this command's errors.

        Only modules that are already imported are looked at: an exception cannot be an
        instance of a class that was never loaded.
        """
        for path, status in self.errors:
            module_name, _, name = path.partition(":")
            module = sys.modules.get(module_name)
            error_type = getattr(module, name, None) if module is not None else None
            if isinstance(error_type, type) and isinstance(error, error_type):
                return status
        return None


class UsageError(Exception):
    """A usage error argparse found; ``prog`` names the (sub)command it belongs to."""

    def __init__(self, prog: str, message: str) -> None:
        super().__init__(message)
        self.prog = prog


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` that raises its usage errors instead of printing them, so that
    :func:`main` reports them in the one format of every error."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(self.prog, message)


# --------------------------------------------------------------------------- the tree

_BENCHMARK_ERRORS = (
    ("arenagym.benchmarks.cli:UsageError", 2),
    ("arenagym.benchmarks.suite:SuiteError", 2),
    ("arenagym.benchmarks.store:StoreError", 2),
    ("arenagym.benchmarks.runner:RunSetupError", 2),
    ("arenagym.benchmarks.cli:RunFailed", 1),
)
_TRAINER_ERRORS = (
    ("arenagym.trainers.cli:UsageError", 2),
    ("arenagym.trainers.cli:RunFailed", 1),
)
_SWE_ERRORS = (
    ("arenagym.envs.swe.cli:UsageError", 2),
    ("arenagym.envs.swe.curation:CurationError", 2),
    ("arenagym.envs.swe.cli:NoTasksError", 1),
    ("arenagym.envs.swe.cli:EnvBuildFailedError", 1),
)
_RESUME = "finished episodes are saved, run the same command again to resume"

#: Every leaf command by its name after ``arenagym``.
COMMANDS: dict[str, Command] = {
    "list": Command("arenagym list", "arenagym.cli:list_command"),
    "run": Command(
        "arenagym run", "arenagym.benchmarks.cli:run", _BENCHMARK_ERRORS, interrupted=_RESUME
    ),
    "leaderboard": Command(
        "arenagym leaderboard", "arenagym.benchmarks.cli:leaderboard", _BENCHMARK_ERRORS
    ),
    "show": Command("arenagym show", "arenagym.benchmarks.cli:show", _BENCHMARK_ERRORS),
    **{
        f"models {name}": Command(
            f"arenagym models {name}",
            "arenagym.agents.models:command",
            (("arenagym.agents.models:ModelError", 2),),
        )
        for name in ("list", "fetch", "path", "remove")
    },
    "serve": Command(
        "arenagym serve",
        "arenagym.agents.serve:command",
        (("arenagym.agents.models:ModelError", 2), ("arenagym.agents.serve:ListenError", 1)),
    ),
    "train": Command(
        "arenagym train",
        "arenagym.trainers.cli:train",
        _TRAINER_ERRORS,
        interrupted="--resume continues from the last checkpoint",
    ),
    "merge": Command("arenagym merge", "arenagym.trainers.cli:merge", _TRAINER_ERRORS),
    "rm train": Command("arenagym rm train", "arenagym.trainers.cli:rm", _TRAINER_ERRORS),
    "rm eval": Command("arenagym rm eval", "arenagym.trainers.cli:rm", _TRAINER_ERRORS),
    "dfc": Command("arenagym dfc", "arenagym.trainers.cli:dfc", _TRAINER_ERRORS),
    "report": Command(
        "arenagym report",
        "arenagym.trainers.report:command",
        (("arenagym.trainers.report:ReportError", 2),),
    ),
    "export": Command(
        "arenagym export",
        "arenagym.benchmarks.export:export_command",
        (
            ("arenagym.benchmarks.export:ExportError", 2),
            ("arenagym.benchmarks.store:StoreError", 2),
        ),
    ),
    "store merge": Command(
        "arenagym store merge",
        "arenagym.benchmarks.export:merge_command",
        (
            ("arenagym.benchmarks.export:ExportError", 2),
            ("arenagym.benchmarks.store:StoreError", 2),
            ("arenagym.benchmarks.export:MergeConflictError", 1),
        ),
    ),
    "swe validate": Command(
        "arenagym swe validate",
        "arenagym.envs.swe.cli:validate",
        _SWE_ERRORS,
        interrupted="cached results are kept",
    ),
    "swe synthesize": Command(
        "arenagym swe synthesize",
        "arenagym.envs.swe.cli:synthesize",
        _SWE_ERRORS,
        interrupted="cached results are kept",
    ),
    "swe collect": Command(
        "arenagym swe collect",
        "arenagym.benchmarks.swe_collect:collect_command",
        (("arenagym.benchmarks.swe_collect:CollectError", 2),),
        interrupted="nothing is written before every episode has been played",
    ),
    "swe import-sdist": Command(
        "arenagym swe import-sdist",
        "arenagym.envs.swe.import_cli:import_sdist_command",
        (
            ("arenagym.envs.swe.cli:UsageError", 2),
            ("arenagym.envs.swe.import_cli:ImportFailedError", 1),
        ),
        interrupted="finished imports and built environments are kept; run it again to go on",
    ),
}

_RAW = argparse.RawDescriptionHelpFormatter


def _leaf(parser: argparse.ArgumentParser, name: str) -> None:
    """Mark ``parser`` as the leaf command ``name`` of :data:`COMMANDS`."""
    parser.set_defaults(handler=COMMANDS[name])


def build_parser(commands: Iterable[str] | None = None) -> argparse.ArgumentParser:
    """The parser of the ``arenagym`` command.

    Every command is listed (with its help line) either way; ``commands`` (top-level names such
    as ``["run"]``) adds the options of those commands only, so that running one command does
    not import what the others need for their options and help (torch for ``merge``'s methods).
    ``None`` builds the whole tree.
    """
    from arenagym import __version__

    chosen = None if commands is None else set(commands)
    parser = _Parser(
        prog="arenagym",
        description="Gymnasium and PettingZoo envs, benchmarks and RL training for LLM agents.",
        epilog="Run `arenagym COMMAND --help` for a command's options and examples.\n\n"
        "Errors are one line on stderr, `arenagym COMMAND: error: MESSAGE`; exit status:\n"
        "0 done, 1 the command failed, 2 bad input, 130 interrupted.",
        formatter_class=_RAW,
    )
    parser.add_argument("--version", action="version", version=f"arenagym {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (help_text, description, add_arguments) in _TOP_LEVEL.items():
        sub = subparsers.add_parser(
            name, help=help_text, description=description, formatter_class=_RAW
        )
        if chosen is None or name in chosen:
            add_arguments(sub)
    return parser


def _add_list(parser: argparse.ArgumentParser) -> None:
    parser.epilog = "example:\n  arenagym list"
    _leaf(parser, "list")


_RUN_EXAMPLES = """\
examples:
  arenagym run --suite math --agent math-solver
  arenagym run --suite math --agent random --agent-kwargs '{"seed": 1}' --concurrency 16
  arenagym run --suite path/to/suite.toml --agent my_pkg.agents:MyAgent --agent-name my-agent-v2
  arenagym run --suite dfc18-quick
  arenagym run --suite dfc18 --agent my_pkg.agents:MyAgent   # also play the built-in players
  arenagym run --suite math --agent hf:smollm2-135m-instruct,temperature=0,max_tokens=256
  arenagym run --suite math --agent openai:http://127.0.0.1:8000/v1,model=tiny
  arenagym run --suite math-quick --suite dfc18-quick --agent vllm:smollm2-135m-instruct
  arenagym run --suite math --agent math-solver --limit 2 --json   # 2 per task; JSON summary
  arenagym run --suite math --agent openai:http://10.0.0.5:8000/v1,model=tiny --ray auto

A suite with [[matches]] plays its [[players]] against each other (and --agent, if given,
against all of them) and shows OpenSkill ratings with wins/draws/losses.

Episodes already in the store for this suite and agent name are skipped, so re-running the same
command after a crash or Ctrl-C finishes the suite without repeating or duplicating episodes.

An agent call that takes longer than the suite's agent_call_timeout_s (default 600 s), or calls
of one episode that take longer than its episode_timeout_s together (default 3600 s), end that
episode with stop reason agent_timeout (a failure of the agent; in a game it forfeits) and the
run goes on; --agent-call-timeout and --episode-timeout override the suite's [settings].

At the end, failed episodes are summarised, one line per distinct error with its count, tasks and
seeds; the exit status is 1 if any episode (or game) ended in an agent or env error, and
`arenagym show --suite NAME --agent NAME --failed` prints their transcripts. Progress goes to
stderr: a bar on a terminal, else a plain line every few seconds.
"""


def _add_run(parser: argparse.ArgumentParser) -> None:
    from arenagym.agents.specs import agent_spec_help
    from arenagym.benchmarks.runner import DEFAULT_CONCURRENCY
    from arenagym.benchmarks.suite import bundled_suites

    parser.epilog = _RUN_EXAMPLES + "\n" + agent_spec_help()
    parser.add_argument(
        "--suite",
        required=True,
        action="append",
        help=f"a suite .toml file, or a bundled suite name ({', '.join(bundled_suites())}); "
        "give it several times to run several suites in turn in one process (an LLM agent's "
        "model is loaded once)",
    )
    parser.add_argument(
        "--agent",
        metavar="SPEC",
        help="a built-in agent (random, math-solver), an entry point of the 'arenagym.agents' "
        "group, 'package.module:Class', or an LLM spec: hf:MODEL, vllm:MODEL or "
        "openai:URL,model=NAME, each with optional ,key=value pairs (see 'agent specs' below; "
        "required unless the suite only has [[matches]])",
    )
    parser.add_argument(
        "--agent-kwargs",
        default="{}",
        metavar="JSON",
        help="keyword arguments for the agent, as a JSON object (e.g. '{\"seed\": 1}'); for "
        "an LLM spec, any of its keys (e.g. '{\"temperature\": 0.2}')",
    )
    parser.add_argument(
        "--agent-name",
        metavar="NAME",
        help="the agent's name in the store and on the leaderboard "
        "(default: the agent spec plus its sorted kwargs, e.g. random(seed=1); "
        "an API key in them is shown as ***)",
    )
    _add_store_argument(parser)
    parser.add_argument(
        "--concurrency",
        type=_positive_int,
        default=DEFAULT_CONCURRENCY,
        metavar="N",
        help=f"episodes played at once (default {DEFAULT_CONCURRENCY})",
    )
    parser.add_argument(
        "--ray",
        nargs="?",
        const="auto",
        metavar="ADDRESS",
        help="play the episodes as Ray tasks across a cluster: auto (default: the cluster "
        "`ray start` started on this machine), HOST:PORT, ray://HOST:10001, or local (a "
        "private one-machine Ray); the results stream back and only this process writes the "
        "store (match suites too: one task per game). Agents must build on every node: an LLM "
        "through an openai: endpoint (hf:/vllm: agents and players are refused)",
    )
    parser.add_argument(
        "--opponents",
        metavar="NAMES",
        help="match suites: the --agent plays only against these of the suite's players "
        "(comma-separated names; default: all of them); its rating stays tied to the pool "
        "through them",
    )
    parser.add_argument(
        "--agent-call-timeout",
        type=_seconds,
        metavar="SECONDS",
        help="the most one agent call (building it, reset, act) may take; past it the episode "
        "ends with stop reason agent_timeout (default: the suite's agent_call_timeout_s)",
    )
    parser.add_argument(
        "--episode-timeout",
        type=_seconds,
        metavar="SECONDS",
        help="the most the agent's calls of one episode (one seat of a game) may take together "
        "(default: the suite's episode_timeout_s)",
    )
    parser.add_argument("--no-progress", action="store_true", help="do not show a progress bar")
    parser.add_argument(
        "--retry-errors",
        action="store_true",
        help="play again the episodes recorded with stop_reason agent_error or env_error "
        "(not agent_timeout: a timeout is the agent's result)",
    )
    parser.add_argument(
        "--limit",
        type=_positive_int,
        metavar="N",
        help="play only the first N episodes of each task, in the suite's seed order (match "
        "suites: the first N games of each lineup); the rest stay for a later run",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the run's summary as one JSON object on stdout, and nothing else there "
        "(the summaries for people and the progress go to stderr; no leaderboard)",
    )
    _leaf(parser, "run")


def _add_leaderboard(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "examples:\n"
        "  arenagym leaderboard\n"
        "  arenagym leaderboard --suite math --markdown results/leaderboard.md\n"
        "  arenagym leaderboard --store /tmp/other.sqlite\n"
        "  arenagym leaderboard --html results/site     # then open results/site/index.html\n"
    )
    _add_store_argument(parser)
    parser.add_argument("--suite", metavar="NAME", help="only this suite (default: every suite)")
    parser.add_argument(
        "--markdown", metavar="PATH", help="also write the leaderboard as Markdown to PATH"
    )
    parser.add_argument(
        "--html",
        metavar="DIR",
        help="also write the leaderboard as a static web site into DIR (open DIR/index.html; "
        "self-contained: no server, nothing loaded from the network)",
    )
    _leaf(parser, "leaderboard")


def _add_show(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "examples:\n"
        "  arenagym show --suite math --agent math-solver\n"
        "  arenagym show --suite math --agent my-agent --failed --limit 3\n"
        "  arenagym show --store /tmp/r.sqlite --suite dfc18-quick --agent random-legal "
        "--task nim\n"
        "\nEach episode: its key, stop reason, score and error, then every turn: what the agent\n"
        "saw, what it wrote, the reward (and its components), the call's latency and tokens.\n"
        "Rich on a terminal; plain text when piped.\n"
    )
    _add_store_argument(parser)
    parser.add_argument("--suite", required=True, metavar="NAME", help="the suite")
    parser.add_argument(
        "--agent",
        required=True,
        metavar="NAME",
        help="the agent's name in the store (as on the leaderboard); in a match suite, a player",
    )
    parser.add_argument("--task", metavar="NAME", help="only this task (default: every task)")
    parser.add_argument(
        "--failed",
        action="store_true",
        help="only episodes that failed: agent/env errors, timeouts and every stop reason "
        "that is not a success (games: those the agent did not win)",
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=10,
        metavar="N",
        help="show at most N episodes (default 10; 0: all)",
    )
    _leaf(parser, "show")


def _add_store_argument(parser: argparse.ArgumentParser) -> None:
    from arenagym.benchmarks.cli import DEFAULT_STORE

    parser.add_argument(
        "--store",
        default=str(DEFAULT_STORE),
        metavar="PATH",
        help=f"the results store: one SQLite file (default {DEFAULT_STORE}; its folder is created)",
    )


def _add_models(parser: argparse.ArgumentParser) -> None:
    from arenagym.agents.models import arenagym_home

    parser.description = (
        "Models by name: list the registry, fetch (download + convert once) and print cache "
        f"paths. Cache: $ARENAGYM_HOME/models (now {arenagym_home() / 'models'})."
    )
    parser.epilog = (
        "examples:\n  arenagym models list\n  arenagym models fetch smollm2-135m-instruct\n"
        "  arenagym run --suite math --agent hf:$(arenagym models path smollm2-135m-instruct)\n"
        "  arenagym run --suite math --agent vllm:smollm2-135m-instruct   # names work directly"
    )
    commands = parser.add_subparsers(dest="models_command", metavar="COMMAND", required=True)
    _leaf(
        commands.add_parser("list", help="every registry model, and whether it is cached"),
        "models list",
    )
    fetch = commands.add_parser("fetch", help="download and convert models into the cache")
    fetch.add_argument("names", nargs="+", metavar="NAME")
    fetch.add_argument("--force", action="store_true", help="remove the cached copy first")
    _leaf(fetch, "models fetch")
    path = commands.add_parser("path", help="print a model's directory (fetching it if needed)")
    path.add_argument("name", metavar="NAME_OR_DIR")
    path.add_argument("--no-fetch", action="store_true", help="fail rather than fetch")
    _leaf(path, "models path")
    remove = commands.add_parser("remove", help="delete cached models")
    remove.add_argument("names", nargs="+", metavar="NAME")
    _leaf(remove, "models remove")


def _add_serve(parser: argparse.ArgumentParser) -> None:
    from arenagym.agents.serve import DEFAULT_HOST, DEFAULT_PORT

    parser.epilog = (
        "examples:\n"
        "  arenagym serve --model tiny --port 0         # a registry model, any free port\n"
        "  arenagym serve --model smollm2-135m-instruct --port 8000\n"
        "  arenagym serve --model /models/qwen --served-model-name qwen\n"
        "  arenagym run --suite math --agent openai:http://127.0.0.1:8000/v1,model=qwen\n\n"
        "On start it prints the address it listens on and the agent spec that uses it.\n"
    )
    parser.add_argument(
        "--model",
        required=True,
        metavar="DIR_OR_NAME",
        help="a model directory (Hugging Face format) or a registry name "
        "(`arenagym models list`; fetched and cached on first use)",
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help="interface to bind (default loopback)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="TCP port (0 = any free one; printed)"
    )
    parser.add_argument(
        "--served-model-name",
        "--model-name",
        dest="model_name",
        nargs="+",
        default=None,
        metavar="NAME",
        help="the name(s) clients use as `model` (default: the registry name, or the model "
        "directory's basename); responses name the model that was asked for",
    )
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 … (default: auto)")
    parser.add_argument("--dtype", default=None, help="float32, bfloat16 … (default: auto)")
    parser.add_argument(
        "--max-context", type=int, default=None, help="context length (default: the model's)"
    )
    parser.add_argument("--max-batch-size", type=int, default=64)
    parser.add_argument(
        "--batch-window-ms", type=float, default=5.0, help="how long to gather a batch"
    )
    parser.add_argument("--log-level", default="warning")
    _leaf(parser, "serve")


def _add_train(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "examples:\n"
        "  arenagym train or1 --model models/qwen2.5-1.5b-instruct --output runs/or1\n"
        "  arenagym train grpo --model models/tiny --set run.steps=20 --set rollout.group_size=4\n"
        "  arenagym train my_config.toml --resume          # continue from the newest checkpoint\n"
        "  arenagym train my_config.toml --overwrite       # start again, deleting the previous "
        "run's files\n"
        "presets: grpo, or1, drgrpo, rloo, reinforce_pp, ppo (trainers/presets/*.toml)\n"
    )
    parser.add_argument("config", help="a preset name or a config .toml file")
    parser.add_argument("--model", help="the policy's Hugging Face directory (model.path)")
    parser.add_argument("--output", help="output directory (run.output_dir)")
    parser.add_argument("--steps", type=int, help="training steps (run.steps)")
    parser.add_argument("--seed", type=int, help="run seed (run.seed)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1 ... (model.device)")
    parser.add_argument(
        "--ray",
        nargs="?",
        const="auto",
        metavar="ADDRESS",
        help="roll out on a Ray cluster (cluster.address): auto (default: the cluster `ray "
        "start` started on this machine), HOST:PORT, ray://HOST:10001, or local; "
        "cluster.engines engine actors generate (each reserving cluster.engine_resources, e.g. "
        "--set 'cluster.engine_resources={\"num_gpus\": 1}') and load the weights after every "
        "update; cluster.env_workers actors step the envs",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override any config field (repeatable), e.g. --set optim.lr=1e-6",
    )
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in the output directory from its newest checkpoint (metrics of "
        "later steps are dropped and redone); refused if the model, [algorithm], tasks, "
        "[reward], [data] or run.seed differ from the checkpoint's",
    )
    existing.add_argument(
        "--overwrite",
        action="store_true",
        help="start a new run in an output directory that holds one, first deleting that run's "
        "files: checkpoints/step-*, metrics.jsonl, tensorboard/events.out.tfevents.*, "
        "pass_rate_filter.json (nothing else in the directory)",
    )
    parser.add_argument("--quiet", action="store_true", help="do not print a line per step")
    _leaf(parser, "train")


def _add_merge(parser: argparse.ArgumentParser) -> None:
    from arenagym.trainers.merging import METHODS  # (imports torch)

    parser.epilog = (
        "examples:\n"
        "  arenagym merge --method linear --models ckpt/a ckpt/b --output merged\n"
        "  arenagym merge --method ties --base base --models a b --density 0.5 --output merged\n"
        "  arenagym merge --method dare_ties --base base --models a b --density 0.3 --seed 1 "
        "--output m\n"
        "  arenagym merge --method slerp --models a b --t 0.3 --output merged\n"
    )
    parser.add_argument("--method", required=True, choices=METHODS)
    parser.add_argument("--models", nargs="+", required=True, metavar="DIR")
    parser.add_argument("--base", metavar="DIR", help="base model (task-vector methods)")
    parser.add_argument("--output", required=True, metavar="DIR")
    parser.add_argument("--weights", nargs="+", type=float, help="one weight per model")
    parser.add_argument("--density", type=float, default=0.5, help="TIES/DARE density (0.5)")
    parser.add_argument("--lambda", dest="lambda_", type=float, default=1.0, help="scale (1.0)")
    parser.add_argument("--t", type=float, default=0.5, help="SLERP position 0..1 (0.5)")
    parser.add_argument("--normalize", choices=("true", "false"), help="override the default")
    parser.add_argument("--seed", type=int, default=0, help="DARE's random seed (0)")
    parser.add_argument(
        "--max-shard-size", type=float, default=2.0, metavar="GB", help="output shard size (2)"
    )
    _leaf(parser, "merge")


def _add_rm(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "examples:\n"
        "  arenagym rm train pairs.jsonl --model models/base --output models/rm --epochs 2\n"
        "  arenagym rm eval pairs.jsonl --model models/rm\n"
        'pairs.jsonl: {"prompt": "...", "chosen": "...", "rejected": "..."} per line\n'
    )
    commands = parser.add_subparsers(dest="rm_command", metavar="COMMAND", required=True)
    train = commands.add_parser("train", help="train a reward model on pairs.jsonl")
    train.add_argument("pairs")
    train.add_argument("--model", required=True, help="base model directory")
    train.add_argument("--output", required=True, help="where to save the reward model")
    train.add_argument("--epochs", type=int, default=1)
    train.add_argument("--lr", type=float, default=1e-5)
    train.add_argument("--batch-size", type=int, default=8)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--device", default="cpu")
    _leaf(train, "rm train")
    evaluate = commands.add_parser("eval", help="pairwise accuracy of a reward model")
    evaluate.add_argument("pairs")
    evaluate.add_argument("--model", required=True, help="reward model directory")
    evaluate.add_argument("--batch-size", type=int, default=16)
    evaluate.add_argument("--device", default="cpu")
    _leaf(evaluate, "rm eval")


def _add_dfc(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "examples:\n"
        "  arenagym dfc dfc.toml\n"
        "  arenagym dfc dfc.toml --output runs/dfc2\n"
        "(see arenagym.trainers.dfc for the file's keys)\n"
    )
    parser.add_argument("config", help="a DFC .toml file or a bundled name (dfc18)")
    parser.add_argument("--output", help="output directory (overrides output_dir)")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="delete an earlier DFC run in the output directory (its stages/ and report "
        "files, nothing else) and start again; without it such a directory is refused",
    )
    _leaf(parser, "dfc")


def _add_report(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "examples:\n"
        "  arenagym report runs/or1          # a training run (its metrics.jsonl)\n"
        "  arenagym report runs/dfc          # a DFC run (report.json, every stage's runs)\n"
        "  arenagym report runs/or1 -o /tmp/or1-report\n"
        "\nWrites DIR/index.html (self-contained: charts embedded, opens offline) and one PNG\n"
        "per metric; DIR (default RUN_DIR/report) is replaced as a whole.\n"
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a training run or a DFC output dir")
    parser.add_argument(
        "-o", "--output", metavar="DIR", help="where to write the report (default RUN_DIR/report)"
    )
    _leaf(parser, "report")


def _add_export(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "examples:\n"
        "  arenagym export --format csv -o results.csv\n"
        "  arenagym export --store /tmp/other.sqlite --format jsonl --suite math > math.jsonl\n"
        "  arenagym export --format parquet --table matches -o games.parquet   # needs pyarrow\n"
        "\nColumns: the store's fields; in CSV, the object and list fields are JSON text.\n"
    )
    _add_store_argument(parser)
    parser.add_argument("--format", required=True, choices=("csv", "jsonl", "parquet"))
    parser.add_argument(
        "--table",
        choices=("episodes", "matches"),
        default="episodes",
        help="episodes: one row per agent episode (default); matches: one row per game",
    )
    parser.add_argument("--suite", metavar="NAME", help="only this suite (default: every suite)")
    parser.add_argument(
        "-o", "--output", metavar="FILE", help="the file to write (default: stdout; not parquet)"
    )
    _leaf(parser, "export")


def _add_store(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="store_command", metavar="COMMAND", required=True)
    merge = commands.add_parser(
        "merge",
        help="merge stores from several machines into a new one, each episode once",
        epilog="examples:\n"
        "  arenagym store merge a.sqlite b.sqlite -o results/all.sqlite\n"
        "\nThe same key (suite, task, agent, seed, episode; games: their lineup) is the same\n"
        "episode: one is kept. Same key with different results: the first store's row is kept\n"
        "and each conflict is listed (exit status 1). Leaderboard settings are carried over.\n",
        formatter_class=_RAW,
    )
    merge.add_argument("stores", nargs="+", metavar="STORE", help="the stores to merge, in order")
    merge.add_argument(
        "-o", "--output", required=True, metavar="FILE", help="the new store (must not exist)"
    )
    _leaf(merge, "store merge")


_VALIDATE_EXAMPLES = """\
examples:
  arenagym swe validate candidates.jsonl -o validated.jsonl
  arenagym swe validate candidates.jsonl -o validated.jsonl --runs 3 --workers 4 --cache .cache

Each candidate's whole test suite runs in a fresh sandbox before and after its gold patch,
--runs times each; FAIL_TO_PASS = fails before and passes after in every run, PASS_TO_PASS =
passes in every run; flaky tests are left out and tasks with no FAIL_TO_PASS are dropped.
With --cache, results are kept by content hash and a re-run only does new work.
"""

_SYNTHESIZE_EXAMPLES = """\
examples:
  arenagym swe synthesize path/to/repo -o tasks.jsonl
  arenagym swe synthesize path/to/repo -o tasks.jsonl --max-tasks 50 --per-function 3 --seed 1
  arenagym swe synthesize path/to/repo -o tasks.jsonl --operators drop_else,swap_arguments

REPO is a directory or a git repository (read at HEAD) with a pytest suite. Bugs are injected
one function at a time into its non-test source; each candidate is validated as by `validate`
and gets a problem statement written from its failing tests. The same seed gives the same tasks.
"""


_IMPORT_DESCRIPTION = """\
Download each release's source distribution from the package registry, unpack it into
OUTPUT/NAME-VERSION (a git repository with one commit, the same for the same release) and write
OUTPUT/NAME-VERSION.json: where it came from (file, URL, SHA-256), its test files, and its
locked test environment, which is built into a cache by content hash (a second build takes no
time) and mounted read-only into the sandbox of every task that names that file in its
`environment` field. Each package succeeds or fails on its own; the others go on.
"""

_IMPORT_EXAMPLES = """\
examples:
  arenagym swe import-sdist more-itertools==10.5.0 toolz==1.0.0 -o repos
  arenagym swe import-sdist -r envs/swe/data/real-libraries.txt -o build/swe-real --check

exit status: 2 for a malformed pin or pin file, 1 when a package could not be imported or
(with --check) its tests failed in the sandbox, 0 otherwise.
"""


_COLLECT_DESCRIPTION = """\
Play an agent over every task of a task file in SWE-v0 (ATTEMPTS episodes each) and write the
episodes the grader resolved as JSONL for supervised fine-tuning: per row the chat (`messages`:
system, issue, then each reply as an assistant message with its tool call and the sandbox's
answer as a `tool` message), SWE-v0's tool schemas (`tools`), the task, repository, turns and
tokens. The statistics (resolve rate per repository, turns and tokens of the kept trajectories)
are printed and written beside the output.
"""

_COLLECT_EXAMPLES = """\
examples:
  arenagym swe collect tasks.jsonl --agent openai:http://gpu:8000/v1,model=qwen -o traj.jsonl
  arenagym swe collect tasks.jsonl --agent arenagym.envs.swe.baselines:GoldPatchAgent \\
      --agent-kwargs '{"tasks": "tasks.jsonl"}' -o traj.jsonl --tokenizer smollm2-135m-instruct
"""


def _add_swe(parser: argparse.ArgumentParser) -> None:
    from pathlib import Path

    from arenagym.envs.swe.synthesis import OPERATORS

    commands = parser.add_subparsers(dest="swe_command", metavar="COMMAND", required=True)

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("-o", "--output", required=True, type=Path, help="JSONL to write")
        sub.add_argument("--report", type=Path, help="JSON report (default: OUTPUT.report.json)")
        sub.add_argument("--runs", type=int, default=2, help="runs before/after (default 2)")
        sub.add_argument("--workers", type=int, default=2, help="parallel sandboxes (default 2)")
        sub.add_argument("--cache", type=Path, help="folder of cached results (incremental)")
        sub.add_argument("--runtime", default="bubblewrap", help="sandbox (default bubblewrap)")
        sub.add_argument("--timeout", type=float, help="seconds per test-suite run")
        sub.add_argument("--no-progress", action="store_true", help="no progress bar")

    validate = commands.add_parser(
        "validate",
        help="run candidates' tests before/after the gold patch; keep the valid ones",
        epilog=_VALIDATE_EXAMPLES,
        formatter_class=_RAW,
    )
    validate.add_argument("candidates", type=Path, help="candidate tasks (SWE-bench JSONL)")
    common(validate)
    _leaf(validate, "swe validate")

    synth = commands.add_parser(
        "synthesize",
        help="inject bugs into a repository and write validated tasks",
        epilog=_SYNTHESIZE_EXAMPLES + f"operators: {', '.join(OPERATORS)}\n",
        formatter_class=_RAW,
    )
    synth.add_argument("repo", type=Path, help="a directory or git repository with tests")
    common(synth)
    synth.add_argument("--max-tasks", type=int, default=20, help="tasks to write (default 20)")
    synth.add_argument("--seed", type=int, default=0, help="seed of the mutation choice")
    synth.add_argument("--per-function", type=int, default=2, help="candidates per function")
    synth.add_argument("--max-candidates", type=int, help="cap on candidates validated")
    synth.add_argument("--operators", help="comma-separated subset of the operators")
    synth.add_argument("--name", help="repository display name (default: the folder name)")
    synth.add_argument("--test-command", default="python -m pytest", help="pytest invocation")
    synth.add_argument(
        "--environment",
        type=Path,
        metavar="FILE",
        help="environment spec the tasks name (default: REPO.json of an imported repository)",
    )
    _leaf(synth, "swe synthesize")

    imports = commands.add_parser(
        "import-sdist",
        help="import libraries' source distributions from the registry as git repositories",
        description=_IMPORT_DESCRIPTION,
        epilog=_IMPORT_EXAMPLES,
        formatter_class=_RAW,
    )
    imports.add_argument("packages", nargs="*", metavar="NAME==VERSION", help="releases to import")
    imports.add_argument("-o", "--output", required=True, type=Path, help="folder of repositories")
    imports.add_argument(
        "-r",
        "--pins",
        action="append",
        type=Path,
        metavar="FILE",
        help="a file of pins, one a line",
    )
    imports.add_argument(
        "--with",
        dest="with_requirements",
        action="append",
        metavar="REQ",
        help="an extra test requirement for every package (repeatable)",
    )
    imports.add_argument("--no-env", action="store_true", help="do not build the environments")
    imports.add_argument(
        "--env-cache",
        type=Path,
        metavar="DIR",
        help="environment cache (default ~/.cache/arenagym/swe-envs)",
    )
    imports.add_argument(
        "--check", action="store_true", help="run each test suite once in the sandbox, record it"
    )
    imports.add_argument("--timeout", type=float, help="seconds per --check run (default 600)")
    _leaf(imports, "swe import-sdist")

    gather = commands.add_parser(
        "collect",
        help="play an agent over tasks and keep the resolved episodes as SFT trajectories",
        description=_COLLECT_DESCRIPTION,
        epilog=_COLLECT_EXAMPLES,
        formatter_class=_RAW,
    )
    gather.add_argument(
        "tasks", help="task file (SWE-bench JSONL, validated), or real, real-train, real-test"
    )
    gather.add_argument("--agent", required=True, metavar="SPEC", help="the agent to play")
    gather.add_argument("--agent-kwargs", metavar="JSON", help="keyword arguments of the agent")
    gather.add_argument("--env-kwargs", metavar="JSON", help="SWE-v0 keyword arguments")
    gather.add_argument("-o", "--output", required=True, type=Path, help="trajectories JSONL")
    gather.add_argument("--attempts", type=int, default=1, help="episodes per task (default 1)")
    gather.add_argument("--workers", type=int, default=2, help="episodes at once (default 2)")
    gather.add_argument(
        "--keep", choices=("resolved", "all"), default="resolved", help="which episodes to write"
    )
    gather.add_argument(
        "--tokenizer", metavar="MODEL", help="count each trajectory's tokens with this model's"
    )
    _leaf(gather, "swe collect")


#: The top-level commands in ``arenagym --help`` order: (help line, description, add options).
_TOP_LEVEL: dict[str, tuple[str, str, Callable[[argparse.ArgumentParser], None]]] = {
    "list": (
        "list every env id: Gymnasium ids and multi-agent (PettingZoo) ids",
        "List every arenagym env id with a description, in two groups: single-agent ids\n"
        "registered with Gymnasium (gymnasium.make(ID) after `import arenagym.envs`, or\n"
        "arenagym.make(ID)) and multi-agent PettingZoo ids (arenagym.make(ID) only).",
        _add_list,
    ),
    "run": (
        "run a benchmark suite with an agent (resumable)",
        "Play every episode of a suite with an agent, record each finished episode\n"
        "in a SQLite store, then print the suite's leaderboard.",
        _add_run,
    ),
    "leaderboard": (
        "show the leaderboard of the results in a store",
        "Rank agents by their mean score over a suite's tasks, with mean ± standard\n"
        "error over seeds per task.",
        _add_leaderboard,
    ),
    "show": (
        "print the transcripts of an agent's episodes in a store",
        "Print the transcripts of an agent's episodes of a suite from a results store:\n"
        "every turn's observation, action, reward, latency and tokens, and the error that\n"
        "ended a failed episode.",
        _add_show,
    ),
    "models": (
        "models by name: list the registry, fetch (download + convert once), print paths",
        "Models by name: list the registry, fetch (download + convert once) and print cache paths.",
        _add_models,
    ),
    "serve": (
        "serve a local model over an OpenAI-compatible HTTP API",
        "Serve a local Hugging Face model over an OpenAI-compatible HTTP API\n"
        "(POST /v1/chat/completions, GET /v1/models, POST /tokenize, GET /health).",
        _add_serve,
    ),
    "train": (
        "train a model on envs (GRPO, OR1, Dr. GRPO, RLOO, REINFORCE++, PPO)",
        "Train a causal LM on arenagym envs with GRPO, Dr. GRPO, RLOO, REINFORCE++ or PPO;\n"
        "writes metrics.jsonl and checkpoints under the output directory. An output\n"
        "directory that holds a run (checkpoints or metrics.jsonl) needs --resume or\n"
        "--overwrite; without either, nothing is started and nothing is touched. Every\n"
        "[[tasks]] entry is checked (env id registered, env builds with its kwargs) before\n"
        "step 1; a step whose episodes all end in env_error stops the run (exit status 1).",
        _add_train,
    ),
    "merge": (
        "merge safetensors checkpoints (linear, task arithmetic, TIES, DARE, SLERP)",
        "Merge safetensors checkpoints of one architecture, shard by shard (mergekit's formulas).",
        _add_merge,
    ),
    "rm": (
        "train and evaluate Bradley-Terry reward models",
        "Bradley-Terry reward models: train on preference pairs, measure pairwise accuracy.",
        _add_rm,
    ),
    "dfc": (
        "divide-fuse-conquer: a specialist per group, fused, then trained on all groups",
        "Divide-Fuse-Conquer: group the envs (by the base model's measured win rate when\n"
        "the config lists games), then per group train a specialist, fuse it with the model\n"
        "so far and train the fused model on the groups so far; report every env's score.",
        _add_dfc,
    ),
    "swe": (
        "SWE task curation: validate and synthesize tasks, import real repositories",
        "SWE task curation: validate candidate tasks (SWE-bench JSONL) in sandboxes,\n"
        "synthesize new tasks from a repository by bug injection, and import real\n"
        "libraries' source distributions as repositories with their test environments.",
        _add_swe,
    ),
    "report": (
        "write a training or DFC run's curves as an HTML page and PNGs",
        "Write the curves of a training run (every metric of its metrics.jsonl) or of a\n"
        "DFC run (scores per stage and group, each stage's training runs) as one\n"
        "self-contained HTML page plus a PNG per metric, in RUN_DIR/report.",
        _add_report,
    ),
    "export": (
        "export a results store's episodes or games as CSV, JSON Lines or Parquet",
        "Export the episode rows (or game rows) of a results store, optionally one suite's,\n"
        "as CSV, JSON Lines or Parquet (Parquet needs pyarrow).",
        _add_export,
    ),
    "store": (
        "results stores: merge stores from several machines",
        "Results stores: merge stores from several machines into one, each episode once,\n"
        "conflicting duplicates reported.",
        _add_store,
    ),
}


# --------------------------------------------------------------------------- running


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``arenagym`` command with ``argv`` (default ``sys.argv[1:]``); the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((arg for arg in argv if not arg.startswith("-")), "")
    parser = build_parser([command] if command in _TOP_LEVEL else [])
    try:
        args = parser.parse_args(argv)
    except UsageError as error:
        return _report(error.prog, f"{error} (see `{error.prog} --help`)", 2)
    except SystemExit as exit_:  # --help or --version, already printed
        return exit_.code if isinstance(exit_.code, int) else 0
    handler: Command = args.handler
    try:
        return handler.function()(args)
    except BrokenPipeError:  # the reader went away (`arenagym list | head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit's flush
        return 141  # 128 + SIGPIPE, as a shell reports a command killed by the closed pipe
    except KeyboardInterrupt:
        said = f"; {handler.interrupted}" if handler.interrupted else ""
        print(f"{handler.prog}: interrupted{said}", file=sys.stderr)
        return 130
    except Exception as error:
        status = handler.status_of(error)
        if status is None:
            raise
        details = getattr(error, "details", "")
        return _report(handler.prog, str(error) or type(error).__name__, status, details)


def _report(prog: str, message: str, status: int, details: str = "") -> int:
    """Print ``PROG: error: MESSAGE`` (and any ``details`` lines) on stderr; ``status``."""
    print(f"{prog}: error: {message}", file=sys.stderr)
    if details:
        print(details.rstrip(), file=sys.stderr)
    return status


def list_command(args: argparse.Namespace) -> int:
    """``arenagym list``: the Gymnasium ids, then the multi-agent (PettingZoo) ids, each with
    its description and how to build it."""
    import arenagym.envs  # noqa: F401  (registers every id)
    from arenagym.envs.core.registration import list_envs as registered

    groups = (
        (
            "Gymnasium envs (one agent): gymnasium.make(ID) after `import arenagym.envs`, "
            "or arenagym.make(ID)",
            registered(multi_agent=False),
        ),
        (
            "Multi-agent envs (PettingZoo AEC/Parallel): arenagym.make(ID); "
            "gymnasium.make does not know these ids",
            registered(multi_agent=True),
        ),
    )
    width = max((len(env_id) for _, envs in groups for env_id in envs), default=0)
    for index, (title, envs) in enumerate(groups):
        print(("\n" if index else "") + title)
        for env_id, description in envs.items():
            print(f"  {env_id:<{width}}  {description}")
    return 0


def _seconds(text: str) -> float:
    """An argparse type: a number of seconds > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text}")
    return value


def _positive_int(text: str) -> int:
    """An argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value
