"""Math-v0's scorer against raw ``math_verify`` on the same 1,000 (answer, response) pairs.

Prints rewards scored per second for:

- ``raw``: ``math_verify.verify(math_verify.parse(gold), math_verify.parse(response))`` — the
  baseline, with math-verify's own (main-thread, ``signal.alarm``) time limits;
- ``scorer``: ``MathScorer.score`` (answer extraction, time-limited check, RPR, noise) in the
  main thread;
- ``scorer-in-thread``: the same from a worker thread, where checks go to worker processes;

the ratio of each to ``raw`` (goal: main-thread overhead <= 1.2x), and the import time of
``arenagym.envs`` in a fresh interpreter (goal: < 1 s).

Run: ``.venv/bin/python -m arenagym.benchmarks.perf.math_reward [--pairs 1000]``
"""

from __future__ import annotations

import argparse
import logging
import platform
import statistics
import subprocess
import sys
import threading
import time

import numpy as np

from arenagym.envs.math import procedural
from arenagym.envs.math.problems import load_bundled
from arenagym.envs.math.scoring import MathScorer, RewardConfig

RESPONSE_TEMPLATES = (
    "Let me work through it. Therefore the answer is \\boxed{{{answer}}}.",
    "First, we simplify. Thus the final answer is $\\boxed{{{answer}}}$.",
    "We need to check: the result is \\boxed{{{wrong}}}.",  # another problem's answer
    "After some algebra, \\boxed{{{answer}}}",
)


def make_pairs(count: int, seed: int = 0) -> list[tuple[str, str]]:
    """``count`` (gold, response) pairs: 3/4 correct, 1/4 wrong, procedural and bundled."""
    rng = np.random.default_rng(seed)
    golds = [p.answer for p in load_bundled()]
    while len(golds) < count:
        family = procedural.FAMILIES[len(golds) % len(procedural.FAMILIES)]
        golds.append(procedural.generate(family, int(rng.integers(1, 6)), rng).answer)
    rng.shuffle(golds)
    pairs = []
    for index, gold in enumerate(golds[:count]):
        template = RESPONSE_TEMPLATES[index % len(RESPONSE_TEMPLATES)]
        wrong = golds[(index + 1) % count]
        pairs.append((gold, template.format(answer=gold, wrong=wrong)))
    return pairs


def time_raw(pairs: list[tuple[str, str]]) -> tuple[float, int]:
    from math_verify import parse, verify

    start = time.perf_counter()
    correct = sum(bool(verify(parse(f"${gold}$"), parse(response))) for gold, response in pairs)
    return time.perf_counter() - start, correct


def time_scorer(pairs: list[tuple[str, str]]) -> tuple[float, int]:
    scorer = MathScorer(RewardConfig())
    start = time.perf_counter()
    correct = sum(
        int(scorer.score("", gold, response).clean_reward)
        for i, (gold, response) in enumerate(pairs)
    )
    return time.perf_counter() - start, correct


def time_in_thread(pairs: list[tuple[str, str]]) -> tuple[float, int]:
    result: list[tuple[float, int]] = []
    worker = threading.Thread(target=lambda: result.append(time_scorer(pairs)))
    worker.start()
    worker.join()
    return result[0]


def import_time(repeats: int = 5) -> float:
    code = (
        "import time; t = time.perf_counter(); import arenagym.envs; print(time.perf_counter() - t)"
    )
    runs = [
        float(
            subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(repeats)
    ]
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1000)
    args = parser.parse_args()
    logging.getLogger("math_verify").setLevel(logging.ERROR)  # its per-timeout warnings
    pairs = make_pairs(args.pairs)
    from arenagym.envs.math import verifier

    # warm up imports and sympy's caches on other pairs, so neither side pays one-off costs
    warm = make_pairs(50, seed=1)
    time_raw(warm)
    time_scorer(warm)
    time_in_thread(warm[:5])
    verifier._parse.cache_clear()

    raw_s, raw_correct = time_raw(pairs)
    verifier._parse.cache_clear()
    scorer_s, scorer_correct = time_scorer(pairs)
    verifier._parse.cache_clear()
    thread_s, thread_correct = time_in_thread(pairs)

    print(
        f"machine: {platform.machine()} {platform.processor() or ''} python {platform.python_version()}"
    )
    print(f"pairs: {len(pairs)}")
    print(f"{'path':<18}{'pairs/s':>10}{'correct':>9}{'time vs raw':>13}")
    for name, seconds, correct in (
        ("raw math_verify", raw_s, raw_correct),
        ("scorer", scorer_s, scorer_correct),
        ("scorer-in-thread", thread_s, thread_correct),
    ):
        print(f"{name:<18}{len(pairs) / seconds:>10.1f}{correct:>9}{seconds / raw_s:>12.2f}x")
    print(f"import arenagym.envs: {import_time():.3f} s (median of 5 fresh interpreters)")


if __name__ == "__main__":
    main()
