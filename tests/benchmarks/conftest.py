"""Benchmark test set-up: make ``arenagym_bench_testkit`` (envs and agents for tests) importable."""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import arenagym_bench_testkit  # noqa: E402, F401  (registers ArenagymTest/Countdown-v0)
