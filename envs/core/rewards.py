"""Reward transforms shared by every family: deterministic flip noise, the reasoning-pattern reward,
and reward-model calibration — after "The Climb Carves Wisdom Deeper Than the Summit: On the Noisy
Rewards in Learning to Reason".

A clean verifier scores; these functions transform its score. They are pure functions of their
inputs (noise coins are hashes of a noise seed and a key), so a noisy run is reproducible and every
rollout of one prompt can share one coin.

Example:
    >>> text = "First, we need to factor. Wait, let me check: thus x = 2."
    >>> sorted(reasoning_pattern_hits(text))
    ['first, ', 'let me check', 'thus', 'wait', 'we need to']
    >>> reasoning_pattern_score(text, n_norm=20)
    0.25
    >>> flip_coin(0.0, noise_seed=0, key="task-1"), flip_coin(1.0, noise_seed=0, key="task-1")
    (False, True)
    >>> calibrate_reward_model(0.3, rpr=0.5, threshold=0.5, alpha=0.1)
    0.35
"""

from __future__ import annotations

import hashlib

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
    """The share of ``n``-grams of whitespace words that repeat an earlier one (0 if too short).

    ``(count of n-grams - count of distinct n-grams) / count of n-grams``: 0 for text without
    repetition, close to 1 for a response that loops.
    """
    words = text.split()
    total = len(words) - n + 1
    if total <= 0:
        return 0.0
    distinct = {tuple(words[i : i + n]) for i in range(total)}
    return (total - len(distinct)) / total


def reasoning_pattern_score(text: str, n_norm: int = 40, ngram: int = 20) -> float:
    """The reasoning-pattern reward (RPR): ``max(0, min(1, hits / n_norm) - repeat ratio)``.

    ``n_norm`` is 40 in the paper's text and 20 in its released code; the repetition penalty keeps a
    policy from farming phrases by looping.
    """
    if n_norm <= 0:
        raise ValueError(f"n_norm must be positive, got {n_norm}")
    hits = len(reasoning_pattern_hits(text))
    return max(0.0, min(1.0, hits / n_norm) - repeated_ngram_ratio(text, ngram))


def unit_hash(*parts: object) -> float:
    """A deterministic number in [0, 1) from ``parts`` (stable across processes and platforms)."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def flip_coin(flip_prob: float, *, noise_seed: int, key: str) -> bool:
    """Whether to flip a reward keyed by ``key``: true with probability ``flip_prob`` over keys.

    With ``key`` = the task id every rollout of a prompt flips together (the paper's setting);
    with a per-sample key each rollout gets its own coin.
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
