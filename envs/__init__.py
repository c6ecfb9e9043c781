"""arenagym's environments. Importing this package registers every id with Gymnasium.

Example:
    >>> import gymnasium as gym
    >>> import arenagym.envs
    >>> env = gym.make("Math-v0")
    >>> prompt, info = env.reset(seed=0)
    >>> sorted(k for k in info if k in ("system_prompt", "task_id"))
    ['system_prompt', 'task_id']
"""

from arenagym.envs import imageedit as _imageedit  # noqa: F401  (registers ImageEdit-v0 and more)
from arenagym.envs import math as _math  # noqa: F401  (registers Math-v0 and its variants)
from arenagym.envs import meddialog as _meddialog  # noqa: F401  (registers MedDialog-v0, MedConsult-v0)
from arenagym.envs import prefinfer as _prefinfer  # noqa: F401  (registers PrefInfer-v0 and splits)
from arenagym.envs import recinter as _recinter  # noqa: F401  (registers RecInter-v0 and its views)
from arenagym.envs import swe as _swe  # noqa: F401  (registers SWE-v0)
from arenagym.envs import textarena as _textarena  # noqa: F401  (registers the TextArena games)
from arenagym.envs.core.registration import list_envs

__all__ = ["list_envs"]
