"""The demo brokerage 飞轮证券, generated with numpy: deterministic for a seed and a "now".

Nothing here loops per event or per customer in Python: every attribute is drawn for all
customers (or all events of a chunk) at once, and strings are built by Arrow compute or byte
matrices. Events are produced in chunks of customers so memory stays flat at 1,000,000
customers (≈ 30 events each).

What it models (see docs/data-model.md for the names):

* ~20 branches (营业部) in Chinese cities, 5 advisors each; customers with demographics,
  risk tolerance C1–C5 (≈ 8/22/38/22/10 %), risk assessments that expire (some already have),
  accounts opened over 15 years (≈ 8 % within the demo window), log-normal assets, margin
  (两融) accounts for some customers with ≥ 500k, WeChat ids for some.
* 200 funds with R-levels matching their category, 20 stocks, 6 bonds, services (两融 …),
  articles.
* Behaviour: active / regular / occasional / dormant customers; app and web sessions at
  weekday trading-hour and evening peaks (Asia/Shanghai); fund views and purchases mostly at or
  below the customer's risk level; stock trades in trading hours only; 定投 plans with failed
  payments and terminations; asset changes with margin eligibility; margin account openings;
  WeChat follows.
* New customers first browse anonymously on a device; the sign-up (anonymous → login merge)
  happens at account opening, after which events carry the login id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from flywheel.core.clock import utc_naive
from flywheel.demo import catalog

US = 1_000_000
DAY_US = 86_400 * US
SHANGHAI_OFFSET_US = 8 * 3600 * US
MARGIN_THRESHOLD = 500_000.0
DEFAULT_CHUNK = 50_000
EPOCH = date(1970, 1, 1)

#: Session rate over 90 days by activity class (active, regular, occasional, dormant).
ACTIVITY_SHARES = (0.35, 0.35, 0.15, 0.15)
SESSIONS_PER_90_DAYS = (14.0, 6.0, 2.0, 0.3)
#: Mean number of events in a session besides its start (and, in the app, its end).
EXTRA_EVENTS_MEAN = 2.3
#: Shanghai hour-of-day weights of sessions: trading hours and the evening peak.
HOUR_WEIGHTS = np.array(
    [0.2, 0.1, 0.05, 0.05, 0.05, 0.1, 0.4, 1.0, 1.8, 3.2, 3.4, 2.8, 1.6, 2.6, 3.0, 2.0, 1.2,
     1.0, 1.1, 1.5, 2.4, 2.6, 1.8, 0.7]
)  # fmt: skip

EVENTS: tuple[str, ...] = (
    "$AppStart",
    "$AppEnd",
    "$AppViewScreen",
    "$pageview",
    "Login",
    "ViewFundDetail",
    "Search",
    "BuyFund",
    "RedeemFund",
    "CreateAutoInvestPlan",
    "TerminateAutoInvestPlan",
    "AutoInvestPaymentFailed",
    "AssetChange",
    "OpenMarginAccount",
    "WeChatFollow",
    "Deposit",
    "TradeStock",
)
E = {name: code for code, name in enumerate(EVENTS)}

#: Generic session events (after start / login) and their weights.
GENERIC = (
    ("$AppViewScreen", 0.40),
    ("ViewFundDetail", 0.22),
    ("Search", 0.08),
    ("TradeStock", 0.13),
    ("BuyFund", 0.06),
    ("RedeemFund", 0.02),
    ("Deposit", 0.04),
)

#: The Sensors type of every event property the demo sends.
EVENT_PROPERTY_TYPES: dict[str, str] = {
    "$os": "STRING",
    "$app_version": "STRING",
    "$model": "STRING",
    "$screen_name": "STRING",
    "$url": "STRING",
    "login_method": "STRING",
    "item_id": "STRING",
    "item_type": "STRING",
    "fund_category": "STRING",
    "risk_level": "STRING",
    "keyword": "STRING",
    "amount": "NUMBER",
    "side": "STRING",
    "plan_id": "STRING",
    "period": "STRING",
    "reason": "STRING",
    "total_assets": "NUMBER",
    "margin_eligible": "BOOL",
    "wechat_account": "STRING",
}

#: Which properties each event carries (for the schema registry).
EVENT_PROPERTIES: dict[str, tuple[str, ...]] = {
    "$AppStart": ("$os", "$app_version", "$model"),
    "$AppEnd": ("$os", "$app_version", "$model"),
    "$AppViewScreen": ("$os", "$app_version", "$model", "$screen_name"),
    "$pageview": ("$url",),
    "Login": ("login_method",),
    "ViewFundDetail": ("item_id", "item_type", "fund_category", "risk_level"),
    "Search": ("keyword",),
    "BuyFund": ("item_id", "item_type", "amount", "fund_category"),
    "RedeemFund": ("item_id", "item_type", "amount"),
    "CreateAutoInvestPlan": ("item_id", "item_type", "plan_id", "amount", "period"),
    "TerminateAutoInvestPlan": ("item_id", "item_type", "plan_id", "reason"),
    "AutoInvestPaymentFailed": ("item_id", "item_type", "plan_id", "amount", "reason"),
    "AssetChange": ("total_assets", "margin_eligible"),
    "OpenMarginAccount": (),
    "WeChatFollow": ("wechat_account",),
    "Deposit": ("amount",),
    "TradeStock": ("item_id", "item_type", "amount", "side"),
}
# App events carry the device's preset properties too.
for _name in EVENT_PROPERTIES:
    if _name not in ("$pageview",) and "$os" not in EVENT_PROPERTIES[_name]:
        EVENT_PROPERTIES[_name] = (*EVENT_PROPERTIES[_name], "$os", "$app_version", "$model")

PROFILE_PROPERTY_TYPES: dict[str, str] = {
    "name": "STRING",
    "mobile": "STRING",
    "email": "STRING",
    "id_number": "STRING",
    "gender": "STRING",
    "birthday": "DATE",
    "city": "STRING",
    "branch": "STRING",
    "advisor_id": "STRING",
    "risk_tolerance": "STRING",
    "risk_assessment_expiry": "DATE",
    "account_open_date": "DATE",
    "total_assets": "NUMBER",
    "has_margin_account": "BOOL",
    "has_fund_account": "BOOL",
    "channel": "STRING",
}

#: Identity columns of the customers table → identity key.
IDENTITY_COLUMNS: dict[str, str] = {
    "fund_account": "fund_account",
    "margin_account": "margin_account",
    "mobile_id": "$identity_mobile",
    "wechat_unionid": "$identity_wechat_unionid",
    "wechat_openid": "$identity_wechat_openid",
}


@dataclass
class Demo:
    """One generated brokerage. Tables are Arrow; events come chunk by chunk."""

    seed: int
    days: int
    now: datetime
    branches: list[dict[str, str]]
    advisors: list[dict[str, str]]
    #: ``distinct_id`` (login id 客户号), identity columns, then the profile properties
    customers: pa.Table
    #: ``item_type``, ``item_id``, then item properties (null where not applicable)
    items: pa.Table
    #: ``login_id``, ``anonymous_id``, ``time``: anonymous → login merges at account opening
    signups: pa.Table
    _state: dict[str, Any] = field(repr=False)
    chunk_customers: int = DEFAULT_CHUNK

    @property
    def customer_count(self) -> int:
        return int(self.customers.num_rows)

    def event_chunks(self) -> Iterator[EventChunk]:
        """Events of each chunk of customers (deterministic, in customer order)."""
        n = self.customer_count
        for index, start in enumerate(range(0, n, self.chunk_customers)):
            stop = min(n, start + self.chunk_customers)
            yield _events_for(self, index, start, stop)

    def fingerprint(self) -> str:
        """SHA-256 over every generated table: equal for equal seed, size, days and now."""
        digest = hashlib.sha256()
        for table in (self.customers, self.items, self.signups):
            digest.update(_ipc(table))
        for chunk in self.event_chunks():
            digest.update(_ipc(chunk.anonymous))
            digest.update(_ipc(chunk.events))
        return digest.hexdigest()


@dataclass
class EventChunk:
    """Events of a range of customers: before sign-up (anonymous ids) and as logged in."""

    anonymous: pa.Table
    events: pa.Table

    @property
    def num_rows(self) -> int:
        return int(self.anonymous.num_rows + self.events.num_rows)


def _ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue())


# -- helpers ---------------------------------------------------------------------------------------
def _choice(
    rng: np.random.Generator, weights: Sequence[float] | np.ndarray, size: int
) -> np.ndarray:
    p = np.asarray(weights, dtype=float)
    return np.asarray(rng.choice(len(p), size=size, p=p / p.sum()))


def _strings(values: Sequence[str]) -> pa.Array:
    return pa.array(list(values), type=pa.string())


def _take(values: Sequence[str], codes: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    """Strings ``values[codes]`` (null where ``mask``), built by Arrow."""
    taken = _strings(values).take(pa.array(codes.astype(np.int64), mask=mask))
    return taken


def _pad(numbers: np.ndarray, width: int) -> pa.Array:
    return pc.utf8_lpad(pc.cast(pa.array(numbers.astype(np.int64)), pa.string()), width, "0")


def _join(*parts: Any) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def _random_text(rng: np.random.Generator, n: int, length: int, alphabet: str) -> pa.Array:
    """``n`` random strings of ``length`` characters of ``alphabet`` (ASCII), via a byte matrix."""
    codes = np.frombuffer(alphabet.encode(), dtype=np.uint8)
    matrix = codes[rng.integers(0, len(codes), size=(n, length))]
    flat = np.ascontiguousarray(matrix).view(f"S{length}").ravel()
    return pa.array(flat, type=pa.binary(length)).cast(pa.string())


_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_HEX = "0123456789abcdef"


def _to_us(moment: datetime) -> int:
    return int(utc_naive(moment).replace(tzinfo=UTC).timestamp()) * US


def _local_day(utc_us: np.ndarray | int) -> Any:
    """Asia/Shanghai calendar day number (days since 1970-01-01) of UTC microseconds."""
    return (np.asarray(utc_us) + SHANGHAI_OFFSET_US) // DAY_US


def _timestamps(utc_us: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    return pa.array(utc_us.astype("datetime64[us]"), type=pa.timestamp("us"), mask=mask)


def _dates(days: np.ndarray) -> pa.Array:
    return pa.array(days.astype("datetime64[D]"), type=pa.date32())


# -- the brokerage -------------------------------------------------------------------------------
def generate(
    *,
    customers: int = 10_000,
    days: int = 90,
    seed: int = 7,
    now: datetime,
    chunk_customers: int = DEFAULT_CHUNK,
) -> Demo:
    """Generate the demo brokerage of ``customers`` customers and ``days`` days ending ``now``.

    Customers, items and sign-ups are built at once; events lazily per chunk of customers
    (:meth:`Demo.event_chunks`). The same arguments always give the same data.
    """
    if not 1 <= customers <= 10_000_000:
        raise ValueError("customers must be between 1 and 10,000,000")
    if not 1 <= days <= 3650:
        raise ValueError("days must be between 1 and 3650")
    now_us = _to_us(now)
    branches, advisors = _branches()
    items, funds = _items(np.random.default_rng([seed, 1]), now_us)
    table, state = _customers(np.random.default_rng([seed, 0]), customers, days, now_us)
    state["funds"] = funds
    state["now_us"] = now_us
    signups = pa.table(
        {
            "login_id": table.column("distinct_id").filter(pa.array(state["anonymous"])),
            "anonymous_id": state["anonymous_ids"],
            "time": _timestamps(state["open_us"][state["anonymous"]]),
        }
    )
    return Demo(
        seed=seed,
        days=days,
        now=utc_naive(now).replace(tzinfo=UTC),
        branches=branches,
        advisors=advisors,
        customers=table,
        items=items,
        signups=signups,
        _state=state,
        chunk_customers=chunk_customers,
    )


def _branches() -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    rng = np.random.default_rng(20240101)
    branches: list[dict[str, str]] = []
    advisors: list[dict[str, str]] = []
    for index, ((city, _, _), district) in enumerate(
        zip(catalog.CITIES, catalog.BRANCH_DISTRICTS, strict=True), start=1
    ):
        code = f"BR{index:03d}"
        branches.append({"code": code, "name": f"飞轮证券{city}{district}营业部", "city": city})
        for slot in range(5):
            number = (index - 1) * 5 + slot + 1
            surname = catalog.SURNAMES[int(rng.integers(0, len(catalog.SURNAMES)))][0]
            given = catalog.GIVEN_FEMALE if slot % 2 else catalog.GIVEN_MALE
            name = surname + given[int(rng.integers(0, len(given)))]
            advisors.append({"advisor_id": f"ADV{number:04d}", "name": name, "branch": code})
    return branches, advisors


def _items(rng: np.random.Generator, now_us: int) -> tuple[pa.Table, dict[str, Any]]:
    """Funds, stocks, services and articles; plus the fund samplers for events."""
    rows: list[dict[str, Any]] = []
    fund_levels: list[int] = []
    fund_categories: list[str] = []
    codes = rng.choice(np.arange(1, 999_999), size=500, replace=False)
    code_iter = iter(int(c) for c in codes)
    now_day = int(_local_day(now_us))
    manager_names = [
        s + g
        for s, _ in catalog.SURNAMES
        for g in (catalog.GIVEN_MALE[:6] + catalog.GIVEN_FEMALE[:6])
    ]
    for category, count, levels, themes, suffix, min_purchase in catalog.FUND_CATEGORIES:
        for index in range(count):
            company = catalog.FUND_COMPANIES[int(rng.integers(0, len(catalog.FUND_COMPANIES)))]
            theme = themes[index % len(themes)]
            level = levels[int(rng.integers(0, len(levels)))]
            launch = now_day - int(rng.integers(60, 15 * 365))
            rows.append(
                {
                    "item_type": "fund",
                    "item_id": f"{next(code_iter):06d}",
                    "name": f"{company.removesuffix('基金')}{theme}{suffix}",
                    "category": category,
                    "risk_level": f"R{level}",
                    "company": company,
                    "manager": manager_names[int(rng.integers(0, len(manager_names)))],
                    "min_purchase": min_purchase,
                    "on_sale": bool(rng.random() < 0.93),
                    "launch_date": EPOCH + timedelta(days=launch),
                }
            )
            fund_levels.append(level)
            fund_categories.append(category)
    for code, name, industry in catalog.STOCKS:
        rows.append(
            {
                "item_type": "stock",
                "item_id": code,
                "name": name,
                "category": industry,
                "risk_level": "R4",
                "on_sale": True,
            }
        )
    for code, name, kind, bond_level in catalog.BONDS:
        rows.append(
            {
                "item_type": "bond",
                "item_id": code,
                "name": name,
                "category": kind,
                "risk_level": bond_level,
                "on_sale": True,
            }
        )
    for code, name, service_level in catalog.SERVICES:
        rows.append(
            {"item_type": "service", "item_id": code, "name": name, "risk_level": service_level}
        )
    for code, title, topic in catalog.ARTICLES:
        rows.append({"item_type": "article", "item_id": code, "name": title, "category": topic})
    types = {
        "item_type": pa.string(),
        "item_id": pa.string(),
        "name": pa.string(),
        "category": pa.string(),
        "risk_level": pa.string(),
        "company": pa.string(),
        "manager": pa.string(),
        "min_purchase": pa.float64(),
        "on_sale": pa.bool_(),
        "launch_date": pa.date32(),
    }
    table = pa.table(
        {
            name: pa.array([row.get(name) for row in rows], type=dtype)
            for name, dtype in types.items()
        }
    )
    fund_count = len(fund_levels)
    level_of = np.array(fund_levels)
    # Popularity: a few funds draw most attention (Zipf-like), in random order.
    popularity = 1.0 / np.power(rng.permutation(fund_count) + 1.0, 0.8)
    by_level: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for r_level in range(1, 6):
        members = np.flatnonzero(level_of == r_level)
        weights = popularity[members]
        by_level[r_level] = (members, np.cumsum(weights) / weights.sum())
    funds = {
        "ids": table.column("item_id").slice(0, fund_count).combine_chunks(),
        "levels": level_of,
        "categories": pa.array(fund_categories, type=pa.string()),
        "by_level": by_level,
    }
    return table, funds


def _customers(
    rng: np.random.Generator, n: int, days: int, now_us: int
) -> tuple[pa.Table, dict[str, Any]]:
    index = np.arange(1, n + 1)
    width = max(6, len(str(n)))
    distinct_id = _join("cust-", _pad(index, width))

    city_weights = [w for _, _, w in catalog.CITIES]
    branch = _choice(rng, city_weights, n)  # branch i is in city i
    advisor = branch * 5 + rng.integers(0, 5, size=n)
    moved = rng.random(n) < 0.12
    city = np.where(moved, rng.integers(0, len(catalog.CITIES), size=n), branch)

    gender_f = rng.random(n) < 0.47
    age = np.clip(rng.normal(41, 12, size=n), 18, 85)
    now_day = int(_local_day(now_us))
    birthday = now_day - (age * 365.25).astype(np.int64) - rng.integers(0, 365, size=n)

    surname = _choice(rng, [w for _, w in catalog.SURNAMES], n)
    given_pool = np.where(gender_f, 1, 0)
    pool = min(len(catalog.GIVEN_MALE), len(catalog.GIVEN_FEMALE))
    g1 = rng.integers(0, pool, size=n)
    g2 = rng.integers(0, pool, size=n)
    two_chars = rng.random(n) < 0.7
    male_names = _join(
        _take([s for s, _ in catalog.SURNAMES], surname),
        _take(catalog.GIVEN_MALE, g1),
        pc.if_else(pa.array(two_chars), _take(catalog.GIVEN_MALE, g2), ""),
    )
    female_names = _join(
        _take([s for s, _ in catalog.SURNAMES], surname),
        _take(catalog.GIVEN_FEMALE, g1),
        pc.if_else(pa.array(two_chars), _take(catalog.GIVEN_FEMALE, g2), ""),
    )
    name = pc.if_else(pa.array(given_pool == 1), female_names, male_names)

    prefixes = ["138", "139", "136", "137", "135", "150", "151", "152", "158", "159", "186",
                "187", "188", "177", "199", "133", "189", "180", "181", "191"]  # fmt: skip
    serial = (rng.permutation(n).astype(np.int64) * 7919 + 1_234_567) % 100_000_000
    mobile = _join(_take(prefixes, rng.integers(0, len(prefixes), size=n)), _pad(serial, 8))
    has_email = rng.random(n) < 0.65
    domain = rng.integers(0, len(catalog.EMAIL_DOMAINS), size=n)
    qq_number = rng.integers(10_000_000, 3_999_999_999, size=n)
    local_part = pc.if_else(
        pa.array(domain == 0), pc.cast(pa.array(qq_number), pa.string()), mobile
    )
    email = pc.if_else(
        pa.array(has_email),
        _join(local_part, "@", _take(catalog.EMAIL_DOMAINS, domain)),
        pa.nulls(n, pa.string()),
    )
    id_number = _id_numbers(rng, city, birthday, gender_f)

    risk = _choice(rng, [w for _, w in catalog.RISK_LEVELS], n) + 1  # 1..5
    # Assessments last two years; the last one was up to 27 months ago, so ~11 % expired.
    assessed = now_day - rng.integers(0, 820, size=n)
    expiry = assessed + 730

    window_start_us = now_us - days * DAY_US
    is_new = rng.random(n) < 0.08
    open_recent = window_start_us + (rng.random(n) * (now_us - window_start_us)).astype(np.int64)
    years_ago = np.exp(rng.uniform(np.log(0.25), np.log(15.0), size=n))
    open_old = window_start_us - (years_ago * 365.25 * DAY_US).astype(np.int64)
    adult_us = (birthday + int(18 * 365.25)) * DAY_US
    open_us = np.where(is_new, open_recent, np.maximum(open_old, adult_us))
    open_us = np.minimum(open_us, now_us - 3600 * US)
    open_day = _local_day(open_us)

    wealth = rng.normal(0, 1.35, size=n) + 0.35 * (risk - 3) + 0.012 * (age - 41)
    total_assets = np.round(np.exp(np.log(80_000) + wealth), 2)
    total_assets = np.where(is_new, np.round(total_assets * 0.2, 2), total_assets)
    tenure_days = now_day - open_day
    margin_ok = (total_assets >= MARGIN_THRESHOLD) & (tenure_days > 180) & (risk >= 3)
    has_margin = margin_ok & (rng.random(n) < 0.35)
    has_fund = rng.random(n) < np.where(risk <= 2, 0.85, 0.7)
    channel = _choice(rng, [w for _, w in catalog.CHANNELS], n)
    activity = _choice(rng, ACTIVITY_SHARES, n)

    has_unionid = rng.random(n) < 0.45
    unionid = _random_text(rng, n, 27, _B64)
    openid = _random_text(rng, n, 27, _B64)
    fund_account = _join("8", _pad(branch + 1, 2), _pad(index, 9))
    margin_account = _join("9", _pad(branch + 1, 2), _pad(index, 9))  # 两融信用账户

    anonymous = is_new & (rng.random(n) < 0.7)
    anonymous_ids = _random_text(rng, int(anonymous.sum()), 32, _HEX)

    null_unless = pa.array(~has_unionid)
    table = pa.table(
        {
            "distinct_id": distinct_id,
            "fund_account": pc.if_else(pa.array(has_fund), fund_account, None),
            "margin_account": pc.if_else(pa.array(has_margin), margin_account, None),
            "mobile_id": mobile,
            "wechat_unionid": pc.if_else(null_unless, None, _join("o", unionid)),
            "wechat_openid": pc.if_else(null_unless, None, _join("o", openid)),
            "name": name,
            "mobile": mobile,
            "email": email,
            "id_number": id_number,
            "gender": pc.if_else(pa.array(gender_f), "F", "M"),
            "birthday": _dates(birthday),
            "city": _take([c for c, _, _ in catalog.CITIES], city),
            "branch": _join("BR", _pad(branch + 1, 3)),
            "advisor_id": _join("ADV", _pad(advisor + 1, 4)),
            "risk_tolerance": _join("C", pc.cast(pa.array(risk), pa.string())),
            "risk_assessment_expiry": _dates(expiry),
            "account_open_date": _dates(open_day),
            "total_assets": pa.array(total_assets, type=pa.float64()),
            "has_margin_account": pa.array(has_margin),
            "has_fund_account": pa.array(has_fund),
            "channel": _take([c for c, _ in catalog.CHANNELS], channel),
        }
    )
    state: dict[str, Any] = {
        "days": days,
        "risk": risk,
        "activity": activity,
        "open_us": open_us,
        "is_new": is_new,
        "anonymous": anonymous,
        "anonymous_ids": anonymous_ids,
        "anonymous_index": np.cumsum(anonymous) - 1,
        "total_assets": total_assets,
        "has_margin": has_margin,
        "has_fund": has_fund,
        "has_unionid": has_unionid,
        "stock_trader": rng.random(n) < np.array([0.15, 0.3, 0.5, 0.7, 0.85])[risk - 1],
        "web_share": np.clip(rng.beta(1.2, 5.0, size=n), 0, 1),
        "os": _choice(rng, [w for _, w in catalog.OS_CHOICES], n),
        "model": rng.integers(0, 1000, size=n),
        "version": _choice(rng, [w for _, w in catalog.APP_VERSIONS], n),
        "distinct_id": distinct_id,
    }
    return table, state


_ID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
_ID_CHECK = "10X98765432"


def _id_numbers(
    rng: np.random.Generator, city: np.ndarray, birthday: np.ndarray, female: np.ndarray
) -> pa.Array:
    """18-digit resident ID numbers: region, birth date, sequence (odd = male), check digit."""
    n = len(city)
    region = np.array([int(code) for _, code, _ in catalog.CITIES], dtype=np.int64)[city]
    born = birthday.astype("datetime64[D]")
    ymd = (
        (born.astype("datetime64[Y]").astype(np.int64) + 1970) * 10_000
        + (born.astype("datetime64[M]").astype(np.int64) % 12 + 1) * 100
        + ((born - born.astype("datetime64[M]")).astype(np.int64) + 1)
    )
    seq = rng.integers(0, 500, size=n) * 2 + np.where(female, 0, 1)
    body = region * 10**11 + ymd * 1000 + seq
    digits = (body[:, None] // (10 ** np.arange(16, -1, -1))) % 10
    check = (digits * _ID_WEIGHTS).sum(axis=1) % 11
    return _join(_pad(body, 17), _take(list(_ID_CHECK), check))


# -- events --------------------------------------------------------------------------------------
@dataclass
class _Block:
    """Events under construction: customer index (within the chunk), time, event code, props."""

    customer: np.ndarray
    time_us: np.ndarray
    event: np.ndarray
    props: dict[str, pa.Array]


def _events_for(demo: Demo, chunk: int, start: int, stop: int) -> EventChunk:
    state = demo._state
    rng = np.random.default_rng([demo.seed, 1000 + chunk])
    sl = slice(start, stop)
    n = stop - start
    now_us: int = state["now_us"]
    days: int = state["days"]
    window_us = now_us - days * DAY_US
    open_us = state["open_us"][sl]
    first_us = np.maximum(window_us, open_us)

    blocks = [
        _sessions(rng, state, sl, n, first_us, now_us, days),
        *_plans(rng, state, sl, n, first_us, now_us),
        _asset_changes(rng, state, sl, n, first_us, now_us, days),
        _one_off(rng, state, sl, n, first_us, now_us),
    ]
    events = _assemble(blocks, state["distinct_id"].slice(start, n), demo, chunk, "e")

    anonymous_block = _anonymous_sessions(rng, state, sl, n, window_us)
    anon_ids = state["anonymous_ids"]
    anon_index = state["anonymous_index"][sl]
    holder_ids = anon_ids.take(pa.array(np.maximum(anon_index, 0)))
    anonymous = _assemble([anonymous_block], holder_ids, demo, chunk, "a")
    return EventChunk(anonymous=anonymous, events=events)


def _session_times(
    rng: np.random.Generator, customer: np.ndarray, lo_us: np.ndarray, hi_us: int
) -> np.ndarray:
    """Session starts: a day in [lo, hi] (weekends half as likely), an hour by HOUR_WEIGHTS."""
    lo_day = _local_day(lo_us[customer])
    hi_day = int(_local_day(hi_us))
    span = np.maximum(hi_day - lo_day + 1, 1)
    day = lo_day + (rng.random(len(customer)) * span).astype(np.int64)
    weekday = (day + 3) % 7  # 0 = Monday
    # Half of the weekend sessions move to the nearest weekday (Saturday → Friday,
    # Sunday → Monday) when that stays inside the customer's window.
    moved = (weekday >= 5) & (rng.random(len(customer)) < 0.5)
    target = np.where(weekday == 5, day - 1, day + 1)
    day = np.where(moved & (target >= lo_day) & (target <= hi_day), target, day)
    hour = _choice(rng, HOUR_WEIGHTS, len(customer))
    local_us = (
        day * DAY_US + hour * 3600 * US + (rng.random(len(customer)) * 3600 * US).astype(np.int64)
    )
    return np.asarray(local_us - SHANGHAI_OFFSET_US)


def _in_trading_hours(utc_us: np.ndarray) -> np.ndarray:
    local = utc_us + SHANGHAI_OFFSET_US
    minute = (local % DAY_US) // (60 * US)
    weekday = ((local // DAY_US) + 3) % 7
    morning = (minute >= 9 * 60 + 30) & (minute < 11 * 60 + 30)
    afternoon = (minute >= 13 * 60) & (minute < 15 * 60)
    return (weekday < 5) & (morning | afternoon)


def _sessions(
    rng: np.random.Generator,
    state: dict[str, Any],
    sl: slice,
    n: int,
    first_us: np.ndarray,
    now_us: int,
    days: int,
) -> _Block:
    activity = state["activity"][sl]
    rate = np.array(SESSIONS_PER_90_DAYS)[activity] * days / 90.0
    counts = rng.poisson(rate)
    customer = np.repeat(np.arange(n), counts)
    start = _session_times(rng, customer, first_us, now_us)
    keep = (start >= first_us[customer]) & (start < now_us - 60 * US)
    customer, start = customer[keep], start[keep]
    sessions = len(customer)
    web = rng.random(sessions) < state["web_share"][sl][customer]
    extras = rng.geometric(1.0 / (1.0 + EXTRA_EVENTS_MEAN), size=sessions) - 1
    sizes = 1 + extras + (~web).astype(np.int64)
    session_of = np.repeat(np.arange(sessions), sizes)
    offsets = np.cumsum(sizes) - sizes
    position = np.arange(len(session_of)) - offsets[session_of]
    gaps = rng.exponential(45.0, size=len(session_of)) * US
    gaps[position == 0] = 0
    elapsed = np.cumsum(gaps)
    elapsed -= elapsed[offsets][session_of]
    when = start[session_of] + elapsed.astype(np.int64)
    who = customer[session_of]
    is_web = web[session_of]
    last = position == sizes[session_of] - 1

    generic_names = [g for g, _ in GENERIC]
    generic = np.array([E[g] for g in generic_names])[
        _choice(rng, [w for _, w in GENERIC], len(session_of))
    ]
    login_here = (position == 1) & (rng.random(len(session_of)) < np.where(is_web, 0.4, 0.65))
    event = np.where(login_here, E["Login"], generic)
    stock_trader = state["stock_trader"][sl][who]
    has_fund = state["has_fund"][sl][who]
    event = np.where((event == E["TradeStock"]) & ~stock_trader, E["ViewFundDetail"], event)
    fund_trade = (event == E["BuyFund"]) | (event == E["RedeemFund"])
    event = np.where(fund_trade & ~has_fund, E["ViewFundDetail"], event)
    event = np.where(
        (event == E["TradeStock"]) & ~_in_trading_hours(when), E["$AppViewScreen"], event
    )
    event = np.where(is_web & (event == E["$AppViewScreen"]), E["$pageview"], event)
    event = np.where(position == 0, np.where(is_web, E["$pageview"], E["$AppStart"]), event)
    event = np.where(last & ~is_web & (position > 0), E["$AppEnd"], event)
    keep = when < now_us
    who, when, event, is_web = who[keep], when[keep], event[keep], is_web[keep]
    props = _session_props(rng, state, sl, who, event, is_web)
    return _Block(customer=who, time_us=when, event=event, props=props)


def _pick_funds(rng: np.random.Generator, funds: dict[str, Any], level: np.ndarray) -> np.ndarray:
    """A fund index per row with the wanted R-level, popular funds more often."""
    chosen = np.zeros(len(level), dtype=np.int64)
    u = rng.random(len(level))
    for r, (members, cumulative) in funds["by_level"].items():
        rows = np.flatnonzero(level == r)
        if len(rows) and len(members):
            chosen[rows] = members[
                np.searchsorted(cumulative, u[rows], side="right").clip(0, len(members) - 1)
            ]
    return chosen


def _fund_levels(
    rng: np.random.Generator, risk: np.ndarray, offsets: Sequence[int], weights: Sequence[float]
) -> np.ndarray:
    shift = np.array(offsets)[_choice(rng, weights, len(risk))]
    return np.asarray(np.clip(risk + shift, 1, 5))


def _session_props(
    rng: np.random.Generator,
    state: dict[str, Any],
    sl: slice,
    who: np.ndarray,
    event: np.ndarray,
    is_web: np.ndarray,
) -> dict[str, pa.Array]:
    m = len(who)
    props: dict[str, pa.Array] = {}
    app = ~is_web
    os_code = state["os"][sl][who]
    os_names = [o for o, _ in catalog.OS_CHOICES]
    props["$os"] = _take(os_names, os_code, mask=~app)
    models = [(o, model) for o in os_names for model in catalog.MODELS[o]]
    model_offset = np.cumsum([0] + [len(catalog.MODELS[o]) for o in os_names])[:-1]
    model_count = np.array([len(catalog.MODELS[o]) for o in os_names])
    model_code = model_offset[os_code] + state["model"][sl][who] % model_count[os_code]
    props["$model"] = _take([mo for _, mo in models], model_code, mask=~app)
    props["$app_version"] = _take(
        [v for v, _ in catalog.APP_VERSIONS], state["version"][sl][who], mask=~app
    )
    is_screen = event == E["$AppViewScreen"]
    screen = _choice(rng, [w for _, w in catalog.APP_SCREENS], m)
    props["$screen_name"] = _take([s for s, _ in catalog.APP_SCREENS], screen, mask=~is_screen)
    is_page = event == E["$pageview"]
    page = _choice(rng, [w for _, w in catalog.WEB_PAGES], m)
    props["$url"] = _take([p for p, _ in catalog.WEB_PAGES], page, mask=~is_page)
    is_login = event == E["Login"]
    method = _choice(rng, [w for _, w in catalog.LOGIN_METHODS], m)
    props["login_method"] = _take([x for x, _ in catalog.LOGIN_METHODS], method, mask=~is_login)
    is_search = event == E["Search"]
    keyword = rng.integers(0, len(catalog.SEARCH_KEYWORDS), size=m)
    props["keyword"] = _take(catalog.SEARCH_KEYWORDS, keyword, mask=~is_search)

    risk = state["risk"][sl][who]
    view = event == E["ViewFundDetail"]
    buy = event == E["BuyFund"]
    redeem = event == E["RedeemFund"]
    trade = event == E["TradeStock"]
    deposit = event == E["Deposit"]
    # Browsing wanders around the customer's level; purchases stay at or below it (适当性).
    level = np.where(
        view,
        _fund_levels(rng, risk, (-2, -1, 0, 1, 2), (0.1, 0.25, 0.45, 0.15, 0.05)),
        _fund_levels(rng, risk, (-2, -1, 0), (0.15, 0.3, 0.55)),
    )
    funds = state["funds"]
    fund = _pick_funds(rng, funds, level)
    fund_event = view | buy | redeem
    stock = rng.integers(0, len(catalog.STOCKS), size=m)
    item_id = pc.if_else(
        pa.array(trade), _take([c for c, _, _ in catalog.STOCKS], stock), funds["ids"].take(fund)
    )
    props["item_id"] = pc.if_else(pa.array(fund_event | trade), item_id, None)
    props["item_type"] = pc.if_else(
        pa.array(fund_event), "fund", pc.if_else(pa.array(trade), "stock", None)
    )
    props["fund_category"] = pc.if_else(pa.array(view | buy), funds["categories"].take(fund), None)
    props["risk_level"] = _take(["R1", "R2", "R3", "R4", "R5"], level - 1, mask=~view)
    assets = state["total_assets"][sl][who]
    amount = np.where(
        trade,
        np.exp(rng.normal(np.log(20_000), 1.0, size=m)),
        np.exp(rng.normal(np.log(5_000), 1.0, size=m)),
    )
    amount = np.minimum(amount, np.maximum(assets * 0.5, 1_000.0))
    amount = np.maximum(np.round(amount, -2), 100.0)
    props["amount"] = pa.array(amount, mask=~(buy | redeem | trade | deposit))
    side = np.where(rng.random(m) < 0.55, 0, 1)
    props["side"] = _take(["buy", "sell"], side, mask=~trade)
    return props


def _plans(
    rng: np.random.Generator,
    state: dict[str, Any],
    sl: slice,
    n: int,
    first_us: np.ndarray,
    now_us: int,
) -> list[_Block]:
    """定投 plans: creation (if in the window), failed payments, terminations."""
    window_us = now_us - state["days"] * DAY_US
    eligible = state["has_fund"][sl] & (state["activity"][sl] < 3)
    has_plan = eligible & (rng.random(n) < 0.18)
    customer = np.flatnonzero(has_plan)
    k = len(customer)
    created_in_window = rng.random(k) < 0.4
    created = np.where(
        created_in_window,
        first_us[customer] + (rng.random(k) * (now_us - first_us[customer])).astype(np.int64),
        window_us - (rng.random(k) * 365 * DAY_US).astype(np.int64),
    )
    period_code = _choice(rng, [w for _, _, w in catalog.AUTO_INVEST_PERIODS], k)
    period_days = np.array([d for _, d, _ in catalog.AUTO_INVEST_PERIODS])[period_code]
    amounts = np.array([100, 200, 300, 500, 1000, 2000, 5000], dtype=float)[
        _choice(rng, (0.12, 0.15, 0.1, 0.25, 0.22, 0.1, 0.06), k)
    ]
    level = _fund_levels(rng, state["risk"][sl][customer], (-1, 0), (0.4, 0.6))
    fund = _pick_funds(rng, state["funds"], level)
    plan_id = _join("AIP", _pad(np.arange(sl.start, sl.start + n)[customer], 8))
    terminated = rng.random(k) < 0.12
    end_us = np.where(
        terminated,
        np.maximum(created, window_us)
        + (rng.random(k) * (now_us - np.maximum(created, window_us))).astype(np.int64),
        now_us,
    )
    fund_ids = state["funds"]["ids"].take(pa.array(fund))
    blocks: list[_Block] = []

    made = np.flatnonzero(created_in_window)
    blocks.append(
        _Block(
            customer=customer[made],
            time_us=created[made],
            event=np.full(len(made), E["CreateAutoInvestPlan"]),
            props={
                "item_id": fund_ids.take(pa.array(made)),
                "item_type": pa.array(["fund"] * len(made), pa.string()),
                "plan_id": plan_id.take(pa.array(made)),
                "amount": pa.array(amounts[made]),
                "period": _take([p for p, _, _ in catalog.AUTO_INVEST_PERIODS], period_code[made]),
            },
        )
    )
    # Payments every period from creation; ~7 % fail (more for small balances).
    first_payment = created + period_days * DAY_US
    start = np.maximum(first_payment, window_us)
    skipped = np.ceil(np.maximum(start - first_payment, 0) / (period_days * DAY_US)).astype(
        np.int64
    )
    start = first_payment + skipped * period_days * DAY_US
    payments = np.where(end_us > start, (end_us - start) // (period_days * DAY_US) + 1, 0).astype(
        np.int64
    )
    plan_of = np.repeat(np.arange(k), payments)
    nth = np.arange(len(plan_of)) - (np.cumsum(payments) - payments)[plan_of]
    pay_us = start[plan_of] + nth * period_days[plan_of] * DAY_US + 9 * 3600 * US
    poor = state["total_assets"][sl][customer][plan_of] < 20_000
    failed = (rng.random(len(plan_of)) < np.where(poor, 0.15, 0.05)) & (pay_us < now_us)
    fail_plan = plan_of[failed]
    reason = _choice(rng, [w for _, w in catalog.PAYMENT_FAILURES], len(fail_plan))
    blocks.append(
        _Block(
            customer=customer[fail_plan],
            time_us=pay_us[failed],
            event=np.full(len(fail_plan), E["AutoInvestPaymentFailed"]),
            props={
                "item_id": fund_ids.take(pa.array(fail_plan)),
                "item_type": pa.array(["fund"] * len(fail_plan), pa.string()),
                "plan_id": plan_id.take(pa.array(fail_plan)),
                "amount": pa.array(amounts[fail_plan]),
                "reason": _take([r for r, _ in catalog.PAYMENT_FAILURES], reason),
            },
        )
    )
    ended = np.flatnonzero(terminated & (end_us < now_us) & (end_us >= window_us))
    why = _choice(rng, [w for _, w in catalog.TERMINATE_REASONS], len(ended))
    blocks.append(
        _Block(
            customer=customer[ended],
            time_us=end_us[ended],
            event=np.full(len(ended), E["TerminateAutoInvestPlan"]),
            props={
                "item_id": fund_ids.take(pa.array(ended)),
                "item_type": pa.array(["fund"] * len(ended), pa.string()),
                "plan_id": plan_id.take(pa.array(ended)),
                "reason": _take([r for r, _ in catalog.TERMINATE_REASONS], why),
            },
        )
    )
    return blocks


def _asset_changes(
    rng: np.random.Generator,
    state: dict[str, Any],
    sl: slice,
    n: int,
    first_us: np.ndarray,
    now_us: int,
    days: int,
) -> _Block:
    """Asset snapshots drifting towards today's total assets; margin eligibility ≥ 500k."""
    active = state["activity"][sl] < 3
    counts = np.where(active, rng.poisson(days / 30.0, size=n), 0)
    customer = np.repeat(np.arange(n), counts)
    span = now_us - first_us[customer]
    when = first_us[customer] + (rng.random(len(customer)) * span).astype(np.int64)
    weeks_left = (now_us - when) / (7 * DAY_US)
    final = state["total_assets"][sl][customer]
    value = np.round(final * np.exp(rng.normal(0, 0.04, len(customer)) * np.sqrt(weeks_left)), 2)
    return _Block(
        customer=customer,
        time_us=when,
        event=np.full(len(customer), E["AssetChange"]),
        props={
            "total_assets": pa.array(value),
            "margin_eligible": pa.array(value >= MARGIN_THRESHOLD),
        },
    )


def _one_off(
    rng: np.random.Generator,
    state: dict[str, Any],
    sl: slice,
    n: int,
    first_us: np.ndarray,
    now_us: int,
) -> _Block:
    """Margin account openings and WeChat follows that happened in the window."""
    margin = np.flatnonzero(state["has_margin"][sl] & (rng.random(n) < 0.25))
    follow = np.flatnonzero(state["has_unionid"][sl] & (rng.random(n) < 0.3))
    customer = np.concatenate([margin, follow])
    span = now_us - first_us[customer]
    when = first_us[customer] + (rng.random(len(customer)) * span).astype(np.int64)
    event = np.concatenate(
        [np.full(len(margin), E["OpenMarginAccount"]), np.full(len(follow), E["WeChatFollow"])]
    )
    account = rng.integers(0, len(catalog.WECHAT_ACCOUNTS), size=len(customer))
    return _Block(
        customer=customer,
        time_us=when,
        event=event,
        props={
            "wechat_account": _take(
                catalog.WECHAT_ACCOUNTS, account, mask=event != E["WeChatFollow"]
            )
        },
    )


def _anonymous_sessions(
    rng: np.random.Generator, state: dict[str, Any], sl: slice, n: int, window_us: int
) -> _Block:
    """Before sign-up: 1–3 app sessions on the device in the two weeks before opening."""
    anonymous = state["anonymous"][sl]
    open_us = state["open_us"][sl]
    counts = np.where(anonymous, rng.integers(1, 4, size=n), 0)
    customer = np.repeat(np.arange(n), counts)
    lo = np.maximum(open_us[customer] - 14 * DAY_US, window_us)
    span = np.maximum(open_us[customer] - lo - 3600 * US, 60 * US)
    start = lo + (rng.random(len(customer)) * span).astype(np.int64)
    sizes = 2 + rng.integers(1, 5, size=len(customer))  # start, views …, end
    session_of = np.repeat(np.arange(len(customer)), sizes)
    offsets = np.cumsum(sizes) - sizes
    position = np.arange(len(session_of)) - offsets[session_of]
    when = start[session_of] + position * (rng.exponential(40.0, len(session_of)) * US).astype(
        np.int64
    )
    when = np.minimum(when, open_us[customer][session_of] - US)
    middle = np.array([E["$AppViewScreen"], E["ViewFundDetail"], E["Search"]])[
        _choice(rng, (0.6, 0.3, 0.1), len(session_of))
    ]
    event = np.where(
        position == 0,
        E["$AppStart"],
        np.where(position == sizes[session_of] - 1, E["$AppEnd"], middle),
    )
    who = customer[session_of]
    props = _session_props(rng, state, sl, who, event, np.zeros(len(who), dtype=bool))
    return _Block(customer=who, time_us=when, event=event, props=props)


def _assemble(
    blocks: Sequence[_Block], distinct_ids: pa.Array, demo: Demo, chunk: int, kind: str
) -> pa.Table:
    """One events table (``id``, ``distinct_id``, ``event``, ``time``, properties) of blocks."""
    customer = np.concatenate([b.customer for b in blocks]).astype(np.int64)
    time_us = np.concatenate([b.time_us for b in blocks]).astype(np.int64)
    event = np.concatenate([b.event for b in blocks]).astype(np.int64)
    total = len(customer)
    columns: dict[str, Any] = {
        "id": _join(
            f"demo{demo.seed}-{kind}{chunk}-", pc.cast(pa.array(np.arange(total)), pa.string())
        ),
        "distinct_id": distinct_ids.take(pa.array(customer)),
        "event": _take(EVENTS, event),
        "time": _timestamps(time_us),
    }
    for name, ptype in EVENT_PROPERTY_TYPES.items():
        dtype = {"STRING": pa.string(), "NUMBER": pa.float64(), "BOOL": pa.bool_()}[ptype]
        parts = [
            b.props[name].cast(dtype) if name in b.props else pa.nulls(len(b.customer), dtype)
            for b in blocks
        ]
        columns[name] = pa.concat_arrays(
            [p.combine_chunks() if isinstance(p, pa.ChunkedArray) else p for p in parts]
        )
    return pa.table(columns)
