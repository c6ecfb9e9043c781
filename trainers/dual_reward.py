r"""Dual self-reward (SUDER): score an output by how likely the policy finds the input given it.

Why: understanding and generation are inverse dual tasks. SUDER (Hong et al., "SUDER:
Self-Improving Unified Large Multimodal Models for Understanding and Generation with Dual
Self-Rewards", arXiv:2506.07963) samples several outputs ``y`` for an input ``x`` in one
direction, swaps input and output, and uses the model's own likelihood of the original input as
the reward — a self-supervised signal with no external judge. What is followed from it:

- the reward of an output is the policy's own, length-normalised log-likelihood of the input
  under the inverse task, ``r(y) = (1/|x|) * sum_k log pi(x_k | inverse prompt(y), x_<k)``
  (``dual_normalize = true``, the default; ``false`` gives the plain sum ``log pi(x | y)``);
- it is computed by the policy being trained (no reference copy, no reward model), under
  ``no_grad``: a reward, not a loss term;
- the outputs compared are the group of samples of one input, which is what the trainer's
  group-relative estimators (GRPO, RLOO, ...) compare them within. The paper's own update
  rule is not reproduced: the rewards feed whichever ``[algorithm]`` the run uses.

Options beyond the paper (off by default, so the default is SUDER's reward alone):
``dual_group_standardize`` turns each group's rewards into ``(r - mean) / (std + 1e-6)`` (the
sample std, as GRPO's own estimator computes it; a group of one or of equal rewards gets 0),
useful with estimators that do not normalise per group (REINFORCE++, PPO) or before mixing;
``dual_mix = w`` in ``[0, 1]`` trains on ``(1 - w) * dual + w * env reward``.

How an episode's inverse task is found: the env declares it (``inverse_task()`` on the unwrapped
env, :mod:`arenagym.envs.core.dual`). The trajectories the trainer scores no longer hold their
env, so each distinct ``(env_id, kwargs, seed)`` is built and reset once more with that seed
(Math-v0: microseconds) and the replayed episode's ``task_id`` must equal the trajectory's —
an env whose reset depends on anything else fails loudly instead of scoring another problem.
The forward output ``y`` is the trajectory's last action (``""`` when it has none).

Missing inverse tasks are errors, never a silent fallback: :func:`check_inverse_tasks` (run by
the trainer before the model loads) rejects a ``[[tasks]]`` entry whose env does not declare
one, naming the entry; an episode whose ``inverse_task()`` returns ``None`` raises when scored.

Scoring is batched: prompt (chat template + generation prompt, exactly as the policy is
prompted) plus target tokens, right-padded, ``reward.batch_size`` sequences per forward pass,
logits at temperature 1, float32 softmax. A prompt that does not fit the model's context is cut
from the left (the target is always scored whole).

The trainer's metrics get ``dual_reward_mean`` (the raw dual score before standardising or
mixing), ``env_reward_mean`` (the env's reward of the same trajectories) next to its usual
``clean_reward_mean`` (the env's noiseless score, Math-v0's exact score), so a run shows
whether the self-reward moved the env's score.

Example (the tiny random model; ``tests/trainers/test_dual_reward.py`` runs SmolLM2):
    >>> from arenagym.agents.models import resolve_model
    >>> from transformers import AutoModelForCausalLM, AutoTokenizer
    >>> path = resolve_model("tiny")
    >>> model = AutoModelForCausalLM.from_pretrained(path)
    >>> tokenizer = AutoTokenizer.from_pretrained(path)
    >>> ask = [{"role": "user", "content": "Which problem gives 4?"}]
    >>> scores = inverse_log_likelihoods(model, tokenizer, [(ask, "2 + 2"), (ask, "3 + 1")])
    >>> len(scores), all(s < 0 for s in scores)
    (2, True)
    >>> standardize_groups([1.0, 3.0, 5.0, 5.0], [0, 0, 1, 1])  # doctest: +ELLIPSIS
    [-0.7071..., 0.7071..., 0.0, 0.0]
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import Any

import torch

from arenagym.agents.backends.interface import chat_prompt_ids
from arenagym.agents.rollout import Trajectory
from arenagym.envs.core.dual import InverseTask
from arenagym.trainers.algorithms import group_stats
from arenagym.trainers.batch import Sample, collate, completion_logprobs

__all__ = [
    "DualSelfReward",
    "InverseRequest",
    "check_inverse_tasks",
    "inverse_log_likelihoods",
    "standardize_groups",
]

#: One inverse query: the inverse prompt's chat messages and the target whose likelihood counts.
InverseRequest = tuple[list[dict[str, str]], str]
_EPS = 1e-6  # as GRPO's estimator (arenagym.trainers.algorithms)


def encode_request(tokenizer: Any, request: InverseRequest) -> tuple[list[int], list[int]]:
    """Prompt ids (chat template with the generation prompt) and target ids of ``request``."""
    messages, target = request
    prompt = chat_prompt_ids(tokenizer, messages)
    target_ids = list(tokenizer(target, add_special_tokens=False)["input_ids"])
    if not target_ids:
        raise ValueError(f"the inverse target {target!r} has no tokens")
    return prompt, target_ids


@torch.no_grad()
def inverse_log_likelihoods(
    model: Any,
    tokenizer: Any,
    requests: Sequence[InverseRequest],
    *,
    normalize: bool = True,
    batch_size: int = 16,
    autocast: Any = None,
    max_length: int | None = None,
) -> list[float]:
    """``log p_model(target | messages)`` of each request, per target token when ``normalize``.

    Teacher-forced: one forward pass per batch of ``batch_size`` requests (sorted by length to
    pad little, answered in input order), without gradients and in eval mode (the model's mode
    is restored). ``max_length`` (default: the model's ``max_position_embeddings``) cuts
    prompts from the left so prompt + target fit.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not requests:
        return []
    limit = max_length or getattr(getattr(model, "config", None), "max_position_embeddings", None)
    samples = []
    for index, request in enumerate(requests):
        prompt, target = encode_request(tokenizer, request)
        if limit is not None and len(prompt) + len(target) > int(limit):
            room = int(limit) - len(target)
            if room < 1:
                raise ValueError(
                    f"inverse target {index} has {len(target)} tokens: it does not fit the "
                    f"model's context of {limit}"
                )
            prompt = prompt[-room:]
        samples.append(Sample(prompt, target, [], 0.0, 0.0, 0, index))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = next(model.parameters()).device
    order = sorted(
        range(len(samples)), key=lambda i: len(samples[i].prompt_ids + samples[i].completion_ids)
    )
    out = [0.0] * len(samples)
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(order), batch_size):
            chunk = [samples[i] for i in order[start : start + batch_size]]
            batch = collate(chunk, int(pad)).to(device)
            with autocast or nullcontext():
                logprobs, _ = completion_logprobs(model, batch)
            totals = logprobs.float().sum(-1).cpu()
            for row, sample in enumerate(chunk):
                total = float(totals[row])
                out[sample.trajectory] = total / len(sample.completion_ids) if normalize else total
    finally:
        model.train(was_training)
    return out


def standardize_groups(values: Sequence[float], groups: Sequence[Any]) -> list[float]:
    """``(r - mean_g) / (std_g + 1e-6)`` within each group (sample std; a group of one, or of
    equal values, gives 0). ``groups`` holds any hashable group key per value."""
    if not values:
        return []
    ids: dict[Any, int] = {}
    keys = torch.tensor([ids.setdefault(g, len(ids)) for g in groups])
    rewards = torch.tensor([float(v) for v in values], dtype=torch.float64)
    mean, std, _ = group_stats(rewards, keys)
    return [float(x) for x in ((rewards - mean.double()) / (std.double() + _EPS)).tolist()]


def _episode_key(trajectory: Trajectory) -> str:
    return json.dumps(
        [trajectory.env_id, trajectory.env_kwargs, trajectory.seed], sort_keys=True, default=repr
    )


def _make_env(env_id: str, kwargs: dict[str, Any]) -> Any:
    import gymnasium as gym

    import arenagym.envs  # noqa: F401  (registers every arenagym env id)

    return gym.make(env_id, **kwargs)


def _inverse_of(env: Any) -> InverseTask | None:
    method = getattr(env.unwrapped, "inverse_task", None)
    return method() if callable(method) else None


def check_inverse_tasks(tasks: Sequence[Any], source: str = "config") -> None:
    """Raise :class:`~arenagym.trainers.config.ConfigError` naming ``tasks[i]`` for an entry
    whose env does not declare an inverse task (``reward.source = "dual"`` needs one).

    Each distinct entry is built, reset with seed 0 and closed.

    Example:
        >>> from arenagym.trainers.config import TaskConfig
        >>> check_inverse_tasks([TaskConfig("Math-v0")], "run.toml")
        >>> check_inverse_tasks([TaskConfig("PrefInfer-v0")], "run.toml")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        arenagym.trainers.config.ConfigError: run.toml: tasks[0]: reward.source = "dual" needs ...
    """
    from arenagym.trainers.config import ConfigError

    seen: set[str] = set()
    for index, task in enumerate(tasks):
        env_id, kwargs = str(task.env_id), dict(task.kwargs)
        key = json.dumps([env_id, kwargs], sort_keys=True, default=repr)
        if key in seen:
            continue
        seen.add(key)
        try:
            env = _make_env(env_id, kwargs)
        except Exception as error:
            raise ConfigError(
                f"{source}: tasks[{index}]: env_id {env_id!r} does not build for the dual "
                f"reward ({type(error).__name__}: {error})"
            ) from None
        try:
            declared = callable(getattr(env.unwrapped, "inverse_task", None))
            env.reset(seed=0)
            task_of_episode = _inverse_of(env) if declared else None
        finally:
            env.close()
        if task_of_episode is None:
            what = "returns no inverse task after reset" if declared else "declares none"
            raise ConfigError(
                f'{source}: tasks[{index}]: reward.source = "dual" needs an env that declares '
                f"its inverse task (inverse_task(), see arenagym.envs.core.dual); {env_id} "
                f'{what}. Train it with reward.source = "env", or drop the entry'
            )


class DualSelfReward:
    """SUDER's dual self-reward as a trainer reward source (see the module docstring).

    Args:
        model: the policy (scored as it is now, without gradients).
        tokenizer: its tokenizer, with a chat template.
        normalize: mean log-probability per target token (SUDER) rather than the sum.
        group_standardize: standardise the dual scores within each group of trajectories of
            one episode (same env, kwargs and seed).
        mix: weight of the env's reward: ``(1 - mix) * dual + mix * env reward``.
        batch_size: inverse queries per forward pass.
        autocast: a context manager the forward passes run in (the trainer's bf16 autocast).
        make_env: builds an env from ``(env_id, kwargs)`` (default ``gym.make``).

    After each :meth:`score`, :attr:`last_scores` holds the raw dual score of each trajectory
    and :attr:`last_metrics` ``dual_reward_mean`` (their mean) and ``env_reward_mean``; the
    trainer puts the metrics on the step's metrics line.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        normalize: bool = True,
        group_standardize: bool = False,
        mix: float = 0.0,
        batch_size: int = 16,
        autocast: Any = None,
        make_env: Callable[[str, dict[str, Any]], Any] | None = None,
    ) -> None:
        if not 0.0 <= mix <= 1.0:
            raise ValueError(f"mix must be in [0, 1], got {mix}")
        self.model = model
        self.tokenizer = tokenizer
        self.normalize = normalize
        self.group_standardize = group_standardize
        self.mix = float(mix)
        self.batch_size = batch_size
        self.autocast = autocast
        self.make_env = make_env or _make_env
        self.last_metrics: dict[str, float] = {}
        self.last_scores: list[float] = []

    def inverse_tasks(self, trajectories: Sequence[Trajectory]) -> list[InverseTask]:
        """The inverse task of each trajectory's episode, found by replaying its reset."""
        found: dict[str, InverseTask] = {}
        envs: dict[str, Any] = {}
        try:
            for t in trajectories:
                key = _episode_key(t)
                if key in found:
                    continue
                where = f"{t.env_id} {t.env_kwargs} seed {t.seed}"
                if t.seed is None:
                    raise RuntimeError(f"{where}: an unseeded episode cannot be replayed")
                env_key = json.dumps([t.env_id, t.env_kwargs], sort_keys=True, default=repr)
                if env_key not in envs:
                    envs[env_key] = self.make_env(t.env_id, dict(t.env_kwargs))
                env = envs[env_key]
                _, info = env.reset(seed=t.seed)
                if t.task_id is not None and info.get("task_id") != t.task_id:
                    raise RuntimeError(
                        f"{where}: replaying the reset gave task {info.get('task_id')!r}, not the "
                        f"trajectory's {t.task_id!r}; the dual reward needs episodes that the "
                        "seed alone determines"
                    )
                task = _inverse_of(env)
                if task is None:
                    raise RuntimeError(f"{where}: the episode has no inverse task")
                found[key] = task
        finally:
            for env in envs.values():
                env.close()
        return [found[_episode_key(t)] for t in trajectories]

    def dual_scores(self, trajectories: Sequence[Trajectory]) -> list[float]:
        """The raw dual score of each trajectory: (mean) ``log p(x | y, inverse prompt)``."""
        tasks = self.inverse_tasks(trajectories)
        requests = [
            (task.messages(t.steps[-1].action if t.steps else ""), task.target)
            for t, task in zip(trajectories, tasks, strict=True)
        ]
        return inverse_log_likelihoods(
            self.model,
            self.tokenizer,
            requests,
            normalize=self.normalize,
            batch_size=self.batch_size,
            autocast=self.autocast,
        )

    def score(self, trajectories: Sequence[Trajectory]) -> list[float]:
        """One reward per trajectory: the dual score, standardised and mixed as configured."""
        if not trajectories:
            self.last_metrics, self.last_scores = {}, []
            return []
        raw = self.last_scores = self.dual_scores(trajectories)
        env = [float(t.reward) for t in trajectories]
        dual = (
            standardize_groups(raw, [_episode_key(t) for t in trajectories])
            if self.group_standardize
            else raw
        )
        rewards = [(1.0 - self.mix) * d + self.mix * e for d, e in zip(dual, env, strict=True)]
        self.last_metrics = {
            "dual_reward_mean": math.fsum(raw) / len(raw),
            "env_reward_mean": math.fsum(env) / len(env),
        }
        return rewards
