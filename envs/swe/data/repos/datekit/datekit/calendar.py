"""Month arithmetic, quarters, ages and business days."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def is_leap_year(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def days_in_month(year: int, month: int) -> int:
    if not 1 <= month <= 12:
        raise ValueError(f"month must be in 1..12, not {month}")
    if month == 2 and is_leap_year(year):
        return 29
    return _DAYS[month - 1]


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later (or earlier), clamped to the end of a shorter month."""
    index = day.year * 12 + (day.month - 1) + months
    year, month0 = divmod(index, 12)
    month = month0 + 1
    return date(year, month, min(day.day, days_in_month(year, month)))


def month_range(day: date) -> tuple[date, date]:
    """The first and the last day of ``day``'s month."""
    return date(day.year, day.month, 1), date(
        day.year, day.month, days_in_month(day.year, day.month)
    )


def quarter(day: date) -> int:
    return (day.month - 1) // 3 + 1


def quarter_bounds(day: date) -> tuple[date, date]:
    """The first and the last day of ``day``'s calendar quarter."""
    first_month = 3 * (quarter(day) - 1) + 1
    last_month = first_month + 2
    return date(day.year, first_month, 1), date(
        day.year, last_month, days_in_month(day.year, last_month)
    )


def age_on(birth: date, on: date) -> int:
    """Whole years from ``birth`` to ``on``; a 29 February birthday counts on 1 March."""
    if on < birth:
        raise ValueError("the date is before the birth date")
    years = on.year - birth.year
    birthday_month, birthday_day = birth.month, birth.day
    if (birthday_month, birthday_day) == (2, 29) and not is_leap_year(on.year):
        birthday_month, birthday_day = 3, 1
    if (on.month, on.day) < (birthday_month, birthday_day):
        years -= 1
    return years


def _is_business_day(day: date, holidays: frozenset[date]) -> bool:
    return day.weekday() < 5 and day not in holidays


def add_business_days(day: date, count: int, holidays: Iterable[date] = ()) -> date:
    """Move ``count`` business days (Mon-Fri, not a holiday) forward, or back when negative.

    With ``count == 0`` a non-business day rolls forward to the next business day.
    """
    closed = frozenset(holidays)
    step = 1 if count >= 0 else -1
    if count == 0:
        while not _is_business_day(day, closed):
            day += timedelta(days=1)
        return day
    remaining = abs(count)
    while remaining > 0:
        day += timedelta(days=step)
        if _is_business_day(day, closed):
            remaining -= 1
    return day


def business_days_between(start: date, end: date, holidays: Iterable[date] = ()) -> int:
    """Business days in ``[start, end)``; negative when ``end`` is before ``start``."""
    if end < start:
        return -business_days_between(end, start, holidays)
    closed = frozenset(holidays)
    total_days = (end - start).days
    full_weeks, extra = divmod(total_days, 7)
    count = full_weeks * 5
    for offset in range(extra):
        if (start + timedelta(days=full_weeks * 7 + offset)).weekday() < 5:
            count += 1
    count -= sum(1 for h in closed if start <= h < end and h.weekday() < 5)
    return count
