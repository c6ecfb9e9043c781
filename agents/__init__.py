"""Agents that play arenagym envs: the Agent protocol, loading by name, LLM agents, rollouts.

Light to import: the LLM backends (torch, transformers, openai, vllm) load only when an agent
that needs one is built.
"""

from arenagym.agents.adapters import CallableAgent, wrap_agent
from arenagym.agents.agent import Agent, EpisodeStop
from arenagym.agents.batching import BatchingQueue
from arenagym.agents.chat import AgentTurn, ChatAgent, PromptTemplate
from arenagym.agents.rollout import (
    EpisodeSpec,
    RolloutConfig,
    RolloutEngine,
    Step,
    Trajectory,
    read_jsonl,
    rollout,
    write_jsonl,
)
from arenagym.agents.specs import (
    builtin_agents,
    clear_backend_cache,
    load_agent,
    parse_llm_spec,
    resolve_agent_factory,
)

__all__ = [
    "Agent",
    "AgentTurn",
    "BatchingQueue",
    "CallableAgent",
    "ChatAgent",
    "EpisodeSpec",
    "EpisodeStop",
    "PromptTemplate",
    "RolloutConfig",
    "RolloutEngine",
    "Step",
    "Trajectory",
    "builtin_agents",
    "clear_backend_cache",
    "load_agent",
    "parse_llm_spec",
    "read_jsonl",
    "resolve_agent_factory",
    "rollout",
    "wrap_agent",
    "write_jsonl",
]
