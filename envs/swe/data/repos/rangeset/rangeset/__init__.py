"""Sets of integers stored as sorted, disjoint half-open spans."""

from rangeset.core import RangeSet, Span, SpanError

__all__ = ["RangeSet", "Span", "SpanError"]
__version__ = "0.3.0"
