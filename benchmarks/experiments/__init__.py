"""Miniature reproductions of published training findings, one script per finding.

Each script has ``--preset smoke`` (seconds; used by the tests), ``--preset cpu`` (a whole
experiment on a 2-core machine) and ``--preset gpu`` (the real model on a lent GPU), and writes
Markdown + JSON tables and PNG curves with error bars over seeds into ``--out``
(:mod:`arenagym.benchmarks.experiments.common` holds the shared pieces).
"""
