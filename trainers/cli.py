"""Command-line entry points: ``arenagym train``, ``merge``, ``rm`` and ``dfc``.

Each ``*_main(argv) -> int`` parses its own arguments (``--help`` shows examples), returns 0 on
success, and on bad input prints one line to stderr and returns 2 (``train``: 1 when a step's
episodes all failed, with the first error). ``python -m
arenagym.trainers.cli train ...`` runs them without the ``arenagym`` command.

Example:
    >>> train_main(["no-such-preset"])
    2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from arenagym.trainers.config import TrainConfig

__all__ = ["dfc_main", "main", "merge_main", "rm_main", "train_main"]

_TRAIN_EXAMPLES = """examples:
  arenagym train or1 --model models/qwen2.5-1.5b-instruct --output runs/or1
  arenagym train grpo --model models/tiny --set run.steps=20 --set rollout.group_size=4
  arenagym train my_config.toml --resume          # continue from the newest checkpoint
  arenagym train my_config.toml --overwrite       # start again, deleting the previous run's files
presets: grpo, or1, drgrpo, rloo, reinforce_pp, ppo (trainers/presets/*.toml)
"""

_MERGE_EXAMPLES = """examples:
  arenagym merge --method linear --models ckpt/a ckpt/b --output merged
  arenagym merge --method ties --base base --models a b --density 0.5 --output merged
  arenagym merge --method dare_ties --base base --models a b --density 0.3 --seed 1 --output m
  arenagym merge --method slerp --models a b --t 0.3 --output merged
"""

_RM_EXAMPLES = """examples:
  arenagym rm train pairs.jsonl --model models/base --output models/rm --epochs 2
  arenagym rm eval pairs.jsonl --model models/rm
pairs.jsonl: {"prompt": "...", "chosen": "...", "rejected": "..."} per line
"""

_DFC_EXAMPLES = """examples:
  arenagym dfc dfc.toml
  arenagym dfc dfc.toml --output runs/dfc2
(see arenagym.trainers.dfc for the file's keys)
"""


def _quiet_libraries() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        import transformers

        transformers.utils.logging.disable_progress_bar()
    except ImportError:
        pass


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace | int:
    try:
        return parser.parse_args(list(argv))
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 2


def _fail(command: str, error: BaseException) -> int:
    message = str(error).splitlines()[0] if str(error) else type(error).__name__
    print(f"arenagym {command}: error: {message}", file=sys.stderr)
    return 2


# --------------------------------------------------------------------------- train


def train_parser() -> argparse.ArgumentParser:
    """The ``arenagym train`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="arenagym train",
        description="Train a causal LM on arenagym envs with GRPO, Dr. GRPO, RLOO, REINFORCE++ "
        "or PPO; writes metrics.jsonl and checkpoints under the output directory. An output "
        "directory that holds a run (checkpoints or metrics.jsonl) needs --resume or "
        "--overwrite; without either, nothing is started and nothing is touched. Every "
        "[[tasks]] entry is checked (env id registered, env builds with its kwargs) before "
        "step 1; a step whose episodes all end in env_error stops the run (exit status 1).",
        epilog=_TRAIN_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("config", help="a preset name or a config .toml file")
    parser.add_argument("--model", help="the policy's Hugging Face directory (model.path)")
    parser.add_argument("--output", help="output directory (run.output_dir)")
    parser.add_argument("--steps", type=int, help="training steps (run.steps)")
    parser.add_argument("--seed", type=int, help="run seed (run.seed)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1 ... (model.device)")
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
    return parser


def train_main(argv: Sequence[str]) -> int:
    """``arenagym train CONFIG [options]``; the exit status."""
    args = _parse(train_parser(), argv)
    if isinstance(args, int):
        return args
    from arenagym.trainers.config import ConfigError, load_config

    overrides = list(args.set)
    for flag, key in (
        ("model", "model.path"),
        ("output", "run.output_dir"),
        ("steps", "run.steps"),
        ("seed", "run.seed"),
        ("device", "model.device"),
    ):
        value = getattr(args, flag)
        if value is not None:
            overrides.append(f"{key}={json.dumps(value)}")
    try:
        config = load_config(args.config, overrides)
        if not config.model.path:
            raise ConfigError("no model: pass --model PATH or set model.path in the config")
        config.model.path = str(_model_dir(config.model.path, "model.path").absolute())
        _check_output(config, args.resume, args.overwrite)
    except (ConfigError, ValueError) as error:
        return _fail("train", error)
    _quiet_libraries()
    from arenagym.trainers.runs import EpisodesFailedError
    from arenagym.trainers.trainer import Trainer

    try:
        trainer = Trainer(config, resume=args.resume, overwrite=args.overwrite)
    except (ValueError, OSError, ImportError) as error:
        return _fail("train", error)
    if trainer.deleted:
        print(
            f"--overwrite: deleted the previous run in {trainer.output_dir}: "
            + ", ".join(str(p.relative_to(trainer.output_dir)) for p in trainer.deleted),
            file=sys.stderr,
        )
    if args.resume:
        where = trainer.resumed_from or f"no checkpoint in {trainer.checkpoint_dir}"
        dropped = (
            f"; dropped {trainer.dropped_metrics} metrics.jsonl line(s) of later steps"
            if trainer.dropped_metrics
            else ""
        )
        print(f"resuming at step {trainer.step_count} ({where}){dropped}", file=sys.stderr)
    target = config.run.steps

    def progress(r: dict) -> None:
        if not args.quiet:
            print(
                f"step {r['step']}/{target} reward {r['reward_mean']:.3f} "
                f"clean {r['clean_reward_mean']:.3f} entropy {_fmt(r.get('entropy'))} "
                f"len {r['response_length']:.1f} {r['tokens_per_s']:.0f} tok/s",
                flush=True,
            )
        if r.get("skipped_update") and not r.get("filtered_groups"):
            print(
                f"arenagym train: step {r['step']} produced no training samples "
                f"(episode stop reasons: {r.get('stop_reasons')}); no update was made",
                file=sys.stderr,
            )

    try:
        trainer.train(target, on_step=progress)
    except EpisodesFailedError as error:
        print(f"arenagym train: error: {error}", file=sys.stderr)
        if error.traceback:
            print(f"the first error's traceback:\n{error.traceback.rstrip()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "arenagym train: interrupted; --resume continues from the last checkpoint",
            file=sys.stderr,
        )
        return 130
    if not config.run.checkpoint_every:
        trainer.save()
    print(f"done: {trainer.output_dir}")
    return 0


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _check_output(config: TrainConfig, resume: bool, overwrite: bool) -> None:
    """Refuse a used output directory without --resume/--overwrite, and a --resume that
    differs from its checkpoint, before anything heavy loads (the Trainer checks again)."""
    from arenagym.trainers.runs import check_output_dir, check_resume

    output = Path(config.run.output_dir)
    check_output_dir(output, resume=resume, overwrite=overwrite, flags=("--resume", "--overwrite"))
    if resume:
        from arenagym.trainers.checkpoint import latest_checkpoint  # (imports torch)

        latest = latest_checkpoint(output / "checkpoints")
        if latest is not None:
            check_resume(latest, config.to_dict(), overwrite_flag="--overwrite")


# --------------------------------------------------------------------------- merge


def merge_parser() -> argparse.ArgumentParser:
    """The ``arenagym merge`` argument parser."""
    from arenagym.trainers.merging import METHODS

    parser = argparse.ArgumentParser(
        prog="arenagym merge",
        description="Merge safetensors checkpoints of one architecture, shard by shard "
        "(mergekit's formulas).",
        epilog=_MERGE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
    return parser


def merge_main(argv: Sequence[str]) -> int:
    """``arenagym merge --method M --models A B ... --output DIR``; the exit status."""
    args = _parse(merge_parser(), argv)
    if isinstance(args, int):
        return args
    from arenagym.trainers.merging import MergeError, MergeSpec, merge_checkpoints

    try:
        spec = MergeSpec(
            args.method,
            weights=tuple(args.weights or ()),
            density=args.density,
            lambda_=args.lambda_,
            t=args.t,
            normalize=None if args.normalize is None else args.normalize == "true",
            seed=args.seed,
        )
        if args.weights and len(args.weights) != len(args.models):
            raise MergeError(f"{len(args.weights)} weights for {len(args.models)} models")
        args.models = [_model_dir(m, "--models") for m in args.models]
        if args.base is not None:
            args.base = _model_dir(args.base, "--base")
        report = merge_checkpoints(
            spec,
            args.models,
            args.output,
            base=args.base,
            max_shard_bytes=max(int(args.max_shard_size * 1024**3), 1),
        )
    except (MergeError, OSError, ValueError) as error:
        return _fail("merge", error)
    print(f"merged {report.tensors} tensors into {len(report.shards)} shard(s) in {report.output}")
    return 0


# --------------------------------------------------------------------------- rm


def rm_parser() -> argparse.ArgumentParser:
    """The ``arenagym rm`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="arenagym rm",
        description="Bradley-Terry reward models: train on preference pairs, measure pairwise "
        "accuracy.",
        epilog=_RM_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train a reward model on pairs.jsonl")
    train.add_argument("pairs")
    train.add_argument("--model", required=True, help="base model directory")
    train.add_argument("--output", required=True, help="where to save the reward model")
    train.add_argument("--epochs", type=int, default=1)
    train.add_argument("--lr", type=float, default=1e-5)
    train.add_argument("--batch-size", type=int, default=8)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--device", default="cpu")
    evaluate = commands.add_parser("eval", help="pairwise accuracy of a reward model")
    evaluate.add_argument("pairs")
    evaluate.add_argument("--model", required=True, help="reward model directory")
    evaluate.add_argument("--batch-size", type=int, default=16)
    evaluate.add_argument("--device", default="cpu")
    return parser


def rm_main(argv: Sequence[str]) -> int:
    """``arenagym rm train|eval PAIRS --model DIR ...``; the exit status."""
    args = _parse(rm_parser(), argv)
    if isinstance(args, int):
        return args
    from arenagym.trainers.reward_model import PairsError, read_pairs

    try:
        pairs = read_pairs(args.pairs)
        args.model = str(_model_dir(args.model, "--model"))
    except (PairsError, ValueError) as error:
        return _fail("rm", error)
    _quiet_libraries()
    from arenagym.trainers.reward_model import (
        RewardModelScorer,
        evaluate_pairs,
        train_reward_model,
    )

    try:
        if args.command == "train":
            scorer, losses = train_reward_model(
                pairs,
                args.model,
                args.output,
                epochs=args.epochs,
                lr=args.lr,
                batch_size=args.batch_size,
                seed=args.seed,
                device=args.device,
            )
            result = {"final_loss": losses[-1], **evaluate_pairs(scorer, pairs)}
        else:
            scorer = RewardModelScorer(args.model, device=args.device, batch_size=args.batch_size)
            result = evaluate_pairs(scorer, pairs)
    except (ValueError, OSError) as error:
        return _fail("rm", error)
    print(json.dumps(result))
    return 0


# --------------------------------------------------------------------------- dfc


def dfc_main(argv: Sequence[str]) -> int:
    """``arenagym dfc CONFIG [--output DIR]``; the exit status."""
    parser = argparse.ArgumentParser(
        prog="arenagym dfc",
        description="Divide-Fuse-Conquer: group the envs (by the base model's measured win "
        "rate when the config lists games), then per group train a specialist, fuse it with "
        "the model so far and train the fused model on the groups so far; report every env's "
        "score.",
        epilog=_DFC_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("config", help="a DFC .toml file or a bundled name (dfc18)")
    parser.add_argument("--output", help="output directory (overrides output_dir)")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="delete an earlier DFC run in the output directory (its stages/ and report "
        "files, nothing else) and start again; without it such a directory is refused",
    )
    args = _parse(parser, argv)
    if isinstance(args, int):
        return args
    from arenagym.trainers.config import ConfigError
    from arenagym.trainers.dfc import DFCConfig, render_report, run_dfc

    try:
        config = DFCConfig.load(args.config)
        if args.output:
            config.output_dir = args.output
        config.base_model = str(_model_dir(config.base_model, "base_model"))
    except (ConfigError, ValueError) as error:
        return _fail("dfc", error)
    _quiet_libraries()
    try:
        report = run_dfc(config, overwrite=args.overwrite)
    except (ValueError, OSError) as error:
        return _fail("dfc", error)
    print(render_report(report), end="")
    return 0


# --------------------------------------------------------------------------- dispatcher


def _model_dir(name_or_path: str, field: str) -> Path:
    """A model directory or registry name (fetched once) as a directory; ``ValueError`` naming
    ``field`` otherwise."""
    from arenagym.agents.models import ModelError, resolve_model

    try:
        return resolve_model(name_or_path)
    except ModelError as error:
        raise ValueError(f"{field}: {error}") from None


COMMANDS: dict[str, Callable[[Sequence[str]], int]] = {
    "train": train_main,
    "merge": merge_main,
    "rm": rm_main,
    "dfc": dfc_main,
}


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m arenagym.trainers.cli {train,merge,rm,dfc} ...``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        print(
            f"usage: python -m arenagym.trainers.cli {{{','.join(COMMANDS)}}} ...", file=sys.stderr
        )
        return 0 if argv[:1] in (["-h"], ["--help"]) else 2
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
