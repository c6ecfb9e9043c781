"""Reward sources: what turns a played trajectory into the scalar the trainer optimises.

The env's own reward (:class:`EnvReward`, the default) already includes whatever the env was
configured with — e.g. Math-v0's ``flip_prob`` or reasoning-pattern reward — while the
trajectory's ``clean_reward`` stays the noiseless score that metrics report.
:class:`RewardModelReward` scores the conversation with a Bradley-Terry reward model instead
(:mod:`arenagym.trainers.reward_model`), :class:`~arenagym.trainers.dual_reward.DualSelfReward`
rewards each output with the policy's own likelihood of the episode's input under the env's
inverse task (SUDER), and :class:`TransformedReward` wraps any source with a function (scaling,
clipping, a length penalty...). A source may keep figures of its last :meth:`score` in a
``last_metrics`` dict; the trainer adds them to the step's metrics line.

Example:
    >>> from arenagym.agents.rollout import Step, Trajectory
    >>> t = Trajectory(0, "Math-v0", {}, 0, "solved", [Step("1+1?", "2", 1.0)], reward=1.0)
    >>> EnvReward().score([t])
    [1.0]
    >>> TransformedReward(EnvReward(), lambda r, t: 2 * r - 1).score([t])
    [1.0]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from arenagym.agents.rollout import Trajectory

__all__ = ["EnvReward", "RewardModelReward", "RewardSource", "TransformedReward"]


@runtime_checkable
class RewardSource(Protocol):
    """Scores trajectories; one float each, in order."""

    def score(self, trajectories: Sequence[Trajectory]) -> list[float]:
        """The reward of every trajectory."""
        ...


class EnvReward:
    """The env's return: the sum of the trajectory's step rewards (wrappers included)."""

    def score(self, trajectories: Sequence[Trajectory]) -> list[float]:
        """``trajectory.reward`` for each."""
        return [float(t.reward) for t in trajectories]


class TransformedReward:
    """``fn(reward, trajectory)`` applied to another source's rewards."""

    def __init__(self, source: RewardSource, fn: Callable[[float, Trajectory], float]) -> None:
        self.source = source
        self.fn = fn

    def score(self, trajectories: Sequence[Trajectory]) -> list[float]:
        """The wrapped source's rewards, transformed."""
        base = self.source.score(trajectories)
        return [float(self.fn(r, t)) for r, t in zip(base, trajectories, strict=True)]


class RewardModelReward:
    """A reward model's score of each trajectory's conversation (system, user, assistant turns).

    ``scorer`` is a :class:`~arenagym.trainers.reward_model.RewardModelScorer` (or anything with
    ``score(conversations) -> list[float]``). Trajectories without an assistant message (the
    episode ended before the model answered) score ``empty_reward``.
    """

    def __init__(self, scorer: Any, empty_reward: float = 0.0) -> None:
        self.scorer = scorer
        self.empty_reward = empty_reward

    def score(self, trajectories: Sequence[Trajectory]) -> list[float]:
        """One reward-model score per trajectory, scored as one batch."""
        conversations = [list(t.messages) for t in trajectories]
        scorable = [
            i for i, c in enumerate(conversations) if any(m["role"] == "assistant" for m in c)
        ]
        scores = self.scorer.score([conversations[i] for i in scorable]) if scorable else []
        out = [float(self.empty_reward)] * len(trajectories)
        for index, value in zip(scorable, scores, strict=True):
            out[index] = float(value)
        return out
