"""The RL trainer: rollouts -> rewards -> advantages -> clipped policy updates, with checkpoints.

Before the first step, with ``data.pass_rate_samples > 0`` (Skywork-OR1's offline filter),
every ``[[tasks]]`` entry is played that many times by the initial policy and entries whose
pass rate (share of episodes that end ``solved``) is ``<= data.pass_rate_low`` or
``>= data.pass_rate_high`` are dropped: they would only feed zero-variance groups. The result is
logged and kept in ``pass_rate_filter.json`` in the output directory, which a resumed run reuses.

One :meth:`Trainer.step`:

1. **Tasks**: ``prompts_per_step`` episodes drawn from ``[[tasks]]`` (by weight) with env seeds
   derived from ``(run.seed, step)``, each repeated ``group_size`` times — one group per prompt.
2. **Rollout**: the generator plays them (the rollout engine batches generation across episodes),
   sampling with seeds derived from ``(run.seed, step)``; the completion budget comes from the
   context schedule (``rollout.context_stages``) when there is one.
3. **Reward**: the reward source scores each trajectory (the env's reward by default, a reward
   model, or the policy's own dual self-reward, :mod:`arenagym.trainers.dual_reward`, whose raw
   score goes on the metrics line as ``dual_reward_mean``); every turn of a trajectory that
   sampled tokens becomes a training row carrying that reward, its group and its trajectory's
   index. Credit is per trajectory: the group of a trajectory is the episodes of its prompt
   (same task, same env seed), and a trajectory with no sampled tokens takes no part.
4. **Filter**: with ``filter_zero_variance_groups``, groups whose trajectories' rewards are all
   equal are dropped (they carry no GRPO signal); a step with nothing left makes no update.
5. **Update**: old (and reference) log-probabilities are computed without gradients (with one
   update per rollout batch, the old ones are the update's own forward pass, detached: one
   forward pass less, the same loss); the
   algorithm's estimator computes *one advantage per trajectory* from trajectory rewards (group
   mean/std over trajectories, leave-one-out over trajectories, whitening over trajectories —
   see :mod:`arenagym.trainers.algorithms`) and puts it on every sampled token of every turn of
   that trajectory; prompt and env-observation tokens are masked. So a 9-turn episode weighs as
   much in its group's statistics as a 1-turn one. Then ``ppo_epochs`` x ``mini_batches`` AdamW
   steps (mini-batches are shuffled sets of whole trajectories), each accumulating gradients
   over micro-batches of ``micro_batch_size`` rows with per-token weights that make the
   accumulated loss exactly the mini-batch's aggregated loss (token-mean: over all its sampled
   tokens; seq-mean-*: per trajectory, then over trajectories); bf16 autocast on CUDA, optional
   gradient checkpointing, gradient-norm clipping, a learning-rate schedule.
6. **Entropy control** (OR1): the coefficient of the next step's entropy bonus is updated from
   this step's mean token entropy.
7. **Sync, log, checkpoint**: the generator gets the new weights; a metrics line is written;
   every ``checkpoint_every`` steps a checkpoint is saved.

**Evaluation** (``[eval]``, off unless ``eval.episodes > 0``; see
:mod:`arenagym.trainers.config`): before the first step, every ``eval.every`` steps and after
the last step (after the weight sync, so a vLLM generator plays the updated weights), the policy
plays the eval episodes (:func:`plan_eval`) greedily through the same generator, without training
on them. ``eval_accuracy`` (share of episodes whose ``stop_reason`` is in
:data:`EVAL_SUCCESS`), ``eval_clean_reward``, ``eval_episodes`` and ``eval_s`` go on that step's
``metrics.jsonl`` line; the evaluation before the first step gets a line of its own, ``step`` 0.
A resumed run does not evaluate its checkpoint's step again (that line was kept).

Everything random is derived from ``run.seed`` and the step number (sampling seeds, task draws,
mini-batch shuffles), so a run resumed from a checkpoint continues exactly as it would have.

Example (needs the ``hf`` extra; see ``tests/trainers`` for runs on a tiny model):
    >>> from arenagym.trainers.config import load_config
    >>> config = load_config("grpo", ["model.path=/tmp/tiny", "run.steps=2"])
    >>> trainer = Trainer(config)  # doctest: +SKIP
    >>> trainer.train()  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
import warnings
from collections import Counter
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from arenagym.agents.backends.interface import SamplingParams
from arenagym.agents.backends.transformers_compat import dtype_kwarg
from arenagym.agents.chat import derive_seed
from arenagym.agents.models import resolve_model
from arenagym.agents.rollout import EpisodeSpec, Trajectory
from arenagym.agents.rollout import RolloutConfig as EngineConfig
from arenagym.trainers.algorithms import (
    Algorithm,
    make_algorithm,
    token_weights,
    zero_variance_groups,
)
from arenagym.trainers.batch import (
    Sample,
    TokenBatch,
    collate,
    completion_logprobs,
    samples_from_trajectories,
)
from arenagym.trainers.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from arenagym.trainers.config import TrainConfig
from arenagym.trainers.dual_reward import DualSelfReward, check_inverse_tasks
from arenagym.trainers.generators import (
    ClusterGenerator,
    Generator,
    TransformersGenerator,
    VLLMGenerator,
)
from arenagym.trainers.metrics import MetricsLogger, truncate_after
from arenagym.trainers.reward_sources import EnvReward, RewardModelReward, RewardSource
from arenagym.trainers.runs import (
    check_episodes,
    check_output_dir,
    check_resume,
    delete_run,
    import_config_modules,
    validate_tasks,
)
from arenagym.trainers.schedules import AdaptiveEntropyControl, ContextSchedule, lr_lambda

__all__ = [
    "EVAL_SUCCESS",
    "StepPlan",
    "Trainer",
    "eval_seed",
    "noise_options",
    "plan_eval",
    "plan_step",
    "resolve_device",
]

_LOG = logging.getLogger(__name__)
#: Where the offline pass-rate filter's measurement is kept (in ``run.output_dir``).
PASS_RATE_FILE = "pass_rate_filter.json"
_PASS_RATE_SALT = 0x9A55  # seeds of the pass-rate episodes: their own stream of run.seed
_EVAL_SALT = 0xE7A1  # seeds of the eval episodes: their own stream of eval.seed
#: Where eval env seeds start: every training and pass-rate env seed is below it.
EVAL_SEED_BASE = 2**31
#: The stop reasons that count as a success for ``eval_accuracy``.
EVAL_SUCCESS: tuple[str, ...] = ("solved", "won")


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@dataclass(frozen=True)
class StepPlan:
    """What a step plays: the episodes (``group_size`` copies of each prompt) and their groups."""

    episodes: list[EpisodeSpec]
    groups: list[int]
    sampling_seed: int
    max_tokens: int


def noise_options(run_seed: int, step: int, index: int, group: int) -> dict[str, str]:
    """The reset options that key an episode's reward noise: its trajectory and its group.

    ``noise_key`` is ``"{run_seed}/{step}/{index}"`` (one per trajectory of the step) and
    ``noise_group_key`` ``"{run_seed}/{step}/group{group}"`` (shared by a prompt's rollouts), so
    no two trajectories of a run, nor two steps of one prompt, share a coin unless they should.
    """
    return {
        "noise_key": f"{run_seed}/{step}/{index}",
        "noise_group_key": f"{run_seed}/{step}/group{group}",
    }


def plan_step(config: TrainConfig, step: int) -> StepPlan:
    """The episodes of ``step``, derived from ``(run.seed, step)`` only.

    The rollouts of one prompt share its env seed (the same problem), so each episode also gets
    reset options with reward-noise keys (:func:`noise_options`): ``noise_key`` names the
    trajectory ``(run.seed, step, index)`` and ``noise_group_key`` its group ``(run.seed, step,
    prompt)``. An env with reward noise (Math-v0's ``flip_prob``) keys its coins by one or the
    other, so rewards flip independently per trajectory (or per group) and anew every step, and
    a resumed run replays them; envs without noise ignore the options.

    Example:
        >>> from arenagym.trainers.config import TrainConfig
        >>> c = TrainConfig()
        >>> c.rollout.prompts_per_step, c.rollout.group_size = 2, 3
        >>> plan = plan_step(c, 5)
        >>> plan.groups, len({e.seed for e in plan.episodes})
        ([0, 0, 0, 1, 1, 1], 2)
        >>> plan.episodes[4].options == {"noise_key": "0/5/4", "noise_group_key": "0/5/group1"}
        True
        >>> plan_step(c, 5) == plan
        True
    """
    rollout = config.rollout
    rng = np.random.default_rng([config.run.seed, step, 0x5EED])
    weights = np.array([t.weight for t in config.tasks], dtype=float)
    weights /= weights.sum()
    episodes, groups = [], []
    for prompt in range(rollout.prompts_per_step):
        task = config.tasks[int(rng.choice(len(config.tasks), p=weights))]
        env_seed = int(rng.integers(0, 2**31 - 1))
        for _ in range(rollout.group_size):
            options = noise_options(config.run.seed, step, len(episodes), prompt)
            episodes.append(
                EpisodeSpec(task.env_id, dict(task.kwargs), seed=env_seed, options=options)
            )
            groups.append(prompt)
    if rollout.context_stages:
        max_tokens = ContextSchedule(rollout.context_stages).max_tokens(step)
    else:
        max_tokens = rollout.max_tokens
    return StepPlan(episodes, groups, derive_seed(config.run.seed, step), max_tokens)


def eval_seed(seed: int, task: int, episode: int) -> int:
    """The env seed of eval episode ``episode`` of eval task ``task``: ``2**31 +
    derive_seed(seed, salt, task, episode)``, in ``[2**31, 2**32)``.

    Training env seeds (:func:`plan_step`) and pass-rate seeds are below ``2**31 - 1``, so an
    eval episode never replays a training problem.

    Example:
        >>> 2**31 <= eval_seed(0, 0, 0) < 2**32
        True
        >>> eval_seed(0, 0, 0) != eval_seed(0, 0, 1) and eval_seed(0, 0, 0) == eval_seed(0, 0, 0)
        True
    """
    return EVAL_SEED_BASE + derive_seed(seed, _EVAL_SALT, task, episode)


def plan_eval(config: TrainConfig, max_tokens: int) -> StepPlan:
    """The eval episodes: ``eval.episodes`` of each eval task (``eval.tasks``, else
    ``tasks``), with seeds from :func:`eval_seed`; the same at every evaluation.

    ``groups`` holds each episode's eval-task index.

    Example:
        >>> from arenagym.trainers.config import TrainConfig
        >>> c = TrainConfig()
        >>> c.eval.episodes = 3
        >>> plan = plan_eval(c, 64)
        >>> plan.groups, plan.max_tokens, len({e.seed for e in plan.episodes})
        ([0, 0, 0], 64, 3)
        >>> all(e.seed >= 2**31 for e in plan.episodes)
        True
    """
    e = config.eval
    tasks = e.tasks or config.tasks
    episodes, owners = [], []
    for index, task in enumerate(tasks):
        for episode in range(e.episodes):
            seed = eval_seed(e.seed, index, episode)
            episodes.append(EpisodeSpec(task.env_id, dict(task.kwargs), seed=seed))
            owners.append(index)
    return StepPlan(episodes, owners, derive_seed(e.seed, _EVAL_SALT), max_tokens)


class Trainer:
    """Trains a causal LM on env rewards; see the module docstring.

    Args:
        config: the run (see :mod:`arenagym.trainers.config`).
        generator: the rollout side (default: from ``model.generator``).
        reward_source: the reward (default: from ``[reward]``).
        model: an already loaded policy to train instead of ``model.path`` (``tokenizer`` too).
        resume: continue the run in ``run.output_dir`` from its newest checkpoint (from step 0
            if it has none; metrics of steps after the checkpoint are dropped, as they are
            redone). The checkpoint's run-defining fields (model, algorithm, tasks, reward,
            data, seed: :data:`~arenagym.trainers.runs.RUN_DEFINING`) must equal ``config``'s.
        overwrite: start a new run in an output folder that holds one, deleting that run's
            files first (``checkpoints/step-*``, ``metrics.jsonl``, TensorBoard event files,
            ``pass_rate_filter.json``; nothing else), once everything else has loaded.

    Raises:
        RunConflictError: the output folder holds a run and neither ``resume`` nor
            ``overwrite`` is set, or ``resume`` with a config that differs from the checkpoint's.
        ConfigError: a ``[[tasks]]`` entry names no registered env or its kwargs do not build it.
    """

    #: Whether ``[data]``'s offline pass-rate filter has run (or been reused) for this trainer.
    _pass_rate_checked: bool = False
    #: The offline filter's measurement (task, pass rate, kept) once it has run, else ``None``.
    pass_rates: list[dict[str, Any]] | None = None
    #: Whether :meth:`train` has written the evaluation before the first step (step 0).
    _evaluated_start: bool = False

    def __init__(
        self,
        config: TrainConfig,
        *,
        generator: Generator | None = None,
        reward_source: RewardSource | None = None,
        model: Any = None,
        tokenizer: Any = None,
        resume: bool = False,
        overwrite: bool = False,
    ) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.config = config
        import_config_modules(config)
        self.output_dir = Path(config.run.output_dir)
        self.checkpoint_dir = self.output_dir / "checkpoints"
        self.metrics_path = self.output_dir / "metrics.jsonl"
        # the run-safety checks come before anything loads (see arenagym.trainers.runs)
        check_output_dir(self.output_dir, resume=resume, overwrite=overwrite)
        if model is None and config.model.path:
            # a registry name (e.g. smollm2-135m-instruct) becomes its cached directory
            config.model.path = str(resolve_model(config.model.path).absolute())
        #: The checkpoint this run resumed from (``None``: a new run).
        self.resumed_from = latest_checkpoint(self.checkpoint_dir) if resume else None
        if self.resumed_from is not None:
            check_resume(self.resumed_from, config.to_dict())
        validate_tasks(config.tasks, config.source)
        if config.reward.source == "dual":  # every task must declare its inverse task
            check_inverse_tasks(config.tasks, config.source)
        if config.eval.episodes > 0 and config.eval.tasks:
            validate_tasks(config.eval.tasks, f"{config.source}: [eval]")
        self._given_tasks: list[dict[str, Any]] = config.to_dict()["tasks"]
        # evaluation plays the training tasks as given (before the offline pass-rate filter)
        self._eval_config = replace(config, tasks=list(config.tasks))
        self.device = resolve_device(config.model.device)
        seed = config.run.seed
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)
        if model is None:
            if not config.model.path:
                raise ValueError(
                    "model.path is not set (pass --model PATH or set it in the config)"
                )
            model = AutoModelForCausalLM.from_pretrained(
                config.model.path, **dtype_kwarg(torch.float32)
            )
            tokenizer = tokenizer or AutoTokenizer.from_pretrained(config.model.path)
        if tokenizer is None:
            raise ValueError("pass tokenizer= together with model=")
        self.model = model.to(self.device)
        self.tokenizer = tokenizer
        if config.model.gradient_checkpointing:  # (renamed "activation" in newer transformers)
            enable = getattr(self.model, "activation_checkpointing_enable", None)
            (enable or self.model.gradient_checkpointing_enable)()
            self.model.config.use_cache = False
        self.model.train()
        self.pad_id = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)

        a = config.algorithm
        self.algorithm: Algorithm = make_algorithm(
            a.name,
            clip_low=a.clip_low,
            clip_high=a.clip_high,
            aggregation=a.aggregation,  # type: ignore[arg-type]
            kl_coef=a.kl_coef,
            std_normalize=a.std_normalize,
        )
        self.reference = None
        if self.algorithm.needs_reference:
            self.reference = (
                AutoModelForCausalLM.from_pretrained(
                    config.model.path, **dtype_kwarg(torch.float32)
                )
                if config.model.path
                else _frozen_copy(self.model)
            )
            self.reference.to(self.device).eval().requires_grad_(False)

        o = config.optim
        self.optimizer = torch.optim.AdamW(
            [p for p in self.model.parameters() if p.requires_grad],
            lr=o.lr,
            betas=(float(o.betas[0]), float(o.betas[1])),
            eps=o.eps,
            weight_decay=o.weight_decay,
        )
        total_updates = max(config.run.steps, 1)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_lambda(o.schedule, o.warmup_steps, total_updates, o.min_lr_ratio)
        )
        e = config.entropy
        self.entropy_control = AdaptiveEntropyControl(
            target=e.target, delta=e.delta, max_coef=e.max_coef, coef=e.coef, enabled=e.adaptive
        )
        if config.rollout.context_stages:
            self.context = ContextSchedule(config.rollout.context_stages)
        else:
            self.context = ContextSchedule([(0, config.rollout.max_tokens)])
        context = getattr(self.model.config, "max_position_embeddings", None)
        budget = max(  # the largest budget of the stages this run reaches
            tokens for first, tokens in self.context.stages if first < max(config.run.steps, 1)
        )
        if context is not None and budget >= int(context):
            fit = max(int(context) // 4, 1)
            if config.rollout.context_stages:  # the stages override rollout.max_tokens
                fix = (
                    f"set rollout.context_stages (which overrides rollout.max_tokens) to budgets "
                    f"well below {context}, e.g. --set 'rollout.context_stages=[[0,{fit}]]'"
                )
            else:
                fix = (
                    f"set rollout.max_tokens well below {context}, "
                    f"e.g. --set rollout.max_tokens={fit}"
                )
            raise ValueError(
                f"the generation budget ({budget} tokens per turn) does not fit the model's "
                f"context of {context} tokens, so every episode would stop with "
                f"context_overflow; {fix}"
            )
        eval_budget = config.eval.max_tokens
        if config.eval.episodes > 0 and eval_budget and context and eval_budget >= int(context):
            raise ValueError(
                f"eval.max_tokens ({eval_budget} tokens per turn) does not fit the model's "
                f"context of {context} tokens, so every eval episode would stop with "
                f"context_overflow; set it well below, e.g. --set "
                f"eval.max_tokens={max(int(context) // 4, 1)}"
            )

        self.step_count = 0
        if self.resumed_from is not None:
            state = load_checkpoint(self.resumed_from, self.model, self.optimizer, self.scheduler)
            self.step_count = int(state["step"])
            self.entropy_control.load_state_dict(state["entropy_control"])
        self.generator = generator or self._default_generator()
        if self.step_count:
            self.generator.sync_weights(self.model)
        self.autocast = (
            torch.autocast("cuda", dtype=torch.bfloat16)
            if self.device.type == "cuda" and config.model.bf16
            else nullcontext()
        )
        self.reward_source = reward_source or self._default_reward()
        # Only now that everything has loaded: the previous run's files go (overwrite), or the
        # metrics of the steps after the checkpoint, which are redone (resume).
        #: What ``overwrite`` deleted.
        self.deleted: list[Path] = delete_run(self.output_dir) if overwrite else []
        #: How many metrics lines ``resume`` dropped (steps after the checkpoint).
        # (resumed at step 0, nothing is kept, not even the step-0 evaluation: it is redone)
        self.dropped_metrics = (
            truncate_after(self.metrics_path, self.step_count if self.step_count else -1)
            if resume
            else 0
        )
        self.output_dir.mkdir(parents=True, exist_ok=True)

    # ---------------------------------------------------------------------------- set-up
    def _default_generator(self) -> Generator:
        m = self.config.model
        c = self.config.cluster
        if c.address:
            from arenagym.agents.cluster import ClusterRollout

            # the engines generate in float32 like the policy (hf), or as vLLM is configured
            hf = m.generator == "transformers"
            return ClusterGenerator(
                ClusterRollout.start(
                    "hf" if hf else "vllm",
                    m.path,
                    address=c.address,
                    engines=c.engines,
                    engine_resources=c.engine_resources,
                    backend_kwargs={"dtype": "float32"} if hf else m.vllm_kwargs,
                    env_workers=c.env_workers,
                    env_resources=c.env_resources,
                    imports=self.config.imports,
                    tokenizer=self.tokenizer,
                )
            )
        if m.generator == "vllm":
            generator = VLLMGenerator(m.path, **m.vllm_kwargs)
            return generator
        return TransformersGenerator(
            self.model, self.tokenizer, max_batch_size=self.config.rollout.max_batch_size
        )

    def _default_reward(self) -> RewardSource:
        r = self.config.reward
        if r.source == "reward_model":
            from arenagym.trainers.reward_model import RewardModelScorer

            scorer = RewardModelScorer(
                r.model, device=str(self.device), normalize=r.normalize, batch_size=r.batch_size
            )
            return RewardModelReward(scorer)
        if r.source == "dual":  # the policy scores its own outputs (SUDER)
            return DualSelfReward(
                self.model,
                self.tokenizer,
                normalize=r.dual_normalize,
                group_standardize=r.dual_group_standardize,
                mix=r.dual_mix,
                batch_size=r.batch_size,
                autocast=self.autocast,
            )
        return EnvReward()

    def _filter_tasks_by_pass_rate(self) -> None:
        """Skywork-OR1's offline filter (``[data]``, see :mod:`arenagym.trainers.config`).

        Drops the ``[[tasks]]`` entries the initial policy never or always solves — they would
        only feed zero-variance groups — and records the measurement in
        ``pass_rate_filter.json``; a resumed run reuses that file instead of measuring the
        trained policy.
        """
        self._pass_rate_checked = True
        d = self.config.data
        if d.pass_rate_samples <= 0:
            return
        path = self.output_dir / PASS_RATE_FILE
        key = json.loads(
            json.dumps(
                {
                    "tasks": [asdict(t) for t in self.config.tasks],
                    "samples": d.pass_rate_samples,
                    "low": d.pass_rate_low,
                    "high": d.pass_rate_high,
                    "seed": self.config.run.seed,
                }
            )
        )
        if self.step_count > 0:  # resumed: the initial policy is gone
            saved = json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
            if saved is None or saved.get("key") != key:
                warnings.warn(
                    f"data.pass_rate_samples is set but {path} does not hold a measurement of "
                    "these tasks by the initial policy; resuming without the offline filter",
                    stacklevel=3,
                )
                return
            report = saved["tasks"]
        else:
            report = self._measure_pass_rates()
            path.write_text(json.dumps({"key": key, "tasks": report}, indent=2), encoding="utf-8")
        self.pass_rates = report
        kept = [task for task, row in zip(self.config.tasks, report, strict=True) if row["kept"]]
        dropped = len(report) - len(kept)
        message = (
            f"offline pass-rate filter ({d.pass_rate_samples} episodes per task, drop "
            f"<= {d.pass_rate_low} or >= {d.pass_rate_high}): dropped {dropped} of "
            f"{len(report)} tasks"
            + "".join(
                f"; {row['env_id']} {row['kwargs']}: pass rate {row['pass_rate']:.3f}"
                for row in report
                if not row["kept"]
            )
        )
        (_LOG.warning if dropped else _LOG.info)(message)
        if not kept:
            raise RuntimeError(
                f"{message} — no task is left to train on; lower data.pass_rate_low, raise "
                "data.pass_rate_high, add tasks, or set data.pass_rate_samples=0"
            )
        self.config.tasks = kept

    def _measure_pass_rates(self) -> list[dict[str, Any]]:
        """Play every ``[[tasks]]`` entry ``data.pass_rate_samples`` times (distinct env seeds
        from ``run.seed``) with the current policy; its pass rate and whether it is kept."""
        d, run = self.config.data, self.config.run
        episodes, owners = [], []
        for index, task in enumerate(self.config.tasks):
            for sample in range(d.pass_rate_samples):
                seed = derive_seed(run.seed, _PASS_RATE_SALT, index, sample)
                episodes.append(EpisodeSpec(task.env_id, dict(task.kwargs), seed=seed))
                owners.append(index)
        plan = StepPlan(
            episodes, owners, derive_seed(run.seed, _PASS_RATE_SALT), self.context.max_tokens(0)
        )
        trajectories = self._rollout(plan)
        report = []
        for index, task in enumerate(self.config.tasks):
            mine = [t for t, owner in zip(trajectories, owners, strict=True) if owner == index]
            rate = sum(t.stop_reason == "solved" for t in mine) / len(mine)
            report.append(
                {
                    "env_id": task.env_id,
                    "kwargs": task.kwargs,
                    "pass_rate": rate,
                    "kept": d.pass_rate_low < rate < d.pass_rate_high,
                }
            )
        return report

    # ---------------------------------------------------------------------------- running
    def train(
        self,
        steps: int | None = None,
        on_step: Callable[[dict[str, Any]], None] | None = None,
    ) -> list[dict[str, Any]]:
        """Run until ``steps`` (default ``run.steps``) steps are done; the metrics of each.

        A checkpoint is saved every ``checkpoint_every`` steps and after the last one;
        ``on_step(record)`` is called after each step (e.g. to print progress). With ``[eval]``
        on, the records of evaluated steps carry the eval fields, and a new run's evaluation
        before the first step comes first, as a record of its own (``step`` 0, eval fields
        only; it is written to ``metrics.jsonl`` but not passed to ``on_step``).
        """
        target = self.config.run.steps if steps is None else steps
        records = []
        tensorboard = self.output_dir / "tensorboard" if self.config.run.tensorboard else None
        # resumed: TensorBoard hides the events of the steps after the checkpoint (redone now)
        purge = self.step_count + 1 if self.step_count else None
        evaluate = self.config.eval.episodes > 0
        with MetricsLogger(self.metrics_path, tensorboard, purge_step=purge) as log:
            if evaluate and self.step_count == 0 and target > 0 and not self._evaluated_start:
                self._evaluated_start = True
                start = {"step": 0, **self.evaluate()}
                log.write(start)
                records.append(start)
            while self.step_count < target:
                record = self.step()
                if evaluate and (
                    self.step_count % self.config.eval.every == 0 or self.step_count == target
                ):
                    record.update(self.evaluate())
                log.write(record)
                records.append(record)
                if on_step is not None:
                    on_step(record)
                every = self.config.run.checkpoint_every
                if every and (self.step_count % every == 0 or self.step_count == target):
                    self.save()
        return records

    def save(self) -> Path:
        """Write a checkpoint of the current step."""
        return save_checkpoint(
            self.checkpoint_dir,
            self.step_count,
            self.model,
            self.tokenizer,
            self.optimizer,
            self.scheduler,
            {"entropy_control": self.entropy_control.state_dict(), "config": self._saved_config()},
            keep=self.config.run.keep_checkpoints,
        )

    def evaluate(self) -> dict[str, Any]:
        """Play the eval episodes (:func:`plan_eval`) greedily with the current policy through
        the rollout generator, without training on them; their metrics.

        ``eval_accuracy``: the share of episodes whose ``stop_reason`` is in
        :data:`EVAL_SUCCESS` (``"solved"`` or ``"won"``); ``eval_clean_reward``: their mean
        clean reward; ``eval_episodes``: how many; ``eval_s``: the seconds it took. The RNG
        states are restored afterwards, so evaluating never changes what training does.
        """
        started = time.perf_counter()
        e = self.config.eval
        max_tokens = e.max_tokens or self.context.max_tokens(max(self.step_count - 1, 0))
        plan = plan_eval(self._eval_config, max_tokens)
        r = self.config.rollout
        engine_config = EngineConfig(
            SamplingParams(max_tokens=max_tokens, temperature=0.0, seed=plan.sampling_seed),
            max_turns=r.max_turns,
            concurrency=r.concurrency,
            max_batch_size=r.max_batch_size,
            max_wait_s=0.05,
        )
        python_state, numpy_state = random.getstate(), np.random.get_state()
        devices: list[int] = []
        if self.device.type == "cuda":
            index = self.device.index
            devices = [torch.cuda.current_device() if index is None else index]
        with torch.random.fork_rng(devices=devices):
            trajectories = self.generator.rollout(plan.episodes, engine_config)
        random.setstate(python_state)
        np.random.set_state(numpy_state)
        count = len(trajectories)
        return {
            "eval_accuracy": _mean([float(t.stop_reason in EVAL_SUCCESS) for t in trajectories]),
            "eval_clean_reward": _mean([t.clean_reward for t in trajectories]),
            "eval_episodes": count,
            "eval_s": time.perf_counter() - started,
        }

    def _saved_config(self) -> dict[str, Any]:
        """The config a checkpoint records, with the task list as given (before the offline
        pass-rate filter), so that ``resume`` compares like with like."""
        return {**self.config.to_dict(), "tasks": self._given_tasks}

    def step(self) -> dict[str, Any]:
        """One rollout-and-update step; returns its metrics record."""
        if not self._pass_rate_checked:
            self._filter_tasks_by_pass_rate()
        started = time.perf_counter()
        step = self.step_count
        plan = plan_step(self.config, step)
        trajectories = self._rollout(plan)
        check_episodes(trajectories, step + 1)  # every episode failed: stop with the first error
        rollout_s = time.perf_counter() - started

        rewards = self.reward_source.score(trajectories)
        samples = samples_from_trajectories(trajectories, rewards, plan.groups)
        group_count = len(set(plan.groups))
        filtered = 0
        if self.config.algorithm.filter_zero_variance_groups and samples:
            samples, filtered = _drop_zero_variance(samples, trajectories, rewards, plan.groups)
        record: dict[str, Any] = {
            "step": step + 1,
            "reward_mean": _mean(rewards),
            "clean_reward_mean": _mean([t.clean_reward for t in trajectories]),
            "response_length": _mean([t.completion_tokens for t in trajectories]),
            "filtered_groups": filtered,
            "groups": group_count,
            "samples": len(samples),
            "max_tokens": plan.max_tokens,
            "context_stage": self.context.stage(step),
            "env_errors": sum(t.stop_reason == "env_error" for t in trajectories),
            "stop_reasons": dict(Counter(str(t.stop_reason) for t in trajectories)),
        }
        # a source's own figures (the dual reward's raw score and the env's reward beside it)
        source_metrics = getattr(self.reward_source, "last_metrics", None)
        if isinstance(source_metrics, dict):
            record.update(source_metrics)
        update_started = time.perf_counter()
        if samples:
            record.update(self._update(samples, plan.max_tokens, step))
            self.entropy_control.update(record["entropy"])
        else:
            record.update(
                entropy=None,
                kl=None,
                clip_fraction=None,
                loss=None,
                grad_norm=None,
                skipped_update=True,
            )
        record["entropy_coef"] = self.entropy_control.alpha
        record["lr"] = self.scheduler.get_last_lr()[0]
        with warnings.catch_warnings():  # a skipped update still advances the schedule
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step")
            self.scheduler.step()
        self.step_count += 1
        self.generator.sync_weights(self.model)
        elapsed = time.perf_counter() - started
        generated = sum(t.completion_tokens for t in trajectories)
        record.update(
            tokens_per_s=generated / elapsed if elapsed > 0 else 0.0,
            rollout_s=rollout_s,
            update_s=time.perf_counter() - update_started,
            step_s=elapsed,
        )
        return record

    def _rollout(self, plan: StepPlan) -> list[Trajectory]:
        r = self.config.rollout
        sampling = SamplingParams(
            max_tokens=plan.max_tokens,
            temperature=r.temperature,
            top_p=r.top_p,
            seed=plan.sampling_seed,
        )
        engine_config = EngineConfig(
            sampling,
            max_turns=r.max_turns,
            concurrency=r.concurrency,
            max_batch_size=r.max_batch_size,
            max_wait_s=0.05,
        )
        return self.generator.rollout(plan.episodes, engine_config)

    # ---------------------------------------------------------------------------- update
    def _forward(
        self, model: Any, batch: TokenBatch, with_entropy: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        with self.autocast:
            return completion_logprobs(
                model, batch, temperature=self._temperature, with_entropy=with_entropy
            )

    @property
    def _temperature(self) -> float:
        t = self.config.rollout.temperature
        return t if t > 0 else 1.0

    def _micro_batches(self, samples: list[Sample]) -> list[list[Sample]]:
        size = self.config.optim.micro_batch_size
        return [samples[i : i + size] for i in range(0, len(samples), size)]

    @torch.no_grad()
    def _score(self, model: Any, samples: list[Sample]) -> list[torch.Tensor]:
        """Per-sample completion log-probs under ``model`` (no gradients)."""
        was_training = model.training
        model.eval()
        out: list[torch.Tensor] = []
        try:
            for chunk in self._micro_batches(samples):
                batch = collate(chunk, self.pad_id).to(self.device)
                logprobs, _ = self._forward(model, batch, with_entropy=False)
                for row, sample in enumerate(chunk):
                    out.append(logprobs[row, : len(sample.completion_ids)].float().cpu())
        finally:
            model.train(was_training)
        return out

    def _update(self, samples: list[Sample], max_tokens: int, step: int) -> dict[str, Any]:
        a, o = self.config.algorithm, self.config.optim
        full = collate(samples, self.pad_id)
        # One update per rollout batch (the on-policy case, e.g. OR1): the old log-probabilities
        # are the policy's own at that update, so the loss takes them from its forward pass,
        # detached (as TRL does with num_iterations=1), instead of a separate no-grad pass.
        on_policy = (
            o.ppo_epochs == 1
            and o.mini_batches == 1
            and not a.use_rollout_logprobs
            and not self.algorithm.estimator.needs_logprobs
        )
        old: list[torch.Tensor] | None
        if a.use_rollout_logprobs:
            old = [full.rollout_logprobs[i, : len(s.completion_ids)] for i, s in enumerate(samples)]
        elif on_policy:
            old = None
        else:
            old = self._score(self.model, samples)
        ref = self._score(self.reference, samples) if self.reference is not None else None
        old_full = _pad_rows(old, full.mask.shape[1]) if old is not None else None
        ref_full = _pad_rows(ref, full.mask.shape[1]) if ref is not None else None
        # one advantage per trajectory, on every sampled token of each of its turns
        advantages = self.algorithm.estimator.compute(
            full.rewards, full.groups, full.mask, old_full, ref_full, full.trajectories
        )
        rows_of: dict[int, list[int]] = {}  # trajectory -> its rows, in turn order
        for row, sample in enumerate(samples):
            rows_of.setdefault(sample.trajectory, []).append(row)
        trajectory_rows = list(rows_of.values())
        per_sample = [
            (
                i,
                advantages[i],
                None if old_full is None else old_full[i],
                None if ref_full is None else ref_full[i],
            )
            for i in range(len(samples))
        ]
        totals = {"loss": 0.0, "policy_loss": 0.0, "clip_fraction": 0.0, "kl": 0.0, "entropy": 0.0}
        grad_norms = []
        updates = 0
        entropy_coef = self.entropy_control.alpha
        for epoch in range(o.ppo_epochs):
            # mini-batches are shuffled sets of whole trajectories, so a trajectory's turns are
            # always aggregated together
            order = (
                torch.randperm(
                    len(trajectory_rows),
                    generator=torch.Generator().manual_seed(
                        derive_seed(self.config.run.seed, step, epoch)
                    ),
                ).tolist()
                if (o.mini_batches > 1 or o.ppo_epochs > 1)
                else list(range(len(trajectory_rows)))
            )
            size = math.ceil(len(order) / o.mini_batches)
            for start in range(0, len(order), size):
                indices = [row for t in order[start : start + size] for row in trajectory_rows[t]]
                weights = token_weights(
                    full.mask[indices],
                    self.algorithm.loss.aggregation,
                    norm_length=max_tokens,
                    trajectories=full.trajectories[indices],
                )
                self.optimizer.zero_grad(set_to_none=True)
                for chunk_start in range(0, len(indices), o.micro_batch_size):
                    chunk = indices[chunk_start : chunk_start + o.micro_batch_size]
                    batch = collate([samples[i] for i in chunk], self.pad_id).to(self.device)
                    width = batch.mask.shape[1]
                    rows = slice(chunk_start, chunk_start + len(chunk))
                    chunk_weights = weights[rows, :width].to(self.device)
                    adv = torch.stack([per_sample[i][1][:width] for i in chunk]).to(self.device)
                    old_lp = (
                        torch.stack([per_sample[i][2][:width] for i in chunk]).to(self.device)
                        if old_full is not None
                        else None
                    )
                    ref_lp = (
                        torch.stack([per_sample[i][3][:width] for i in chunk]).to(self.device)
                        if ref_full is not None
                        else None
                    )
                    logprobs, entropy = self._forward(self.model, batch, with_entropy=True)
                    if old_lp is None:  # on-policy: the ratio is exactly 1, its gradient is not
                        old_lp = logprobs.detach()
                    if not entropy_coef and entropy is not None:
                        entropy = entropy.detach()
                    out = self.algorithm.loss(
                        logprobs, old_lp, adv, chunk_weights, ref_lp, entropy, entropy_coef
                    )
                    out.loss.backward()
                    totals["loss"] += float(out.loss.detach())
                    totals["policy_loss"] += out.policy_loss
                    totals["clip_fraction"] += out.clip_fraction
                    totals["kl"] += out.kl
                    totals["entropy"] += out.entropy
                grad_norm = torch.nn.utils.clip_grad_norm_(
                    self.model.parameters(), o.max_grad_norm if o.max_grad_norm > 0 else math.inf
                )
                grad_norms.append(float(grad_norm))
                self.optimizer.step()
                updates += 1
        stats = {k: v / updates for k, v in totals.items()}
        stats["kl"] = stats["kl"] if ref_full is not None else 0.0
        stats["grad_norm"] = _mean(grad_norms)
        stats["optimizer_steps"] = updates
        stats["train_tokens"] = full.tokens
        return stats


def _frozen_copy(model: Any) -> Any:
    import copy

    return copy.deepcopy(model)


def _pad_rows(rows: list[torch.Tensor], width: int) -> torch.Tensor:
    out = torch.zeros(len(rows), width)
    for i, row in enumerate(rows):
        out[i, : row.shape[0]] = row
    return out


def _mean(values: list[float] | list[int]) -> float:
    return float(sum(values) / len(values)) if values else 0.0


def _drop_zero_variance(
    samples: list[Sample],
    trajectories: list[Trajectory],
    rewards: list[float],
    groups: list[int],
) -> tuple[list[Sample], int]:
    """Samples of groups whose trajectory rewards differ, and how many groups were dropped.

    The test is over trajectories (one reward each, however many turns), and only over those
    that have samples — the same trajectories the estimator takes its statistics over.
    """
    trained = sorted({s.trajectory for s in samples})
    flat = zero_variance_groups(
        torch.tensor([float(rewards[i]) for i in trained]),
        torch.tensor([groups[i] for i in trained]),
    ).tolist()
    dropped = {groups[i] for i, zero in zip(trained, flat, strict=True) if zero}
    return [s for s in samples if groups[s.trajectory] not in dropped], len(dropped)


def replace_steps(config: TrainConfig, steps: int) -> TrainConfig:
    """``config`` with ``run.steps`` set (helper for drivers)."""
    return replace(config, run=replace(config.run, steps=steps))
