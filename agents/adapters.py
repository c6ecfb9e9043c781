"""Adapters that let agents written for other frameworks play arenagym envs.

A TextArena agent is a callable ``agent(observation) -> str`` (``textarena.Agent`` subclasses
implement ``__call__``) with no ``reset``: its instructions live in its constructor, and the
observation carries the game so far. :class:`CallableAgent` gives any such callable arenagym's
``reset``/``act`` shape (and ``aact`` when the callable is a coroutine function), and
:func:`wrap_agent` does so only when needed; :func:`~arenagym.agents.specs.load_agent` applies it
to whatever a spec builds, so ``--agent my_pkg:MyTextArenaAgent`` just works.

Example:
    >>> agent = wrap_agent(str.upper)
    >>> agent.reset("Shout.")
    >>> agent.act("hello")
    'HELLO'
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

__all__ = ["CallableAgent", "wrap_agent"]


class CallableAgent:
    """An arenagym agent around a callable ``observation -> str`` (e.g. a TextArena agent).

    Args:
        function: the callable; an ``async`` one is awaited by :meth:`aact`.
        include_system_prompt: put the env's system prompt (from :meth:`reset`) on top of the
            episode's first observation, for callables that would otherwise never see it.

    Example:
        >>> agent = CallableAgent(lambda obs: f"saw {len(obs)} chars", include_system_prompt=True)
        >>> agent.reset("Be nice.")
        >>> agent.act("hi"), agent.act("hi")
        ('saw 12 chars', 'saw 2 chars')
    """

    def __init__(self, function: Callable[[str], Any], *, include_system_prompt: bool = False):
        if not callable(function):
            raise TypeError(f"CallableAgent needs a callable, got {type(function).__name__}")
        self.function = function
        self.include_system_prompt = include_system_prompt
        self.system_prompt = ""
        self._first = True
        if _is_async(function):
            self.aact = self._aact  # only then: the runner awaits aact when it exists

    def reset(self, system_prompt: str) -> None:
        """Start an episode (the callable itself has no notion of one)."""
        self.system_prompt = system_prompt
        self._first = True

    def act(self, observation: str) -> str:
        """The callable's reply to ``observation`` (as text)."""
        if hasattr(self, "aact"):
            raise TypeError("this agent's callable is async: await agent.aact(observation)")
        return _text(self.function(self._observation(observation)))

    async def _aact(self, observation: str) -> str:
        reply = self.function(self._observation(observation))
        if inspect.isawaitable(reply):
            reply = await reply
        return _text(reply)

    def _observation(self, observation: str) -> str:
        if self._first and self.include_system_prompt and self.system_prompt:
            observation = f"{self.system_prompt}\n\n{observation}"
        self._first = False
        return observation


def wrap_agent(agent: Any) -> Any:
    """``agent`` itself if it has ``reset`` and ``act``; a :class:`CallableAgent` if it is only
    callable; otherwise ``TypeError`` saying what is missing."""
    if callable(getattr(agent, "reset", None)) and callable(getattr(agent, "act", None)):
        return agent
    if callable(agent):
        return CallableAgent(agent)
    raise TypeError(
        f"a {type(agent).__name__} is not an agent: it needs reset(system_prompt) and "
        "act(observation), or to be a callable observation -> str (a TextArena agent)"
    )


def _is_async(function: Callable[..., Any]) -> bool:
    call = getattr(function, "__call__", None)  # noqa: B004  (the method of a callable object)
    return inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(call)


def _text(reply: Any) -> str:
    return reply if isinstance(reply, str) else str(reply)
