"""TextArena games as PettingZoo and Gymnasium envs: the 18-game Divide-Fuse-Conquer set.

`TextArena <https://github.com/LeonGuertler/TextArena>`_ (``textarena`` on PyPI, 0.7.4) has about
a hundred text games for LLMs but no PettingZoo or Gymnasium API. This family wraps them:

* ``TextArena/<Game>-AEC-v0``: a PettingZoo AEC env per game
  (:class:`~arenagym.envs.textarena.aec.TextArenaAECEnv`; ``player_0``, ``player_1``),
  built with :func:`~arenagym.envs.core.registration.make_multi_agent`;
* ``TextArena/<Game>-v0``: a Gymnasium env per game
  (:class:`~arenagym.envs.textarena.env.TextArenaEnv`): the agent plays one seat, a pluggable
  opponent (:mod:`~arenagym.envs.textarena.opponents`, or any agent) the other;
* :func:`make_textarena_env`: the same for any other TextArena id (best effort).

The games and their Divide-Fuse-Conquer groups are listed once, in
:data:`~arenagym.envs.textarena.games.GAMES`. Registration only records entry points:
``textarena`` is imported when a game is first built, and if it is missing that raises an
``ImportError`` naming the ``arenagym[textarena]`` extra.

Example:
    >>> import arenagym.envs
    >>> sorted(i for i in arenagym.envs.list_envs(multi_agent=True) if i.startswith("TextArena/"))[:2]
    ['TextArena/Battleship-AEC-v0', 'TextArena/Breakthrough-AEC-v0']
"""

from __future__ import annotations

from typing import Any

from arenagym.envs.core.registration import register_env
from arenagym.envs.textarena.games import GAMES, aec_id, gym_id

__all__ = ["GAMES", "make_textarena_env"]

for _game in GAMES.values():
    _kind = "two-player" if _game.num_players == 2 else "single-player"
    register_env(
        gym_id(_game.name),
        "arenagym.envs.textarena.env:TextArenaEnv",
        f"TextArena {_game.name} ({_kind}, DFC group {_game.group}); "
        + ("vs a pluggable opponent" if _game.num_players == 2 else "solo"),
        {"game": _game.name},
    )
    register_env(
        aec_id(_game.name),
        "arenagym.envs.textarena.aec:TextArenaAECEnv",
        f"TextArena {_game.name} as a PettingZoo AEC env ({_kind}, DFC group {_game.group})",
        {"game": _game.name},
        multi_agent=True,
    )


def make_textarena_env(textarena_id: str, *, multi_agent: bool = False, **kwargs: Any) -> Any:
    """Wrap any TextArena id (e.g. ``"Nim-v0-large"``) as a Gymnasium or PettingZoo env.

    The 18 DFC games are registered and tested; others are best effort (a game that needs an
    nltk corpus or an API key raises a ``RuntimeError`` saying so when it is built).
    """
    if multi_agent:
        from arenagym.envs.textarena.aec import TextArenaAECEnv

        return TextArenaAECEnv(textarena_id, **kwargs)
    from arenagym.envs.textarena.env import TextArenaEnv

    return TextArenaEnv(textarena_id, **kwargs)
