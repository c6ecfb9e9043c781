"""RecInterMerchant-v0: the agent is a merchant replying to the new reviews of its items.

The reply rubric is deterministic; each applicable check earns its weight and the quality is the
earned share (in [0, 1]):

- addresses the review's aspect (the aspect or a synonym appears), weight 0.3;
- apologises for a negative review (rating 1-2) / thanks for any other, weight 0.25;
- offers a remedy (refund, replace, exchange, repair, contact us...) for a very negative review
  (rating 1), weight 0.2 (not applicable otherwise);
- no copy-paste: at most 0.8 word-trigram Jaccard similarity with another reply of the episode,
  weight 0.15;
- a sensible length (8-80 words), weight 0.1.

Example:
    >>> reply_quality("We are sorry about the late delivery; we will refund you right away.",
    ...               rating=1, aspect="delivery", earlier=[])
    1.0
    >>> reply_quality("ok", rating=5, aspect="price", earlier=[])
    0.1875
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from arenagym.envs.core.text_env import Episode, InvalidAction, TextEnv, Turn
from arenagym.envs.recinter.env import world_config
from arenagym.envs.recinter.simulator import PopularityScorer, Review, World
from arenagym.envs.recinter.text import ASPECT_SYNONYMS, item_label, words

APOLOGY_WORDS = frozenset({"sorry", "apologise", "apologize", "apologies", "regret"})
THANKS_WORDS = frozenset({"thank", "thanks", "grateful", "appreciate"})
REMEDY_WORDS = frozenset(
    {"refund", "replace", "replacement", "exchange", "repair", "return", "contact", "compensate",
     "voucher", "resend", "fix"}
)  # fmt: skip
#: A merchant's reward per unit its brand sells in a round: the one definition, used by
#: :class:`RecInterMerchantEnv` (``sales_weight``) and by the market's merchant agents
#: (:class:`~arenagym.envs.recinter.market.RecInterMarketEnv`).
DEFAULT_SALES_WEIGHT = 0.1
#: What a merchant writes to answer no review this round.
NO_REPLIES = ("none", "no replies")
#: What a merchant is told when its reply is unreadable.
REPLY_FORMAT_HELP = (
    "no '[r<id>] text' reply block was found; answer reviews as '[r12] Thank you ...' or "
    "write 'none'"
)
#: A ``[r<id>] text`` reply block. Ids have at most 9 digits: a longer number is no review's id,
#: and ``int()`` of thousands of digits raises (CPython's int-conversion limit).
_REPLY = re.compile(r"\[r(\d{1,9})\]\s*(.*?)(?=\[r\d{1,9}\]|\Z)", re.DOTALL)


def _trigrams(text: str) -> set[tuple[str, ...]]:
    tokens = words(text)
    return {tuple(tokens[i : i + 3]) for i in range(max(0, len(tokens) - 2))}


def reply_quality(text: str, rating: int, aspect: str, earlier: list[str]) -> float:
    """The rubric score of one reply (see the module docstring)."""
    tokens = set(words(text))
    checks: list[tuple[float, bool]] = [
        (0.3, bool(tokens & set(ASPECT_SYNONYMS[aspect]))),
        (0.25, bool(tokens & (APOLOGY_WORDS if rating <= 2 else THANKS_WORDS))),
    ]
    if rating == 1:
        checks.append((0.2, bool(tokens & REMEDY_WORDS)))
    grams = _trigrams(text)
    copied = any(
        grams and len(grams & (other := _trigrams(e))) / len(grams | other) > 0.8 for e in earlier
    )
    checks.append((0.15, not copied))
    checks.append((0.1, 8 <= len(text.split()) <= 80))
    total = sum(weight for weight, _ in checks)
    return round(sum(weight for weight, ok in checks if ok) / total, 4)


def parse_replies(action: str) -> dict[int, str]:
    """``[r12] text`` blocks as ``{12: "text"}`` (the first reply to an id wins)."""
    replies: dict[int, str] = {}
    for review_id, text in _REPLY.findall(action):
        if text.strip():
            replies.setdefault(int(review_id), text.strip())
    return replies


class RecInterMerchantEnv(TextEnv):
    r"""Reply to your shop's reviews in a simulated marketplace (RecInter's merchant agents).

    ## Description
    The agent runs one brand of a RecInter marketplace
    (:mod:`arenagym.envs.recinter.simulator`); every round, shoppers browse under a popularity
    recommender, buy, rate and review. The agent sees the new reviews of its items and may reply
    to any of them. A reply's quality comes from a deterministic rubric (see
    :func:`reply_quality`); through the interaction mechanism a reply to a negative review lifts
    the item's sentiment and eases the reviewer's grievance with the brand by that quality,
    which moves later sales.

    ## Action Space
    :class:`~arenagym.envs.core.spaces.UnicodeText`: replies as ``[r12] text`` blocks, one per
    review answered; ``none`` to answer nothing. Replies to ids not listed are ignored.

    ## Observation Space
    :class:`~arenagym.envs.core.spaces.UnicodeText`: the brand, its items, and the new reviews
    (id, item, rating, aspect-bearing text); after a step, each reply's rubric score and the
    round's sales.

    ## Rewards
    ``sales``: ``sales_weight`` (0.1) per unit the brand sold in the round; ``sentiment``: the
    change of the mean review sentiment of its items over the step (replies included).

    ## Starting State
    A new marketplace from the reset seed; the agent's brand is the one with most items; one
    round has already run so that there are reviews to answer.

    ## Episode End
    ``completed`` after ``rounds`` replies; ``invalid_action`` after too many unreadable ones.

    ## Arguments
    ``rounds`` (4), ``sessions`` (30 shopper sessions per round), ``world`` (WorldConfig
    fields), ``sales_weight`` (0.1), ``max_turns``, ``max_invalid_actions`` (3),
    ``invalid_action_penalty`` (0.1), ``render_mode``.

    ## Examples
    >>> import gymnasium as gym
    >>> import arenagym.envs.recinter
    >>> env = gym.make("RecInterMerchant-v0", rounds=2)
    >>> observation, info = env.reset(seed=0)
    >>> observation.splitlines()[0].startswith("You run the brand")
    True
    >>> _, reward, terminated, _, info = env.step("none")
    >>> sorted(info["reward_components"]), terminated
    (['sales', 'sentiment'], False)
    """

    def __init__(self, rounds: int = 4, sessions: int = 30, world: dict[str, Any] | None = None,
                 sales_weight: float = DEFAULT_SALES_WEIGHT, max_turns: int | None = None,
                 max_invalid_actions: int = 3, invalid_action_penalty: float = 0.1,
                 render_mode: str | None = None) -> None:
        if not isinstance(rounds, int) or rounds < 1:
            raise ValueError(f"rounds must be an int >= 1, got {rounds!r}")
        if not isinstance(sessions, int) or sessions < 1:
            raise ValueError(f"sessions must be an int >= 1, got {sessions!r}")
        self.config = world_config(world, sessions_per_round=sessions)
        self.rounds, self.sales_weight = rounds, float(sales_weight)
        super().__init__(max_turns=rounds if max_turns is None else max_turns,
                         invalid_action_penalty=invalid_action_penalty,
                         max_invalid_actions=max_invalid_actions, render_mode=render_mode)
        self.world: World | None = None
        self.merchant = 0
        self._open: list[Review] = []
        self._replies: list[str] = []

    def _start_episode(self, options: dict[str, Any] | None) -> Episode:
        seed = int(self.np_random.integers(2**31 - 1))
        self.world = World(self.config, seed)
        counts = np.bincount(self.world.item_merchant, minlength=self.config.n_merchants)
        self.merchant = int(counts.argmax())
        self.world.hand_over([self.merchant])
        self._replies = []
        self.world.simulate_round(PopularityScorer())
        self._collect()
        name = self.world.merchant_names[self.merchant]
        system_prompt = (
            f"You run the brand {name} in an online marketplace. Each round you see the new "
            "reviews of your items. Reply to any of them as '[r<id>] your reply' blocks (or "
            "'none'). Good replies address the reviewer's point, apologise for problems, offer a "
            "remedy for very bad experiences, are not copy-pasted and are 8-80 words long; they "
            "lift your items' sentiment and win customers back."
        )
        return Episode(task_id=f"recinter-merchant/{seed:010d}", system_prompt=system_prompt,
                       prompt=self._reviews_text(), info={"merchant": name})

    def _collect(self) -> None:
        assert self.world is not None
        ids = self.world.pending_reviews[self.merchant]
        self._open = [self.world.reviews[i] for i in ids]
        ids.clear()

    def _mean_sentiment(self) -> float:
        assert self.world is not None
        items = np.flatnonzero(self.world.item_merchant == self.merchant)
        return float(self.world.sentiment(items).mean()) if items.size else 0.0

    def _reviews_text(self) -> str:
        assert self.world is not None
        name = self.world.merchant_names[self.merchant]
        count = int((self.world.item_merchant == self.merchant).sum())
        lines = [f"You run the brand {name} ({count} items). Round {self.world.round}: "
                 f"{len(self._open)} new review(s)."]
        for r in self._open:
            lines.append(f"[r{r.review_id}] {item_label(r.item)}, rating {r.rating}/5: {r.text}")
        lines.append("Reply as '[r<id>] text' blocks, or 'none'.")
        return "\n".join(lines)

    def _respond(self, action: str) -> Turn | InvalidAction:
        assert self.world is not None
        replies = parse_replies(action)
        if not replies and action.strip().lower().strip(".") not in NO_REPLIES:
            return InvalidAction(REPLY_FORMAT_HELP)
        open_ids = {r.review_id: r for r in self._open}
        before = self._mean_sentiment()
        scores: dict[str, float] = {}
        lines = []
        for review_id, text in replies.items():
            review = open_ids.get(review_id)
            if review is None:
                lines.append(f"[r{review_id}] is not one of your new reviews; ignored.")
                continue
            quality = reply_quality(text, review.rating, review.aspect, self._replies)
            self._replies.append(text)
            self.world.reply(review_id, text, quality)
            scores[f"r{review_id}"] = quality
            lines.append(f"[r{review_id}] reply quality {quality:.2f}.")
        sold_before = int(self.world.sold[self.world.item_merchant == self.merchant].sum())
        metrics = self.world.simulate_round(PopularityScorer())
        sold = int(self.world.sold[self.world.item_merchant == self.merchant].sum()) - sold_before
        components = {"sales": self.sales_weight * sold,
                      "sentiment": round(self._mean_sentiment() - before, 6)}
        lines.append(f"Your brand sold {sold} unit(s) this round.")
        self._collect()
        done = self.world.round > self.rounds
        info = {"reply_quality": scores, "sold": sold, "metrics": metrics}
        if not done:
            lines.append(self._reviews_text())
        return Turn("\n".join(lines), components, terminated=done,
                    stop_reason="completed" if done else None, info=info)
