"""Benchmark: the journey report over a journey with 1,000,000 entrants.

    .venv/bin/python bench/journey_report.py [--entrants 1000000] [--noise 5000000] [--repeats 7]

Opens a fresh runtime under ``bench/out/journey-report-<entrants>/`` (SQLite + DuckDB), creates
the journey (entry → A/B/control split → SMS or webhook send → goal node → exit, with a
journey goal metric ``BuyFund`` ≥ 1,000 CNY within 7 days) and generates its system events
directly in DuckDB with SQL, in the layout ``channels.system_events`` writes: per entrant
``$JourneyEnter``, ``$JourneyNodeEnter`` × 3–4, ``$MessagePrepared`` / ``Sent`` /
``Delivered`` / ``Opened`` / ``Clicked`` / ``Failed`` / ``Blocked`` (by reason), ``$JourneyGoal``;
plus ``BuyFund`` purchases and ``--noise`` unrelated app events. Then times
``journey_reports.journey_report`` (plain, with a variant drill-down, and for a branch-scoped
principal) and prints p50/p99 and the peak RSS. Data is cached; figures are noisy when the
machine is shared.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

OUT = Path(__file__).resolve().parent / "out"
NOW = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
BASE = "2026-09-30 16:00:00"  # Shanghai 2026-10-01 00:00 in UTC
DEFINITION: dict[str, Any] = {
    "name": "bench journey",
    "campaign": "bench",
    "goals": [
        {
            "event": "BuyFund",
            "window_seconds": 7 * 86400,
            "filters": [{"property": "amount", "op": "gte", "value": 1000}],
        }
    ],
    "nodes": [
        {"id": "in", "type": "entry_segment", "segment_id": 1},
        {
            "id": "ab",
            "type": "split",
            "branches": [
                {"port": "a", "weight": 45},
                {"port": "b", "weight": 45},
                {"port": "control", "weight": 10},
            ],
        },
        {
            "id": "send_a",
            "type": "send",
            "channel": "sms",
            "content": {"text": "尊敬的客户，您关注的稳健理财产品本周开放申购。" * 4},
        },
        {
            "id": "send_b",
            "type": "send",
            "channel": "webhook",
            "webhook": {"url": "http://127.0.0.1:9/hook", "secret": "s"},
            "content": {"text": "hello"},
        },
        {"id": "g_b", "type": "goal", "event": "BuyFund", "window_seconds": 3 * 86400},
        {"id": "out", "type": "exit"},
    ],
    "edges": [
        {"from": "in", "to": "ab"},
        {"from": "ab", "to": "send_a", "port": "a"},
        {"from": "ab", "to": "send_b", "port": "b"},
        {"from": "ab", "to": "out", "port": "control"},
        {"from": "send_a", "to": "out"},
        {"from": "send_b", "to": "g_b"},
        {"from": "g_b", "to": "out", "port": "reached"},
        {"from": "g_b", "to": "out", "port": "timeout"},
    ],
}

#: Per entrant: u (user id), t0 (entry), v (variant), r1..r4 (uniform draws in [0, 1)).
ENTRANTS = """
    SELECT u, TIMESTAMP '{base}' + to_seconds(CAST(hash(u, 1) % (30 * 86400) AS BIGINT)) AS t0,
           CASE WHEN hash(u, 2) % 100 < 45 THEN 'a' WHEN hash(u, 2) % 100 < 90 THEN 'b'
                ELSE 'control' END AS v,
           (hash(u, 3) % 10000) / 10000.0 AS r1, (hash(u, 4) % 10000) / 10000.0 AS r2,
           (hash(u, 5) % 10000) / 10000.0 AS r3, (hash(u, 6) % 10000) / 10000.0 AS r4
    FROM range(1, {n} + 1) AS r(u)
"""
COLUMNS = (
    'id, user_id, distinct_id, event, time, "$receive_time", journey_id, journey_version, '
    "node_id, node_type, variant, channel, message_id, reason, goal, amount"
)


def _rows(kind: str, event: str, at: str, where: str, **cols: str) -> str:
    values = {
        "node_id": "NULL",
        "node_type": "NULL",
        "variant": "NULL",
        "channel": "NULL",
        "message_id": "NULL",
        "reason": "NULL",
        "goal": "NULL",
        "amount": "NULL",
        **cols,
    }
    return (
        f"SELECT '{kind}' || u, u, CAST(u AS VARCHAR), '{event}', {at}, {at}, 1.0, 1.0, "
        f"{values['node_id']}, {values['node_type']}, {values['variant']}, {values['channel']}, "
        f"{values['message_id']}, {values['reason']}, {values['goal']}, {values['amount']} "
        f"FROM x WHERE {where}"
    )


def generate(runtime: Any, entrants: int, noise: int) -> int:
    """Create the journey and write its events; returns the journey id."""
    from flywheel.channels import system_events as se
    from flywheel.journeys.models import Journey, JourneyVersion
    from flywheel.warehouse.engine import PropertyType, TableKind

    with runtime.db.unit_of_work() as session:
        journey = Journey(project_id=1, name="bench", status="published", draft=DEFINITION)
        session.add(journey)
        session.flush()
        version = JourneyVersion(
            project_id=1, journey_id=journey.id, number=1, definition=DEFINITION
        )
        session.add(version)
        session.flush()
        journey.live_version_id = version.id
        journey_id = int(journey.id)
    wh = runtime.warehouse
    wh.ensure_project(1)
    wh.ensure_columns(1, TableKind.EVENTS, {**se.PROPERTY_TYPES, "amount": PropertyType.NUMBER})
    wh.ensure_columns(1, TableKind.USERS, {"branch": PropertyType.STRING})
    cur = wh.cursor()
    started = time.perf_counter()
    send = "CASE WHEN v = 'a' THEN 'send_a' ELSE 'send_b' END"
    channel = "CASE WHEN v = 'a' THEN 'sms' ELSE 'webhook' END"
    msg = {"node_id": send, "variant": "v", "channel": channel, "message_id": "CAST(u AS DOUBLE)"}
    treated = "v <> 'control'"
    goal_at = "t0 + to_seconds(CAST(r4 * 3 * 86400 AS BIGINT))"
    # Shaped as the engine writes them: entry, exit and sending nodes have no
    # $JourneyNodeEnter ($JourneyEnter / $JourneyExit / $MessagePrepared carry the node id).
    parts = [
        _rows("je", se.JOURNEY_ENTER, "t0", "TRUE", node_id="'in'"),
        _rows("n1", se.NODE_ENTER, "t0 + INTERVAL 1 SECOND", "TRUE", node_id="'ab'"),
        _rows(
            "xc",
            se.JOURNEY_EXIT,
            "t0 + INTERVAL 1 SECOND",
            "NOT " + treated,
            node_id="'ab'",
            variant="v",
            reason="'control'",
        ),
        _rows("mp", se.MESSAGE_PREPARED, "t0 + INTERVAL 2 SECOND", treated, **msg),
        _rows(
            "mb",
            se.MESSAGE_BLOCKED,
            "t0 + INTERVAL 3 SECOND",
            f"{treated} AND r1 < 0.12",
            reason="['quiet_hours', 'frequency_cap', 'no_consent'][1 + CAST(u % 3 AS BIGINT)]",
            **msg,
        ),
        _rows(
            "mf",
            se.MESSAGE_FAILED,
            "t0 + INTERVAL 5 SECOND",
            f"{treated} AND r1 >= 0.12 AND r1 < 0.17",
            reason="'timeout'",
            **msg,
        ),
        _rows("ms", se.MESSAGE_SENT, "t0 + INTERVAL 5 SECOND", f"{treated} AND r1 >= 0.17", **msg),
        _rows(
            "md",
            se.MESSAGE_DELIVERED,
            "t0 + INTERVAL 9 SECOND",
            f"{treated} AND r1 >= 0.17 AND r2 < 0.9",
            **msg,
        ),
        _rows(
            "mo",
            se.MESSAGE_OPENED,
            "t0 + INTERVAL 30 MINUTE",
            f"{treated} AND r1 >= 0.17 AND r2 < 0.45",
            **msg,
        ),
        _rows(
            "mc",
            se.MESSAGE_CLICKED,
            "t0 + INTERVAL 31 MINUTE",
            f"{treated} AND r1 >= 0.17 AND r2 < 0.18",
            **msg,
        ),
        _rows(
            "xa",
            se.JOURNEY_EXIT,
            "t0 + INTERVAL 2 SECOND",
            "v = 'a'",
            node_id="'out'",
            variant="v",
            reason="'exit'",
        ),
        _rows(
            "ng", se.NODE_ENTER, "t0 + INTERVAL 10 SECOND", "v = 'b'", node_id="'g_b'", variant="v"
        ),
        _rows(
            "gl",
            se.GOAL,
            goal_at,
            "v = 'b' AND r3 < 0.3",
            node_id="'g_b'",
            goal="'g_b'",
            variant="v",
        ),
        _rows(
            "xb",
            se.JOURNEY_EXIT,
            goal_at,
            "v = 'b' AND r3 < 0.3",
            node_id="'out'",
            variant="v",
            reason="'exit'",
        ),
        _rows(
            "by",
            "BuyFund",
            "t0 + to_seconds(CAST(r4 * 10 * 86400 AS BIGINT))",
            "r3 < CASE v WHEN 'a' THEN 0.25 WHEN 'b' THEN 0.35 ELSE 0.2 END",
            amount="[500.0, 2000.0, 5000.0][1 + CAST(u % 3 AS BIGINT)]",
        ),
    ]
    entrants_sql = ENTRANTS.format(base=BASE, n=entrants)
    cur.execute(
        f"INSERT INTO p1_events ({COLUMNS}) WITH x AS ({entrants_sql}) "
        f"SELECT * FROM ({' UNION ALL '.join(parts)}) ORDER BY 5"
    )
    if noise:
        cur.execute(
            f"""
            INSERT INTO p1_events (id, user_id, distinct_id, event, time, "$receive_time")
            SELECT 'z' || i, 1 + i % {entrants * 2}, 'd' || i,
                   ['$AppStart', '$AppViewScreen', 'Search', 'ViewFundDetail'][1 + i % 4],
                   TIMESTAMP '{BASE}' + to_seconds(CAST(hash(i) % (50 * 86400) AS BIGINT)),
                   TIMESTAMP '{BASE}'
            FROM range({noise}) AS r(i) ORDER BY 5
            """
        )
    cur.execute(
        f"""INSERT INTO p1_users (user_id, "$update_time", branch)
        SELECT u, TIMESTAMP '{BASE}', 'BR' || lpad(CAST(1 + u % 40 AS VARCHAR), 3, '0')
        FROM range(1, {entrants * 2} + 1) AS r(u)"""
    )
    cur.execute("CHECKPOINT")
    total = cur.execute("SELECT count(*) FROM p1_events").fetchone()
    print(
        f"generated           {total[0] if total else 0:>12,} events in "
        f"{time.perf_counter() - started:.1f} s"
    )
    return journey_id


def measure(label: str, fn: Any, repeats: int) -> Any:
    result = fn()  # warm-up
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
        f"{label:<34} p50 {p50 * 1000:>7.0f} ms  p99 {p99 * 1000:>7.0f} ms"
        f"  cpu p50 {statistics.median(cpu) * 1000:>7.0f} ms"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entrants", type=int, default=1_000_000)
    parser.add_argument("--noise", type=int, default=5_000_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))

    from flywheel.analytics import journey_reports as reports
    from flywheel.analytics.schemas import ChannelPriceIn
    from flywheel.auth.permissions import ROLES
    from flywheel.auth.schemas import Principal
    from flywheel.bootstrap import open_runtime
    from flywheel.config import Settings

    folder = OUT / f"journey-report-{args.entrants}-{args.noise}"
    fresh = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    runtime = open_runtime(Settings(env="test", data_dir=folder))
    try:
        if fresh:
            journey_id = generate(runtime, args.entrants, args.noise)
            with runtime.db.unit_of_work() as session:
                for channel, unit, price in (
                    ("sms", "sms_segment", 0.045),
                    ("webhook", "message", 0.001),
                ):
                    reports.set_price(
                        session=session,
                        project_id=1,
                        channel=channel,
                        price_in=ChannelPriceIn(unit=unit, unit_price=price),  # type: ignore[arg-type]
                        actor="bench",
                        now=NOW,
                    )
        else:
            journey_id = 1
        threads = runtime.warehouse.fetch("SELECT current_setting('threads')")[0][0]
        print(
            f"entrants            {args.entrants:>12,}   noise {args.noise:,}   threads {threads}"
        )
        print(f"load average        {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
        scoped = Principal(
            user_id=0,
            username="bench",
            role="analyst",
            permissions=ROLES["analyst"],
            branch_scope=("BR001", "BR002", "BR003", "BR004"),
        )

        def run(**kwargs: Any) -> Any:
            with runtime.db.unit_of_work() as session:
                return reports.journey_report(
                    session=session,
                    warehouse=runtime.warehouse,
                    project_id=1,
                    journey_id=journey_id,
                    now=NOW,
                    **kwargs,
                )

        report = measure("report (all entrants)", run, args.repeats)
        print(
            f"  entrants {report.entrants:,}  conversions {report.conversions:,}  "
            f"cost {report.cost_total:,.2f} CNY  srm p {report.experiment.srm_p_value:.3f}"
        )
        measure("report + drill-down by variant", lambda: run(breakdown="variant"), args.repeats)
        measure("report + drill-down by branch", lambda: run(breakdown="branch"), args.repeats)
        scoped_report = measure(
            "report, branch-scoped (4 of 40)", lambda: run(principal=scoped), args.repeats
        )
        print(f"  scoped entrants {scoped_report.entrants:,}")
        measure(
            "report, one week of entries",
            lambda: run(
                from_date=datetime(2026, 10, 8).date(), to_date=datetime(2026, 10, 14).date()
            ),
            args.repeats,
        )
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS            {peak:,.0f} MiB")
    finally:
        runtime.close()


if __name__ == "__main__":
    main()
