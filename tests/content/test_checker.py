from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from flywheel.content import checker
from flywheel.content.checker import DEFAULT_PROHIBITED, check, normalize, normalize_phrase


def _claims(text: str) -> list[tuple[str, str]]:
    return [(f.phrase, text[f.start : f.end]) for f in check(text) if f.rule == "prohibited_claim"]


def test_spaced_traditional_and_zero_width_variants_are_found_at_original_positions() -> None:
    text = "本基金 穩 賺 不賠，零\u200b风险！全网 第 一。基金有风险，投资需谨慎"
    assert _claims(text) == [
        ("稳赚不赔", "穩 賺 不賠"),
        ("零风险", "零\u200b风险"),
        ("全网第一", "全网 第 一"),
    ]


def test_fullwidth_and_punctuation_between_characters() -> None:
    assert _claims("保·本！") == [("保本", "保·本")]
    assert _claims("ＡＢ 保　證　收　益") == [("保证收益", "保　證　收　益")]


def test_clean_text_has_no_findings() -> None:
    assert check("欢迎参加本周的投资者教育讲座，了解市场的基本知识。") == []


def test_product_promotion_requires_risk_warning() -> None:
    (finding,) = check("新发基金今日开放申购")
    assert (finding.rule, finding.start, finding.end) == ("missing_risk_warning", 0, 0)
    assert finding.phrase == checker.DEFAULT_WARNINGS[0]
    assert check("新发基金今日开放申购。基金有风险, 投资需谨慎。") == []


def test_product_card_requires_risk_level() -> None:
    warned = "稳健精选，适合稳健型投资者。基金有风险，投资需谨慎"
    rules = {f.rule for f in check(warned, product_card=True)}
    assert rules == {"missing_risk_level"}
    assert check(warned + " R2 中低风险", product_card=True) == []
    assert check(warned, product_card=True, risk_level="R3") == []


def test_product_card_requires_suitability_note() -> None:
    text = "稳健精选 R2。基金有风险，投资需谨慎"
    assert [f.rule for f in check(text, product_card=True)] == ["missing_suitability_note"]
    assert check(text + "，请确认与您的风险承受能力匹配", product_card=True) == []


def test_custom_phrase_book() -> None:
    book = checker.PhraseBook.from_rows([("prohibited_claim", "翻倍"), ("risk_warning", "慎")])
    assert [f.phrase for f in check("收益翻 倍", book=book)] == ["翻倍"]


@settings(max_examples=300, deadline=None)
@given(
    prefix=st.text(max_size=30),
    phrase=st.sampled_from(DEFAULT_PROHIBITED),
    gaps=st.lists(st.sampled_from(["", " ", "\u200b", "·", "　", "-", "\n"]), min_size=20),
    suffix=st.text(max_size=30),
)
def test_positions_slice_the_original_text_to_the_phrase(
    prefix: str, phrase: str, gaps: list[str], suffix: str
) -> None:
    spaced = "".join(char + gaps[i] for i, char in enumerate(phrase))
    text = prefix + spaced + suffix
    findings = [f for f in check(text) if f.rule == "prohibited_claim"]
    for finding in findings:
        assert normalize_phrase(finding.phrase) in normalize(text[finding.start : finding.end])[0]
        assert 0 <= finding.start < finding.end <= len(text)
    # the inserted phrase is covered by some finding
    start = len(prefix)
    assert any(f.start <= start + 1 and f.end >= start + 1 for f in findings)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_arbitrary_unicode_never_crashes(text: str) -> None:
    for finding in check(text, product_card=True):
        assert 0 <= finding.start <= finding.end <= len(text)
        if finding.rule == "prohibited_claim":
            assert (
                normalize_phrase(finding.phrase) in normalize(text[finding.start : finding.end])[0]
            )


def test_index_map_points_into_original() -> None:
    text = "ａ 穩\u200b賺"
    normalised, index = normalize(text)
    assert normalised == "a稳赚"
    assert [text[i] for i in index] == ["ａ", "穩", "賺"]


def test_long_text_finds_a_claim_at_the_end() -> None:
    # Speed is measured by bench/content_checker.py, never asserted here.
    text = ("本产品投资于债券市场，历史业绩不代表未来表现。" * 500)[:10_000] + "稳赚"
    findings = check(text)
    assert [(f.phrase, f.start) for f in findings if f.rule == "prohibited_claim"] == [
        ("稳赚", 10_000)
    ]
