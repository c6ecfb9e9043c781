from datetime import date

import pytest
from datekit import (
    add_business_days,
    add_months,
    age_on,
    business_days_between,
    days_in_month,
    is_leap_year,
    month_range,
    quarter,
    quarter_bounds,
)


def test_leap_years():
    assert [y for y in (1900, 2000, 2023, 2024, 2100) if is_leap_year(y)] == [2000, 2024]


def test_days_in_month():
    assert days_in_month(2024, 2) == 29
    assert days_in_month(2023, 2) == 28
    assert days_in_month(2023, 4) == 30
    assert days_in_month(2023, 12) == 31
    with pytest.raises(ValueError):
        days_in_month(2023, 13)
    with pytest.raises(ValueError):
        days_in_month(2023, 0)


def test_add_months_clamps_to_month_end():
    assert add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert add_months(date(2023, 1, 31), 1) == date(2023, 2, 28)
    assert add_months(date(2023, 3, 31), 1) == date(2023, 4, 30)


def test_add_months_across_years_and_backwards():
    assert add_months(date(2023, 11, 15), 3) == date(2024, 2, 15)
    assert add_months(date(2024, 1, 15), -1) == date(2023, 12, 15)
    assert add_months(date(2024, 3, 31), -13) == date(2023, 2, 28)
    assert add_months(date(2024, 5, 5), 0) == date(2024, 5, 5)
    assert add_months(date(2024, 5, 5), 24) == date(2026, 5, 5)


def test_month_range():
    assert month_range(date(2024, 2, 10)) == (date(2024, 2, 1), date(2024, 2, 29))
    assert month_range(date(2023, 12, 31)) == (date(2023, 12, 1), date(2023, 12, 31))


def test_quarters():
    assert [quarter(date(2024, m, 1)) for m in range(1, 13)] == [1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]
    assert quarter_bounds(date(2024, 5, 17)) == (date(2024, 4, 1), date(2024, 6, 30))
    assert quarter_bounds(date(2024, 12, 1)) == (date(2024, 10, 1), date(2024, 12, 31))
    assert quarter_bounds(date(2024, 1, 1)) == (date(2024, 1, 1), date(2024, 3, 31))


def test_age_on():
    birth = date(1990, 6, 15)
    assert age_on(birth, date(2020, 6, 14)) == 29
    assert age_on(birth, date(2020, 6, 15)) == 30
    assert age_on(birth, date(1990, 6, 15)) == 0
    with pytest.raises(ValueError):
        age_on(birth, date(1990, 6, 14))


def test_age_on_leap_day_birthday():
    birth = date(2000, 2, 29)
    assert age_on(birth, date(2023, 2, 28)) == 22
    assert age_on(birth, date(2023, 3, 1)) == 23
    assert age_on(birth, date(2024, 2, 28)) == 23
    assert age_on(birth, date(2024, 2, 29)) == 24


def test_add_business_days_skips_weekends():
    friday = date(2024, 5, 3)
    assert add_business_days(friday, 1) == date(2024, 5, 6)
    assert add_business_days(friday, 5) == date(2024, 5, 10)
    assert add_business_days(date(2024, 5, 6), -1) == friday
    assert add_business_days(date(2024, 5, 8), -3) == friday


def test_add_business_days_zero_rolls_forward():
    assert add_business_days(date(2024, 5, 4), 0) == date(2024, 5, 6)
    assert add_business_days(date(2024, 5, 7), 0) == date(2024, 5, 7)


def test_add_business_days_skips_holidays():
    holidays = [date(2024, 5, 6)]
    assert add_business_days(date(2024, 5, 3), 1, holidays) == date(2024, 5, 7)
    assert add_business_days(date(2024, 5, 7), -1, holidays) == date(2024, 5, 3)


def test_business_days_between():
    monday = date(2024, 5, 6)
    assert business_days_between(monday, monday) == 0
    assert business_days_between(monday, date(2024, 5, 11)) == 5
    assert business_days_between(monday, date(2024, 5, 13)) == 5
    assert business_days_between(monday, date(2024, 5, 14)) == 6
    assert business_days_between(date(2024, 5, 4), date(2024, 5, 8)) == 2
    assert business_days_between(date(2024, 5, 13), monday) == -5


def test_business_days_between_with_holidays():
    monday = date(2024, 5, 6)
    holidays = [date(2024, 5, 8), date(2024, 5, 11), date(2024, 6, 1)]
    assert business_days_between(monday, date(2024, 5, 13), holidays) == 4


def test_business_days_agree_with_adding():
    start = date(2024, 1, 1)
    for count in range(0, 30):
        end = add_business_days(start, count)
        assert business_days_between(start, end) == count
