"""The verifiers plugin ``arenagym-verifiers``, installed as the top-level module
``arenagym_verifiers``.

Why: verifiers finds a taskset, env or harness by its id, imported as a top-level module name
(``arenagym-verifiers`` -> ``arenagym_verifiers``); a dotted module cannot be named that way. This
module only re-exports :mod:`arenagym.envs.integrations.verifiers`, so ``vf-eval`` and prime-rl
configs can name arenagym by id.

Example:
    >>> import arenagym_verifiers
    >>> from arenagym.envs.integrations import verifiers
    >>> arenagym_verifiers.ArenaTaskset is verifiers.ArenaTaskset
    True
"""

from arenagym.envs.integrations.verifiers import *  # noqa: F403
from arenagym.envs.integrations.verifiers import __all__ as __all__
