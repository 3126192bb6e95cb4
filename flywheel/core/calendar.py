"""The SSE/SZSE trading calendar (交易日历): weekends and exchange holiday closures excluded.

Closures are data, kept in ``core/data/cn_trading_holidays.csv`` (one weekday closure a line,
``status`` ``official`` when taken from the exchange notice, ``provisional`` when estimated before
the notice; replace provisional rows when the exchanges publish the year). Dates outside the
covered years are treated as trading days when they fall on a weekday.

All functions take calendar dates in Asia/Shanghai (the exchange's time zone).
"""

from __future__ import annotations

import csv
from datetime import date, timedelta
from functools import cache
from importlib import resources


@cache
def holidays() -> frozenset[date]:
    """Every weekday on which the Shanghai and Shenzhen exchanges are closed."""
    text = resources.files("flywheel.core").joinpath("data/cn_trading_holidays.csv").read_text()
    return frozenset(date.fromisoformat(row["date"]) for row in csv.DictReader(text.splitlines()))


def is_trading_day(day: date) -> bool:
    """True on a weekday that is not an exchange holiday closure."""
    return day.weekday() < 5 and day not in holidays()


def trading_days_between(start: date, end: date) -> list[date]:
    """The trading days in ``[start, end]`` (both inclusive), oldest first; empty if start > end."""
    days: list[date] = []
    current = start
    while current <= end:
        if is_trading_day(current):
            days.append(current)
        current += timedelta(days=1)
    return days


def add_trading_days(day: date, n: int) -> date:
    """The trading day ``n`` trading days after ``day`` (before it when ``n`` < 0).

    ``n == 0`` returns ``day`` itself when it is a trading day, else the next trading day.
    """
    step = 1 if n >= 0 else -1
    current = day
    if n == 0:
        while not is_trading_day(current):
            current += timedelta(days=1)
        return current
    remaining = abs(n)
    while remaining:
        current += timedelta(days=step)
        if is_trading_day(current):
            remaining -= 1
    return current


def last_n_trading_days(end: date, n: int) -> list[date]:
    """The last ``n`` trading days up to and including ``end``, oldest first."""
    if n <= 0:
        return []
    days: list[date] = []
    current = end
    while len(days) < n:
        if is_trading_day(current):
            days.append(current)
        current -= timedelta(days=1)
    days.reverse()
    return days
