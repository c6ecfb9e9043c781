"""Pieces every family shares: the text space, the base LLM env, parsing, rewards, registration."""

from arenagym.envs.core.registration import list_envs, register_env
from arenagym.envs.core.spaces import UnicodeText
from arenagym.envs.core.text_env import (
    EnvInfrastructureError,
    Episode,
    InvalidAction,
    TextEnv,
    Turn,
)

__all__ = [
    "EnvInfrastructureError",
    "Episode",
    "InvalidAction",
    "TextEnv",
    "Turn",
    "UnicodeText",
    "list_envs",
    "register_env",
]
