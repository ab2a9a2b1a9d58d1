"""Notify's templates as data: the shipped wording loads and is complete, every template is
checked (syntax, placeholders its notice kind carries), and rendering follows replacements."""

from __future__ import annotations

import types
import typing
from dataclasses import replace
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from pydantic import AwareDatetime

from services.notify import consumers, domain
from services.notify.domain import (
    FIELDS,
    LOCALES,
    CaseNotice,
    MessageTemplate,
    NoticeKind,
    RecipientKind,
    check_template,
    shipped,
)
from services.notify.domain.names import NO_NAMES
from services.notify.domain.templates import placeholder_values
from services.notify.domain.wording import PHRASES, TERMS, parse_wording
from shared.contract import (
    AssignmentRole,
    Clock,
    Level,
    Location,
    PauseKind,
    Priority,
    new_event,
)
from shared.errors import Invalid

TOML = Path(domain.__file__).with_name("templates.toml").read_text("utf-8")
EVERY_PLACEHOLDER = sorted({name for names in FIELDS.values() for name in names})

DISPATCHED = CaseNotice(
    kind=NoticeKind.DISPATCHED,
    case_id="c-1",
    case_no="YA20261122-0001",
    category="E0101",
    area_path="YA/YA01",
    priority="normal",
    department_id="cg",
    department_name="榆安区城市管理局",
    assignment_id="a-1",
    role="lead",
    description="井盖 ${link} 丢失 $$",
)


# --- the codes' words -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "codes"),
    [("clock", Clock), ("level", Level), ("role", AssignmentRole), ("pause", PauseKind)],
)
def test_every_code_of_the_contract_has_chinese_and_english_words(table, codes):
    w = shipped()
    for code in codes:
        zh, en = (w.term(table, code.value, locale) for locale in LOCALES)
        assert zh and en, (table, code)
        assert zh != code.value, f"{table}.{code.value} has no Chinese word"


def test_the_on_site_clock_reads_as_arrival():
    w = shipped()
    assert (w.term("clock", "on_site", "zh-CN"), w.term("clock", "on_site", "en")) == (
        "到场",
        "on-site arrival",
    )
    overdue = replace(
        DISPATCHED, kind=NoticeKind.OVERDUE, priority="urgent", clock=Clock.ON_SITE.value
    )
    m = domain.render(overdue, RecipientKind.SUPERVISOR)
    assert m.title_zh == "【超时】（紧急）案件YA20261122-0001到场已超时"
    assert m.title_en == "[Overdue] (urgent) Case YA20261122-0001: on-site arrival overdue"


def test_no_code_reads_as_the_tables_word_and_an_unknown_code_as_itself():
    w = shipped()
    assert w.term("clock", None, "zh-CN") == "办理" and w.term("clock", None, "en") == "handling"
    assert w.term("level", None, "en") == "" and w.term("clock", "visit", "zh-CN") == "visit"


# --- the shipped file -------------------------------------------------------------------------


def test_the_shipped_wording_has_every_kind_in_every_locale_chinese_first():
    w = shipped()
    assert LOCALES == ("zh-CN", "en")
    assert set(w.defaults) == {(k, locale) for k in NoticeKind for locale in LOCALES}
    assert all(w.is_default(k, locale) for k, locale in w.defaults)


@pytest.mark.parametrize("kind", list(NoticeKind))
def test_both_languages_of_a_kind_say_the_same_facts(kind):
    """Neither language may drop a fact the other gives (the case number, the link...)."""
    w = shipped()
    used = [
        {*domain.wording.placeholders(t.title + t.body, ("", ""))}
        for t in (w.template(kind, locale) for locale in LOCALES)
    ]
    assert used[0] == used[1], kind
    assert {"case_no", "link"} <= used[0]


@pytest.mark.parametrize(
    ("broken", "says"),
    [
        (
            TOML.replace('[templates."case.resumed".en]', '[templates."case.resumed".fr]'),
            "case.resumed.en",
        ),
        (TOML.replace("（第${count}次）", "（第${days}次）"), "nth"),
        (TOML.replace('"" = { zh-CN = "暂停", en = "pause" }', ""), "pause"),
        (
            TOML.replace(
                'on_site = { zh-CN = "到场", en = "on-site arrival" }', 'on_site = { en = "x" }'
            ),
            "on_site",
        ),
        (TOML.replace("已超时（时限${deadline}）", "已超时（时限${due}）"), "${due}"),
        (TOML.replace("已超时（时限${deadline}）", "已超时（时限${deadline）"), "character"),
    ],
)
def test_a_broken_shipped_file_is_refused_naming_what_is_wrong(broken, says):
    assert broken != TOML
    with pytest.raises(ValueError, match=None) as caught:
        parse_wording(broken)
    assert says in str(caught.value), str(caught.value)


def test_every_phrase_and_term_table_is_known_to_the_code():
    w = shipped()
    assert set(w.phrases) == set(PHRASES) and set(w.terms) == set(TERMS)


# --- checking a template ----------------------------------------------------------------------


def test_a_placeholder_the_notice_kind_lacks_is_refused_in_both_languages():
    with pytest.raises(Invalid) as caught:
        check_template(NoticeKind.DISPATCHED, "zh-CN", "【派单】${case_no}", "延期${days}天")
    err = caught.value
    assert err.status_code == 422 and err.code == "unknown_placeholder"
    assert "${days}" in err.zh and "case.dispatched" in err.zh and "${case_no}" in err.zh
    assert "${days}" in err.en and "a case.dispatched message does not have" in err.en


@pytest.mark.parametrize("kind", list(NoticeKind))
def test_every_placeholder_outside_a_kinds_fields_is_refused(kind):
    for name in [*EVERY_PLACEHOLDER, "nonsense", "title", "assignment_id"]:
        if name in FIELDS[kind]:
            check_template(kind, "en", "t", f"${{{name}}}")
            continue
        with pytest.raises(Invalid, match=rf"\${{{name}}}"):
            check_template(kind, "en", "t", f"${{{name}}}")


@pytest.mark.parametrize(
    ("title", "body", "code"),
    [
        ("【派单】${case_no", "b", "template_syntax"),
        ("t", "费用 $5", "template_syntax"),
        ("t", "${ case_no }", "template_syntax"),
        ("t", "$", "template_syntax"),
        ("  ", "b", "template_empty"),
        ("t", "", "template_empty"),
        ("x" * 201, "b", "template_too_long"),
        ("t", "x" * 2001, "template_too_long"),
        ("两行\n标题", "b", "template_title_line"),
        ("t\x07", "b", "template_title_line"),
    ],
)
def test_a_malformed_template_is_refused_with_a_code_and_both_languages(title, body, code):
    with pytest.raises(Invalid) as caught:
        check_template(NoticeKind.DISPATCHED, "zh-CN", title, body)
    assert caught.value.code == code and caught.value.zh and caught.value.en


def test_a_syntax_error_names_where_it_is():
    with pytest.raises(Invalid) as caught:
        check_template(NoticeKind.DISPATCHED, "en", "t", "Case ${case_no} costs $5")
    assert "character 23" in caught.value.en and "第 23 个字符" in caught.value.zh


def test_dollars_and_a_multiline_body_are_fine():
    t = check_template(NoticeKind.DISPATCHED, "en", "$$ ${case_no}", "Case $case_no\nfee $$5")
    assert t.body == "Case $case_no\nfee $$5"


def test_an_unknown_locale_is_refused():
    with pytest.raises(Invalid) as caught:
        check_template(NoticeKind.DISPATCHED, "fr", "t", "b")
    assert caught.value.code == "unknown_locale"


# --- a template names only what its notice carries ---------------------------------------------

CHOSEN: dict[type, Enum] = {
    Priority: Priority.URGENT,
    Level: Level.STREET,
    Clock: Clock.ON_SITE,
    AssignmentRole: AssignmentRole.LEAD,
    PauseKind: PauseKind.HANG,
}


def _value(name: str, annotation: typing.Any) -> typing.Any:
    """A value for a payload field, every optional one filled."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if isinstance(annotation, types.UnionType | typing._UnionGenericAlias):  # X | None
        annotation = args[0]
    if annotation is str:
        return {"area_path": "YA/YA01/YA0101/YA0101-03", "category": "E0101"}.get(
            name, f"{name}-值"
        )
    if annotation is bool:
        return True
    if annotation is int:
        return 2
    if annotation is UUID:
        return uuid4()
    if annotation is AwareDatetime or annotation is datetime:
        return datetime(2026, 11, 22, 2, 0, tzinfo=UTC)
    if annotation is Location:
        return Location(address="桃园小区5号楼")
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return CHOSEN.get(annotation, next(iter(annotation)))
    return []


def notice_from_its_event(kind: NoticeKind) -> CaseNotice:
    """The notice the consumer's own reader makes of a full event of ``kind``."""
    [route] = [r for r in consumers.routes(lambda read: read) if kind.value == r.event.TYPE]
    fields = {n: _value(n, f.annotation) for n, f in route.event.model_fields.items()}
    event = new_event(route.event(**fields), case_id=uuid4(), producer="test")
    notice = route.handler(event)
    assert notice is not None and notice.kind is kind
    return notice


# What each placeholder reads from the notice (``ask`` reads the audience alone).
READS = {
    "urgent": ("priority",),
    "case_no": ("case_no",),
    "category": ("category",),
    "area": ("area_path",),
    "where": ("area_path",),
    "link": ("case_id",),
    "department": ("department_name",),
    "role": ("role",),
    "issue": ("description",),
    "clock": ("clock",),
    "deadline": ("due_at",),
    "ask": (),
    "level": ("level",),
    "result": ("result",),
    "note": ("note",),
    "nth": ("count",),
    "days": ("days",),
    "reason": ("reason",),
    "comment": ("comment",),
    "decision": ("approved",),
    "outcome": ("approved",),
    "pause": ("pause",),
}


def test_every_placeholder_says_what_it_reads():
    assert sorted(READS) == EVERY_PLACEHOLDER


@pytest.mark.parametrize("kind", list(NoticeKind))
def test_a_kinds_templates_name_only_what_its_own_event_carries(kind):
    """Fails when ``FIELDS`` lets a kind's template name something its event does not carry
    (it would read empty, or worse, as a default: "办理", "被驳回")."""
    notice = notice_from_its_event(kind)
    lacking = {
        name: attr for name in FIELDS[kind] for attr in READS[name] if getattr(notice, attr) is None
    }
    assert lacking == {}
    for locale in LOCALES:
        values = placeholder_values(
            notice, RecipientKind.DEPARTMENT, "/x", NO_NAMES, shipped(), locale
        )
        assert set(values) == set(FIELDS[kind])
        assert [name for name, v in values.items() if not v] == []


@pytest.mark.parametrize("kind", list(NoticeKind))
def test_a_full_event_renders_every_template_without_an_empty_fact(kind):
    m = domain.render(notice_from_its_event(kind), RecipientKind.SUPERVISOR)
    for text in (m.title_zh, m.body_zh, m.title_en, m.body_en):
        assert "$" not in text and "None" not in text, text


# --- rendering with replacements --------------------------------------------------------------


def test_a_replacement_is_rendered_and_the_other_locale_stays_shipped():
    replaced = MessageTemplate(
        NoticeKind.DISPATCHED, "zh-CN", "派单：${case_no}", "请${department}处理${issue}：${link}"
    )
    wording, refused = shipped().with_overrides([replaced])
    assert refused == [] and not wording.is_default(NoticeKind.DISPATCHED, "zh-CN")
    m = domain.render(DISPATCHED, RecipientKind.DEPARTMENT, department_id="cg", wording=wording)
    assert m.title_zh == "派单：YA20261122-0001"
    # values are put in as they are: a description's "${link}" is not a placeholder
    assert m.body_zh == "请榆安区城市管理局处理问题：井盖 ${link} 丢失 $$。：/assignments/a-1"
    default = domain.render(DISPATCHED, RecipientKind.DEPARTMENT, department_id="cg")
    assert (m.title_en, m.body_en, m.link) == (default.title_en, default.body_en, default.link)
    assert m.title_zh != default.title_zh


def test_a_stored_template_this_release_refuses_is_reported_and_the_shipped_one_stands():
    stale = MessageTemplate(NoticeKind.DISPATCHED, "en", "t", "${gone}")
    wording, refused = shipped().with_overrides([stale])
    assert [(t, e.code) for t, e in refused] == [(stale, "unknown_placeholder")]
    assert wording.is_default(NoticeKind.DISPATCHED, "en")
    assert domain.render(DISPATCHED, RecipientKind.SUPERVISOR, wording=wording) == domain.render(
        DISPATCHED, RecipientKind.SUPERVISOR
    )
