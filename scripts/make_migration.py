"""Autogenerate an Alembic revision against a scratch SQLite upgraded to the current heads.

    uv run python scripts/make_migration.py "add segments" 0005

Review the generated file: keep only your domain's changes.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from alembic import command

from flywheel.migrations import alembic_config, upgrade
from flywheel.store import create_database


def main() -> None:
    message, rev_id = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory() as tmp:
        db = create_database(f"sqlite:///{Path(tmp) / 'scratch.db'}")
        upgrade(db.engine)
        command.revision(
            alembic_config(db.engine), message=message, autogenerate=True, rev_id=rev_id
        )


if __name__ == "__main__":
    main()
