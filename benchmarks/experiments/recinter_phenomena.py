"""RecInter's two emergent phenomena, shown: the Matthew effect and brand loyalty.

Runs the marketplace simulator for each (recommender, mechanism on/off) pair over several seeds,
plots the sales Gini over rounds and its rise from round 1 paired by seed (PNG, needs
matplotlib) and prints the loyalty figures: the repeat-brand purchase rate against the no-loyalty
counterfactual, switching after a bad experience when merchants always / never reply (pooled
over seeds, with the number of cases), and the distribution of the 1-5 star ratings.

Usage:
    python -m arenagym.benchmarks.experiments.recinter_phenomena --out results/recinter_matthew.png
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
#: A town of regulars (every user shops each round), so that next purchases after a bad
#: experience are observed often enough.
SWITCHING_CONFIG = WorldConfig(n_users=100, n_items=100, sessions_per_round=100)
SWITCHING_ROUNDS = 15


def gini_curves(rounds: int, seeds: int) -> dict[str, np.ndarray]:
    """Mean sales Gini per round (rows: seeds) for each recommender x mechanism."""
    curves = {}
    for name, factory in (("popularity", PopularityScorer), ("random", RandomScorer)):
        for interaction in (True, False):
            config = CONFIG.with_updates(interaction=interaction)
            runs = [
                simulate(config, factory(), rounds, seed).series("sales_gini")
                for seed in range(seeds)
            ]
            curves[f"{name}, mechanism {'on' if interaction else 'off'}"] = np.array(runs)
    return curves


def loyalty_figures(rounds: int, seeds: int) -> dict[str, float]:
    """Repeat-brand rate and brand concentration with / without loyalty (mean over seeds)."""
    figures: dict[str, list[float]] = {}
    variants = {
        "loyal": LOYALTY_CONFIG,
        "no loyalty": LOYALTY_CONFIG.with_updates(loyalty_scale=0.0),
    }
    for label, config in variants.items():
        for seed in range(seeds):
            last = simulate(config, PopularityScorer(), rounds, seed).rounds[-1]
            figures.setdefault(f"repeat_brand_rate [{label}]", []).append(last["repeat_brand_rate"])
            figures.setdefault(f"brand_concentration [{label}]", []).append(
                last["brand_concentration"]
            )
    return {key: float(np.mean(values)) for key, values in figures.items()}


def switching_figures(seeds: int) -> dict[str, tuple[float, int]]:
    """Switching after a bad experience, pooled over seeds: (rate, cases) per reply policy."""
    figures = {}
    for policy, key in (("always", "replied"), ("never", "ignored")):
        cases = switched = 0.0
        for seed in range(seeds):
            config = SWITCHING_CONFIG.with_updates(reply_policy=policy)
            last = simulate(config, PopularityScorer(), SWITCHING_ROUNDS, seed).rounds[-1]
            cases += last[f"bad_experiences_{key}"]
            switched += last[f"switch_after_bad_{key}"] * last[f"bad_experiences_{key}"]
        figures[f"{policy} reply"] = (switched / cases if cases else 0.0, int(cases))
    return figures


def rating_distribution(rounds: int, seeds: int) -> np.ndarray:
    """The share of 1..5 star ratings (warm-start and simulated purchases, popularity ranking)."""
    counts = np.zeros(5)
    for seed in range(seeds):
        world = simulate(LOYALTY_CONFIG, PopularityScorer(), rounds, seed).world
        assert world is not None
        ratings = [h.rating for past in world.history for h in past if h.rating is not None]
        counts += np.bincount(ratings, minlength=6)[1:]
    return counts / counts.sum()


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
    print(f"switching after a bad experience ({SWITCHING_ROUNDS} rounds, pooled over seeds):")
    for label, (share, cases) in switching_figures(args.seeds).items():
        print(f"  {label:40s} {share:.3f}  ({cases} cases)")
    stars = rating_distribution(2, args.seeds)
    print(
        "ratings, 1-5 stars: "
        + " / ".join(f"{share:.0%}" for share in stars)
        + f"  (1-2 stars: {stars[0] + stars[1]:.0%})"
    )
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (axis, rise_axis) = plt.subplots(1, 2, figsize=(12, 4.5))
    styles = {"popularity": "tab:red", "random": "tab:blue"}
    for label, runs in curves.items():
        mean = runs.mean(axis=0)
        spread = runs.std(axis=0) / np.sqrt(runs.shape[0])
        x = np.arange(1, mean.size + 1)
        colour = styles[label.split(",")[0]]
        dashes = "-" if label.endswith("on") else "--"
        axis.plot(x, mean, dashes, color=colour, label=label)
        axis.fill_between(x, mean - spread, mean + spread, color=colour, alpha=0.15)
        rises = runs - runs[:, :1]  # paired by seed: each world's rise from its round 1
        rise_mean = rises.mean(axis=0)
        rise_spread = rises.std(axis=0) / np.sqrt(runs.shape[0])
        rise_axis.plot(x, rise_mean, dashes, color=colour, label=label)
        rise_axis.fill_between(
            x, rise_mean - rise_spread, rise_mean + rise_spread, color=colour, alpha=0.15
        )
    axis.set_xlabel("round")
    axis.set_ylabel("sales Gini (cumulative)")
    axis.set_title(f"RecInter: the Matthew effect ({args.seeds} seeds, mean ± s.e.)")
    axis.legend()
    axis.grid(alpha=0.3)
    rise_axis.set_xlabel("round")
    rise_axis.set_ylabel("sales Gini rise since round 1")
    rise_axis.set_title("the rise, paired by seed (mean ± s.e.)")
    rise_axis.axhline(0.0, color="grey", linewidth=0.8)
    rise_axis.grid(alpha=0.3)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(out, dpi=120)
    print(f"plot written to {out}")


if __name__ == "__main__":
    main()
