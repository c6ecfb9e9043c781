import pytest
from textkit import fill, indent, justify, slugify, truncate, wrap


def test_wrap_greedy():
    assert wrap("the quick brown fox jumps", 10) == ["the quick", "brown fox", "jumps"]
    assert wrap("aa bb cc", 5) == ["aa bb", "cc"]
    assert wrap("aa bb cc", 8) == ["aa bb cc"]


def test_wrap_collapses_whitespace():
    assert wrap("  one \n two\tthree  ", 20) == ["one two three"]
    assert wrap("", 10) == []


def test_wrap_breaks_long_words():
    assert wrap("abcdefghij xy", 4) == ["abcd", "efgh", "ij", "xy"]
    assert wrap("ab abcdefgh", 4) == ["ab", "abcd", "efgh"]
    assert wrap("abcd", 4) == ["abcd"]


def test_wrap_line_lengths_never_exceed_width():
    text = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor"
    for width in range(1, 30):
        lines = wrap(text, width)
        assert all(len(line) <= width for line in lines)
        assert "".join(lines).replace(" ", "") == text.replace(" ", "")


def test_wrap_rejects_zero_width():
    with pytest.raises(ValueError):
        wrap("x", 0)


def test_justify_spreads_extra_spaces_left_first():
    assert justify("a bc d", 8) == "a  bc  d"
    assert justify("a b c d", 10) == "a  b  c  d"
    assert justify("a b c d", 9) == "a  b  c d"
    assert justify("word", 6) == "word  "
    assert justify("", 3) == "   "


def test_justify_too_long():
    with pytest.raises(ValueError, match="does not fit"):
        justify("abc def", 6)


def test_fill():
    text = "the quick brown fox jumps over"
    assert fill(text, 10) == "the quick\nbrown fox\njumps over"
    assert fill(text, 11, justified=True) == "the   quick\nbrown   fox\njumps over"


def test_indent():
    assert indent("a\nb", "  ") == "  a\n  b"
    assert indent("a\n\nb", "> ") == "> a\n\n> b"
    assert indent("a\n\nb", "> ", skip_blank=False) == "> a\n> \n> b"
    assert indent("item\nmore", "   ", first=" - ") == " - item\n   more"


@pytest.mark.parametrize(
    ("text", "width", "expected"),
    [
        ("hello world", 20, "hello world"),
        ("hello world", 11, "hello world"),
        ("hello world", 8, "hello..."),
        ("hello world", 10, "hello..."),
        ("helloworld!", 8, "hello..."),
        ("hello", 2, ".."),
        ("one two three", 12, "one two..."),
    ],
)
def test_truncate(text, width, expected):
    assert truncate(text, width) == expected


def test_truncate_custom_placeholder():
    assert truncate("abcdefghij", 6, placeholder="~") == "abcde~"


def test_slugify():
    assert slugify("Hello, World! 2024") == "hello-world-2024"
    assert slugify("Crème Brûlée") == "creme-brulee"
    assert slugify("  --  ") == ""
    assert slugify("a b c", separator="_") == "a_b_c"


def test_slugify_max_length_drops_trailing_separator():
    assert slugify("hello big world", max_length=10) == "hello-big"
    assert slugify("hello big world", max_length=9) == "hello-big"
    assert slugify("hello", max_length=0) == "hello"
