"""RecInter's two emergent phenomena, shown: the Matthew effect and brand loyalty.

Runs the marketplace simulator for each (recommender, mechanism on/off) pair over several seeds,
plots the sales Gini over rounds (PNG, needs matplotlib) and prints the loyalty figures: the
repeat-brand purchase rate against the no-loyalty counterfactual, and switching after a bad
experience when merchants always / never reply.

Usage:
    python -m arenagym.benchmarks.recinter_phenomena --out results/recinter_matthew.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from arenagym.envs.recinter.simulator import (
    PopularityScorer,
    RandomScorer,
    WorldConfig,
    simulate,
)

CONFIG = WorldConfig(n_users=200, n_items=100, sessions_per_round=100)
LOYALTY_CONFIG = WorldConfig(n_users=200, n_items=100, sessions_per_round=150)


def gini_curves(rounds: int, seeds: int) -> dict[str, np.ndarray]:
    """Mean sales Gini per round (rows: seeds) for each recommender x mechanism."""
    curves = {}
    for name, factory in (("popularity", PopularityScorer), ("random", RandomScorer)):
        for interaction in (True, False):
            config = CONFIG.with_updates(interaction=interaction)
            runs = [simulate(config, factory(), rounds, seed).series("sales_gini")
                    for seed in range(seeds)]
            curves[f"{name}, mechanism {'on' if interaction else 'off'}"] = np.array(runs)
    return curves


def loyalty_figures(rounds: int, seeds: int) -> dict[str, float]:
    """Repeat-brand rate with / without loyalty; switching after bad experiences, reply / none."""
    figures: dict[str, list[float]] = {}
    variants = {
        "loyal": LOYALTY_CONFIG,
        "no loyalty": LOYALTY_CONFIG.with_updates(loyalty_scale=0.0),
        "always reply": LOYALTY_CONFIG.with_updates(reply_policy="always"),
        "never reply": LOYALTY_CONFIG.with_updates(reply_policy="never"),
    }
    for label, config in variants.items():
        for seed in range(seeds):
            last = simulate(config, PopularityScorer(), rounds, seed).rounds[-1]
            figures.setdefault(f"repeat_brand_rate [{label}]", []).append(last["repeat_brand_rate"])
            figures.setdefault(f"brand_concentration [{label}]", []).append(
                last["brand_concentration"])
            if label == "always reply":
                figures.setdefault("switch_after_bad [always reply]", []).append(
                    last["switch_after_bad_replied"])
                figures.setdefault("bad experiences [always reply]", []).append(
                    last["bad_experiences_replied"])
            if label == "never reply":
                figures.setdefault("switch_after_bad [never reply]", []).append(
                    last["switch_after_bad_ignored"])
                figures.setdefault("bad experiences [never reply]", []).append(
                    last["bad_experiences_ignored"])
    return {key: float(np.mean(values)) for key, values in figures.items()}


def main() -> None:
    """Run, plot, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results/recinter_matthew.png")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    curves = gini_curves(args.rounds, args.seeds)
    print("sales Gini, first -> last round (mean over seeds):")
    for label, runs in curves.items():
        mean = runs.mean(axis=0)
        print(f"  {label:32s} {mean[0]:.3f} -> {mean[-1]:.3f}  (rise {mean[-1] - mean[0]:+.3f})")
    print("loyalty (popularity recommender, mean over seeds):")
    for key, value in loyalty_figures(args.rounds, args.seeds).items():
        print(f"  {key:40s} {value:.3f}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.5))
    styles = {"popularity": "tab:red", "random": "tab:blue"}
    for label, runs in curves.items():
        mean = runs.mean(axis=0)
        spread = runs.std(axis=0) / np.sqrt(runs.shape[0])
        x = np.arange(1, mean.size + 1)
        colour = styles[label.split(",")[0]]
        dashes = "-" if label.endswith("on") else "--"
        axis.plot(x, mean, dashes, color=colour, label=label)
        axis.fill_between(x, mean - spread, mean + spread, color=colour, alpha=0.15)
    axis.set_xlabel("round")
    axis.set_ylabel("sales Gini (cumulative)")
    axis.set_title(f"RecInter: the Matthew effect ({args.seeds} seeds, mean ± s.e.)")
    axis.legend()
    axis.grid(alpha=0.3)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(out, dpi=120)
    print(f"plot written to {out}")


if __name__ == "__main__":
    main()
