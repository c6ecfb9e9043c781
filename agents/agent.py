"""The :class:`Agent` protocol, and :class:`EpisodeStop`, how an agent ends an episode on purpose.

An agent is anything with ``reset(system_prompt)`` and ``act(observation) -> str``: arenagym's
built-in baselines, an LLM agent, or a class in the user's own package (agents are named and
built by :mod:`arenagym.agents.specs`).

An agent ends an episode early and on purpose (not as an error) by raising :class:`EpisodeStop`
from ``act``/``aact``: the chat agent does so when the next request would overflow the model's
context (``"context_overflow"``) or its token budget is spent (``"max_tokens"``); the benchmark
runner and the rollout engine record ``stop_reason`` and end the episode normally.

Example:
    >>> class Echo:
    ...     def reset(self, system_prompt: str) -> None:
    ...         self.prompt = system_prompt
    ...     def act(self, observation: str) -> str:
    ...         return observation
    >>> isinstance(Echo(), Agent)
    True
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

__all__ = ["Agent", "EpisodeStop"]


class EpisodeStop(Exception):
    """Raised by an agent to end the episode now with ``stop_reason``; it is not an error.

    The benchmark runner and the rollout engine catch it around every ``act``/``aact`` call and
    record ``stop_reason`` (e.g. ``"context_overflow"``, ``"max_tokens"``) as the episode's end,
    with ``str(stop)`` and ``stop.info`` as details.

    Example:
        >>> stop = EpisodeStop("context_overflow", "the prompt has 600 tokens", prompt_tokens=600)
        >>> stop.stop_reason, stop.info, str(stop)
        ('context_overflow', {'prompt_tokens': 600}, 'the prompt has 600 tokens')
    """

    def __init__(self, stop_reason: str, message: str = "", **info: Any) -> None:
        super().__init__(message or stop_reason)
        self.stop_reason = stop_reason
        self.info = info


@runtime_checkable
class Agent(Protocol):
    """What every env-playing agent implements. One instance plays one episode at a time."""

    def reset(self, system_prompt: str) -> None:
        """Start a new episode whose instructions are ``system_prompt``."""

    def act(self, observation: str) -> str:
        """The text action for ``observation`` (on the first call: the task prompt)."""
