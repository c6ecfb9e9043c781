"""Adapters that plug arenagym's single-agent envs into other frameworks.

Why: users who train at scale use TRL, verl, SkyRL or prime-rl (verifiers environments), and
publish envs as OpenEnv servers. Each module here is a thin adapter over the env contract, built
on :class:`~arenagym.envs.integrations.session.TextSession` (one episode driven by text), and
imports its framework only when used:

- :mod:`~arenagym.envs.integrations.trl`: reward functions and a multi-turn environment for
  TRL's ``GRPOTrainer``;
- :mod:`~arenagym.envs.integrations.verifiers`: an arenagym id as a verifiers environment;
- :mod:`~arenagym.envs.integrations.openenv`: an arenagym id served as an OpenEnv HTTP
  environment, and OpenEnv environments as arenagym ids;
- :mod:`~arenagym.envs.integrations.skyrl`: an arenagym id as a SkyRL-Gym ``BaseTextEnv``;
- :mod:`~arenagym.envs.integrations.verl`: an agent loop running arenagym envs in verl's
  multi-turn rollout.

This package is not a task family: it builds envs by id (``gymnasium.make``) and imports no
family.
"""

from arenagym.envs.integrations.session import EpisodeRef, StepOutcome, TextSession, dataset_rows

__all__ = ["EpisodeRef", "StepOutcome", "TextSession", "dataset_rows"]
