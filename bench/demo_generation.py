"""Benchmark: generate and load the demo brokerage; prints time per phase and peak RSS.

    .venv/bin/python bench/demo_generation.py --customers 100000 [--generate-only]

Runs in a fresh temporary data dir (SQLite + DuckDB), like `flywheel demo --customers N`.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import structlog


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    """User + system CPU of this process (threads included): wall time minus contention."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--generate-only", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the data dir")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))

    from flywheel.demo.generator import generate

    started = time.perf_counter()
    demo = generate(customers=args.customers, days=args.days, seed=args.seed, now=datetime.now(UTC))
    events = sum(chunk.num_rows for chunk in demo.event_chunks())
    generation = time.perf_counter() - started
    print(f"customers           {args.customers:>12,}")
    print(f"events generated    {events:>12,}  ({events / args.customers:.1f} per customer)")
    print(f"generation only     {generation:>12.1f} s  ({events / generation:,.0f} events/s)")
    print(f"  CPU time          {cpu_seconds():>12.1f} s")
    print(f"peak RSS            {peak_rss_mib():>12,.0f} MiB")
    if args.generate_only:
        return

    from flywheel.bootstrap import open_runtime
    from flywheel.config import Settings
    from flywheel.demo.service import load_demo

    folder = Path(tempfile.mkdtemp(prefix="flywheel-demo-bench-"))
    try:
        runtime = open_runtime(Settings(data_dir=folder, log_level="WARNING"))
        started = time.perf_counter()
        cpu_before = cpu_seconds()
        summary = load_demo(
            runtime, project_id=1, customers=args.customers, days=args.days, seed=args.seed
        )
        total = time.perf_counter() - started
        runtime.close()
        written = summary.events + summary.anonymous_events
        print(
            f"generation + load   {total:>12.1f} s  (generation {summary.generation_seconds:.1f} s)"
        )
        print(f"  CPU time          {cpu_seconds() - cpu_before:>12.1f} s")
        print(f"events loaded       {written:>12,}  ({written / total:,.0f} events/s overall)")
        print(f"sign-ups            {summary.signups:>12,}")
        print(f"rejected            {summary.rejected:>12,}")
        print(f"peak RSS            {peak_rss_mib():>12,.0f} MiB")
        size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
        print(f"data dir            {size / 2**20:>12,.0f} MiB  ({folder})")
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
