"""Built-in recommenders for RecInter: random, popularity, item-based CF, matrix factorisation, oracle.

Each is a *scorer* on structured pages (:class:`~arenagym.envs.recinter.simulator.Page`), used
directly by the simulator (fast, for experiments) and wrapped as a text *agent* (``reset`` /
``act``) that reads the same page back from the observation text, so it plays ``RecInter-v0``
in a benchmark suite like any LLM agent:

- :class:`RandomAgent`: a seeded random order (the floor);
- :class:`PopularityAgent`: the live popularity column;
- :class:`ItemCFAgent`: item-based collaborative filtering, cosine similarity of items over the
  baskets it has seen (users' histories and the clicks on its own pages), scored against the
  current user's history;
- :class:`MFAgent`: implicit matrix factorisation (numpy ALS, refitted as logs grow) with the
  current user folded in from their history;
- :class:`OracleAgent`: the user's true utility, readable only in the env's explicit upper-bound
  setting (``RecInter-v0(reveal_utilities=True)``); on ordinary pages it falls back to popularity.
  :class:`OracleScorer` is the same policy on the simulator (``with_oracle=True`` pages).

Example:
    >>> import gymnasium as gym
    >>> import arenagym.envs.recinter
    >>> env = gym.make("RecInter-v0", rounds=1, sessions=2)
    >>> observation, info = env.reset(seed=0)
    >>> agent = ItemCFAgent()
    >>> agent.reset(info["system_prompt"])
    >>> reply = agent.act(observation)
    >>> len(reply.split(", ")), env.step(reply)[4]["invalid_action"]
    (4, False)
"""

from __future__ import annotations

import re
from collections import defaultdict

import numpy as np

from arenagym.envs.recinter.pages import parse_page
from arenagym.envs.recinter.simulator import (
    Page,
    PageOutcome,
    PopularityScorer,
    RandomScorer,
)
from arenagym.envs.recinter.text import item_label

__all__ = [
    "ItemCFAgent",
    "ItemCFScorer",
    "MFAgent",
    "MFScorer",
    "OracleAgent",
    "OracleScorer",
    "PopularityAgent",
    "RandomAgent",
    "ScorerAgent",
]

_SLATE = re.compile(r"Rank (\d+) of these ids")
_CLICK = re.compile(r"u(\d+) clicked i(\d+)")


class ItemCFScorer:
    """Item-based CF: ``score(i) = sum_{j in history} cos(i, j)`` over co-occurrence in baskets.

    A basket is one user's history (as shown on their pages) plus what they clicked on pages this
    scorer ranked. Ties and cold items fall back to a small popularity term.
    """

    def __init__(self, popularity_weight: float = 1e-3) -> None:
        self.popularity_weight = popularity_weight
        self.baskets: dict[int, set[int]] = defaultdict(set)
        self.co: dict[tuple[int, int], float] = defaultdict(float)
        self.count: dict[int, float] = defaultdict(float)

    def _add(self, user: int, items: tuple[int, ...] | list[int]) -> None:
        basket = self.baskets[user]
        for item in items:
            if item in basket:
                continue
            for other in basket:
                self.co[(min(item, other), max(item, other))] += 1.0
            basket.add(item)
            self.count[item] += 1.0

    def score(self, page: Page) -> np.ndarray:
        """Similarity of each candidate to the user's history (plus a popularity tie-break)."""
        self._add(page.user, page.history)
        history = self.baskets[page.user]
        scores = self.popularity_weight * page.popularity.astype(float)
        for j, candidate in enumerate(page.candidates):
            item = int(candidate)
            total = 0.0
            for other in history:
                if other != item:
                    pair = self.co.get((min(item, other), max(item, other)), 0.0)
                    if pair:
                        total += pair / np.sqrt(self.count[item] * self.count[other])
            scores[j] += total
        return scores

    def observe(self, page: Page, outcome: PageOutcome) -> None:
        """A click joins the user's basket."""
        if outcome.clicked is not None:
            self._add(page.user, [outcome.clicked])


class MFScorer:
    """Implicit matrix factorisation by alternating least squares (numpy), refitted periodically.

    Positives are the (user, item) pairs of the baskets seen (as for :class:`ItemCFScorer`);
    unobserved pairs are weak negatives (weight 1 vs ``alpha`` for positives). A user is folded
    in from their current history, so a first-time user still gets personal scores.
    """

    def __init__(self, factors: int = 8, alpha: float = 10.0, reg: float = 0.1,
                 refit_every: int = 20, seed: int = 0, popularity_weight: float = 1e-3) -> None:
        self.factors, self.alpha, self.reg = factors, alpha, reg
        self.refit_every, self.popularity_weight = refit_every, popularity_weight
        self.rng = np.random.default_rng(seed)
        self.baskets: dict[int, set[int]] = defaultdict(set)
        self.item_factors: dict[int, np.ndarray] = {}
        self._since_fit = 0

    def _fit(self) -> None:
        users = sorted(self.baskets)
        items = sorted({i for b in self.baskets.values() for i in b})
        if not users or not items:
            return
        index = {item: n for n, item in enumerate(items)}
        r = np.zeros((len(users), len(items)))
        for row, user in enumerate(users):
            for item in self.baskets[user]:
                r[row, index[item]] = 1.0
        weight = 1.0 + self.alpha * r
        u = self.rng.normal(0, 0.1, (len(users), self.factors))
        v = self.rng.normal(0, 0.1, (len(items), self.factors))
        eye = self.reg * np.eye(self.factors)
        for _ in range(6):
            for row in range(len(users)):
                w = weight[row]
                u[row] = np.linalg.solve((v.T * w) @ v + eye, (v.T * w) @ r[row])
            for col in range(len(items)):
                w = weight[:, col]
                v[col] = np.linalg.solve((u.T * w) @ u + eye, (u.T * w) @ r[:, col])
        self.item_factors = {item: v[index[item]] for item in items}

    def _fold_in(self, history: set[int]) -> np.ndarray | None:
        known = [i for i in history if i in self.item_factors]
        if not known:
            return None
        v = np.array([self.item_factors[i] for i in self.item_factors])
        target = np.array([1.0 if i in history else 0.0 for i in self.item_factors])
        weight = 1.0 + self.alpha * target
        return np.linalg.solve((v.T * weight) @ v + self.reg * np.eye(self.factors),
                               (v.T * weight) @ target)

    def score(self, page: Page) -> np.ndarray:
        """``user . item`` factor products (plus a popularity tie-break)."""
        self.baskets[page.user].update(page.history)
        self._since_fit += 1
        if self._since_fit >= self.refit_every or not self.item_factors:
            self._fit()
            self._since_fit = 0
        scores = self.popularity_weight * page.popularity.astype(float)
        user = self._fold_in(self.baskets[page.user])
        if user is not None:
            for j, candidate in enumerate(page.candidates):
                factor = self.item_factors.get(int(candidate))
                if factor is not None:
                    scores[j] += float(user @ factor)
        return scores

    def observe(self, page: Page, outcome: PageOutcome) -> None:
        """A click joins the user's basket."""
        if outcome.clicked is not None:
            self.baskets[page.user].add(outcome.clicked)


class OracleScorer:
    """The user's true utility (needs ``page.oracle_utility``; popularity otherwise)."""

    def score(self, page: Page) -> np.ndarray:
        """True utilities when the page carries them."""
        if page.oracle_utility is None:
            return PopularityScorer().score(page)
        return np.asarray(page.oracle_utility, dtype=float)

    def observe(self, page: Page, outcome: PageOutcome) -> None:
        """Needs no learning."""


class ScorerAgent:
    """A text agent around a scorer: parse the page from the observation, rank, write the ids.

    Clicks reported in later observations (``u0012 clicked i045``) are passed to the scorer's
    ``observe``. Unreadable observations get an empty reply (the env explains and penalises).
    """

    def __init__(self) -> None:
        self.scorer = self.make_scorer()
        self._last: Page | None = None

    def make_scorer(self) -> RandomScorer | PopularityScorer | ItemCFScorer | MFScorer | OracleScorer:
        """The scorer this agent wraps (subclasses override)."""
        return PopularityScorer()

    def reset(self, system_prompt: str) -> None:
        """A new episode: a new marketplace, so forget what was learned."""
        self.scorer = self.make_scorer()
        self._last = None

    def act(self, observation: str) -> str:
        """Ranked ids of the page in ``observation``."""
        if self._last is not None:
            for user, item in _CLICK.findall(observation):
                if int(user) == self._last.user:
                    self.scorer.observe(self._last, PageOutcome((), int(item)))
        page = parse_page(observation)
        self._last = page
        if page is None:
            return ""
        sizes = _SLATE.findall(observation)
        k = int(sizes[-1]) if sizes else 5
        scores = self.scorer.score(page)
        order = np.argsort(-np.asarray(scores, dtype=float), kind="stable")[:k]
        return ", ".join(item_label(int(page.candidates[i])) for i in order)


class RandomAgent(ScorerAgent):
    """Seeded random ranking."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        super().__init__()

    def make_scorer(self) -> RandomScorer:
        """A random scorer seeded with ``seed``."""
        return RandomScorer(self.seed)


class PopularityAgent(ScorerAgent):
    """Most popular first."""


class ItemCFAgent(ScorerAgent):
    """Item-based collaborative filtering."""

    def make_scorer(self) -> ItemCFScorer:
        """A fresh item-CF scorer."""
        return ItemCFScorer()


class MFAgent(ScorerAgent):
    """Matrix factorisation."""

    def make_scorer(self) -> MFScorer:
        """A fresh ALS scorer."""
        return MFScorer()


class OracleAgent(ScorerAgent):
    """True utilities, from pages of the upper-bound setting (``reveal_utilities=True``)."""

    def make_scorer(self) -> OracleScorer:
        """The oracle scorer."""
        return OracleScorer()
