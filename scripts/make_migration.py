"""Autogenerate an Alembic revision against a scratch SQLite upgraded to the current heads.

    uv run python scripts/make_migration.py "add segments" 0005 [--branch LABEL --from REV]

With --branch the revision starts a new branch from REV (so parallel work does not fight over
one chain; ``upgrade heads`` applies every branch). Review the generated file: keep only your
domain's changes.
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
    extra: dict[str, object] = {}
    if "--branch" in sys.argv:
        extra["branch_label"] = sys.argv[sys.argv.index("--branch") + 1]
        extra["head"] = sys.argv[sys.argv.index("--from") + 1]
        extra["splice"] = True
    with tempfile.TemporaryDirectory() as tmp:
        db = create_database(f"sqlite:///{Path(tmp) / 'scratch.db'}")
        upgrade(db.engine)
        config = alembic_config(db.engine)
        command.revision(config, message=message, autogenerate=True, rev_id=rev_id, **extra)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
