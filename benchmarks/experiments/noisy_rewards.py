r"""Finding 1 in miniature: GRPO learns to reason through heavily flipped rewards.

What the paper found (Lv et al. 2025, "The Climb Carves Wisdom Deeper Than the Summit: On the
Noisy Rewards in Learning to Reason"): with GRPO on math, flipping each correctness reward with
probability p barely hurts up to p = 0.4 (Qwen-2.5-7B on MATH-500: 5% -> 72% with 40% flips vs
75% with clean rewards), learning stalls at p = 0.5 (the reward then carries no information), and
rewarding only reasoning phrases (the reasoning-pattern reward, RPR) nearly matches clean
rewards.

What this script measures: GRPO (the ``grpo`` preset: Skywork-OR1's token-mean PPO-clip loss, no
KL) on Math-v0's easy arithmetic (difficulty 1, ``categories=["arithmetic"]``) with the reward
flipped with p = 0, 0.2, 0.4, 0.5 (Math-v0's ``flip_prob``: every reward computation its own coin,
drawn anew at every step; ``--flip-scope group`` makes a prompt's rollouts flip together) and with
the RPR alone (``mode="rpr"``). Each setting is one curve per seed: **clean accuracy on a
held-out split** (greedy decoding, the verifier's score — never the noisy one) every
``eval_every`` steps, starting at step 0. The held-out split is a fixed set of problems drawn from
their own seed stream and never posed in training: every problem text that the runs' step plans
(``plan_step`` of every step, every seed) pose is excluded. Every setting of one seed trains on
exactly the same problems in the same order and samples with the same seeds, so the curves
differ only by the reward. The table gives held-out accuracy at step 0 and at the end, and the
gain, as mean ± std over seeds (95% t-intervals in the JSON); the plots shade ±1 std.

The prompt is the experiment's (Math-v0's scoring is untouched): the episodes are Math-v0
episodes whose system prompt asks for one short sentence ending in ``\boxed{}`` and whose question
ends "Give only the final answer, as \boxed{N}." (:data:`SHORT_ENV_ID`, a wrapper registered by
this module). With Math-v0's own prompt SmolLM2-135M-Instruct states correct sums without an
extractable answer and scored 0/16 greedy on arithmetic difficulty 1; with this one it scored
3/16 (measured while writing this script). Completions are capped short.

Models:

- ``--preset cpu``: first the real model, SmolLM2-135M-Instruct (``--real-model``): its base
  held-out accuracy is measured and printed before anything else, then it trains for
  ``--real-steps`` (4) GRPO steps with clean rewards — one seed: on 2 cores a SmolLM2 step takes
  about 2 CPU-minutes, so this checks that the real model has signal on this task and moves,
  it is not a curve with error bars. Then the full curves, on the 2-layer ``tiny`` random-init
  Qwen2 (width 128, ~0.4M parameters, the 2k-token vocabulary of
  :func:`~arenagym.agents.tiny_model.build_tiny_model`) warm-started by supervised fine-tuning on
  the ``math-solver`` agent's replies until it
  solves 10% of a validation split (checked every 50 steps, at most 600): a low but non-zero base
  rate, like the paper's 5%. SFT never sees a held-out or validation problem. Half of the SFT
  replies (chosen at random) open with "First, let me see." — two of RPR's phrases — so that, as
  with the paper's base models, the policy sometimes uses phrases RPR counts and RPR alone has
  something to reinforce; here those phrases compute nothing, which is where this miniature and
  a 7B model differ.
- ``--preset gpu``: SmolLM2-135M-Instruct itself (or ``--model DIR``), no SFT, every setting,
  3 seeds, 100 steps of 32 x 8 rollouts, difficulties 1 and 2; its base accuracy is the step-0
  evaluation of every curve. Not yet run (no GPU was available when it was written).
- ``--preset smoke``: the ``tiny`` model, 2 SFT steps, 2 GRPO steps per setting, one seed:
  plumbing only (the tests run it).

Time (2-core x86-64 VM): the smoke preset takes about 20 CPU-seconds (~50 s of wall time on a
loaded machine; mostly imports and loading). The cpu preset was sized from per-step costs
measured with one thread: ~0.7 CPU-s per SFT step of 32 rows, ~2.5 CPU-s per GRPO step of the
tiny model at 8 prompts x 8 rollouts x 48 tokens, ~2 CPU-s per 64-problem evaluation, ~2
CPU-minutes per SmolLM2 step at 4 x 8 x 32 tokens. SmolLM2 check ~9 min, SFT <= 7 min, 5
settings x 2 seeds x 40 steps with 9 evaluations each ~20 min: about 35 minutes on one thread,
less with both cores (each run logs its seconds per step; the end prints the total). A third
seed (``--seeds 0-2``) adds ~10 minutes.

Outputs in ``--out``: ``results.md`` / ``results.json`` (the table), ``heldout_accuracy.png``
(held-out accuracy vs step, mean ± std over seeds), ``train_rewards.png`` (the reward each
setting trained on, and the clean reward of its samples, vs step), ``curves.json`` (every
evaluation and every step's metrics, per setting and seed), ``heldout.json`` (the split), the
SmolLM2 check's ``real_model.md`` / ``real_model.json`` / ``real_model.png`` (cpu preset), and the
trainer's run folders under ``runs/`` (``metrics.jsonl`` each).

Run::

    python -m arenagym.benchmarks.experiments.noisy_rewards --preset smoke --out /tmp/noisy-smoke
    python -m arenagym.benchmarks.experiments.noisy_rewards --preset cpu --out runs/noisy-rewards
    python -m arenagym.benchmarks.experiments.noisy_rewards --preset gpu --out runs/noisy-gpu \
        --seeds 0,1,2                     # --model DIR for another model than SmolLM2
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import math
import random
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym

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

__all__ = [
    "BUILT_SIZES",
    "SETTINGS",
    "SHORT_ENV_ID",
    "SHORT_ENV_REF",
    "CurveResult",
    "ShortAnswerMath",
    "evaluate",
    "heldout_episodes",
    "main",
    "prepare_model",
    "sft_warm_start",
    "train_with_evals",
    "training_task_ids",
]

MODULE = "arenagym.benchmarks.experiments.noisy_rewards"

# ------------------------------------------------------------------------------ the task

#: The experiment's Math-v0 episodes (short-answer prompt; see :class:`ShortAnswerMath`).
SHORT_ENV_ID = "ArenagymExperiments/MathShortAnswer-v0"
#: The id as ``gym.make`` and the trainer take it: importing this module registers it.
SHORT_ENV_REF = f"{MODULE}:{SHORT_ENV_ID}"
SHORT_SYSTEM_PROMPT = (
    "Solve the arithmetic problem. Reply with one short sentence that ends with the final "
    "answer in \\boxed{}, for example: 3 + 4 = 7, so the answer is \\boxed{7}."
)
SHORT_USER_SUFFIX = " Give only the final answer, as \\boxed{N}."


class ShortAnswerMath(gym.Wrapper[str, str, str, str]):
    r"""Math-v0 with the experiment's short-answer prompt; scoring, rewards and noise untouched.

    The system prompt becomes :data:`SHORT_SYSTEM_PROMPT` and the problem gets
    :data:`SHORT_USER_SUFFIX`; ``info["raw_problem"]`` keeps the problem as Math-v0 posed it.

    Example:
        >>> env = gym.make(SHORT_ENV_REF, difficulty=1, categories=["arithmetic"])
        >>> problem, info = env.reset(seed=0)
        >>> problem.endswith(SHORT_USER_SUFFIX), info["raw_problem"]
        (True, 'Find the value of 13 - 4.')
        >>> env.step("13 - 4 = 9, so the answer is \\boxed{9}.")[1]
        1.0
    """

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Math-v0's reset with the prompt changed."""
        problem, info = self.env.reset(seed=seed, options=options)
        info = {**info, "system_prompt": SHORT_SYSTEM_PROMPT, "raw_problem": problem}
        return problem + SHORT_USER_SUFFIX, info


def make_short_answer_env(**kwargs: Any) -> ShortAnswerMath:
    """``gym.make("Math-v0", **kwargs)`` in :class:`ShortAnswerMath`."""
    import arenagym.envs  # noqa: F401  (registers Math-v0)

    return ShortAnswerMath(gym.make("Math-v0", **kwargs))


if SHORT_ENV_ID not in gym.registry:
    gym.register(
        SHORT_ENV_ID, entry_point=f"{MODULE}:make_short_answer_env", disable_env_checker=True
    )

#: The reward of each curve: Math-v0 keyword arguments on top of the task's.
SETTINGS: dict[str, dict[str, Any]] = {
    "p=0.0": {"flip_prob": 0.0},
    "p=0.2": {"flip_prob": 0.2},
    "p=0.4": {"flip_prob": 0.4},
    "p=0.5": {"flip_prob": 0.5},
    "RPR only": {"mode": "rpr"},
}

# ------------------------------------------------------------------------------ models

#: Random-init Qwen2 sizes built on the spot (:func:`build_tiny_model` keyword arguments); a
#: model named so is built and warm-started by SFT, any other name is a real model.
BUILT_SIZES: dict[str, dict[str, int]] = {
    "tiny": {},  # 2 layers, width 128 (build_tiny_model's defaults)
    "mini": {  # ~3M parameters
        "hidden_size": 256,
        "intermediate_size": 768,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
    },
    "small": {  # ~30M parameters
        "hidden_size": 512,
        "intermediate_size": 1536,
        "num_hidden_layers": 8,
        "num_attention_heads": 8,
        "num_key_value_heads": 2,
    },
}
#: Opens half of the SFT replies (see the module docstring): two of RPR's phrases.
REASONING_OPENER = "First, let me see. "


def sft_warm_start(
    model_dir: Path,
    out: Path,
    steps: int,
    batch: int,
    lr: float,
    device: str,
    *,
    env_id: str = "Math-v0",
    tasks: Sequence[Mapping[str, Any]] = ({"difficulty": 1},),
    seed: int = 0,
    reasoning_share: float = 0.0,
    log: Callable[[str], None] | None = None,
    stop_when: Callable[[Any, Any, int], bool] | None = None,
    check_every: int = 50,
    exclude: set[str] | frozenset[str] = frozenset(),
) -> Path:
    """Fine-tune ``model_dir`` on the ``math-solver`` agent's replies to ``env_id`` problems
    (prompt tokens masked out) and save it to ``out``.

    Problems of ``tasks`` (Math-v0 keyword arguments, taken in turn) are drawn with env seeds
    from ``random.Random(seed)``; a share ``reasoning_share``
    of the replies (drawn from their own stream) start with :data:`REASONING_OPENER`. The solver
    reads ``info["raw_problem"]`` when the env gives one (:class:`ShortAnswerMath`).
    ``stop_when(model, tokenizer, step)``, when given, is asked every ``check_every`` steps
    whether to stop before ``steps``. Problems whose ``task_id`` is in ``exclude`` (a held-out
    split) are skipped.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import arenagym.envs  # noqa: F401
    from arenagym.agents.specs import load_agent

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).to(device)
    solver = load_agent("math-solver")
    envs = [gym.make(env_id, **dict(task)) for task in tasks]
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    rng = random.Random(seed)
    style = random.Random(seed + 1)
    end = tokenizer.eos_token or "<|im_end|>"
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    model.train()
    for step in range(steps):
        rows = []
        for row in range(batch):
            problem, info = envs[row % len(envs)].reset(seed=rng.randrange(2**31))
            while info["task_id"] in exclude:
                problem, info = envs[row % len(envs)].reset(seed=rng.randrange(2**31))
            solver.reset(info["system_prompt"])
            reply = solver.act(info.get("raw_problem", problem))
            if reasoning_share and style.random() < reasoning_share:
                reply = REASONING_OPENER + reply
            messages = [
                {"role": "system", "content": info["system_prompt"]},
                {"role": "user", "content": problem},
            ]
            prompt = tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True
            )
            prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
            reply_ids = tokenizer(reply + end, add_special_tokens=False)["input_ids"]
            rows.append((prompt_ids, reply_ids))
        width = max(len(p) + len(r) for p, r in rows)
        ids = torch.full((len(rows), width), pad)
        labels = torch.full((len(rows), width), -100)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, (p, r) in enumerate(rows):
            ids[i, : len(p) + len(r)] = torch.tensor(p + r)
            labels[i, len(p) : len(p) + len(r)] = torch.tensor(r)
            mask[i, : len(p) + len(r)] = 1
        loss = model(
            input_ids=ids.to(device), attention_mask=mask.to(device), labels=labels.to(device)
        ).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if log is not None and (step + 1) % max(1, steps // 5) == 0:
            log(f"SFT step {step + 1}/{steps}: loss {loss.item():.3f}")
        check = stop_when is not None and (step + 1) % check_every == 0 and step + 1 < steps
        if check and stop_when(model, tokenizer, step + 1):  # type: ignore[misc]
            break
    for env in envs:
        env.close()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@dataclass
class StartingModel:
    """The policy's starting weights (:func:`prepare_model`)."""

    path: Path
    built: bool
    sft_steps: int = 0
    #: Greedy accuracy on the SFT validation problems when SFT stopped (built models).
    validation_accuracy: float | None = None


SFT_VALIDATION_SALT = 0x5F7  # the SFT stopping rule's problems: their own seed stream


def prepare_model(
    name: str,
    out: Path,
    *,
    sft_steps: int,
    sft_batch: int,
    sft_lr: float,
    device: str,
    tasks: Sequence[Mapping[str, Any]],
    log: Callable[[str], None],
    sft_target: float = 0.0,
    max_tokens: int = 48,
    validation: Sequence[Any] = (),
    check_every: int = 50,
    exclude: set[str] | frozenset[str] = frozenset(),
) -> StartingModel:
    """The policy's starting weights.

    A :data:`BUILT_SIZES` name is built (seed 0) into ``out/random-init`` and warm-started by
    :func:`sft_warm_start` on :data:`SHORT_ENV_REF` episodes of ``tasks`` into ``out/sft``
    (half of the replies with :data:`REASONING_OPENER`). With ``sft_target > 0``, SFT stops
    early, at a multiple of ``check_every`` steps, once greedy accuracy on the ``validation``
    episodes (:func:`sft_validation_episodes`) reaches ``sft_target``: a low but non-zero base rate, as the
    paper's base models have. Anything else is resolved as a real model (a directory or a
    registry name) and used as it is. SFT never poses a problem whose ``task_id`` is in
    ``exclude`` (the held-out split) or among the validation problems.
    """
    if name not in BUILT_SIZES:
        from arenagym.agents.models import resolve_model

        return StartingModel(resolve_model(name).absolute(), built=False)
    from arenagym.agents.tiny_model import build_tiny_model
    from arenagym.trainers.generators import TransformersGenerator

    started = time.perf_counter()
    base = build_tiny_model(out / "random-init", seed=0, **BUILT_SIZES[name])
    if sft_target > 0 and not validation:
        raise ValueError("sft_target needs validation episodes")
    state: dict[str, Any] = {"steps": sft_steps, "accuracy": math.nan, "stopped": False}

    def measure(model: Any, tokenizer: Any) -> float:
        if not validation:
            return math.nan
        generator = TransformersGenerator(model, tokenizer, max_batch_size=64)
        return evaluate(generator, validation, max_tokens)

    def reached(model: Any, tokenizer: Any, step: int) -> bool:
        state["steps"], state["accuracy"] = step, measure(model, tokenizer)
        log(f"SFT step {step}: validation accuracy {state['accuracy']:.3f}")
        state["stopped"] = state["accuracy"] >= sft_target
        return bool(state["stopped"])

    warm = sft_warm_start(
        base,
        out / "sft",
        sft_steps,
        sft_batch,
        sft_lr,
        device,
        env_id=SHORT_ENV_REF,
        tasks=tasks,
        seed=0,
        reasoning_share=0.5,
        log=log,
        stop_when=reached if sft_target > 0 else None,
        check_every=check_every,
        exclude=set(exclude) | task_ids(validation),
    )
    if not state["stopped"]:  # ran to the end: measure the final weights
        from transformers import AutoModelForCausalLM, AutoTokenizer

        state["steps"] = sft_steps
        state["accuracy"] = measure(
            AutoModelForCausalLM.from_pretrained(warm), AutoTokenizer.from_pretrained(warm)
        )
    log(
        f"built {name!r} and warm-started it by {state['steps']} SFT steps in "
        f"{time.perf_counter() - started:.0f} s: validation accuracy {state['accuracy']:.3f}"
    )
    if state["accuracy"] == 0:
        log(
            "warning: the warm-started model solves none of the validation problems; GRPO will "
            "have little signal (raise --sft-steps)"
        )
    return StartingModel(warm, True, int(state["steps"]), float(state["accuracy"]))


def sft_validation_episodes(tasks: Sequence[Mapping[str, Any]], count: int) -> list[Any]:
    """The SFT stopping rule's problems: ``count`` of their own seed stream."""
    return heldout_episodes(tasks, count, set(), salt=SFT_VALIDATION_SALT)


def task_ids(episodes: Sequence[Any]) -> set[str]:
    """The ``task_id`` of each episode (by resetting its env with its seed)."""
    ids: set[str] = set()
    for spec in episodes:
        env = gym.make(spec.env_id, **dict(spec.env_kwargs))
        try:
            ids.add(str(env.reset(seed=spec.seed)[1]["task_id"]))
        finally:
            env.close()
    return ids


# ------------------------------------------------------------------------------ held-out split

HELDOUT_SALT = 0x4E1D  # held-out problems come from their own seed stream


def training_task_ids(config: Any, steps: int) -> set[str]:
    """The ``task_id`` of every problem that ``steps`` steps of ``config`` pose (its
    ``plan_step`` of each step), found by resetting the envs with the planned seeds."""
    from arenagym.trainers.trainer import plan_step

    envs: dict[str, Any] = {}
    seen: set[str] = set()
    try:
        for step in range(steps):
            done: set[tuple[str, int | None]] = set()
            for spec in plan_step(config, step).episodes:
                key = (repr(sorted(dict(spec.env_kwargs).items())), spec.seed)
                if key in done:
                    continue
                done.add(key)
                env_key = f"{spec.env_id}|{key[0]}"
                if env_key not in envs:
                    envs[env_key] = gym.make(spec.env_id, **dict(spec.env_kwargs))
                _, info = envs[env_key].reset(seed=spec.seed)
                seen.add(str(info["task_id"]))
    finally:
        for env in envs.values():
            env.close()
    return seen


def heldout_episodes(
    tasks: Sequence[Mapping[str, Any]],
    count: int,
    exclude: set[str],
    *,
    env_id: str = SHORT_ENV_REF,
    salt: int = HELDOUT_SALT,
) -> list[Any]:
    """``count`` clean episodes (:class:`~arenagym.agents.rollout.EpisodeSpec`), spread over
    ``tasks`` (Math-v0 keyword arguments) in turn, of distinct problems whose ``task_id`` is not
    in ``exclude``; seeds come from their own stream, so the split is the same on every run.

    Raises ``ValueError`` when the problem space is too small for that many.

    Example:
        >>> episodes = heldout_episodes([{"difficulty": 1, "categories": ["arithmetic"]}], 3, set())
        >>> len(episodes), len({e.seed for e in episodes})
        (3, 3)
    """
    from arenagym.agents.chat import derive_seed
    from arenagym.agents.rollout import EpisodeSpec

    episodes: list[EpisodeSpec] = []
    taken: set[str] = set()
    envs = [gym.make(env_id, **dict(task)) for task in tasks]
    try:
        attempt = 0
        while len(episodes) < count:
            if attempt > 50 * count + 1000:
                raise ValueError(
                    f"only {len(episodes)} held-out problems of {count} could be drawn outside "
                    "the training problems; ask for fewer (--eval-problems) or a larger task"
                )
            which = len(episodes) % len(tasks)
            seed = derive_seed(salt, attempt)
            attempt += 1
            _, info = envs[which].reset(seed=seed)
            task_id = str(info["task_id"])
            if task_id in exclude or task_id in taken:
                continue
            taken.add(task_id)
            episodes.append(EpisodeSpec(env_id, dict(tasks[which]), seed=seed))
    finally:
        for env in envs:
            env.close()
    return episodes


# ------------------------------------------------------------------------------ train + evaluate


def evaluate(generator: Any, episodes: Sequence[Any], max_tokens: int, batch: int = 64) -> float:
    """Clean accuracy (mean verifier reward) of greedy decoding on ``episodes``."""
    from arenagym.agents.backends.interface import SamplingParams
    from arenagym.agents.rollout import RolloutConfig

    config = RolloutConfig(
        SamplingParams(max_tokens=max_tokens, temperature=0.0, seed=0),
        max_batch_size=batch,
        max_wait_s=0.05,
    )
    trajectories = generator.rollout(list(episodes), config)
    return sum(float(t.clean_reward) for t in trajectories) / max(len(trajectories), 1)


@dataclass
class CurveResult:
    """One training run: held-out accuracy ``(step, value)`` and every step's metrics."""

    evals: list[tuple[int, float]] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


def eval_steps(steps: int, every: int) -> list[int]:
    """The steps after which to evaluate (always the last one; 0 is evaluated before training).

    Example:
        >>> eval_steps(25, 10), eval_steps(3, 0)
        ([10, 20, 25], [3])
    """
    points = list(range(every, steps, every)) if every > 0 else []
    return [*points, steps] if steps > 0 else []


def train_with_evals(
    config: Any,
    eval_episodes: Sequence[Any],
    *,
    eval_every: int,
    eval_max_tokens: int,
    overwrite: bool,
    label: str,
    log: Callable[[str], None],
    on_eval: Callable[[int, float], None] | None = None,
) -> CurveResult:
    """Train ``config`` with the real :class:`~arenagym.trainers.trainer.Trainer`, evaluating
    held-out accuracy before the first step and every ``eval_every`` steps (and after the last).

    ``on_eval(step, accuracy)`` is called after each evaluation (step 0 before any training).
    """
    from arenagym.trainers.trainer import Trainer

    started = time.perf_counter()
    trainer = Trainer(config, overwrite=overwrite)
    try:
        batch = config.rollout.max_batch_size
        result = CurveResult()
        result.evals.append((0, evaluate(trainer.generator, eval_episodes, eval_max_tokens, batch)))
        log(f"[{label}] step 0: held-out accuracy {result.evals[-1][1]:.3f}")
        if on_eval is not None:
            on_eval(*result.evals[-1])
        for target in eval_steps(config.run.steps, eval_every):
            records = trainer.train(steps=target)
            result.records.extend(records)
            accuracy = evaluate(trainer.generator, eval_episodes, eval_max_tokens, batch)
            result.evals.append((target, accuracy))
            if on_eval is not None:
                on_eval(target, accuracy)
            recent = result.records[-len(records) :] if records else [{}]
            per_step = sum(r.get("step_s", 0.0) for r in recent) / max(len(recent), 1)
            last = recent[-1]
            entropy = last.get("entropy")
            log(
                f"[{label}] step {target}/{config.run.steps}: held-out accuracy {accuracy:.3f}"
                f" (train reward {last.get('reward_mean', 0.0):.3f}, clean "
                f"{last.get('clean_reward_mean', 0.0):.3f}, entropy "
                + ("n/a" if entropy is None else f"{entropy:.3f}")
                + f"; {per_step:.1f} s/step)"
            )
    finally:
        del trainer
        gc.collect()
    result.seconds = time.perf_counter() - started
    return result


def grpo_config(
    preset: str,
    *,
    model: Path,
    device: str,
    output_dir: Path,
    seed: int,
    steps: int,
    prompts_per_step: int,
    group_size: int,
    max_tokens: int,
    lr: float,
    micro_batch_size: int,
    tasks: Sequence[Mapping[str, Any]],
    env_id: str = SHORT_ENV_REF,
) -> Any:
    """A trainer preset (``grpo``, ``or1``, ...) with the run's sizes set (context stages, if
    the preset has any, become one stage of ``max_tokens``); no checkpoints."""
    from arenagym.trainers.config import TaskConfig, load_config

    config = load_config(preset)
    config.model.path = str(model)
    config.model.device = device
    config.run.output_dir = str(output_dir)
    config.run.seed = seed
    config.run.steps = steps
    config.run.checkpoint_every = 0
    config.rollout.prompts_per_step = prompts_per_step
    config.rollout.group_size = group_size
    config.rollout.max_tokens = max_tokens
    if config.rollout.context_stages:
        config.rollout.context_stages = [[0, max_tokens]]
    config.optim.lr = lr
    config.optim.micro_batch_size = micro_batch_size
    config.tasks = [TaskConfig(env_id, dict(task)) for task in tasks]
    config.validate(f"preset {preset} (experiment overrides)")
    return config


# ------------------------------------------------------------------------------ presets


@dataclass(frozen=True)
class Preset:
    """The sizes of one ``--preset`` (every field has a command-line override)."""

    model: str
    device: str
    seeds: tuple[int, ...]
    sft_steps: int
    sft_batch: int
    sft_lr: float
    steps: int
    prompts_per_step: int
    group_size: int
    max_tokens: int
    lr: float
    micro_batch_size: int
    eval_every: int
    eval_problems: int
    difficulties: tuple[int, ...] = (1,)
    sft_target: float = 0.0  # stop SFT once validation accuracy reaches it (0: never)
    sft_check_every: int = 50
    real_model: str | None = None  # the cpu preset's short real-model check
    real_steps: int = 0
    real_prompts_per_step: int = 4
    real_group_size: int = 8
    real_max_tokens: int = 24
    real_lr: float = 2e-6
    real_eval_problems: int = 32


PRESETS: dict[str, Preset] = {
    "smoke": Preset(
        model="tiny",
        device="cpu",
        seeds=(0,),
        sft_steps=2,
        sft_batch=4,
        sft_lr=5e-4,
        sft_target=1.0,  # never reached: exercises the stopping rule's check and the full run
        sft_check_every=1,
        steps=2,
        prompts_per_step=2,
        group_size=2,
        max_tokens=12,
        lr=1e-4,
        micro_batch_size=8,
        eval_every=1,
        eval_problems=4,
        real_prompts_per_step=2,
        real_group_size=2,
        real_max_tokens=8,
        real_eval_problems=4,
    ),
    "cpu": Preset(
        model="tiny",
        device="cpu",
        seeds=(0, 1),
        sft_steps=600,
        sft_batch=32,
        sft_lr=3e-3,
        sft_target=0.1,
        steps=40,
        prompts_per_step=8,
        group_size=8,
        max_tokens=48,
        lr=2e-4,
        micro_batch_size=64,
        eval_every=5,
        eval_problems=64,
        real_model="smollm2-135m-instruct",
        real_steps=4,
        real_prompts_per_step=4,
        real_group_size=8,
        real_max_tokens=32,
        real_lr=5e-6,
        real_eval_problems=32,
    ),
    "gpu": Preset(
        model="smollm2-135m-instruct",
        device="cuda",
        seeds=(0, 1, 2),
        sft_steps=0,
        sft_batch=32,
        sft_lr=1e-3,
        steps=100,
        prompts_per_step=32,
        group_size=8,
        max_tokens=64,
        lr=3e-6,
        micro_batch_size=32,
        eval_every=10,
        eval_problems=256,
        difficulties=(1, 2),
    ),
}


def _difficulties(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected difficulties like 1 or 1,2; got {text!r}"
        ) from None
    if not values or any(v not in range(1, 6) for v in values):
        raise argparse.ArgumentTypeError(f"difficulties are 1-5 (e.g. 1,2), got {text!r}")
    return values


def add_size_arguments(parser: argparse.ArgumentParser) -> None:
    """The overrides of :class:`Preset` fields shared by the experiment scripts."""
    group = parser.add_argument_group("sizes (default: the preset's)")
    group.add_argument("--steps", type=non_negative_int, help="GRPO steps per run")
    group.add_argument("--prompts-per-step", type=positive_int)
    group.add_argument("--group-size", type=positive_int, help="rollouts per prompt")
    group.add_argument("--max-tokens", type=positive_int, help="completion budget")
    group.add_argument("--lr", type=positive_float, help="RL learning rate")
    group.add_argument("--micro-batch-size", type=positive_int)
    group.add_argument("--eval-every", type=non_negative_int, help="steps between evaluations")
    group.add_argument("--eval-problems", type=positive_int, help="held-out problems")
    group.add_argument("--sft-steps", type=non_negative_int, help="SFT steps of a built model")
    group.add_argument(
        "--sft-target",
        type=float,
        help="stop SFT once greedy validation accuracy reaches this (0: run --sft-steps)",
    )
    group.add_argument(
        "--difficulties", type=_difficulties, help="Math-v0 arithmetic difficulties, e.g. 1,2"
    )


def resolve_preset[P](args: argparse.Namespace, presets: Mapping[str, P]) -> P:
    """The preset (a dataclass) with the command line's overrides of its fields applied: every
    argument whose ``dest`` is a field and whose value is not ``None``, ``--seeds`` as a tuple,
    and ``--real-model ''`` as ``None`` (no real-model check)."""
    preset = presets[args.preset]
    fields = {f.name for f in dataclasses.fields(preset)}  # type: ignore[arg-type]
    changes: dict[str, Any] = {}
    for name, value in vars(args).items():
        if name in fields and value is not None:
            changes[name] = value
    if args.seeds is not None:
        changes["seeds"] = tuple(args.seeds)
    if "real_model" in changes:
        changes["real_model"] = changes["real_model"] or None  # "" skips the check
    return dataclasses.replace(preset, **changes)  # type: ignore[type-var]


def task_kwargs(difficulties: Sequence[int]) -> list[dict[str, Any]]:
    """Math-v0 keyword arguments of the easy arithmetic tasks."""
    return [{"difficulty": d, "categories": ["arithmetic"]} for d in difficulties]


# ------------------------------------------------------------------------------ the experiment


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in ".-" else "-" for c in text).strip("-")


def build_parser() -> argparse.ArgumentParser:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="python -m arenagym.benchmarks.experiments.noisy_rewards",
        description="Finding 1 in miniature: GRPO on Math-v0 arithmetic under flipped rewards "
        "(p = 0, 0.2, 0.4, 0.5) and with the reasoning-pattern reward alone; held-out clean "
        "accuracy vs step.",
    )
    add_common_arguments(parser, "runs/experiments/noisy-rewards")
    add_size_arguments(parser)
    parser.add_argument(
        "--settings",
        nargs="+",
        choices=list(SETTINGS),
        default=list(SETTINGS),
        metavar="SETTING",
        help=f"which curves (default: all of {', '.join(SETTINGS)})",
    )
    parser.add_argument(
        "--flip-scope",
        choices=("sample", "group"),
        default="sample",
        help="sample: every reward its own coin (default); group: a prompt's rollouts share one",
    )
    parser.add_argument(
        "--real-model",
        default=None,
        help="the cpu preset's short real-model check (default smollm2-135m-instruct; '' skips)",
    )
    parser.add_argument(
        "--real-steps", type=non_negative_int, help="steps of the real-model check (0 skips it)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the experiment; 0 on success."""
    parser = build_parser()
    args = parser.parse_args(argv)
    preset = resolve_preset(args, PRESETS)
    out = Path(args.out)
    tasks = task_kwargs(preset.difficulties)
    settings = list(dict.fromkeys(args.settings))
    real_model = preset.real_model if preset.real_steps > 0 else None
    run_dirs = {
        (name, seed): out / "runs" / _slug(name) / f"seed-{seed}"
        for name in settings
        for seed in preset.seeds
    }
    real_dir = out / "runs" / "real-model"
    problem = check_fresh_runs([*run_dirs.values(), real_dir], args.overwrite)
    if problem:
        parser.error(problem)
    matplotlib_pyplot()  # fail before training when plots cannot be drawn
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    _log(
        f"noisy rewards, preset {args.preset}: model {preset.model}, settings {settings}, "
        f"seeds {list(preset.seeds)}, {preset.steps} steps of {preset.prompts_per_step} x "
        f"{preset.group_size} rollouts, {preset.max_tokens} tokens"
    )

    def config_for(name: str, seed: int, model: Path) -> Any:
        return grpo_config(
            "grpo",
            model=model,
            device=preset.device,
            output_dir=run_dirs[(name, seed)],
            seed=seed,
            steps=preset.steps,
            prompts_per_step=preset.prompts_per_step,
            group_size=preset.group_size,
            max_tokens=preset.max_tokens,
            lr=preset.lr,
            micro_batch_size=preset.micro_batch_size,
            tasks=[{**task, **SETTINGS[name], "flip_scope": args.flip_scope} for task in tasks],
        )

    # the held-out split: never a problem that training (or the SFT stopping rule) sees
    built = preset.model in BUILT_SIZES
    validation = sft_validation_episodes(tasks, preset.eval_problems) if built else []
    seen = task_ids(validation)
    for seed in preset.seeds:  # every setting of a seed poses the same problems
        seen |= training_task_ids(config_for(settings[0], seed, Path(".")), preset.steps)
    if real_model is not None:
        real_config = _real_config(preset, real_model, real_dir, tasks)
        seen |= training_task_ids(real_config, preset.real_steps)
    count = max(preset.eval_problems, preset.real_eval_problems if real_model else 0)
    heldout = heldout_episodes(tasks, count, seen)
    write_json(
        out / "heldout.json",
        {
            "env_id": SHORT_ENV_REF,
            "episodes": [{"kwargs": e.env_kwargs, "seed": e.seed} for e in heldout],
            "excluded_training_problems": len(seen),
            "curves_use_first": preset.eval_problems,
            "real_model_uses_first": preset.real_eval_problems if real_model else 0,
        },
    )
    if real_model is not None:  # its base accuracy first
        _real_model_check(out, args, preset, real_model, real_dir, tasks, heldout)
    heldout_ids = task_ids(heldout)  # SFT never sees them either
    heldout = heldout[: preset.eval_problems]

    start = prepare_model(
        preset.model,
        out,
        sft_steps=preset.sft_steps,
        sft_batch=preset.sft_batch,
        sft_lr=preset.sft_lr,
        device=preset.device,
        tasks=tasks,
        log=_log,
        sft_target=preset.sft_target,
        max_tokens=preset.max_tokens,
        validation=validation,
        check_every=preset.sft_check_every,
        exclude=heldout_ids,
    )

    curves: dict[str, dict[int, CurveResult]] = {name: {} for name in settings}
    for seed in preset.seeds:
        for name in settings:
            result = train_with_evals(
                config_for(name, seed, start.path),
                heldout,
                eval_every=preset.eval_every,
                eval_max_tokens=preset.max_tokens,
                overwrite=args.overwrite,
                label=f"{name} seed {seed}",
                log=_log,
            )
            curves[name][seed] = result
            write_json(run_dirs[(name, seed)] / "heldout_accuracy.json", result.evals)
            _log(f"[{name} seed {seed}] done in {result.seconds:.0f} s")

    _write_outputs(out, args, preset, settings, curves, start)
    _log(f"noisy rewards: finished in {time.perf_counter() - started:.0f} s; results in {out}")
    return 0


def _write_outputs(
    out: Path,
    args: argparse.Namespace,
    preset: Preset,
    settings: Sequence[str],
    curves: Mapping[str, Mapping[int, CurveResult]],
    starting: StartingModel,
) -> None:
    window = max(1, min(10, preset.steps))
    rows: list[dict[str, Any]] = []
    for name in settings:
        runs = curves[name]
        start = summarize([r.evals[0][1] for r in runs.values()])
        final = summarize([r.evals[-1][1] for r in runs.values()])
        gain = summarize([r.evals[-1][1] - r.evals[0][1] for r in runs.values()])
        last_clean = summarize(
            [_mean([x["clean_reward_mean"] for x in r.records[-window:]]) for r in runs.values()]
        )
        last_reward = summarize(
            [_mean([x["reward_mean"] for x in r.records[-window:]]) for r in runs.values()]
        )
        rows.append(
            {
                "setting": name,
                "seeds": len(runs),
                "held-out acc, step 0": start,
                f"held-out acc, step {preset.steps}": final,
                "gain": gain,
                f"train clean reward, last {window} steps": last_clean,
                f"train reward (as trained on), last {window} steps": last_reward,
            }
        )
    columns = list(rows[0]) if rows else ["setting"]
    model_note = (
        f"{preset.model} (random init, {starting.sft_steps} SFT steps: validation accuracy "
        f"{starting.validation_accuracy:.3f})"
        if starting.built
        else preset.model
    )
    notes = [
        f"Model: {model_note}. GRPO ({preset.steps} steps, {preset.prompts_per_step} prompts x "
        f"{preset.group_size} rollouts, {preset.max_tokens} tokens, lr {preset.lr:g}) on Math-v0 "
        f"arithmetic, difficulties {list(preset.difficulties)}, flip scope {args.flip_scope}.",
        f"Held-out: {preset.eval_problems} problems never posed in training, greedy, the "
        "verifier's clean score. Values: mean ± std over seeds (95% CIs in results.json).",
        "Paper (Qwen-2.5-7B, MATH-500): 5% -> 75% clean, 72% at p=0.4, stalls at p=0.5; RPR "
        "alone nearly matches clean.",
    ]
    write_table(
        out,
        "results",
        columns,
        rows,
        title=f"Noisy rewards in miniature (preset {args.preset})",
        notes=notes,
        meta={
            "preset": args.preset,
            "config": dataclasses.asdict(preset),
            "settings": {name: SETTINGS[name] for name in settings},
            "flip_scope": args.flip_scope,
        },
    )
    plot_curves(
        out / "heldout_accuracy.png",
        {name: {s: r.evals for s, r in curves[name].items()} for name in settings},
        xlabel="GRPO step",
        ylabel="held-out accuracy (clean, greedy)",
        title=f"Flipped rewards: held-out accuracy vs step ({preset.model})",
        ylim=(-0.02, 1.02),
    )
    train_curves: dict[str, dict[int, list[tuple[float, float | None]]]] = {}
    styles: dict[str, dict[str, Any]] = {}
    for index, name in enumerate(settings):
        styles[f"{name}: reward"] = {"color": f"C{index}", "linestyle": "-"}
        styles[f"{name}: clean"] = {"color": f"C{index}", "linestyle": ":", "marker": "x"}
        train_curves[f"{name}: reward"] = {
            s: [(x["step"], x["reward_mean"]) for x in r.records] for s, r in curves[name].items()
        }
        train_curves[f"{name}: clean"] = {
            s: [(x["step"], x["clean_reward_mean"]) for x in r.records]
            for s, r in curves[name].items()
        }
    plot_curves(
        out / "train_rewards.png",
        train_curves,
        xlabel="GRPO step",
        ylabel="mean reward of the step's rollouts",
        title="Training reward (solid: as trained on; dotted: clean)",
        styles=styles,
    )
    write_json(
        out / "curves.json",
        {
            name: {
                str(seed): {"heldout_accuracy": r.evals, "steps": r.records, "seconds": r.seconds}
                for seed, r in runs.items()
            }
            for name, runs in curves.items()
        },
    )
    print((out / "results.md").read_text(encoding="utf-8"))


def _real_config(preset: Preset, model: str, run_dir: Path, tasks: Sequence[Any]) -> Any:
    return grpo_config(
        "grpo",
        model=Path(model),
        device=preset.device,
        output_dir=run_dir,
        seed=preset.seeds[0],
        steps=preset.real_steps,
        prompts_per_step=preset.real_prompts_per_step,
        group_size=preset.real_group_size,
        max_tokens=preset.real_max_tokens,
        lr=preset.real_lr,
        micro_batch_size=8,
        tasks=tasks,
    )


def _real_model_check(
    out: Path,
    args: argparse.Namespace,
    preset: Preset,
    model: str,
    run_dir: Path,
    tasks: Sequence[Any],
    heldout: Sequence[Any],
) -> None:
    """The real model's base held-out accuracy (printed first), then a short clean GRPO run."""
    problems = heldout[: preset.real_eval_problems]
    config = _real_config(preset, model, run_dir, tasks)
    base: dict[str, float] = {}
    started = time.perf_counter()

    def report_base(step: int, accuracy: float) -> None:
        if step:
            return
        base["accuracy"] = accuracy
        print(
            f"{model}: base held-out accuracy {accuracy:.3f} on {len(problems)} problems "
            f"(greedy, {preset.real_max_tokens} tokens; measured in "
            f"{time.perf_counter() - started:.0f} s with loading)",
            flush=True,
        )
        if accuracy == 0:
            _log(
                f"warning: {model} solves none of them: GRPO gets little signal; the run goes "
                "on, but choose an easier task or a longer budget for this model"
            )

    result = train_with_evals(
        config,
        problems,
        eval_every=0,
        eval_max_tokens=preset.real_max_tokens,
        overwrite=args.overwrite,
        label=f"{model} p=0.0",
        log=_log,
        on_eval=report_base,
    )
    steps = [r["step_s"] for r in result.records]
    row = {
        "model": model,
        "held-out problems": len(problems),
        "base accuracy": base["accuracy"],
        f"accuracy after {preset.real_steps} steps": result.evals[-1][1],
        "train clean reward, first step": result.records[0]["clean_reward_mean"],
        "train clean reward, last step": result.records[-1]["clean_reward_mean"],
        "s/step": _mean(steps),
    }
    write_table(
        out,
        "real_model",
        list(row),
        [row],
        title=f"{model}: base accuracy and a short clean GRPO run (seed {preset.seeds[0]})",
        notes=[
            f"{preset.real_steps} steps of {preset.real_prompts_per_step} x "
            f"{preset.real_group_size} rollouts, {preset.real_max_tokens} tokens, lr "
            f"{preset.real_lr:g}; one seed: a sanity check, not a curve with error bars."
        ],
        meta={"evals": result.evals, "steps": result.records},
    )
    plt = matplotlib_pyplot()
    figure, axis = plt.subplots(figsize=(6.4, 4.2))
    try:
        xs = [x for x, _ in result.evals]
        axis.plot(xs, [y for _, y in result.evals], marker="o", label="held-out (greedy)")
        axis.plot(
            [r["step"] for r in result.records],
            [r["clean_reward_mean"] for r in result.records],
            marker=".",
            label="training samples (clean)",
        )
        axis.set_xlabel("GRPO step")
        axis.set_ylabel("accuracy")
        axis.set_ylim(-0.02, 1.02)
        axis.set_title(f"{model}, clean rewards, seed {preset.seeds[0]}", fontsize=10)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
        figure.tight_layout()
        figure.savefig(out / "real_model.png", dpi=120)
    finally:
        plt.close(figure)
    print((out / "real_model.md").read_text(encoding="utf-8"))


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


if __name__ == "__main__":
    raise SystemExit(main())
