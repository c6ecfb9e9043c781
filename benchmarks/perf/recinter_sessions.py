"""Simulated user-sessions per second of the RecInter simulator.

Times sessions under the popularity recommender with the interaction mechanism on and off (the
baseline, measured in the same run) and reports the ratio, plus the text env's pages per second
(render + parse + step) against the headless simulator.

Usage:
    python -m arenagym.benchmarks.perf.recinter_sessions
"""

from __future__ import annotations

import platform
import time

import gymnasium as gym

import arenagym.envs.recinter  # noqa: F401  (registers the ids)
from arenagym.envs.recinter.baselines import PopularityAgent
from arenagym.envs.recinter.simulator import PopularityScorer, World, WorldConfig


def sessions_per_second(interaction: bool, sessions: int = 1500, seed: int = 0) -> float:
    """Headless sessions per second (world generation excluded)."""
    world = World(WorldConfig(interaction=interaction), seed)
    scorer = PopularityScorer()
    users = world.session_users(min(sessions, world.config.n_users))
    start = time.perf_counter()
    for n in range(sessions):
        world.run_session(int(users[n % users.size]), scorer)
    return sessions / (time.perf_counter() - start)


def env_pages_per_second(episodes: int = 5) -> float:
    """Pages per second of RecInter-v0 played by the text popularity agent."""
    env = gym.make("RecInter-v0")
    agent = PopularityAgent()
    pages = 0
    start = time.perf_counter()
    for seed in range(episodes):
        observation, info = env.reset(seed=seed)
        agent.reset(info["system_prompt"])
        done = False
        while not done:
            observation, _, terminated, truncated, _ = env.step(agent.act(observation))
            pages += 1
            done = terminated or truncated
    return pages / (time.perf_counter() - start)


def main() -> None:
    """Print the figures and their ratio."""
    print(
        f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}"
    )
    on = sessions_per_second(True)
    off = sessions_per_second(False)
    print(f"sessions/s, mechanism on:  {on:8.0f}")
    print(f"sessions/s, mechanism off: {off:8.0f}  (baseline)")
    print(f"ratio on / off: {on / off:.2f}")
    pages = env_pages_per_second()
    print(f"RecInter-v0 text pages/s (render + parse + step, incl. resets): {pages:8.0f}")


if __name__ == "__main__":
    main()
