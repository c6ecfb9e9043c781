"""The bundled post pool: 320 short help-seeking posts, generated from parts written for arenagym.

Each post is one of 40 subjects (tagged with the topic dimension it belongs to, or ``None``) in
one of eight question frames. The pool is fixed (no randomness), so a post index names a post.

Example:
    >>> len(POSTS) >= 300, POSTS[0].text
    (True, 'How should I get started with learning to code?')
    >>> POSTS[0].topic
    'technology'
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Post:
    """A post: its text, the subject it is about, and that subject's topic dimension (or None)."""

    text: str
    subject: str
    topic: str | None


_SUBJECTS: tuple[tuple[str, str | None], ...] = (
    ("learning to code", "technology"),
    ("building a home server", "technology"),
    ("choosing a new laptop", "technology"),
    ("automating my spreadsheets", "technology"),
    ("baking sourdough bread", "cooking"),
    ("meal-prepping for the week", "cooking"),
    ("cooking for a dinner party", "cooking"),
    ("growing my own herbs", "cooking"),
    ("training for a first 10k", "fitness"),
    ("getting back into the gym", "fitness"),
    ("fixing my posture at a desk job", "fitness"),
    ("learning to swim as an adult", "fitness"),
    ("saving for a house deposit", "finance"),
    ("paying off a credit card", "finance"),
    ("starting to invest", "finance"),
    ("negotiating a raise", "finance"),
    ("backpacking through Portugal", "travel"),
    ("a first solo trip", "travel"),
    ("travelling with a dog", "travel"),
    ("planning a road trip", "travel"),
    ("learning the guitar", "music"),
    ("singing in a choir", "music"),
    ("producing music at home", "music"),
    ("reading sheet music", "music"),
    ("understanding black holes", "science"),
    ("starting a backyard telescope hobby", "science"),
    ("helping with a science fair project", "science"),
    ("reading research papers", "science"),
    ("getting a toddler to sleep", "parenting"),
    ("limiting a teenager's screen time", "parenting"),
    ("preparing a child for a new sibling", "parenting"),
    ("balancing work and parenting", "parenting"),
    ("moving to a new city", None),
    ("learning a second language", None),
    ("keeping houseplants alive", None),
    ("writing a novel", None),
    ("making friends as an adult", None),
    ("decluttering a small flat", None),
    ("preparing for a job interview", None),
    ("sleeping better", None),
)

_FRAMES: tuple[str, ...] = (
    "How should I get started with {s}?",
    "I keep failing at {s}. Any advice?",
    "What is the best way to approach {s} on a tight budget?",
    "Is it worth spending my free time on {s}?",
    "A friend says {s} is overrated. What do you think?",
    "I have one free weekend for {s}. What would you do?",
    "What mistakes do beginners make with {s}?",
    "How do I stay motivated with {s}?",
)

POSTS: tuple[Post, ...] = tuple(
    Post(frame.format(s=subject), subject, topic)
    for frame in _FRAMES
    for subject, topic in _SUBJECTS
)
