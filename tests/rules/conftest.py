from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from flywheel.rules.compiler import RuleContext, Tables
from flywheel.warehouse import TableKind, Warehouse
from tests.rules.brokerage import NOW, PROJECT, ClickHouseMirror, load


@pytest.fixture(scope="module")
def brokerage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    folder = tmp_path_factory.mktemp("brokerage")
    warehouse = Warehouse(str(folder / "warehouse.duckdb"))
    load(warehouse)
    yield warehouse
    warehouse.close()


@pytest.fixture(scope="module")
def clickhouse(
    brokerage: Warehouse, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ClickHouseMirror]:
    mirror = ClickHouseMirror(brokerage, Path(tmp_path_factory.mktemp("chdb")))
    yield mirror
    mirror.close()


@pytest.fixture
def context(brokerage: Warehouse) -> RuleContext:
    return RuleContext(
        tables=Tables.for_project(PROJECT),
        users_columns=brokerage.columns(PROJECT, TableKind.USERS),
        events_columns=brokerage.columns(PROJECT, TableKind.EVENTS),
        now=NOW,
        resolve_segment=lambda _segment_id: None,
    )
