"""What a running process holds: settings, the two stores, the clock. Built by the entry point."""

from __future__ import annotations

from dataclasses import dataclass, field

from flywheel.config import Settings
from flywheel.core.clock import Clock, system_clock
from flywheel.store import Database
from flywheel.warehouse import Warehouse


@dataclass
class Runtime:
    settings: Settings
    db: Database
    warehouse: Warehouse
    clock: Clock = field(default=system_clock)

    def close(self) -> None:
        self.db.dispose()
        self.warehouse.close()
