"""Math-v0: math problems checked by math-verify, with the reward noise of "The Climb Carves Wisdom
Deeper Than the Summit: On the Noisy Rewards in Learning to Reason" (flipped rewards, the
reasoning-pattern reward, noisy reward models and their calibration) configurable by kwargs.

Problems are procedural (seven families with a difficulty knob), a bundled set written for
arenagym, or any JSONL file in the ``{"problem", "answer"}`` or MATH ``{"problem", "solution"}``
layout.
"""

from arenagym.envs.core.registration import register_env

register_env(
    "Math-v0",
    "arenagym.envs.math.env:MathEnv",
    "Procedural math (7 families, difficulty 1-5 or mixed) checked by math-verify; reward noise by kwargs",
    {"source": "procedural", "difficulty": None},
)
register_env(
    "Math-Bundled-v0",
    "arenagym.envs.math.env:MathEnv",
    "The bundled hand-written math set (all difficulties) checked by math-verify",
    {"source": "bundled", "difficulty": None},
)
