import pytest
from rangeset import RangeSet, Span, SpanError


def test_parse_and_str_round_trip():
    rs = RangeSet.parse("1-3, 5, 8-10")
    assert rs.spans() == [Span(1, 4), Span(5, 6), Span(8, 11)]
    assert str(rs) == "1-3,5,8-10"


def test_parse_merges_overlapping_and_adjacent_items():
    assert str(RangeSet.parse("5-7,1-3,4")) == "1-7"
    assert str(RangeSet.parse("1-4,2-3")) == "1-4"


def test_parse_empty_string_is_empty_set():
    assert RangeSet.parse("") == RangeSet()
    assert not RangeSet.parse("  ")


@pytest.mark.parametrize("text", ["1,,2", "a-3", "5-2", "-4", "3-"])
def test_parse_rejects_malformed_text(text):
    with pytest.raises(SpanError):
        RangeSet.parse(text)


def test_add_merges_touching_spans():
    rs = RangeSet()
    rs.add(0, 3)
    rs.add(10, 12)
    rs.add(3, 5)
    assert rs.spans() == [Span(0, 5), Span(10, 12)]
    rs.add(4, 11)
    assert rs.spans() == [Span(0, 12)]


def test_add_keeps_spans_sorted():
    rs = RangeSet()
    rs.add(20, 25)
    rs.add(0, 2)
    rs.add(10, 12)
    assert rs.spans() == [Span(0, 2), Span(10, 12), Span(20, 25)]


def test_add_empty_span_is_noop():
    rs = RangeSet.parse("1-2")
    rs.add(7, 7)
    assert str(rs) == "1-2"


def test_discard_splits_a_span():
    rs = RangeSet.parse("0-9")
    rs.discard(3, 5)
    assert rs.spans() == [Span(0, 3), Span(5, 10)]


def test_discard_across_several_spans():
    rs = RangeSet.parse("0-4,6-8,10-14")
    rs.discard(2, 12)
    assert str(rs) == "0-1,12-14"


def test_discard_outside_is_ignored():
    rs = RangeSet.parse("5-6")
    rs.discard(0, 5)
    rs.discard(7, 9)
    assert str(rs) == "5-6"


def test_membership():
    rs = RangeSet.parse("1-3,7-9")
    assert [x for x in range(0, 11) if x in rs] == [1, 2, 3, 7, 8, 9]


def test_len_counts_integers_and_iter_lists_them():
    rs = RangeSet.parse("1-3,7,10-11")
    assert len(rs) == 6
    assert list(rs) == [1, 2, 3, 7, 10, 11]


def test_first_last_and_empty_errors():
    rs = RangeSet.parse("4-6,9")
    assert rs.first() == 4
    assert rs.last() == 9
    with pytest.raises(ValueError):
        RangeSet().first()
    with pytest.raises(ValueError):
        RangeSet().last()


def test_nth_positive_and_negative():
    rs = RangeSet.parse("1-3,10-12")
    assert [rs.nth(i) for i in range(6)] == [1, 2, 3, 10, 11, 12]
    assert rs.nth(-1) == 12
    assert rs.nth(-4) == 3
    with pytest.raises(IndexError):
        rs.nth(6)
    with pytest.raises(IndexError):
        rs.nth(-7)


def test_union_operator():
    a = RangeSet.parse("1-3,10-12")
    b = RangeSet.parse("4-5,11-20")
    assert str(a | b) == "1-5,10-20"
    assert str(a) == "1-3,10-12"  # operands are not modified


def test_intersection_operator():
    a = RangeSet.parse("0-10,20-30")
    b = RangeSet.parse("5-25")
    assert str(a & b) == "5-10,20-25"
    assert str(RangeSet.parse("1-2") & RangeSet.parse("3-4")) == ""


def test_intersection_with_many_small_spans():
    a = RangeSet.parse("0-100")
    b = RangeSet.parse("1,3,5,99-120")
    assert str(a & b) == "1,3,5,99-100"
    assert str(b & a) == "1,3,5,99-100"


def test_difference_operator():
    a = RangeSet.parse("0-10")
    b = RangeSet.parse("2-3,8")
    assert str(a - b) == "0-1,4-7,9-10"


def test_symmetric_difference():
    a = RangeSet.parse("0-5")
    b = RangeSet.parse("3-8")
    assert str(a ^ b) == "0-2,6-8"


def test_subset():
    assert RangeSet.parse("2-3,6").issubset(RangeSet.parse("0-10"))
    assert not RangeSet.parse("2-3,11").issubset(RangeSet.parse("0-10"))
    assert RangeSet().issubset(RangeSet())


def test_complement_within_bounds():
    rs = RangeSet.parse("2-3,6-7")
    assert str(rs.complement(Span(0, 10))) == "0-1,4-5,8-9"
    assert str(rs.complement(Span(2, 4))) == ""


def test_gaps():
    assert RangeSet.parse("1-3,6,9-10").gaps() == [Span(4, 6), Span(7, 9)]
    assert RangeSet.parse("1-3").gaps() == []


def test_span_containing():
    rs = RangeSet.parse("1-3,6-9")
    assert rs.span_containing(7) == Span(6, 10)
    assert rs.span_containing(1) == Span(1, 4)
    assert rs.span_containing(4) is None
    assert rs.span_containing(10) is None


def test_shifted():
    assert str(RangeSet.parse("1-3,6").shifted(10)) == "11-13,16"


def test_equality_and_hash():
    a = RangeSet.parse("1-3")
    b = RangeSet([(1, 2), (2, 4)])
    assert a == b
    assert hash(a) == hash(b)
    assert a != RangeSet.parse("1-4")
    assert len({a, b}) == 1


def test_constructor_accepts_spans_and_tuples():
    rs = RangeSet([Span(5, 7), (0, 2)])
    assert rs.spans() == [Span(0, 2), Span(5, 7)]
    assert repr(rs) == "RangeSet.parse('0-1,5-6')"


def test_copy_is_independent():
    a = RangeSet.parse("1-3")
    b = a.copy()
    b.add(10, 11)
    assert str(a) == "1-3"
    assert str(b) == "1-3,10"
