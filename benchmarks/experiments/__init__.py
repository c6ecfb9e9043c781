"""Research scripts: miniature reproductions of published findings, one script per finding.

The package never imports this folder (``tests/test_import_rules.py`` enforces it); the scripts
may import every layer, the trainer included. Run each with ``python -m``:

- ``noisy_rewards``, ``entropy_control``, ``dfc_games``: training findings, each with
  ``--preset smoke`` (seconds; used by the tests), ``--preset cpu`` (a whole experiment on a
  2-core machine) and ``--preset gpu`` (the real model on a lent GPU); they write Markdown + JSON
  tables and PNG curves with error bars over seeds into ``--out``
  (:mod:`arenagym.benchmarks.experiments.common` holds the shared pieces);
- ``dual_self_reward``: SUDER's dual self-reward on Math-v0 (does the policy's likelihood of
  the problem given a solution rank solutions, and does training on it alone raise the exact
  score?), with the same presets and outputs;
- ``recinter_phenomena``: the RecInter marketplace's Matthew effect and brand loyalty, plotted.
"""
