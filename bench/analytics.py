"""Benchmark: a 4-step funnel and a 30-day retention table over 30 M events on DuckDB.

    .venv/bin/python bench/analytics.py [--events 30000000] [--users 1000000] [--repeats 7]

Generates (once, cached in ``bench/out/analytics-<events>-<users>.duckdb``) events shaped like
the demo brokerage directly in DuckDB with SQL, in the warehouse layout of project 1; then runs
each analysis through ``flywheel.analytics.service`` (SQLGlot-built SQL, bound parameters,
result shaping) and the same question as hand-written DuckDB SQL, and prints p50/p99 of both and
their ratio. Figures are noisy when the machine is shared.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

OUT = Path(__file__).resolve().parent / "out"
#: The data covers the 90 Shanghai days ending on DAY_LAST; "now" is the next morning.
DAY_LAST = date(2026, 10, 31)
DAYS = 90
NOW = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)

# (event, share of all events): a wealth-management app's mix.
EVENT_MIX = [
    ("$AppStart", 0.20),
    ("$AppViewScreen", 0.30),
    ("$AppEnd", 0.12),
    ("Login", 0.08),
    ("Search", 0.07),
    ("ViewFundDetail", 0.12),
    ("BuyFund", 0.03),
    ("RedeemFund", 0.01),
    ("Deposit", 0.02),
    ("TradeStock", 0.04),
    ("WeChatFollow", 0.005),
    ("$SignUp", 0.005),
]

FUNNEL = ["$AppStart", "ViewFundDetail", "BuyFund", "Deposit"]


def generate(path: Path, events: int, users: int) -> None:
    """Write ``events`` events of ``users`` users into the warehouse file at ``path``."""
    from flywheel.warehouse import Warehouse
    from flywheel.warehouse.engine import PropertyType, TableKind

    warehouse = Warehouse(str(path))
    warehouse.ensure_project(1)
    warehouse.ensure_columns(
        1,
        TableKind.EVENTS,
        {
            "amount": PropertyType.NUMBER,
            "fund_category": PropertyType.STRING,
            "$app_version": PropertyType.STRING,
            "utm_source": PropertyType.STRING,
        },
    )
    warehouse.ensure_columns(
        1,
        TableKind.USERS,
        {"branch": PropertyType.STRING, "channel": PropertyType.STRING},
    )
    cur = warehouse.cursor()
    cases = []
    cumulative = 0.0
    for name, share in EVENT_MIX:
        cumulative += share
        cases.append(f"WHEN r < {cumulative:.4f} THEN '{name}'")
    event_case = "CASE " + " ".join(cases) + " ELSE '$AppViewScreen' END"
    start = datetime(DAY_LAST.year, DAY_LAST.month, DAY_LAST.day) - timedelta(
        days=DAYS - 1, hours=8
    )
    seconds = DAYS * 86400
    started = time.perf_counter()
    # user: skewed (active users produce more events); time: uniform over the 90 days.
    cur.execute(
        f"""
        INSERT INTO p1_events (id, user_id, distinct_id, event, time, "$receive_time",
                               amount, fund_category, "$app_version", utm_source)
        SELECT 'e' || i, u, 'd' || u, ev, t, t,
               CASE WHEN ev IN ('BuyFund', 'RedeemFund', 'Deposit', 'TradeStock')
                    THEN round(100 + (hash(i, 3) % 100000), 0) END,
               CASE WHEN ev IN ('BuyFund', 'ViewFundDetail')
                    THEN ['货币', '债券', '混合', '股票', '指数'][
                         1 + CAST(hash(i, 4) % 5 AS BIGINT)] END,
               CASE WHEN ev = '$AppStart' THEN ['5.1.0', '5.2.0', '5.3.0'][
                    1 + CAST(hash(i, 5) % 3 AS BIGINT)] END,
               CASE WHEN ev = '$AppStart' THEN ['push', 'sms', 'wechat', 'organic'][
                    1 + CAST(hash(i, 6) % 4 AS BIGINT)] END
        FROM (
            SELECT i,
                   1 + CAST(floor(pow((hash(i, 1) % 1000000) / 1000000.0, 1.6) * {users})
                            AS BIGINT) AS u,
                   {event_case.replace("r <", "(hash(i, 2) % 100000) / 100000.0 <")} AS ev,
                   TIMESTAMP '{start.isoformat(sep=" ")}'
                       + to_seconds(CAST(hash(i, 7) % {seconds} AS BIGINT)) AS t
            FROM range({events}) AS r(i)
        )
        ORDER BY t
        """
    )
    cur.execute(
        f"""
        INSERT INTO p1_users (user_id, "$update_time", branch, channel)
        SELECT u, TIMESTAMP '{start.isoformat(sep=" ")}',
               'BR' || lpad(CAST(1 + CAST(hash(u, 8) % 40 AS BIGINT) AS VARCHAR), 3, '0'),
               ['app_store', 'referral', 'wechat', 'branch'][1 + CAST(hash(u, 9) % 4 AS BIGINT)]
        FROM range(1, {users + 1}) AS r(u)
        """
    )
    cur.execute("CHECKPOINT")
    print(f"generated           {events:>12,} events in {time.perf_counter() - started:.1f} s")
    warehouse.close()


def day_start_utc(day: date) -> datetime:
    return datetime(day.year, day.month, day.day) - timedelta(hours=8)


def hand_funnel(cur: Any, first: date, last: date, window_days: int) -> list[tuple[Any, ...]]:
    """The funnel as an analyst would write it by hand (same semantics as the service)."""
    start, end = day_start_utc(first), day_start_utc(last + timedelta(days=1))
    horizon = end + timedelta(days=window_days)
    sql = """
    WITH ev AS (
        SELECT user_id, event, time FROM p1_events
        WHERE time >= $start AND time < $horizon
          AND event IN ('$AppStart', 'ViewFundDetail', 'BuyFund', 'Deposit')
    ),
    s1 AS (SELECT user_id, min(time) AS t1 FROM ev
           WHERE event = '$AppStart' AND time < $end GROUP BY user_id),
    s2 AS (SELECT s.user_id, s.t1, min(e.time) AS t FROM s1 s JOIN ev e USING (user_id)
           WHERE e.event = 'ViewFundDetail' AND e.time >= s.t1 AND e.time <= s.t1 + $w
           GROUP BY ALL),
    s3 AS (SELECT s.user_id, s.t1, min(e.time) AS t FROM s2 s JOIN ev e USING (user_id)
           WHERE e.event = 'BuyFund' AND e.time >= s.t AND e.time <= s.t1 + $w GROUP BY ALL),
    s4 AS (SELECT s.user_id, s.t1, min(e.time) AS t FROM s3 s JOIN ev e USING (user_id)
           WHERE e.event = 'Deposit' AND e.time >= s.t AND e.time <= s.t1 + $w GROUP BY ALL)
    SELECT (SELECT count(*) FROM s1), (SELECT count(*) FROM s2), (SELECT count(*) FROM s3),
           (SELECT count(*) FROM s4)
    """
    params = {"start": start, "end": end, "horizon": horizon, "w": timedelta(days=window_days)}
    result: list[tuple[Any, ...]] = cur.execute(sql, params).fetchall()
    return result


def hand_retention(cur: Any, first: date, last: date, periods: int) -> list[tuple[Any, ...]]:
    """The 30-day retention table by hand: cohort = first $AppStart day, return = any event."""
    start, end = day_start_utc(first), day_start_utc(last + timedelta(days=1))
    sql = """
    WITH cohort AS (
        SELECT user_id, min(CAST(time + INTERVAL 8 HOUR AS DATE)) AS d FROM p1_events
        WHERE event = '$AppStart' AND time >= $start AND time < $end GROUP BY user_id
    ),
    active AS (
        SELECT DISTINCT user_id, CAST(time + INTERVAL 8 HOUR AS DATE) AS d FROM p1_events
        WHERE time >= $start AND time < $returns_end
    )
    SELECT c.d, a.d - c.d AS n, count(*) FROM cohort c JOIN active a USING (user_id)
    WHERE a.d >= c.d AND a.d - c.d <= $periods
    GROUP BY ALL ORDER BY 1, 2
    """
    params = {
        "start": start,
        "end": end,
        "returns_end": end + timedelta(days=periods),
        "periods": periods,
    }
    result: list[tuple[Any, ...]] = cur.execute(sql, params).fetchall()
    return result


def measure(label: str, fn: Any, repeats: int) -> list[float]:
    """Wall-clock timings (sorted); also prints the process CPU time (all DuckDB threads),
    which is what the query costs when the shared machine is busy."""
    fn()  # warm-up (file pages, plan caches)
    timings, cpu = [], []
    for _ in range(repeats):
        started, cpu_started = time.perf_counter(), time.process_time()
        fn()
        timings.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
    timings.sort()
    p50 = statistics.median(timings)
    p99 = timings[min(len(timings) - 1, round(0.99 * (len(timings) - 1)))]
    print(
        f"{label:<36} p50 {p50 * 1000:>7.0f} ms  p99 {p99 * 1000:>7.0f} ms"
        f"  cpu p50 {statistics.median(cpu) * 1000:>7.0f} ms"
    )
    return timings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=30_000_000)
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=0, help="DuckDB threads (0: default)")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))

    from flywheel.analytics import service
    from flywheel.analytics.schemas import FunnelIn, RetentionIn
    from flywheel.warehouse import Warehouse

    OUT.mkdir(exist_ok=True)
    path = OUT / f"analytics-{args.events}-{args.users}.duckdb"
    if not path.exists():
        generate(path, args.events, args.users)
    warehouse = Warehouse(str(path))
    cur = warehouse.cursor()
    if args.threads:
        cur.execute(f"SET threads = {int(args.threads)}")
    total = cur.execute("SELECT count(*), count(DISTINCT user_id) FROM p1_events").fetchone()
    assert total is not None
    threads = cur.execute("SELECT current_setting('threads')").fetchone()
    print(f"events              {total[0]:>12,}   users {total[1]:,}   threads {threads}")
    print(f"load average        {' '.join(f'{v:.1f}' for v in os.getloadavg())}")

    first_day = DAY_LAST - timedelta(days=DAYS - 1)
    funnel_in = FunnelIn.model_validate(
        {
            "steps": [{"event": e} for e in FUNNEL],
            "date_range": {"from": first_day.isoformat(), "to": DAY_LAST.isoformat()},
            "window_days": 7,
        }
    )
    cohort_first, cohort_last = DAY_LAST - timedelta(days=59), DAY_LAST - timedelta(days=30)
    retention_in = RetentionIn.model_validate(
        {
            "start_event": "$AppStart",
            "unit": "day",
            "periods": 30,
            "date_range": {"from": cohort_first.isoformat(), "to": cohort_last.isoformat()},
        }
    )

    def run_funnel() -> Any:
        return service.funnel(warehouse=warehouse, project_id=1, request=funnel_in, now=NOW)

    def run_retention() -> Any:
        return service.retention(warehouse=warehouse, project_id=1, request=retention_in, now=NOW)

    # Same answers first: the service and the hand-written SQL agree.
    ours = [s.users for s in run_funnel().steps]
    theirs = list(hand_funnel(cur, first_day, DAY_LAST, 7)[0])
    assert ours == theirs, (ours, theirs)
    print(f"funnel users        {ours}")
    table = run_retention()
    hand = hand_retention(cur, cohort_first, cohort_last, 30)
    assert sum(sum(r for r in c.retained if r is not None) for c in table.cohorts) == sum(
        r[2] for r in hand
    )
    print(
        f"retention cohorts   {len(table.cohorts)}  day-1 {table.average_rates[1]:.3f}  "
        f"day-30 {table.average_rates[30]:.3f}"
    )

    f_ours = measure("funnel 4 steps, service", run_funnel, args.repeats)
    f_hand = measure(
        "funnel 4 steps, hand-written SQL",
        lambda: hand_funnel(cur, first_day, DAY_LAST, 7),
        args.repeats,
    )
    r_ours = measure("retention 30 days, service", run_retention, args.repeats)
    r_hand = measure(
        "retention 30 days, hand-written SQL",
        lambda: hand_retention(cur, cohort_first, cohort_last, 30),
        args.repeats,
    )
    print(f"ratio funnel        {statistics.median(f_ours) / statistics.median(f_hand):.2f}")
    print(f"ratio retention     {statistics.median(r_ours) / statistics.median(r_hand):.2f}")
    warehouse.close()


if __name__ == "__main__":
    main()
