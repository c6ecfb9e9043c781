"""The :class:`Agent` protocol and loading agents by name.

An agent is anything with ``reset(system_prompt)`` and ``act(observation) -> str``: arenagym's
built-in baselines, an LLM agent, or a class in the user's own package. Agents are named by

- a built-in name (``"random"``, ``"math-solver"``; see :func:`builtin_agents`),
- an entry point in the group ``arenagym.agents`` advertised by an installed package, or
- ``"package.module:Class"`` (any importable class or factory),

and built with keyword arguments by :func:`load_agent`.

Example:
    >>> agent = load_agent("random", seed=0, max_length=8)
    >>> agent.reset("You are playing a game.")
    >>> isinstance(agent.act("Your move."), str)
    True
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any, Protocol, runtime_checkable

ENTRY_POINT_GROUP = "arenagym.agents"


@runtime_checkable
class Agent(Protocol):
    """What every env-playing agent implements. One instance plays one episode at a time."""

    def reset(self, system_prompt: str) -> None:
        """Start a new episode whose instructions are ``system_prompt``."""

    def act(self, observation: str) -> str:
        """The text action for ``observation`` (on the first call: the task prompt)."""


def builtin_agents() -> dict[str, str]:
    """Built-in agent names mapped to their ``module:Class``."""
    return {
        "random": "arenagym.agents.baselines:RandomTextAgent",
        "math-solver": "arenagym.agents.baselines:MathSolverAgent",
    }


def resolve_agent_factory(spec: str) -> Callable[..., Any]:
    """The class (or factory) that ``spec`` names; raises ``ValueError`` saying what was tried."""
    target = builtin_agents().get(spec)
    if target is None:
        for entry_point in entry_points(group=ENTRY_POINT_GROUP):
            if entry_point.name == spec:
                return entry_point.load()
        target = spec
    if ":" not in target:
        known = ", ".join(sorted(builtin_agents()))
        raise ValueError(
            f"unknown agent {spec!r}: use a built-in name ({known}), an entry point of the "
            f"'{ENTRY_POINT_GROUP}' group, or 'package.module:Class'"
        )
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(
            f"agent {spec!r}: cannot import module {module_name!r} ({error})"
        ) from None
    factory = module
    for part in attribute.split("."):
        try:
            factory = getattr(factory, part)
        except AttributeError:
            raise ValueError(
                f"agent {spec!r}: module {module_name!r} has no {attribute!r}"
            ) from None
    if not callable(factory):
        raise ValueError(f"agent {spec!r}: {target} is not a class or factory")
    return factory


def load_agent(spec: str, **kwargs: Any) -> Agent:
    """Build the agent named ``spec`` with ``kwargs`` and check that it has ``reset`` and ``act``."""
    agent = resolve_agent_factory(spec)(**kwargs)
    if not isinstance(agent, Agent):
        raise TypeError(
            f"agent {spec!r} built a {type(agent).__name__}, which lacks reset(system_prompt) "
            "and/or act(observation)"
        )
    return agent
