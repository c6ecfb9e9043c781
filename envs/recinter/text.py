"""The vocabulary of the RecInter marketplace and its templated texts (reviews, names).

Everything a simulated person or merchant writes comes from these templates, so that a review's
keywords and sentiment can be read back exactly (see :func:`review_keywords`) and an agent's
review can be compared with the hidden user model's on the same terms.

Example:
    >>> import numpy as np
    >>> text = render_review(np.random.default_rng(0), rating=1, aspect="delivery", n_sentences=2)
    >>> "delivery" in review_keywords(text)
    True
    >>> review_sentiment_band(1), review_sentiment_band(3), review_sentiment_band(5)
    ('negative', 'neutral', 'positive')
"""

from __future__ import annotations

import re

import numpy as np

#: Product categories (a world uses the first ``n_categories``).
CATEGORIES: tuple[str, ...] = (
    "electronics", "books", "home", "beauty", "sports", "toys", "fashion", "grocery",
)  # fmt: skip
#: Scenario tags: what an item is for; users weigh them by their scenario preferences.
SCENARIOS: tuple[str, ...] = ("gift", "daily-use", "travel", "work", "outdoor", "budget")
#: Descriptive tags per category (two per item).
CATEGORY_TAGS: dict[str, tuple[str, ...]] = {
    "electronics": ("wireless", "compact", "fast-charging", "noise-cancelling", "smart"),
    "books": ("bestseller", "illustrated", "hardcover", "classic", "debut"),
    "home": ("minimalist", "stackable", "eco", "handmade", "ceramic"),
    "beauty": ("vegan", "fragrance-free", "organic", "travel-size", "spf"),
    "sports": ("lightweight", "waterproof", "breathable", "foldable", "pro"),
    "toys": ("wooden", "educational", "stem", "plush", "puzzle"),
    "fashion": ("cotton", "slim-fit", "recycled", "linen", "vintage"),
    "grocery": ("gluten-free", "fair-trade", "spicy", "bulk", "artisan"),
}
#: What a review is about; a merchant reply should address the same aspect.
ASPECTS: tuple[str, ...] = (
    "quality", "price", "delivery", "packaging", "service", "design", "durability",
)  # fmt: skip
#: Words that count as addressing an aspect (the aspect itself, and close synonyms).
ASPECT_SYNONYMS: dict[str, tuple[str, ...]] = {
    "quality": ("quality", "build", "material", "made"),
    "price": ("price", "cost", "value", "expensive", "cheap"),
    "delivery": ("delivery", "shipping", "courier", "arrived", "late"),
    "packaging": ("packaging", "package", "box", "wrapped", "packed"),
    "service": ("service", "support", "staff", "help"),
    "design": ("design", "look", "style", "colour", "color"),
    "durability": ("durability", "durable", "broke", "lasted", "wear"),
}
#: Brand names (a world uses the first ``n_merchants``).
MERCHANT_NAMES: tuple[str, ...] = (
    "Acme", "Borealis", "Cobalt", "Dune", "Ember", "Fjord", "Glint", "Harbor",
    "Ionic", "Juniper", "Kestrel", "Lumen", "Maple", "Nimbus", "Orchid", "Pioneer",
)  # fmt: skip

_SENTENCES: dict[str, tuple[str, ...]] = {
    "positive": (
        "Really happy with the {aspect}.",
        "The {aspect} is excellent.",
        "Great value, I would buy it again.",
        "Exactly as described, the {aspect} is superb.",
        "Highly recommended for {scenario}.",
    ),
    "neutral": (
        "The {aspect} is okay.",
        "Decent, nothing special about the {aspect}.",
        "It does the job for {scenario}.",
        "Average {aspect}, fair overall.",
    ),
    "negative": (
        "Disappointed with the {aspect}.",
        "The {aspect} was poor.",
        "I would not buy it again.",
        "Terrible {aspect}, a waste of money.",
        "Not suitable for {scenario} at all.",
    ),
}
#: Sentiment words that a review may contain; with the aspects they form the keyword vocabulary.
SENTIMENT_WORDS: tuple[str, ...] = (
    "happy", "excellent", "great", "superb", "recommended", "okay", "decent", "average",
    "fair", "disappointed", "poor", "terrible", "waste",
)  # fmt: skip
KEYWORDS: frozenset[str] = frozenset(ASPECTS) | frozenset(SENTIMENT_WORDS)
_WORD = re.compile(r"[a-z]+(?:-[a-z]+)*")


def review_sentiment_band(rating: int) -> str:
    """``negative`` for ratings 1-2, ``neutral`` for 3, ``positive`` for 4-5."""
    return "negative" if rating <= 2 else "neutral" if rating == 3 else "positive"


def render_review(
    rng: np.random.Generator,
    rating: int,
    aspect: str,
    n_sentences: int,
    scenario: str = "daily-use",
) -> str:
    """A templated review of ``n_sentences`` sentences whose sentiment follows ``rating``.

    The first sentence always names ``aspect``; the rest are drawn without repetition.
    """
    pool = _SENTENCES[review_sentiment_band(rating)]
    with_aspect = [s for s in pool if "{aspect}" in s]
    first = with_aspect[int(rng.integers(len(with_aspect)))]
    rest = [s for s in pool if s != first]
    count = max(0, min(len(rest), n_sentences - 1))
    picks = [rest[int(i)] for i in rng.permutation(len(rest))[:count]]
    return " ".join(s.format(aspect=aspect, scenario=scenario) for s in (first, *picks))


def words(text: str) -> list[str]:
    """Lower-case words of ``text`` (hyphenated words kept whole)."""
    return _WORD.findall(text.lower())


def review_keywords(text: str) -> set[str]:
    """The words of ``text`` that belong to the review keyword vocabulary :data:`KEYWORDS`."""
    return {word for word in words(text) if word in KEYWORDS}


def item_label(item: int) -> str:
    """The text id of item ``item`` (``i007``)."""
    return f"i{item:03d}"


def user_label(user: int) -> str:
    """The text id of user ``user`` (``u0042``)."""
    return f"u{user:04d}"
