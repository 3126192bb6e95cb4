"""Preview of unsaved editor fields: same rendering and masking, nothing stored."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from flywheel.audit import service as audit
from flywheel.audit.schemas import AuditFilter
from flywheel.content.models import ContentVersion
from flywheel.profiles import service as profiles
from flywheel.projects import service as projects
from flywheel.runtime import Runtime

Headers = Callable[..., dict[str, str]]
BASE = "/api/v1/content"
SAVED = "{{ user.name }}您好，新基金今日开放申购。基金有风险，投资需谨慎"
DRAFT = (
    "{{ user.name }}您好，您的手机号{{ user.mobile }}已绑定，定投计划已生效，"
    "请于每月扣款日前保持银行卡余额充足，以免扣款失败。基金有风险，投资需谨慎"
)
CUSTOMER = 41


def _approved_sms(client: TestClient, make_headers: Headers, runtime: Runtime) -> int:
    """An approved SMS item (v1) and a customer with a name and a mobile number."""
    author, reviewer = make_headers("marketer"), make_headers("compliance")
    item = {"name": "定投短信", "channel": "sms", "body": SAVED, "fallbacks": {}}
    content_id: int = client.post(f"{BASE}/items", json=item, headers=author).json()["id"]
    assert client.post(f"{BASE}/items/{content_id}/submit", headers=author).status_code == 200
    approved = client.post(f"{BASE}/items/{content_id}/approve", json={}, headers=reviewer)
    assert approved.status_code == 200, approved.text
    with runtime.db.unit_of_work() as session:
        project_id = projects.get_by_name(session=session, name="default").id
        profiles.save_profiles(
            session=session,
            project_id=project_id,
            profiles={CUSTOMER: {"name": "王小明", "mobile": "13812345678"}},
            now=runtime.clock(),
        )
    return content_id


def _preview(client: TestClient, content_id: int, headers: dict[str, str], **body: Any) -> Any:
    return client.post(
        f"{BASE}/items/{content_id}/preview", json={"user_id": CUSTOMER, **body}, headers=headers
    )


def test_draft_renders_for_the_customer_masked_and_nothing_is_stored(
    client: TestClient, make_headers: Headers, runtime: Runtime
) -> None:
    content_id = _approved_sms(client, make_headers, runtime)
    author = make_headers("marketer")
    before = client.get(f"{BASE}/items/{content_id}", headers=author).json()
    history = client.get(f"{BASE}/items/{content_id}/history", headers=author).json()

    saved = _preview(client, content_id, author).json()
    answer = _preview(client, content_id, author, draft={"body": DRAFT})
    assert answer.status_code == 200, answer.text
    drafted = answer.json()
    assert drafted["draft"] is True and saved["draft"] is False
    assert drafted["version_id"] == saved["version_id"] == before["latest"]["id"]
    # the unsaved text, with the customer's PII masked as in the saved preview
    assert drafted["body"].startswith("王**您好，您的手机号138****5678已绑定")
    assert drafted["body"].endswith("拒收请回复R")
    assert saved["body"].startswith("王**您好，新基金")
    assert "13812345678" not in drafted["body"] and "王小明" not in drafted["body"]
    # SMS length of the rendered draft, not of the saved text
    assert drafted["sms"]["length"] == len(drafted["body"]) != saved["sms"]["length"]
    assert drafted["sms"]["segments"] == 2
    # the draft equal to the saved text renders exactly as the saved preview
    same = _preview(client, content_id, author, draft={"body": SAVED, "tags": ["x"]}).json()
    assert {**same, "draft": False} == saved

    after = client.get(f"{BASE}/items/{content_id}", headers=author).json()
    assert after == before
    assert after["latest"]["status"] == "approved" and after["latest"]["number"] == 1
    assert client.get(f"{BASE}/items/{content_id}/history", headers=author).json() == history
    with runtime.db.unit_of_work() as session:
        versions = session.scalar(
            select(func.count())
            .select_from(ContentVersion)
            .where(ContentVersion.item_id == content_id)
        )
    assert versions == 1


def test_draft_fields_subject_and_fallbacks_render(
    client: TestClient, make_headers: Headers, runtime: Runtime
) -> None:
    author = make_headers("marketer")
    item = {"name": "月报邮件", "channel": "email", "subject": "月报", "body": "您好"}
    content_id = client.post(f"{BASE}/items", json=item, headers=author).json()["id"]
    draft = {
        "subject": "{{ user.nickname }}的{{ product.month }}月报",
        "body": "<p>{{ product.month }}</p>",
        "fields": {"month": "十一月"},
        "fallbacks": {"user.nickname": "尊敬的客户"},
    }
    drafted = _preview(client, content_id, author, draft=draft).json()
    assert drafted["subject"] == "尊敬的客户的十一月月报"
    assert drafted["html"] == "<p>十一月</p>" and drafted["fields"] == {"month": "十一月"}
    latest = client.get(f"{BASE}/items/{content_id}", headers=author).json()["latest"]
    assert (latest["subject"], latest["body"], latest["fields"]) == ("月报", "您好", {})


def test_broken_draft_template_is_a_422_saying_where(
    client: TestClient, make_headers: Headers, runtime: Runtime
) -> None:
    content_id = _approved_sms(client, make_headers, runtime)
    author = make_headers("marketer")
    cases = [
        ({"body": "您好\n{{ user.name }"}, "body", 2, "syntax error on line 2"),
        ({"subject": "{{ account.balance }}"}, "subject", 1, "unknown template variable 'account'"),
        ({"body": "您好\n\n{{ user.name + 1 }}"}, "body", 3, "render time on line 3"),
        ({"fields": {"link": "{{ user.__class__ }}"}}, "fields.link", 1, "'__class__'"),
    ]
    for draft, field, line, says in cases:
        answer = _preview(client, content_id, author, draft=draft)
        assert answer.status_code == 422, (draft, answer.text)
        error = answer.json()
        assert error["error"] == "template_rejected"
        assert error["message"].startswith(f"{field}: ") and says in error["message"], error
        assert error["detail"] == {"field": field, "line": line}
    # fields PATCH does not carry are refused by name
    unknown = _preview(client, content_id, author, draft={"html": "<p>x</p>"})
    assert unknown.status_code == 422 and "html" in unknown.text
    latest = client.get(f"{BASE}/items/{content_id}", headers=author).json()["latest"]
    assert latest["body"] == SAVED and latest["status"] == "approved"


def test_draft_reveal_needs_its_permission_and_is_audited(
    client: TestClient, make_headers: Headers, runtime: Runtime
) -> None:
    content_id = _approved_sms(client, make_headers, runtime)
    draft = {"body": DRAFT}
    refused = _preview(client, content_id, make_headers("marketer"), draft=draft, reveal=True)
    assert refused.status_code == 403 and "pii:view" in refused.text
    # a draft runs text nobody saved against a profile: only content writers may send one
    reviewer = _preview(client, content_id, make_headers("compliance"), draft=draft)
    assert reviewer.status_code == 403 and "content:write" in reviewer.text
    assert _preview(client, content_id, make_headers("compliance")).status_code == 200

    def reveals() -> list[Any]:
        with runtime.db.unit_of_work() as session:
            found = audit.search(session=session, filters=AuditFilter(action="pii.reveal"))
        return [e for e in found.entries if e.target == f"customer:user_id:{CUSTOMER}"]

    assert reveals() == []
    shown = _preview(client, content_id, make_headers("admin"), draft=draft, reveal=True)
    assert shown.status_code == 200, shown.text
    assert shown.json()["body"].startswith("王小明您好，您的手机号13812345678已绑定")
    [entry] = reveals()
    assert entry.detail["fields"] == ["mobile", "name"]
