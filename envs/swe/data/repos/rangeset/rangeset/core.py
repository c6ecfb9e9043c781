"""Spans (half-open integer intervals) and RangeSet (a normalised union of spans)."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator
from dataclasses import dataclass


class SpanError(ValueError):
    """A span or a range-set string that cannot be built."""


@dataclass(frozen=True, order=True)
class Span:
    """The integers ``start <= x < end``."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise SpanError(f"span end {self.end} is before its start {self.start}")

    def __len__(self) -> int:
        return self.end - self.start

    def __contains__(self, value: int) -> bool:
        return self.start <= value < self.end

    def is_empty(self) -> bool:
        return self.start == self.end

    def overlaps(self, other: Span) -> bool:
        """True when the two spans share at least one integer."""
        return self.start < other.end and other.start < self.end

    def touches(self, other: Span) -> bool:
        """True when the spans overlap or are adjacent (their union is one span)."""
        return self.start <= other.end and other.start <= self.end

    def intersection(self, other: Span) -> Span | None:
        start = max(self.start, other.start)
        end = min(self.end, other.end)
        if start >= end:
            return None
        return Span(start, end)

    def shift(self, offset: int) -> Span:
        return Span(self.start + offset, self.end + offset)

    def clamp(self, lower: int, upper: int) -> Span:
        """The part of the span inside ``[lower, upper)`` (possibly empty, placed at a bound)."""
        start = min(max(self.start, lower), upper)
        end = max(min(self.end, upper), start)
        return Span(start, end)

    def __str__(self) -> str:
        if len(self) == 1:
            return str(self.start)
        return f"{self.start}-{self.end - 1}"


class RangeSet:
    """A set of integers kept as sorted, disjoint, non-adjacent spans."""

    def __init__(self, spans: Iterable[Span | tuple[int, int]] = ()) -> None:
        self._spans: list[Span] = []
        for item in spans:
            span = item if isinstance(item, Span) else Span(*item)
            self.add(span.start, span.end)

    @classmethod
    def parse(cls, text: str) -> RangeSet:
        """Read ``"1-3,5,8-10"`` (inclusive ends; spaces allowed; empty string = empty set)."""
        result = cls()
        for position, raw in enumerate(text.split(",")):
            part = raw.strip()
            if not part:
                if text.strip():
                    raise SpanError(f"empty item at position {position} in {text!r}")
                continue
            low, sep, high = part.partition("-")
            if part.startswith("-"):
                raise SpanError(f"negative numbers are not supported: {part!r}")
            try:
                start = int(low)
                last = int(high) if sep else start
            except ValueError:
                raise SpanError(f"not a number or range: {part!r}") from None
            if last < start:
                raise SpanError(f"range {part!r} ends before it starts")
            result.add(start, last + 1)
        return result

    def spans(self) -> list[Span]:
        return list(self._spans)

    def copy(self) -> RangeSet:
        clone = RangeSet()
        clone._spans = list(self._spans)
        return clone

    def add(self, start: int, end: int) -> None:
        """Add the integers ``start <= x < end``, merging with touching spans."""
        new = Span(start, end)
        if new.is_empty():
            return
        merged: list[Span] = []
        placed = False
        for span in self._spans:
            if span.touches(new):
                new = Span(min(span.start, new.start), max(span.end, new.end))
            elif span.end < new.start:
                merged.append(span)
            else:
                if not placed:
                    merged.append(new)
                    placed = True
                merged.append(span)
        if not placed:
            merged.append(new)
        self._spans = merged

    def discard(self, start: int, end: int) -> None:
        """Remove the integers ``start <= x < end`` (absent ones are ignored)."""
        cut = Span(start, end)
        if cut.is_empty():
            return
        kept: list[Span] = []
        for span in self._spans:
            if not span.overlaps(cut):
                kept.append(span)
                continue
            if span.start < cut.start:
                kept.append(Span(span.start, cut.start))
            if span.end > cut.end:
                kept.append(Span(cut.end, span.end))
        self._spans = kept

    def __contains__(self, value: int) -> bool:
        index = bisect.bisect_right([span.start for span in self._spans], value) - 1
        return index >= 0 and value < self._spans[index].end

    def __len__(self) -> int:
        return sum(len(span) for span in self._spans)

    def __bool__(self) -> bool:
        return bool(self._spans)

    def __iter__(self) -> Iterator[int]:
        for span in self._spans:
            yield from range(span.start, span.end)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RangeSet):
            return NotImplemented
        return self._spans == other._spans

    def __hash__(self) -> int:
        return hash(tuple(self._spans))

    def __repr__(self) -> str:
        return f"RangeSet.parse({str(self)!r})"

    def __str__(self) -> str:
        return ",".join(str(span) for span in self._spans)

    def first(self) -> int:
        if not self._spans:
            raise ValueError("first() of an empty RangeSet")
        return self._spans[0].start

    def last(self) -> int:
        if not self._spans:
            raise ValueError("last() of an empty RangeSet")
        return self._spans[-1].end - 1

    def nth(self, index: int) -> int:
        """The ``index``-th smallest member (negative indexes count from the end)."""
        size = len(self)
        if index < 0:
            index += size
        if not 0 <= index < size:
            raise IndexError(f"index out of range for a RangeSet of {size} integers")
        for span in self._spans:
            if index < len(span):
                return span.start + index
            index -= len(span)
        raise AssertionError("unreachable")

    def union(self, other: RangeSet) -> RangeSet:
        result = self.copy()
        for span in other._spans:
            result.add(span.start, span.end)
        return result

    def difference(self, other: RangeSet) -> RangeSet:
        result = self.copy()
        for span in other._spans:
            result.discard(span.start, span.end)
        return result

    def intersection(self, other: RangeSet) -> RangeSet:
        result = RangeSet()
        i = j = 0
        while i < len(self._spans) and j < len(other._spans):
            a, b = self._spans[i], other._spans[j]
            common = a.intersection(b)
            if common is not None:
                result._spans.append(common)
            if a.end < b.end:
                i += 1
            else:
                j += 1
        return result

    def symmetric_difference(self, other: RangeSet) -> RangeSet:
        return self.union(other).difference(self.intersection(other))

    __or__ = union
    __and__ = intersection
    __sub__ = difference
    __xor__ = symmetric_difference

    def issubset(self, other: RangeSet) -> bool:
        return self.difference(other) == RangeSet()

    def complement(self, within: Span) -> RangeSet:
        """The integers of ``within`` that are not in this set."""
        return RangeSet([within]).difference(self)

    def gaps(self) -> list[Span]:
        """The spans missing between the first and the last member."""
        return [Span(a.end, b.start) for a, b in zip(self._spans, self._spans[1:], strict=False)]

    def span_containing(self, value: int) -> Span | None:
        for span in self._spans:
            if value in span:
                return span
            if span.start > value:
                break
        return None

    def shifted(self, offset: int) -> RangeSet:
        result = RangeSet()
        result._spans = [span.shift(offset) for span in self._spans]
        return result
