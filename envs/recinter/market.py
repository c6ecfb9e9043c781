"""RecInter-Market-v0: the marketplace as a PettingZoo ``ParallelEnv`` (one step per round).

Agents: ``recommender`` and ``merchant_0`` ... ``merchant_{n-1}`` (the brands with most items).
Roles nobody plays are scripted: the other brands reply in their own style, and pages the
recommender's order does not cover fall back to popularity.

Example:
    >>> env = make_market(rounds=2, seed_sessions=10)
    >>> observations, infos = env.reset(seed=0)
    >>> env.agents
    ['recommender', 'merchant_0', 'merchant_1']
    >>> actions = {agent: "none" for agent in env.agents}
    >>> _, rewards, terminations, _, _ = env.step(actions)
    >>> sorted(rewards) == sorted(terminations) == ['merchant_0', 'merchant_1', 'recommender']
    True
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from pettingzoo import ParallelEnv

from arenagym.envs.core.spaces import UnicodeText
from arenagym.envs.recinter.env import world_config
from arenagym.envs.recinter.merchant import parse_replies, reply_quality
from arenagym.envs.recinter.pages import item_ids, render_candidates
from arenagym.envs.recinter.simulator import Page, PageOutcome, World
from arenagym.envs.recinter.text import item_label


class _PriorityScorer:
    """Ranks by the recommender's written priority list, then by popularity."""

    def __init__(self, priority: list[int]) -> None:
        self.rank = {item: len(priority) - n for n, item in enumerate(priority)}
        self.outcomes: list[PageOutcome] = []

    def score(self, page: Page) -> np.ndarray:
        bonus = np.array([self.rank.get(int(i), 0) for i in page.candidates], dtype=float)
        return 1e6 * bonus + page.popularity

    def observe(self, page: Page, outcome: PageOutcome) -> None:
        self.outcomes.append(outcome)


class RecInterMarketEnv(ParallelEnv):
    """The recommender and ``n_merchant_agents`` merchants act once per round, simultaneously.

    The recommender writes a priority order of item ids (``i012, i003, ...``): every page of the
    round shows the candidates it lists first, in that order, then the most popular; it earns
    purchases + 0.2 likes + 0.1 clicks over the round. Each merchant agent writes ``[r<id>] text``
    replies to its new reviews (or ``none``) and earns ``0.1 x units sold`` plus the change of its
    items' mean sentiment. Unreadable actions count as no replies / no preference, with a
    ``invalid_action_penalty``.
    """

    metadata: ClassVar[dict[str, Any]] = {
        "name": "recinter_market_v0", "render_modes": [], "is_parallelizable": True
    }

    def __init__(self, rounds: int = 3, seed_sessions: int = 40, n_merchant_agents: int = 2,
                 world: dict[str, Any] | None = None, invalid_action_penalty: float = 0.1) -> None:
        self.config = world_config(world, sessions_per_round=seed_sessions)
        if not 0 <= n_merchant_agents <= self.config.n_merchants:
            raise ValueError(f"n_merchant_agents must be in 0..{self.config.n_merchants}")
        self.rounds, self.penalty = rounds, float(invalid_action_penalty)
        self.possible_agents = ["recommender"] + [f"merchant_{i}" for i in range(n_merchant_agents)]
        self.agents: list[str] = []
        self.world: World | None = None
        self._brands: dict[str, int] = {}
        self._open: dict[str, list[int]] = {}
        self._replies: list[str] = []

    @functools.cache  # noqa: B019 - PettingZoo wants the same space object
    def observation_space(self, agent: str) -> UnicodeText:
        """Text observations."""
        return UnicodeText(262_144)

    @functools.cache  # noqa: B019
    def action_space(self, agent: str) -> UnicodeText:
        """Text actions."""
        return UnicodeText(65_536)

    def reset(self, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[dict[str, str], dict[str, dict]]:
        rng = np.random.default_rng(seed)
        world_seed = int(rng.integers(2**31 - 1))
        self.world = World(self.config, world_seed)
        counts = np.bincount(self.world.item_merchant, minlength=self.config.n_merchants)
        brands = [int(m) for m in np.argsort(-counts, kind="stable")[: len(self.possible_agents) - 1]]
        self._brands = {f"merchant_{i}": m for i, m in enumerate(brands)}
        self.world.hand_over(brands)
        self.agents = list(self.possible_agents)
        self._replies = []
        self._collect()
        return self._observations(""), {a: {} for a in self.agents}

    def _collect(self) -> None:
        assert self.world is not None
        for agent, brand in self._brands.items():
            self._open[agent] = list(self.world.pending_reviews[brand])
            self.world.pending_reviews[brand].clear()

    def _observations(self, news: str) -> dict[str, str]:
        assert self.world is not None
        world = self.world
        everything = world.page(0, np.arange(self.config.n_items))
        observations = {
            "recommender": (
                f"{news}Round {world.round + 1}/{self.rounds}. Catalogue:\n"
                f"{render_candidates(world, everything)}\n"
                "Write a priority order of item ids, best first (e.g. i003, i010, ...)."
            )
        }
        for agent, brand in self._brands.items():
            lines = [f"{news}You run {world.merchant_names[brand]}. "
                     f"Round {world.round + 1}/{self.rounds}: new reviews:"]
            for review_id in self._open[agent]:
                r = world.reviews[review_id]
                lines.append(f"[r{r.review_id}] {item_label(r.item)}, rating {r.rating}/5: {r.text}")
            lines.append("Reply as '[r<id>] text' blocks, or 'none'.")
            observations[agent] = "\n".join(lines)
        return observations

    def step(self, actions: dict[str, Any]) -> tuple[dict[str, str], dict[str, float],
                                                       dict[str, bool], dict[str, bool],
                                                       dict[str, dict]]:
        """Simulate one round from every live agent's action (text; anything else is unreadable).

        Raises ``RuntimeError`` before the first ``reset()`` and once the episode has ended (every
        agent was terminated): the market must not simulate rounds nobody asked for, and a
        caller that keeps stepping has lost track of the episode, so it is told to call
        ``reset()``.
        """
        if self.world is None:
            raise RuntimeError(f"{type(self).__name__}.step() called before reset(); call reset()")
        if not self.agents:
            raise RuntimeError(
                f"{type(self).__name__}.step() called after the episode ended (all "
                f"{self.rounds} rounds were played and every agent is terminated); call reset() "
                "to start a new episode"
            )
        if not isinstance(actions, Mapping):
            raise TypeError(
                "actions must be a dict mapping each live agent to its text action, got "
                f"{type(actions).__name__}"
            )
        world = self.world
        rewards = dict.fromkeys(self.agents, 0.0)
        infos: dict[str, dict[str, Any]] = {a: {} for a in self.agents}
        sentiment_before = {}
        for agent, brand in self._brands.items():
            items = np.flatnonzero(world.item_merchant == brand)
            sentiment_before[agent] = float(world.sentiment(items).mean()) if items.size else 0.0
            action = actions.get(agent)
            text = action if isinstance(action, str) else ""
            replies = parse_replies(text)
            if not replies and text.strip().lower() != "none":
                rewards[agent] -= self.penalty
                infos[agent]["invalid_action"] = True
            for review_id, reply in replies.items():
                if review_id in self._open[agent]:
                    review = world.reviews[review_id]
                    quality = reply_quality(reply, review.rating, review.aspect, self._replies)
                    self._replies.append(reply)
                    world.reply(review_id, reply, quality)
        action = actions.get("recommender")
        text = action if isinstance(action, str) else ""
        priority = list(dict.fromkeys(i for i in item_ids(text) if i < self.config.n_items))
        if not priority:
            rewards["recommender"] -= self.penalty
            infos["recommender"]["invalid_action"] = True
        scorer = _PriorityScorer(priority)
        sold_before = {a: int(world.sold[world.item_merchant == b].sum())
                       for a, b in self._brands.items()}
        metrics = world.simulate_round(scorer)
        rewards["recommender"] += sum(
            o.purchased + 0.2 * o.liked + 0.1 * (o.clicked is not None) for o in scorer.outcomes
        )
        for agent, brand in self._brands.items():
            sold = int(world.sold[world.item_merchant == brand].sum()) - sold_before[agent]
            items = np.flatnonzero(world.item_merchant == brand)
            after = float(world.sentiment(items).mean()) if items.size else 0.0
            rewards[agent] += 0.1 * sold + after - sentiment_before[agent]
        for agent in self.agents:
            infos[agent]["metrics"] = metrics
        self._collect()
        done = world.round >= self.rounds
        news = f"Round {world.round} done: sales Gini {metrics['sales_gini']:.3f}.\n"
        observations = self._observations(news)
        terminations = dict.fromkeys(self.agents, done)
        truncations = dict.fromkeys(self.agents, False)
        rewards = {a: float(r) for a, r in rewards.items()}
        if done:
            self.agents = []
        return observations, rewards, terminations, truncations, infos

    def close(self) -> None:
        """Nothing to release."""


def make_market(**kwargs: Any) -> RecInterMarketEnv:
    """Build :class:`RecInterMarketEnv` (the registered entry point)."""
    return RecInterMarketEnv(**kwargs)
