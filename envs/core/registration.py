"""Registering arenagym ids with Gymnasium (and, for multi-agent games, with arenagym's own table).

Every family's ``__init__`` calls :func:`register_env` for its ids; importing ``arenagym.envs``
imports every family, so after ``import arenagym.envs`` every id is known, and
``gym.make("arenagym.envs:Math-v0")`` works in a fresh interpreter.

Example:
    >>> import arenagym.envs
    >>> "Math-v0" in list_envs()
    True
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import gymnasium as gym

from arenagym.envs.core.loading import load_object


@dataclass(frozen=True)
class EnvEntry:
    """One registered id: what it is, and whether it is a PettingZoo (multi-agent) env."""

    env_id: str
    description: str
    entry_point: str
    kwargs: dict[str, Any]
    multi_agent: bool = False


_ENTRIES: dict[str, EnvEntry] = {}


def register_env(
    env_id: str,
    entry_point: str,
    description: str,
    kwargs: dict[str, Any] | None = None,
    *,
    multi_agent: bool = False,
    nondeterministic: bool = False,
    max_episode_steps: int | None = None,
) -> None:
    """Register ``env_id`` (``Name-vN``) with a one-line description.

    Single-agent ids go to Gymnasium's registry; multi-agent ids (PettingZoo envs) are kept in
    arenagym's table only, and are built with :func:`make_multi_agent`. ``kwargs`` must be
    JSON-serialisable so that a suite manifest or a results row can record them exactly.
    """
    kwargs = dict(kwargs or {})
    try:
        json.dumps(kwargs, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"{env_id}: registered kwargs must be JSON-serialisable ({error})"
        ) from None
    if not description or "\n" in description:
        raise ValueError(f"{env_id}: the description must be one non-empty line")
    if env_id in _ENTRIES:
        return  # re-importing a family (e.g. importlib.reload) keeps the first registration
    _ENTRIES[env_id] = EnvEntry(env_id, description, entry_point, kwargs, multi_agent)
    if not multi_agent:
        gym.register(
            id=env_id,
            entry_point=entry_point,
            kwargs=kwargs,
            nondeterministic=nondeterministic,
            max_episode_steps=max_episode_steps,
        )


def make_multi_agent(env_id: str, **kwargs: Any) -> Any:
    """Build the PettingZoo env registered as ``env_id`` (registered kwargs updated by ``kwargs``).

    Raises ``KeyError`` for an unknown id, ``ValueError`` for a single-agent one, and
    :class:`~arenagym.envs.core.loading.LoadError` (a ``ValueError``) when the registered entry
    point does not load.
    """
    entry = env_entry(env_id)
    if not entry.multi_agent:
        raise ValueError(
            f"{env_id} is a single-agent env; build it with gymnasium.make({env_id!r})"
        )
    factory = load_object(entry.entry_point, what=f"{env_id}'s entry point")
    return factory(**{**entry.kwargs, **kwargs})


def list_envs(*, multi_agent: bool | None = None) -> dict[str, str]:
    """Every arenagym id mapped to its one-line description, sorted by id.

    ``multi_agent=True`` / ``False`` keeps only PettingZoo / Gymnasium ids.
    """
    return {
        entry.env_id: entry.description
        for entry in sorted(_ENTRIES.values(), key=lambda e: e.env_id)
        if multi_agent is None or entry.multi_agent == multi_agent
    }


def env_entry(env_id: str) -> EnvEntry:
    """The registration of ``env_id``; raises ``KeyError`` naming the known ids."""
    try:
        return _ENTRIES[env_id]
    except KeyError:
        raise KeyError(
            f"unknown env id {env_id!r}; known ids: {', '.join(sorted(_ENTRIES))}"
        ) from None
