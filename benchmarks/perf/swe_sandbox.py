"""SWE sandbox runtimes: start-up latency and episode throughput, bubblewrap against Docker.

On one small repository (a package with a dozen modules and a pytest suite, as a one-commit git
repository) it measures, per available runtime, in the same run:

- ``start + first command``: from ``runtime.start(workspace)`` to the first command's output
  (``cat README.md``), median and p90 over ``--starts`` fresh sandboxes, and the Docker /
  bubblewrap ratio (goal: bubblewrap <= 50 ms median);
- ``episodes/min`` with 2 and 8 sandboxes at once (threads): each episode starts a sandbox,
  runs a few shell commands, edits a file, runs the test suite with pytest, takes the diff and
  stops.

Run: ``.venv/bin/python -m arenagym.benchmarks.perf.swe_sandbox [--starts 30] [--episodes 16]``
(Docker is measured when a daemon answers at ``$DOCKER_HOST`` with the base image built.)
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from arenagym.envs.swe.runtime import Limits, available_runtimes, make_runtime

GIT = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]
EPISODE_COMMANDS = ("ls -la", "grep -rn 'def ' pkg | head -n 5", "git status --short")


def make_repository(root: Path, modules: int = 12) -> Path:
    """A small package with ``modules`` modules and one test per module, committed once."""
    (root / "pkg").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "README.md").write_text("# pkg\n\nA small package for sandbox benchmarks.\n")
    (root / "pkg" / "__init__.py").write_text("")
    for index in range(modules):
        (root / "pkg" / f"m{index}.py").write_text(
            f"def scale(x):\n    return x * {index + 1}\n\n\ndef shift(x):\n    return x + {index}\n"
        )
        (root / "tests" / f"test_m{index}.py").write_text(
            f"from pkg.m{index} import scale, shift\n\n\ndef test_scale():\n"
            f"    assert scale(2) == {2 * (index + 1)}\n\n\ndef test_shift():\n"
            f"    assert shift(1) == {1 + index}\n"
        )
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run([*GIT, "commit", "-q", "-m", "base"], cwd=root, check=True)
    return root


def time_start(runtime_name: str, repo: Path, starts: int) -> list[float]:
    """Seconds from start() to the first command's output, for ``starts`` fresh sandboxes."""
    timings = []
    for _ in range(starts):
        runtime = make_runtime(runtime_name)
        began = time.perf_counter()
        runtime.start(repo)
        result = runtime.run("cat README.md")
        timings.append(time.perf_counter() - began)
        assert result.output.startswith("# pkg"), result.output
        runtime.stop()
    return timings


def run_episode(runtime_name: str, repo: Path) -> None:
    """One short scripted episode: start, explore, edit, test, diff, stop."""
    limits = Limits(timeout_s=120, memory_mb=1024, max_processes=128)
    with make_runtime(runtime_name, limits=limits) as runtime:
        runtime.start(repo)
        for command in EPISODE_COMMANDS:
            runtime.run(command)
        source = runtime.read_file("pkg/m0.py")
        runtime.write_file("pkg/m0.py", source.replace(b"x + 0", b"x + 0  # checked"))
        tests = runtime.run("python -m pytest -q -p no:cacheprovider tests")
        assert tests.exit_code == 0, tests.output
        assert "checked" in runtime.diff()


def episodes_per_minute(runtime_name: str, repo: Path, concurrency: int, episodes: int) -> float:
    began = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(lambda _: run_episode(runtime_name, repo), range(episodes)))
    return episodes / (time.perf_counter() - began) * 60


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=30, help="sandboxes timed per runtime")
    parser.add_argument("--episodes", type=int, default=16, help="episodes per throughput run")
    parser.add_argument("--runtimes", nargs="*", default=["bubblewrap", "docker"])
    args = parser.parse_args(argv)
    status = available_runtimes()
    names = [name for name in args.runtimes if status.get(name) is None]
    for name in args.runtimes:
        if status.get(name) is not None:
            print(f"{name}: skipped ({status[name]})")
    print(f"machine: {platform.platform()}, {platform.processor() or 'cpu'}")
    medians: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="arenagym-bench-") as tmp:
        repo = make_repository(Path(tmp) / "repo")
        for name in names:
            time_start(name, repo, 2)  # warm caches (probe, page cache, image layers)
            timings = sorted(time_start(name, repo, args.starts))
            medians[name] = statistics.median(timings)
            p90 = timings[int(0.9 * (len(timings) - 1))]
            print(f"{name:>10}: start + first command median {medians[name] * 1000:7.1f} ms, "
                  f"p90 {p90 * 1000:7.1f} ms (n={len(timings)})")
        if "bubblewrap" in medians and "docker" in medians:
            ratio = medians["docker"] / medians["bubblewrap"]
            print(f"     ratio: docker / bubblewrap = {ratio:.1f}x")
        for name in names:
            for concurrency in (2, 8):
                rate = episodes_per_minute(name, repo, concurrency, args.episodes)
                print(f"{name:>10}: {rate:7.1f} episodes/min with {concurrency} concurrent "
                      f"sandboxes ({args.episodes} episodes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
