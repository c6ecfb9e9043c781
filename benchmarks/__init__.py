"""Benchmark suites, the resumable runner, the SQLite results store, leaderboards and the CLI."""
