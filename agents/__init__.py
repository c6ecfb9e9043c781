"""Agents that play arenagym envs: the Agent protocol, loading by name, and built-in baselines."""

from arenagym.agents.base import Agent, builtin_agents, load_agent, resolve_agent_factory

__all__ = ["Agent", "builtin_agents", "load_agent", "resolve_agent_factory"]
