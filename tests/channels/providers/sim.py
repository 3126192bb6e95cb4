"""Local provider servers for tests and benchmarks: Aliyun SMS, Tencent Cloud SMS, WeCom,
WeChat Official Account and JPush, on one real HTTP server (uvicorn on a free port).

Each provider checks what the real one checks: the Aliyun ACS3-HMAC-SHA256 signature and
payload hash, the Tencent TC3-HMAC-SHA256 signature, WeCom/WeChat access tokens (issued by
``gettoken``/``token``, expiring on demand), JPush HTTP Basic ``app_key:master_secret``. Faults
(``http_500``, ``timeout``, ``malformed``, ``quota``, ``throttled``) can be queued per provider:
each request pops one. Accepted messages are recorded per provider.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import secrets
import socket
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote

import orjson
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

ALIYUN_AK = ("LTAI-test-key", "aliyun-test-secret")
TENCENT_KEY = ("AKID-test-id", "tencent-test-secret")
SDK_APP_ID = "1400000001"
WECOM = {"corp_id": "ww-test-corp", "agent_secret": "wecom-agent-secret", "agent_id": 1000002}
WECOM_CONTACT_SECRET = "wecom-contact-secret"
WECOM_ROBOT_KEY = "robot-key-1"
WECHAT = {"app_id": "wx-test-app", "app_secret": "wechat-app-secret"}
JPUSH = {"app_key": "jpush-app-key", "master_secret": "jpush-master-secret"}


@dataclass
class Simulator:
    url: str = ""
    #: provider → queued faults (popped one per request).
    faults: dict[str, deque[str]] = field(default_factory=lambda: defaultdict(deque))
    #: provider → accepted messages (what a real provider would deliver).
    accepted: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    #: provider → number of requests received (accepted or not).
    requests: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    #: Requests refused for a bad signature / credential, per provider.
    refused: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    tokens: dict[str, float] = field(default_factory=dict)
    token_fetches: int = 0
    nonces: set[str] = field(default_factory=set)
    #: Tencent delivery reports waiting to be pulled (PullSmsSendStatus).
    tencent_reports: list[dict[str, Any]] = field(default_factory=list)
    tencent_replies: list[dict[str, Any]] = field(default_factory=list)
    jpush_cids: dict[str, str] = field(default_factory=dict)
    #: Seconds a ``timeout`` fault sleeps (longer than the clients' timeout in tests).
    stall_seconds: float = 2.5
    lock: threading.Lock = field(default_factory=threading.Lock)
    counter: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def reset(self) -> None:
        with self.lock:
            self.faults.clear()
            self.accepted.clear()
            self.requests.clear()
            self.refused.clear()
            self.tokens.clear()
            self.token_fetches = 0
            self.tencent_reports.clear()
            self.tencent_replies.clear()
            self.jpush_cids.clear()

    def fault(self, provider: str, *kinds: str) -> None:
        self.faults[provider].extend(kinds)

    def expire_tokens(self) -> None:
        """Every issued access token becomes invalid (next call answers 42001)."""
        self.tokens.clear()

    def _next_fault(self, provider: str) -> str | None:
        with self.lock:
            self.requests[provider] += 1
            queue = self.faults.get(provider)
            return queue.popleft() if queue else None

    def _id(self) -> int:
        with self.lock:
            return next(self.counter)

    # -- Aliyun ------------------------------------------------------------------------------

    def aliyun_signature_error(self, request: Request, body: bytes) -> str | None:
        """None when the ACS3-HMAC-SHA256 signature and payload hash check out."""
        auth = request.headers.get("authorization", "")
        algorithm, _, rest = auth.partition(" ")
        if algorithm != "ACS3-HMAC-SHA256":
            return "IncompleteSignature"
        parts = dict(p.split("=", 1) for p in rest.split(","))
        if parts.get("Credential") != ALIYUN_AK[0]:
            return "InvalidAccessKeyId.NotFound"
        if hashlib.sha256(body).hexdigest() != request.headers.get("x-acs-content-sha256"):
            return "IncompleteSignature"
        stamp = request.headers.get("x-acs-date", "")
        try:
            at = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        except ValueError:
            return "InvalidTimeStamp.Format"
        if abs((datetime.now(UTC) - at).total_seconds()) > 900:
            return "InvalidTimeStamp.Expired"
        nonce = request.headers.get("x-acs-signature-nonce", "")
        with self.lock:
            if not nonce or nonce in self.nonces:
                return "SignatureNonceUsed"
            self.nonces.add(nonce)
        signed = parts.get("SignedHeaders", "").split(";")
        if "host" not in signed or "x-acs-date" not in signed:
            return "IncompleteSignature"
        query = sorted(parse_qsl(request.url.query, keep_blank_values=True))
        canonical_query = "&".join(f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in query)
        canonical_headers = "".join(
            f"{name}:{request.headers.get(name, '').strip()}\n" for name in signed
        )
        canonical = "\n".join(
            [
                request.method,
                request.url.path or "/",
                canonical_query,
                canonical_headers,
                ";".join(signed),
                hashlib.sha256(body).hexdigest(),
            ]
        )
        to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
        expected = hmac.new(ALIYUN_AK[1].encode(), to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, parts.get("Signature", "")):
            return "SignatureDoesNotMatch"
        return None

    async def aliyun(self, request: Request, body: bytes) -> Response:
        error = self.aliyun_signature_error(request, body)
        if error is not None:
            self.refused["aliyun"] += 1
            return JSONResponse({"Code": error, "Message": error, "RequestId": "r"}, 400)
        fault = self._next_fault("aliyun")
        shaped = await self._shaped_fault(fault, aliyun=True)
        if shaped is not None:
            return shaped
        action = request.headers.get("x-acs-action")
        params = dict(parse_qsl(request.url.query, keep_blank_values=True))
        params.update(dict(parse_qsl(body.decode(), keep_blank_values=True)))
        if action == "SendSms":
            for required in ("PhoneNumbers", "SignName", "TemplateCode"):
                if not params.get(required):
                    return JSONResponse({"Code": "isv.INVALID_PARAMETERS", "Message": required})
            biz = f"{self._id()}^0"
            if params["PhoneNumbers"].startswith("100"):
                return JSONResponse({"Code": "isv.MOBILE_NUMBER_ILLEGAL", "Message": "bad"})
            self.accepted["aliyun"].append({**params, "BizId": biz})
            return JSONResponse({"Code": "OK", "Message": "OK", "BizId": biz, "RequestId": "r"})
        if action == "SendBatchSms":
            phones = orjson.loads(params["PhoneNumberJson"])
            signs = orjson.loads(params["SignNameJson"])
            values = orjson.loads(params.get("TemplateParamJson") or "[]")
            if len(phones) != len(signs) or (values and len(values) != len(phones)):
                return JSONResponse({"Code": "isv.INVALID_PARAMETERS", "Message": "lengths"})
            biz = f"{self._id()}^0"
            for index, phone in enumerate(phones):
                self.accepted["aliyun"].append(
                    {
                        "PhoneNumbers": phone,
                        "SignName": signs[index],
                        "TemplateCode": params["TemplateCode"],
                        "TemplateParam": orjson.dumps(values[index]).decode() if values else None,
                        "BizId": biz,
                    }
                )
            return JSONResponse({"Code": "OK", "Message": "OK", "BizId": biz, "RequestId": "r"})
        if action == "QuerySendDetails":
            rows = [
                {
                    "PhoneNum": a["PhoneNumbers"],
                    "SendStatus": 3 if not a["PhoneNumbers"].endswith("9") else 2,
                    "ErrCode": "DELIVERED" if not a["PhoneNumbers"].endswith("9") else "MK:0001",
                    "TemplateCode": a["TemplateCode"],
                    "OutId": a.get("OutId"),
                }
                for a in self.accepted["aliyun"]
                if a["BizId"] == params.get("BizId") and a["PhoneNumbers"] == params["PhoneNumber"]
            ]
            return JSONResponse(
                {
                    "Code": "OK",
                    "Message": "OK",
                    "TotalCount": len(rows),
                    "SmsSendDetailDTOs": {"SmsSendDetailDTO": rows},
                }
            )
        return JSONResponse({"Code": "InvalidAction.NotFound", "Message": str(action)}, 404)

    async def _shaped_fault(self, fault: str | None, *, aliyun: bool = False) -> Response | None:
        if fault is None:
            return None
        if fault == "timeout":
            await asyncio.sleep(self.stall_seconds)
            return JSONResponse({"Code": "OK"})
        if fault == "http_500":
            body = {"Code": "ServiceUnavailable", "Message": "busy", "RequestId": "r"}
            return JSONResponse(body if aliyun else {"errcode": -1}, 503)
        if fault == "malformed":
            return Response(b"<html>bad gateway", 200, media_type="application/json")
        if fault == "quota" and aliyun:
            return JSONResponse({"Code": "isv.DAY_LIMIT_CONTROL", "Message": "day limit"})
        if fault == "throttled" and aliyun:
            return JSONResponse({"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "limit"})
        return None

    # -- Tencent -----------------------------------------------------------------------------

    def tencent_signature_error(self, request: Request, body: bytes) -> str | None:
        auth = request.headers.get("authorization", "")
        algorithm, _, rest = auth.partition(" ")
        if algorithm != "TC3-HMAC-SHA256":
            return "AuthFailure.SignatureFailure"
        parts = dict(p.strip().split("=", 1) for p in rest.split(","))
        credential = parts.get("Credential", "").split("/")
        if len(credential) != 4 or credential[0] != TENCENT_KEY[0]:
            return "AuthFailure.SecretIdNotFound"
        _secret_id, date, service, terminator = credential
        timestamp = int(request.headers.get("x-tc-timestamp", "0"))
        if abs(time.time() - timestamp) > 300:
            return "AuthFailure.SignatureExpire"
        if datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d") != date:
            return "AuthFailure.SignatureFailure"
        signed = parts.get("SignedHeaders", "").split(";")
        if "content-type" not in signed or "host" not in signed:
            return "AuthFailure.SignatureFailure"
        canonical_headers = "".join(
            f"{name}:{request.headers.get(name, '').strip().lower()}\n" for name in signed
        )
        canonical = "\n".join(
            [
                request.method,
                request.url.path or "/",
                request.url.query,
                canonical_headers,
                ";".join(signed),
                hashlib.sha256(body).hexdigest(),
            ]
        )
        scope = f"{date}/{service}/{terminator}"
        to_sign = "\n".join(
            [
                "TC3-HMAC-SHA256",
                str(timestamp),
                scope,
                hashlib.sha256(canonical.encode()).hexdigest(),
            ]
        )

        def mac(key: bytes, text: str) -> bytes:
            return hmac.new(key, text.encode(), hashlib.sha256).digest()

        key = mac(mac(mac(("TC3" + TENCENT_KEY[1]).encode(), date), service), "tc3_request")
        expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, parts.get("Signature", "")):
            return "AuthFailure.SignatureFailure"
        return None

    @staticmethod
    def _tencent(payload: dict[str, Any]) -> Response:
        body = {"Response": {**payload, "RequestId": secrets.token_hex(8)}}
        return Response(orjson.dumps(body), 200, media_type="application/json")

    async def tencent(self, request: Request, body: bytes) -> Response:
        error = self.tencent_signature_error(request, body)
        if error is not None:
            self.refused["tencent"] += 1
            return self._tencent({"Error": {"Code": error, "Message": "signature"}})
        fault = self._next_fault("tencent")
        if fault == "timeout":
            await asyncio.sleep(self.stall_seconds)
        elif fault == "http_500":
            return Response(b"upstream error", 502)
        elif fault == "malformed":
            return Response(b"{not json", 200, media_type="application/json")
        elif fault == "quota":
            return self._tencent({"Error": {"Code": "LimitExceeded.AppDailyLimit", "Message": "q"}})
        elif fault == "throttled":
            return self._tencent({"Error": {"Code": "RequestLimitExceeded", "Message": "t"}})
        action = request.headers.get("x-tc-action")
        params = orjson.loads(body or b"{}")
        if action == "SendSms":
            if params.get("SmsSdkAppId") != SDK_APP_ID:
                return self._tencent({"Error": {"Code": "InvalidParameterValue", "Message": "app"}})
            statuses = []
            for phone in params["PhoneNumberSet"]:
                serial = f"2645:{self._id()}"
                if phone.startswith("+86100"):
                    statuses.append(
                        {
                            "SerialNo": "",
                            "PhoneNumber": phone,
                            "Code": "InvalidParameterValue.IncorrectPhoneNumber",
                            "Message": "bad number",
                        }
                    )
                    continue
                self.accepted["tencent"].append(
                    {**params, "PhoneNumber": phone, "SerialNo": serial}
                )
                self.tencent_reports.append(
                    {
                        "UserReceiveTime": "2026-11-02 10:00:00",
                        "CountryCode": "86",
                        "SubscriberNumber": phone[-11:],
                        "PhoneNumber": phone,
                        "SerialNo": serial,
                        "ReportStatus": "FAIL" if phone.endswith("9") else "SUCCESS",
                        "Description": "MK:0001" if phone.endswith("9") else "DELIVRD",
                        "SessionContext": params.get("SessionContext", ""),
                    }
                )
                statuses.append(
                    {
                        "SerialNo": serial,
                        "PhoneNumber": phone,
                        "Code": "Ok",
                        "Message": "send success",
                        "Fee": 1,
                        "SessionContext": params.get("SessionContext", ""),
                        "IsoCode": "CN",
                    }
                )
            return self._tencent({"SendStatusSet": statuses})
        if action == "PullSmsSendStatus":
            limit = int(params.get("Limit", 100))
            taken, self.tencent_reports[:] = (
                self.tencent_reports[:limit],
                self.tencent_reports[limit:],
            )
            return self._tencent({"PullSmsSendStatusSet": taken})
        if action == "PullSmsReplyStatus":
            taken = list(self.tencent_replies)
            self.tencent_replies.clear()
            return self._tencent({"PullSmsReplyStatusSet": taken})
        return self._tencent({"Error": {"Code": "InvalidAction", "Message": str(action)}})

    # -- WeCom / WeChat ----------------------------------------------------------------------

    def _issue_token(self) -> dict[str, Any]:
        token = secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[token] = time.monotonic() + 7200
            self.token_fetches += 1
        return {"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": 7200}

    def _token_error(self, token: str | None) -> dict[str, Any] | None:
        if not token:
            return {"errcode": 41001, "errmsg": "access_token missing"}
        if token not in self.tokens:
            return {"errcode": 42001, "errmsg": "access_token expired"}
        return None

    async def _weixin_fault(self, provider: str) -> Response | None:
        fault = self._next_fault(provider)
        if fault == "timeout":
            await asyncio.sleep(self.stall_seconds)
            return JSONResponse({"errcode": 0, "errmsg": "ok"})
        if fault == "http_500":
            return Response(b"bad gateway", 502)
        if fault == "malformed":
            return Response(b"<html>", 200, media_type="text/html")
        if fault == "quota":
            return JSONResponse({"errcode": 45009, "errmsg": "reach max api daily quota limit"})
        if fault == "throttled":
            return JSONResponse({"errcode": 45033, "errmsg": "api concurrent out of limit"})
        if fault == "system_busy":
            return JSONResponse({"errcode": -1, "errmsg": "system busy"})
        return None

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/")
        async def rpc(request: Request) -> Response:
            body = await request.body()
            if request.headers.get("x-acs-action"):
                return await self.aliyun(request, body)
            return await self.tencent(request, body)

        @app.get("/wecom/cgi-bin/gettoken")
        def wecom_token(corpid: str, corpsecret: str) -> dict[str, Any]:
            if corpid != WECOM["corp_id"]:
                return {"errcode": 40013, "errmsg": "invalid corpid"}
            if corpsecret not in (WECOM["agent_secret"], WECOM_CONTACT_SECRET):
                return {"errcode": 40001, "errmsg": "invalid credential"}
            return self._issue_token()

        @app.post("/wecom/cgi-bin/message/send")
        async def wecom_send(request: Request, access_token: str | None = None) -> Response:
            bad = self._token_error(access_token)
            if bad:
                return JSONResponse(bad)
            fault = await self._weixin_fault("wecom_app")
            if fault is not None:
                return fault
            body = orjson.loads(await request.body())
            if body.get("agentid") != WECOM["agent_id"] or body.get("msgtype") not in (
                "text",
                "markdown",
                "textcard",
            ):
                return JSONResponse({"errcode": 40008, "errmsg": "invalid message type"})
            if body["touser"].startswith("nobody"):
                return JSONResponse(
                    {"errcode": 0, "errmsg": "ok", "invaliduser": body["touser"], "msgid": ""}
                )
            self.accepted["wecom_app"].append(body)
            return JSONResponse({"errcode": 0, "errmsg": "ok", "msgid": f"m{self._id()}"})

        @app.post("/wecom/cgi-bin/webhook/send")
        async def wecom_robot(request: Request, key: str) -> Response:
            if key != WECOM_ROBOT_KEY:
                self.refused["wecom_robot"] += 1
                return JSONResponse({"errcode": 93000, "errmsg": "invalid webhook url"})
            fault = await self._weixin_fault("wecom_robot")
            if fault is not None:
                return fault
            body = orjson.loads(await request.body())
            kind = body.get("msgtype")
            if kind not in ("text", "markdown") or not body.get(kind, {}).get("content"):
                return JSONResponse({"errcode": 44004, "errmsg": "empty content"})
            self.accepted["wecom_robot"].append(body)
            return JSONResponse({"errcode": 0, "errmsg": "ok"})

        @app.post("/wecom/cgi-bin/externalcontact/add_msg_template")
        async def wecom_template(request: Request, access_token: str | None = None) -> Response:
            bad = self._token_error(access_token)
            if bad:
                return JSONResponse(bad)
            fault = await self._weixin_fault("wecom_customer")
            if fault is not None:
                return fault
            body = orjson.loads(await request.body())
            if body.get("chat_type") != "single" or not body.get("external_userid"):
                return JSONResponse({"errcode": 40003, "errmsg": "invalid external userid"})
            fail = [u for u in body["external_userid"] if not u.startswith("wm")]
            self.accepted["wecom_customer"].append(body)
            return JSONResponse(
                {"errcode": 0, "errmsg": "ok", "fail_list": fail, "msgid": f"msg{self._id()}"}
            )

        @app.get("/wechat/cgi-bin/token")
        def wechat_token(grant_type: str, appid: str, secret: str) -> dict[str, Any]:
            if grant_type != "client_credential" or appid != WECHAT["app_id"]:
                return {"errcode": 40013, "errmsg": "invalid appid"}
            if secret != WECHAT["app_secret"]:
                return {"errcode": 40125, "errmsg": "invalid appsecret"}
            return self._issue_token()

        @app.post("/wechat/cgi-bin/message/template/send")
        async def wechat_template(request: Request, access_token: str | None = None) -> Response:
            bad = self._token_error(access_token)
            if bad:
                return JSONResponse(bad)
            fault = await self._weixin_fault("wechat_template")
            if fault is not None:
                return fault
            body = orjson.loads(await request.body())
            if not body.get("touser", "").startswith("o"):
                return JSONResponse({"errcode": 40003, "errmsg": "invalid openid"})
            if body["touser"].startswith("ounfollowed"):
                return JSONResponse({"errcode": 43004, "errmsg": "require subscribe"})
            if not body.get("template_id") or not isinstance(body.get("data"), dict):
                return JSONResponse({"errcode": 40037, "errmsg": "invalid template_id"})
            client_msg_id = body.get("client_msg_id")
            for earlier in self.accepted["wechat_template"]:
                if client_msg_id and earlier.get("client_msg_id") == client_msg_id:
                    return JSONResponse({"errcode": 0, "errmsg": "ok", "msgid": earlier["_msgid"]})
            msgid = self._id()
            self.accepted["wechat_template"].append({**body, "_msgid": msgid})
            return JSONResponse({"errcode": 0, "errmsg": "ok", "msgid": msgid})

        @app.post("/wechat/cgi-bin/message/subscribe/bizsend")
        async def wechat_subscribe(request: Request, access_token: str | None = None) -> Response:
            bad = self._token_error(access_token)
            if bad:
                return JSONResponse(bad)
            fault = await self._weixin_fault("wechat_subscribe")
            if fault is not None:
                return fault
            body = orjson.loads(await request.body())
            if body["touser"].startswith("orefused"):
                return JSONResponse({"errcode": 43101, "errmsg": "user refuse to accept the msg"})
            self.accepted["wechat_subscribe"].append(body)
            return JSONResponse({"errcode": 0, "errmsg": "ok"})

        @app.post("/jpush/v3/push")
        async def jpush_push(request: Request) -> Response:
            expected = base64.b64encode(
                f"{JPUSH['app_key']}:{JPUSH['master_secret']}".encode()
            ).decode()
            if request.headers.get("authorization") != f"Basic {expected}":
                self.refused["jpush"] += 1
                return JSONResponse({"error": {"code": 1004, "message": "Authen failed"}}, 401)
            fault = self._next_fault("jpush")
            if fault == "timeout":
                await asyncio.sleep(self.stall_seconds)
            elif fault == "http_500":
                return JSONResponse({"error": {"code": 1000, "message": "internal"}}, 500)
            elif fault == "malformed":
                return Response(b"<html>", 200, media_type="text/html")
            elif fault == "throttled":
                return JSONResponse({"error": {"code": 2002, "message": "rate limited"}}, 429)
            body = orjson.loads(await request.body())
            audience = body.get("audience") or {}
            if not body.get("notification") or not audience:
                return JSONResponse({"error": {"code": 1003, "message": "missing"}}, 400)
            ids = audience.get("registration_id") or []
            if any(i.startswith("gone") for i in ids):
                return JSONResponse(
                    {"error": {"code": 1011, "message": "cannot find user by this audience"}}, 400
                )
            cid = body.get("cid")
            if cid and cid in self.jpush_cids:
                return JSONResponse({"sendno": "0", "msg_id": self.jpush_cids[cid]})
            msg_id = str(54043195528000000 + self._id())
            if cid:
                self.jpush_cids[cid] = msg_id
            self.accepted["jpush"].append(body)
            return JSONResponse({"sendno": "0", "msg_id": msg_id})

        return app


@contextmanager
def running_simulator() -> Iterator[Simulator]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sim = Simulator(url=f"http://127.0.0.1:{port}")
    server = uvicorn.Server(
        uvicorn.Config(
            sim.app(), host="127.0.0.1", port=port, log_level="warning", access_log=False
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("provider simulator did not start")
        time.sleep(0.01)
    try:
        yield sim
    finally:
        server.should_exit = True
        thread.join(10)


def accounts(sim: Simulator, *, timeout: float = 10.0) -> dict[str, dict[str, Any]]:
    """Channel accounts pointing at ``sim`` (what a project's settings would hold). Tests that
    queue a ``timeout`` fault pass a short ``timeout`` (below ``stall_seconds``)."""
    host = sim.url.removeprefix("http://")
    return {
        "sms_aliyun": {
            "provider": "aliyun",
            "access_key_id": ALIYUN_AK[0],
            "access_key_secret": ALIYUN_AK[1],
            "endpoint": host,
            "protocol": "http",
            "sign_name": "飞轮证券",
            "timeout_seconds": timeout,
            "templates": {"notice": {"code": "SMS_100001", "params": {"name": "name"}}},
        },
        "sms_tencent": {
            "provider": "tencent",
            "secret_id": TENCENT_KEY[0],
            "secret_key": TENCENT_KEY[1],
            "sdk_app_id": SDK_APP_ID,
            "endpoint": host,
            "protocol": "http",
            "sign_name": "飞轮证券",
            "timeout_seconds": timeout,
            "templates": {"notice": {"id": "2001", "params": ["name"]}},
        },
        "wecom_app": {**WECOM, "base_url": f"{sim.url}/wecom", "timeout_seconds": timeout},
        "wecom_robot": {"robot_key": WECOM_ROBOT_KEY, "base_url": f"{sim.url}/wecom"},
        "wecom_customer": {
            "corp_id": WECOM["corp_id"],
            "contact_secret": WECOM_CONTACT_SECRET,
            "base_url": f"{sim.url}/wecom",
            "advisor_userids": {"ADV0001": "zhang.san"},
        },
        "wechat": {
            **WECHAT,
            "base_url": f"{sim.url}/wechat",
            "timeout_seconds": timeout,
            "templates": {
                "notice": {
                    "id": "TPL-fund",
                    "params": {"thing1": "name", "thing2": "fund"},
                    "miniprogram": {"appid": "wxmini", "pagepath": "pages/fund/index"},
                }
            },
        },
        "app_push": {**JPUSH, "base_url": f"{sim.url}/jpush", "timeout_seconds": timeout},
    }
