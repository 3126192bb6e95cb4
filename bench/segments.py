"""Benchmark: segment preview on 1 M customers and ≥ 30 M events (DuckDB, 2 cores).

    .venv/bin/python bench/segments.py [--events 30000000] [--users 1000000] [--repeats 15]

Generates (once, cached in ``bench/out/tags-segments-<events>-<users>.duckdb``) profiles and
events shaped like the demo brokerage directly with DuckDB SQL, in the warehouse layout of
project 1. Then opens a real runtime on that warehouse and measures

* the canonical 3-rule segment (profile ``in`` + BuyFund count ≥ 2 in 7 days + no RedeemFund in
  30 days) through ``segments.service.count_rule`` (parse, compile with SQLGlot, bound
  parameters, run) and ``segments.service.preview`` (count + 10 sample ids);
* the same segment as hand-written DuckDB SQL (one scan with conditional aggregates), and the
  ratio between the two;
* peak RSS of the process.

Figures print and are written to docs/benchmarks.md under "Tags and segments" (with
bench/tags.py's). The machine is shared: figures are noisy.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

OUT = Path(__file__).resolve().parent / "out"
DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
#: The data covers the 90 Shanghai days ending on DAY_LAST; "now" is the next morning 10:00.
DAY_LAST = date(2026, 11, 1)
DAYS = 90
NOW = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)
MEMORY_LIMIT = "3GB"

EVENT_MIX = [
    ("$AppStart", 0.20),
    ("$AppViewScreen", 0.26),
    ("$AppEnd", 0.10),
    ("Login", 0.08),
    ("Search", 0.05),
    ("ViewFundDetail", 0.12),
    ("BuyFund", 0.04),
    ("RedeemFund", 0.015),
    ("CreateAutoInvestPlan", 0.01),
    ("TerminateAutoInvestPlan", 0.004),
    ("AutoInvestPaymentFailed", 0.006),
    ("AssetChange", 0.05),
    ("Deposit", 0.02),
    ("TradeStock", 0.04),
    ("OpenMarginAccount", 0.003),
    ("WeChatFollow", 0.002),
]

CANONICAL: dict[str, Any] = {
    "relation": "and",
    "rules": [
        {
            "type": "profile_rule",
            "field": "risk_tolerance",
            "function": "in",
            "params": ["C3", "C4", "C5"],
        },
        {
            "type": "event_rule",
            "measure": {"event": "BuyFund", "aggregator": "count"},
            "window": {"relative_days": 7},
            "function": "gte",
            "params": [2],
        },
        {
            "type": "event_rule",
            "measure": {"event": "RedeemFund", "aggregator": "count"},
            "window": {"relative_days": 30},
            "function": "equal",
            "params": [0],
        },
    ],
}

HAND_WRITTEN = """
SELECT COUNT(*) FROM p1_users u
LEFT JOIN (
    SELECT user_id,
           COUNT(*) FILTER (WHERE event = 'BuyFund' AND time >= $buy_from) AS buys,
           COUNT(*) FILTER (WHERE event = 'RedeemFund') AS redeems
    FROM p1_events
    WHERE time >= $redeem_from AND time < $until AND event IN ('BuyFund', 'RedeemFund')
    GROUP BY user_id
) e ON e.user_id = u.user_id
WHERE u.risk_tolerance IN ('C3', 'C4', 'C5')
  AND COALESCE(e.buys, 0) >= 2 AND COALESCE(e.redeems, 0) = 0
"""


def data_path(events: int, users: int) -> Path:
    return OUT / f"tags-segments-{events}-{users}.duckdb"


def generate(path: Path, events: int, users: int) -> None:
    """Write ``users`` profiles and ``events`` events into the warehouse file at ``path``."""
    from flywheel.warehouse import PropertyType, TableKind, Warehouse

    OUT.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.duckdb")
    tmp.unlink(missing_ok=True)
    wh = Warehouse(str(tmp))
    wh.ensure_project(1)
    s, n, b, d, t = (
        PropertyType.STRING,
        PropertyType.NUMBER,
        PropertyType.BOOL,
        PropertyType.DATE,
        PropertyType.DATETIME,
    )
    wh.ensure_columns(
        1,
        TableKind.USERS,
        {
            "name": s,
            "mobile": s,
            "gender": s,
            "birthday": d,
            "city": s,
            "branch": s,
            "advisor_id": s,
            "risk_tolerance": s,
            "risk_assessment_expiry": d,
            "account_open_date": d,
            "total_assets": n,
            "has_margin_account": b,
            "has_fund_account": b,
            "channel": s,
            "last_login_time": t,
        },
    )
    wh.ensure_columns(
        1,
        TableKind.EVENTS,
        {
            "item_id": s,
            "item_type": s,
            "amount": n,
            "fund_category": s,
            "risk_level": s,
            "plan_id": s,
            "reason": s,
            "total_assets": n,
            "$os": s,
            "keyword": s,
        },
    )
    cur = wh.cursor()
    cur.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
    cur.execute("SELECT setseed(0.42)")
    started = time.perf_counter()
    cur.execute(
        f"""
        INSERT INTO p1_users BY NAME
        SELECT i AS user_id, TIMESTAMP '2026-11-01 12:00:00' AS "$update_time",
            '客户' || i AS name, '138' || lpad(i::VARCHAR, 8, '0') AS mobile,
            CASE WHEN random() < 0.5 THEN 'M' ELSE 'F' END AS gender,
            DATE '1950-01-01' + CAST(random() * 20000 AS INTEGER) AS birthday,
            (['上海', '北京', '深圳', '杭州', '广州', '成都'])
                [1 + CAST(floor(random() * 6) AS INTEGER)] AS city,
            'BR' || lpad((1 + i % 40)::VARCHAR, 3, '0') AS branch,
            'ADV' || lpad((1 + i % 1500)::VARCHAR, 4, '0') AS advisor_id,
            'C' || (1 + CAST(floor(random() * 5) AS INTEGER)) AS risk_tolerance,
            DATE '2026-11-02' + CAST(random() * 700 - 200 AS INTEGER) AS risk_assessment_expiry,
            DATE '2026-11-02' - CAST(pow(random(), 2) * 3000 AS INTEGER) AS account_open_date,
            round(exp(8 + random() * 7), 2) AS total_assets,
            random() < 0.15 AS has_margin_account,
            random() < 0.8 AS has_fund_account,
            (['app', 'wechat', 'branch', 'web'])[1 + CAST(floor(random() * 4) AS INTEGER)]
                AS channel,
            TIMESTAMP '2026-11-02 02:00:00' - to_minutes(CAST(random() * 129600 AS BIGINT))
                AS last_login_time
        FROM range(1, {users + 1}) t(i)
        """
    )
    print(f"  users: {users:,} in {time.perf_counter() - started:.1f}s", flush=True)
    bounds, acc = [], 0.0
    total = sum(w for _, w in EVENT_MIX)
    for name, weight in EVENT_MIX:
        acc += weight / total
        bounds.append((acc, name))
    case = " ".join(f"WHEN r < {edge:.6f} THEN '{name}'" for edge, name in bounds[:-1])
    event_expr = f"CASE {case} ELSE '{bounds[-1][1]}' END"
    per_day = events // DAYS
    for day_index in range(DAYS):
        day = DAY_LAST.toordinal() - (DAYS - 1 - day_index)
        day_start = datetime.fromordinal(day).isoformat(sep=" ")
        count = per_day if day_index < DAYS - 1 else events - per_day * (DAYS - 1)
        cur.execute(
            f"""
            INSERT INTO p1_events BY NAME
            SELECT 'e{day_index}-' || i AS id, uid AS user_id, 'd' || uid AS distinct_id,
                ev AS event, t AS time, t + INTERVAL 2 SECOND AS "$receive_time",
                CASE WHEN ev IN ('ViewFundDetail', 'BuyFund', 'RedeemFund',
                    'CreateAutoInvestPlan', 'TerminateAutoInvestPlan',
                    'AutoInvestPaymentFailed', 'TradeStock')
                    THEN 'F' || lpad((1 + CAST(floor(random() * 200) AS INTEGER))::VARCHAR, 4, '0')
                END AS item_id,
                CASE WHEN ev = 'TradeStock' THEN 'stock'
                     WHEN ev IN ('ViewFundDetail', 'BuyFund', 'RedeemFund') THEN 'fund' END
                    AS item_type,
                CASE WHEN ev IN ('BuyFund', 'RedeemFund', 'CreateAutoInvestPlan',
                    'AutoInvestPaymentFailed', 'Deposit', 'TradeStock')
                    THEN round(100 + random() * 50000, 2) END AS amount,
                CASE WHEN ev IN ('ViewFundDetail', 'BuyFund')
                    THEN (['货币', '债券', '混合', '股票', '指数', 'QDII', 'FOF'])
                        [1 + CAST(floor(random() * 7) AS INTEGER)] END AS fund_category,
                CASE WHEN ev = 'ViewFundDetail'
                    THEN 'R' || (1 + CAST(floor(random() * 5) AS INTEGER)) END AS risk_level,
                CASE WHEN ev LIKE '%AutoInvest%' THEN 'P' || (uid % 100000) END AS plan_id,
                CASE WHEN ev IN ('AutoInvestPaymentFailed', 'TerminateAutoInvestPlan')
                    THEN (['insufficient_balance', 'card_expired', 'user_request'])
                        [1 + CAST(floor(random() * 3) AS INTEGER)] END AS reason,
                CASE WHEN ev = 'AssetChange' THEN round(exp(8 + random() * 7), 2) END
                    AS total_assets,
                CASE WHEN ev = '$AppStart' THEN
                    (['iOS', 'Android'])[1 + CAST(floor(random() * 2) AS INTEGER)] END AS "$os",
                CASE WHEN ev = 'Search' THEN '基金' END AS keyword
            FROM (
                SELECT i, uid, t, {event_expr} AS ev FROM (
                    SELECT i, 1 + CAST(floor(pow(random(), 1.6) * {users}) AS BIGINT) AS uid,
                        random() AS r,
                        TIMESTAMP '{day_start}' - INTERVAL 8 HOUR
                            + to_microseconds(CAST(i * (86400000000 // {count}) AS BIGINT)) AS t
                    FROM range({count}) t(i)
                ) raw
            ) s
            """
        )
        if day_index % 15 == 14:
            print(f"  events: day {day_index + 1}/{DAYS}", flush=True)
    cur.execute("CHECKPOINT")
    wh.close()
    tmp.rename(path)
    print(f"  generated {path.name} in {time.perf_counter() - started:.0f}s", flush=True)


def open_bench_runtime(path: Path, label: str) -> Any:
    """A real runtime (fresh SQLite, the cached warehouse file) with the clock at NOW."""
    import shutil

    from flywheel.bootstrap import open_runtime
    from flywheel.config import Settings
    from flywheel.core.clock import FrozenClock

    data_dir = OUT / f"runtime-{label}"
    shutil.rmtree(data_dir, ignore_errors=True)
    settings = Settings(env="test", data_dir=data_dir, warehouse_url=f"duckdb:///{path}")
    runtime = open_runtime(settings, clock=FrozenClock(NOW))
    runtime.warehouse.cursor().execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
    runtime.warehouse.cursor().execute("SET threads = 2")
    return runtime


CPU: dict[int, list[float]] = {}


def timed(fn: Any, repeats: int) -> tuple[list[float], Any]:
    """Wall seconds of ``repeats`` calls after a warm-up; CPU seconds (all threads of the
    process) kept in ``CPU[id(samples)]``."""
    result = fn()  # warm-up
    samples: list[float] = []
    cpu: list[float] = []
    for _ in range(repeats):
        started, cpu_started = time.perf_counter(), time.process_time()
        result = fn()
        samples.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
    CPU[id(samples)] = cpu
    return samples, result


def cpu_ms(samples: list[float]) -> str:
    return f"{statistics.median(CPU[id(samples)]) * 1000:.0f} ms"


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_section(key: str, lines: list[str]) -> None:
    """Replace this script's block inside the "Tags and segments" section of the bench doc."""
    DOCS.parent.mkdir(parents=True, exist_ok=True)
    text = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n"
    header = "## Tags and segments"
    begin, end = f"<!-- {key}:begin -->", f"<!-- {key}:end -->"
    block = "\n".join([begin, *lines, end])
    if header not in text:
        text = text.rstrip() + f"\n\n{header}\n\n" + block + "\n"
    elif begin in text:
        before, rest = text.split(begin, 1)
        text = before + block + rest.split(end, 1)[1]
    else:
        head, tail = text.split(header, 1)
        text = head + header + "\n\n" + block + "\n" + tail
    DOCS.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=30_000_000)
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))

    from flywheel.core.clock import utc_naive
    from flywheel.rules.compiler import sh_midnight
    from flywheel.segments import service

    path = data_path(args.events, args.users)
    if not path.exists():
        print(f"generating {path.name} …", flush=True)
        generate(path, args.events, args.users)
    runtime = open_bench_runtime(path, "segments")
    wh = runtime.warehouse
    n_events = wh.fetch("SELECT COUNT(*) FROM p1_events")[0][0]
    n_users = wh.fetch("SELECT COUNT(*) FROM p1_users")[0][0]
    print(f"data: {n_users:,} customers, {n_events:,} events (project 1)")

    def count() -> int:
        with runtime.db.unit_of_work() as session:
            return service.count_rule(
                session=session, warehouse=wh, project_id=1, rule=CANONICAL, now=NOW
            )

    def preview() -> int:
        with runtime.db.unit_of_work() as session:
            out = service.preview(
                session=session, warehouse=wh, project_id=1, rule=CANONICAL, now=NOW
            )
        return out.count

    params = {
        "buy_from": sh_midnight(date(2026, 10, 27)),
        "redeem_from": sh_midnight(date(2026, 10, 4)),
        "until": utc_naive(NOW),
    }

    def hand() -> int:
        return int(wh.cursor().execute(HAND_WRITTEN, params).fetchone()[0])

    count_s, counted = timed(count, args.repeats)
    preview_s, previewed = timed(preview, max(3, args.repeats // 3))
    hand_s, handed = timed(hand, args.repeats)
    if not counted == previewed == handed:
        print(f"MISMATCH: compiled {counted}, preview {previewed}, hand-written {handed}")
        sys.exit(1)
    ratio = statistics.median(count_s) / statistics.median(hand_s)

    # A dynamic segment: first refresh (everyone enters: events + operational mirror), a second
    # one a day later (only the diff).
    from flywheel.core.clock import FrozenClock
    from flywheel.segments.schemas import SegmentIn

    broad = {
        "relation": "and",
        "rules": [
            {
                "type": "profile_rule",
                "field": "risk_tolerance",
                "function": "in",
                "params": ["C3", "C4", "C5"],
            },
            {
                "type": "event_rule",
                "measure": {"event": "Login"},
                "window": {"relative_days": 7},
                "function": "did",
            },
        ],
    }
    with runtime.db.unit_of_work() as session:
        segment_id = service.create_segment(
            session=session,
            warehouse=wh,
            project_id=1,
            segment_in=SegmentIn(name="bench broad", rule=broad),
            actor="bench",
            now=NOW,
        ).id
    refreshes = []
    for moment in (NOW, NOW + timedelta(days=1)):
        assert isinstance(runtime.clock, FrozenClock)
        runtime.clock.set(moment)
        started = time.perf_counter()
        with runtime.db.unit_of_work() as session:
            out = service.refresh_segment(
                session=session, warehouse=wh, project_id=1, segment_id=segment_id, now=moment
            )
        refreshes.append((time.perf_counter() - started, out))
    wh.cursor().execute("DELETE FROM p1_events WHERE event IN ('$SegmentEnter', '$SegmentLeave')")
    wh.cursor().execute("DELETE FROM p1_segment_members")
    rss = peak_rss_mib()
    lines = [
        f"Canonical 3-rule segment on {n_users:,} customers / {n_events:,} events "
        f"(DuckDB, memory_limit {MEMORY_LIMIT}, 2 threads; {counted:,} customers match).",
        "",
        "| measure | wall p50 | wall p99 | CPU p50 (both threads) |",
        "| --- | --- | --- | --- |",
        f"| preview count (DSL → SQLGlot → DuckDB; target ≤ 1 s) "
        f"| {statistics.median(count_s) * 1000:.0f} ms "
        f"| {pct(count_s, 0.99) * 1000:.0f} ms | {cpu_ms(count_s)} |",
        f"| preview count + 10 sample ids (`POST /segments/preview`) "
        f"| {statistics.median(preview_s) * 1000:.0f} ms "
        f"| {pct(preview_s, 0.99) * 1000:.0f} ms | {cpu_ms(preview_s)} |",
        f"| hand-written DuckDB SQL (one scan, FILTER aggregates) "
        f"| {statistics.median(hand_s) * 1000:.0f} ms | {pct(hand_s, 0.99) * 1000:.0f} ms "
        f"| {cpu_ms(hand_s)} |",
        f"| dynamic segment refresh, first (+{refreshes[0][1].entered:,} entered: membership, "
        f"events, operational mirror) | {refreshes[0][0] * 1000:.0f} ms | | |",
        f"| dynamic segment refresh, next day (+{refreshes[1][1].entered:,} "
        f"−{refreshes[1][1].left:,}) | {refreshes[1][0] * 1000:.0f} ms | | |",
        "",
        f"Ratio compiled / hand-written (p50): **{ratio:.2f}×**. Peak RSS {rss:,.0f} MiB. "
        f"Load average {os.getloadavg()[0]:.1f} on 2 cores (shared machine). "
        f"Command: `.venv/bin/python bench/segments.py --events {args.events} "
        f"--users {args.users} --repeats {args.repeats}`.",
    ]
    print("\n".join(lines))
    if not args.no_docs:
        write_section("bench-segments", lines)
    runtime.close()


if __name__ == "__main__":
    main()
