"""The Unicode text space every arenagym LLM env uses for observations and actions.

Gymnasium's own :class:`gymnasium.spaces.Text` only admits a fixed character set (by default
alphanumerics) and a positive minimum length, so it rejects what language models actually write:
punctuation, LaTeX, emoji, CJK text and the empty string. :class:`UnicodeText` admits any ``str``
up to ``max_length`` characters.

Example:
    >>> space = UnicodeText(max_length=16, seed=0)
    >>> space.contains("½ + ¼ = ¾ ✓"), space.contains(""), space.contains("x" * 17)
    (True, True, False)
    >>> sample = space.sample()
    >>> isinstance(sample, str) and len(sample) <= 16
    True
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.spaces import Space

#: Characters ``sample`` draws from: ASCII letters, digits, punctuation and whitespace, plus
#: LaTeX-ish, accented, Greek, CJK, emoji and control-adjacent characters, so that random
#: samples exercise every path a real model output can take.
SAMPLE_ALPHABET: str = (
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    " \t\n!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
    "éèçñüßøåæœ αβγδπσωΣΩ ∞√∑∫≤≥≠±×÷ ½¼¾ 中文漢字日本語한국어 🙂🚀 \u200b\u00a0"
)


class UnicodeText(Space[str]):
    """Any Python ``str`` of at most ``max_length`` characters (the empty string included).

    Args:
        max_length: the longest admitted string, in characters (not bytes or tokens).
        sample_max_length: the longest string :meth:`sample` draws (defaults to
            ``min(max_length, 256)``), so random samples stay cheap to step.
        seed: seeds :attr:`np_random` for :meth:`sample`.
    """

    def __init__(
        self,
        max_length: int,
        *,
        sample_max_length: int | None = None,
        seed: int | np.random.Generator | None = None,
    ) -> None:
        if not isinstance(max_length, int) or max_length < 0:
            raise ValueError(f"max_length must be a non-negative int, got {max_length!r}")
        self.max_length = max_length
        self.sample_max_length = min(
            max_length, 256 if sample_max_length is None else sample_max_length
        )
        super().__init__(shape=None, dtype=str, seed=seed)

    @property
    def is_np_flattenable(self) -> bool:
        """Text has no fixed-size numeric form."""
        return False

    def sample(self, mask: Any = None, probability: Any = None) -> str:
        """A random string of random length drawn from :data:`SAMPLE_ALPHABET`.

        ``mask`` and ``probability`` are not supported for free text and must be ``None``.
        """
        if mask is not None or probability is not None:
            raise NotImplementedError("UnicodeText.sample takes no mask or probability")
        length = int(self.np_random.integers(0, self.sample_max_length + 1))
        picks = self.np_random.integers(0, len(SAMPLE_ALPHABET), size=length)
        return "".join(SAMPLE_ALPHABET[i] for i in picks)

    def contains(self, x: Any) -> bool:
        """Whether ``x`` is a ``str`` no longer than :attr:`max_length`."""
        return isinstance(x, str) and len(x) <= self.max_length

    def __repr__(self) -> str:
        return f"UnicodeText(max_length={self.max_length})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UnicodeText) and other.max_length == self.max_length

    def __hash__(self) -> int:
        return hash((UnicodeText, self.max_length))

    def to_jsonable(self, sample_n: Any) -> list[str]:
        """Samples are already JSON strings."""
        return list(sample_n)

    def from_jsonable(self, sample_n: list[str]) -> list[str]:
        """Samples are already JSON strings."""
        return list(sample_n)
