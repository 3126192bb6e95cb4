"""Bulk import of CSV / JSON lines / Parquet: mapping, row rejections, users, the warehouse."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from flywheel.bootstrap import open_runtime
from flywheel.cli import app as cli
from flywheel.config import Settings
from flywheel.core.errors import InvalidInput
from flywheel.identity import service as identity
from flywheel.ingest import service as ingest_service
from flywheel.ingest.bulk import ImportOptions, import_file
from flywheel.profiles import service as profiles
from flywheel.runtime import Runtime
from flywheel.warehouse import PropertyType, TableKind

LOGIN = "$identity_login_id"


def user_id_of(runtime: Runtime, login: str) -> int | None:
    with runtime.db.unit_of_work() as session:
        return identity.find_user_id(session=session, project_id=1, key=LOGIN, value=login)


def rejections(runtime: Runtime) -> list[str]:
    with runtime.db.unit_of_work() as session:
        rows = ingest_service.list_rejections(session=session, project_id=1, source="import")
    return sorted(row.reason for row in rows)


def events(runtime: Runtime) -> list[dict[str, object]]:
    return runtime.warehouse.fetch_dicts("SELECT * FROM p1_events ORDER BY id")


def test_csv_with_mapping_accepts_good_rows_and_keeps_reasons(
    runtime: Runtime, tmp_path: Path
) -> None:
    path = tmp_path / "trades.csv"
    path.write_text(
        "客户,action,ts,amount,Fund Code,vip\n"
        "c1,BuyFund,2026-03-01 09:30:00,1000.5,000001,true\n"
        "c2,BuyFund,1772328600000,200,000002,false\n"
        "c1,RedeemFund,2026-03-02T10:00:00+08:00,50,000001,true\n"
        ",BuyFund,2026-03-01 09:30:00,1,000003,true\n"
        "c3,Bad-Name,2026-03-01 09:30:00,1,000003,true\n"
        "c4,BuyFund,yesterday,1,000003,true\n"
        "c5,id,2026-03-01 09:30:00,1,000003,true\n",
        encoding="utf-8",
    )
    result = import_file(
        runtime,
        project_id=1,
        path=path,
        options=ImportOptions(
            kind="events",
            mapping={"Fund Code": "item_id", "客户": "distinct_id"},
            event_col="action",
            time_col="ts",
        ),
    )
    assert (result.rows, result.accepted, result.rejected) == (7, 3, 4)
    assert rejections(runtime) == [
        "row 4: distinct_id is empty",
        "row 5: event name is not a valid name (a letter, _ or $ then up to 99 letters, "
        "digits, _ or $)",
        "row 6: time is neither a date-time nor epoch seconds/milliseconds",
        "row 7: event name is a reserved name",
    ]
    rows = events(runtime)
    c1, c2 = user_id_of(runtime, "c1"), user_id_of(runtime, "c2")
    assert c1 is not None and c2 is not None and c1 != c2
    assert [(r["distinct_id"], r["user_id"], r["event"], r["item_id"]) for r in rows] == [
        ("c1", c1, "BuyFund", "000001"),
        ("c2", c2, "BuyFund", "000002"),
        ("c1", c1, "RedeemFund", "000001"),
    ]
    assert [r["time"] for r in rows] == [
        datetime(2026, 3, 1, 9, 30),
        datetime(2026, 3, 1, 1, 30),  # epoch milliseconds
        datetime(2026, 3, 2, 2, 0),  # +08:00 → UTC
    ]
    assert rows[0]["amount"] == 1000.5 and rows[0]["vip"] is True
    with runtime.db.unit_of_work() as session:
        schema = profiles.load_schema(session=session, project_id=1)[TableKind.EVENTS]
        seen = profiles.known_event_properties(session=session, project_id=1)
    assert {schema["amount"].value, schema["item_id"].value, schema["vip"].value} == {
        "NUMBER",
        "STRING",
        "BOOL",
    }
    assert ("BuyFund", "amount") in seen and ("RedeemFund", "") in seen
    with runtime.db.unit_of_work() as session:
        raw = ingest_service.list_rejections(session=session, project_id=1, source="import")
    assert any('"action":"Bad-Name"' in r.raw for r in raw)


def test_jsonl_values_must_fit_registered_types(runtime: Runtime, tmp_path: Path) -> None:
    with runtime.db.unit_of_work() as session:
        profiles.register_properties(
            session=session,
            project_id=1,
            kind=TableKind.EVENTS,
            properties={"amount": PropertyType.NUMBER},
        )
    path = tmp_path / "events.jsonl"
    path.write_text(
        '{"distinct_id": "a", "event": "Deposit", "time": 1772328600, "amount": "100"}\n'
        '{"distinct_id": "a", "event": "Deposit", "time": 1772328601, "amount": "lots"}\n'
        '{"distinct_id": 42, "event": "Deposit", "time": 1772328602, "amount": null}\n'
    )
    result = import_file(runtime, project_id=1, path=path, options=ImportOptions(kind="events"))
    assert (result.accepted, result.rejected) == (2, 1)
    assert rejections(runtime) == ["row 2: property 'amount': value is not a NUMBER"]
    rows = events(runtime)
    assert [(r["distinct_id"], r["amount"]) for r in rows] == [("a", 100.0), ("42", None)]
    assert user_id_of(runtime, "42") is not None


def test_parquet_with_constant_event_and_time_zone(runtime: Runtime, tmp_path: Path) -> None:
    path = tmp_path / "orders.parquet"
    pq.write_table(
        pa.table(
            {
                "Customer ID": pa.array([13085.0, None, 13085.0, 12000.0]),
                "InvoiceDate": ["2010-07-01 10:00:00", "2010-07-01 10:00:00", "x", "2010-01-05"],
                "Price": [1.5, 2.0, 3.0, 4.0],
                "Quantity": pa.array([3, 1, 1, 2], pa.int64()),
            }
        ),
        path,
    )
    result = import_file(
        runtime,
        project_id=1,
        path=path,
        options=ImportOptions(
            kind="events",
            distinct_id_col="Customer ID",
            event_name="Purchase",
            time_col="InvoiceDate",
            mapping={"Price": "price", "Quantity": "quantity"},
            timezone="Europe/London",
        ),
    )
    assert (result.accepted, result.rejected, result.users) == (2, 2, 2)
    rows = events(runtime)
    assert [(r["distinct_id"], r["event"], r["time"], r["quantity"]) for r in rows] == [
        ("13085", "Purchase", datetime(2010, 7, 1, 9, 0), 3.0),  # BST
        ("12000", "Purchase", datetime(2010, 1, 5, 0, 0), 2.0),  # GMT
    ]


def test_profiles_import_sets_properties_and_leaves_empty_cells(
    runtime: Runtime, tmp_path: Path
) -> None:
    first = tmp_path / "p1.csv"
    first.write_text("cust,city,risk_tolerance,birthday\nc1,上海,C3,1980-02-03\nc2,北京,C2,\n")
    second = tmp_path / "p2.jsonl"
    second.write_text('{"cust": "c1", "city": null, "risk_tolerance": "C4", "vip": true}\n')
    for path in (first, second):
        import_file(
            runtime,
            project_id=1,
            path=path,
            options=ImportOptions(kind="profiles", distinct_id_col="cust"),
        )
    c1 = user_id_of(runtime, "c1")
    assert c1 is not None
    with runtime.db.unit_of_work() as session:
        stored = profiles.get_profile(session=session, project_id=1, user_id=c1)
    assert stored == {
        "city": "上海",
        "risk_tolerance": "C4",
        "birthday": "1980-02-03",
        "vip": True,
    }
    rows = runtime.warehouse.fetch_dicts(
        'SELECT user_id, city, risk_tolerance, vip FROM p1_users ORDER BY "city"'
    )
    assert {(r["city"], r["risk_tolerance"], r["vip"]) for r in rows} == {
        ("上海", "C4", True),
        ("北京", "C2", None),
    }


def test_items_import(runtime: Runtime, tmp_path: Path) -> None:
    path = tmp_path / "funds.csv"
    path.write_text(
        "code,name,risk_level,min_purchase,on_sale\n"
        "000001,华夏成长混合,R3,10,true\n"
        "110022,易方达消费行业股票,R4,10,false\n"
        ",无代码,R1,1,true\n"
    )
    result = import_file(
        runtime,
        project_id=1,
        path=path,
        options=ImportOptions(kind="items", item_type="fund", item_id_col="code"),
    )
    assert (result.accepted, result.rejected) == (2, 1)
    with runtime.db.unit_of_work() as session:
        item = profiles.get_item(session=session, project_id=1, item_type="fund", item_id="110022")
    assert item == {
        "name": "易方达消费行业股票",
        "risk_level": "R4",
        "min_purchase": 10.0,
        "on_sale": False,
    }
    assert runtime.warehouse.fetch("SELECT item_id, risk_level FROM p1_items ORDER BY 1") == [
        ("000001", "R3"),
        ("110022", "R4"),
    ]


@pytest.mark.parametrize(
    ("content", "name", "options", "message"),
    [
        ("not parquet at all", "bad.parquet", {}, "cannot read bad.parquet as parquet"),
        ('{"distinct_id": "a", \n', "bad.jsonl", {}, "cannot read bad.jsonl as jsonl"),
        ("distinct_id,event\na,B\n", "e.csv", {}, "no --time-col column 'time'"),
        ("distinct_id,event,time,my col\n", "e.csv", {}, "'my col'"),
        ("a,b\n", "e.xlsx", {}, "pass --format"),
        ("a\n", "e.csv", {"mapping": {"nope": "x"}}, "--map names columns the file"),
        ("a\n", "e.csv", {"timezone": "Mars/Olympus"}, "unknown time zone"),
    ],
)
def test_bad_files_fail_with_a_clear_message(
    runtime: Runtime,
    tmp_path: Path,
    content: str,
    name: str,
    options: dict[str, object],
    message: str,
) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(InvalidInput) as caught:
        import_file(
            runtime,
            project_id=1,
            path=path,
            options=ImportOptions(kind="events", **options),  # type: ignore[arg-type]
        )
    assert message in caught.value.message
    assert events(runtime) == []


def test_cli_import_prints_a_summary(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "e.csv"
    path.write_text("user,event,time\nu1,Login,2026-01-01 00:00:00\nu2,Login,never\n")
    answer = CliRunner().invoke(
        cli,
        [
            "import",
            "events",
            str(path),
            "--map",
            "user=distinct_id",
            "--data-dir",
            str(settings.data_dir),
        ],
    )
    assert answer.exit_code == 0, answer.output
    assert "accepted" in answer.output and "rejected" in answer.output
    assert "time is neither a date-time" in answer.output
    runtime = open_runtime(settings)
    try:
        assert runtime.warehouse.fetch("SELECT distinct_id FROM p1_events") == [("u1",)]
    finally:
        runtime.close()
    bad = CliRunner().invoke(
        cli, ["import", "events", str(path), "--map", "oops", "--data-dir", str(settings.data_dir)]
    )
    assert bad.exit_code == 2 and "source_col=target" in bad.output


def test_import_refuses_a_warehouse_held_by_a_server(runtime: Runtime, tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_text("distinct_id,event,time\nu1,Login,2026-01-01 00:00:00\n")
    # ``runtime`` holds the DuckDB file as ``flywheel serve`` would; a second process may not.
    answer = subprocess.run(
        [
            str(Path(sys.executable).with_name("flywheel")),
            "import",
            "events",
            str(path),
            "--data-dir",
            str(runtime.settings.data_dir),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert answer.returncode == 2, answer.stderr
    assert "in use by another process" in answer.stderr


@pytest.mark.shared_data
def test_online_retail_parquet_as_purchase_events(runtime: Runtime, shared_data: Path) -> None:
    path = shared_data / "online-retail-ii" / "online_retail_II_2009-2010.parquet"
    result = import_file(
        runtime,
        project_id=1,
        path=path,
        options=ImportOptions(
            kind="events",
            distinct_id_col="Customer ID",
            event_name="Purchase",
            time_col="InvoiceDate",
            timezone="Europe/London",
            mapping={"Customer ID": "customer_id"},
        ),
    )
    # 525,461 lines; 107,927 without a Customer ID are rejected (guest orders), the rest kept.
    assert (result.rows, result.rejected, result.accepted) == (525_461, 107_927, 417_534)
    assert result.users == 4_383
    assert runtime.warehouse.fetch(
        "SELECT count(*), count(DISTINCT user_id), min(time) FROM p1_events"
    ) == [(417_534, 4_383, datetime(2009, 12, 1, 7, 45))]
