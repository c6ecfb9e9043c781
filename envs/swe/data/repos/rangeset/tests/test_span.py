import pytest
from rangeset import Span, SpanError


def test_length_and_membership():
    span = Span(3, 7)
    assert len(span) == 4
    assert 3 in span
    assert 6 in span
    assert 7 not in span
    assert 2 not in span


def test_reversed_span_is_rejected():
    with pytest.raises(SpanError, match="before its start"):
        Span(5, 4)


def test_empty_span():
    assert Span(4, 4).is_empty()
    assert not Span(4, 5).is_empty()
    assert len(Span(4, 4)) == 0


def test_overlap_requires_a_shared_integer():
    assert Span(0, 5).overlaps(Span(4, 9))
    assert not Span(0, 5).overlaps(Span(5, 9))
    assert not Span(6, 9).overlaps(Span(0, 6))


def test_touching_includes_adjacent_spans():
    assert Span(0, 5).touches(Span(5, 9))
    assert Span(5, 9).touches(Span(0, 5))
    assert not Span(0, 4).touches(Span(5, 9))


def test_intersection():
    assert Span(0, 10).intersection(Span(5, 20)) == Span(5, 10)
    assert Span(0, 5).intersection(Span(5, 20)) is None
    assert Span(2, 3).intersection(Span(0, 100)) == Span(2, 3)


def test_shift_and_clamp():
    assert Span(1, 4).shift(10) == Span(11, 14)
    assert Span(1, 4).shift(-1) == Span(0, 3)
    assert Span(0, 10).clamp(3, 6) == Span(3, 6)
    assert Span(0, 2).clamp(5, 9) == Span(5, 5)
    assert Span(8, 12).clamp(0, 10) == Span(8, 10)


def test_str_uses_inclusive_ends():
    assert str(Span(1, 4)) == "1-3"
    assert str(Span(7, 8)) == "7"


def test_ordering():
    assert sorted([Span(5, 6), Span(1, 9), Span(1, 2)]) == [Span(1, 2), Span(1, 9), Span(5, 6)]
