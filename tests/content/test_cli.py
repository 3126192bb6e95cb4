"""`flywheel content check | import | export` on a data folder."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from flywheel.cli import app
from flywheel.config import Settings


def _json(output: str) -> dict[str, object]:
    start = output.index("{")
    loaded: dict[str, object] = json.loads(output[start:])
    return loaded


def test_check_a_file_and_stdin(tmp_path: Path, settings: Settings) -> None:
    runner = CliRunner()
    source = tmp_path / "ad.txt"
    source.write_text("本产品 零 風 險。基金有风险，投资需谨慎", encoding="utf-8")
    found = runner.invoke(app, ["content", "check", str(source)])
    assert found.exit_code == 1, found.output
    assert _json(found.stdout)["findings"] == [
        {"phrase": "零风险", "start": 4, "end": 9, "rule": "prohibited_claim"}
    ]
    clean = runner.invoke(app, ["content", "check", "-"], input="欢迎参加讲座")
    assert clean.exit_code == 0 and _json(clean.stdout)["findings"] == []
    stored = runner.invoke(
        app, ["content", "check", str(source), "--stored", "--data-dir", str(settings.data_dir)]
    )
    assert stored.exit_code == 1, stored.output


def test_import_export_round_trip(tmp_path: Path, settings: Settings) -> None:
    runner = CliRunner()
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "讲座.txt").write_text("欢迎{{ user.name }}参加讲座", encoding="utf-8")
    card = {
        "name": "精选基金卡",
        "kind": "product_card",
        "body": "稳健",
        "fields": {"risk_level": "R2"},
    }
    (inbox / "cards.json").write_text(json.dumps([card]), encoding="utf-8")
    (inbox / "evil.txt").write_text("{{ lipsum.__globals__ }}", encoding="utf-8")
    (inbox / "broken.json").write_text("{not json", encoding="utf-8")
    data_dir = ["--data-dir", str(settings.data_dir)]
    imported = runner.invoke(app, ["content", "import", str(inbox), *data_dir])
    assert imported.exit_code == 1, imported.output
    report = _json(imported.stdout)
    assert sorted(report["created"]) == ["精选基金卡", "讲座"]  # type: ignore[call-overload]
    assert [r["name"] for r in report["rejected"]] == ["evil"]  # type: ignore[attr-defined]
    assert [u["file"] for u in report["unreadable"]] == ["broken.json"]  # type: ignore[attr-defined]

    outbox = tmp_path / "outbox"
    exported = runner.invoke(app, ["content", "export", str(outbox), *data_dir])
    assert exported.exit_code == 0, exported.output
    files = sorted(p.name for p in outbox.iterdir())
    assert len(files) == 2
    again = runner.invoke(app, ["content", "import", str(outbox), *data_dir])
    assert again.exit_code == 0, again.output
    assert sorted(_json(again.stdout)["updated"]) == ["精选基金卡", "讲座"]  # type: ignore[call-overload]
