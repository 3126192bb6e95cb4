"""The built-in playbooks (营销模板库): parameters and what each one builds.

A playbook's ``build(params, names)`` returns a :class:`Plan`: tag definitions, one segment,
content items (keyed) and a journey definition as JSON in which ``"@segment"`` and
``"@content:<key>"`` stand for the ids of what the apply creates. Names come from ``names`` so
a second apply of the same playbook gets suffixed names (see ``service.apply``).

The events and properties are the demo brokerage's (``flywheel/demo/generator.py``), which are
also the names a brokerage's own collection is expected to use (``docs/data-model.md``).
Texts are written to pass the claims checker: no absolute or guaranteed-return claims, and a
risk warning wherever a product is promoted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from flywheel.content.schemas import Channel as ContentChannel
from flywheel.content.schemas import ContentIn
from flywheel.segments.schemas import SegmentIn
from flywheel.tags.schemas import TagIn

FUND_WARNING = "基金有风险，投资需谨慎。"
MARKET_WARNING = "投资有风险，入市需谨慎。"
DAY = 86_400
EVER = {"relative_days": 3650}
GREETING = "{{ user.name | default('尊敬的客户') }}您好，"

#: Journey channels a playbook sends on (names of ``flywheel.channels`` adapters).
Channel = Literal["sms", "app_push", "email", "in_app"]
#: The content library's channel of the template each one sends.
CONTENT_CHANNEL: dict[str, ContentChannel] = {
    "sms": "sms",
    "app_push": "push",
    "email": "email",
    "in_app": "in_app",
}
#: Free text a parameter puts into a template: no template syntax can get in.
PlainText = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[^{}%#<>\\]+$")]
TimeOfDay = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]


class Params(BaseModel):
    """Parameters every playbook has."""

    model_config = ConfigDict(extra="forbid")
    #: Journey purpose: ``marketing`` obeys quiet hours, frequency caps and marketing consent;
    #: ``service`` notices only the service rules.
    purpose: Literal["marketing", "service"] = "marketing"
    #: Priority of the journey's messages when a frequency cap makes them compete (0–100).
    priority: int = Field(default=50, ge=0, le=100)


@dataclass(frozen=True)
class Names:
    """Suffixed names: ``n == 1`` keeps names as they are; ``n ≥ 2`` appends ``_n`` to tag
    names and `` (n)`` to titles."""

    n: int = 1

    def tag(self, base: str) -> str:
        return base if self.n == 1 else f"{base}_{self.n}"

    def title(self, base: str) -> str:
        return base if self.n == 1 else f"{base} ({self.n})"


@dataclass
class Plan:
    tags: list[TagIn]
    segment: SegmentIn
    content: dict[str, ContentIn]
    journey: dict[str, Any]


@dataclass(frozen=True)
class Playbook:
    name: str
    title_zh: str
    title_en: str
    description: str
    params: type[Params]
    build: Callable[[Any, Names], Plan]
    notes: list[str] = field(default_factory=list)


# -- building blocks ----------------------------------------------------------------------------
def profile(prop: str, function: str, *params: Any) -> dict[str, Any]:
    return {"type": "profile_rule", "field": prop, "function": function, "params": list(params)}


def did(event: str, window: dict[str, Any], function: str = "did", *params: Any) -> dict[str, Any]:
    return {
        "type": "event_rule",
        "measure": {"event": event, "aggregator": "count"},
        "window": window,
        "function": function,
        "params": list(params),
    }


def days(n: int) -> dict[str, Any]:
    return {"relative_days": n}


def all_of(*rules: dict[str, Any]) -> dict[str, Any]:
    return {"relation": "and", "rules": list(rules)}


def any_of(*rules: dict[str, Any]) -> dict[str, Any]:
    return {"relation": "or", "rules": list(rules)}


def template(
    names: Names,
    playbook: str,
    title: str,
    channel: Channel,
    body: str,
    subject: str = "",
) -> ContentIn:
    """A channel template of the playbook (draft; review stays a human step)."""
    return ContentIn(
        name=names.title(title),
        kind="template",
        channel=CONTENT_CHANNEL[channel],
        tags=["playbook", f"playbook:{playbook}"],
        subject=subject,
        body=body,
        fallbacks={"user.name": "尊敬的客户"},
    )


def send(node_id: str, key: str, channel: Channel, label: str) -> dict[str, Any]:
    return {
        "id": node_id,
        "type": "send",
        "label": label,
        "channel": channel,
        "content": {"content_id": f"@content:{key}"},
    }


def edge(source: str, target: str, port: str | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {"from": source, "to": target}
    if port is not None:
        answer["port"] = port
    return answer


def exit_node(node_id: str, label: str) -> dict[str, Any]:
    return {"id": node_id, "type": "exit", "label": label}


def journey(
    names: Names,
    playbook: str,
    title: str,
    description: str,
    params: Params,
    nodes: list[dict[str, Any]],
    edges: list[dict[str, Any]],
    **extra: Any,
) -> dict[str, Any]:
    return {
        "name": names.title(title),
        "description": description,
        "campaign": f"playbook:{playbook}",
        "purpose": params.purpose,
        "priority": params.priority,
        "nodes": nodes,
        "edges": edges,
        **extra,
    }


# -- 1. fund auto-invest activation -------------------------------------------------------------
class FundAipActivation(Params):
    new_customer_days: int = Field(default=90, ge=7, le=365, description="开户天数内的新客")
    min_monthly_amount: int = Field(
        default=100, ge=10, le=100_000, description="定投起投金额（元）"
    )
    wait_days: int = Field(default=7, ge=1, le=60, description="首条消息后等待建立定投的天数")
    channel: Channel = "sms"
    reminder_channel: Channel = "app_push"


def _fund_aip_activation(p: FundAipActivation, names: Names) -> Plan:
    name = "fund_aip_activation"
    preference = names.tag("aip_fund_preference")
    tags = [
        TagIn(
            name=preference,
            display_name="近30天偏好基金类别",
            description="ViewFundDetail 中浏览最多的 fund_category（定投邀约个性化）",
            kind="preference",
            spec={
                "event": "ViewFundDetail",
                "property": "fund_category",
                "window": days(30),
                "top_n": 1,
            },
        )
    ]
    segment = SegmentIn(
        name=names.title("定投激活 · 新开户未定投客户"),
        description=f"开户 {p.new_customer_days} 天内、有基金账户、从未建立基金定投计划",
        rule=all_of(
            profile("account_open_date", "relativeWithin", p.new_customer_days),
            profile("has_fund_account", "isTrue"),
            did("CreateAutoInvestPlan", EVER, "notDid"),
        ),
    )
    content = {
        "invite": template(
            names,
            name,
            "定投激活 · 邀约",
            p.channel,
            GREETING + f"基金定投每月{p.min_monthly_amount}元起，分批买入、摊薄成本"
            f"{{% if tags.{preference} %}}，您近期关注的{{{{ tags.{preference} }}}}类基金"
            "也支持定投{% endif %}。打开APP「基金-定投」即可设置。" + FUND_WARNING,
            subject="基金定投，从每月一小笔开始",
        ),
        "reminder": template(
            names,
            name,
            "定投激活 · 提醒",
            p.reminder_channel,
            f"定投贵在坚持：设定每月{p.min_monthly_amount}元起的定投计划，长期分批投入，"
            "不必择时。" + FUND_WARNING,
            subject="定投小贴士",
        ),
    }
    nodes: list[dict[str, Any]] = [
        {
            "id": "entry",
            "type": "entry_segment_change",
            "segment_id": "@segment",
            "label": "新客进入",
        },
        send("invite", "invite", p.channel, "定投邀约"),
        {
            "id": "wait_plan",
            "type": "wait_event",
            "event": "CreateAutoInvestPlan",
            "timeout_seconds": p.wait_days * DAY,
            "label": "等待建立定投",
        },
        send("reminder", "reminder", p.reminder_channel, "定投提醒"),
        exit_node("converted", "已建立定投"),
        exit_node("done", "结束"),
    ]
    edges = [
        edge("entry", "invite"),
        edge("invite", "wait_plan"),
        edge("wait_plan", "converted", "event"),
        edge("wait_plan", "reminder", "timeout"),
        edge("reminder", "done"),
    ]
    return Plan(
        tags,
        segment,
        content,
        journey(
            names,
            name,
            "基金定投激活（新客）",
            "新开户客户的基金定投邀约，未建立定投时再提醒一次。",
            p,
            nodes,
            edges,
            goals=[{"event": "CreateAutoInvestPlan", "window_seconds": 30 * DAY}],
        ),
    )


# -- 2. auto-invest termination and failed-payment recovery -------------------------------------
class AipRecovery(Params):
    window_days: int = Field(default=30, ge=1, le=365, description="终止或扣款失败发生在最近N天")
    wait_days: int = Field(default=7, ge=1, le=60, description="等待客户恢复的天数")
    advisor_due_days: int = Field(default=3, ge=0, le=90, description="投顾跟进期限（天）")
    channel: Channel = "sms"


def _aip_recovery(p: AipRecovery, names: Names) -> Plan:
    name = "aip_recovery"
    window = days(p.window_days)
    failed = did("AutoInvestPaymentFailed", window)
    terminated = did("TerminateAutoInvestPlan", window)
    tags = [
        TagIn(
            name=names.tag("aip_issue"),
            display_name="定投异常",
            description=f"最近{p.window_days}天扣款失败（payment_failed）或终止定投（terminated）",
            kind="rule",
            spec={
                "values": [
                    {"value": "payment_failed", "rule": all_of(failed)},
                    {"value": "terminated", "rule": all_of(terminated)},
                ]
            },
        )
    ]
    segment = SegmentIn(
        name=names.title("定投挽回 · 终止或扣款失败"),
        description=f"最近 {p.window_days} 天终止定投计划或定投扣款失败的客户",
        rule=any_of(terminated, failed),
    )
    content = {
        "payment_failed": template(
            names,
            name,
            "定投挽回 · 扣款失败",
            p.channel,
            GREETING
            + "您的基金定投计划本期扣款未成功，请确认扣款账户余额充足，下期将按计划自动扣款；"
            "如需调整金额，可在APP「我的定投」中修改。" + FUND_WARNING,
            subject="定投扣款未成功提醒",
        ),
        "terminated": template(
            names,
            name,
            "定投挽回 · 已终止",
            p.channel,
            GREETING + "您的基金定投计划已终止。市场起伏时，坚持定投有助于分散买入时点；"
            "如需恢复，可在APP「我的定投」中重新设置。" + FUND_WARNING,
            subject="您的定投计划已终止",
        ),
    }
    nodes: list[dict[str, Any]] = [
        {
            "id": "entry",
            "type": "entry_segment_change",
            "segment_id": "@segment",
            "label": "进入人群",
        },
        {"id": "is_failed", "type": "condition", "rule": all_of(failed), "label": "扣款失败？"},
        send("notify_failed", "payment_failed", p.channel, "扣款失败提醒"),
        send("notify_terminated", "terminated", p.channel, "终止挽回"),
        {
            "id": "wait_deposit",
            "type": "wait_event",
            "event": "Deposit",
            "timeout_seconds": p.wait_days * DAY,
            "label": "等待入金补足",
        },
        {
            "id": "wait_plan",
            "type": "wait_event",
            "event": "CreateAutoInvestPlan",
            "timeout_seconds": p.wait_days * DAY,
            "label": "等待重新定投",
        },
        {
            "id": "advisor",
            "type": "advisor_task",
            "title": "定投挽回跟进",
            "script": "客户近期定投扣款失败或终止了定投计划。请了解原因（资金安排、市场波动、"
            "对定投方式的疑问等），说明分批投入的特点与风险；只在确认客户风险承受能力后"
            "再作建议，不对盈亏作任何保证。",
            "due_days": p.advisor_due_days,
        },
        exit_node("recovered", "已恢复"),
        exit_node("done", "结束"),
    ]
    edges = [
        edge("entry", "is_failed"),
        edge("is_failed", "notify_failed", "yes"),
        edge("is_failed", "notify_terminated", "no"),
        edge("notify_failed", "wait_deposit"),
        edge("notify_terminated", "wait_plan"),
        edge("wait_deposit", "recovered", "event"),
        edge("wait_deposit", "advisor", "timeout"),
        edge("wait_plan", "recovered", "event"),
        edge("wait_plan", "advisor", "timeout"),
        edge("advisor", "done"),
    ]
    return Plan(
        tags,
        segment,
        content,
        journey(
            names,
            name,
            "定投终止与扣款失败挽回",
            "扣款失败提醒补足资金、终止定投的挽回，未恢复时转投顾跟进。",
            p,
            nodes,
            edges,
            reentry="after_exit",
            reentry_cooldown_seconds=30 * DAY,
            goals=[{"event": "CreateAutoInvestPlan", "window_seconds": 30 * DAY}],
        ),
    )


# -- 3. margin-trading eligibility conversion ---------------------------------------------------
class MarginConversion(Params):
    min_assets: int = Field(default=500_000, ge=0, le=10**9, description="总资产门槛（元）")
    trading_days: int = Field(default=20, ge=1, le=250, description="资产持续达标的交易日数")
    min_tenure_days: int = Field(default=180, ge=0, le=3650, description="开户满N天")
    min_risk_level: Literal["C3", "C4", "C5"] = "C3"
    advisor_due_days: int = Field(default=3, ge=0, le=90)
    goal_days: int = Field(default=30, ge=1, le=365, description="开通两融的观察期（天）")
    channel: Channel = "sms"


def _margin_conversion(p: MarginConversion, names: Names) -> Plan:
    name = "margin_conversion"
    levels = ["C3", "C4", "C5"][["C3", "C4", "C5"].index(p.min_risk_level) :]
    eligible = all_of(
        profile("total_assets", "gte", p.min_assets),
        any_of(
            did("AssetChange", {"relative_trading_days": p.trading_days}, "notDid"),
            {
                "type": "event_rule",
                "measure": {
                    "event": "AssetChange",
                    "aggregator": "min",
                    "property": "total_assets",
                },
                "window": {"relative_trading_days": p.trading_days},
                "function": "gte",
                "params": [p.min_assets],
            },
        ),
        profile("has_margin_account", "isFalse"),
        profile("risk_tolerance", "in", *levels),
        profile("account_open_date", "relativeBefore", max(p.min_tenure_days, 1)),
    )
    tags = [
        TagIn(
            name=names.tag("margin_eligibility"),
            display_name="两融资格",
            description="has_margin（已开通）/ eligible（满足资产、期限与风险等级条件）",
            kind="rule",
            spec={
                "values": [
                    {
                        "value": "has_margin",
                        "rule": all_of(profile("has_margin_account", "isTrue")),
                    },
                    {"value": "eligible", "rule": eligible},
                ]
            },
        )
    ]
    segment = SegmentIn(
        name=names.title("两融转化 · 满足条件未开通"),
        description=f"总资产≥{p.min_assets}元且近{p.trading_days}个交易日持续达标、"
        f"开户满{p.min_tenure_days}天、风险等级{p.min_risk_level}及以上、未开通两融",
        rule=eligible,
    )
    content = {
        "invite": template(
            names,
            name,
            "两融转化 · 资格通知",
            p.channel,
            GREETING + "您的账户已满足融资融券（两融）业务的资产条件。两融可以放大投资规模，"
            "也会同等放大亏损，并有强制平仓风险，请结合自身风险承受能力审慎决定；"
            "您的投资顾问将与您联系介绍业务规则。" + MARKET_WARNING,
            subject="两融业务资格通知",
        ),
    }
    nodes: list[dict[str, Any]] = [
        {
            "id": "entry",
            "type": "entry_segment_change",
            "segment_id": "@segment",
            "label": "满足条件",
        },
        send("invite", "invite", p.channel, "资格通知"),
        {"id": "pause", "type": "delay", "mode": "duration", "seconds": DAY, "label": "次日"},
        {
            "id": "advisor",
            "type": "advisor_task",
            "title": "两融开户意向跟进",
            "script": "客户已满足两融资产与期限条件。请电话了解意向，讲解两融规则、维持担保比例、"
            "追加担保与强制平仓风险，确认风险承受能力与适当性后再协助预约开户；"
            "不对盈亏作任何保证。",
            "due_days": p.advisor_due_days,
        },
        {
            "id": "opened",
            "type": "goal",
            "event": "OpenMarginAccount",
            "window_seconds": p.goal_days * DAY,
            "label": "开通两融",
        },
        exit_node("converted", "已开通"),
        exit_node("not_converted", "未开通"),
    ]
    edges = [
        edge("entry", "invite"),
        edge("invite", "pause"),
        edge("pause", "advisor"),
        edge("advisor", "opened"),
        edge("opened", "converted", "reached"),
        edge("opened", "not_converted", "timeout"),
    ]
    return Plan(
        tags,
        segment,
        content,
        journey(
            names,
            name,
            "两融资格转化（投顾跟进）",
            "满足两融条件的客户：资格通知，次日生成投顾1对1跟进任务，观察开通转化。",
            p,
            nodes,
            edges,
            goals=[{"event": "OpenMarginAccount", "window_seconds": p.goal_days * DAY}],
        ),
    )


# -- 4. new-account activation ------------------------------------------------------------------
class NewAccountActivation(Params):
    new_customer_days: int = Field(default=30, ge=1, le=365)
    deposit_wait_days: int = Field(default=3, ge=1, le=30, description="等待首次入金的天数")
    trade_wait_days: int = Field(default=7, ge=1, le=60, description="等待首笔交易的天数")
    advisor_due_days: int = Field(default=2, ge=0, le=90)
    channel: Channel = "sms"


def _new_account_activation(p: NewAccountActivation, names: Names) -> Plan:
    name = "new_account_activation"
    traded = any_of(did("TradeStock", EVER), did("BuyFund", EVER))
    deposited = all_of(did("Deposit", EVER))
    tags = [
        TagIn(
            name=names.tag("activation_stage"),
            display_name="新客激活阶段",
            description="traded（已交易）/ deposited（已入金）/ opened（仅开户）",
            kind="rule",
            spec={
                "values": [
                    {"value": "traded", "rule": traded},
                    {"value": "deposited", "rule": deposited},
                    {"value": "opened", "rule": all_of(profile("account_open_date", "isSet"))},
                ]
            },
        )
    ]
    segment = SegmentIn(
        name=names.title("新客激活 · 未交易新开户"),
        description=f"开户 {p.new_customer_days} 天内、尚未交易股票或基金的客户",
        rule=all_of(
            profile("account_open_date", "relativeWithin", p.new_customer_days),
            did("TradeStock", EVER, "notDid"),
            did("BuyFund", EVER, "notDid"),
        ),
    )
    content = {
        "deposit": template(
            names,
            name,
            "新客激活 · 首次入金指引",
            p.channel,
            GREETING + "欢迎开户！完成首次入金即可开始交易：打开APP「资金-银证转账」，"
            "从绑定的银行卡转入资金。如有疑问，请联系您的投资顾问。",
            subject="首次入金指引",
        ),
        "trade": template(
            names,
            name,
            "新客激活 · 首笔交易指引",
            p.channel,
            GREETING + "资金已可用于交易：APP「交易」支持股票、基金等品种，"
            "新手可先阅读「投资者教育」专栏，了解交易规则与风险。" + MARKET_WARNING,
            subject="开始您的首笔交易",
        ),
    }
    nodes: list[dict[str, Any]] = [
        {
            "id": "entry",
            "type": "entry_segment_change",
            "segment_id": "@segment",
            "label": "新客进入",
        },
        {"id": "has_deposit", "type": "condition", "rule": deposited, "label": "已入金？"},
        send("deposit_guide", "deposit", p.channel, "入金指引"),
        {
            "id": "wait_deposit",
            "type": "wait_event",
            "event": "Deposit",
            "timeout_seconds": p.deposit_wait_days * DAY,
            "label": "等待首次入金",
        },
        {
            "id": "advisor",
            "type": "advisor_task",
            "title": "新客入金协助",
            "script": "客户开户后尚未入金。请联系客户确认银证转账是否绑定成功，协助完成首次入金，"
            "并介绍投资者教育资源。",
            "due_days": p.advisor_due_days,
        },
        send("trade_guide", "trade", p.channel, "交易指引"),
        {
            "id": "wait_trade",
            "type": "wait_event",
            "event": "TradeStock",
            "timeout_seconds": p.trade_wait_days * DAY,
            "label": "等待首笔交易",
        },
        exit_node("activated", "已激活"),
        exit_node("done", "结束"),
        exit_node("handed_over", "转投顾"),
    ]
    edges = [
        edge("entry", "has_deposit"),
        edge("has_deposit", "trade_guide", "yes"),
        edge("has_deposit", "deposit_guide", "no"),
        edge("deposit_guide", "wait_deposit"),
        edge("wait_deposit", "trade_guide", "event"),
        edge("wait_deposit", "advisor", "timeout"),
        edge("advisor", "handed_over"),
        edge("trade_guide", "wait_trade"),
        edge("wait_trade", "activated", "event"),
        edge("wait_trade", "done", "timeout"),
    ]
    return Plan(
        tags,
        segment,
        content,
        journey(
            names,
            name,
            "新开户激活（首次入金、首笔交易）",
            "新开户客户：未入金的先引导入金（超时转投顾协助），已入金的引导首笔交易。",
            p,
            nodes,
            edges,
            goals=[
                {"event": "Deposit", "window_seconds": 14 * DAY},
                {"event": "TradeStock", "window_seconds": 30 * DAY},
            ],
        ),
    )


# -- 5. dormant customer reactivation -----------------------------------------------------------
class DormantReactivation(Params):
    inactive_days: int = Field(default=60, ge=14, le=3650, description="连续N天未登录")
    min_assets: int = Field(default=10_000, ge=0, le=10**9, description="总资产门槛（元）")
    wait_days: int = Field(default=7, ge=1, le=60)
    channel: Channel = "sms"
    second_channel: Channel = "app_push"


def _dormant_reactivation(p: DormantReactivation, names: Names) -> Plan:
    name = "dormant_reactivation"
    window = days(p.inactive_days)
    tags = [
        TagIn(
            name=names.tag("days_since_login"),
            display_name="距上次登录天数",
            description="最近一次 Login 距今的天数（近一年内）",
            kind="first_last",
            spec={"event": "Login", "which": "last", "output": "days_since", "window": days(365)},
        )
    ]
    segment = SegmentIn(
        name=names.title("沉睡唤醒 · 长期未登录"),
        description=f"{p.inactive_days} 天未登录也未打开APP、总资产≥{p.min_assets}元的老客户",
        rule=all_of(
            did("Login", window, "notDid"),
            did("$AppStart", window, "notDid"),
            profile("total_assets", "gte", p.min_assets),
            profile("account_open_date", "relativeBefore", p.inactive_days),
        ),
    )
    content = {
        "wakeup": template(
            names,
            name,
            "沉睡唤醒 · 问候",
            p.channel,
            GREETING
            + "好久不见！近期市场资讯与投教内容已更新，登录APP即可查看您的资产与持仓变化。"
            + MARKET_WARNING,
            subject="好久不见",
        ),
        "nudge": template(
            names,
            name,
            "沉睡唤醒 · 周报提醒",
            p.second_channel,
            "市场周报已更新：本周热点板块解读与资产配置思路，点击查看。" + MARKET_WARNING,
            subject="市场周报已更新",
        ),
    }
    nodes: list[dict[str, Any]] = [
        {
            "id": "entry",
            "type": "entry_segment_change",
            "segment_id": "@segment",
            "label": "进入沉睡",
        },
        send("wakeup", "wakeup", p.channel, "唤醒问候"),
        {
            "id": "wait_login",
            "type": "wait_event",
            "event": "Login",
            "timeout_seconds": p.wait_days * DAY,
            "label": "等待登录",
        },
        send("nudge", "nudge", p.second_channel, "周报提醒"),
        exit_node("reactivated", "已唤醒"),
        exit_node("done", "结束"),
    ]
    edges = [
        edge("entry", "wakeup"),
        edge("wakeup", "wait_login"),
        edge("wait_login", "reactivated", "event"),
        edge("wait_login", "nudge", "timeout"),
        edge("nudge", "done"),
    ]
    return Plan(
        tags,
        segment,
        content,
        journey(
            names,
            name,
            "沉睡客户唤醒",
            "长期未登录的有资产客户：问候，未登录再用第二渠道提醒一次。",
            p,
            nodes,
            edges,
            reentry="after_exit",
            reentry_cooldown_seconds=90 * DAY,
            goals=[{"event": "Login", "window_seconds": 14 * DAY}],
        ),
    )


# -- 6. IPO subscription reminder on trading days -----------------------------------------------
class IpoReminder(Params):
    active_days: int = Field(default=90, ge=1, le=365, description="最近N天有股票交易的客户")
    send_time: TimeOfDay = Field(default="09:15", description="交易日提醒时间（上海时间）")
    channel: Channel = "app_push"


def _ipo_reminder(p: IpoReminder, names: Names) -> Plan:
    name = "ipo_reminder"
    tags = [
        TagIn(
            name=names.tag("stock_trade_activity"),
            display_name="股票交易活跃度",
            description=f"最近{p.active_days}天 TradeStock 次数：none / low（1–4）/ high（5+）",
            kind="metric",
            spec={
                "measure": {"event": "TradeStock", "aggregator": "count"},
                "window": days(p.active_days),
                "buckets": [
                    {"value": "none", "max": 1},
                    {"value": "low", "min": 1, "max": 5},
                    {"value": "high", "min": 5},
                ],
            },
        )
    ]
    segment = SegmentIn(
        name=names.title("新股申购提醒 · 活跃股票客户"),
        description=f"最近 {p.active_days} 天有股票交易的客户",
        rule=all_of(did("TradeStock", days(p.active_days))),
    )
    content = {
        "reminder": template(
            names,
            name,
            "新股申购 · 交易日提醒",
            p.channel,
            GREETING
            + "今日有新股可申购，打开APP「新股申购」查看申购代码与额度；中签后请确保账户资金充足。"
            "新股上市后存在破发风险。" + MARKET_WARNING,
            subject="今日新股申购提醒",
        ),
    }
    nodes: list[dict[str, Any]] = [
        # Every weekday after the close; the trading-day delay skips exchange holidays, and
        # re-entry only after exit keeps one pending reminder per customer over a holiday.
        {
            "id": "entry",
            "type": "entry_segment",
            "segment_id": "@segment",
            "mode": "recurring",
            "cron": "0 17 * * 1-5",
            "label": "工作日收盘后",
        },
        {
            "id": "next_trading_day",
            "type": "delay",
            "mode": "trading_days",
            "days": 1,
            "time": p.send_time,
            "label": f"下一交易日 {p.send_time}",
        },
        send("remind", "reminder", p.channel, "申购提醒"),
        exit_node("done", "结束"),
    ]
    edges = [
        edge("entry", "next_trading_day"),
        edge("next_trading_day", "remind"),
        edge("remind", "done"),
    ]
    return Plan(
        tags,
        segment,
        content,
        journey(
            names,
            name,
            "新股申购提醒（交易日）",
            "活跃股票客户在每个交易日开盘前收到新股申购提醒（交易所休市日不发送）。",
            p,
            nodes,
            edges,
            reentry="after_exit",
        ),
    )


# -- 7. risk-assessment expiry renewal ----------------------------------------------------------
class RiskAssessmentRenewal(Params):
    purpose: Literal["marketing", "service"] = "service"
    days_before: int = Field(default=30, ge=1, le=365, description="到期前N天开始提醒")
    wait_days: int = Field(default=7, ge=1, le=60, description="提醒后等待重新测评的天数")
    advisor_due_days: int = Field(default=5, ge=0, le=90)
    channel: Channel = "sms"


def _risk_assessment_renewal(p: RiskAssessmentRenewal, names: Names) -> Plan:
    name = "risk_assessment_renewal"
    expired = profile("risk_assessment_expiry", "relativeBefore", 1)
    expiring = profile("risk_assessment_expiry", "relativeNext", p.days_before)
    tags = [
        TagIn(
            name=names.tag("risk_assessment_status"),
            display_name="风险测评状态",
            description=f"expired（已过期）/ expiring（{p.days_before}天内到期）/ valid",
            kind="rule",
            spec={
                "values": [
                    {"value": "expired", "rule": all_of(expired)},
                    {"value": "expiring", "rule": all_of(expiring)},
                    {"value": "valid", "rule": all_of(profile("risk_assessment_expiry", "isSet"))},
                ]
            },
        )
    ]
    segment = SegmentIn(
        name=names.title("风险测评续做 · 即将或已经到期"),
        description=f"风险承受能力评估已过期或 {p.days_before} 天内到期的客户",
        rule=any_of(expired, expiring),
    )
    content = {
        "notice": template(
            names,
            name,
            "风险测评 · 到期提醒",
            p.channel,
            GREETING + "您的风险承受能力评估有效期至{{ user.risk_assessment_expiry }}，"
            "过期后部分业务将无法办理。请登录APP「我的-风险测评」重新评估。",
            subject="风险测评到期提醒",
        ),
    }
    nodes: list[dict[str, Any]] = [
        {
            "id": "entry",
            "type": "entry_segment_change",
            "segment_id": "@segment",
            "label": "即将到期",
        },
        send("notice", "notice", p.channel, "到期提醒"),
        {"id": "pause", "type": "delay", "mode": "duration", "seconds": p.wait_days * DAY},
        {
            "id": "still_due",
            "type": "condition",
            "rule": all_of({"type": "segment_rule", "segment_id": "@segment", "function": "in"}),
            "label": "仍未续做？",
        },
        {
            "id": "advisor",
            "type": "advisor_task",
            "title": "风险测评续做协助",
            "script": "客户的风险承受能力评估已到期或即将到期。请提醒客户本人在APP完成重新评估，"
            "不得代客测评或诱导选择。",
            "due_days": p.advisor_due_days,
        },
        exit_node("renewed", "已续做"),
        exit_node("handed_over", "转投顾"),
    ]
    edges = [
        edge("entry", "notice"),
        edge("notice", "pause"),
        edge("pause", "still_due"),
        edge("still_due", "advisor", "yes"),
        edge("still_due", "renewed", "no"),
        edge("advisor", "handed_over"),
    ]
    return Plan(
        tags,
        segment,
        content,
        journey(
            names,
            name,
            "风险测评到期续做",
            "风险测评即将或已经到期的客户：服务提醒，仍未续做时转投顾协助。",
            p,
            nodes,
            edges,
            reentry="after_exit",
            reentry_cooldown_seconds=180 * DAY,
        ),
    )


# -- 8. birthday / holiday greetings ------------------------------------------------------------
class Greetings(Params):
    occasion: Literal["birthday", "holiday"] = "birthday"
    holiday_name: PlainText = "国庆节"
    holiday_date: str = Field(
        default="10-01", pattern=r"^(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$", description="MM-DD"
    )
    send_time: TimeOfDay = "09:00"
    channel: Channel = "sms"


#: Days until the next birthday, in Asia/Shanghai, from the warehouse's current date. A 29
#: February birthday falls on 28 February in common years (DuckDB's year arithmetic).
DAYS_TO_BIRTHDAY_SQL = """
WITH t AS (SELECT CAST(timezone('Asia/Shanghai', now()) AS DATE) AS today),
b AS (
  SELECT u.user_id,
         CAST(u.birthday + to_years(CAST(year(t.today) - year(u.birthday) AS INTEGER)) AS DATE)
           AS this_year,
         CAST(u.birthday + to_years(CAST(year(t.today) - year(u.birthday) + 1 AS INTEGER)) AS DATE)
           AS next_year,
         t.today
  FROM users u, t
  WHERE u.birthday IS NOT NULL
)
SELECT user_id,
       date_diff('day', today, CASE WHEN this_year >= today THEN this_year ELSE next_year END)
         AS value
FROM b
""".strip()


def _greetings(p: Greetings, names: Names) -> Plan:
    name = "greetings"
    hour, minute = (int(x) for x in p.send_time.split(":"))
    if p.occasion == "birthday":
        tag = names.tag("days_to_birthday")
        tags = [
            TagIn(
                name=tag,
                display_name="距生日天数",
                description="距下一个生日的天数（0 = 今天生日），每日计算",
                kind="sql",
                spec={"query": DAYS_TO_BIRTHDAY_SQL},
            )
        ]
        segment = SegmentIn(
            name=names.title("生日关怀 · 今日生日"),
            description="今天过生日的客户（读取标签 days_to_birthday）",
            source="tags",
            rule=all_of({"type": "tag_rule", "tag": tag, "function": "equal", "params": ["0"]}),
        )
        content = {
            "greeting": template(
                names,
                name,
                "生日关怀 · 祝福",
                p.channel,
                GREETING
                + "今天是您的生日，祝您生日快乐、身体健康、万事顺意！感谢您一直以来的信任与陪伴。",
                subject="生日快乐",
            )
        }
        cron = f"{minute} {hour} * * *"
        title, description = "生日祝福", "每天在设定时间向当天生日的客户发送祝福。"
    else:
        tag = names.tag("tenure_band")
        tags = [
            TagIn(
                name=tag,
                display_name="客户陪伴年限",
                description="ten_years（开户10年以上）/ three_years（3年以上）/ new",
                kind="rule",
                spec={
                    "values": [
                        {
                            "value": "ten_years",
                            "rule": all_of(profile("account_open_date", "relativeBefore", 3650)),
                        },
                        {
                            "value": "three_years",
                            "rule": all_of(profile("account_open_date", "relativeBefore", 1095)),
                        },
                        {"value": "new", "rule": all_of(profile("account_open_date", "isSet"))},
                    ]
                },
            )
        ]
        segment = SegmentIn(
            name=names.title(f"节日问候 · {p.holiday_name}"),
            description="有手机号的全部客户",
            rule=all_of(profile("mobile", "isSet")),
        )
        content = {
            "greeting": template(
                names,
                name,
                f"节日问候 · {p.holiday_name}",
                p.channel,
                GREETING + f"{p.holiday_name}快乐！感谢您"
                f"{{% if tags.{tag} == 'ten_years' %}}十年来{{% endif %}}的信任与陪伴，"
                "祝您和家人节日愉快。",
                subject=f"{p.holiday_name}快乐",
            )
        }
        month, day = p.holiday_date.split("-")
        cron = f"{minute} {hour} {int(day)} {int(month)} *"
        title, description = f"节日问候（{p.holiday_name}）", f"每年{p.holiday_date}问候全部客户。"
    nodes: list[dict[str, Any]] = [
        {
            "id": "entry",
            "type": "entry_segment",
            "segment_id": "@segment",
            "mode": "recurring",
            "cron": cron,
            "label": p.send_time,
        },
        send("greet", "greeting", p.channel, "祝福"),
        exit_node("done", "结束"),
    ]
    edges = [edge("entry", "greet"), edge("greet", "done")]
    return Plan(
        tags,
        segment,
        content,
        journey(
            names,
            name,
            title,
            description,
            p,
            nodes,
            edges,
            reentry="after_exit",
            reentry_cooldown_seconds=300 * DAY,
        ),
    )


PLAYBOOKS: dict[str, Playbook] = {
    p.name: p
    for p in (
        Playbook(
            "fund_aip_activation",
            "基金定投激活（新客）",
            "Fund auto-invest activation for new customers",
            "New customers with a fund account and no auto-invest plan get an invitation "
            "personalised with the fund category they view most, and a reminder when they have "
            "not created a plan after the wait.",
            FundAipActivation,
            _fund_aip_activation,
        ),
        Playbook(
            "aip_recovery",
            "定投终止与扣款失败挽回",
            "Auto-invest termination and failed-payment recovery",
            "Customers whose auto-invest payment failed are asked to top up; those who "
            "terminated a plan are invited back; an advisor follows up when nothing happens.",
            AipRecovery,
            _aip_recovery,
        ),
        Playbook(
            "margin_conversion",
            "两融资格转化（投顾跟进）",
            "Margin-trading eligibility conversion with advisor follow-up",
            "Customers who meet the margin (两融) asset, tenure and risk-level conditions get a "
            "notice with the risks, then an advisor task; conversion is OpenMarginAccount.",
            MarginConversion,
            _margin_conversion,
        ),
        Playbook(
            "new_account_activation",
            "新开户激活（首次入金、首笔交易）",
            "New-account activation: first deposit, first trade",
            "New accounts without a trade: a deposit guide (advisor help when no deposit "
            "follows), then a first-trade guide.",
            NewAccountActivation,
            _new_account_activation,
        ),
        Playbook(
            "dormant_reactivation",
            "沉睡客户唤醒",
            "Dormant customer reactivation",
            "Customers with assets who have not logged in or opened the app for a while get a "
            "greeting, then a second-channel nudge when they do not come back.",
            DormantReactivation,
            _dormant_reactivation,
        ),
        Playbook(
            "ipo_reminder",
            "新股申购提醒（交易日）",
            "IPO subscription reminder on trading days",
            "Active stock traders get a reminder before the open of every SSE/SZSE trading day "
            "(holidays skipped by the trading calendar).",
            IpoReminder,
            _ipo_reminder,
        ),
        Playbook(
            "risk_assessment_renewal",
            "风险测评到期续做",
            "Risk-assessment expiry renewal",
            "A service notice before (or after) the risk-tolerance assessment expires; an "
            "advisor task when it is still not renewed after the wait.",
            RiskAssessmentRenewal,
            _risk_assessment_renewal,
        ),
        Playbook(
            "greetings",
            "生日与节日问候",
            "Birthday and holiday greetings",
            "A greeting on each customer's birthday (daily), or on a holiday (yearly).",
            Greetings,
            _greetings,
        ),
    )
}
