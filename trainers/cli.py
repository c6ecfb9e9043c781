"""``arenagym train``, ``merge``, ``rm`` and ``dfc``: what they do, given their parsed arguments.

The parsers, the help and the error format are :mod:`arenagym.cli`'s (the one command module).
Each function here returns 0 on success and raises :class:`UsageError` for bad input (a config,
preset, model or file that cannot be used: one line on stderr, exit status 2) or, from ``train``,
:class:`RunFailed` when a step's episodes all failed (exit status 1, with the first error's
traceback).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from arenagym.trainers.config import TrainConfig

__all__ = ["RunFailed", "UsageError", "dfc", "merge", "rm", "train"]


class UsageError(Exception):
    """Bad input to a trainers command; the message is one line (the first of the cause's)."""

    def __init__(self, error: BaseException | str) -> None:
        text = str(error)
        super().__init__(text.splitlines()[0] if text else type(error).__name__)


class RunFailed(Exception):
    """A training run that stopped because a step's episodes all failed; ``details`` holds the
    first failure's traceback, printed after the one-line message."""

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.details = details


def _quiet_libraries() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        import transformers

        transformers.utils.logging.disable_progress_bar()
    except ImportError:
        pass


# --------------------------------------------------------------------------- train


def train(args: argparse.Namespace) -> int:
    """``arenagym train CONFIG [options]``: check the config, model and output directory, then
    train, printing a line per step; the exit status."""
    from arenagym.trainers.config import ConfigError, load_config

    overrides = list(args.set)
    for flag, key in (
        ("model", "model.path"),
        ("output", "run.output_dir"),
        ("steps", "run.steps"),
        ("seed", "run.seed"),
        ("device", "model.device"),
        ("ray", "cluster.address"),
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
        raise UsageError(error) from None
    _quiet_libraries()
    from arenagym.trainers.runs import EpisodesFailedError
    from arenagym.trainers.trainer import Trainer

    try:
        trainer = Trainer(config, resume=args.resume, overwrite=args.overwrite)
    except (ValueError, OSError, ImportError) as error:  # ClusterSetupError is a ValueError
        raise UsageError(error) from None
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
                + (f"dual {r['dual_reward_mean']:.3f} " if "dual_reward_mean" in r else "")
                + f"clean {r['clean_reward_mean']:.3f} "
                f"entropy {_optional_number(r.get('entropy'))} "
                f"len {r['response_length']:.1f} {r['tokens_per_s']:.0f} tok/s"
                + (
                    f" eval accuracy {r['eval_accuracy']:.3f} ({r['eval_episodes']} episodes)"
                    if "eval_accuracy" in r
                    else ""
                ),
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
        details = f"the first error's traceback:\n{error.traceback}" if error.traceback else ""
        raise RunFailed(str(error), details) from None
    if not config.run.checkpoint_every:
        trainer.save()
    print(f"done: {trainer.output_dir}")
    return 0


def _optional_number(value: float | None) -> str:
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


def merge(args: argparse.Namespace) -> int:
    """``arenagym merge --method M --models A B ... --output DIR``: merge the checkpoints
    shard by shard into the output directory; the exit status."""
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
        raise UsageError(error) from None
    print(f"merged {report.tensors} tensors into {len(report.shards)} shard(s) in {report.output}")
    return 0


# --------------------------------------------------------------------------- rm


def rm(args: argparse.Namespace) -> int:
    """``arenagym rm train|eval PAIRS --model DIR ...``: train a Bradley-Terry reward model
    (``args.rm_command == "train"``) or measure one's pairwise accuracy; prints the result as
    JSON; the exit status."""
    from arenagym.trainers.reward_model import PairsError, read_pairs

    try:
        pairs = read_pairs(args.pairs)
        args.model = str(_model_dir(args.model, "--model"))
    except (PairsError, ValueError) as error:
        raise UsageError(error) from None
    _quiet_libraries()
    from arenagym.trainers.reward_model import (
        RewardModelScorer,
        evaluate_pairs,
        train_reward_model,
    )

    try:
        if args.rm_command == "train":
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
        raise UsageError(error) from None
    print(json.dumps(result))
    return 0


# --------------------------------------------------------------------------- dfc


def dfc(args: argparse.Namespace) -> int:
    """``arenagym dfc CONFIG [--output DIR]``: run divide-fuse-conquer and print its report
    (Markdown); the exit status."""
    from arenagym.trainers.config import ConfigError
    from arenagym.trainers.dfc import DFCConfig, render_report, run_dfc

    try:
        config = DFCConfig.load(args.config)
        if args.output:
            config.output_dir = args.output
        config.base_model = str(_model_dir(config.base_model, "base_model"))
    except (ConfigError, ValueError) as error:
        raise UsageError(error) from None
    _quiet_libraries()
    try:
        report = run_dfc(config, overwrite=args.overwrite)
    except (ValueError, OSError) as error:
        raise UsageError(error) from None
    print(render_report(report), end="")
    return 0


# --------------------------------------------------------------------------- shared


def _model_dir(name_or_path: str, field: str) -> Path:
    """A model directory or registry name (fetched once) as a directory; ``ValueError`` naming
    ``field`` otherwise."""
    from arenagym.agents.models import ModelError, resolve_model

    try:
        return resolve_model(name_or_path)
    except ModelError as error:
        raise ValueError(f"{field}: {error}") from None
