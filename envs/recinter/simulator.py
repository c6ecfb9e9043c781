"""The RecInter marketplace simulator: the world, the user model and the interaction mechanism.

After "RecInter: An Agent-Based Simulation Platform for Recommender Systems with Interactive
Feedback": simulated users' actions (clicks, likes, purchases, ratings, reviews) update the items
they act on *immediately* (the interaction mechanism), merchants reply to reviews, and the
platform's emergent phenomena (the Matthew effect, brand loyalty) follow. Like RecSim it is a
seeded, procedural world; like Agent4Rec its users have multidimensional hidden profiles and an
exit behaviour that grows with fatigue. Every view (the recommender, merchant, user and market
envs) runs on one :class:`World`.

The world (everything drawn from one seed, numpy only):

- merchants (brands) with a quality level, the categories they serve, and a reply style (how often
  and how well they answer negative reviews);
- items with static attributes (category, merchant, price level 1-5, a scenario tag, two
  descriptive tags, a latent quality, a weak and a strong aspect) and live ones (sales, likes,
  clicks, exposures, ratings with a Bayesian average, reviews with sentiment and replies, a
  sentiment average, a time-decayed popularity), warm-started from sampled histories so that
  popularity starts uneven;
- users with hidden parameters: taste over categories, budget, scenario preferences, conformity,
  brand loyalty, activity, review propensity and length, rating bias; and a sampled history.

The user model, on a page (a slate of items shown in order): utility = taste + quality +
conformity x (Bayesian rating, popularity) + sentiment + the open need in the item's category +
loyalty x bond with the merchant (lost while the user holds a grievance against it, which also
adds distrust) - price over budget + scenario fit - a penalty on items the user was disappointed
by; a multinomial logit over the slate (minus a position bias) and exit (whose utility grows with
fatigue, page after page); on a click, like and purchase with probabilities rising with the
utility; on a purchase a 1-5 star rating from the experienced quality against the expectation
(J-shaped, see the rating-model constants), and with the user's review propensity (higher after a
bad experience) a templated review whose sentiment follows it. A purchase satisfies the need in
its category, which recurs with the category's repurchase cycle; a purchase rated 1-2 leaves it
open and sets a grievance against the merchant, which a reply eases and time fades.

Calibration (the model constants below). Targets, as recommender platforms and the simulators
this follows describe them: a page's click-through of order 0.1-0.4 with an explicit no-click /
exit option (RecSim's choice models carry a "no click" item; Agent4Rec's users leave after a few
pages, more likely as fatigue grows), purchases a fraction of clicks (RecInter's users click,
then decide separately whether to buy, rate and review) and most sessions ending without a
purchase. Measured (200 users, 100 items, 150 sessions a round, 3 rounds, 3 worlds): CTR 0.29
(popularity) / 0.38 (oracle) / 0.13 (random), conversion 0.34 / 0.30 / 0.26, and reward ratios
oracle / popularity 1.30-1.64 and popularity / random 3.4-3.7 in every world; 21% of purchases
rated 1-2 stars (J-shaped: 15/6/5/14/60% for 1-5 stars, 2 rounds, 5 worlds). The Matthew effect
(100 sessions a round, 8 rounds, 5 worlds): the sales Gini rises +0.089 under popularity with the
mechanism on, +0.051 with it off (the frozen ranking's own bias), +0.015 under random. Replies
(100 users all shopping each round, 15 rounds, 5 worlds): after a bad experience with a review,
the next purchase in that category goes to another merchant in 22% of 55 cases when every
negative review is answered and 37% of 30 cases when none is.

The interaction mechanism, applied right after each action: sales, likes and clicks counted, the
Bayesian-average rating and the sentiment average moved, the review appended, the merchant's reply
to a negative review raising its sentiment by the reply's quality, and popularity (a decayed sum
of events, decayed once per round) bumped. ``interaction=False`` freezes the live attributes (the
ablation); the ledger of what happened (for metrics) is kept either way. Users' bonds with
merchants (loyalty), their grievances, needs and disappointments are the users' own memory and
always update.

Example:
    >>> world = World(WorldConfig(n_users=40, n_items=30, n_merchants=5, sessions_per_round=10),
    ...               seed=0)
    >>> sales_before = world.sales.copy()
    >>> metrics = world.simulate_round(RandomScorer(0))
    >>> int((world.sales - sales_before).sum()) == metrics["purchases"] == world.totals["purchases"]
    True
    >>> 0.0 <= metrics["ctr"] <= 1.0 and 0.0 <= metrics["sales_gini"] < 1.0
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from arenagym.envs.recinter.metrics import gini, herfindahl, rate, top_share
from arenagym.envs.recinter.text import (
    ASPECTS,
    CATEGORIES,
    CATEGORY_TAGS,
    MERCHANT_NAMES,
    SCENARIOS,
    render_review,
)

# ------------------------------------------------------------------------- model constants
TASTE_WEIGHT = 1.5
QUALITY_WEIGHT = 0.3
RATING_WEIGHT = 0.8
POPULARITY_WEIGHT = 0.6
#: The popularity signal is log(popularity / catalogue mean), clipped to +- this.
POPULARITY_CLIP = 1.5
WARM_POPULARITY = 20.0
SENTIMENT_WEIGHT = 1.0
PRICE_WEIGHT = 0.8
SCENARIO_WEIGHT = 0.4
EXIT_BASE = 4.0
LIKE_OFFSET = 4.0
PURCHASE_OFFSET = 4.7
PURCHASE_SLOPE = 0.8
#: Trust: a bad experience (a purchase rated 1-2) sets the user's grievance with the merchant to 1.
#: The loyalty term is ``loyalty * tanh(bond) * (1 - grievance) - DISTRUST_WEIGHT * grievance``:
#: an unanswered bad experience loses the loyalty bonus and adds a distrust penalty. A merchant's
#: reply of quality q multiplies the grievance by ``1 - q * REPLY_FORGIVENESS`` (service recovery:
#: a good reply restores most of the trust, a templated one a third of it); grievances fade by
#: GRIEVANCE_MEMORY per round. The review's sentiment rises by ``q * REPLY_LIFT`` (seen by all).
DISTRUST_WEIGHT = 2.0
#: A user does not buy again an item they rated 1-2 (they know it now): its utility drops by this.
DISAPPOINTMENT = 3.0
GRIEVANCE_MEMORY = 0.85
REPLY_LIFT = 0.8
REPLY_FORGIVENESS = 0.9
# The rating model (expectation disconfirmation): the experienced quality of a purchase is the
# item's latent quality + the fit with the user's taste + noise; the expectation is set by the
# brand's reputation (its merchant's quality level) and what the page showed (the Bayesian rating,
# the price). The gap plus the user's rating bias, with losses weighed LOSS_AVERSION times more
# than gains, is cut into 1-5 stars by RATING_CUTS; the cuts leave narrow 2- and 3-star bands,
# giving the J-shaped distribution of online ratings. Anchoring on the brand keeps the share of
# bad experiences similar across worlds whose merchants differ in quality (measured: 15-26% of
# purchases rated 1-2 per world, 21% pooled; stars 15/6/5/14/60%).
EXPERIENCE_NOISE = 0.8
EXPECTATION_BASE = 0.1
TASTE_FIT_WEIGHT = 0.3
EXPECTATION_RATING_WEIGHT = 0.3
EXPECTATION_PRICE_WEIGHT = 0.15
EXPECTATION_BRAND_WEIGHT = 0.8
LOSS_AVERSION = 2.0
RATING_CUTS = np.array([-0.8, -0.35, -0.1, 0.4])
# Repeat needs: a purchase satisfies the user's need in its category (need 0) unless it was a bad
# experience (rated 1-2: the need stays open, at UNMET_NEED, the user shops for a replacement); a
# category the user buys in comes back each round by 1 / its repurchase cycle (consumables every
# round or two, durables every few). The utility rises by NEED_WEIGHT x need.
NEED_WEIGHT = 0.6
#: The need after a bad experience: open and more pressing than a recurring one (a replacement).
UNMET_NEED = 2.0
REPURCHASE_CYCLE: dict[str, int] = {
    "electronics": 6, "books": 2, "home": 4, "beauty": 2, "sports": 3, "toys": 3, "fashion": 3,
    "grocery": 1,
}  # fmt: skip
#: Dissatisfied buyers review more often than the rest (negativity in word of mouth).
NEGATIVE_REVIEW_BOOST = 2.0
#: Popularity added per event (the decayed sum is multiplied by ``popularity_decay`` per round).
POPULARITY_EVENTS = {"click": 0.5, "like": 0.5, "purchase": 2.5}
#: Reply styles of scripted merchants: (probability of replying to a negative review, quality).
REPLY_STYLES: dict[str, tuple[float, float]] = {
    "silent": (0.0, 0.0),
    "templated": (0.5, 0.35),
    "attentive": (0.9, 0.8),
}
_SCRIPTED_REPLIES: dict[str, str] = {
    "templated": "Thank you for your feedback.",
    "attentive": (
        "We are sorry about the {aspect}. Please contact us and we will replace it or refund you."
    ),
}


@dataclass(frozen=True)
class WorldConfig:
    """The size and the switches of a marketplace (every field has a working default).

    ``reply_policy``: ``"style"`` (each scripted merchant replies as its style says), ``"always"``
    (every scripted merchant answers every negative review, with its style's quality or 0.8 when
    silent) or ``"never"``. ``loyalty_scale`` and ``conformity_scale`` multiply the users' hidden
    weights (0 gives the no-loyalty / no-conformity counterfactuals).
    """

    n_users: int = 300
    n_items: int = 150
    n_merchants: int = 10
    n_categories: int = 6
    n_candidates: int = 20
    slate_size: int = 5
    pages_per_session: int = 3
    sessions_per_round: int = 60
    trending_share: float = 0.8
    warm_start_sales: float = 2.0
    history_length: float = 6.0
    interaction: bool = True
    loyalty_scale: float = 1.0
    conformity_scale: float = 1.0
    position_bias: float = 0.3
    fatigue: float = 0.6
    popularity_decay: float = 0.6
    rating_prior_mean: float = 3.5
    rating_prior_strength: float = 5.0
    reply_policy: str = "style"

    def __post_init__(self) -> None:
        positive = (
            "n_users", "n_items", "n_merchants", "n_categories", "n_candidates", "slate_size",
            "pages_per_session",
        )  # fmt: skip
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"WorldConfig.{name} must be an int >= 1, got {value!r}")
        if self.n_categories > len(CATEGORIES):
            raise ValueError(f"WorldConfig.n_categories must be <= {len(CATEGORIES)}")
        if self.n_merchants > len(MERCHANT_NAMES):
            raise ValueError(f"WorldConfig.n_merchants must be <= {len(MERCHANT_NAMES)}")
        if not self.slate_size <= self.n_candidates <= self.n_items:
            raise ValueError("WorldConfig needs slate_size <= n_candidates <= n_items")
        if not isinstance(self.sessions_per_round, int) or self.sessions_per_round < 0:
            raise ValueError("WorldConfig.sessions_per_round must be an int >= 0")
        if self.reply_policy not in ("style", "always", "never"):
            raise ValueError("WorldConfig.reply_policy must be 'style', 'always' or 'never'")
        if not 0.0 < self.popularity_decay <= 1.0:
            raise ValueError("WorldConfig.popularity_decay must be in (0, 1]")
        for name in ("warm_start_sales", "history_length", "loyalty_scale", "conformity_scale",
                     "position_bias", "fatigue", "rating_prior_strength"):
            if getattr(self, name) < 0:
                raise ValueError(f"WorldConfig.{name} must be >= 0")

    def with_updates(self, **changes: Any) -> WorldConfig:
        """A copy with ``changes`` applied (validated)."""
        return replace(self, **changes)


@dataclass
class Review:
    """One review: who wrote it on what, the rating, the sentiment in [-1, 1] and the reply."""

    review_id: int
    item: int
    user: int
    round: int
    rating: int
    sentiment: float
    aspect: str
    text: str
    reply: str | None = None
    reply_quality: float = 0.0


@dataclass
class Interaction:
    """One entry of a user's history: a click on ``item`` and what followed it."""

    round: int
    item: int
    liked: bool
    purchased: bool
    rating: int | None = None
    review_id: int | None = None
    item_rating_at_time: float | None = None


@dataclass(frozen=True)
class PageOutcome:
    """What a user did on one page: the clicked item (``None``: exited) and what followed."""

    slate: tuple[int, ...]
    clicked: int | None
    liked: bool = False
    purchased: bool = False
    rating: int | None = None
    review: Review | None = None

    @property
    def exited(self) -> bool:
        """Whether the user left instead of clicking."""
        return self.clicked is None


@dataclass(frozen=True)
class Page:
    """What a recommender sees for one page: the user, their recent items and the candidates.

    Attribute arrays are aligned with ``candidates`` and hold the live values at display time.
    """

    round: int
    user: int
    history: tuple[int, ...]
    history_purchased: tuple[int, ...]
    candidates: np.ndarray
    category: np.ndarray
    merchant: np.ndarray
    price: np.ndarray
    rating: np.ndarray
    n_ratings: np.ndarray
    sales: np.ndarray
    likes: np.ndarray
    sentiment: np.ndarray
    popularity: np.ndarray
    page_index: int = 0
    oracle_utility: np.ndarray | None = None

    def as_dict(self) -> dict[str, Any]:
        """A plain (JSON-friendly, comparable) copy: arrays become lists."""
        return {
            name: value.tolist() if isinstance(value, np.ndarray) else value
            for name, value in self.__dict__.items()
        }


class Scorer(Protocol):
    """A recommender policy on structured pages: higher scores are ranked first."""

    def score(self, page: Page) -> np.ndarray:
        """One score per candidate of ``page``."""

    def observe(self, page: Page, outcome: PageOutcome) -> None:
        """Learn from what the user did on a page this policy ranked."""


def rank_slate(page: Page, scores: np.ndarray, k: int) -> tuple[int, ...]:
    """The ids of the ``k`` best-scored candidates, best first (ties keep the candidate order)."""
    order = np.argsort(-np.asarray(scores, dtype=float), kind="stable")[:k]
    return tuple(int(page.candidates[i]) for i in order)


class RandomScorer:
    """Ranks candidates in a seeded random order (the floor)."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)

    def score(self, page: Page) -> np.ndarray:
        """Uniform random scores."""
        return self.rng.random(page.candidates.size)

    def observe(self, page: Page, outcome: PageOutcome) -> None:
        """Learns nothing."""


class PopularityScorer:
    """Ranks by the live popularity shown on the page (ties: more sales first)."""

    def score(self, page: Page) -> np.ndarray:
        """Popularity plus a tiny sales tie-break."""
        return page.popularity + 1e-6 * page.sales

    def observe(self, page: Page, outcome: PageOutcome) -> None:
        """Learns nothing: the platform's counters already move."""


def _sigmoid(x: np.ndarray | float) -> np.ndarray | float:
    return 1.0 / (1.0 + np.exp(-x))


class World:
    """One seeded marketplace; see the module docstring for what it holds and how it moves.

    Args:
        config: sizes and switches (:class:`WorldConfig`).
        seed: everything (merchants, items, users, histories and every later draw) follows it.
        agent_merchants: merchants whose replies come from outside (:meth:`reply`) instead of
            their scripted style.
    """

    def __init__(
        self, config: WorldConfig | None = None, seed: int = 0, agent_merchants: Sequence[int] = ()
    ) -> None:
        self.config = config or WorldConfig()
        self.rng = np.random.default_rng(seed)
        self.agent_merchants = frozenset(int(m) for m in agent_merchants)
        self.round = 0
        self.reviews: list[Review] = []
        self.pending_reviews: dict[int, list[int]] = {m: [] for m in self.agent_merchants}
        self._build_merchants()
        self._build_items()
        self._build_users()
        self._warm_start()
        self.totals: dict[str, float] = {}
        self._round_counts: dict[str, float] = {}
        self._reset_counters()
        self.pending_reviews = {m: [] for m in self.agent_merchants}
        self.reset_round_counters()
        self.initial_sales = self.sales.copy()

    def hand_over(self, merchants: Sequence[int]) -> None:
        """From now on ``merchants`` reply from outside (:meth:`reply`), not by their style."""
        self.agent_merchants = frozenset(int(m) for m in merchants)
        self.pending_reviews = {m: [] for m in self.agent_merchants}

    # ------------------------------------------------------------------------ generation
    def _build_merchants(self) -> None:
        c, rng = self.config, self.rng
        self.merchant_names = MERCHANT_NAMES[: c.n_merchants]
        self.merchant_quality = rng.normal(0.0, 0.6, c.n_merchants)
        styles = tuple(REPLY_STYLES)
        self.merchant_style = tuple(styles[int(i)] for i in rng.integers(0, 3, c.n_merchants))
        serves = np.zeros((c.n_merchants, c.n_categories), dtype=bool)
        for m in range(c.n_merchants):
            count = int(rng.integers(2, 4))
            serves[m, rng.choice(c.n_categories, min(count, c.n_categories), replace=False)] = True
        for k in range(c.n_categories):  # every category has a seller
            if not serves[:, k].any():
                serves[int(rng.integers(c.n_merchants)), k] = True
        self.merchant_serves = serves

    def _build_items(self) -> None:
        c, rng = self.config, self.rng
        n = c.n_items
        self.categories = CATEGORIES[: c.n_categories]
        self.item_category = rng.integers(0, c.n_categories, n)
        self.item_merchant = np.array(
            [int(rng.choice(np.flatnonzero(self.merchant_serves[:, k]))) for k in self.item_category]
        )
        self.item_price = rng.integers(1, 6, n)
        self.item_scenario = rng.integers(0, len(SCENARIOS), n)
        self.item_tags = tuple(
            tuple(str(t) for t in rng.choice(CATEGORY_TAGS[self.categories[k]], 2, replace=False))
            for k in self.item_category
        )
        self.item_quality = self.merchant_quality[self.item_merchant] + rng.normal(0.0, 0.4, n)
        self.item_weak_aspect = rng.integers(0, len(ASPECTS), n)
        self.item_strong_aspect = (self.item_weak_aspect + rng.integers(1, len(ASPECTS), n)) % len(
            ASPECTS
        )

    def _build_users(self) -> None:
        c, rng = self.config, self.rng
        u = c.n_users
        self.taste = rng.dirichlet(np.full(c.n_categories, 0.6), u)
        self.budget = rng.uniform(1.5, 5.0, u)
        self.scenario_pref = rng.dirichlet(np.full(len(SCENARIOS), 1.0), u)
        self.conformity = rng.beta(2.0, 2.0, u)
        self.loyalty = rng.gamma(4.0, 0.35, u)
        self.activity = rng.beta(2.0, 3.0, u) + 0.05
        self.review_propensity = rng.beta(2.0, 3.0, u)
        self.review_length = rng.uniform(1.0, 4.0, u)
        self.rating_bias = rng.normal(0.0, 0.4, u)
        self.bond = np.zeros((u, c.n_merchants))
        self.grievance = np.zeros((u, c.n_merchants))
        self.disappointed = np.zeros((u, c.n_items), dtype=bool)
        self.bought_from = np.zeros((u, c.n_merchants), dtype=np.int64)
        self.history: list[list[Interaction]] = [[] for _ in range(u)]
        # what happens to a user after a negative review: (merchant, review id) until next purchase
        self.pending_bad: dict[int, tuple[int, int, int]] = {}
        self.last_merchant = np.full(u, -1, dtype=np.int64)
        # repeat needs per (user, category) in [0, 1], and the categories each user buys in
        self.need = np.zeros((u, c.n_categories))
        self.buys_in = np.zeros((u, c.n_categories), dtype=bool)
        self.need_recurrence = np.array(
            [1.0 / REPURCHASE_CYCLE.get(name, 3) for name in CATEGORIES[: c.n_categories]]
        )

    def _warm_start(self) -> None:
        """Uneven initial counters (a sampled history of sales, ratings, likes) and user histories."""
        c, rng = self.config, self.rng
        n = c.n_items
        appeal = np.exp(0.7 * self.item_quality + 0.9 * rng.normal(0.0, 1.0, n))
        self.sales = rng.poisson(c.warm_start_sales * appeal / appeal.mean()).astype(np.int64)
        self.n_ratings = rng.binomial(self.sales, 0.6).astype(np.int64)
        mean_rating = np.clip(3.4 + 0.9 * self.item_quality + rng.normal(0, 0.3, n), 1.0, 5.0)
        self.rating_sum = self.n_ratings * mean_rating
        self.likes = rng.binomial(self.sales, 0.4).astype(np.int64)
        self.clicks = self.sales * 3 + rng.poisson(2.0, n)
        self.exposures = self.clicks * 4
        n_reviews = rng.binomial(self.n_ratings, 0.4)
        self.sentiment_sum = n_reviews * np.clip((mean_rating - 3.0) / 2.0, -1.0, 1.0)
        self.sentiment_count = n_reviews.astype(float)
        self.popularity = WARM_POPULARITY + np.sqrt(self.sales + 0.3 * self.likes)
        # ledgers (what really happened during the simulation; kept when interaction is off)
        self.sold = np.zeros(n, dtype=np.int64)
        self.shown = np.zeros(n, dtype=np.int64)
        # user histories: clicks drawn from each user's own choice probabilities
        for user in range(c.n_users):
            length = int(rng.poisson(c.history_length * self.activity[user] / 0.45))
            if length == 0:
                continue
            utility = self.utilities(user, np.arange(n))
            p = np.exp(utility - utility.max())
            items = rng.choice(n, size=length, p=p / p.sum())
            for item in items:
                self._act_on(user, int(item), float(utility[item]), warm=True)
        # the past is a stationary cycle: a satisfied need is somewhere in its recurrence
        phase = rng.random(self.need.shape)
        self.need = np.where(self.buys_in, np.maximum(self.need, phase), 0.0)

    # ------------------------------------------------------------------------ live values
    def bayes_rating(self, items: np.ndarray | None = None) -> np.ndarray:
        """The Bayesian-average rating ``(C * m + sum) / (C + n)`` of ``items`` (all if None)."""
        c = self.config
        idx = slice(None) if items is None else items
        return (c.rating_prior_strength * c.rating_prior_mean + self.rating_sum[idx]) / (
            c.rating_prior_strength + self.n_ratings[idx]
        )

    def sentiment(self, items: np.ndarray | None = None) -> np.ndarray:
        """The mean sentiment of the reviews of ``items`` (0 for none)."""
        idx = slice(None) if items is None else items
        count = self.sentiment_count[idx]
        return np.divide(
            self.sentiment_sum[idx], count, out=np.zeros_like(count, dtype=float), where=count > 0
        )

    def popularity_signal(self, items: np.ndarray) -> np.ndarray:
        """``log(popularity / catalogue mean)``, clipped to +-``POPULARITY_CLIP``: what conformity
        responds to (a log-popularity term, as in choice models of herding)."""
        mean = float(self.popularity.mean()) + 1e-9
        ratio = np.maximum(self.popularity[items], 1e-9) / mean
        return np.clip(np.log(ratio), -POPULARITY_CLIP, POPULARITY_CLIP)

    def utilities(self, user: int, items: np.ndarray) -> np.ndarray:
        """The user's hidden utility for each of ``items`` (no position bias, no noise)."""
        c = self.config
        k = self.item_category[items]
        taste = TASTE_WEIGHT * np.log(np.maximum(self.taste[user, k], 0.02) * c.n_categories)
        social = self.conformity[user] * c.conformity_scale * (
            RATING_WEIGHT * (self.bayes_rating(items) - 3.5)
            + POPULARITY_WEIGHT * self.popularity_signal(items)
        )
        merchants = self.item_merchant[items]
        grievance = self.grievance[user, merchants]
        loyal = self.loyalty[user] * c.loyalty_scale * np.tanh(self.bond[user, merchants]) * (
            1.0 - grievance
        ) - DISTRUST_WEIGHT * grievance
        price = PRICE_WEIGHT * np.maximum(0.0, self.item_price[items] - self.budget[user])
        scenario = SCENARIO_WEIGHT * (
            self.scenario_pref[user, self.item_scenario[items]] * len(SCENARIOS) - 1.0
        )
        return (
            taste
            + QUALITY_WEIGHT * self.item_quality[items]
            + social
            + SENTIMENT_WEIGHT * self.sentiment(items)
            + NEED_WEIGHT * self.need[user, k]
            - DISAPPOINTMENT * self.disappointed[user, items]
            + loyal
            - price
            + scenario
        )

    def choice_probabilities(self, user: int, slate: Sequence[int], page_index: int) -> np.ndarray:
        """P(click slate[j]) for each j, then P(exit) last: a logit with position bias and fatigue."""
        return self._choice(user, np.asarray(slate, dtype=np.int64), page_index)[0]

    def _choice(self, user: int, items: np.ndarray, page_index: int) -> tuple[np.ndarray, np.ndarray]:
        utility = self.utilities(user, items) if items.size else np.zeros(0)
        logits = np.empty(items.size + 1)
        logits[:-1] = utility - self.config.position_bias * np.arange(items.size)
        logits[-1] = EXIT_BASE + self.config.fatigue * page_index
        p = np.exp(logits - logits.max())
        return p / p.sum(), utility

    def purchase_probability(self, utility: float, user: int, item: int) -> float:
        """P(purchase | click): rising with the utility, zero-ish far above the user's budget."""
        over = max(0.0, float(self.item_price[item] - self.budget[user]) - 1.0)
        return float(_sigmoid(PURCHASE_SLOPE * (utility - PURCHASE_OFFSET) - 2.0 * over))

    # ------------------------------------------------------------------------- sessions
    def session_users(self, count: int) -> np.ndarray:
        """``count`` distinct users drawn in proportion to their activity."""
        count = min(count, self.config.n_users)
        p = self.activity / self.activity.sum()
        return self.rng.choice(self.config.n_users, size=count, replace=False, p=p)

    def sample_candidates(self) -> np.ndarray:
        """The retrieval stage: ``n_candidates`` distinct items, a ``trending_share`` of them drawn
        in proportion to live popularity ("trending"), the rest uniformly."""
        c, rng = self.config, self.rng
        n_trending = round(c.trending_share * c.n_candidates)
        chosen = np.zeros(c.n_items, dtype=bool)
        if n_trending:
            # weighted sampling without replacement (Efraimidis-Spirakis keys log(u) / w)
            keys = np.log(rng.random(c.n_items)) / (self.popularity + 1e-3)
            chosen[np.argpartition(-keys, n_trending - 1)[:n_trending]] = True
        rest = rng.choice(np.flatnonzero(~chosen), size=c.n_candidates - n_trending, replace=False)
        chosen[rest] = True
        return np.flatnonzero(chosen)

    def page(self, user: int, candidates: np.ndarray, page_index: int = 0,
             with_oracle: bool = False, history_length: int = 10) -> Page:
        """The structured page a recommender ranks (live values at this moment)."""
        recent = self.history[user][-history_length:]
        return Page(
            round=self.round,
            user=user,
            history=tuple(h.item for h in recent),
            history_purchased=tuple(h.item for h in recent if h.purchased),
            candidates=candidates,
            category=self.item_category[candidates],
            merchant=self.item_merchant[candidates],
            price=self.item_price[candidates],
            rating=self.bayes_rating(candidates),
            n_ratings=self.n_ratings[candidates].copy(),
            sales=self.sales[candidates].copy(),
            likes=self.likes[candidates].copy(),
            sentiment=self.sentiment(candidates),
            popularity=self.popularity[candidates].copy(),
            page_index=page_index,
            oracle_utility=self.utilities(user, candidates) if with_oracle else None,
        )

    def show(self, user: int, slate: Sequence[int], page_index: int) -> PageOutcome:
        """Show ``slate`` to ``user``: they click one item or exit; the mechanism runs at once."""
        slate = tuple(int(i) for i in slate)
        self._round_counts["pages"] += 1
        self._round_counts["impressions"] += len(slate)
        for item in slate:
            self.shown[item] += 1
            if self.config.interaction:
                self.exposures[item] += 1
        p, utility = self._choice(user, np.asarray(slate, dtype=np.int64), page_index)
        pick = int(np.searchsorted(np.cumsum(p), self.rng.random() * p.sum(), side="right"))
        if pick >= len(slate):
            return PageOutcome(slate, None)
        return replace(self._act_on(user, slate[pick], float(utility[pick])), slate=slate)

    def _act_on(self, user: int, item: int, utility: float, warm: bool = False) -> PageOutcome:
        """A click on ``item`` and what follows it: like, purchase, rating, review, reply."""
        rng, c = self.rng, self.config
        live = warm or c.interaction
        liked = bool(rng.random() < _sigmoid(utility - LIKE_OFFSET))
        purchased = bool(rng.random() < self.purchase_probability(utility, user, item))
        rating_at_time = float(self.bayes_rating(np.array([item]))[0])
        rating: int | None = None
        review: Review | None = None
        if live:
            self.clicks[item] += 1
            self.popularity[item] += POPULARITY_EVENTS["click"]
            if liked:
                self.likes[item] += 1
                self.popularity[item] += POPULARITY_EVENTS["like"]
        merchant = int(self.item_merchant[item])
        if purchased:
            rating = self._rate(user, item, rating_at_time)
            if not warm:
                self._record_purchase(user, merchant, item, rating)
            self.bought_from[user, merchant] += 1
            self.last_merchant[user] = merchant
            if rating <= 2:
                self.grievance[user, merchant] = 1.0
                self.disappointed[user, item] = True
            else:
                self.bond[user, merchant] += 0.3 if rating == 3 else 1.0
            category = int(self.item_category[item])
            self.need[user, category] = UNMET_NEED if rating <= 2 else 0.0
            self.buys_in[user, category] = True
            if live:
                self.sales[item] += 1
                self.popularity[item] += POPULARITY_EVENTS["purchase"]
                self.rating_sum[item] += rating
                self.n_ratings[item] += 1
            extremity = abs(rating - 3) / 2.0
            moan = NEGATIVE_REVIEW_BOOST if rating <= 2 else 1.0
            if rng.random() < self.review_propensity[user] * (0.5 + 0.5 * extremity) * moan:
                review = self._write_review(user, item, rating, live)
        interaction = Interaction(
            round=self.round,
            item=item,
            liked=liked,
            purchased=purchased,
            rating=rating,
            review_id=None if review is None else review.review_id,
            item_rating_at_time=rating_at_time,
        )
        self.history[user].append(interaction)
        if not warm:
            counts = self._round_counts
            counts["clicks"] += 1
            counts["likes"] += liked
        return PageOutcome((), item, liked, purchased, rating, review)

    def _rate(self, user: int, item: int, shown_rating: float) -> int:
        """The 1-5 stars of a purchase: experienced quality against the expectation the page set
        (see the rating-model constants)."""
        c = self.config
        fit = max(self.taste[user, self.item_category[item]], 0.02) * c.n_categories
        experienced = (
            self.item_quality[item]
            + TASTE_FIT_WEIGHT * np.log(fit)
            + self.rng.normal(0.0, EXPERIENCE_NOISE)
        )
        expected = (
            EXPECTATION_BASE
            + EXPECTATION_RATING_WEIGHT * (shown_rating - c.rating_prior_mean)
            + EXPECTATION_PRICE_WEIGHT * (float(self.item_price[item]) - 3.0)
            + EXPECTATION_BRAND_WEIGHT * float(self.merchant_quality[self.item_merchant[item]])
        )
        gap = float(experienced - expected + self.rating_bias[user])
        if gap < 0.0:
            gap *= LOSS_AVERSION
        return 1 + int(np.searchsorted(RATING_CUTS, gap))

    def _record_purchase(self, user: int, merchant: int, item: int, rating: int) -> None:
        counts = self._round_counts
        counts["purchases"] += 1
        counts["purchase_rating_sum"] += rating
        self.sold[item] += 1
        if self.last_merchant[user] >= 0:
            counts["purchases_by_returning"] += 1
            counts["repeat_brand"] += bool(self.last_merchant[user] == merchant)
        category = int(self.item_category[item])
        bad = self.pending_bad.get(user)
        if bad is not None and bad[2] == category:
            del self.pending_bad[user]
            bad_merchant, review_id, _ = bad
            replied = self.reviews[review_id].reply is not None
            key = "replied" if replied else "ignored"
            counts[f"after_bad_{key}"] += 1
            counts[f"switched_{key}"] += merchant != bad_merchant
        self.sim_bought_from[user, merchant] += 1

    def _write_review(self, user: int, item: int, rating: int, live: bool) -> Review:
        rng = self.rng
        if rating <= 2:
            aspect_index = self.item_weak_aspect[item] if rng.random() < 0.7 else None
        elif rating >= 4:
            aspect_index = self.item_strong_aspect[item] if rng.random() < 0.7 else None
        else:
            aspect_index = None
        if aspect_index is None:
            aspect_index = int(rng.integers(len(ASPECTS)))
        aspect = ASPECTS[int(aspect_index)]
        n_sentences = int(np.clip(rng.poisson(self.review_length[user]), 1, 5))
        text = render_review(
            rng, rating, aspect, n_sentences, SCENARIOS[int(self.item_scenario[item])]
        )
        sentiment = float(np.clip((rating - 3) / 2.0 + rng.normal(0.0, 0.1), -1.0, 1.0))
        review = Review(len(self.reviews), item, user, self.round, rating, sentiment, aspect, text)
        self.reviews.append(review)
        if live:
            self.sentiment_sum[item] += sentiment
            self.sentiment_count[item] += 1
        if rating <= 2:
            merchant = int(self.item_merchant[item])
            self.pending_bad[user] = (merchant, review.review_id, int(self.item_category[item]))
            if merchant in self.agent_merchants:
                self.pending_reviews[merchant].append(review.review_id)
            else:
                self._scripted_reply(review, merchant)
        elif int(self.item_merchant[item]) in self.agent_merchants:
            self.pending_reviews[int(self.item_merchant[item])].append(review.review_id)
        return review

    def _scripted_reply(self, review: Review, merchant: int) -> None:
        policy = self.config.reply_policy
        if policy == "never":
            return
        style = self.merchant_style[merchant]
        chance, quality = REPLY_STYLES[style]
        if policy == "always":
            chance, quality = 1.0, quality if style != "silent" else 0.8
            style = "attentive" if style == "silent" else style
        if self.rng.random() < chance:
            self.reply(review.review_id, _SCRIPTED_REPLIES[style].format(aspect=review.aspect),
                       quality)

    def reply(self, review_id: int, text: str, quality: float) -> None:
        """A merchant replies to a review: for a negative one, its sentiment rises by
        ``quality * REPLY_LIFT`` and the reviewer's grievance with the merchant shrinks by the
        factor ``1 - quality * REPLY_FORGIVENESS`` (trust partly restored)."""
        review = self.reviews[review_id]
        if review.reply is not None:
            return
        quality = float(np.clip(quality, 0.0, 1.0))
        review.reply, review.reply_quality = text, quality
        if review.rating > 2:
            return
        lifted = min(1.0, review.sentiment + quality * REPLY_LIFT)
        if self.config.interaction:
            self.sentiment_sum[review.item] += lifted - review.sentiment
        review.sentiment = lifted
        merchant = int(self.item_merchant[review.item])
        self.grievance[review.user, merchant] *= 1.0 - quality * REPLY_FORGIVENESS

    # --------------------------------------------------------------------------- rounds
    def _reset_counters(self) -> None:
        self.sim_bought_from = np.zeros_like(self.bought_from)
        self.pending_bad.clear()  # warm-start grievances are not part of the measured ones

    def reset_round_counters(self) -> None:
        """Start counting a new round's events (folded into :attr:`totals` by :meth:`end_round`)."""
        keys = (
            "pages", "impressions", "clicks", "likes", "purchases", "purchase_rating_sum",
            "purchases_by_returning", "repeat_brand", "after_bad_replied", "switched_replied",
            "after_bad_ignored", "switched_ignored",
        )  # fmt: skip
        for key in keys:
            self.totals.setdefault(key, 0.0)
        self._round_counts = dict.fromkeys(keys, 0.0)

    def run_session(self, user: int, scorer: Scorer, with_oracle: bool = False) -> list[PageOutcome]:
        """One session of ``user`` with pages ranked by ``scorer``, until exit or the page limit."""
        outcomes = []
        for page_index in range(self.config.pages_per_session):
            page = self.page(user, self.sample_candidates(), page_index, with_oracle=with_oracle)
            slate = rank_slate(page, scorer.score(page), self.config.slate_size)
            outcome = self.show(user, slate, page_index)
            scorer.observe(page, outcome)
            outcomes.append(outcome)
            if outcome.exited:
                break
        return outcomes

    def simulate_round(self, scorer: Scorer, n_sessions: int | None = None,
                       with_oracle: bool = False) -> dict[str, float]:
        """``n_sessions`` sessions (default ``sessions_per_round``) then :meth:`end_round`."""
        count = self.config.sessions_per_round if n_sessions is None else n_sessions
        for user in self.session_users(count):
            self.run_session(int(user), scorer, with_oracle=with_oracle)
        return self.end_round()

    def end_round(self) -> dict[str, float]:
        """Close the round: metrics of its events, totals updated, popularity decayed."""
        for key, value in self._round_counts.items():
            self.totals[key] += value
        metrics = self.metrics()
        if self.config.interaction:
            self.popularity *= self.config.popularity_decay
        recurred = np.minimum(1.0, self.need + self.buys_in * self.need_recurrence)
        self.need = np.maximum(self.need, recurred)  # an unmet need (> 1) stays as it is
        self.grievance *= GRIEVANCE_MEMORY
        self.round += 1
        self.reset_round_counters()
        return metrics

    def metrics(self) -> dict[str, float]:
        """The round's rates, and the marketplace's inequality and loyalty figures so far.

        - ``ctr``: clicks / pages; ``conversion``: purchases / clicks; ``avg_purchase_rating``;
        - ``sales_gini``, ``exposure_gini``, ``sales_top10_share``: over the items' cumulative
          sales (warm start + simulated purchases) and exposures (the Matthew effect);
        - ``repeat_brand_rate``: the share of purchases by users who had bought before that go to
          the merchant of their previous purchase (cumulative); ``brand_concentration``: the mean
          Herfindahl index of merchants among each user's simulated purchases (users with >= 2);
        - ``switch_after_bad_replied`` / ``switch_after_bad_ignored``: after a purchase rated 1-2
          with a review, the share of next purchases in that category from another merchant, when
          the review was answered / not (cumulative).
        """
        r, t = self._round_counts, self.totals
        cumulative = {key: t[key] + r[key] for key in r}
        sales = self.initial_sales + self.sold
        counts = self.sim_bought_from[self.sim_bought_from.sum(axis=1) >= 2]
        return {
            "round": float(self.round),
            "pages": r["pages"],
            "clicks": r["clicks"],
            "likes": r["likes"],
            "purchases": r["purchases"],
            "ctr": rate(r["clicks"], r["pages"]),
            "conversion": rate(r["purchases"], r["clicks"]),
            "avg_purchase_rating": rate(r["purchase_rating_sum"], r["purchases"]),
            "sales_gini": gini(sales),
            "exposure_gini": gini(self.shown),
            "sales_top10_share": top_share(sales, 0.1),
            "repeat_brand_rate": rate(
                cumulative["repeat_brand"], cumulative["purchases_by_returning"]
            ),
            "brand_concentration": float(np.mean([herfindahl(c) for c in counts]))
            if len(counts)
            else 0.0,
            "bad_experiences_replied": cumulative["after_bad_replied"],
            "bad_experiences_ignored": cumulative["after_bad_ignored"],
            "switch_after_bad_replied": rate(
                cumulative["switched_replied"], cumulative["after_bad_replied"]
            ),
            "switch_after_bad_ignored": rate(
                cumulative["switched_ignored"], cumulative["after_bad_ignored"]
            ),
        }


@dataclass
class RunResult:
    """Metrics per round of :func:`simulate` (and the world, for further inspection)."""

    rounds: list[dict[str, float]] = field(default_factory=list)
    world: World | None = None

    def series(self, key: str) -> np.ndarray:
        """``key`` over the rounds."""
        return np.array([m[key] for m in self.rounds])


def simulate(config: WorldConfig, scorer: Scorer, rounds: int, seed: int = 0,
             with_oracle: bool = False) -> RunResult:
    """Run ``rounds`` rounds of ``config``'s world from ``seed`` with ``scorer`` as the platform."""
    world = World(config, seed)
    result = RunResult(world=world)
    for _ in range(rounds):
        result.rounds.append(world.simulate_round(scorer, with_oracle=with_oracle))
    return result
