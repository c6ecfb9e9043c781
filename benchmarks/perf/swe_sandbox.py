"""SWE-v0 sandboxes: reset-to-first-output latency and episode throughput, bubblewrap vs Docker.

On one bundled SWE-v0 task (the same task for every runtime, in the same run) it measures:

- ``reset + first command``: from ``env.reset(...)`` to the observation of the first
  ``execute_bash`` call (``cat README.md``), which includes materialising the workspace and
  starting the sandbox; median and p90 over ``--starts`` resets, and the Docker / bubblewrap
  ratio (goal: bubblewrap <= 50 ms median);
- ``episodes/min`` with 2 and 8 envs at once (threads): each episode resets, runs a few shell
  commands, writes the task's fix with ``str_replace_editor`` and ``git apply``-s it, and calls
  ``finish``, which grades the diff in a fresh sandbox with the task's tests.

Run: ``python -m arenagym.benchmarks.perf.swe_sandbox [--starts 30] [--episodes 16]``
(Docker is measured when a daemon answers at ``$DOCKER_HOST`` with the base image built.)
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

from arenagym.envs.swe.env import SWEEnv
from arenagym.envs.swe.runtime import available_runtimes

TASK_INDEX = 0  # the first bundled task
FIRST_COMMAND = "<function=execute_bash>\n<parameter=command>cat README.md</parameter>\n</function>"
EXPLORE = ("ls -la", "git log --oneline | head -n 3", "grep -rn 'def ' --include=*.py . | head")


def _bash(command: str) -> str:
    return f"<function=execute_bash>\n<parameter=command>{command}</parameter>\n</function>"


def _fix_actions(patch: str) -> list[str]:
    """The task's fix through the tools: write the gold patch with ``str_replace_editor``, then
    ``git apply`` it with ``execute_bash``."""
    create = {"command": "create", "path": "/workspace/fix.diff", "file_text": patch}
    return [
        json.dumps({"name": "str_replace_editor", "arguments": create}),
        _bash("git apply fix.diff && rm fix.diff"),
    ]


def time_reset(runtime: str, task_id: str, starts: int) -> list[float]:
    """Seconds from ``reset`` to the first command's observation, ``starts`` times."""
    env = SWEEnv(runtime=runtime)
    timings = []
    try:
        for seed in range(starts):
            began = time.perf_counter()
            env.reset(seed=seed, options={"task_id": task_id})
            observation, *_ = env.step(FIRST_COMMAND)
            timings.append(time.perf_counter() - began)
            assert "[The command completed with exit code 0.]" in observation, observation
    finally:
        env.close()
    return timings


def run_episode(runtime: str, task_id: str, fix: list[str]) -> None:
    """One scripted episode: explore, fix, finish (graded by the task's tests)."""
    env = SWEEnv(runtime=runtime)
    try:
        env.reset(seed=0, options={"task_id": task_id})
        for command in EXPLORE:
            env.step(_bash(command))
        for action in fix:
            env.step(action)
        _obs, reward, terminated, _truncated, info = env.step('{"name": "finish"}')
        assert terminated and reward == 1.0, info.get("stop_reason")
    finally:
        env.close()


def episodes_per_minute(
    runtime: str, task_id: str, fix: list[str], concurrency: int, episodes: int
) -> float:
    began = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(lambda _: run_episode(runtime, task_id, fix), range(episodes)))
    return episodes / (time.perf_counter() - began) * 60


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=30, help="resets timed per runtime")
    parser.add_argument("--episodes", type=int, default=16, help="episodes per throughput run")
    parser.add_argument("--runtimes", nargs="*", default=["bubblewrap", "docker"])
    args = parser.parse_args(argv)
    status = available_runtimes()
    names = [name for name in args.runtimes if status.get(name) is None]
    for name in args.runtimes:
        if status.get(name) is not None:
            print(f"{name}: skipped ({status[name]})")
    probe = SWEEnv(runtime="bubblewrap")
    task = probe.tasks[TASK_INDEX]
    probe.close()
    fix = _fix_actions(task.patch)
    print(
        f"machine: {platform.platform()}, {platform.processor() or 'cpu'}; task {task.instance_id}"
    )
    medians: dict[str, float] = {}
    for name in names:
        time_reset(name, task.instance_id, 2)  # warm caches (probe, page cache, image layers)
        timings = sorted(time_reset(name, task.instance_id, args.starts))
        medians[name] = statistics.median(timings)
        p90 = timings[int(0.9 * (len(timings) - 1))]
        print(
            f"{name:>10}: reset + first command median {medians[name] * 1000:7.1f} ms, "
            f"p90 {p90 * 1000:7.1f} ms (n={len(timings)})"
        )
    if "bubblewrap" in medians and "docker" in medians:
        print(f"     ratio: docker / bubblewrap = {medians['docker'] / medians['bubblewrap']:.1f}x")
    for name in names:
        for concurrency in (2, 8):
            rate = episodes_per_minute(name, task.instance_id, fix, concurrency, args.episodes)
            print(
                f"{name:>10}: {rate:7.1f} graded episodes/min with {concurrency} envs at once "
                f"({args.episodes} episodes)"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
