"""From trajectories to training tensors, and the policy's per-token log-probabilities.

Every turn of a trajectory becomes one :class:`Sample`: its prompt ids and completion ids
exactly as the backend sampled them (no re-tokenisation: see
:mod:`arenagym.agents.chat` on prefix consistency), with the trajectory's return as its reward,
the index of its prompt group and the index of its trajectory. The trajectory index is what
makes credit per trajectory: the estimators in :mod:`arenagym.trainers.algorithms` take their
statistics over trajectories (not turns) and give every sampled token of every turn of a
trajectory the same advantage. Only completion tokens are trained on; a turn's prompt (the
system prompt, the env's observations and the earlier turns, which are trained in their own
rows) is context. :func:`collate` right-pads a list of samples into one
``input_ids`` batch; :func:`completion_logprobs` runs the model and gathers, for every
completion token, its log-probability (and the entropy of the distribution it came from), as a
``[sequences, max completion length]`` tensor aligned with the completion mask.

Example:
    >>> from arenagym.agents.rollout import Step, Trajectory
    >>> t = Trajectory(0, "Math-v0", {}, 0, "solved", [Step("q", "a", 1.0, {}, [5, 6], [7, 8], [-0.1, -0.2])],
    ...                reward=1.0, clean_reward=1.0)
    >>> [s] = samples_from_trajectories([t], rewards=[0.5], groups=[3])
    >>> s.prompt_ids, s.completion_ids, s.reward, s.group, s.trajectory
    ([5, 6], [7, 8], 0.5, 3, 0)
    >>> b = collate([s, Sample([5], [9], [-0.3], 0.0, 0.0, 3)], pad_id=0)
    >>> b.input_ids.tolist(), b.mask.tolist()
    ([[5, 6, 7, 8], [5, 9, 0, 0]], [[1.0, 1.0], [1.0, 0.0]])
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from arenagym.agents.rollout import Trajectory

__all__ = ["Sample", "TokenBatch", "collate", "completion_logprobs", "samples_from_trajectories"]


@dataclass
class Sample:
    """One model call to train on (one turn of a trajectory).

    ``reward`` and ``group`` are the trajectory's; ``trajectory`` is its index in the step's
    list of trajectories (turns of one episode share it). A sample built by hand defaults to
    trajectory 0: give distinct ids to samples of different episodes.
    """

    prompt_ids: list[int]
    completion_ids: list[int]
    rollout_logprobs: list[float]
    reward: float
    clean_reward: float
    group: int
    trajectory: int = 0


def samples_from_trajectories(
    trajectories: Sequence[Trajectory], rewards: Sequence[float], groups: Sequence[int]
) -> list[Sample]:
    """One sample per turn that sampled tokens, in turn order; each carries its trajectory's
    reward, group and index (so that the estimators can assign credit per trajectory)."""
    samples = []
    for index, (trajectory, reward, group) in enumerate(
        zip(trajectories, rewards, groups, strict=True)
    ):
        for step in trajectory.steps:
            if not step.completion_token_ids or not step.prompt_token_ids:
                continue
            samples.append(
                Sample(
                    list(step.prompt_token_ids),
                    list(step.completion_token_ids),
                    list(step.logprobs),
                    float(reward),
                    float(trajectory.clean_reward),
                    int(group),
                    index,
                )
            )
    return samples


@dataclass
class TokenBatch:
    """Right-padded sequences and where their completions are.

    ``input_ids``/``attention_mask``: ``[B, L]``; ``mask``: ``[B, T]`` (1 for real completion
    tokens, ``T`` = longest completion); ``positions``: ``[B, T]``, the index in ``input_ids`` of
    the logits that predict each completion token (``prompt length - 1 + t``);
    ``rewards``/``groups``/``trajectories``: ``[B]``, the row's trajectory's reward, group and id.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    mask: torch.Tensor
    positions: torch.Tensor
    targets: torch.Tensor
    rewards: torch.Tensor
    groups: torch.Tensor
    rollout_logprobs: torch.Tensor
    trajectories: torch.Tensor

    def to(self, device: Any) -> TokenBatch:
        """The same batch on ``device``."""
        return TokenBatch(*(getattr(self, f).to(device) for f in self.__dataclass_fields__))

    @property
    def tokens(self) -> int:
        """Real tokens (prompt + completion) in the batch."""
        return int(self.attention_mask.sum())


def collate(samples: Sequence[Sample], pad_id: int) -> TokenBatch:
    """Pad ``samples`` into one :class:`TokenBatch` (see the module example)."""
    width = max(len(s.prompt_ids) + len(s.completion_ids) for s in samples)
    longest = max(len(s.completion_ids) for s in samples)
    rows = len(samples)
    input_ids = torch.full((rows, width), pad_id, dtype=torch.long)
    attention = torch.zeros((rows, width), dtype=torch.long)
    mask = torch.zeros((rows, longest))
    positions = torch.zeros((rows, longest), dtype=torch.long)
    targets = torch.full((rows, longest), pad_id, dtype=torch.long)
    rollout_logprobs = torch.zeros((rows, longest))
    for row, sample in enumerate(samples):
        ids = sample.prompt_ids + sample.completion_ids
        input_ids[row, : len(ids)] = torch.tensor(ids)
        attention[row, : len(ids)] = 1
        n, p = len(sample.completion_ids), len(sample.prompt_ids)
        mask[row, :n] = 1.0
        positions[row, :n] = torch.arange(p - 1, p - 1 + n)
        targets[row, :n] = torch.tensor(sample.completion_ids)
        if len(sample.rollout_logprobs) == n:
            rollout_logprobs[row, :n] = torch.tensor(sample.rollout_logprobs)
    return TokenBatch(
        input_ids,
        attention,
        mask,
        positions,
        targets,
        torch.tensor([s.reward for s in samples], dtype=torch.float32),
        torch.tensor([s.group for s in samples], dtype=torch.long),
        rollout_logprobs,
        torch.tensor([s.trajectory for s in samples], dtype=torch.long),
    )


def completion_logprobs(
    model: Any,
    batch: TokenBatch,
    *,
    temperature: float = 1.0,
    with_entropy: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Log-probabilities ``[B, T]`` of the completion tokens under ``model`` (0 on padding),
    and, with ``with_entropy``, the entropy of each of those next-token distributions.

    Logits are divided by the sampling ``temperature`` (the distribution the tokens were
    sampled from) and upcast to float32 before the softmax.
    """
    rows = torch.arange(batch.input_ids.shape[0], device=batch.input_ids.device)[:, None]
    inputs = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask}
    start = 0
    if _accepts_logits_to_keep(model):
        # The output layer runs over the last positions only, from the first one that predicts
        # a completion token (a [B, L, V] float tensor is most of the memory of a long prompt).
        scored = batch.positions[batch.mask > 0]
        start = int(scored.min()) if scored.numel() else batch.input_ids.shape[1] - 1
        inputs["logits_to_keep"] = batch.input_ids.shape[1] - start
    out = model(**inputs, use_cache=False)
    logits = out.logits[rows, (batch.positions - start).clamp(min=0)].float()  # [B, T, V]
    if temperature != 1.0:
        logits = logits / temperature
    log_norm = torch.logsumexp(logits, dim=-1)
    chosen = logits.gather(-1, batch.targets[..., None]).squeeze(-1)
    logprobs = (chosen - log_norm) * batch.mask
    entropy = None
    if with_entropy:
        probs = torch.softmax(logits, dim=-1)
        entropy = (log_norm - (probs * logits).sum(-1)) * batch.mask
    return logprobs, entropy


def _accepts_logits_to_keep(model: Any) -> bool:
    """Whether ``model``'s forward takes ``logits_to_keep`` (transformers' causal LMs do)."""
    forward = getattr(model, "forward", None)
    if forward is None:
        return False
    try:
        return "logits_to_keep" in inspect.signature(forward).parameters
    except (TypeError, ValueError):
        return False
