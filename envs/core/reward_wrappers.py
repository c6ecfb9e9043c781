"""Reward transforms shared by every family: flip noise, the reasoning-pattern reward (RPR), and
reward-model calibration — after "The Climb Carves Wisdom Deeper Than the Summit: On the Noisy
Rewards in Learning to Reason" (Lv et al., 2025).

A clean verifier scores; these functions transform its score. Noise coins are hashes of a noise
seed and a key (:func:`flip_coin`): whoever computes a reward gives each computation its own key
(an env draws one per episode and counts turns; the trainer derives them from its run seed, step
and trajectory index), so every reward is flipped independently, yet a run is reproducible.

The RPR and its repetition penalty follow the paper's released code, ``think_reward`` and
``calculate_ngram_repetition_ratio`` in ``verl/verl/utils/reward_score/math_score.py`` of
https://github.com/trestad/Noisy-Rewards-in-Learning-to-Reason (commit 083f72b).

Example:
    >>> text = "First, we need to factor. Wait, let me check: thus x = 2."
    >>> sorted(reasoning_pattern_hits(text))
    ['first, ', 'let me check', 'thus', 'wait', 'we need to']
    >>> reasoning_pattern_score(text)
    0.25
    >>> flip_coin(0.0, noise_seed=0, key="task-1"), flip_coin(1.0, noise_seed=0, key="task-1")
    (False, True)
    >>> calibrate_reward_model(0.3, rpr=0.5, threshold=0.5, alpha=0.1)
    0.35
"""

from __future__ import annotations

import hashlib
from collections import Counter

#: The 40 key reasoning phrases of the paper, matched case-insensitively by presence (not count).
#: Trailing spaces are part of some phrases, as in the paper's list.
REASONING_PHRASES: tuple[str, ...] = (
    "i need to", "we need to", "wait", "alternatively", "let me check", "let me see",
    "let's focus on", "we know that", "we can observe ", "we can see ", "let me try", "let's try",
    "let us try", "first, ", "firstly, ", "next, ", "finally, ", "let us first", "let's first",
    "let me first", "try again", "still not", "not working", "not correct", "does not work",
    "doesn't work", "makes sence", "since we ", "because we ", "consequently", "as a result",
    "thus", "therefore", "hence", "so that", "thereby", "if we", "given there ", "for instance ",
    "for example ",
)  # fmt: skip


def reasoning_pattern_hits(text: str) -> set[str]:
    """The phrases of :data:`REASONING_PHRASES` that occur in ``text`` (case-insensitive)."""
    lowered = text.lower()
    return {phrase for phrase in REASONING_PHRASES if phrase in lowered}


def repeated_ngram_ratio(text: str, n: int = 20) -> float:
    """The reference repetition ratio: distinct ``n``-grams that occur more than once, over all.

    ``n``-grams are of whitespace-separated words; the ratio is ``(number of distinct n-grams seen
    at least twice) / (number of n-grams)``, 0 for text shorter than ``n`` words. This is the
    paper's ``calculate_ngram_repetition_ratio`` exactly (see the module docstring): a loop of
    period ``k`` repeated many times scores about ``k / count``, so the penalty is mild — it only
    cancels the few phrases that a looping response collects.
    """
    words = text.split()
    total = len(words) - n + 1
    if total <= 0:
        return 0.0
    counts = Counter(tuple(words[i : i + n]) for i in range(total))
    return sum(1 for count in counts.values() if count > 1) / total


#: The reference RPR's guard against a response that poses itself new questions: every
#: occurrence of this marker (the ORZ chat template's user turn) costs a whole point.
SELF_QUESTION_MARKER = "user: "


def reasoning_pattern_score(text: str, n_norm: int = 20, ngram: int = 20) -> float:
    """The reasoning-pattern reward (RPR) of the paper's released code, in [0, 1].

    On the lower-cased text: ``max(0, min(1, hits / n_norm) - repetition - self_questions)``,
    where ``hits`` counts the :data:`REASONING_PHRASES` present, ``repetition`` is
    :func:`repeated_ngram_ratio` of 20-grams and ``self_questions`` the number of
    ``"user: "`` occurrences. ``n_norm`` is 20 in the released code (the default) and 40 would
    make all forty phrases needed for a full score.
    """
    if n_norm <= 0:
        raise ValueError(f"n_norm must be positive, got {n_norm}")
    lowered = text.lower()
    hits = sum(phrase in lowered for phrase in REASONING_PHRASES)
    score = min(1.0, hits / n_norm)
    score -= repeated_ngram_ratio(lowered, ngram)
    score -= lowered.count(SELF_QUESTION_MARKER)
    return max(0.0, score)


def unit_hash(*parts: object) -> float:
    """A deterministic number in [0, 1) from ``parts`` (stable across processes and platforms)."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def flip_coin(flip_prob: float, *, noise_seed: int, key: str) -> bool:
    """Whether to flip the reward computation keyed by ``key``: true with probability ``flip_prob``.

    A pure function of ``(noise_seed, key)``: distinct keys give independent coins, the same key
    the same coin. Give every reward computation its own key for independent flips (the paper's
    noise), or one key to several computations to flip them together (a group).
    """
    if not 0.0 <= flip_prob <= 1.0:
        raise ValueError(f"flip_prob must be in [0, 1], got {flip_prob}")
    return unit_hash("flip", noise_seed, key) < flip_prob


def flip_binary(reward: float) -> float:
    """The symmetric 1 <-> 0 flip of a binary reward."""
    return 1.0 - reward


def calibrate_reward_model(rm_score: float, *, rpr: float, threshold: float, alpha: float) -> float:
    """The paper's calibration: below ``threshold``, add ``alpha * rpr``; the result is capped at 1.

    A noisy reward model under-scores correct but unusual responses; crediting their reasoning
    patterns recovers part of that signal.
    """
    if rm_score >= threshold:
        return rm_score
    return min(1.0, rm_score + alpha * rpr)
