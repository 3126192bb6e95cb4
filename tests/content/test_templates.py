from __future__ import annotations

import pytest

from flywheel.content.templates import TemplateRejected, apply_sms_rules, render_text, sms_count

PAYLOADS = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__ }}",
    "{% for x in ().__class__.__base__.__subclasses__() %}{{ x }}{% endfor %}",
    "{{ config }}",
    "{{ config.items() }}",
    "{{ self.__dict__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ lipsum.__globals__ }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ request.application.__globals__ }}",
    "{{ user|attr('__class__') }}",
    "{{ user['__cl' ~ 'ass__'] }}",
    "{{ namespace.__init__ }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ range(10) }}",
    "{% include 'x' %}",
    "{% import 'os' as os %}",
    "{{ user.name.format }}{{ '{0.__class__}'.format(user) }}",
    "{% set x = user.__class__ %}{{ x }}",
    "{{ user.",
    "{{ 'x' * 1000000000 }}",
    "{{ [1] * 1000000000 }}",
    "{{ 2 ** 100000000 }}",
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_injection_payloads_are_refused(payload: str) -> None:
    with pytest.raises(TemplateRejected):
        render_text(payload, {"user": {"name": "张三"}})


def test_fallbacks_and_default_filter() -> None:
    context = {"user": {"name": None}}
    assert render_text("{{ user.name | default('客户') }}您好", {"user": {}}) == "客户您好"
    assert render_text("{{ user.name }}您好", context) == "您好"
    assert render_text("{{ user.name }}", context, fallbacks={"user.name": "客户"}) == "客户"
    assert render_text("{{ user.missing.deeper }}", {"user": {}}) == ""
    assert "None" not in render_text("{{ user.name }}{{ tags.x }}", context)


def test_email_html_is_escaped_and_plain_is_not() -> None:
    context = {"user": {"name": "<b>张</b>"}}
    assert render_text("{{ user.name }}", context, html=True) == "&lt;b&gt;张&lt;/b&gt;"
    assert render_text("{{ user.name }}", context) == "<b>张</b>"


def test_recommendations_loop() -> None:
    source = "{% for r in recommendations %}{{ r.name }};{% endfor %}"
    assert render_text(source, {"recommendations": [{"name": "A"}, {"name": "B"}]}) == "A;B;"


@pytest.mark.parametrize(
    ("text", "encoding", "length", "segments"),
    [
        ("", "gsm7", 0, 0),
        ("a" * 160, "gsm7", 160, 1),
        ("a" * 161, "gsm7", 161, 2),
        ("[" * 80, "gsm7", 160, 1),
        ("中" * 70, "ucs2", 70, 1),
        ("中" * 71, "ucs2", 71, 2),
        ("中" * 134, "ucs2", 134, 2),
        ("中" * 135, "ucs2", 135, 3),
        ("😀", "ucs2", 2, 1),
    ],
)
def test_sms_count(text: str, encoding: str, length: int, segments: int) -> None:
    count = sms_count(text)
    assert (count.encoding, count.length, count.segments) == (encoding, length, segments)


def test_sms_rules_add_signature_and_opt_out_once() -> None:
    once = apply_sms_rules("您好", signature="【飞轮证券】", opt_out="拒收请回复R")
    assert once == "【飞轮证券】您好拒收请回复R"
    assert apply_sms_rules(once, signature="【飞轮证券】", opt_out="拒收请回复R") == once
