"""Benchmark: full recompute of 20 mixed tags, and real-time tag latency, on 1 M customers and
≥ 30 M events (the warehouse file of bench/segments.py, generated when missing).

    .venv/bin/python bench/tags.py [--events 30000000] [--users 1000000] [--latency-samples 20]

* creates 20 tags of every computed kind through ``tags.service`` (rule incl. sequence and
  did-not-do, metric buckets/quantiles, first/last, preference, RFM, SQL, a rule tag reading
  another tag) and runs them all once (``run_due_tags``: dependency order), timing the whole;
* starts the real-time updater loop (``RealtimeTagUpdater`` on a ``LoopRunner`` thread), appends
  a Login event at a time and measures event appended → tag value updated (p50/p99);
* prints peak RSS of the process.

Figures go to docs/benchmarks.md under "Tags and segments".
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import timedelta
from typing import Any

import pyarrow as pa
import structlog
from segments import (  # type: ignore[import-not-found]  (bench/segments.py, run as a script)
    NOW,
    data_path,
    generate,
    open_bench_runtime,
    pct,
    peak_rss_mib,
    write_section,
)

R7 = {"relative_days": 7}
R30 = {"relative_days": 30}
R90 = {"relative_days": 90}


def _event(event: str | None, function: str, *params: Any, window: Any = R30) -> dict[str, Any]:
    return {
        "type": "event_rule",
        "measure": {"event": event},
        "window": window,
        "function": function,
        "params": list(params),
    }


def _rule(*rules: dict[str, Any], relation: str = "and") -> dict[str, Any]:
    return {"relation": relation, "rules": list(rules)}


TAGS: list[tuple[str, str, dict[str, Any]]] = [
    (
        "activity_level",
        "rule",
        {
            "values": [
                {"value": "heavy", "rule": _rule(_event(None, "gte", 40))},
                {"value": "active", "rule": _rule(_event(None, "gte", 5))},
                {"value": "dormant", "rule": _rule(_event(None, "notDid"))},
            ]
        },
    ),
    (
        "margin_prospect",
        "rule",
        {
            "values": [
                {
                    "value": "yes",
                    "rule": _rule(
                        {
                            "type": "profile_rule",
                            "field": "total_assets",
                            "function": "gte",
                            "params": [500000],
                        },
                        {
                            "type": "profile_rule",
                            "field": "has_margin_account",
                            "function": "isFalse",
                        },
                        {
                            "type": "profile_rule",
                            "field": "risk_tolerance",
                            "function": "in",
                            "params": ["C3", "C4", "C5"],
                        },
                    ),
                }
            ]
        },
    ),
    (
        "auto_invest_risk",
        "rule",
        {
            "values": [
                {
                    "value": "at_risk",
                    "rule": _rule(
                        _event("TerminateAutoInvestPlan", "did"),
                        _event("AutoInvestPaymentFailed", "did"),
                        relation="or",
                    ),
                },
                {
                    "value": "no_plan",
                    "rule": _rule(_event("CreateAutoInvestPlan", "notDid", window=R90)),
                },
            ]
        },
    ),
    (
        "viewed_not_bought",
        "rule",
        {
            "values": [
                {
                    "value": "yes",
                    "rule": _rule(
                        {
                            "type": "sequence_rule",
                            "window": R7,
                            "steps": [
                                {"event": "ViewFundDetail"},
                                {"event": "BuyFund", "within": {"days": 3}, "negate": True},
                            ],
                        }
                    ),
                }
            ]
        },
    ),
    (
        "buy_frequency",
        "metric",
        {
            "measure": {"event": "BuyFund", "aggregator": "count"},
            "window": R30,
            "buckets": [
                {"value": "0", "max": 1},
                {"value": "1-2", "min": 1, "max": 3},
                {"value": "3+", "min": 3},
            ],
        },
    ),
    (
        "deposit_quintile",
        "metric",
        {
            "measure": {"event": "Deposit", "aggregator": "sum", "property": "amount"},
            "window": R90,
            "quantiles": 5,
        },
    ),
    (
        "login_days",
        "metric",
        {
            "measure": {"event": "Login", "aggregator": "count"},
            "window": R7,
            "buckets": [{"value": "low", "max": 2}, {"value": "high", "min": 2}],
        },
    ),
    (
        "peak_assets",
        "metric",
        {
            "measure": {"event": "AssetChange", "aggregator": "max", "property": "total_assets"},
            "window": R90,
            "buckets": [
                {"value": "<100k", "max": 100000},
                {"value": "100k-500k", "min": 100000, "max": 500000},
                {"value": "500k+", "min": 500000},
            ],
        },
    ),
    ("first_buy_date", "first_last", {"event": "BuyFund", "which": "first", "output": "date"}),
    ("days_since_login", "first_last", {"event": "Login", "output": "days_since"}),
    (
        "last_fund_viewed",
        "first_last",
        {"event": "ViewFundDetail", "output": "property", "property": "item_id"},
    ),
    (
        "favourite_category",
        "preference",
        {"event": "ViewFundDetail", "property": "fund_category", "window": R90},
    ),
    (
        "top3_bought",
        "preference",
        {
            "event": "BuyFund",
            "property": "fund_category",
            "window": R90,
            "top_n": 3,
            "weight_property": "amount",
        },
    ),
    ("rfm", "rfm", {"window": R90}),
    (
        "age_band",
        "sql",
        {
            "query": "SELECT user_id, CASE WHEN birthday > DATE '1996-01-01' THEN 'young' "
            "WHEN birthday > DATE '1971-01-01' THEN 'middle' ELSE 'senior' END AS value FROM users"
        },
    ),
    (
        "trade_quartile",
        "metric",
        {
            "measure": {"event": "TradeStock", "aggregator": "avg", "property": "amount"},
            "window": R30,
            "quantiles": 4,
        },
    ),
    ("first_login_time", "first_last", {"event": "Login", "which": "first", "output": "time"}),
    (
        "silent_buyer",
        "rule",
        {
            "values": [
                {
                    "value": "yes",
                    "rule": _rule(_event("BuyFund", "did", window=R90), _event("Login", "notDid")),
                }
            ]
        },
    ),
    (
        "rfm_champion",
        "rule",
        {
            "values": [
                {
                    "value": "yes",
                    "rule": _rule(
                        {
                            "type": "tag_rule",
                            "tag": "rfm",
                            "function": "in",
                            "params": ["R5F5M5", "R5F5M4", "R5F4M5"],
                        }
                    ),
                }
            ]
        },
    ),
    (
        "expiring_assessment",
        "rule",
        {
            "values": [
                {
                    "value": "yes",
                    "rule": _rule(
                        {
                            "type": "profile_rule",
                            "field": "risk_assessment_expiry",
                            "function": "relativeNext",
                            "params": [30],
                        }
                    ),
                }
            ]
        },
    ),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=30_000_000)
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--latency-samples", type=int, default=20)
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))

    from flywheel.core.clock import FrozenClock, utc_naive
    from flywheel.core.loops import LoopRunner
    from flywheel.tags import service
    from flywheel.tags.schemas import TagIn
    from flywheel.tags.tasks import RealtimeTagUpdater
    from flywheel.warehouse import TableKind

    path = data_path(args.events, args.users)
    if not path.exists():
        print(f"generating {path.name} …", flush=True)
        generate(path, args.events, args.users)
    runtime = open_bench_runtime(path, "tags")
    wh = runtime.warehouse
    wh.cursor().execute("DELETE FROM p1_tag_values")
    n_events = wh.fetch("SELECT COUNT(*) FROM p1_events")[0][0]
    n_users = wh.fetch("SELECT COUNT(*) FROM p1_users")[0][0]
    print(f"data: {n_users:,} customers, {n_events:,} events (project 1)")
    assert len(TAGS) == 20
    with runtime.db.unit_of_work() as session:
        for name, kind, spec in TAGS:
            service.create_tag(
                session=session,
                project_id=1,
                tag_in=TagIn(name=name, kind=kind, spec=spec),  # type: ignore[arg-type]
                actor="bench",
                now=NOW,
            )
    started, cpu_started = time.perf_counter(), time.process_time()
    with runtime.db.unit_of_work() as session:
        runs = service.run_due_tags(session=session, warehouse=wh, now=NOW)
    full = time.perf_counter() - started
    full_cpu = time.process_time() - cpu_started
    failed = [(r.tag_id, r.error) for r in runs if r.status != "ok"]
    if failed:
        print(f"FAILED runs: {failed}")
    slowest = sorted(runs, key=lambda r: -r.seconds)[:3]
    rows = wh.fetch("SELECT COUNT(*) FROM p1_tag_values")[0][0]
    print(
        f"20 tags recomputed in {full:.1f}s ({rows:,} values); slowest: "
        + ", ".join(f"tag {r.tag_id} {r.seconds:.1f}s" for r in slowest)
    )
    rss_after_tags = peak_rss_mib()

    # -- real-time latency -------------------------------------------------------------------
    with runtime.db.unit_of_work() as session:
        service.create_tag(
            session=session,
            project_id=1,
            tag_in=TagIn(
                name="logins_last_hour",
                kind="realtime",
                spec={"mode": "window_count", "event": "Login", "window_minutes": 60},
            ),
            actor="bench",
            now=NOW,
        )
    assert isinstance(runtime.clock, FrozenClock)
    updater = RealtimeTagUpdater(runtime)
    updater.run_once()  # the first pass recomputes every customer and sets the watermark
    runner = LoopRunner([updater])
    runner.start()
    latencies: list[float] = []
    receive = utc_naive(NOW) + timedelta(seconds=5)
    try:
        for i in range(args.latency_samples):
            user = 1000 + i * 7919 % (n_users - 1000)
            before = wh.fetch(
                "SELECT value FROM p1_tag_values WHERE tag = 'logins_last_hour' AND user_id = ? "
                "ORDER BY day DESC LIMIT 1",
                [user],
            )
            expected = str(int(before[0][0]) + 1 if before else 1)
            receive += timedelta(seconds=1)
            batch = pa.table(
                {
                    "id": [f"rt-{i}"],
                    "user_id": pa.array([user], pa.int64()),
                    "distinct_id": [f"d{user}"],
                    "event": ["Login"],
                    "time": pa.array([utc_naive(NOW)], pa.timestamp("us")),
                    "$receive_time": pa.array([receive], pa.timestamp("us")),
                }
            )
            t0 = time.perf_counter()
            wh.append(1, TableKind.EVENTS, batch)
            while True:
                got = wh.fetch(
                    "SELECT value FROM p1_tag_values WHERE tag = 'logins_last_hour' "
                    "AND user_id = ? AND day = ?",
                    [user, service.sh_today(NOW)],
                )
                if got and got[0][0] == expected:
                    latencies.append(time.perf_counter() - t0)
                    break
                if time.perf_counter() - t0 > 30:
                    print(f"timeout waiting for user {user}")
                    latencies.append(30.0)
                    break
                time.sleep(0.02)
    finally:
        runner.stop()
        # Leave the cached warehouse file as generated (bench/segments.py reuses it).
        wh.cursor().execute("DELETE FROM p1_events WHERE id LIKE 'rt-%'")
        wh.cursor().execute("DELETE FROM p1_tag_values")
    rss = peak_rss_mib()
    lines = [
        f"Tags on {n_users:,} customers / {n_events:,} events (DuckDB, memory_limit 3GB, "
        "2 threads).",
        "",
        "| measure | figure |",
        "| --- | --- |",
        f"| full recompute of 20 mixed tags (rule ×7 incl. sequence, did-not-do and a tag "
        f"reference; metric ×5; first/last ×4; preference ×2; RFM; SQL; target ≤ 60 s) | "
        f"{full:.1f} s wall, {full_cpu:.1f} s CPU (both threads) ({rows:,} values written) |",
        f"| real-time tag (Login count, sliding 60 min): event appended → value updated "
        f"(target ≤ 2 s) | "
        f"p50 {statistics.median(latencies) * 1000:.0f} ms, "
        f"p99 {pct(latencies, 0.99) * 1000:.0f} ms "
        f"({len(latencies)} samples; loop tick 0.5 s) |",
        f"| peak RSS (tags run / after real-time; target ≤ 4 GiB) | {rss_after_tags:,.0f} MiB / "
        f"{rss:,.0f} MiB |",
        "",
        f"Failed runs: {len(failed)}. Load average during the run: "
        f"{os.getloadavg()[0]:.1f} on 2 cores (shared machine). "
        f"Command: `.venv/bin/python bench/tags.py --events "
        f"{args.events} --users {args.users} --latency-samples {args.latency_samples}`.",
    ]
    print("\n".join(lines))
    if not args.no_docs:
        write_section("bench-tags", lines)
    runtime.close()


if __name__ == "__main__":
    main()
