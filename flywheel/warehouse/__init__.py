"""Analytical store: events, profile and item snapshots. DuckDB embedded; ClickHouse at scale."""

from flywheel.warehouse.engine import PropertyType, TableKind, Warehouse, open_warehouse

__all__ = ["PropertyType", "TableKind", "Warehouse", "open_warehouse"]
