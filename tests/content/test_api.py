from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from flywheel.content import service
from flywheel.profiles import service as profiles
from flywheel.projects import service as projects
from flywheel.runtime import Runtime

Headers = Callable[..., dict[str, str]]
BASE = "/api/v1/content"


def test_check_endpoint_reports_positions_in_original_text(
    client: TestClient, make_headers: Headers
) -> None:
    text = "此基金 穩 賺 不賠"
    answer = client.post(f"{BASE}/check", json={"text": text}, headers=make_headers("marketer"))
    assert answer.status_code == 200, answer.text
    findings = answer.json()["findings"]
    assert findings[0] == {"phrase": "稳赚不赔", "start": 4, "end": 10, "rule": "prohibited_claim"}
    assert text[4:10] == "穩 賺 不賠"
    assert findings[1]["rule"] == "missing_risk_warning"


def test_check_rejects_bad_input(client: TestClient, make_headers: Headers) -> None:
    headers = make_headers("marketer")
    assert client.post(f"{BASE}/check", json={"txt": "x"}, headers=headers).status_code == 422
    assert client.post(f"{BASE}/check", json={"text": "x"}).status_code == 401


def test_phrase_list_is_editable_by_compliance_only(
    client: TestClient, make_headers: Headers
) -> None:
    compliance, marketer = make_headers("compliance"), make_headers("marketer")
    new = {"phrase": "翻倍", "rule": "prohibited_claim", "note": "exaggeration"}
    assert client.post(f"{BASE}/phrases", json=new, headers=marketer).status_code == 403
    added = client.post(f"{BASE}/phrases", json=new, headers=compliance)
    assert added.status_code == 201, added.text
    found = client.post(f"{BASE}/check", json={"text": "回报翻 倍"}, headers=marketer).json()
    assert [f["phrase"] for f in found["findings"]] == ["翻倍"]
    removed = client.delete(f"{BASE}/phrases/{added.json()['id']}", headers=compliance)
    assert removed.status_code == 204
    found = client.post(f"{BASE}/check", json={"text": "回报翻 倍"}, headers=marketer).json()
    assert found["findings"] == []
    listed = client.get(f"{BASE}/phrases", headers=marketer).json()
    assert any(p["phrase"] == "稳赚" for p in listed)
    blank = {"phrase": " ，", "rule": "prohibited_claim"}
    assert client.post(f"{BASE}/phrases", json=blank, headers=compliance).status_code == 400


SMS = {
    "name": "新基金短信",
    "kind": "template",
    "channel": "sms",
    "tags": ["基金", "新发"],
    "body": "{{ user.name }}您好，新基金今日开放申购。基金有风险，投资需谨慎",
    "fallbacks": {"user.name": "尊敬的客户"},
}


def test_review_workflow_end_to_end(
    client: TestClient, make_headers: Headers, runtime: Runtime
) -> None:
    author, reviewer = make_headers("marketer"), make_headers("compliance")
    created = client.post(f"{BASE}/items", json=SMS, headers=author)
    assert created.status_code == 201, created.text
    item = created.json()
    content_id = item["id"]
    assert item["latest"]["status"] == "draft" and item["latest"]["findings"] == []

    # nothing approved yet: cannot be sent
    with runtime.db.unit_of_work() as session:
        project_id = projects.get_by_name(session=session, name="default").id
        with pytest.raises(service.NotApproved):
            service.render_for_customer(
                session=session,
                project_id=project_id,
                content_id=content_id,
                user_id=1,
                now=runtime.clock(),
            )

    assert client.post(f"{BASE}/items/{content_id}/submit", headers=author).status_code == 200
    queue = client.get(f"{BASE}/reviews?status=submitted", headers=reviewer).json()
    assert [v["item_id"] for v in queue] == [content_id]
    # a marketer cannot approve; an admin who is the author cannot either (separation of duties)
    assert (
        client.post(f"{BASE}/items/{content_id}/approve", json={}, headers=author).status_code
        == 403
    )
    approved = client.post(
        f"{BASE}/items/{content_id}/approve", json={"comment": "ok"}, headers=reviewer
    )
    assert approved.status_code == 200, approved.text
    v1 = approved.json()["approved_version_id"]

    # editing an approved item starts draft v2; v1 stays sendable
    edited = client.patch(
        f"{BASE}/items/{content_id}", json={"body": "新基金稳赚不赔"}, headers=author
    ).json()
    assert edited["latest"]["number"] == 2 and edited["approved_version_id"] == v1
    assert edited["latest"]["findings"][0]["phrase"] == "稳赚不赔"
    client.post(f"{BASE}/items/{content_id}/submit", headers=author)
    blocked = client.post(f"{BASE}/items/{content_id}/approve", json={}, headers=reviewer)
    assert blocked.status_code == 409
    rejected = client.post(
        f"{BASE}/items/{content_id}/reject", json={"comment": "承诺收益"}, headers=reviewer
    )
    assert rejected.json()["latest"]["status"] == "rejected"

    history = client.get(f"{BASE}/items/{content_id}/history", headers=author).json()
    assert [(h["action"], h["comment"]) for h in history] == [
        ("submitted", ""),
        ("approved", "ok"),
        ("submitted", ""),
        ("rejected", "承诺收益"),
    ]
    audit = client.get("/api/v1/audit?action=content.approved", headers=make_headers("admin"))
    if audit.status_code == 200:
        assert "content_version" in audit.text

    with runtime.db.unit_of_work() as session:
        profiles.save_profiles(
            session=session,
            project_id=project_id,
            profiles={7: {"name": "李四"}},
            now=runtime.clock(),
        )
    with runtime.db.unit_of_work() as session:
        message = service.render_for_customer(
            session=session,
            project_id=project_id,
            content_id=content_id,
            user_id=7,
            now=runtime.clock(),
            warehouse=runtime.warehouse,
            sms_signature="【飞轮证券】",
        )
        fallback = service.render_for_customer(
            session=session,
            project_id=project_id,
            content_id=content_id,
            user_id=8,
            now=runtime.clock(),
        )
    assert message.version_id == v1
    assert message.body.startswith("【飞轮证券】李四您好") and message.body.endswith("拒收请回复R")
    assert message.sms is not None and message.sms.encoding == "ucs2"
    assert message.sms.segments == 1
    assert fallback.body.startswith("尊敬的客户您好")


def test_preview_masks_pii_and_reveal_needs_permission(
    client: TestClient, make_headers: Headers, runtime: Runtime
) -> None:
    author = make_headers("marketer")
    body = {**SMS, "name": "手机号提示", "body": "您的手机号{{ user.mobile }}"}
    content_id = client.post(f"{BASE}/items", json=body, headers=author).json()["id"]
    with runtime.db.unit_of_work() as session:
        project_id = projects.get_by_name(session=session, name="default").id
        profiles.save_profiles(
            session=session,
            project_id=project_id,
            profiles={9: {"mobile": "13812345678"}},
            now=runtime.clock(),
        )
    masked = client.post(
        f"{BASE}/items/{content_id}/preview", json={"user_id": 9}, headers=author
    ).json()
    assert "13812345678" not in masked["body"]
    assert masked["sms"]["segments"] == 1
    refused = client.post(
        f"{BASE}/items/{content_id}/preview", json={"user_id": 9, "reveal": True}, headers=author
    )
    assert refused.status_code == 403
    shown = client.post(
        f"{BASE}/items/{content_id}/preview",
        json={"user_id": 9, "reveal": True},
        headers=make_headers("admin"),
    ).json()
    assert "13812345678" in shown["body"]
    other_branch = make_headers("marketer", branch_scope=["BR999"])
    hidden = client.post(
        f"{BASE}/items/{content_id}/preview", json={"user_id": 9}, headers=other_branch
    )
    assert hidden.status_code == 404


def test_unsafe_template_is_a_400_and_nothing_is_saved(
    client: TestClient, make_headers: Headers
) -> None:
    author = make_headers("marketer")
    bad = {**SMS, "name": "evil", "body": "{{ ''.__class__.__mro__[1].__subclasses__() }}"}
    answer = client.post(f"{BASE}/items", json=bad, headers=author)
    assert answer.status_code == 400
    assert answer.json()["error"] == "template_rejected"
    assert client.get(f"{BASE}/items?q=evil", headers=author).json() == []


def test_search_by_text_and_tag(client: TestClient, make_headers: Headers) -> None:
    author = make_headers("marketer")
    client.post(f"{BASE}/items", json=SMS, headers=author)
    other = {"name": "讲座邀请", "kind": "text", "body": "投资者教育 100%_讲座", "tags": ["教育"]}
    client.post(f"{BASE}/items", json=other, headers=author)
    assert [i["name"] for i in client.get(f"{BASE}/items?q=讲座", headers=author).json()] == [
        "讲座邀请"
    ]
    assert [i["name"] for i in client.get(f"{BASE}/items?tag=新发", headers=author).json()] == [
        "新基金短信"
    ]
    assert client.get(f"{BASE}/items?q=%25_", headers=author).json()[0]["name"] == "讲座邀请"
    assert client.post(f"{BASE}/items", json=SMS, headers=author).status_code == 409
    assert client.get(f"{BASE}/items/999", headers=author).status_code == 404


def test_import_by_api_reports_refused_items_and_keeps_the_rest(
    client: TestClient, make_headers: Headers
) -> None:
    author = make_headers("marketer")
    items = [
        {"name": "a", "body": "您好"},
        {"name": "b", "body": "{{ self.__dict__ }}"},
    ]
    answer = client.post(f"{BASE}/import", json={"items": items}, headers=author)
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["created"] == ["a"] and [r["name"] for r in report["rejected"]] == ["b"]
    exported = client.get(f"{BASE}/export", headers=author).json()
    assert [e["name"] for e in exported] == ["a"]
    again = client.post(f"{BASE}/import", json={"items": items[:1]}, headers=author).json()
    assert again["updated"] == ["a"]


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def test_image_upload_and_download(client: TestClient, make_headers: Headers) -> None:
    author, reader = make_headers("marketer"), make_headers("analyst")
    stored = client.post(
        f"{BASE}/media", files={"file": ("a.png", PNG, "image/png")}, headers=author
    )
    assert stored.status_code == 201, stored.text
    url = stored.json()["url"]
    fetched = client.get(url, headers=reader)
    assert fetched.status_code == 200 and fetched.content == PNG
    assert fetched.headers["content-type"] == "image/png"
    fake = client.post(
        f"{BASE}/media", files={"file": ("x.png", b"<script>", "image/png")}, headers=author
    )
    assert fake.status_code == 400
    assert client.get(f"{BASE}/media/..%2Fflywheel.db", headers=reader).status_code == 404
    assert client.get(f"{BASE}/media/{'0' * 64}.png", headers=reader).status_code == 404


def test_admin_author_cannot_approve_own_content(client: TestClient, make_headers: Headers) -> None:
    admin = make_headers("admin")
    body = {**SMS, "name": "自审"}
    content_id = client.post(f"{BASE}/items", json=body, headers=admin).json()["id"]
    client.post(f"{BASE}/items/{content_id}/submit", headers=admin)
    answer = client.post(f"{BASE}/items/{content_id}/approve", json={}, headers=admin)
    assert answer.status_code == 403
    assert answer.json()["error"] == "separation_of_duties"
    assert client.post(f"{BASE}/items/{content_id}/submit", headers=admin).status_code == 409
    assert (
        client.patch(f"{BASE}/items/{content_id}", json={"body": "x"}, headers=admin).status_code
        == 409
    )
