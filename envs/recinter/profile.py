"""A simulated user's visible profile, computed from their history (RecInter / Agent4Rec style).

The hidden parameters of a user are never shown; what agents see is this profile, recomputed from
the user's interaction history with these formulas (``H``: the history's clicks):

- ``activity`` = ``len(H)``, with a level: ``low`` (< 5), ``medium`` (< 12) or ``high``;
- ``conformity`` = ``1 - mean(|rating - item rating at the time|) / 4`` over rated clicks;
- ``consistency`` = the share of clicks in the user's two most-clicked categories;
- ``top_categories``: the three most-clicked categories (ties: first clicked first);
- ``top_items``: up to three purchased items, highest rating first (ties: most recent first);
- ``average_rating``; ``review_probability`` = reviews / ratings;
- ``review_length`` = the mean number of words per review; ``top_keywords``: the five most
  frequent review keywords (ties: alphabetical).

Example:
    >>> from arenagym.envs.recinter.simulator import Interaction
    >>> history = [Interaction(0, 3, True, True, 4, None, 3.5), Interaction(0, 5, False, False)]
    >>> profile = compute_profile(history, categories=["books", "home"], item_category=[0] * 6,
    ...                           review_texts={})
    >>> profile.activity, profile.conformity, profile.average_rating, profile.top_items
    (2, 0.875, 4.0, (3,))
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from arenagym.envs.recinter.simulator import Interaction
from arenagym.envs.recinter.text import item_label, review_keywords, words


@dataclass(frozen=True)
class Profile:
    """The visible profile of a user (see the module docstring for each formula)."""

    activity: int
    activity_level: str
    conformity: float | None
    consistency: float | None
    top_categories: tuple[str, ...]
    top_items: tuple[int, ...]
    average_rating: float | None
    review_probability: float | None
    review_length: float | None
    top_keywords: tuple[str, ...]

    def text(self) -> str:
        """The templated one-paragraph profile shown to agents."""
        parts = [f"A {self.activity_level}-activity shopper ({self.activity} past clicks)"]
        if self.top_categories:
            parts.append(f"mostly browsing {', '.join(self.top_categories)}")
        text = ", ".join(parts) + "."
        if self.consistency is not None:
            text += f" Consistency {self.consistency:.2f}."
        if self.average_rating is not None:
            text += f" Average rating given {self.average_rating:.2f}"
            if self.conformity is not None:
                text += f", conformity with the crowd {self.conformity:.2f}"
            text += "."
        if self.review_probability is not None:
            text += f" Reviews {self.review_probability:.0%} of purchases"
            if self.review_length is not None:
                text += f", about {self.review_length:.0f} words each"
            text += "."
        if self.top_keywords:
            text += f" Review keywords: {', '.join(self.top_keywords)}."
        if self.top_items:
            text += f" Favourite items: {', '.join(item_label(i) for i in self.top_items)}."
        return text


def activity_level(count: int) -> str:
    """``low`` below 5 clicks, ``medium`` below 12, else ``high``."""
    return "low" if count < 5 else "medium" if count < 12 else "high"


def compute_profile(
    history: Sequence[Interaction],
    categories: Sequence[str],
    item_category: Sequence[int] | np.ndarray,
    review_texts: Mapping[int, str],
) -> Profile:
    """The profile of a user with ``history``; ``review_texts`` maps review ids to their text."""
    counts = Counter(int(item_category[h.item]) for h in history)
    ranked = [k for k, _ in counts.most_common()]
    rated = [h for h in history if h.rating is not None]
    deviations = [
        abs(h.rating - h.item_rating_at_time)
        for h in rated
        if h.rating is not None and h.item_rating_at_time is not None
    ]
    purchases = sorted(
        ((h.rating or 0, index, h.item) for index, h in enumerate(history) if h.purchased),
        key=lambda entry: (-entry[0], -entry[1]),
    )
    top_items: list[int] = []
    for _, _, item in purchases:
        if item not in top_items:
            top_items.append(item)
    reviews = [review_texts[h.review_id] for h in history if h.review_id is not None]
    keyword_counts = Counter(k for text in reviews for k in review_keywords(text))
    top_keywords = sorted(keyword_counts, key=lambda k: (-keyword_counts[k], k))[:5]
    top_two = set(ranked[:2])
    return Profile(
        activity=len(history),
        activity_level=activity_level(len(history)),
        conformity=round(1.0 - float(np.mean(deviations)) / 4.0, 4) if deviations else None,
        consistency=round(sum(counts[k] for k in top_two) / len(history), 4) if history else None,
        top_categories=tuple(categories[k] for k in ranked[:3]),
        top_items=tuple(top_items[:3]),
        average_rating=round(float(np.mean([h.rating for h in rated])), 4) if rated else None,
        review_probability=round(len(reviews) / len(rated), 4) if rated else None,
        review_length=round(float(np.mean([len(words(t)) for t in reviews])), 4)
        if reviews
        else None,
        top_keywords=tuple(top_keywords),
    )
