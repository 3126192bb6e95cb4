"""Static segment creation: N user ids into the warehouse membership and the operational
member mirror (the bulk path: executemany on SQLite, COPY on PostgreSQL).

    uv run python bench/segment_members.py [--members 1000000] [--database-url URL]

Runs on a fresh SQLite + DuckDB temp folder, or PostgreSQL with ``--database-url`` (an empty
database). Prints seconds, members/s and peak memory.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from flywheel.bootstrap import open_runtime
from flywheel.config import Settings
from flywheel.segments import service as segments
from flywheel.segments.schemas import SegmentIn


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    settings = Settings(
        env="test",
        data_dir=Path(tempfile.mkdtemp(prefix="fw-bench-members-")),
        database_url=args.database_url,
        log_level="WARNING",
    )
    runtime = open_runtime(settings)
    ids = list(range(1, args.members + 1))
    try:
        with runtime.db.unit_of_work() as session:
            started = time.perf_counter()
            segments.create_segment(
                session=session,
                warehouse=runtime.warehouse,
                project_id=1,
                segment_in=SegmentIn(name="all", source="analysis", mode="static", user_ids=ids),
                actor="bench",
                now=runtime.clock(),
            )
        seconds = time.perf_counter() - started
    finally:
        runtime.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"database         {'postgresql' if args.database_url else 'sqlite'}")
    print(f"members          {args.members:,}")
    print(f"seconds          {seconds:.2f} (create + commit)")
    print(f"members/s        {args.members / seconds:,.0f}")
    print(f"peak RSS         {peak:,.0f} MiB")


if __name__ == "__main__":
    main()
