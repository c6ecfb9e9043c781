"""RecInter-v0: the agent is the recommender of a simulated marketplace (see ``simulator``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from arenagym.envs.core.text_env import Episode, InvalidAction, TextEnv, Turn
from arenagym.envs.recinter.pages import item_ids, render_page
from arenagym.envs.recinter.simulator import Page, PageOutcome, PopularityScorer, World, WorldConfig
from arenagym.envs.recinter.text import item_label, user_label

#: The recommender's reward per page: this much per purchase, like and click. The one definition
#: of these weights: :class:`RecInterEnv` and the market's recommender
#: (:class:`~arenagym.envs.recinter.market.RecInterMarketEnv`) both take ``reward_weights`` over
#: it (:func:`resolve_reward_weights`) and score pages with :func:`page_reward_components`.
DEFAULT_REWARD_WEIGHTS: dict[str, float] = {"purchase": 1.0, "like": 0.2, "click": 0.1}
#: The marketplace of the registered ids: small enough that a reset takes milliseconds.
ENV_WORLD: dict[str, Any] = {
    "n_users": 120, "n_items": 80, "n_merchants": 8, "n_candidates": 12, "slate_size": 4,
    "pages_per_session": 2, "sessions_per_round": 0,
}  # fmt: skip


def world_config(world: dict[str, Any] | None, **overrides: Any) -> WorldConfig:
    """:class:`WorldConfig` from :data:`ENV_WORLD`, ``world`` (JSON kwargs) and ``overrides``."""
    fields = {**ENV_WORLD, **(world or {}), **overrides}
    unknown = set(fields) - set(WorldConfig.__dataclass_fields__)
    if unknown:
        raise ValueError(
            f"unknown world settings {sorted(unknown)}; known: "
            f"{sorted(WorldConfig.__dataclass_fields__)}"
        )
    return WorldConfig(**fields)


def resolve_reward_weights(overrides: Mapping[str, float] | None = None) -> dict[str, float]:
    """:data:`DEFAULT_REWARD_WEIGHTS` updated by ``overrides`` (a constructor's
    ``reward_weights``), as floats; ``ValueError`` naming the known keys for any other key.

    >>> resolve_reward_weights({"click": 0.5})
    {'purchase': 1.0, 'like': 0.2, 'click': 0.5}
    """
    weights = {**DEFAULT_REWARD_WEIGHTS, **(overrides or {})}
    if set(weights) != set(DEFAULT_REWARD_WEIGHTS):
        raise ValueError(f"reward_weights keys must be among {sorted(DEFAULT_REWARD_WEIGHTS)}")
    return {key: float(value) for key, value in weights.items()}


def page_reward_components(outcome: PageOutcome, weights: Mapping[str, float]) -> dict[str, float]:
    """The recommender's reward components of one page: ``purchase``, ``like`` and ``click``,
    each its weight (:func:`resolve_reward_weights`) if the user did that, else 0."""
    return {
        "purchase": weights["purchase"] * outcome.purchased,
        "like": weights["like"] * outcome.liked,
        "click": weights["click"] * (outcome.clicked is not None),
    }


def outcome_text(user: int, outcome: PageOutcome) -> str:
    """One line saying what the user did on a page."""
    if outcome.clicked is None:
        return f"{user_label(user)} left without clicking."
    parts = [f"{user_label(user)} clicked {item_label(outcome.clicked)}"]
    if outcome.liked:
        parts.append("liked it")
    if outcome.purchased:
        parts.append(f"bought it and rated it {outcome.rating}")
        if outcome.review is not None:
            parts.append(f'reviewed: "{outcome.review.text}"')
    return ", ".join(parts) + "."


class RecInterEnv(TextEnv):
    r"""Recommend to simulated shoppers whose actions reshape the items in real time (RecInter).

    ## Description
    A seeded marketplace (merchants, items, users with hidden tastes, conformity, brand loyalty;
    see :mod:`arenagym.envs.recinter.simulator`). Each round, ``sessions`` users arrive (drawn by
    activity); each sees up to ``pages_per_session`` pages; for every page the agent ranks
    ``slate_size`` of the page's candidates. The user clicks one item or leaves (leaving grows
    likelier page after page), may like, buy, rate and review it, and the interaction mechanism
    updates the item at once (sales, likes, ratings, sentiment, popularity). Between rounds
    ``background_sessions`` other users shop under a popularity ranking, so the market moves on.

    ## Action Space
    :class:`~arenagym.envs.core.spaces.UnicodeText`: the ranked item ids, best first
    (``i012, i045, i003, i020``). Ids not on the page and repeats are ignored (named in
    ``info["ignored_ids"]``); extra ids past the slate size are dropped; a reply with no usable
    id is an invalid action.

    ## Observation Space
    :class:`~arenagym.envs.core.spaces.UnicodeText`: the page: round/session/page, the user's
    profile (computed from their history), recent history, the candidate table (category, brand,
    price, Bayesian rating and count, sales, likes, review sentiment, popularity, tags) and the
    instruction; after a step, first what the user did. ``info["page"]`` holds the structured
    page (:meth:`~arenagym.envs.recinter.simulator.Page.as_dict`) for classic agents.

    ## Rewards
    Per page: ``purchase`` (1.0 per purchase) + ``like`` (0.2) + ``click`` (0.1), weights set by
    ``reward_weights``; invalid actions cost ``invalid_action_penalty``. At the end of each round
    ``info["metrics"]`` holds the round's CTR, conversion, purchase ratings and the market's
    Matthew-effect and loyalty figures.

    ## Starting State
    A new marketplace drawn from the reset seed, warm-started with uneven sales and user
    histories.

    ## Episode End
    ``completed`` after ``rounds`` rounds; ``invalid_action`` after too many invalid actions;
    ``max_turns`` (default: enough for every page).

    ## Arguments
    * ``rounds`` (3), ``sessions`` (8 agent-served sessions per round), ``background_sessions``
      (20 per round, ranked by popularity).
    * ``world``: :class:`~arenagym.envs.recinter.simulator.WorldConfig` fields (e.g.
      ``{"interaction": false, "n_items": 120}``) over the registered defaults.
    * ``reward_weights``: ``{"purchase": 1.0, "like": 0.2, "click": 0.1}``.
    * ``reveal_utilities`` (``False``): the upper-bound setting. When ``True`` each page ends with
      the user's true (hidden) utilities for the candidates (a line starting with
      :data:`~arenagym.envs.recinter.pages.UTILITIES_PREFIX`), so that
      :class:`~arenagym.envs.recinter.baselines.OracleAgent` measures the best achievable return;
      only an explicit constructor argument opens it (the suite's ``recommender-upper-bound``
      task), never a default or a process-wide switch.
    * ``max_turns``, ``max_invalid_actions`` (3), ``invalid_action_penalty`` (0.1),
      ``render_mode``.

    ## Examples
    >>> import gymnasium as gym
    >>> import arenagym.envs.recinter
    >>> env = gym.make("RecInter-v0", rounds=1, sessions=2)
    >>> observation, info = env.reset(seed=0)
    >>> observation.startswith("Round 1/1, session 1/2, page 1/2. User u")
    True
    >>> best = ", ".join(f"i{i:03d}" for i in info["page"]["candidates"][:4])
    >>> observation, reward, terminated, truncated, info = env.step(best)
    >>> reward in (0.0, 0.1, 0.3, 1.1, 1.3) and not info["invalid_action"]
    True
    >>> env.step("no ids here")[4]["invalid_action"]
    True
    """

    def __init__(
        self,
        rounds: int = 3,
        sessions: int = 8,
        background_sessions: int = 20,
        world: dict[str, Any] | None = None,
        reward_weights: dict[str, float] | None = None,
        reveal_utilities: bool = False,
        max_turns: int | None = None,
        max_invalid_actions: int = 3,
        invalid_action_penalty: float = 0.1,
        render_mode: str | None = None,
    ) -> None:
        for name, value in (("rounds", rounds), ("sessions", sessions)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if not isinstance(background_sessions, int) or background_sessions < 0:
            raise ValueError(f"background_sessions must be an int >= 0, got {background_sessions!r}")
        self.config = world_config(world)
        if sessions + background_sessions > self.config.n_users:
            raise ValueError("sessions + background_sessions must not exceed world n_users")
        self.reward_weights = resolve_reward_weights(reward_weights)
        self.rounds, self.sessions, self.background_sessions = rounds, sessions, background_sessions
        if not isinstance(reveal_utilities, bool):
            raise ValueError(f"reveal_utilities must be a bool, got {reveal_utilities!r}")
        self.reveal_utilities = reveal_utilities
        pages = rounds * sessions * self.config.pages_per_session
        super().__init__(
            max_turns=pages if max_turns is None else max_turns,
            invalid_action_penalty=invalid_action_penalty,
            max_invalid_actions=max_invalid_actions,
            max_action_length=65_536,
            max_observation_length=65_536,
            render_mode=render_mode,
        )
        self.world: World | None = None
        self._users: list[int] = []
        self._session = 0
        self._page_index = 0
        self._page: Page | None = None

    # ------------------------------------------------------------------------ episodes
    def _start_episode(self, options: dict[str, Any] | None) -> Episode:
        seed = int(self.np_random.integers(2**31 - 1))
        self.world = World(self.config, seed)
        self._start_round()
        weights = self.reward_weights
        system_prompt = (
            "You are the recommender of an online marketplace. For each page you see a shopper's "
            "profile, recent history and candidate items with their live statistics. Reply with "
            f"the ids of {self.config.slate_size} candidates, best first, separated by commas. "
            "The shopper clicks at most one item per page and may leave; you earn "
            f"{weights['purchase']:g} per purchase, {weights['like']:g} per like and "
            f"{weights['click']:g} per click."
        )
        return Episode(
            task_id=f"recinter/{seed:010d}",
            system_prompt=system_prompt,
            prompt=self._page_text(),
            info={"page": self._page.as_dict(), "world_seed": seed},
        )

    def _start_round(self) -> None:
        assert self.world is not None
        self._users = [int(u) for u in self.world.session_users(self.sessions)]
        self._session = 0
        self._page_index = 0
        self._new_page()

    def _new_page(self) -> None:
        assert self.world is not None
        user = self._users[self._session]
        self._page = self.world.page(
            user, self.world.sample_candidates(), self._page_index, self.reveal_utilities
        )

    def _page_text(self) -> str:
        assert self.world is not None and self._page is not None
        header = (
            f"Round {self.world.round + 1}/{self.rounds}, session {self._session + 1}/"
            f"{self.sessions}, page {self._page_index + 1}/{self.config.pages_per_session}"
        )
        return render_page(self.world, self._page, header)

    # --------------------------------------------------------------------------- steps
    def _respond(self, action: str) -> Turn | InvalidAction:
        assert self.world is not None and self._page is not None
        page, k = self._page, self.config.slate_size
        allowed = {int(i) for i in page.candidates}
        slate: list[int] = []
        ignored: list[str] = []
        for item in item_ids(action):
            if item in allowed and item not in slate and len(slate) < k:
                slate.append(item)
            elif item not in allowed or item in slate:
                ignored.append(item_label(item))
        if not slate:
            example = ", ".join(item_label(int(i)) for i in page.candidates[:k])
            return InvalidAction(
                f"no id from the candidate list was found; reply with {k} candidate ids, best "
                f"first, e.g. {example}",
                info={"page": page.as_dict()},
            )
        outcome = self.world.show(page.user, slate, self._page_index)
        components = page_reward_components(outcome, self.reward_weights)
        lines = [outcome_text(page.user, outcome)]
        if ignored:
            lines.append(f"(ignored ids not on the page or repeated: {', '.join(ignored)})")
        info: dict[str, Any] = {"slate": slate, "ignored_ids": ignored, "outcome": outcome}
        self._page_index += 1
        if outcome.exited or self._page_index >= self.config.pages_per_session:
            self._session += 1
            self._page_index = 0
        if self._session >= self.sessions:
            self._finish_round(info, lines)
            if self.world.round >= self.rounds:
                return Turn("\n".join(lines), components, terminated=True,
                            stop_reason="completed", info=info)
            self._start_round()
        else:
            self._new_page()
        info["page"] = self._page.as_dict()
        lines.append(self._page_text())
        return Turn("\n".join(lines), components, info=info)

    def _finish_round(self, info: dict[str, Any], lines: list[str]) -> dict[str, float]:
        assert self.world is not None
        scorer = PopularityScorer()
        for user in self.world.session_users(self.background_sessions):
            if int(user) not in self._users:
                self.world.run_session(int(user), scorer)
        metrics = self.world.end_round()
        info["metrics"] = metrics
        lines.append(
            f"Round {int(metrics['round']) + 1} done: CTR {metrics['ctr']:.2f}, conversion "
            f"{metrics['conversion']:.2f}, sales Gini {metrics['sales_gini']:.3f}."
        )
        return metrics


def slate_from_scores(page: Page, scores: np.ndarray, k: int) -> str:
    """The action text for the ``k`` best-scored candidates."""
    order = np.argsort(-np.asarray(scores, dtype=float), kind="stable")[:k]
    return ", ".join(item_label(int(page.candidates[i])) for i in order)
