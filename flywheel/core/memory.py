"""The cyclic garbage collector around bulk work.

A full collection walks every tracked object of the process — hundreds of thousands once
SQLAlchemy, pyarrow, DuckDB and the rest are imported — and a batch that allocates a few
objects per customer for 20,000 customers triggers dozens of them. Measured: 1,000,000
customers entering a segment journey, 40.2 s with the collector running, 20.6 s with it paused
during batches; the ingest processor 23–26k → 33k records/s (docs/benchmarks.md).

Every background loop batch runs paused (:class:`flywheel.core.loops.LoopRunner`), and so do
the engine's and the dispatcher's batch methods when called directly (CLI, benchmarks).
Reference counting still frees every acyclic object at once while the collector is paused;
cycles wait until no batch runs. Threads and nested batches share one count, so the collector
resumes only when the last batch ends — and when batches of several threads overlap for
longer than :data:`COLLECT_EVERY_SECONDS`, a batch ending runs one full collection itself, so
cyclic garbage never piles up under sustained load.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

COLLECT_EVERY_SECONDS = 30.0

_lock = threading.Lock()
_active = 0
_resume = False
_paused_since = 0.0


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic collector for the block (usable as a decorator)."""
    global _active, _resume, _paused_since
    with _lock:
        if _active == 0:
            _resume = gc.isenabled()
            _paused_since = time.monotonic()
            gc.disable()
        _active += 1
    try:
        yield
    finally:
        overdue = False
        with _lock:
            _active -= 1
            if _active == 0:
                if _resume:
                    gc.enable()
            elif _resume and time.monotonic() - _paused_since > COLLECT_EVERY_SECONDS:
                overdue = True
                _paused_since = time.monotonic()
        if overdue:
            gc.collect()
