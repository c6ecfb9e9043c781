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
from arenagym.envs.recinter.env import (
    page_reward_components,
    resolve_reward_weights,
    world_config,
)
from arenagym.envs.recinter.merchant import (
    DEFAULT_SALES_WEIGHT,
    REPLY_FORMAT_HELP,
    parse_replies,
    reply_quality,
)
from arenagym.envs.recinter.pages import item_ids, render_candidates
from arenagym.envs.recinter.simulator import Page, PageOutcome, World
from arenagym.envs.recinter.text import item_label

#: The stop reason of every agent when the last round has been played.
COMPLETED = "completed"
#: How the recommender is told to act (in its observation and after an unreadable action).
PRIORITY_HELP = "Write a priority order of item ids, best first (e.g. i003, i010, ...)."


class _PriorityScorer:
    """Ranks by the recommender's written priority list, then by popularity."""

    def __init__(self, priority: list[int]) -> None:
        self.rank = {item: len(priority) - position for position, item in enumerate(priority)}
        self.outcomes: list[PageOutcome] = []

    def score(self, page: Page) -> np.ndarray:
        bonus = np.array([self.rank.get(int(item), 0) for item in page.candidates], dtype=float)
        return 1e6 * bonus + page.popularity

    def observe(self, page: Page, outcome: PageOutcome) -> None:
        self.outcomes.append(outcome)


class RecInterMarketEnv(ParallelEnv):
    r"""The RecInter marketplace with the recommender and merchants as simultaneous agents.

    ## Description
    A seeded marketplace (see :mod:`arenagym.envs.recinter.simulator`) played one round per
    step by ``recommender`` and ``merchant_0`` ... ``merchant_{n-1}`` (the ``n_merchant_agents``
    brands with most items) at once. The recommender writes a priority order of item ids: on
    every page of the round's ``seed_sessions`` shopper sessions the candidates it lists come
    first, in its order, then the most popular. Each merchant agent answers its brand's new
    reviews; a reply's quality (the deterministic rubric of
    :func:`~arenagym.envs.recinter.merchant.reply_quality`) lifts the item's sentiment and eases
    the reviewer's grievance, which moves later sales. Brands nobody plays reply in their own
    scripted style.

    ## Action Space
    :class:`~arenagym.envs.core.spaces.UnicodeText` per agent (at most 65,536 characters). The
    recommender: item ids, best first (``i012, i003, ...``; ids outside the catalogue are
    ignored). A merchant: ``[r<id>] text`` reply blocks, or ``none`` to answer nothing (replies
    to reviews it was not shown are ignored). An action that is not text, is too long, or has
    no usable id / reply block (or an agent missing from the actions) is invalid: the round is
    played as if it said nothing (the recommender's pages fall back to popularity), with a
    penalty.

    ## Observation Space
    :class:`~arenagym.envs.core.spaces.UnicodeText` per agent (at most 262,144 characters). The
    recommender: the round and the whole catalogue (category, brand, price, rating, sales,
    likes, sentiment, popularity). A merchant: its brand, the round and the new reviews of its
    items (id, item, rating, text). After a step, first ``Invalid action: ...`` (what was wrong
    and how to act) if the agent's action was invalid, then the round's sales Gini.

    ## Rewards
    Per agent and round, ``infos[agent]["reward_components"]`` sum to the reward. The
    recommender: ``purchase`` + ``like`` + ``click`` over every page of the round, weighted by
    ``reward_weights`` (the one definition shared with ``RecInter-v0``:
    :data:`~arenagym.envs.recinter.env.DEFAULT_REWARD_WEIGHTS`, 1.0 / 0.2 / 0.1). A merchant:
    ``sales`` (``sales_weight``, 0.1, per unit its brand sold in the round) + ``sentiment`` (the
    change of its items' mean review sentiment over the round). Either: ``invalid_action``
    (minus ``invalid_action_penalty``) when its action was invalid.

    ## Starting State
    A new marketplace drawn from the reset seed (warm-started with uneven sales and user
    histories); the merchant agents' brands stop replying by script; round 1 of ``rounds``.

    ## Episode End
    Every agent terminates together after ``rounds`` rounds, with the stop reason
    ``completed`` (``infos[agent]["stop_reason"]``). Invalid actions never end the episode (the
    market goes on without them) and there is no truncation. ``step()`` after the end raises
    ``RuntimeError`` (call ``reset()``), as does a non-dict ``actions``.

    ## Arguments
    * ``rounds`` (3): rounds per episode; ``seed_sessions`` (40): shopper sessions per round.
    * ``n_merchant_agents`` (2): merchants played by agents (0 to the world's ``n_merchants``).
    * ``world``: :class:`~arenagym.envs.recinter.simulator.WorldConfig` fields over the
      registered defaults.
    * ``invalid_action_penalty`` (0.1), ``reward_weights`` (the recommender's, as in
      ``RecInter-v0``), ``sales_weight`` (0.1).

    ## Examples
    >>> from arenagym.envs.core.registration import make_multi_agent
    >>> env = make_multi_agent("RecInter-Market-v0", rounds=1, seed_sessions=5)
    >>> observations, infos = env.reset(seed=0)
    >>> observations["recommender"].startswith("Round 1/1. Catalogue:")
    True
    >>> actions = {"recommender": "i001, i002", "merchant_0": "none", "merchant_1": ""}
    >>> observations, rewards, terminations, truncations, infos = env.step(actions)
    >>> sorted(infos["recommender"]["reward_components"])
    ['click', 'like', 'purchase']
    >>> observations["merchant_1"].startswith("Invalid action: no '[r<id>] text' reply block")
    True
    >>> infos["merchant_1"]["reward_components"]["invalid_action"]
    -0.1
    >>> all(terminations.values()), {info["stop_reason"] for info in infos.values()}
    (True, {'completed'})
    >>> env.close(); env.close()
    """

    metadata: ClassVar[dict[str, Any]] = {
        "name": "recinter_market_v0", "render_modes": [], "is_parallelizable": True
    }

    def __init__(self, rounds: int = 3, seed_sessions: int = 40, n_merchant_agents: int = 2,
                 world: dict[str, Any] | None = None, invalid_action_penalty: float = 0.1,
                 reward_weights: dict[str, float] | None = None,
                 sales_weight: float = DEFAULT_SALES_WEIGHT) -> None:
        self.config = world_config(world, sessions_per_round=seed_sessions)
        if not 0 <= n_merchant_agents <= self.config.n_merchants:
            raise ValueError(f"n_merchant_agents must be in 0..{self.config.n_merchants}")
        self.rounds, self.penalty = rounds, float(invalid_action_penalty)
        self.reward_weights = resolve_reward_weights(reward_weights)
        self.sales_weight = float(sales_weight)
        merchants = [f"merchant_{index}" for index in range(n_merchant_agents)]
        self.possible_agents = ["recommender", *merchants]
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
        largest = np.argsort(-counts, kind="stable")[: len(self.possible_agents) - 1]
        brands = [int(brand) for brand in largest]
        self._brands = {f"merchant_{index}": brand for index, brand in enumerate(brands)}
        self.world.hand_over(brands)
        self.agents = list(self.possible_agents)
        self._replies = []
        self._collect()
        return self._observations("", {}), {agent: {} for agent in self.agents}

    def _collect(self) -> None:
        assert self.world is not None
        for agent, brand in self._brands.items():
            self._open[agent] = list(self.world.pending_reviews[brand])
            self.world.pending_reviews[brand].clear()

    def _observations(self, news: str, errors: Mapping[str, str]) -> dict[str, str]:
        """Every agent's observation: ``Invalid action: ...`` first for those in ``errors``."""
        assert self.world is not None
        world = self.world
        everything = world.page(0, np.arange(self.config.n_items))
        observations = {
            "recommender": (
                f"{news}Round {world.round + 1}/{self.rounds}. Catalogue:\n"
                f"{render_candidates(world, everything)}\n{PRIORITY_HELP}"
            )
        }
        for agent, brand in self._brands.items():
            lines = [f"{news}You run {world.merchant_names[brand]}. "
                     f"Round {world.round + 1}/{self.rounds}: new reviews:"]
            for review_id in self._open[agent]:
                review = world.reviews[review_id]
                lines.append(f"[r{review.review_id}] {item_label(review.item)}, rating "
                             f"{review.rating}/5: {review.text}")
            lines.append("Reply as '[r<id>] text' blocks, or 'none'.")
            observations[agent] = "\n".join(lines)
        for agent, error in errors.items():
            observations[agent] = f"Invalid action: {error}\n{observations[agent]}"
        return observations

    def _text_of(self, agent: str, actions: Mapping[str, Any]) -> tuple[str, str | None]:
        """``agent``'s action as text to parse, and what made it unusable (or ``None``): not
        given, not text, or too long. An unusable action is read as the empty text."""
        if agent not in actions:
            return "", f"no action was given for {agent}; every live agent acts each round"
        action = actions[agent]
        if not isinstance(action, str):
            return "", f"actions are text (str), but got {type(action).__name__}; reply with text"
        limit = self.action_space(agent).max_length
        if len(action) > limit:
            return "", (
                f"the reply has {len(action)} characters, over the limit of {limit}; reply more "
                "briefly"
            )
        return action, None

    def step(self, actions: dict[str, Any]) -> tuple[dict[str, str], dict[str, float],
                                                       dict[str, bool], dict[str, bool],
                                                       dict[str, dict]]:
        """Simulate one round from every live agent's action (see the class docstring).

        Raises ``RuntimeError`` before the first ``reset()`` and once the episode has ended (every
        agent was terminated): the market must not simulate rounds nobody asked for, and a
        caller that keeps stepping has lost track of the episode, so it is told to call
        ``reset()``. Raises ``TypeError`` when ``actions`` is not a dict (a programmer error);
        what a dict holds per agent is never an error, only an invalid action.
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
        components: dict[str, dict[str, float]] = {}
        errors: dict[str, str] = {}
        sentiment_before = {}
        for agent, brand in self._brands.items():
            items = np.flatnonzero(world.item_merchant == brand)
            sentiment_before[agent] = float(world.sentiment(items).mean()) if items.size else 0.0
            text, error = self._text_of(agent, actions)
            replies = parse_replies(text)
            if error is None and not replies and text.strip().lower() != "none":
                error = REPLY_FORMAT_HELP
            if error is not None:
                errors[agent] = error
            for review_id, reply in replies.items():
                if review_id in self._open[agent]:
                    review = world.reviews[review_id]
                    quality = reply_quality(reply, review.rating, review.aspect, self._replies)
                    self._replies.append(reply)
                    world.reply(review_id, reply, quality)
        text, error = self._text_of("recommender", actions)
        catalogue = self.config.n_items
        priority = list(dict.fromkeys(item for item in item_ids(text) if item < catalogue))
        if error is None and not priority:
            error = f"no item id of the catalogue was found. {PRIORITY_HELP}"
        if error is not None:
            errors["recommender"] = error
        scorer = _PriorityScorer(priority)
        sold_before = {agent: int(world.sold[world.item_merchant == brand].sum())
                       for agent, brand in self._brands.items()}
        metrics = world.simulate_round(scorer)
        recommender = components["recommender"] = dict.fromkeys(self.reward_weights, 0.0)
        for outcome in scorer.outcomes:
            for name, value in page_reward_components(outcome, self.reward_weights).items():
                recommender[name] += value
        for agent, brand in self._brands.items():
            sold = int(world.sold[world.item_merchant == brand].sum()) - sold_before[agent]
            items = np.flatnonzero(world.item_merchant == brand)
            after = float(world.sentiment(items).mean()) if items.size else 0.0
            components[agent] = {
                "sales": self.sales_weight * sold,
                "sentiment": after - sentiment_before[agent],
            }
        infos: dict[str, dict[str, Any]] = {
            agent: {"invalid_action": False} for agent in self.agents
        }
        for agent, error in errors.items():
            components[agent]["invalid_action"] = -self.penalty or 0.0
            infos[agent].update(invalid_action=True, error=error)
        self._collect()
        done = world.round >= self.rounds
        news = f"Round {world.round} done: sales Gini {metrics['sales_gini']:.3f}.\n"
        observations = self._observations(news, errors)
        rewards = {agent: float(sum(components[agent].values())) for agent in self.agents}
        for agent in self.agents:
            infos[agent].update(reward_components=components[agent], metrics=metrics)
            if done:
                infos[agent]["stop_reason"] = COMPLETED
        terminations = dict.fromkeys(self.agents, done)
        truncations = dict.fromkeys(self.agents, False)
        if done:
            self.agents = []
        return observations, rewards, terminations, truncations, infos

    def close(self) -> None:
        """Nothing to release (idempotent)."""


def make_market(**kwargs: Any) -> RecInterMarketEnv:
    """Build :class:`RecInterMarketEnv` (the registered entry point)."""
    return RecInterMarketEnv(**kwargs)
