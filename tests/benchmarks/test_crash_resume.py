"""SIGKILL a real ``arenagym run`` mid-suite, re-run it, and find every episode exactly once."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from arenagym.benchmarks.suite import episode_reset_seed

# A third-party plug-in: its env is registered on import, and the agent module is the same one,
# so `--agent slow_plugin:SlowAgent` makes the env known before the suite is loaded.
PLUGIN = """
import time

import gymnasium as gym
from gymnasium import spaces


class OneShotEnv(gym.Env):
    observation_space = spaces.Text(64)
    action_space = spaces.Text(64)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.seed_ = seed
        return f"task {seed}", {"system_prompt": "answer", "task_id": f"one-{seed}"}

    def step(self, action):
        reward = float(action == "yes")
        info = {"reward_components": {"correct": reward}, "stop_reason": "solved"}
        return "done", reward, True, False, info


if "SlowPlugin/OneShot-v0" not in gym.registry:
    gym.register(id="SlowPlugin/OneShot-v0", entry_point=OneShotEnv)


class SlowAgent:
    def reset(self, system_prompt):
        pass

    def act(self, observation):
        time.sleep(0.08)
        return "yes"
"""

SUITE = """
name = "crash"
[[tasks]]
name = "oneshot"
env = "SlowPlugin/OneShot-v0"
episodes = 10
seeds = [0, 1, 2, 3]
"""

EPISODES = 40


def count_rows(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(path, timeout=5) as db:
            return int(db.execute("SELECT COUNT(*) FROM episodes").fetchone()[0])
    except sqlite3.OperationalError:  # the table is not created yet
        return 0


@pytest.mark.slow
def test_a_killed_run_resumes_without_losing_or_duplicating_episodes(tmp_path: Path) -> None:
    (tmp_path / "slow_plugin.py").write_text(PLUGIN, encoding="utf-8")
    suite = tmp_path / "crash.toml"
    suite.write_text(SUITE, encoding="utf-8")
    store = tmp_path / "results" / "r.sqlite"
    command = [
        sys.executable,
        "-m",
        "arenagym",
        "run",
        "--suite",
        str(suite),
        "--agent",
        "slow_plugin:SlowAgent",
        "--store",
        str(store),
        "--concurrency",
        "2",
        "--no-progress",
    ]
    pythonpath = os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": pythonpath}

    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 30
        while count_rows(store) < 5:
            if process.poll() is not None:
                out, err = process.communicate()
                pytest.fail(f"the run ended before it could be killed:\n{out}\n{err}")
            if time.monotonic() > deadline:
                pytest.fail("the run wrote no rows within 30 s")
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()
    assert process.returncode == -signal.SIGKILL
    survived = count_rows(store)
    assert 5 <= survived < EPISODES

    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert f"{EPISODES - survived} episodes run, {survived} skipped" in result.stdout

    with sqlite3.connect(store) as db:
        keys = db.execute("SELECT seed, episode, reset_seed, stop_reason FROM episodes").fetchall()
    assert len(keys) == EPISODES  # none missing, none twice (the key is UNIQUE, too)
    assert sorted(keys) == sorted(
        (seed, episode, episode_reset_seed(seed, episode), "solved")
        for seed in range(4)
        for episode in range(10)
    )
