"""Plain-Python reference implementations of the analyses, to check the SQL against."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

Row = dict[str, Any]
Predicate = Callable[[Row], bool]


def local_day(moment: datetime) -> date:
    return (moment + timedelta(hours=8)).date()


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day) - timedelta(hours=8)


def funnel(
    events: list[Row],
    steps: list[tuple[str, Predicate]],
    start: datetime,
    end: datetime,
    window: timedelta,
) -> tuple[list[int], dict[int, set[int]]]:
    """Users per step and the set of users reaching each step (1-based)."""
    by_user: dict[int, list[Row]] = defaultdict(list)
    for row in events:
        by_user[row["user_id"]].append(row)
    reached: dict[int, set[int]] = {k: set() for k in range(1, len(steps) + 1)}
    for user, rows in by_user.items():
        rows.sort(key=lambda r: r["time"])
        name1, pred1 = steps[0]
        entries = [
            r["time"] for r in rows if r["event"] == name1 and pred1(r) and start <= r["time"] < end
        ]
        if not entries:
            continue
        t1 = prev = entries[0]
        reached[1].add(user)
        for k in range(2, len(steps) + 1):
            name, pred = steps[k - 1]
            strict = name == steps[k - 2][0]
            candidates = [
                r["time"]
                for r in rows
                if r["event"] == name
                and pred(r)
                and (r["time"] > prev if strict else r["time"] >= prev)
                and r["time"] <= t1 + window
            ]
            if not candidates:
                break
            prev = min(candidates)
            reached[k].add(user)
    return [len(reached[k]) for k in sorted(reached)], reached


def retention_days(
    events: list[Row],
    start_event: str,
    return_event: str | None,
    first: date,
    last: date,
    periods: int,
    today: date,
) -> dict[date, list[int | None]]:
    """Cohort (first start event day) → [size, retained day 0 … periods] (None = future)."""
    start, end = day_start(first), day_start(last + timedelta(days=1))
    cohort: dict[int, date] = {}
    for r in events:
        if r["event"] == start_event and start <= r["time"] < end:
            d = local_day(r["time"])
            if r["user_id"] not in cohort or d < cohort[r["user_id"]]:
                cohort[r["user_id"]] = d
    active: set[tuple[int, date]] = {
        (r["user_id"], local_day(r["time"]))
        for r in events
        if (return_event is None or r["event"] == return_event) and r["time"] >= start
    }
    out: dict[date, list[int | None]] = {}
    for day in sorted(set(cohort.values())):
        members = [u for u, d in cohort.items() if d == day]
        row: list[int | None] = [len(members)]
        for k in range(periods + 1):
            target = day + timedelta(days=k)
            row.append(None if target > today else sum((u, target) in active for u in members))
        out[day] = row
    return out


def attribution(
    events: list[Row],
    conversion: str,
    touches: set[str],
    by: str,
    window: timedelta,
    start: datetime,
    end: datetime,
    last_touch: bool,
) -> dict[Any, int]:
    """Touch value → credited conversions; None → conversions without a touch."""
    by_user: dict[int, list[Row]] = defaultdict(list)
    for r in events:
        if r["event"] in touches and r.get(by) is not None:
            by_user[r["user_id"]].append(r)
    out: dict[Any, int] = defaultdict(int)
    for c in events:
        if c["event"] != conversion or not start <= c["time"] < end:
            continue
        window_touches = [
            t for t in by_user[c["user_id"]] if c["time"] - window <= t["time"] <= c["time"]
        ]
        if not window_touches:
            out[None] += 1
            continue
        pick = max if last_touch else min
        out[pick(window_touches, key=lambda t: t["time"])[by]] += 1
    return dict(out)
