"""The Unicode text space every arenagym LLM env uses for observations and actions.

Gymnasium's own :class:`gymnasium.spaces.Text` only admits a fixed character set (by default
alphanumerics) and a positive minimum length, so it rejects what language models actually write:
punctuation, LaTeX, emoji, CJK text and the empty string. :class:`UnicodeText` admits any ``str``
up to ``max_length`` characters.

Vector envs: Gymnasium's :class:`~gymnasium.vector.AsyncVectorEnv` passes observations back from
its worker processes through shared memory by default, which needs a fixed-size buffer per space
type (``gymnasium.vector.utils.create_shared_memory`` and its ``read``/``write`` companions,
``functools.singledispatch`` functions). This module registers :class:`UnicodeText` with them:
each env gets a row of ``max_length + 1`` 32-bit integers (the length, then the code points), so
any text within the bound travels exactly, and a longer one raises a ``ValueError`` that names
the bound. Batched observations are tuples of ``str``, as with ``SyncVectorEnv``.

Example:
    >>> space = UnicodeText(max_length=16, seed=0)
    >>> space.contains("½ + ¼ = ¾ ✓"), space.contains(""), space.contains("x" * 17)
    (True, True, False)
    >>> sample = space.sample()
    >>> isinstance(sample, str) and len(sample) <= 16
    True
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator, Sequence
from types import ModuleType
from typing import Any, overload

import numpy as np
from gymnasium.spaces import Space
from gymnasium.vector.utils import (
    create_shared_memory,
    read_from_shared_memory,
    write_to_shared_memory,
)

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


# ------------------------------------------------------------ vector envs: shared memory
@create_shared_memory.register(UnicodeText)
def _create_unicode_text_shared_memory(
    space: UnicodeText, n: int = 1, ctx: ModuleType = multiprocessing
) -> Any:
    """One row of ``max_length + 1`` int32 per env: the text's length, then its code points."""
    return ctx.Array(np.dtype(np.int32).char, n * (space.max_length + 1))


def _rows(space: UnicodeText, shared_memory: Any, n: int | None = None) -> np.ndarray:
    """The shared buffer as an ``(n, max_length + 1)`` int32 array (a view, not a copy)."""
    flat = np.frombuffer(shared_memory.get_obj(), dtype=np.int32)
    return flat.reshape((-1 if n is None else n, space.max_length + 1))


class SharedTexts(Sequence[str]):
    """The batch of texts in an ``AsyncVectorEnv``'s shared memory, decoded when read.

    It is a live view, like the NumPy arrays Gymnasium reads from shared memory for other spaces:
    ``AsyncVectorEnv(copy=True)`` (the default) returns a ``deepcopy`` of it, which is a snapshot
    ``tuple`` of ``str``; with ``copy=False`` the view itself is returned, and its items change
    with the next step.
    """

    def __init__(self, rows: np.ndarray) -> None:
        self._rows = rows

    def __len__(self) -> int:
        return len(self._rows)

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[str, ...]: ...

    def __getitem__(self, index: int | slice) -> str | tuple[str, ...]:
        if isinstance(index, slice):
            return tuple(self[i] for i in range(*index.indices(len(self))))
        row = self._rows[index]
        length = int(row[0])
        return row[1 : 1 + length].astype("<u4").tobytes().decode("utf-32-le", "surrogatepass")

    def __iter__(self) -> Iterator[str]:
        return (self[i] for i in range(len(self)))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SharedTexts | tuple | list):
            return tuple(self) == tuple(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # (mutable, like the buffer it reads)

    def __deepcopy__(self, memo: dict[int, Any]) -> tuple[str, ...]:
        return tuple(self)

    def __copy__(self) -> tuple[str, ...]:
        return tuple(self)

    def __reduce__(self) -> tuple[Any, ...]:
        return (tuple, (tuple(self),))

    def __repr__(self) -> str:
        return f"SharedTexts({tuple(self)!r})"


@read_from_shared_memory.register(UnicodeText)
def _read_unicode_text_from_shared_memory(
    space: UnicodeText, shared_memory: Any, n: int = 1
) -> SharedTexts:
    return SharedTexts(_rows(space, shared_memory, n))


@write_to_shared_memory.register(UnicodeText)
def _write_unicode_text_to_shared_memory(
    space: UnicodeText, index: int, value: Any, shared_memory: Any
) -> None:
    if not isinstance(value, str):
        raise TypeError(
            f"a UnicodeText observation must be a str, got {type(value).__name__}; the env "
            "returned an observation outside its observation space"
        )
    if len(value) > space.max_length:
        raise ValueError(
            f"the observation has {len(value)} characters, over its space's max_length of "
            f"{space.max_length}, so it does not fit the vector env's shared memory; raise the "
            "env's max_observation_length, or pass shared_memory=False to AsyncVectorEnv"
        )
    row = _rows(space, shared_memory)[index]
    codes = np.frombuffer(value.encode("utf-32-le", "surrogatepass"), dtype="<u4")
    row[0] = len(codes)
    row[1 : 1 + len(codes)] = codes
