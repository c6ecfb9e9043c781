"""The RL trainer: rollouts -> rewards -> advantages -> clipped policy updates, with checkpoints.

One :meth:`Trainer.step`:

1. **Tasks**: ``prompts_per_step`` episodes drawn from ``[[tasks]]`` (by weight) with env seeds
   derived from ``(run.seed, step)``, each repeated ``group_size`` times — one group per prompt.
2. **Rollout**: the generator plays them (the rollout engine batches generation across episodes),
   sampling with seeds derived from ``(run.seed, step)``; the completion budget comes from the
   context schedule (``rollout.context_stages``) when there is one.
3. **Reward**: the reward source scores each trajectory (the env's reward by default); every turn
   of a trajectory becomes a training sample with that reward.
4. **Filter**: with ``filter_zero_variance_groups``, groups whose rewards are all equal are
   dropped (they carry no GRPO signal); a step with nothing left makes no update.
5. **Update**: old (and reference) log-probabilities are computed without gradients, advantages
   by the algorithm's estimator, then ``ppo_epochs`` x ``mini_batches`` AdamW steps, each
   accumulating gradients over micro-batches of ``micro_batch_size`` sequences with per-token
   weights that make the accumulated loss exactly the batch's aggregated loss; bf16 autocast on
   CUDA, optional gradient checkpointing, gradient-norm clipping, a learning-rate schedule.
6. **Entropy control** (OR1): the coefficient of the next step's entropy bonus is updated from
   this step's mean token entropy.
7. **Sync, log, checkpoint**: the generator gets the new weights; a metrics line is written;
   every ``checkpoint_every`` steps a checkpoint is saved.

Everything random is derived from ``run.seed`` and the step number (sampling seeds, task draws,
mini-batch shuffles), so a run resumed from a checkpoint continues exactly as it would have.

Example (needs the ``hf`` extra; see ``tests/trainers`` for runs on a tiny model):
    >>> from arenagym.trainers.config import load_config
    >>> config = load_config("grpo", ["model.path=/tmp/tiny", "run.steps=2"])
    >>> trainer = Trainer(config)  # doctest: +SKIP
    >>> trainer.train()  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import math
import random
import time
import warnings
from collections import Counter
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from arenagym.agents.backends.base import SamplingParams
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
from arenagym.trainers.generators import Generator, TransformersGenerator, VLLMGenerator
from arenagym.trainers.metrics import MetricsLogger, truncate_after
from arenagym.trainers.rewards import EnvReward, RewardModelReward, RewardSource
from arenagym.trainers.schedules import AdaptiveEntropyControl, ContextSchedule, lr_lambda

__all__ = ["StepPlan", "Trainer", "plan_step", "resolve_device"]


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


def plan_step(config: TrainConfig, step: int) -> StepPlan:
    """The episodes of ``step``, derived from ``(run.seed, step)`` only.

    Example:
        >>> from arenagym.trainers.config import TrainConfig
        >>> c = TrainConfig()
        >>> c.rollout.prompts_per_step, c.rollout.group_size = 2, 3
        >>> plan = plan_step(c, 5)
        >>> plan.groups, len({e.seed for e in plan.episodes})
        ([0, 0, 0, 1, 1, 1], 2)
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
            episodes.append(EpisodeSpec(task.env_id, dict(task.kwargs), seed=env_seed))
            groups.append(prompt)
    if rollout.context_stages:
        max_tokens = ContextSchedule(rollout.context_stages).max_tokens(step)
    else:
        max_tokens = rollout.max_tokens
    return StepPlan(episodes, groups, derive_seed(config.run.seed, step), max_tokens)


class Trainer:
    """Trains a causal LM on env rewards; see the module docstring.

    Args:
        config: the run (see :mod:`arenagym.trainers.config`).
        generator: the rollout side (default: from ``model.generator``).
        reward_source: the reward (default: from ``[reward]``).
        model: an already loaded policy to train instead of ``model.path`` (``tokenizer`` too).
        resume: continue from the newest checkpoint under ``run.output_dir`` if there is one.
    """

    def __init__(
        self,
        config: TrainConfig,
        *,
        generator: Generator | None = None,
        reward_source: RewardSource | None = None,
        model: Any = None,
        tokenizer: Any = None,
        resume: bool = False,
    ) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.config = config
        for module in config.imports:
            importlib.import_module(module)
        self.output_dir = Path(config.run.output_dir)
        self.output_dir.mkdir(parents=True, exist_ok=True)
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
            # a registry name (e.g. smollm2-135m-instruct) becomes its cached directory
            config.model.path = str(resolve_model(config.model.path))
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
        if context is not None and self.context.longest >= int(context):
            raise ValueError(
                f"the generation budget ({self.context.longest} tokens per turn) does not fit the "
                f"model's context of {context} tokens, so every episode would stop with "
                "context_overflow; set rollout.max_tokens (or rollout.context_stages) well below "
                f"{context}, e.g. --set rollout.max_tokens={max(int(context) // 4, 1)}"
            )

        self.step_count = 0
        self.checkpoint_dir = self.output_dir / "checkpoints"
        if resume:
            latest = latest_checkpoint(self.checkpoint_dir)
            if latest is not None:
                state = load_checkpoint(latest, self.model, self.optimizer, self.scheduler)
                self.step_count = int(state["step"])
                self.entropy_control.load_state_dict(state["entropy_control"])
        self.metrics_path = self.output_dir / "metrics.jsonl"
        if resume:
            truncate_after(self.metrics_path, self.step_count)
        elif self.metrics_path.exists():
            self.metrics_path.unlink()
        self.generator = generator or self._default_generator()
        if resume and self.step_count:
            self.generator.sync_weights(self.model)
        self.reward_source = reward_source or self._default_reward()
        self.autocast = (
            torch.autocast("cuda", dtype=torch.bfloat16)
            if self.device.type == "cuda" and config.model.bf16
            else nullcontext()
        )

    # ---------------------------------------------------------------------------- set-up
    def _default_generator(self) -> Generator:
        m = self.config.model
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
        return EnvReward()

    # ---------------------------------------------------------------------------- running
    def train(
        self,
        steps: int | None = None,
        on_step: Callable[[dict[str, Any]], None] | None = None,
    ) -> list[dict[str, Any]]:
        """Run until ``steps`` (default ``run.steps``) steps are done; the metrics of each.

        A checkpoint is saved every ``checkpoint_every`` steps and after the last one;
        ``on_step(record)`` is called after each step (e.g. to print progress).
        """
        target = self.config.run.steps if steps is None else steps
        records = []
        tensorboard = self.output_dir / "tensorboard" if self.config.run.tensorboard else None
        with MetricsLogger(self.metrics_path, tensorboard) as log:
            while self.step_count < target:
                record = self.step()
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
            {"entropy_control": self.entropy_control.state_dict(), "config": self.config.to_dict()},
            keep=self.config.run.keep_checkpoints,
        )

    def step(self) -> dict[str, Any]:
        """One rollout-and-update step; returns its metrics record."""
        started = time.perf_counter()
        step = self.step_count
        plan = plan_step(self.config, step)
        trajectories = self._rollout(plan)
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
        if a.use_rollout_logprobs:
            old = [full.rollout_logprobs[i, : len(s.completion_ids)] for i, s in enumerate(samples)]
        else:
            old = self._score(self.model, samples)
        ref = self._score(self.reference, samples) if self.reference is not None else None
        old_full = _pad_rows(old, full.mask.shape[1])
        ref_full = _pad_rows(ref, full.mask.shape[1]) if ref is not None else None
        advantages = self.algorithm.estimator.compute(
            full.rewards, full.groups, full.mask, old_full, ref_full
        )
        per_sample = [
            (i, advantages[i], old_full[i], None if ref_full is None else ref_full[i])
            for i in range(len(samples))
        ]
        totals = {"loss": 0.0, "policy_loss": 0.0, "clip_fraction": 0.0, "kl": 0.0, "entropy": 0.0}
        grad_norms = []
        updates = 0
        entropy_coef = self.entropy_control.alpha
        for epoch in range(o.ppo_epochs):
            order = (
                torch.randperm(
                    len(samples),
                    generator=torch.Generator().manual_seed(
                        derive_seed(self.config.run.seed, step, epoch)
                    ),
                ).tolist()
                if (o.mini_batches > 1 or o.ppo_epochs > 1)
                else list(range(len(samples)))
            )
            size = math.ceil(len(order) / o.mini_batches)
            for start in range(0, len(order), size):
                indices = order[start : start + size]
                mini_mask = full.mask[indices]
                weights = token_weights(
                    mini_mask,
                    self.algorithm.loss.aggregation,
                    norm_length=max_tokens,
                )
                self.optimizer.zero_grad(set_to_none=True)
                for chunk_start in range(0, len(indices), o.micro_batch_size):
                    chunk = indices[chunk_start : chunk_start + o.micro_batch_size]
                    batch = collate([samples[i] for i in chunk], self.pad_id).to(self.device)
                    width = batch.mask.shape[1]
                    rows = slice(chunk_start, chunk_start + len(chunk))
                    chunk_weights = weights[rows, :width].to(self.device)
                    adv = torch.stack([per_sample[i][1][:width] for i in chunk]).to(self.device)
                    old_lp = torch.stack([per_sample[i][2][:width] for i in chunk]).to(self.device)
                    ref_lp = (
                        torch.stack([per_sample[i][3][:width] for i in chunk]).to(self.device)
                        if ref_full is not None
                        else None
                    )
                    logprobs, entropy = self._forward(self.model, batch, with_entropy=True)
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


def dtype_kwarg(dtype: Any) -> dict[str, Any]:
    """``from_pretrained``'s dtype argument: ``dtype`` (transformers >= 4.56) or ``torch_dtype``."""
    import transformers

    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    return {"dtype" if (major, minor) >= (4, 56) else "torch_dtype": dtype}


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
    """Samples of groups whose trajectory rewards differ, and how many groups were dropped."""
    flat = zero_variance_groups(torch.tensor(rewards), torch.tensor(groups)).tolist()
    dropped = {g for g, zero in zip(groups, flat, strict=True) if zero}
    return [s for s in samples if groups[s.trajectory] not in dropped], len(dropped)


def replace_steps(config: TrainConfig, steps: int) -> TrainConfig:
    """``config`` with ``run.steps`` set (helper for drivers)."""
    return replace(config, run=replace(config.run, steps=steps))
