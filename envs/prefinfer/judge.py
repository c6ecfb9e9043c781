"""Judging a preference description: read stances from it, then predict held-out choices.

Two readers turn a description into stances: :func:`parse_stances_line` reads the machine-readable
line ``STANCES: verbosity=1; humour=0`` (strict mode), and :func:`parse_lexicon` reads free text
with a phrase lexicon (lenient mode): every lexicon phrase votes for its pole, a negation among the
four words before it ("not", "dislikes", "avoids", "rather than", ...) flips the vote, and each
dimension takes the sign of its votes. :func:`describe` writes stances as text the lexicon reads
back exactly.

The exact offline judge (:func:`offline_prediction`) prefers the response with the higher utility
under the read stances (unit weights) and flips a pre-drawn coin on a tie (e.g. no stances at
all), so a description without information scores chance. An LLM judge is any callable
``judge(preference, post, response_a, response_b) -> "A" | "B"``.

Example:
    >>> stances = {"verbosity": 0.0, "humour": 1.0, "cooking": 0.0}
    >>> text = describe(stances)
    >>> text
    'This person prefers concise, brief answers. They enjoy humour and jokes. They are not interested in cooking.'
    >>> parse_lexicon(text) == stances
    True
    >>> parse_lexicon("Not a fan of long answers; likes jokes but avoids technical jargon.")
    {'verbosity': 0.0, 'technical_depth': 0.0, 'humour': 1.0}
    >>> parse_stances_line("blah\\nSTANCES: humour=1; verbosity=0.5, warmth=0")
    ({'humour': 1.0, 'warmth': 0.0}, True)
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np

from arenagym.envs.prefinfer.dimensions import DIMENSION_NAMES, DIMENSIONS, INDEX

#: ``judge(preference, post, response_a, response_b) -> "A" | "B"``.
Judge = Callable[[str, str, str, str], str]

_LINE = re.compile(r"^[ \t*_`]*STANCES[ \t*_`]*:(.*)$", re.IGNORECASE | re.MULTILINE)
_ENTRY = re.compile(r"^\s*([A-Za-z_ -]+?)\s*[=:]\s*(0(?:\.0+)?|0?\.50*|1(?:\.0+)?)\s*$")
_NEGATORS = frozenset(
    [
        "not",
        "no",
        "never",
        "dislike",
        "dislikes",
        "disliked",
        "avoid",
        "avoids",
        "avoiding",
        "hate",
        "hates",
        "without",
        "less",
        "little",
        "neither",
        "nor",
        "against",
        "isn't",
        "doesn't",
        "don't",
        "didn't",
        "won't",
        "nothing",
    ]
)
_NEGATING_PAIRS = ("rather than", "instead of", "not a fan", "tired of", "put off")
_CLAUSE = re.compile(r"[.;,!?\n]|\bbut\b|\bwhile\b|\bwhereas\b|\bthough\b", re.IGNORECASE)
_WORD = re.compile(r"[a-z']+")

# every lexicon phrase as (phrase, dimension index, pole), longest first
_PHRASES: list[tuple[str, int, float]] = sorted(
    [
        (word, i, pole)
        for i, dim in enumerate(DIMENSIONS)
        for pole, words in ((0.0, dim.low_words), (1.0, dim.high_words))
        for word in words
    ],
    key=lambda item: -len(item[0]),
)
_PHRASE_RE = [
    (re.compile(rf"(?<![\w-]){re.escape(p)}(?![\w-])", re.IGNORECASE), i, pole)
    for p, i, pole in _PHRASES
]


def parse_stances_line(text: str) -> tuple[dict[str, float], bool]:
    """Stances from the last ``STANCES:`` line, and whether that line was present and well formed.

    Neutral entries (0.5) are dropped; an empty line (``STANCES:``) is valid and says "no stances".
    """
    lines = _LINE.findall(text)
    if not lines:
        return {}, False
    stances: dict[str, float] = {}
    valid = True
    for entry in re.split(r"[;,]", lines[-1]):
        if not entry.strip():
            continue
        match = _ENTRY.match(entry)
        name = match.group(1).strip().lower().replace(" ", "_").replace("-", "_") if match else ""
        if match is None or name not in INDEX:
            valid = False
            continue
        value = float(match.group(2))
        if value != 0.5:
            stances[name] = value
    return dict(sorted(stances.items(), key=lambda kv: INDEX[kv[0]])), valid


def has_stances_line(text: str) -> bool:
    """Whether ``text`` has a ``STANCES:`` line (well formed or not)."""
    return _LINE.search(text) is not None


def parse_lexicon(text: str) -> dict[str, float]:
    """Stances read from free text with the phrase lexicon (see the module docstring)."""
    votes = np.zeros(len(DIMENSIONS))
    seen = np.zeros(len(DIMENSIONS), dtype=bool)
    for clause in _CLAUSE.split(_LINE.sub(" ", text)):
        lowered = clause.lower()
        taken = [False] * len(lowered)
        for pattern, i, pole in _PHRASE_RE:
            for match in pattern.finditer(lowered):
                if any(taken[match.start() : match.end()]):
                    continue
                taken[match.start() : match.end()] = [True] * (match.end() - match.start())
                before = lowered[: match.start()]
                window = _WORD.findall(before)[-4:]
                negated = any(w in _NEGATORS for w in window) or any(
                    p in " ".join(window) for p in _NEGATING_PAIRS
                )
                sign = 1.0 if pole == 1.0 else -1.0
                votes[i] += -sign if negated else sign
                seen[i] = True
    return {
        DIMENSION_NAMES[i]: 1.0 if votes[i] > 0 else 0.0
        for i in range(len(DIMENSIONS))
        if seen[i] and votes[i] != 0
    }


def describe(stances: dict[str, float]) -> str:
    """A plain-text description of ``stances`` (neutral ones are left out)."""
    sentences = []
    for name, value in sorted(stances.items(), key=lambda kv: INDEX[kv[0]]):
        if value == 0.5:
            continue
        dim = DIMENSIONS[INDEX[name]]
        phrase = dim.high_text if value == 1 else dim.low_text
        if not sentences:
            sentences.append(f"This person {phrase}.")
        else:
            verb, _, rest = phrase.partition(" ")
            verb = {"is": "are", "prefers": "prefer", "likes": "like", "wants": "want"}.get(
                verb, verb.removesuffix("s")
            )
            sentences.append(f"They {verb} {rest}.")
    return " ".join(sentences) or "This person shows no particular preferences."


def format_stances_line(stances: dict[str, float]) -> str:
    """The machine-readable line for ``stances``, e.g. ``STANCES: verbosity=0; humour=1``."""
    entries = [
        f"{name}={value:g}"
        for name, value in sorted(stances.items(), key=lambda kv: INDEX[kv[0]])
        if value != 0.5
    ]
    return "STANCES: " + "; ".join(entries)


def stance_vector(stances: dict[str, float]) -> np.ndarray:
    """``stances`` as a vector over every dimension (0.5 where absent)."""
    vector = np.full(len(DIMENSIONS), 0.5)
    for name, value in stances.items():
        vector[INDEX[name]] = value
    return vector


def offline_prediction(
    stances: np.ndarray, first: np.ndarray, second: np.ndarray, coin: bool
) -> int:
    """0 if the judge predicts the first response was chosen, 1 for the second (``coin`` on ties)."""
    delta = float(np.sum((2 * stances - 1) * (first - second)))
    if delta == 0:
        return 0 if coin else 1
    return 0 if delta > 0 else 1
