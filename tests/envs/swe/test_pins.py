"""NAME==VERSION pins: what parses, what is refused and how, fuzzed with hypothesis."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arenagym.envs.swe.pins import Pin, PinError, parse_pin, read_pin_file

_ALNUM = st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
NAMES = st.builds(
    lambda first, middle, last: first + middle + last if middle or last else first,
    _ALNUM,
    st.text(alphabet=st.sampled_from("abcXYZ019._-"), max_size=12),
    st.one_of(st.just(""), _ALNUM),
).filter(lambda name: re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?", name))
RELEASES = st.lists(st.integers(0, 10_000), min_size=1, max_size=4).map(
    lambda parts: ".".join(map(str, parts))
)
SUFFIXES = st.sampled_from(["", "a1", "b2", "rc3", ".post1", ".dev0", "+local.7", "rc1.post2.dev3"])
VERSIONS = st.builds(lambda release, suffix: release + suffix, RELEASES, SUFFIXES)


@given(NAMES, VERSIONS, st.sampled_from(["", " ", "\t"]))
def test_every_valid_pin_parses_to_its_name_and_version(name: str, version: str, pad: str) -> None:
    pin = parse_pin(f"{pad}{name}=={version}{pad}")
    assert pin == Pin(name, version)
    assert parse_pin(str(pin)) == pin
    assert pin.key == f"{pin.canonical_name}-{version}"
    assert pin.canonical_name == pin.canonical_name.lower()
    assert not re.search(r"[-_.]{2}|[_.]", pin.canonical_name)


@settings(max_examples=300)
@given(st.text(max_size=60))
def test_any_text_parses_or_gets_a_pin_error_naming_it(text: str) -> None:
    try:
        pin = parse_pin(text)
    except PinError as error:
        assert repr(text.strip())[:40] in str(error) or "NAME==VERSION" in str(error)
    else:
        assert parse_pin(str(pin)) == pin
        assert "==" in text and pin.name in text and pin.version in text


@given(NAMES, st.sampled_from([">=", "<=", "~=", "!=", "===", "=", " @ ", ""]), VERSIONS)
def test_anything_but_an_exact_pin_is_refused(name: str, operator: str, version: str) -> None:
    with pytest.raises(PinError, match=r"NAME==VERSION|not an exact|not a package name"):
        parse_pin(f"{name}{operator}{version}")


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("more-itertools", "is not NAME==VERSION"),
        ("==1.0", "is not NAME==VERSION"),
        ("more-itertools==", "is not NAME==VERSION"),
        ("-bad==1.0", "is not a package name"),
        ("bad name==1.0", "is not a package name"),
        ("pkg==1.0==2.0", "is not NAME==VERSION"),
        ("pkg==latest", "is not an exact PEP 440 version"),
        ("pkg==1.*", "is not an exact PEP 440 version"),
    ],
)
def test_each_malformed_pin_says_what_is_wrong(text: str, why: str) -> None:
    with pytest.raises(PinError, match=re.escape(why)):
        parse_pin(text)


def test_a_pin_file_error_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "pins.txt"
    path.write_text("# libraries\nattrs==26.1.0  # a comment\n\ntoolz>=1\n")
    with pytest.raises(PinError, match=re.escape(f"{path}:4: 'toolz>=1' is not NAME==VERSION")):
        read_pin_file(path)
    path.write_text("attrs==26.1.0\nAttrs==25.1.0\n")
    with pytest.raises(PinError, match=re.escape(f"{path}:2: attrs is already pinned on line 1")):
        read_pin_file(path)
    path.write_text("# nothing\n")
    with pytest.raises(PinError, match="holds no pins"):
        read_pin_file(path)
    with pytest.raises(PinError, match="does not exist"):
        read_pin_file(tmp_path / "missing.txt")


def test_the_bundled_pin_list_parses() -> None:
    listing = Path(__file__).parents[3] / "envs" / "swe" / "data" / "real-libraries.txt"
    pins = read_pin_file(listing)
    assert len(pins) >= 10
    assert len({pin.canonical_name for pin in pins}) == len(pins)
