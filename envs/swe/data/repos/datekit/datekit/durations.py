"""Durations in whole seconds: parse ``1h30m`` / ISO 8601, format, and describe relatively."""

from __future__ import annotations

import re

UNITS: tuple[tuple[str, str, int], ...] = (
    ("w", "week", 7 * 86400),
    ("d", "day", 86400),
    ("h", "hour", 3600),
    ("m", "minute", 60),
    ("s", "second", 1),
)
_SECONDS = {short: seconds for short, _, seconds in UNITS}
_COMPACT = re.compile(r"(\d+)\s*([wdhms])")
_ISO = re.compile(
    r"^P(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+)S)?)?$"
)


class DurationError(ValueError):
    """Text that is not a duration."""


def parse_duration(text: str) -> int:
    """Seconds in ``"1h30m"``, ``"2d 4h"``, ``"90s"``, ``"-15m"``, ``"P1DT2H"`` or ``"01:30:00"``."""
    raw = text.strip()
    if not raw:
        raise DurationError("empty duration")
    sign = 1
    if raw[0] in "+-":
        sign = -1 if raw[0] == "-" else 1
        raw = raw[1:].strip()
    if raw.startswith("P"):
        return sign * _parse_iso(raw)
    if ":" in raw:
        return sign * _parse_clock(raw)
    if raw.isdigit():
        return sign * int(raw)
    position = 0
    total = 0
    seen: set[str] = set()
    for match in _COMPACT.finditer(raw):
        if raw[position : match.start()].strip():
            raise DurationError(f"unexpected text {raw[position : match.start()]!r} in {text!r}")
        unit = match.group(2)
        if unit in seen:
            raise DurationError(f"unit {unit!r} repeated in {text!r}")
        seen.add(unit)
        total += int(match.group(1)) * _SECONDS[unit]
        position = match.end()
    if position == 0 or raw[position:].strip():
        raise DurationError(f"not a duration: {text!r}")
    return sign * total


def _parse_iso(raw: str) -> int:
    match = _ISO.match(raw)
    if match is None or raw in ("P", "PT") or raw.endswith("T"):
        raise DurationError(f"not an ISO 8601 duration: {raw!r}")
    return sum(int(match.group(unit) or 0) * _SECONDS[unit] for unit in "wdhms")


def _parse_clock(raw: str) -> int:
    parts = raw.split(":")
    if len(parts) not in (2, 3) or not all(part.isdigit() for part in parts):
        raise DurationError(f"not a clock duration: {raw!r}")
    numbers = [int(part) for part in parts]
    if len(numbers) == 2:
        numbers.insert(0, 0)
    hours, minutes, seconds = numbers
    if minutes >= 60 or seconds >= 60:
        raise DurationError(f"minutes and seconds must be below 60 in {raw!r}")
    return hours * 3600 + minutes * 60 + seconds


def format_duration(seconds: int, *, style: str = "short", max_units: int = 0) -> str:
    """``93784`` -> ``"1d 2h 3m 4s"`` (``style="long"``: ``"1 day, 2 hours, 3 minutes..."``).

    Weeks are not used; ``max_units`` keeps only the largest units, rounding the last one to
    the nearest value.
    """
    if style not in ("short", "long"):
        raise ValueError(f"style must be 'short' or 'long', not {style!r}")
    sign = "-" if seconds < 0 else ""
    remaining = abs(seconds)
    units = [unit for unit in UNITS if unit[0] != "w"]
    if max_units > 0:
        remaining = _round_to_units(remaining, units, max_units)
    pieces: list[tuple[int, str, str]] = []
    for short, long, size in units:
        count, remaining = divmod(remaining, size)
        if count:
            pieces.append((count, short, long))
    if max_units > 0:
        pieces = pieces[:max_units]
    if not pieces:
        return "0s" if style == "short" else "0 seconds"
    if style == "short":
        return sign + " ".join(f"{count}{short}" for count, short, _ in pieces)
    words = [f"{count} {long}{'s' if count != 1 else ''}" for count, _, long in pieces]
    return sign + ", ".join(words)


def _round_to_units(seconds: int, units: list[tuple[str, str, int]], max_units: int) -> int:
    """Round ``seconds`` so that at most ``max_units`` non-zero units remain."""
    for index, (_, _, size) in enumerate(units):
        if seconds >= size:
            last = min(index + max_units - 1, len(units) - 1)
            step = units[last][2]
            return (seconds + step // 2) // step * step
    return seconds


def relative_time(delta_seconds: int) -> str:
    """``-120`` -> ``"2 minutes ago"``, ``3600`` -> ``"in 1 hour"``, under 10 s -> ``"just now"``."""
    if abs(delta_seconds) < 10:
        return "just now"
    amount = abs(delta_seconds)
    for _, long, size in UNITS:
        if amount >= size:
            count = amount // size
            phrase = f"{count} {long}{'s' if count != 1 else ''}"
            return f"in {phrase}" if delta_seconds > 0 else f"{phrase} ago"
    raise AssertionError("unreachable")
