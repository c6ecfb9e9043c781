"""RL training for LLM agents: rollouts -> advantages -> policy updates; reward models; merging.

Modules (importing this package is light; torch and transformers load with the modules that
need them):

- :mod:`~arenagym.trainers.algorithms`: GRPO (Skywork-OR1's loss by default), Dr. GRPO, RLOO,
  REINFORCE++, critic-free PPO-clip — advantage estimators and the clipped policy loss;
- :mod:`~arenagym.trainers.trainer`: the :class:`~arenagym.trainers.trainer.Trainer` loop
  (generator -> reward source -> update), checkpoints and exact resume;
- :mod:`~arenagym.trainers.config`: TOML configs and the presets ``grpo``, ``or1``, ``drgrpo``,
  ``rloo``, ``reinforce_pp``, ``ppo``;
- :mod:`~arenagym.trainers.generators`, :mod:`~arenagym.trainers.reward_sources`: the generator and
  reward seams; :mod:`~arenagym.trainers.schedules`: OR1's adaptive entropy control, staged
  context length, learning-rate schedules;
- :mod:`~arenagym.trainers.reward_model`: Bradley-Terry reward models (scorer, trainer,
  pairwise accuracy); :mod:`~arenagym.trainers.merging`: linear, task arithmetic, TIES, DARE,
  SLERP over safetensors shard by shard; :mod:`~arenagym.trainers.dfc`: divide-fuse-conquer;
- :mod:`~arenagym.trainers.cli`: ``arenagym train|merge|rm|dfc``.

Example:
    >>> from arenagym.trainers.config import preset_names
    >>> "or1" in preset_names()
    True
"""
