"""HTTP ingest throughput: gzip ``data_list`` batches of 50 against ``flywheel serve --no-workers``.

Starts the server in a subprocess on a temporary data dir (SQLite WAL + synchronous=FULL, so
every 2xx is durably committed), drives it from several client processes × threads with httpx
for a bounded time, then prints acknowledged events/s, requests/s and request latency p50/p99,
and checks that the inbox holds exactly the acknowledged events.

    .venv/bin/python bench/ingest_http.py --seconds 20 --processes 2 --threads 4
    .venv/bin/python bench/ingest_http.py --postgres postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import multiprocessing as mp
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import closing
from pathlib import Path

import httpx

BATCH = 50


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def make_bodies(seed: int, count: int = 20) -> list[bytes]:
    """Pre-encoded urlencoded bodies (what the SDK's BatchConsumer sends)."""
    bodies = []
    base_ms = 1_730_000_000_000
    for n in range(count):
        records = [
            {
                "type": "track",
                "event": "ViewFundDetail",
                "distinct_id": f"cust{seed}-{n}-{i}",
                "time": base_ms + n * 1000 + i,
                "_track_id": seed * 1_000_000 + n * 100 + i,
                "properties": {
                    "$lib": "python",
                    "$lib_version": "1.11",
                    "item_id": f"F{i:03d}",
                    "item_type": "fund",
                    "fund_category": "混合",
                    "risk_level": "R3",
                    "amount": 1000.5 + i,
                    "$is_login_id": True,
                },
                "lib": {"$lib": "python", "$lib_version": "1.11", "$lib_method": "code"},
            }
            for i in range(BATCH)
        ]
        payload = base64.b64encode(gzip.compress(json.dumps(records).encode())).decode()
        bodies.append(httpx.QueryParams({"data_list": payload, "gzip": "1"}).__str__().encode())
    return bodies


def client_process(
    url: str, seconds: float, threads: int, seed: int, out: mp.Queue[tuple[int, int, list[float]]]
) -> None:
    bodies = make_bodies(seed)
    stop_at = time.monotonic() + seconds
    lock = threading.Lock()
    totals = {"events": 0, "errors": 0}
    latencies: list[float] = []

    def run(thread_no: int) -> None:
        local: list[float] = []
        events = errors = 0
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        with httpx.Client(timeout=30) as client:
            n = thread_no
            while time.monotonic() < stop_at:
                body = bodies[n % len(bodies)]
                n += threads
                started = time.perf_counter()
                answer = client.post(url, content=body, headers=headers)
                local.append(time.perf_counter() - started)
                if answer.status_code == 200:
                    events += answer.json()["accepted"]
                else:
                    errors += 1
        with lock:
            totals["events"] += events
            totals["errors"] += errors
            latencies.extend(local)

    workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    out.put((totals["events"], totals["errors"], latencies))


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc), 0 elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _admin_url(server_url: str) -> str:
    return "postgresql+psycopg://" + server_url.split("://", 1)[1]


def scratch_database(server_url: str) -> str:
    """Create an empty database on ``server_url`` and return its URL."""
    from sqlalchemy import create_engine

    name = f"flywheel_bench_{os.getpid()}"
    admin = create_engine(_admin_url(server_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return server_url.rsplit("/", 1)[0] + "/" + name


def count_and_drop(server_url: str, database_url: str) -> int:
    from sqlalchemy import create_engine

    engine = create_engine(_admin_url(database_url))
    with engine.connect() as conn:
        stored = int(conn.exec_driver_sql("SELECT count(*) FROM ingest_inbox").scalar_one())
    engine.dispose()
    admin = create_engine(_admin_url(server_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        name = database_url.rsplit("/", 1)[1]
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()
    return stored


def wait_ready(base: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("server did not become ready")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="operational store on this PostgreSQL server (a scratch database is made and dropped)",
    )
    args = parser.parse_args()
    database_url = scratch_database(args.postgres) if args.postgres else None

    data_dir = Path(tempfile.mkdtemp(prefix="flywheel-bench-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    flywheel = str(Path(sys.executable).parent / "flywheel")
    command = [flywheel, "serve", "--no-workers", "--port", str(port), "--data-dir", str(data_dir)]
    env = {**os.environ, "FLYWHEEL_LOG_LEVEL": "WARNING"}
    if database_url:
        env["FLYWHEEL_DATABASE_URL"] = database_url
    server = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    try:
        wait_ready(base, server)
        queue: mp.Queue[tuple[int, int, list[float]]] = mp.Queue()
        clients = [
            mp.Process(
                target=client_process,
                args=(f"{base}/sa?project=default", args.seconds, args.threads, p, queue),
            )
            for p in range(args.processes)
        ]
        cpu_before = process_cpu_seconds(server.pid)
        started = time.monotonic()
        for c in clients:
            c.start()
        results = [queue.get() for _ in clients]
        elapsed = time.monotonic() - started
        server_cpu = process_cpu_seconds(server.pid) - cpu_before
        for c in clients:
            c.join()
    finally:
        server.terminate()
        server.wait(30)

    events = sum(r[0] for r in results)
    errors = sum(r[1] for r in results)
    latencies = sorted(lat for r in results for lat in r[2])
    if database_url:
        stored = count_and_drop(args.postgres, database_url)
    else:
        with closing(sqlite3.connect(data_dir / "flywheel.db")) as conn:
            stored = conn.execute("SELECT count(*) FROM ingest_inbox").fetchone()[0]
    shutil.rmtree(data_dir, ignore_errors=True)
    p50 = statistics.quantiles(latencies, n=100)[49] * 1000 if len(latencies) > 1 else 0.0
    p99 = statistics.quantiles(latencies, n=100)[98] * 1000 if len(latencies) > 1 else 0.0
    print(f"store: {'PostgreSQL' if database_url else 'SQLite (WAL, synchronous=FULL)'}")
    print(f"clients: {args.processes} processes x {args.threads} threads, {args.seconds:.0f}s")
    print(f"requests: {len(latencies)} ({len(latencies) / elapsed:.0f}/s), errors: {errors}")
    print(f"acknowledged events: {events} -> {events / elapsed:,.0f} events/s (batches of {BATCH})")
    print(f"latency p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    print(
        f"server CPU: {server_cpu:.1f}s over {elapsed:.1f}s ({server_cpu / elapsed:.0%} of a core)"
    )
    if server_cpu > 0 and latencies:
        per_request = server_cpu / len(latencies)
        print(
            f"server CPU per request: {per_request * 1000:.2f} ms -> capacity of one free core "
            f"= {BATCH / per_request:,.0f} events/s"
        )
    print(f"inbox rows: {stored} ({'matches' if stored == events else 'DIFFERS from'} acks)")


if __name__ == "__main__":
    main()
