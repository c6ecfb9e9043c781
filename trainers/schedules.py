"""Schedules that change over training: OR1's adaptive entropy control, staged context length,
and the learning rate.

Skywork-OR1 found that premature entropy collapse hurts long chain-of-thought RL, and that a
fixed entropy bonus is fragile; :class:`AdaptiveEntropyControl` switches the bonus on only while
the policy's entropy is below a target, moving its coefficient by a small step each update.
They also train with a context that grows in stages (8k, then 16k, then 32k tokens):
:class:`ContextSchedule` maps a step to the generation budget.

Example:
    >>> control = AdaptiveEntropyControl(target=0.2, delta=1e-4, max_coef=0.005)
    >>> control.update(0.1)   # below target: the coefficient rises and the bonus is on
    0.0001
    >>> control.update(0.3)   # above target: it falls back, and the bonus is off meanwhile
    0.0
    >>> ContextSchedule([(0, 64), (10, 128)]).max_tokens(12)
    128
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["AdaptiveEntropyControl", "ContextSchedule", "lr_lambda"]


@dataclass
class AdaptiveEntropyControl:
    """OR1's adaptive entropy control.

    After each update with measured entropy ``e`` (mean over the batch's response tokens)::

        c <- clip(c + delta, 0, max_coef)   if e < target
        c <- clip(c - delta, 0, max_coef)   if e > target
        alpha = c if e <= target else 0

    ``alpha`` is the entropy-bonus coefficient of the next update: the bonus is on only while
    the entropy is at or below the target. With ``enabled=False`` ``alpha`` is the fixed
    ``coef`` (0: no bonus).
    """

    target: float = 0.2
    delta: float = 1e-4
    max_coef: float = 0.005
    coef: float = 0.0
    enabled: bool = True
    alpha: float = 0.0

    def __post_init__(self) -> None:
        if self.delta < 0 or self.max_coef < 0 or self.coef < 0:
            raise ValueError("delta, max_coef and coef must be >= 0")
        if not self.enabled:
            self.alpha = self.coef

    def update(self, entropy: float) -> float:
        """Record the entropy of the last update; returns the coefficient for the next one."""
        if not self.enabled:
            self.alpha = self.coef
            return self.alpha
        if entropy < self.target:
            self.coef = min(self.coef + self.delta, self.max_coef)
        elif entropy > self.target:
            self.coef = max(self.coef - self.delta, 0.0)
        self.coef = round(self.coef, 12)  # no drift from repeated float steps
        self.alpha = self.coef if entropy <= self.target else 0.0
        return self.alpha

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint saves."""
        return {"coef": self.coef, "alpha": self.alpha}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.coef = float(state["coef"])
        self.alpha = float(state["alpha"])


class ContextSchedule:
    """The generation budget (completion tokens per turn) by training step, in stages.

    ``stages`` is a list of ``(first_step, max_tokens)``; the first stage must start at step 0
    and steps must increase.

    Example:
        >>> schedule = ContextSchedule([(0, 8192), (500, 16384), (1000, 32768)])
        >>> [schedule.max_tokens(s) for s in (0, 499, 500, 5000)]
        [8192, 8192, 16384, 32768]
        >>> schedule.stage(700), schedule.longest
        (1, 32768)
    """

    def __init__(self, stages: Sequence[Sequence[int]]) -> None:
        parsed = [(int(step), int(tokens)) for step, tokens in stages]
        if not parsed or parsed[0][0] != 0:
            raise ValueError("context stages must start at step 0, e.g. [[0, 8192], [500, 16384]]")
        for (a, _), (b, _) in itertools.pairwise(parsed):
            if b <= a:
                raise ValueError(f"context stage steps must increase, got {a} then {b}")
        if any(tokens < 1 for _, tokens in parsed):
            raise ValueError("every stage's max_tokens must be >= 1")
        self.stages = parsed

    def stage(self, step: int) -> int:
        """The index of the stage that ``step`` is in."""
        index = 0
        for i, (first, _) in enumerate(self.stages):
            if step >= first:
                index = i
        return index

    def max_tokens(self, step: int) -> int:
        """The completion budget at ``step``."""
        return self.stages[self.stage(step)][1]

    @property
    def longest(self) -> int:
        """The largest budget of any stage (Dr. GRPO's normalising constant)."""
        return max(tokens for _, tokens in self.stages)


def lr_lambda(schedule: str, warmup_steps: int, total_steps: int, min_ratio: float = 0.0) -> Any:
    """A ``LambdaLR`` factor: linear warm-up, then ``constant``, ``linear`` or ``cosine`` decay.

    Example:
        >>> f = lr_lambda("cosine", warmup_steps=2, total_steps=10)
        >>> [round(f(s), 3) for s in (0, 1, 2, 6, 10)]
        [0.5, 1.0, 1.0, 0.5, 0.0]
    """
    if schedule not in ("constant", "linear", "cosine"):
        raise ValueError(f"unknown lr schedule {schedule!r}; use constant, linear or cosine")

    def factor(step: int) -> float:
        if warmup_steps and step < warmup_steps:
            return (step + 1) / warmup_steps
        if schedule == "constant":
            return 1.0
        span = max(total_steps - warmup_steps, 1)
        progress = min(max(step - warmup_steps, 0) / span, 1.0)
        if schedule == "linear":
            decay = 1.0 - progress
        else:
            decay = 0.5 * (1.0 + math.cos(math.pi * progress))
        return min_ratio + (1.0 - min_ratio) * decay

    return factor
