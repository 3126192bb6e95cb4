"""Benchmark: `flywheel import events` throughput (events/s) on a generated file or a real one.

    .venv/bin/python bench/bulk_import.py --rows 5000000 --users 100000 --format parquet
    .venv/bin/python bench/bulk_import.py --rows 5000000 --users 100000 --format csv
    .venv/bin/python bench/bulk_import.py --online-retail   # /work/shared/data, 525k lines

A generated file has Sensors-like events: ``distinct_id``, ``event`` (6 names), ``time`` and
five properties (NUMBER, STRING, BOOL). Each run imports into a fresh temporary data dir
(SQLite + DuckDB), so new customers are created for every distinct id: ``--users`` sets how
many (identity creation is part of the measured time). ``--repeat`` imports the same file a
second time into the same data dir (customers then already exist).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

import duckdb
import structlog

RETAIL = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "data"
    / "online-retail-ii"
    / "online_retail_II_2009-2010.parquet"
)


def make_file(folder: Path, rows: int, users: int, fmt: str) -> Path:
    path = folder / f"events.{fmt}"
    options = "FORMAT parquet" if fmt == "parquet" else "FORMAT csv, HEADER"
    duckdb.sql(
        f"""
        COPY (
          SELECT 'cust-' || lpad(CAST(hash(range) % {users} AS VARCHAR), 7, '0') AS distinct_id,
                 (['$AppStart', 'ViewFundDetail', 'BuyFund', 'Search', 'Login', 'Deposit'])
                   [CAST(range % 6 AS INTEGER) + 1] AS event,
                 TIMESTAMP '2026-08-01' + to_seconds(range % 7776000) AS time,
                 round(random() * 10000, 2) AS amount,
                 lpad(CAST(range % 200 AS VARCHAR), 6, '0') AS item_id,
                 'fund' AS item_type,
                 (['iOS', 'Android'])[CAST(range % 2 AS INTEGER) + 1] AS "$os",
                 range % 3 = 0 AS is_first_time
          FROM range({rows})
        ) TO '{path}' ({options})
        """
    )
    return path


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    parser.add_argument("--batch-rows", type=int, default=100_000)
    parser.add_argument("--online-retail", action="store_true")
    parser.add_argument("--repeat", action="store_true")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))

    from flywheel.bootstrap import open_runtime
    from flywheel.config import Settings
    from flywheel.ingest.bulk import ImportOptions, import_file

    folder = Path(tempfile.mkdtemp(prefix="flywheel-import-bench-"))
    try:
        if args.online_retail:
            path = RETAIL
            options = ImportOptions(
                kind="events",
                distinct_id_col="Customer ID",
                event_name="Purchase",
                time_col="InvoiceDate",
                timezone="Europe/London",
                mapping={"Customer ID": "customer_id"},
                batch_rows=args.batch_rows,
            )
        else:
            started = time.perf_counter()
            path = make_file(folder, args.rows, args.users, args.format)
            print(
                f"file                {path.name}  {path.stat().st_size / 2**20:,.0f} MiB "
                f"(written in {time.perf_counter() - started:.1f} s)"
            )
            options = ImportOptions(kind="events", batch_rows=args.batch_rows)
        runtime = open_runtime(Settings(data_dir=folder / "data", log_level="WARNING"))
        runs = 2 if args.repeat else 1
        for run in range(runs):
            cpu_before = _cpu()
            result = import_file(runtime, project_id=1, path=path, options=options)
            cpu = _cpu() - cpu_before
            label = "first import" if run == 0 else "again (known users)"
            print(f"{label:<20}{result.rows:>12,} rows in {result.seconds:.1f} s")
            print(f"  events/s          {result.rows / result.seconds:>12,.0f}")
            print(
                f"  CPU time          {cpu:>12.1f} s  ({result.rows / cpu:,.0f} events per CPU-s)"
            )
            print(f"  accepted          {result.accepted:>12,}")
            print(f"  rejected          {result.rejected:>12,}")
            print(f"  customers         {result.users:>12,}")
        runtime.close()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS            {rss:>12,.0f} MiB")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
