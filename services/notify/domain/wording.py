"""What the messages say, as data: templates per notice kind × locale, phrases and terms.

The wording ships in ``templates.toml`` (next to this module: read once, like the code, by
``shipped``); operators replace a kind's template in a locale and reset it to the shipped
one (``handlers.templates``). A template is ``string.Template`` text — ``${case_no}``,
``$$`` for a dollar sign — and is checked whenever it is loaded or changed: a syntax error
or a placeholder the notice kind does not carry (``FIELDS``) is refused, in Chinese and
English, naming it. Substitution puts values in as they are: nothing in a value (a grid
worker's description, a supervisor's note) is ever read as a template.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Iterable, Mapping
from typing import Any
from dataclasses import dataclass, field
from importlib import resources
from string import Template

from services.notify.domain.core import NoticeKind
from shared.errors import Invalid

LOCALES = ("zh-CN", "en")  # Simplified Chinese first
TITLE_MAX, BODY_MAX = 200, 2000

# What a template may name, per notice kind: only what that kind of event carries.
_COMMON = ("urgent", "case_no", "category", "area", "where", "link")
_ASSIGNMENT = (*_COMMON, "department")
K = NoticeKind
FIELDS: Mapping[NoticeKind, tuple[str, ...]] = {
    K.DISPATCHED: (*_ASSIGNMENT, "role", "issue"),
    K.OVERDUE: (*_ASSIGNMENT, "clock", "deadline", "ask"),
    K.WHISTLED: (*_COMMON, "level", "issue"),
    K.RESOLVED: (*_ASSIGNMENT, "result"),
    K.CLOSED: (*_COMMON, "note"),
    K.WARNING: (*_ASSIGNMENT, "clock", "deadline"),
    K.ESCALATED: (*_ASSIGNMENT, "clock", "deadline", "level"),
    K.URGED: (*_ASSIGNMENT, "nth", "note"),
    K.EXTENSION_REQUESTED: (*_ASSIGNMENT, "days", "reason"),
    K.EXTENSION_DECIDED: (*_ASSIGNMENT, "days", "decision", "outcome", "comment"),
    K.PAUSE_REQUESTED: (*_ASSIGNMENT, "pause", "reason"),
    K.PAUSE_DECIDED: (*_ASSIGNMENT, "pause", "reason", "decision", "outcome", "comment"),
    K.RESUMED: (*_ASSIGNMENT, "note"),
}

# The phrases (templates.toml [phrases]) and the values each may name.
PHRASES: Mapping[str, tuple[str, ...]] = {
    "urgent": (),
    "where": ("area",),
    "where_place": ("area", "place"),
    "role": ("role",),
    "issue": ("description",),
    "ask_department": (),
    "ask_others": (),
    "result": ("result",),
    "note": ("note",),
    "urge_note": ("note",),
    "nth": ("count",),
    "reason": ("reason",),
    "comment": ("comment",),
    "approved": (),
    "refused": (),
    "extension_granted": ("days",),
    "extension_refused": (),
    "pause_granted": (),
    "pause_refused": (),
}
TERMS = ("clock", "level", "role", "pause")  # code tables; "" is the word for no code


@dataclass(frozen=True)
class MessageTemplate:
    """One notice kind's title and body in one locale."""

    kind: NoticeKind
    locale: str
    title: str
    body: str


Key = tuple[NoticeKind, str]


@dataclass(frozen=True)
class Wording:
    """The shipped wording, with the templates operators replaced over it."""

    defaults: Mapping[Key, MessageTemplate]
    phrases: Mapping[str, Mapping[str, str]]
    terms: Mapping[str, Mapping[str, Mapping[str, str]]]
    overrides: Mapping[Key, MessageTemplate] = field(default_factory=dict)

    def template(self, kind: NoticeKind, locale: str) -> MessageTemplate:
        key = (kind, locale)
        return self.overrides.get(key) or self.defaults[key]

    def is_default(self, kind: NoticeKind, locale: str) -> bool:
        return (kind, locale) not in self.overrides

    def with_overrides(
        self, templates: Iterable[MessageTemplate]
    ) -> tuple[Wording, list[tuple[MessageTemplate, Invalid]]]:
        """This wording with ``templates`` in force, and the ones refused (a stored template
        a newer release no longer accepts: the shipped one stands in for it)."""
        kept: dict[Key, MessageTemplate] = {}
        refused: list[tuple[MessageTemplate, Invalid]] = []
        for t in templates:
            try:
                kept[(t.kind, t.locale)] = check_template(t.kind, t.locale, t.title, t.body)
            except Invalid as exc:
                refused.append((t, exc))
        return Wording(self.defaults, self.phrases, self.terms, kept), refused

    def phrase(self, name: str, locale: str, **values: object) -> str:
        """The phrase in ``locale``; empty when any value it needs is missing or empty."""
        if any(v is None or v == "" for v in values.values()):
            return ""
        return Template(self.phrases[name][locale]).substitute(values)

    def term(self, table: str, code: str | None, locale: str) -> str:
        """A code's word: listed, else the code itself; no code, the table's "" word."""
        words = self.terms[table]
        listed = words.get(code or "")
        return listed[locale] if listed else code or ""


# --- checking --------------------------------------------------------------------------------


def placeholders(text: str, what: tuple[str, str]) -> list[str]:
    """The names ``text`` uses; refuses a ``$`` that is neither ``${name}``, ``$name`` nor
    ``$$`` (``what`` names the text in the error: 标题 title, 正文 body...)."""
    names = []
    for m in Template.pattern.finditer(text):
        if m.group("invalid") is not None:
            at = m.start() + 1  # the "$", counted from 1
            raise Invalid(
                f"{what[0]}第 {at} 个字符处的“$”无法识别：占位符写作 ${{名称}}，美元符号本身写作 $$",
                f"the {what[1]} has an unrecognised '$' at character {at}: write a "
                "placeholder as ${name} and a dollar sign as $$",
                code="template_syntax",
            )
        name = m.group("named") or m.group("braced")
        if name:
            names.append(name)
    return names


def _check_names(text: str, kind: NoticeKind, what: tuple[str, str]) -> None:
    allowed = FIELDS[kind]
    for name in placeholders(text, what):
        if name not in allowed:
            listed = " ".join(f"${{{a}}}" for a in allowed)
            raise Invalid(
                f"{what[0]}中的占位符 ${{{name}}} 不存在：“{kind.value}”消息可用的占位符有 {listed}",
                f"the {what[1]} uses ${{{name}}}, which a {kind.value} message does not have; "
                f"it may use {listed}",
                code="unknown_placeholder",
            )


def check_template(kind: NoticeKind, locale: str, title: str, body: str) -> MessageTemplate:
    """A template as given, or ``Invalid`` (422) saying what is wrong with it."""
    check_locale(locale)
    for text, limit, what in ((title, TITLE_MAX, _TITLE), (body, BODY_MAX, _BODY)):
        if not text.strip():
            raise Invalid(
                f"{what[0]}不能为空", f"the {what[1]} may not be empty", code="template_empty"
            )
        if len(text) > limit:
            raise Invalid(
                f"{what[0]}最长 {limit} 个字符",
                f"the {what[1]} may be at most {limit} characters",
                code="template_too_long",
            )
        _check_names(text, kind, what)
    if not title.isprintable():
        raise Invalid(
            "标题只能有一行（不能含换行或控制字符）",
            "the title must be one line (no line breaks or control characters)",
            code="template_title_line",
        )
    return MessageTemplate(kind, locale, title, body)


_TITLE, _BODY = ("标题", "title"), ("正文", "body")


def check_locale(locale: str) -> None:
    if locale not in LOCALES:
        raise Invalid(
            f"不支持的语言“{locale}”，可选 {'、'.join(LOCALES)}",
            f"unsupported locale '{locale}'; use one of {', '.join(LOCALES)}",
            code="unknown_locale",
        )


# --- the shipped file ------------------------------------------------------------------------


def parse_wording(text: str) -> Wording:
    """``templates.toml``'s text as a ``Wording``; ``ValueError`` naming what is missing or
    wrong (every kind × locale, every phrase and term table in every locale, checked)."""
    data = tomllib.loads(text)
    phrases = data.get("phrases", {})
    for name, needs in PHRASES.items():
        for locale in LOCALES:
            phrase = _entry(phrases, (name, locale), "phrases")
            unknown = set(placeholders(phrase, ("短语", "phrase"))) - set(needs)
            if unknown:
                raise ValueError(f"phrase {name} ({locale}) names {sorted(unknown)}; {needs}")
    terms = data.get("terms", {})
    for table in TERMS:
        for code in _entry(terms, (table,), "terms"):
            for locale in LOCALES:
                _entry(terms, (table, code, locale), "terms")
        _entry(terms, (table, ""), "terms")
    defaults = {}
    for kind in NoticeKind:
        for locale in LOCALES:
            t = _entry(data, ("templates", kind.value, locale), "templates")
            try:
                defaults[(kind, locale)] = check_template(kind, locale, t["title"], t["body"])
            except (Invalid, KeyError) as exc:
                raise ValueError(f"template {kind.value} ({locale}): {exc}") from exc
    return Wording(defaults, phrases, terms)


def _entry(data: Mapping[str, Any], path: tuple[str, ...], section: str) -> Any:
    for key in path:
        if not isinstance(data, Mapping) or key not in data:
            raise ValueError(f"templates.toml [{section}] lacks {'.'.join(path)!r}")
        data = data[key]
    return data


@functools.cache
def shipped() -> Wording:
    """The wording shipped with notify (``templates.toml`` beside this module), read once:
    package data, like the code itself, not I/O a rule depends on."""
    return parse_wording(resources.files(__package__).joinpath("templates.toml").read_text("utf-8"))
