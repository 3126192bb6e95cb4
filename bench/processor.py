"""Ingest processor throughput: synthetic brokerage records through the inbox processor.

Builds a fresh runtime in a temporary data dir (SQLite WAL + DuckDB), generates records (mostly
``track`` events with 8 properties, some sign-ups merging anonymous devices into logins, profile
sets and increments), then either

* ``--mode processor`` (default): puts them in the inbox (not timed) and times
  ``IngestProcessor.run_once`` until the inbox is empty, or
* ``--mode apply``: times ``apply_records`` on batches directly (the bulk-import path),
* ``--mode latency``: feeds the inbox in small chunks while the processor loop runs and
  measures ingest → visible-in-the-warehouse latency,

and prints events/s, batch latency p50/p99 and peak RSS. ``--resolve N`` also times
``resolve_many`` on N new then N known values. ``--profile`` writes a pyinstrument report.

    .venv/bin/python bench/processor.py --records 100000 --batch 5000
    .venv/bin/python bench/processor.py --records 50000 --mode apply --profile /tmp/apply.txt
    .venv/bin/python bench/processor.py --database-url postgresql://postgres@127.0.0.1/<empty db>
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from flywheel.bootstrap import open_runtime
from flywheel.config import Settings
from flywheel.core.memory import gc_paused
from flywheel.identity import service as identity
from flywheel.ingest import service as ingest_service
from flywheel.ingest.pipeline import apply_records
from flywheel.ingest.records import IngestRecord
from flywheel.ingest.tasks import IngestProcessor
from flywheel.runtime import Runtime

EVENTS = ["$AppStart", "ViewFundDetail", "BuyFund", "Search", "$AppViewScreen", "Deposit"]
CATEGORIES = ["货币", "债券", "混合", "股票", "指数", "QDII"]


def make_records(count: int, users: int, seed: int = 7) -> list[IngestRecord]:
    rng = random.Random(seed)
    start = datetime(2026, 8, 1, tzinfo=UTC)
    signed_up: set[int] = set()
    records: list[IngestRecord] = []
    for n in range(count):
        u = rng.randrange(users)
        when = start + timedelta(seconds=n)
        roll = rng.random()
        device = f"dev-{u}"
        login = f"cust{u:07d}"
        if u not in signed_up and roll < 0.3:
            signed_up.add(u)
            records.append(
                IngestRecord(
                    type="track_signup",
                    time=when,
                    event_id=f"b{n}",
                    event="$SignUp",
                    distinct_id=login,
                    original_id=device,
                )
            )
            continue
        ids = {"login_id": login} if u in signed_up else {"anonymous_id": device}
        if roll < 0.05:
            records.append(
                IngestRecord(
                    type="profile_set",
                    time=when,
                    event_id=f"b{n}",
                    properties={
                        "branch": f"BR{u % 20:03d}",
                        "risk_tolerance": f"C{u % 5 + 1}",
                        "total_assets": rng.random() * 1e6,
                        "account_open_date": "2020-01-02",
                    },
                    **ids,  # type: ignore[arg-type]
                )
            )
            continue
        if roll < 0.07:
            records.append(
                IngestRecord(
                    type="profile_increment",
                    time=when,
                    event_id=f"b{n}",
                    properties={"login_count": 1},
                    **ids,  # type: ignore[arg-type]
                )
            )
            continue
        records.append(
            IngestRecord(
                type="track",
                time=when,
                event_id=f"b{n}",
                event=rng.choice(EVENTS),
                distinct_id=login if u in signed_up else device,
                properties={
                    "$os": "iOS",
                    "$app_version": "5.2.0",
                    "$model": "iPhone15,2",
                    "item_id": f"F{rng.randrange(200):04d}",
                    "item_type": "fund",
                    "fund_category": rng.choice(CATEGORIES),
                    "amount": round(rng.random() * 10000, 2),
                    "$is_first_day": False,
                },
                **ids,  # type: ignore[arg-type]
            )
        )
    return records


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def fill_inbox(runtime: Runtime, records: list[IngestRecord]) -> None:
    with runtime.db.unit_of_work() as session:
        for start in range(0, len(records), 10_000):
            ingest_service.enqueue(
                session=session,
                project_id=1,
                records=records[start : start + 10_000],
                source="bench",
            )


def run_processor(runtime: Runtime, _records: list[IngestRecord], batch: int) -> list[float]:
    processor = IngestProcessor(runtime)
    processor.batch_size = batch
    latencies: list[float] = []
    while True:
        started = time.perf_counter()
        with gc_paused():  # as flywheel serve's LoopRunner runs every loop batch
            handled = processor.run_once()
        if handled == 0:
            break
        latencies.append(time.perf_counter() - started)
    return latencies


def run_apply(runtime: Runtime, records: list[IngestRecord], batch: int) -> list[float]:
    latencies: list[float] = []
    for start in range(0, len(records), batch):
        started = time.perf_counter()
        apply_records(runtime, project_id=1, records=records[start : start + batch], source="bench")
        latencies.append(time.perf_counter() - started)
    return latencies


def run_latency(runtime: Runtime, records: list[IngestRecord], chunk: int = 100) -> list[float]:
    """Ingest → visible: commit ``chunk`` records to the inbox every 50 ms while the processor
    loop runs (as in ``flywheel serve``); per chunk, seconds until its last event is queryable."""
    from flywheel.core.loops import LoopRunner

    runner = LoopRunner([IngestProcessor(runtime)])
    runner.start()
    pending: list[tuple[str, float]] = []
    latencies: list[float] = []
    try:
        for start in range(0, len(records), chunk):
            part = records[start : start + chunk]
            with runtime.db.unit_of_work() as session:
                ingest_service.enqueue(session=session, project_id=1, records=part, source="bench")
            events = [r.event_id for r in part if r.type.startswith("track")]
            if events:
                pending.append((events[-1], time.perf_counter()))
            time.sleep(0.05)
            pending = _visible(runtime, pending, latencies)
        deadline = time.perf_counter() + 60
        while pending and time.perf_counter() < deadline:
            time.sleep(0.01)
            pending = _visible(runtime, pending, latencies)
    finally:
        runner.stop()
    return latencies


def _visible(
    runtime: Runtime, pending: list[tuple[str, float]], latencies: list[float]
) -> list[tuple[str, float]]:
    if not pending:
        return pending
    ids = [event_id for event_id, _ in pending]
    found = {
        row[0]
        for row in runtime.warehouse.fetch(
            'SELECT id FROM "p1_events" WHERE id IN (SELECT unnest(?::VARCHAR[]))', [ids]
        )
    }
    now = time.perf_counter()
    latencies.extend(now - sent for event_id, sent in pending if event_id in found)
    return [(event_id, sent) for event_id, sent in pending if event_id not in found]


def run_resolve(runtime: Runtime, count: int) -> None:
    values = [f"FA{i:09d}" for i in range(count)]
    for label, create in (("new", True), ("known", False)):
        identity.cache_for_engine(runtime.db.engine).clear()
        started = time.perf_counter()
        with runtime.db.unit_of_work() as session:
            found = identity.resolve_many(
                session=session, project_id=1, key="fund_account", values=values, create=create
            )
        elapsed = time.perf_counter() - started
        assert len(found) == count
        print(
            f"resolve_many {label:5s}: {count} values in {elapsed:.2f} s ({count / elapsed:,.0f}/s)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--mode", choices=["processor", "apply", "latency"], default="processor")
    parser.add_argument("--resolve", type=int, default=0, help="also time resolve_many on N values")
    parser.add_argument("--profile", type=Path, default=None, help="pyinstrument report path")
    parser.add_argument(
        "--database-url", default=None, help="PostgreSQL URL of an empty database (default SQLite)"
    )
    args = parser.parse_args()

    records = make_records(args.records, args.users)
    with tempfile.TemporaryDirectory() as tmp:
        runtime = open_runtime(
            Settings(
                env="test",
                data_dir=Path(tmp),
                database_url=args.database_url,
                log_level="WARNING",
            )
        )
        import structlog

        structlog.configure(
            wrapper_class=structlog.make_filtering_bound_logger(30)  # warnings and up
        )
        profiler = None
        if args.profile:
            from pyinstrument import Profiler

            profiler = Profiler()
            profiler.start()
        import pyarrow as pa

        if args.mode == "processor":
            fill_inbox(runtime, records)  # what the HTTP collectors did before; not timed

        pa.array([1.0], type=pa.float64())  # pyarrow's one-time lazy imports, outside the timing
        started = time.perf_counter()
        cpu_started = time.process_time()
        if args.mode == "latency":
            latencies = run_latency(runtime, records)
            elapsed = time.perf_counter() - started
            print(f"mode=latency records={len(records)} in chunks of 100 every 50 ms")
            print(
                f"ingest → visible: p50 {statistics.median(latencies) * 1000:.0f} ms, "
                f"p99 {percentile(latencies, 0.99) * 1000:.0f} ms, "
                f"max {max(latencies) * 1000:.0f} ms over {len(latencies)} chunks"
            )
            runtime.close()
            return
        runner = run_processor if args.mode == "processor" else run_apply
        latencies = runner(runtime, records, args.batch)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        if profiler is not None:
            profiler.stop()
            args.profile.write_text(profiler.output_text(unicode=True, color=False))
        events = runtime.warehouse.fetch('SELECT count(*) FROM "p1_events"')[0][0]
        users = runtime.warehouse.fetch('SELECT count(*) FROM "p1_users"')[0][0]
        print(f"mode={args.mode} records={len(records)} batch={args.batch} users={args.users}")
        print(f"events stored: {events}, profiles mirrored: {users}")
        print(
            f"throughput: {len(records) / elapsed:,.0f} records/s, {events / elapsed:,.0f} events/s"
        )
        print(
            f"CPU time: {cpu:.1f} s for {elapsed:.1f} s wall "
            f"({len(records) / cpu:,.0f} records per CPU-second; the machine is shared)"
        )
        print(
            f"batch latency: p50 {statistics.median(latencies) * 1000:.0f} ms, "
            f"p99 {percentile(latencies, 0.99) * 1000:.0f} ms over {len(latencies)} batches"
        )
        if args.resolve:
            run_resolve(runtime, args.resolve)
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS: {rss_mb:.0f} MiB")
        runtime.close()


if __name__ == "__main__":
    main()
