"""The claims checker (合规检查): prohibited claims, missing risk warning, missing risk level.

Pure and fast (no I/O). Text is normalised before matching — NFKC, lower case, whitespace,
punctuation, symbols-used-as-separators and zero-width/format characters dropped, traditional
characters mapped to simplified through a small built-in table — while an index map keeps
every normalised character's position in the ORIGINAL text, so findings report ``start``/``end``
as offsets into what the author wrote (``text[start:end]`` contains the spaced-out or
traditional variant that matched).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

PROHIBITED_CLAIM = "prohibited_claim"
MISSING_RISK_WARNING = "missing_risk_warning"
MISSING_RISK_LEVEL = "missing_risk_level"
MISSING_SUITABILITY_NOTE = "missing_suitability_note"

#: Kinds of phrase a phrase book holds (the ``rule`` of a stored phrase).
PHRASE_RULES = ("prohibited_claim", "risk_warning", "promotion_trigger", "suitability_note")

#: Advertising Law (广告法 art. 9/25) absolute terms and fund-promotion prohibited claims.
DEFAULT_PROHIBITED: tuple[str, ...] = (
    "保本",
    "保息",
    "保本保息",
    "保收益",
    "稳赚",
    "稳赚不赔",
    "无风险",
    "零风险",
    "高收益无风险",
    "承诺收益",
    "承诺收益率",
    "保证收益",
    "保证本金",
    "刚性兑付",
    "稳定收益",
    "最佳",
    "最高",
    "最低",
    "最优",
    "首个",
    "唯一",
    "顶级",
    "国家级",
    "第一",
    "全网第一",
    "绝对安全",
    "只涨不跌",
    "躺赚",
)
#: Sentences that satisfy the mandatory risk warning (any one is enough).
DEFAULT_WARNINGS: tuple[str, ...] = (
    "基金有风险，投资需谨慎",
    "投资有风险，入市需谨慎",
    "理财非存款，产品有风险，投资须谨慎",
    "市场有风险，投资需谨慎",
)
#: Words that make a text a product promotion (then a risk warning is mandatory).
DEFAULT_TRIGGERS: tuple[str, ...] = ("基金", "理财", "产品", "收益", "申购", "认购")
#: Phrases that count as the suitability note a product card must carry (适当性管理).
DEFAULT_SUITABILITY: tuple[str, ...] = ("风险承受能力", "适当性", "适合")

# Traditional → simplified for the characters of the phrases above (and common neighbours).
_T2S = str.maketrans(
    {
        "穩": "稳",
        "賺": "赚",
        "賠": "赔",
        "無": "无",
        "風": "风",
        "險": "险",
        "證": "证",
        "諾": "诺",
        "產": "产",
        "國": "国",
        "級": "级",
        "壹": "一",
        "頂": "顶",
        "權": "权",
        "兌": "兑",
        "剛": "刚",
        "確": "确",
        "絕": "绝",
        "對": "对",
        "開": "开",
        "個": "个",
        "優": "优",
        "惟": "唯",
        "額": "额",
        "財": "财",
        "購": "购",
        "認": "认",
        "場": "场",
        "須": "须",
        "謹": "谨",
        "資": "资",
        "漲": "涨",
        "億": "亿",
        "網": "网",
        "價": "价",
        "贏": "赢",
    }
)

_RISK_LEVEL = re.compile(r"r[1-5]|(低|中低|中|中高|高)风险(等级)?")


@lru_cache(maxsize=65536)
def _fold(char: str) -> str:
    """What one original character contributes to the normalised text ('' when dropped)."""
    out = []
    for piece in unicodedata.normalize("NFKC", char).lower():
        category = unicodedata.category(piece)
        # Z* separators, P* punctuation, C* control/format (zero-width), S* symbols between
        # characters are used to space claims out (稳 赚, 稳·赚, 稳\u200b赚, 稳★赚).
        if category[0] in "ZPCS":
            continue
        out.append(piece.translate(_T2S))
    return "".join(out)


def normalize(text: str) -> tuple[str, list[int]]:
    """The normalised text and, for each of its characters, the index in ``text`` it came from."""
    chars: list[str] = []
    index: list[int] = []
    for position, char in enumerate(text):
        if char.isascii():
            if char.isalnum():
                chars.append(char.lower())
                index.append(position)
            continue
        folded = _fold(char)
        for piece in folded:
            chars.append(piece)
            index.append(position)
    return "".join(chars), index


def normalize_phrase(phrase: str) -> str:
    """A phrase in the form it is matched in (``normalize`` without the index map)."""
    return normalize(phrase)[0]


@dataclass(frozen=True)
class Finding:
    """One problem: ``phrase`` (as listed), ``start``/``end`` in the original text, ``rule``."""

    phrase: str
    start: int
    end: int
    rule: str

    def as_dict(self) -> dict[str, object]:
        return {"phrase": self.phrase, "start": self.start, "end": self.end, "rule": self.rule}


@dataclass(frozen=True)
class PhraseBook:
    """The phrase lists a check uses (compliance staff edit them; see ``content_phrases``)."""

    prohibited: Sequence[str] = DEFAULT_PROHIBITED
    warnings: Sequence[str] = DEFAULT_WARNINGS
    triggers: Sequence[str] = DEFAULT_TRIGGERS
    suitability: Sequence[str] = DEFAULT_SUITABILITY
    _compiled: dict[str, list[tuple[str, str]]] = field(default_factory=dict, compare=False)

    def compiled(self, kind: str) -> list[tuple[str, str]]:
        """``(normalised, listed)`` pairs of a list, longest first, empty phrases dropped."""
        if kind not in self._compiled:
            source: Iterable[str] = getattr(self, kind)
            pairs = {(normalize_phrase(p), p) for p in source}
            self._compiled[kind] = sorted(
                ((n, p) for n, p in pairs if n), key=lambda pair: (-len(pair[0]), pair[0])
            )
        return self._compiled[kind]

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, str]]) -> PhraseBook:
        """Build from ``(rule, phrase)`` rows of the stored, editable list."""
        by_rule: dict[str, list[str]] = {rule: [] for rule in PHRASE_RULES}
        for rule, phrase in rows:
            by_rule.setdefault(rule, []).append(phrase)
        return cls(
            prohibited=tuple(by_rule["prohibited_claim"]),
            warnings=tuple(by_rule["risk_warning"]),
            triggers=tuple(by_rule["promotion_trigger"]),
            suitability=tuple(by_rule["suitability_note"]),
        )


DEFAULT_BOOK = PhraseBook()


def _occurrences(haystack: str, needle: str) -> Iterable[int]:
    at = haystack.find(needle)
    while at != -1:
        yield at
        at = haystack.find(needle, at + 1)


def check(
    text: str,
    *,
    book: PhraseBook = DEFAULT_BOOK,
    product_card: bool = False,
    risk_level: str | None = None,
) -> list[Finding]:
    """Every finding in ``text``, ordered by position.

    - ``prohibited_claim``: each occurrence of a listed phrase; an occurrence inside a longer
      listed phrase that also matched (稳赚 inside 稳赚不赔) is reported once, as the longer.
    - ``missing_risk_warning``: the text promotes a product (a trigger word, or it is a product
      card) and contains none of the warning sentences; reported at ``start = end = 0`` with the
      first listed warning as ``phrase`` (the sentence to add).
    - ``missing_risk_level``: a product card with neither a ``risk_level`` (R1–R5) nor an
      R-level / 风险等级 in its text; at ``0/0``, phrase ``"R1-R5"``.
    - ``missing_suitability_note``: a product card without any suitability phrase
      (适合…/风险承受能力/适当性); at ``0/0`` with the first listed phrase.
    """
    normalised, index = normalize(text)
    matches: list[tuple[int, int, str]] = []
    for needle, listed in book.compiled("prohibited"):
        for at in _occurrences(normalised, needle):
            matches.append((at, at + len(needle), listed))
    matches.sort(key=lambda m: (m[0], -(m[1] - m[0])))
    findings: list[Finding] = []
    covered_until = -1
    for begin, finish, listed in matches:
        if finish <= covered_until:
            continue
        covered_until = max(covered_until, finish)
        findings.append(Finding(listed, index[begin], index[finish - 1] + 1, PROHIBITED_CLAIM))
    promotes = product_card or any(needle in normalised for needle, _ in book.compiled("triggers"))
    warnings = book.compiled("warnings")
    if promotes and warnings and not any(needle in normalised for needle, _ in warnings):
        findings.append(Finding(book.warnings[0], 0, 0, MISSING_RISK_WARNING))
    if product_card and not (risk_level or "").strip() and not _RISK_LEVEL.search(normalised):
        findings.append(Finding("R1-R5", 0, 0, MISSING_RISK_LEVEL))
    notes = book.compiled("suitability")
    if product_card and notes and not any(needle in normalised for needle, _ in notes):
        findings.append(Finding(book.suitability[0], 0, 0, MISSING_SUITABILITY_NOTE))
    return findings
