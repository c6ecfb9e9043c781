"""The evaluation harness: benchmark suites, the resumable runner, the SQLite results store,
ratings and leaderboards (the `arenagym` command fronts it from :mod:`arenagym.cli`).

``perf/`` and ``experiments/`` hold scripts (speed measurements, research reproductions) that
the package never imports.
"""
