"""Imports every domain's ``models`` module so Alembic and tests see one complete metadata."""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

import flywheel


def _domain_models() -> list[ModuleType]:
    modules = []
    for info in pkgutil.iter_modules(flywheel.__path__):
        if info.ispkg:
            try:
                modules.append(importlib.import_module(f"flywheel.{info.name}.models"))
            except ModuleNotFoundError as exc:
                if exc.name != f"flywheel.{info.name}.models":
                    raise
    return modules


DOMAIN_MODELS = _domain_models()
