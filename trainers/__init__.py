"""RL training for LLM agents: rollouts, advantages, policy updates, reward models, merging."""
