"""RecInterUser-v0: the agent plays a shopper and is scored against the hidden user model.

The simulation-credibility task of RecInter / Agent4Rec: given a user's visible profile, recent
history and a page of items, act as that user would. On the same page the hidden user model acts
(a seeded draw from its choice, purchase, rating and review model) and the agent's answer is
compared with it:

- ``exit``: 1 when the agent's exit decision (``CLICK: none``) equals the model's (it left the
  page without clicking), else 0;
- ``purchase_f1``: F1 of the bought item sets (both empty: 1); the agent can only buy the item it
  clicked;
- ``rating``: ``1 - |agent rating - model rating| / 4`` when both bought (else not applicable);
- ``review``: half keyword Jaccard overlap, half length agreement ``min/max`` of word counts,
  when the model wrote a review (else not applicable).

The page reward is the mean of the applicable components, divided by the number of pages.

Example:
    >>> parse_user_answer("CLICK: i003\\nBUY: i003\\nRATING: 4\\nREVIEW: Great quality.")
    UserAnswer(clicked=3, bought={3}, rating=4, review='Great quality.')
    >>> parse_user_answer("CLICK: none").exited
    True
    >>> f1({1, 2}, {2}), f1(set(), set())
    (0.6667, 1.0)
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

import numpy as np

from arenagym.envs.core.text_env import Episode, InvalidAction, TextEnv, Turn
from arenagym.envs.recinter.env import world_config
from arenagym.envs.recinter.pages import item_ids, render_candidates, render_history
from arenagym.envs.recinter.profile import compute_profile
from arenagym.envs.recinter.simulator import World
from arenagym.envs.recinter.text import item_label, review_keywords, user_label, words

_CLICK = re.compile(r"^\s*CLICK\s*:\s*(.*)$", re.IGNORECASE | re.MULTILINE)
_BUY = re.compile(r"^\s*BUY\s*:\s*(.*)$", re.IGNORECASE | re.MULTILINE)
_RATING = re.compile(r"^\s*RATING\s*:\s*([1-5])\b", re.IGNORECASE | re.MULTILINE)
_REVIEW = re.compile(r"^\s*REVIEW\s*:\s*(.*)$", re.IGNORECASE | re.MULTILINE)


def f1(predicted: set[int], actual: set[int]) -> float:
    """F1 of two sets (1.0 when both are empty)."""
    if not predicted and not actual:
        return 1.0
    hits = len(predicted & actual)
    if hits == 0:
        return 0.0
    precision, recall = hits / len(predicted), hits / len(actual)
    return round(2 * precision * recall / (precision + recall), 4)


class UserAnswer(NamedTuple):
    """What the agent says the shopper does on a page (``clicked``: ``None`` when they exit)."""

    clicked: int | None
    bought: set[int]
    rating: int | None
    review: str

    @property
    def exited(self) -> bool:
        """Whether the shopper leaves the page without clicking."""
        return self.clicked is None


def parse_user_answer(action: str) -> UserAnswer | None:
    """The answer in ``CLICK:``/``BUY:``/``RATING:``/``REVIEW:`` lines, or None without a usable
    ``CLICK:`` line (one item id, or ``none`` to leave the page).

    Only the clicked item can be bought: other ids on the ``BUY:`` line are dropped.
    """
    click = _CLICK.findall(action)
    if not click:
        return None
    target = click[-1].strip()
    ids = item_ids(target)
    if target.lower().rstrip(".") in ("none", "exit", "leave"):
        clicked = None
    elif len(ids) == 1:
        clicked = ids[0]
    else:
        return None
    buy = _BUY.findall(action)
    bought = set(item_ids(buy[-1])) & {clicked} if buy and clicked is not None else set()
    rating = _RATING.findall(action)
    review = _REVIEW.findall(action)
    return UserAnswer(clicked, bought, int(rating[-1]) if rating else None,
                      review[-1].strip() if review else "")


class RecInterUserEnv(TextEnv):
    r"""Act as a simulated shopper given their profile; scored against the hidden user model.

    ## Description
    A RecInter marketplace (:mod:`arenagym.envs.recinter.simulator`) is drawn; one user with at
    least a few past clicks is picked. For each of ``pages`` pages (items ranked by popularity)
    the agent says what this user does; the hidden user model acts on the same page, and the
    answers are compared (see the module docstring).

    ## Action Space
    :class:`~arenagym.envs.core.spaces.UnicodeText` with lines ``CLICK: i012`` (or
    ``CLICK: none``: the shopper leaves the page, the exit decision), then for a click
    ``BUY: i012`` or ``BUY: none``, ``RATING: 1-5`` (for a purchase) and ``REVIEW: text``
    (optional). An answer without a ``CLICK:`` line naming one page item or ``none`` is invalid.

    ## Observation Space
    :class:`~arenagym.envs.core.spaces.UnicodeText`: the user's profile and history, then the
    page; after a step, what the simulated user really did.

    ## Rewards
    ``credibility``: the mean of the applicable components of the page, divided by ``pages``
    (an episode's return is in [0, 1]); ``info`` holds each component.

    ## Starting State
    A marketplace and a user from the reset seed.

    ## Episode End
    ``completed`` after ``pages`` answers; ``invalid_action`` after too many unreadable ones.

    ## Arguments
    ``pages`` (3), ``world`` (WorldConfig fields), ``max_turns``, ``max_invalid_actions`` (3),
    ``invalid_action_penalty`` (0.1), ``render_mode``.

    ## Examples
    >>> import gymnasium as gym
    >>> import arenagym.envs.recinter
    >>> env = gym.make("RecInterUser-v0", pages=1)
    >>> observation, info = env.reset(seed=0)
    >>> "Profile:" in observation
    True
    >>> _, reward, terminated, _, info = env.step("CLICK: none")
    >>> 0.0 <= reward <= 1.0 and terminated and info["components"]["exit"] in (0.0, 1.0)
    True
    """

    def __init__(self, pages: int = 3, world: dict[str, Any] | None = None,
                 max_turns: int | None = None, max_invalid_actions: int = 3,
                 invalid_action_penalty: float = 0.1, render_mode: str | None = None) -> None:
        if not isinstance(pages, int) or pages < 1:
            raise ValueError(f"pages must be an int >= 1, got {pages!r}")
        self.config = world_config(world)
        self.pages = pages
        super().__init__(max_turns=pages if max_turns is None else max_turns,
                         invalid_action_penalty=invalid_action_penalty,
                         max_invalid_actions=max_invalid_actions, render_mode=render_mode)
        self.world: World | None = None
        self.user = 0
        self._page_index = 0
        self._slate: tuple[int, ...] = ()

    def _start_episode(self, options: dict[str, Any] | None) -> Episode:
        seed = int(self.np_random.integers(2**31 - 1))
        self.world = World(self.config, seed)
        lengths = np.array([len(h) for h in self.world.history])
        eligible = np.flatnonzero(lengths >= 3)
        pool = eligible if eligible.size else np.arange(self.config.n_users)
        self.user = int(pool[int(self.np_random.integers(pool.size))])
        self._page_index = 0
        self._new_page()
        system_prompt = (
            "You play a shopper in an online marketplace. From the shopper's profile and history, "
            "decide what they do on each page: a line 'CLICK: <id>' for the one item they open, "
            "or 'CLICK: none' if they leave the page; then 'BUY: <id>' or 'BUY: none', "
            "'RATING: <1-5>' for a purchase and 'REVIEW: <text>' if they would review it. You "
            "are scored on matching the real shopper."
        )
        return Episode(task_id=f"recinter-user/{seed:010d}/{self.user}",
                       system_prompt=system_prompt, prompt=self._page_text(),
                       info={"user": user_label(self.user)})

    def _new_page(self) -> None:
        assert self.world is not None
        page = self.world.page(self.user, self.world.sample_candidates(), self._page_index)
        order = np.argsort(-page.popularity, kind="stable")[: self.config.slate_size]
        self._slate = tuple(int(page.candidates[i]) for i in order)
        self._page = self.world.page(self.user, np.array(self._slate), self._page_index)

    def _page_text(self) -> str:
        assert self.world is not None
        texts = {r.review_id: r.text for r in self.world.reviews}
        profile = compute_profile(self.world.history[self.user], self.world.categories,
                                  self.world.item_category, texts)
        return "\n".join([
            f"Page {self._page_index + 1}/{self.pages}. You are {user_label(self.user)}.",
            f"Profile: {profile.text()}",
            f"Recent history: {render_history(self.world, self.user)}",
            "The page shows, in this order:",
            render_candidates(self.world, self._page),
            "Answer with 'CLICK: <id or none>', 'BUY: <id or none>', 'RATING: <1-5>', "
            "'REVIEW: <text>'.",
        ])

    def _respond(self, action: str) -> Turn | InvalidAction:
        assert self.world is not None
        parsed = parse_user_answer(action)
        example = item_label(self._slate[0])
        if parsed is None or (parsed.clicked is not None and parsed.clicked not in self._slate):
            return InvalidAction(
                "no usable 'CLICK:' line; answer 'CLICK: <one id of the page>' (e.g. 'CLICK: "
                f"{example}') or 'CLICK: none' to leave, then 'BUY: {example}' or 'BUY: none', "
                "'RATING: 4' and 'REVIEW: ...' for a purchase"
            )
        bought, rating, review = parsed.bought, parsed.rating, parsed.review
        outcome = self.world.show(self.user, self._slate, self._page_index)
        actual = {outcome.clicked} if outcome.purchased and outcome.clicked is not None else set()
        components: dict[str, float] = {
            "exit": float(parsed.exited == outcome.exited),
            "purchase_f1": f1(bought, actual),
        }
        if actual and bought and rating is not None and outcome.rating is not None:
            components["rating"] = 1.0 - abs(rating - outcome.rating) / 4.0
        if outcome.review is not None:
            mine, theirs = review_keywords(review), review_keywords(outcome.review.text)
            overlap = len(mine & theirs) / len(mine | theirs) if mine | theirs else 1.0
            a, b = len(words(review)), len(words(outcome.review.text))
            components["review"] = 0.5 * overlap + 0.5 * (min(a, b) / max(a, b) if max(a, b) else 1.0)
        score = float(np.mean(list(components.values()))) / self.pages
        from arenagym.envs.recinter.env import outcome_text

        lines = [f"The real shopper: {outcome_text(self.user, outcome)}"]
        self._page_index += 1
        done = self._page_index >= self.pages
        if not done:
            self._new_page()
            lines.append(self._page_text())
        return Turn("\n".join(lines), {"credibility": round(score, 6)}, terminated=done,
                    stop_reason="completed" if done else None, info={"components": components})
