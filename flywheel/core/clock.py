"""An injectable clock. Services never call ``datetime.now`` directly; tests freeze time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """Now, timezone-aware UTC."""
    return datetime.now(UTC)


class FrozenClock:
    """A clock for tests: returns ``now`` until moved with :meth:`advance` or :meth:`set`."""

    def __init__(self, now: datetime) -> None:
        self.now = to_utc(now)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta

    def set(self, now: datetime) -> None:
        self.now = to_utc(now)


def to_utc(moment: datetime) -> datetime:
    """Aware UTC; a naive datetime is taken to already be UTC (how every store keeps time)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def utc_naive(moment: datetime) -> datetime:
    """Naive UTC, the form in which the stores keep timestamps."""
    return to_utc(moment).replace(tzinfo=None)


def from_epoch_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def to_epoch_ms(moment: datetime) -> int:
    return int(to_utc(moment).timestamp() * 1000)
