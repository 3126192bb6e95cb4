from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

import flywheel.models  # noqa: F401  (every table on the metadata)
from flywheel.migrations import alembic_config, upgrade
from flywheel.store import Base, create_database


def test_one_linear_head(tmp_path: Path) -> None:
    db = create_database(f"sqlite:///{tmp_path / 'm.db'}")
    heads = ScriptDirectory.from_config(alembic_config(db.engine)).get_heads()
    assert len(heads) == 1, f"migrations have several heads {heads}: add a merge revision"


def test_models_match_migrations(database_url: str) -> None:
    """Every model change has its migration: autogenerate against head finds nothing."""
    db = create_database(database_url)
    upgrade(db.engine)
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    db.dispose()
    assert diff == [], f"models differ from migrations: {diff}"
