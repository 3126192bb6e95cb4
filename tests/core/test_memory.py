"""The collector pause: resumes only when the last batch ends, and never turns on a collector
that was off."""

from __future__ import annotations

import gc
import threading

from flywheel.core.memory import gc_paused


def test_nested_and_concurrent_batches_share_one_pause() -> None:
    assert gc.isenabled()
    inside = threading.Event()
    release = threading.Event()

    def other_batch() -> None:
        with gc_paused():
            inside.set()
            release.wait(5)

    with gc_paused():
        assert not gc.isenabled()
        worker = threading.Thread(target=other_batch)
        worker.start()
        assert inside.wait(5)
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner block ended, the outer one has not
    assert not gc.isenabled()  # the other thread's batch still runs
    release.set()
    worker.join(5)
    assert gc.isenabled()


def test_a_collector_switched_off_stays_off() -> None:
    gc.disable()
    try:

        @gc_paused()
        def batch() -> int:
            return 1

        assert batch() == 1
        assert not gc.isenabled()
    finally:
        gc.enable()
