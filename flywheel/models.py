"""Imports every domain's tables so that Alembic and tests see one complete metadata."""

from flywheel.auth import models as auth_models
from flywheel.ingest import models as ingest_models
from flywheel.projects import models as projects_models

__all__ = ["auth_models", "ingest_models", "projects_models"]
