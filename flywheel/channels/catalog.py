"""Every channel adapter, loaded: the modules of ``flywheel.channels`` and
``flywheel.channels.providers`` register themselves with ``@register`` on import."""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from flywheel.channels.base import REGISTRY

_NOT_ADAPTERS = ("routes", "tasks", "models", "schemas", "catalog", "dispatch", "outbox")


@cache
def _load() -> None:
    packages = ["flywheel.channels", "flywheel.channels.providers"]
    for package_name in packages:
        try:
            package = importlib.import_module(package_name)
        except ModuleNotFoundError:
            continue
        for info in pkgutil.iter_modules(package.__path__):
            if info.ispkg or info.name.endswith(_NOT_ADAPTERS):
                continue
            importlib.import_module(f"{package_name}.{info.name}")


def channel_names() -> list[str]:
    """Names of every registered channel adapter."""
    _load()
    return sorted(REGISTRY)
