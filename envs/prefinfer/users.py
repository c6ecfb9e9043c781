"""Simulated PrefInfer users: hidden stances, templated responses, softmax choices, comments.

A user holds a stance in {0, 0.5, 1} on every dimension of
:mod:`~arenagym.envs.prefinfer.dimensions` (2-5 of them non-neutral) and optional weights. A
response is rendered from templates with a known feature value in {0, 0.5, 1} on every dimension
(marker phrases, bullets, topical asides), so its features can be read back exactly with
:func:`detect_features`. The user's utility for a response is ``sum_d w_d * (2 s_d - 1) * f_d``;
between two responses the user picks the first with probability
``(1 - noise) * sigmoid(du / temperature) + noise * (1 - sigmoid(du / temperature))``.

Example:
    >>> import numpy as np
    >>> from arenagym.envs.prefinfer.posts import POSTS
    >>> rng = np.random.default_rng(0)
    >>> user = sample_user(rng)
    >>> 2 <= len(user.active) <= 5
    True
    >>> features = random_features(rng)
    >>> text = render_response(POSTS[0], features, rng)
    >>> bool((detect_features(text) == features).all())
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from arenagym.envs.prefinfer.dimensions import DIMENSIONS, INDEX
from arenagym.envs.prefinfer.posts import Post

N_DIMS = len(DIMENSIONS)
_TOPIC_MASK = np.array([d.topic for d in DIMENSIONS])

_ACTIONS = (
    "start small and build a routine",
    "set one clear goal for the next month",
    "ask someone experienced to look at your plan",
    "track what you do for two weeks and then adjust",
    "block a fixed slot in your calendar for it",
    "pick one resource and stick with it",
)
_STEPS = (
    "write down what you want",
    "choose the first small task",
    "do it three times this week",
    "review what worked",
    "ask for feedback",
    "drop what does not help",
)
_EXAMPLES = (
    "a friend of mine did twenty minutes every morning and kept it up for a year",
    "one reader started with a single weekend and got hooked",
    "my neighbour made a checklist on the fridge and it worked",
)
_DETAILS = (
    "The first weeks are the hardest, because habits take time to form.",
    "It also helps to notice which part you enjoy and lean into it.",
    "Progress is rarely linear, so judge it over months rather than days.",
)


@dataclass(frozen=True)
class User:
    """A simulated user: ``stances`` in {0, 0.5, 1} and ``weights`` (> 0) per dimension."""

    stances: np.ndarray
    weights: np.ndarray

    @property
    def active(self) -> tuple[str, ...]:
        """The names of the non-neutral dimensions."""
        return tuple(DIMENSIONS[i].name for i in np.flatnonzero(self.stances != 0.5))

    def as_dict(self) -> dict[str, float]:
        """The non-neutral stances by dimension name."""
        return {
            DIMENSIONS[i].name: float(self.stances[i]) for i in np.flatnonzero(self.stances != 0.5)
        }

    def utility(self, features: np.ndarray) -> float:
        """How much the user likes a response with these features."""
        return float(np.sum(self.weights * (2 * self.stances - 1) * features))


def sample_user(
    rng: np.random.Generator,
    min_active: int = 2,
    max_active: int = 5,
    candidates: tuple[str, ...] | None = None,
    weighted: bool = False,
) -> User:
    """A user with ``min_active``-``max_active`` poles among ``candidates`` (default: all dims)."""
    pool = [INDEX[name] for name in candidates] if candidates else list(range(N_DIMS))
    count = int(rng.integers(min_active, min(max_active, len(pool)) + 1))
    chosen = rng.choice(pool, size=count, replace=False)
    stances = np.full(N_DIMS, 0.5)
    stances[chosen] = rng.integers(0, 2, size=count).astype(float)
    weights = np.ones(N_DIMS)
    if weighted:
        weights[chosen] = rng.choice([0.5, 1.0, 2.0], size=count)
    return User(stances, weights)


def shift_user(rng: np.random.Generator, user: User) -> User:
    """The same user after a preference shift: 1-2 poles flip, and maybe one new pole appears."""
    stances = user.stances.copy()
    active = np.flatnonzero(stances != 0.5)
    flips = rng.choice(active, size=min(len(active), int(rng.integers(1, 3))), replace=False)
    stances[flips] = 1.0 - stances[flips]
    neutral = np.flatnonzero(stances == 0.5)
    if len(active) < 5 and len(neutral) and rng.random() < 0.5:
        stances[int(rng.choice(neutral))] = float(rng.integers(0, 2))
    return User(stances, user.weights.copy())


def random_features(rng: np.random.Generator) -> np.ndarray:
    """Features of a random response: style 0/0.5/1 (p = .25/.5/.25), topic asides with p = .15."""
    style = rng.choice([0.0, 0.5, 1.0], size=N_DIMS, p=[0.25, 0.5, 0.25])
    topic = (rng.random(N_DIMS) < 0.15).astype(float)
    return np.where(_TOPIC_MASK, topic, style)


def change_feature(rng: np.random.Generator, features: np.ndarray, dim: int) -> None:
    """Set ``features[dim]`` to another allowed value (in place)."""
    if _TOPIC_MASK[dim]:
        features[dim] = 1.0 - features[dim]
    else:
        features[dim] = float(rng.choice([v for v in (0.0, 0.5, 1.0) if v != features[dim]]))


def choice_probability(
    user: User, first: np.ndarray, second: np.ndarray, temperature: float, noise: float
) -> float:
    """The probability that ``user`` chooses the response with features ``first``."""
    delta = user.utility(first) - user.utility(second)
    sigma = 1.0 / (1.0 + math.exp(-delta / temperature)) if temperature > 0 else float(delta > 0)
    if temperature <= 0 and delta == 0:
        sigma = 0.5
    return (1 - noise) * sigma + noise * (1 - sigma)


def comment_features(rng: np.random.Generator, user: User, fidelity: float = 0.8) -> np.ndarray:
    """Features of a comment the user writes: near their stances, random where they are neutral."""
    features = random_features(rng)
    for i in np.flatnonzero(user.stances != 0.5):
        stance = user.stances[i]
        if _TOPIC_MASK[i]:
            features[i] = stance * float(rng.random() < fidelity)
        else:
            features[i] = stance if rng.random() < fidelity else 0.5
    return features


def render_response(post: Post, features: np.ndarray, rng: np.random.Generator) -> str:
    """A response to ``post`` whose markers show exactly ``features`` (see the module docstring)."""

    def marker(name: str) -> str | None:
        dim = DIMENSIONS[INDEX[name]]
        value = features[INDEX[name]]
        options = dim.high_markers if value == 1 else dim.low_markers if value == 0 else ()
        return str(options[int(rng.integers(len(options)))]) if options else None

    action = _ACTIONS[int(rng.integers(len(_ACTIONS)))]
    parts: list[str] = []
    for name in ("formality", "warmth", "humour"):
        if (text := marker(name)) is not None:
            parts.append(text if not text.endswith(",") else f"{text} this deserves attention.")
    core = f"My main suggestion for {post.subject} is to {action}."
    if features[INDEX["verbosity"]] == 0:
        core = f"In short: {core}"
    parts.append(core)
    if features[INDEX["directness"]] == 1:
        parts.append(f"Bottom line: {action}.")
    elif (text := marker("directness")) is not None:
        parts.append(text)
    technical = marker("technical_depth")
    if technical is not None:
        parts.append(technical if technical.endswith(".") else f"{technical} keep it simple.")
    if features[INDEX["evidence"]] == 1:
        parts.append("Research suggests that small, regular steps beat big bursts of effort.")
    elif features[INDEX["evidence"]] == 0:
        parts.append("Going by gut feeling, trust your instincts here.")
    if features[INDEX["examples"]] == 1:
        parts.append(f"For example, {_EXAMPLES[int(rng.integers(len(_EXAMPLES)))]}.")
    elif features[INDEX["examples"]] == 0:
        parts.append("In general terms, consistency matters more than intensity.")
    for name in ("optimism", "caution"):
        if (text := marker(name)) is not None:
            parts.append(text)
    steps = [str(s) for s in rng.choice(_STEPS, size=3, replace=False)]
    if features[INDEX["lists"]] == 1:
        parts.append("Steps:" + "".join(f"\n- {s.capitalize()}." for s in steps) + "\n")
    elif features[INDEX["lists"]] == 0:
        parts.append(f"Start to {steps[0]}; after that, {steps[1]}.")
    if features[INDEX["verbosity"]] == 1:
        parts.append("Let me go into more detail. " + " ".join(_DETAILS))
    for dim in DIMENSIONS:
        if dim.topic and features[INDEX[dim.name]] == 1:
            parts.append(dim.high_markers[0])
    if (text := marker("questions")) is not None:
        parts.append(text)
    return " ".join(parts).replace("\n ", "\n").strip()


def detect_features(text: str) -> np.ndarray:
    """The feature vector of a rendered response or comment, read from its markers."""
    features = np.zeros(N_DIMS)
    for i, dim in enumerate(DIMENSIONS):
        if any(m in text for m in dim.high_markers):
            features[i] = 1.0
        elif any(m in text for m in dim.low_markers):
            features[i] = 0.0
        else:
            features[i] = 0.0 if dim.topic else 0.5
    return features
