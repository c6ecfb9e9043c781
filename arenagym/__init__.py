"""arenagym: Gymnasium and PettingZoo environments, benchmarks and RL training for LLM agents.

The root package is deliberately light: importing it loads no env, no agent and no trainer.
It holds the version, :func:`make` (one call that builds any arenagym id, single- or
multi-agent) and the ``arenagym`` command (:mod:`arenagym.cli`, also ``python -m arenagym``).
The work lives in the subpackages ``arenagym.envs``, ``arenagym.agents``, ``arenagym.trainers``
and ``arenagym.benchmarks``.

Example:
    >>> import arenagym
    >>> env = arenagym.make("Math-v0")                      # a gymnasium.Env
    >>> game = arenagym.make("TextArena/TicTacToe-AEC-v0")  # a PettingZoo AECEnv
    >>> sorted(game.possible_agents)
    ['player_0', 'player_1']
"""

from __future__ import annotations

import difflib
from importlib.metadata import PackageNotFoundError, version
from typing import Any

__all__ = ["__version__", "make"]

try:
    __version__: str = version("arenagym")
except PackageNotFoundError:  # pragma: no cover - run from a checkout that is not installed
    __version__ = "0+unknown"


def make(env_id: str, **kwargs: Any) -> Any:
    """Build the env registered as ``env_id``, whichever kind it is.

    A single-agent id (``"Math-v0"``, or any id in Gymnasium's registry, including the
    ``"module:Id"`` form) is built by ``gymnasium.make(env_id, **kwargs)``, so it comes with
    Gymnasium's wrappers and ``spec`` exactly as there. A multi-agent id (registered with
    ``multi_agent=True``: ``"TextArena/<Game>-AEC-v0"``, ``"RecInter-Market-v0"``) is a PettingZoo
    env that Gymnasium does not know; it is built by
    :func:`arenagym.envs.core.registration.make_multi_agent`. ``kwargs`` update the id's
    registered arguments in both cases.

    Every arenagym id is registered first (``import arenagym.envs``). An unknown id raises
    ``gymnasium.error.NameNotFound`` (``VersionNotFound`` when only its version is unknown), a
    subclass of ``gymnasium.error.UnregisteredEnv``, naming the closest ids of both kinds.
    """
    import gymnasium as gym

    import arenagym.envs  # noqa: F401  (registers every id)
    from arenagym.envs.core.registration import list_envs, make_multi_agent

    if env_id in list_envs(multi_agent=True):
        return make_multi_agent(env_id, **kwargs)
    if env_id in gym.registry or ":" in env_id:
        return gym.make(env_id, **kwargs)
    known = sorted({*gym.registry, *list_envs()})
    close = difflib.get_close_matches(env_id, known, n=5, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}?" if close else "no registered id is close"
    message = f"unknown env id {env_id!r}; {hint} (`arenagym list` shows every arenagym id)"
    name = env_id.rpartition("/")[2].rpartition("-v")[0] or env_id
    same_name = any(k.rpartition("/")[2].rpartition("-v")[0] == name for k in known)
    raise (gym.error.VersionNotFound if same_name else gym.error.NameNotFound)(message)
