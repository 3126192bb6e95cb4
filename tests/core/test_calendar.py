"""The SSE/SZSE trading calendar."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flywheel.core.calendar import (
    add_trading_days,
    holidays,
    is_trading_day,
    last_n_trading_days,
    trading_days_between,
)


def test_holiday_data_covers_2024_to_2027_on_weekdays_only() -> None:
    years = {d.year for d in holidays()}
    assert years == {2024, 2025, 2026, 2027}
    assert all(d.weekday() < 5 for d in holidays())


@pytest.mark.parametrize(
    ("day", "trading"),
    [
        (date(2026, 10, 1), False),  # National Day
        (date(2026, 10, 8), True),
        (date(2026, 2, 17), False),  # Spring Festival
        (date(2025, 1, 27), True),  # the Monday before the closure
        (date(2025, 1, 26), False),  # Sunday (the exchanges never open at weekends)
        (date(2024, 6, 10), False),  # Dragon Boat
        (date(2026, 11, 2), True),
        (date(2026, 11, 1), False),  # Sunday
    ],
)
def test_is_trading_day(day: date, trading: bool) -> None:
    assert is_trading_day(day) is trading


def test_national_day_week_2026() -> None:
    days = trading_days_between(date(2026, 9, 28), date(2026, 10, 9))
    assert days == [
        date(2026, 9, 28),
        date(2026, 9, 29),
        date(2026, 9, 30),
        date(2026, 10, 8),
        date(2026, 10, 9),
    ]


def test_add_trading_days_skips_closures() -> None:
    assert add_trading_days(date(2026, 9, 30), 1) == date(2026, 10, 8)
    assert add_trading_days(date(2026, 10, 8), -1) == date(2026, 9, 30)
    assert add_trading_days(date(2026, 10, 3), 0) == date(2026, 10, 8)
    assert add_trading_days(date(2026, 11, 2), 0) == date(2026, 11, 2)


def test_last_n_trading_days_ends_at_end_when_it_trades() -> None:
    days = last_n_trading_days(date(2026, 11, 2), 20)
    assert len(days) == 20
    assert days[-1] == date(2026, 11, 2)
    assert days[0] == date(2026, 9, 29)  # the National Day closure is skipped
    assert last_n_trading_days(date(2026, 11, 1), 1) == [date(2026, 10, 30)]
    assert last_n_trading_days(date(2026, 11, 1), 0) == []


@given(st.dates(min_value=date(2024, 1, 1), max_value=date(2027, 12, 31)), st.integers(-300, 300))
def test_add_then_count_agree(start: date, n: int) -> None:
    end = add_trading_days(start, n)
    assert is_trading_day(end)
    if n > 0:
        assert len(trading_days_between(start + timedelta(days=1), end)) == n
    elif n < 0:
        assert len(trading_days_between(end, start - timedelta(days=1))) == -n
