"""A dispatcher process for the kill -9 test: runs batches until killed (or idle with --drain)."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime

import flywheel.models  # noqa: F401 - every table, for foreign keys
from flywheel.channels.dispatch import Dispatcher
from flywheel.config import Settings
from flywheel.store import create_database


def main() -> None:
    settings = Settings()
    db = create_database(settings.resolved_database_url)
    dispatcher = Dispatcher(
        db=db, warehouse=None, settings=settings, clock=lambda: datetime.now(UTC)
    )
    drain = "--drain" in sys.argv
    idle_since = time.monotonic()
    while True:
        if dispatcher.run_once():
            idle_since = time.monotonic()
        elif drain and time.monotonic() - idle_since > settings.dispatch_lease_seconds + 1:
            break
        else:
            time.sleep(0.05)
    dispatcher.close()
    db.dispose()


if __name__ == "__main__":
    main()
