"""Periodic background work as small loop services.

A loop service does one unit of work in :meth:`LoopService.run_once` (tests call it directly)
and is run on a daemon thread by :class:`LoopRunner` in ``flywheel serve`` or ``flywheel worker``.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod

import structlog

from flywheel.core.memory import gc_paused

log = structlog.get_logger(__name__)


class LoopService(ABC):
    """One periodic job. ``run_once`` returns how much it did; 0 means idle (sleep a tick)."""

    name: str = "loop"
    interval_seconds: float = 1.0

    @abstractmethod
    def run_once(self) -> int:
        """Do one batch of work and return the number of items handled."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the service holds (event loops, connections); called on stop."""


class LoopRunner:
    """Runs loop services on daemon threads until :meth:`stop`."""

    def __init__(self, services: list[LoopService]) -> None:
        self.services = services
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for service in self.services:
            thread = threading.Thread(
                target=self._run, args=(service,), name=f"flywheel-{service.name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _run(self, service: LoopService) -> None:
        log.info("loop_started", loop=service.name)
        while not self._stop.is_set():
            try:
                with gc_paused():  # a batch allocates much and frees it at once
                    handled = service.run_once()
            except Exception:
                log.exception("loop_failed", loop=service.name)
                handled = 0
            if handled == 0:
                self._stop.wait(service.interval_seconds)
        log.info("loop_stopped", loop=service.name)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()
        for service in self.services:
            try:
                service.close()
            except Exception:
                log.exception("loop_close_failed", loop=service.name)
