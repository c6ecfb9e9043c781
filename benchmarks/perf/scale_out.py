"""Episodes per second of a CPU-bound suite on a Ray cluster of 1, 2, 4 workers against the local
threaded runner, same suite, same run.

The suite is Math-v0 (difficulty 1 to 3) played by the scripted ``math-solver``: no model, so
the time is the env's own work (generating the problem, checking the answer with math-verify) and
the runner's (the store, the transcript). It is played four ways into fresh in-memory stores:

* locally, the baseline: :func:`~arenagym.benchmarks.runner.run_suite` with its thread pool
  (``--concurrency``, default 4);
* on a simulated Ray cluster (:class:`ray.cluster_utils.Cluster` on this machine: a head without
  CPUs and 1, then 2, then 4 worker nodes of one CPU each), ``remote=ray_episodes(...)``: one
  Ray task per episode, results streamed back to the driver, which writes the store.

Before each timed Ray run a short warm-up run starts the workers' processes (imports included),
so the figures are the steady state. It prints episodes/s and each run's ratio to the local one.
On a machine with fewer cores than workers, expect flat or worse ratios: the worker nodes share
the same cores and each episode pays a Ray task's round trip. The point of a real cluster is
more machines, each with its own cores.

    python -m arenagym.benchmarks.perf.scale_out [--episodes 200] [--workers 1 2 4]
"""

from __future__ import annotations

import argparse
import os
import time

from arenagym.benchmarks.distributed import ray_episodes
from arenagym.benchmarks.runner import run_suite
from arenagym.benchmarks.store import ResultsStore
from arenagym.benchmarks.suite import Suite, parse_suite


def math_suite(episodes: int, name: str = "scale-out") -> Suite:
    """A Math-v0 suite of about ``episodes`` episodes over three difficulties.

    >>> math_suite(30).n_episodes
    30
    """
    per_task = max(1, episodes // 3)
    tasks = "".join(
        f'[[tasks]]\nname = "d{d}"\nenv = "Math-v0"\nkwargs = {{ difficulty = {d} }}\n'
        f"episodes = {per_task}\nseeds = [{d}]\nmax_steps = 10\n"
        for d in (1, 2, 3)
    )
    return parse_suite(tasks, default_name=name)


def timed(suite: Suite, **options: object) -> float:
    """Episodes per second of one run of ``suite`` with ``math-solver`` into a fresh store."""
    store = ResultsStore(":memory:")
    started = time.perf_counter()
    summary = run_suite(suite, "math-solver", None, store, progress=False, **options)  # type: ignore[arg-type]
    elapsed = time.perf_counter() - started
    assert summary.ran == suite.n_episodes and summary.failed == 0, summary
    return summary.ran / elapsed


def main(argv: list[str] | None = None) -> None:
    """Measure and print the table (see the module doc)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=200, help="episodes per timed run")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--concurrency", type=int, default=4, help="the local run's threads")
    args = parser.parse_args(argv)

    import ray
    from ray.cluster_utils import Cluster

    suite = math_suite(args.episodes)
    timed(math_suite(12, "warm-up"), concurrency=args.concurrency)  # imports, data files
    local = timed(suite, concurrency=args.concurrency)
    print(f"machine: {os.cpu_count()} cores; {suite.n_episodes} Math-v0 episodes, math-solver")
    print(f"{'run':<28} {'episodes/s':>10} {'vs local':>9}")
    print(f"{f'local, {args.concurrency} threads':<28} {local:>10.1f} {1.0:>9.2f}")
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    try:
        ray.init(address=cluster.address, log_to_driver=False)
        nodes = 0
        for workers in sorted(args.workers):
            while nodes < workers:
                cluster.add_node(num_cpus=1)
                nodes += 1
            cluster.wait_for_nodes()
            remote = ray_episodes("auto")
            timed(math_suite(4 * workers, "warm-up"), remote=remote)
            rate = timed(suite, remote=remote)
            label = f"ray, {workers} worker node{'s' if workers > 1 else ''}"
            print(f"{label:<28} {rate:>10.1f} {rate / local:>9.2f}")
    finally:
        ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    main()
