r"""SUDER's dual self-reward in miniature: does the policy's own likelihood of the problem, given
its solution, rank solutions and raise Math-v0's exact score?

What the paper proposes (SUDER, Hong et al. 2025, arXiv:2506.07963): understanding and
generation are inverse dual tasks, so an output ``y`` sampled for an input ``x`` can be rewarded
with the model's own length-normalised log-likelihood of ``x`` given ``y`` under the inverse
task — a self-supervised reward with no external judge; it reports gains on multimodal
understanding and, mostly, text-to-image generation. Here the trainer's ``[reward] source =
"dual"`` (:mod:`arenagym.trainers.dual_reward`) computes it, and Math-v0 declares its inverse
task: "given this solution, which problem does it solve?", the problem text as the target.

What this script measures, on SmolLM2-135M-Instruct by default:

1. **Ranking** (``ranking.md``): ``--rank-problems`` fixed Math-v0 problems (difficulty
   ``--rank-difficulty``, env seeds 0..N-1), each with the ``math-solver`` agent's worked
   solution (checked correct by the env) and two corrupted copies: *numbers* — every number in
   the solution shifted by 1-9, a fluent solution of some other problem with a wrong answer;
   *answer only* — the derivation kept, the boxed answer changed (a 9 prefixed). The table
   gives the share of problems whose correct solution scores higher and the mean margin
   (nats per problem token).
2. **Training** (``results.md``): GRPO with the dual self-reward alone (``dual_mix = 0``) on
   Math-v0 arithmetic with the short-answer prompt of
   :mod:`~arenagym.benchmarks.experiments.noisy_rewards` (scoring untouched; the inverse task's
   target is the problem as Math-v0 poses it). Greedy exact accuracy (the clean verifier) on
   held-out problems never posed in training, before the first step and after the last; every
   step's mean dual reward and the mean exact score of the sampled outputs
   (``clean_reward_mean``); and the *agreement* of the two on the policy's own samples: over
   every pair (correct sample, wrong sample) of one prompt, the share where the correct one got
   the higher dual reward (0.5: the self-reward cannot tell them apart). The gpu preset adds a
   reference curve trained on the env's reward.

Miniature choices: one seed and a handful of steps on CPU (a sanity check of the direction, not a
curve with error bars); 32-token answers; lr 1e-5 so that a few steps can move a 135M model.

Time (2-core Intel Xeon VM shared with other jobs, load 2.6-7.8): the smoke preset (tiny random
model) about 10 s; the cpu preset 816 s (ranking 35 s, 93 s per GRPO step on average, two
evaluations of 32 problems). The end prints the seconds and the machine.

Outputs in ``--out``: ``ranking.md``/``.json``, ``results.md``/``.json``, ``dual_reward.png`` and
``clean_reward.png`` (per step), ``curves.json`` (every step's metrics and the evaluations),
``heldout.json``, and the trainer's run folders under ``runs/``.

Run::

    python -m arenagym.benchmarks.experiments.dual_self_reward --preset smoke --out /tmp/dual-smoke
    python -m arenagym.benchmarks.experiments.dual_self_reward --preset cpu --out runs/dual
    python -m arenagym.benchmarks.experiments.dual_self_reward --preset gpu --out runs/dual-gpu
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import os
import platform
import re
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from arenagym.benchmarks.experiments.common import (
    add_common_arguments,
    check_fresh_runs,
    matplotlib_pyplot,
    non_negative_int,
    plot_curves,
    positive_float,
    positive_int,
    summarize,
    write_json,
    write_table,
)
from arenagym.benchmarks.experiments.noisy_rewards import (
    SHORT_ENV_REF,
    evaluate,
    grpo_config,
    heldout_episodes,
    resolve_preset,
    task_kwargs,
    training_task_ids,
)

__all__ = ["PRESETS", "SETTINGS", "DualPreset", "corrupt_answer", "corrupt_numbers", "main"]

#: The training curves: the reward source of each.
SETTINGS: dict[str, str] = {"dual self-reward": "dual", "env reward": "env"}


@dataclass(frozen=True)
class DualPreset:
    """The sizes of one ``--preset`` (every field but ``settings`` has a command-line flag)."""

    model: str
    device: str
    seeds: tuple[int, ...]
    settings: tuple[str, ...]
    rank_problems: int
    steps: int
    prompts_per_step: int
    group_size: int
    max_tokens: int
    lr: float
    micro_batch_size: int
    eval_problems: int
    rank_difficulty: int = 2
    difficulties: tuple[int, ...] = (1,)
    dual_batch_size: int = 16


PRESETS: dict[str, DualPreset] = {
    "smoke": DualPreset(
        model="tiny",
        device="cpu",
        seeds=(0,),
        settings=("dual self-reward",),
        rank_problems=3,
        steps=2,
        prompts_per_step=2,
        group_size=3,
        max_tokens=8,
        lr=1e-4,
        micro_batch_size=8,
        eval_problems=4,
    ),
    "cpu": DualPreset(
        model="smollm2-135m-instruct",
        device="cpu",
        seeds=(0,),
        settings=("dual self-reward",),
        rank_problems=20,
        steps=8,
        prompts_per_step=4,
        group_size=4,
        max_tokens=32,
        lr=1e-5,
        micro_batch_size=8,
        eval_problems=32,
    ),
    "gpu": DualPreset(
        model="smollm2-135m-instruct",
        device="cuda",
        seeds=(0, 1, 2),
        settings=("dual self-reward", "env reward"),
        rank_problems=100,
        steps=100,
        prompts_per_step=16,
        group_size=8,
        max_tokens=64,
        lr=3e-6,
        micro_batch_size=32,
        eval_problems=256,
        difficulties=(1, 2),
        dual_batch_size=64,
    ),
}


def build_parser() -> argparse.ArgumentParser:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="python -m arenagym.benchmarks.experiments.dual_self_reward",
        description="SUDER's dual self-reward in miniature: ranking of correct vs corrupted "
        "Math-v0 solutions, and GRPO on the self-reward alone.",
    )
    add_common_arguments(parser, "runs/experiments/dual-self-reward")
    group = parser.add_argument_group("sizes (default: the preset's)")
    group.add_argument("--rank-problems", type=non_negative_int, help="ranking set size")
    group.add_argument("--rank-difficulty", type=positive_int, help="ranking problems' level")
    group.add_argument("--steps", type=non_negative_int, help="GRPO steps per run")
    group.add_argument("--prompts-per-step", type=positive_int)
    group.add_argument("--group-size", type=positive_int, help="rollouts per prompt")
    group.add_argument("--max-tokens", type=positive_int, help="completion budget")
    group.add_argument("--lr", type=positive_float, help="RL learning rate")
    group.add_argument("--micro-batch-size", type=positive_int)
    group.add_argument("--eval-problems", type=positive_int, help="held-out problems")
    group.add_argument("--dual-batch-size", type=positive_int, help="inverse queries per pass")
    return parser


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text).strip("-")


# ------------------------------------------------------------------------------ ranking


def corrupt_numbers(text: str, rng: np.random.Generator) -> str:
    """Every number shifted by 1-9: a fluent solution of another problem, with a wrong answer.

    Example:
        >>> corrupt_numbers("2 + 3 = 5", np.random.default_rng(0)) != "2 + 3 = 5"
        True
    """
    return re.sub(r"\d+", lambda m: str(int(m.group()) + int(rng.integers(1, 10))), text)


def corrupt_answer(text: str) -> str:
    r"""The derivation kept, the last boxed answer changed (a 9 put in front).

    Example:
        >>> corrupt_answer(r"2 + 3 = 5. The answer is \boxed{5}.")
        '2 + 3 = 5. The answer is \\boxed{95}.'
    """
    head, sep, tail = text.rpartition("\\boxed{")
    return head + sep + "9" + tail if sep else text + " 9"


def rank_solutions(
    model: Any, tokenizer: Any, count: int, difficulty: int, batch_size: int
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The ranking table's rows and the per-problem scores (see the module docstring)."""
    import arenagym.envs  # noqa: F401  (registers Math-v0)
    from arenagym.agents.baselines import MathSolverAgent
    from arenagym.trainers.dual_reward import inverse_log_likelihoods

    env = gym.make("Math-v0", difficulty=difficulty)
    solver = MathSolverAgent()
    requests, kept = [], []
    try:
        for seed in range(count):
            problem, _ = env.reset(seed=seed)
            solver.reset("")
            solution = solver.act(problem)
            task = env.unwrapped.inverse_task()
            if env.step(solution)[4].get("stop_reason") != "solved":
                continue  # the solver's answer must be right for the "correct" side
            variants = [
                solution,
                corrupt_numbers(solution, np.random.default_rng(seed)),
                corrupt_answer(solution),
            ]
            requests += [(task.messages(v), task.target) for v in variants]
            kept.append({"seed": seed, "problem": problem, "solutions": variants})
    finally:
        env.close()
    scores = inverse_log_likelihoods(model, tokenizer, requests, batch_size=batch_size)
    rows = []
    for index, name in ((1, "numbers shifted"), (2, "answer only")):
        margins = [scores[3 * i] - scores[3 * i + index] for i in range(len(kept))]
        rows.append(
            {
                "corruption": name,
                "problems": len(kept),
                "correct ranked higher": sum(m > 0 for m in margins) / max(len(margins), 1),
                "mean margin (nats/token)": summarize(margins),
            }
        )
    for i, item in enumerate(kept):
        item["scores"] = scores[3 * i : 3 * i + 3]
    return rows, {"problems": kept}


# ------------------------------------------------------------------------------ training


class _Recorder:
    """Wraps the trainer's reward source and keeps, per step, each trajectory's group, exact
    score and raw dual score (when the source is the dual reward)."""

    def __init__(self, source: Any) -> None:
        self.source = source
        self.samples: list[tuple[int, int, float, float | None]] = []  # step, group, clean, dual
        self.step = 0

    @property
    def last_metrics(self) -> dict[str, float]:
        return getattr(self.source, "last_metrics", {})

    def score(self, trajectories: Sequence[Any]) -> list[float]:
        rewards = self.source.score(trajectories)
        dual = getattr(self.source, "last_scores", None) or [None] * len(trajectories)
        self.step += 1
        for t, d in zip(trajectories, dual, strict=True):
            self.samples.append((self.step, int(t.seed), float(t.clean_reward), d))
        return rewards


def agreement(samples: Sequence[tuple[int, int, float, float | None]]) -> tuple[float, int]:
    """Over every (correct, wrong) pair of samples of one prompt in one step: the share where
    the correct one has the higher dual score (ties half), and the number of pairs.

    Example:
        >>> agreement([(1, 7, 1.0, -1.0), (1, 7, 0.0, -2.0), (1, 7, 0.0, -0.5)])
        (0.5, 2)
    """
    groups: dict[tuple[int, int], list[tuple[float, float]]] = {}
    for step, group, clean, dual in samples:
        if dual is not None:
            groups.setdefault((step, group), []).append((clean, dual))
    wins, pairs = 0.0, 0
    for members in groups.values():
        for clean_a, dual_a in members:
            for clean_b, dual_b in members:
                if clean_a > clean_b:
                    pairs += 1
                    wins += 1.0 if dual_a > dual_b else 0.5 if dual_a == dual_b else 0.0
    return (wins / pairs if pairs else float("nan")), pairs


@dataclass
class Curve:
    """One training run: held-out accuracy ``(step, value)``, every step's metrics, samples."""

    evals: list[tuple[int, float]] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    samples: list[tuple[int, int, float, float | None]] = field(default_factory=list)
    seconds: float = 0.0


def train_curve(
    config: Any, heldout: Sequence[Any], max_tokens: int, overwrite: bool, label: str
) -> Curve:
    """Evaluate, train ``config`` with the real trainer, evaluate again."""
    from arenagym.trainers.trainer import Trainer

    started = time.perf_counter()
    trainer = Trainer(config, overwrite=overwrite)
    recorder = _Recorder(trainer.reward_source)
    trainer.reward_source = recorder
    curve = Curve()
    try:
        batch = config.rollout.max_batch_size
        curve.evals.append((0, evaluate(trainer.generator, heldout, max_tokens, batch)))
        _log(f"[{label}] step 0: held-out accuracy {curve.evals[-1][1]:.3f}")

        def report(record: dict[str, Any]) -> None:
            dual = record.get("dual_reward_mean")
            _log(
                f"[{label}] step {record['step']}/{config.run.steps}: reward "
                f"{record['reward_mean']:.3f}, exact score of samples "
                f"{record['clean_reward_mean']:.3f}"
                + ("" if dual is None else f", dual {dual:.3f}")
                + f" ({record['step_s']:.0f} s)"
            )

        curve.records = trainer.train(on_step=report)
        curve.evals.append(
            (config.run.steps, evaluate(trainer.generator, heldout, max_tokens, batch))
        )
        _log(f"[{label}] step {config.run.steps}: held-out accuracy {curve.evals[-1][1]:.3f}")
    finally:
        curve.samples = recorder.samples
        del trainer
        gc.collect()
    curve.seconds = time.perf_counter() - started
    return curve


def train_config(preset: DualPreset, source: str, seed: int, model: Path, out: Path) -> Any:
    """GRPO (the ``grpo`` preset) with the run's sizes and ``[reward] source``."""
    config = grpo_config(
        "grpo",
        model=model,
        device=preset.device,
        output_dir=out,
        seed=seed,
        steps=preset.steps,
        prompts_per_step=preset.prompts_per_step,
        group_size=preset.group_size,
        max_tokens=preset.max_tokens,
        lr=preset.lr,
        micro_batch_size=preset.micro_batch_size,
        tasks=task_kwargs(preset.difficulties),
    )
    config.reward.source = source
    config.reward.batch_size = preset.dual_batch_size
    config.validate("dual self-reward experiment")
    return config


def machine() -> str:
    """The CPU, its core count, torch's threads and the load average, in words."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            names = [line.split(":", 1)[1].strip() for line in handle if "model name" in line]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.get_num_threads()} threads, load {load}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the experiment; 0 on success."""
    parser = build_parser()
    args = parser.parse_args(argv)
    preset = resolve_preset(args, PRESETS)
    if args.model:
        preset = dataclasses.replace(preset, model=args.model)
    if args.device:
        preset = dataclasses.replace(preset, device=args.device)
    out = Path(args.out)
    run_dirs = {
        (name, seed): out / "runs" / _slug(name) / f"seed-{seed}"
        for name in preset.settings
        for seed in preset.seeds
    }
    problem = check_fresh_runs(list(run_dirs.values()), args.overwrite)
    if problem:
        parser.error(problem)
    matplotlib_pyplot()  # fail before training when plots cannot be drawn
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    machine_start = machine()
    _log(f"dual self-reward, preset {args.preset}: model {preset.model}; {machine_start}")

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from arenagym.agents.models import resolve_model

    model_path = resolve_model(preset.model)
    ranking_rows: list[dict[str, Any]] = []
    if preset.rank_problems:
        ranking_started = time.perf_counter()
        model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
        model.to(preset.device if preset.device != "auto" else "cpu")
        tokenizer = AutoTokenizer.from_pretrained(model_path)
        ranking_rows, detail = rank_solutions(
            model, tokenizer, preset.rank_problems, preset.rank_difficulty, preset.dual_batch_size
        )
        del model
        gc.collect()
        seconds = time.perf_counter() - ranking_started
        write_table(
            out,
            "ranking",
            list(ranking_rows[0]),
            ranking_rows,
            title=f"Dual self-reward ranks solutions ({preset.model})",
            notes=[
                f"Math-v0 difficulty {preset.rank_difficulty}, env seeds 0-"
                f"{preset.rank_problems - 1}; correct = the math-solver agent's worked solution "
                "(checked by the env); score = mean log p(problem | solution, inverse prompt) "
                f"under the model itself; margin = correct - corrupted. {seconds:.0f} s.",
            ],
            meta=detail,
        )
        print((out / "ranking.md").read_text(encoding="utf-8"))

    tasks = task_kwargs(preset.difficulties)
    seen: set[str] = set()
    for seed in preset.seeds:
        config = train_config(preset, "dual", seed, model_path, out / "unused")
        seen |= training_task_ids(config, preset.steps)
    heldout = heldout_episodes(tasks, preset.eval_problems, seen)
    write_json(
        out / "heldout.json",
        {
            "env_id": SHORT_ENV_REF,
            "episodes": [{"kwargs": e.env_kwargs, "seed": e.seed} for e in heldout],
            "excluded_training_problems": len(seen),
        },
    )
    curves: dict[str, dict[int, Curve]] = {name: {} for name in preset.settings}
    for seed in preset.seeds:
        for name in preset.settings:
            config = train_config(preset, SETTINGS[name], seed, model_path, run_dirs[(name, seed)])
            label = f"{name} seed {seed}"
            curves[name][seed] = train_curve(
                config, heldout, preset.max_tokens, args.overwrite, label
            )
            _log(f"[{label}] done in {curves[name][seed].seconds:.0f} s")
    seconds = time.perf_counter() - started
    _write_outputs(out, args, preset, curves, machine_start, machine(), seconds)
    _log(f"dual self-reward: finished in {seconds:.0f} s; results in {out}")
    return 0


def _write_outputs(
    out: Path,
    args: argparse.Namespace,
    preset: DualPreset,
    curves: Mapping[str, Mapping[int, Curve]],
    machine_start: str,
    machine_end: str,
    seconds: float,
) -> None:
    rows: list[dict[str, Any]] = []
    for name, runs in curves.items():
        values = list(runs.values())
        agreements = [agreement(c.samples) for c in values]
        rows.append(
            {
                "setting": name,
                "seeds": len(values),
                "held-out acc, step 0": summarize([c.evals[0][1] for c in values]),
                f"held-out acc, step {preset.steps}": summarize([c.evals[-1][1] for c in values]),
                "sample exact score, first step": summarize(
                    [c.records[0]["clean_reward_mean"] for c in values if c.records]
                ),
                "sample exact score, last step": summarize(
                    [c.records[-1]["clean_reward_mean"] for c in values if c.records]
                ),
                "dual reward, first step": summarize(
                    [
                        c.records[0].get("dual_reward_mean", float("nan"))
                        for c in values
                        if c.records
                    ]
                ),
                "dual reward, last step": summarize(
                    [
                        c.records[-1].get("dual_reward_mean", float("nan"))
                        for c in values
                        if c.records
                    ]
                ),
                "agreement (pairs)": ", ".join(
                    f"{share:.3f} ({pairs})" if pairs else "n/a (0)" for share, pairs in agreements
                ),
                "s/step": summarize(
                    [
                        sum(r["step_s"] for r in c.records) / len(c.records)
                        for c in values
                        if c.records
                    ]
                ),
            }
        )
    notes = [
        f"Model: {preset.model} on {preset.device}. GRPO ({preset.steps} steps, "
        f"{preset.prompts_per_step} prompts x {preset.group_size} rollouts, {preset.max_tokens} "
        f"tokens, lr {preset.lr:g}) on Math-v0 arithmetic, difficulties "
        f"{list(preset.difficulties)}, short-answer prompt; the dual setting trains on the "
        "self-reward alone (dual_mix 0, length-normalised, not group-standardised).",
        f"Held-out: {preset.eval_problems} problems never posed in training, greedy, exact "
        "(clean) score. Sample exact score: the mean clean reward of the step's sampled "
        "outputs (temperature 1). Agreement: over (correct, wrong) sample pairs of one prompt, "
        "the share where the correct one got the higher dual reward. Values: mean ± std over "
        "seeds.",
        f"Machine: {machine_start} at the start; {machine_end} at the end. Total {seconds:.0f} s.",
    ]
    write_table(
        out,
        "results",
        list(rows[0]),
        rows,
        title=f"Training on the dual self-reward (preset {args.preset})",
        notes=notes,
        meta={"preset": args.preset, "config": dataclasses.asdict(preset)},
    )
    for metric, ylabel, filename in (
        ("dual_reward_mean", "mean dual reward (nats/token)", "dual_reward.png"),
        ("clean_reward_mean", "exact score of sampled outputs", "clean_reward.png"),
    ):
        plot_curves(
            out / filename,
            {
                name: {
                    seed: [(r["step"], r.get(metric)) for r in c.records]
                    for seed, c in runs.items()
                }
                for name, runs in curves.items()
            },
            xlabel="GRPO step",
            ylabel=ylabel,
            title=f"{ylabel} vs step ({preset.model})",
        )
    write_json(
        out / "curves.json",
        {
            name: {
                str(seed): {
                    "heldout_accuracy": c.evals,
                    "steps": c.records,
                    "samples": c.samples,
                    "seconds": c.seconds,
                }
                for seed, c in runs.items()
            }
            for name, runs in curves.items()
        },
    )
    print((out / "results.md").read_text(encoding="utf-8"))


if __name__ == "__main__":
    raise SystemExit(main())
