"""Give every TextArena game its own ``random.Random``, so seeding one never touches the process.

TextArena's games call the module-level functions of :mod:`random` (``random.seed`` in
``State.__init__``, ``random.shuffle`` when dealing, ...), i.e. Python's one global generator:
seeding a game reseeds everyone's ``random``, and two games in two threads draw from each other's
sequence. :func:`isolate_module` replaces the name ``random`` inside a TextArena module by
:data:`RANDOM`, a stand-in that forwards every call to the generator bound to the current
context by :func:`using` (a :class:`contextvars.ContextVar`, so per thread and per asyncio task),
and to the real global ``random`` when none is bound — code that uses TextArena directly behaves
exactly as before. No lock is needed and the global generator is never read or written by a game
played through arenagym.

Example:
    >>> import random, types
    >>> game = types.SimpleNamespace(random=random)      # a module that did `import random`
    >>> isolate_module(game)
    True
    >>> random.seed(123); before = random.getstate()
    >>> own = random.Random()
    >>> with using(own):
    ...     game.random.seed(7)
    ...     first = game.random.randint(0, 10**9)
    >>> random.getstate() == before, first == random.Random(7).randint(0, 10**9)
    (True, True)
"""

from __future__ import annotations

import random as _random
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from types import ModuleType
from typing import Any

_CURRENT: ContextVar[_random.Random | None] = ContextVar("arenagym_textarena_rng", default=None)
_LOCK = threading.Lock()


class _ContextRandom:
    """Stands in for the :mod:`random` module inside TextArena's modules (see the module doc)."""

    def __getattr__(self, name: str) -> Any:
        generator = _CURRENT.get()
        return getattr(_random if generator is None else generator, name)

    def __repr__(self) -> str:
        return "<arenagym per-game random (falls back to the global random module)>"


#: The stand-in installed as ``random`` in TextArena's modules.
RANDOM = _ContextRandom()


@contextmanager
def using(generator: _random.Random) -> Iterator[_random.Random]:
    """Bind ``generator`` as the ``random`` of isolated modules for the ``with`` block."""
    token = _CURRENT.set(generator)
    try:
        yield generator
    finally:
        _CURRENT.reset(token)


def bind(generator: _random.Random) -> Token[_random.Random | None]:
    """:func:`using` without the ``with`` block: bind, and return the token for :func:`unbind`."""
    return _CURRENT.set(generator)


def unbind(token: Token[_random.Random | None]) -> None:
    """Undo the :func:`bind` that returned ``token``."""
    _CURRENT.reset(token)


def isolate_module(module: ModuleType | Any) -> bool:
    """Point ``module.random`` at :data:`RANDOM` if it is the global :mod:`random`; ``True`` if so."""
    if getattr(module, "random", None) is _random:
        with _LOCK:
            if getattr(module, "random", None) is _random:
                module.random = RANDOM
                return True
    return False


def isolate_textarena() -> int:
    """Isolate every loaded ``textarena`` module that uses the global :mod:`random`; how many.

    Called after a game's module is imported (games are imported lazily by TextArena), so the
    game's own module, ``textarena.core`` and ``textarena.state`` are always covered.
    """
    count = 0
    for name, module in list(sys.modules.items()):
        if (name == "textarena" or name.startswith("textarena.")) and module is not None:
            count += isolate_module(module)
    return count
