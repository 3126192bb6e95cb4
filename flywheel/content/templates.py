"""Sandboxed template rendering (Jinja2) and SMS length / segment counting.

Templates run in :class:`jinja2.sandbox.ImmutableSandboxedEnvironment` with every global removed
(no ``range``, ``lipsum``, ``cycler``, ``joiner``, ``namespace``, ``config``), only the variables
``user`` (profile), ``tags``, ``recommendations`` and ``product`` allowed, and any attribute or
item whose name starts with ``_`` refused at save time (AST walk) and again at render time
(the sandbox's unsafe-access hook raises). A refused template is :class:`TemplateRejected`
(HTTP 400) — never executed, never rendered with leaked internals.

Missing values: an undefined variable renders its declared fallback (``fallbacks`` maps
``"user.name"`` → ``"客户"``) or the empty string — never ``"None"``; ``| default('客户')`` works.

SMS counting: a message made only of GSM 03.38 characters is GSM-7 (160 characters single,
153 per part of a concatenated message; ``^{}[]~|€\\`` count twice); anything else — every
Chinese message — is UCS-2: 70 characters single, 67 per part (counted in UTF-16 code units).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import Template, TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.runtime import ChainableUndefined, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from flywheel.core.errors import InvalidInput

#: ``event`` is the journey's trigger event (its properties), set by the dispatcher.
ALLOWED_VARIABLES = frozenset({"user", "tags", "recommendations", "product", "event"})
MAX_OUTPUT = 100_000


class TemplateRejected(InvalidInput):
    """The template is invalid or tries to reach Python internals (HTTP 400)."""

    code = "template_rejected"


class _Blank(ChainableUndefined):
    """Undefined that renders as '' (``default`` still sees it as undefined)."""

    def __str__(self) -> str:
        return ""


class _Sandbox(ImmutableSandboxedEnvironment):
    # Refuse memory bombs such as {{ 'x' * 10**9 }} before they allocate.
    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            if isinstance(right, int | float) and abs(right) > 64:
                raise SecurityError("exponent too large in template")
            return left**right
        for sized, count in ((left, right), (right, left)):
            repeats = isinstance(sized, str | list | tuple) and isinstance(count, int)
            if repeats and len(sized) * count > MAX_OUTPUT:
                raise SecurityError("repetition too large in template")
        return super().call_binop(context, operator, left, right)

    def unsafe_undefined(self, obj: Any, attribute: str) -> Undefined:  # noqa: ARG002
        raise SecurityError(f"access to attribute {attribute!r} is not allowed")

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if attr.startswith("_"):
            return False
        return bool(super().is_safe_attribute(obj, attr, value))


def _environment(autoescape: bool) -> _Sandbox:
    env = _Sandbox(
        autoescape=autoescape,
        undefined=_Blank,
        finalize=lambda value: "" if value is None else value,
    )
    env.globals.clear()
    return env


_PLAIN = _environment(False)
_HTML = _environment(True)


def validate(source: str) -> None:
    """Refuse a template that does not parse, uses an unknown variable, or names ``_`` attrs.

    :class:`TemplateRejected` with what is wrong and, in ``detail.line``, where.
    """
    try:
        tree = _PLAIN.parse(source)
    except TemplateSyntaxError as exc:
        raise TemplateRejected(
            f"template syntax error on line {exc.lineno}: {exc.message}",
            detail={"line": exc.lineno},
        ) from exc
    assigned = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    for name in tree.find_all(nodes.Name):
        if name.ctx == "load" and name.name not in ALLOWED_VARIABLES | assigned:
            raise TemplateRejected(
                f"unknown template variable {name.name!r} on line {name.lineno}; allowed: "
                + ", ".join(sorted(ALLOWED_VARIABLES)),
                detail={"line": name.lineno},
            )
    keyed: list[tuple[object, int]] = [(n.attr, n.lineno) for n in tree.find_all(nodes.Getattr)]
    keyed += [(getattr(n.arg, "value", ""), n.lineno) for n in tree.find_all(nodes.Getitem)]
    for key, line in keyed:
        if isinstance(key, str) and key.startswith("_"):
            raise TemplateRejected(
                f"access to attribute {key!r} is not allowed in templates (line {line})",
                detail={"line": line},
            )
    for _ in tree.find_all((nodes.Import, nodes.FromImport, nodes.Include, nodes.Extends)):
        raise TemplateRejected("templates cannot include, import or extend other templates")


def _with_fallbacks(context: Mapping[str, Any], fallbacks: Mapping[str, str]) -> dict[str, Any]:
    result: dict[str, Any] = dict(context)
    for path, fallback in fallbacks.items():
        head, _, rest = path.partition(".")
        if head not in ALLOWED_VARIABLES:
            continue
        if not rest:
            if result.get(head) in (None, ""):
                result[head] = fallback
            continue
        scope = result.get(head)
        scope = dict(scope) if isinstance(scope, Mapping) else {}
        if scope.get(rest) in (None, ""):
            scope[rest] = fallback
        result[head] = scope
    return result


def _template_line(exc: BaseException) -> int | None:
    """The template line an error was raised on (Jinja2 rewrites tracebacks to name them)."""
    line = None
    trace = exc.__traceback__
    while trace is not None:
        if trace.tb_frame.f_code.co_filename == "<template>":
            line = trace.tb_lineno
        trace = trace.tb_next
    return line


@functools.lru_cache(maxsize=1024)
def _compiled(source: str, html: bool) -> Template:
    """Validated and compiled once per source (the dispatcher renders one source many times)."""
    validate(source)
    return (_HTML if html else _PLAIN).from_string(source)


def render_text(
    source: str,
    context: Mapping[str, Any],
    *,
    fallbacks: Mapping[str, str] | None = None,
    html: bool = False,
) -> str:
    """Render ``source`` in the sandbox (HTML-escaped when ``html``).

    :class:`TemplateRejected` for an invalid or unsafe template.
    """
    template = _compiled(source, html)
    try:
        output = template.render(_with_fallbacks(context, fallbacks or {}))
    except (SecurityError, UndefinedError, TypeError, ValueError, OverflowError) as exc:
        line = _template_line(exc)
        where = f" on line {line}" if line else ""
        raise TemplateRejected(
            f"template refused at render time{where}: {exc}",
            detail={"line": line} if line else None,
        ) from exc
    if len(output) > MAX_OUTPUT:
        raise TemplateRejected(f"rendered output longer than {MAX_OUTPUT} characters")
    return output


_GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENDED = set("^{}\\[~]|€\f")


@dataclass(frozen=True)
class SmsCount:
    """Encoding (``gsm7``/``ucs2``), length in encoding units, and number of parts."""

    encoding: str
    length: int
    segments: int
    per_segment: int


def sms_count(text: str) -> SmsCount:
    """How many SMS parts ``text`` takes (see the module doc for the rules)."""
    if all(c in _GSM_BASIC or c in _GSM_EXTENDED for c in text):
        length = sum(2 if c in _GSM_EXTENDED else 1 for c in text)
        single, multi, encoding = 160, 153, "gsm7"
    else:
        length = len(text.encode("utf-16-le")) // 2
        single, multi, encoding = 70, 67, "ucs2"
    if length <= single:
        return SmsCount(encoding, length, 1 if length else 0, single)
    return SmsCount(encoding, length, math.ceil(length / multi), multi)


def apply_sms_rules(body: str, *, signature: str, opt_out: str) -> str:
    """Prefix the firm's signature (【…】) and append the opt-out suffix unless already there."""
    text = body.strip()
    if signature and not text.startswith(signature):
        text = signature + text
    if opt_out and not text.endswith(opt_out):
        text = text + opt_out
    return text
