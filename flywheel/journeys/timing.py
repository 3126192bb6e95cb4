"""When a delay ends: times of day, profile dates and SSE/SZSE trading days (Asia/Shanghai)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from flywheel.core import calendar
from flywheel.core.clock import SHANGHAI, to_utc, utc_naive

DEFAULT_TRADING_TIME = time(9, 30)


def as_moment(value: Any) -> datetime | None:
    """A profile date (Shanghai midnight) or datetime (UTC) as naive UTC."""
    if value is None:
        return None
    text = str(value)
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return utc_naive(datetime.combine(day, time(0, 0), tzinfo=SHANGHAI))
        return utc_naive(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        return None


def next_time_of_day(now: datetime, hhmm: str) -> datetime:
    """The next ``HH:MM`` in Asia/Shanghai strictly after ``now``, as naive UTC."""
    local = to_utc(now).astimezone(SHANGHAI)
    hour, minute = (int(x) for x in hhmm.split(":"))
    target = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if target <= local:
        target += timedelta(days=1)
    return utc_naive(target)


def after_trading_days(now: datetime, days: int, hhmm: str | None) -> datetime:
    """``days`` SSE/SZSE trading days after today (Shanghai), at ``hhmm`` (default 09:30)."""
    local = to_utc(now).astimezone(SHANGHAI)
    day = calendar.add_trading_days(local.date(), days)
    at = DEFAULT_TRADING_TIME
    if hhmm:
        hour, minute = hhmm.split(":")
        at = time(int(hour), int(minute))
    return utc_naive(datetime.combine(day, at, tzinfo=SHANGHAI))
