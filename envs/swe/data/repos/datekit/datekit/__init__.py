"""Durations, month arithmetic and business days on top of datetime."""

from datekit.calendar import (
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
from datekit.durations import DurationError, format_duration, parse_duration, relative_time

__all__ = [
    "DurationError",
    "add_business_days",
    "add_months",
    "age_on",
    "business_days_between",
    "days_in_month",
    "format_duration",
    "is_leap_year",
    "month_range",
    "parse_duration",
    "quarter",
    "quarter_bounds",
    "relative_time",
]
__version__ = "0.5.0"
