"""shared.dto: a response model from an object's attributes, a row dataclass from a record."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

import pytest
from pydantic import BaseModel, Field, ValidationError

from shared.dto import fill, from_row


class Colour(StrEnum):
    RED = "red"
    GREEN = "green"


@dataclass(frozen=True)
class Thing:
    id: int
    name: str
    colour: Colour
    tags: tuple[str, ...]
    note: str | None = None

    @property
    def shout(self) -> str:
        return self.name.upper()


class ThingOut(BaseModel):
    id: int
    name: str
    colour: Colour
    colour_label: str
    tags: list[str]
    note: str | None = None


RED = Thing(1, "lamp", Colour.RED, ("a", "b"), "broken")
LABELS = {Colour.RED: "红", Colour.GREEN: "绿"}


def test_fill_copies_same_names_and_takes_derived_ones():
    out = fill(ThingOut, RED, colour_label=LABELS[RED.colour])
    assert out == ThingOut(
        id=1, name="lamp", colour=Colour.RED, colour_label="红", tags=["a", "b"], note="broken"
    )
    assert out.model_dump_json() == (
        '{"id":1,"name":"lamp","colour":"red","colour_label":"红","tags":["a","b"],"note":"broken"}'
    )


def test_fill_derived_fields_override_the_source():
    out = fill(ThingOut, RED, colour_label="红", name="desk lamp", note=None)
    assert (out.name, out.note) == ("desk lamp", None)


def test_fill_reads_properties():
    class ShoutOut(BaseModel):
        shout: str

    assert fill(ShoutOut, RED).shout == "LAMP"


def test_fill_missing_attribute_is_an_error_not_none():
    with pytest.raises(AttributeError, match="colour_label"):
        fill(ThingOut, RED)


def test_fill_missing_attribute_is_an_error_even_with_a_default():
    class WithDefault(BaseModel):
        id: int
        locked_until: datetime | None = None

    with pytest.raises(AttributeError, match="locked_until"):
        fill(WithDefault, RED)


def test_fill_unknown_derived_field_is_an_error():
    with pytest.raises(TypeError, match="colour_lable"):
        fill(ThingOut, RED, colour_label="红", colour_lable="红")


def test_fill_validates_derived_values():
    with pytest.raises(ValidationError):
        fill(ThingOut, RED, colour_label=None)


def test_fill_keeps_serialization_aliases():
    class Period(BaseModel):
        start: datetime = Field(serialization_alias="from")

    @dataclass
    class Source:
        start: datetime

    at = datetime(2026, 1, 2, tzinfo=UTC)
    out = fill(Period, Source(at))
    assert out.model_dump(by_alias=True) == {"from": at}


@dataclass(frozen=True)
class CaseRow:
    id: int
    status: Colour
    departments: list[str]
    closed_at: datetime | None
    overdue: bool = False
    seen: list[str] = field(default_factory=list)


def test_from_row_converts_declared_columns():
    r = from_row(
        CaseRow,
        {
            "id": 7,
            "status": "green",
            "departments": ("d1",),
            "closed_at": None,
            "overdue": True,
            "seen": [],
        },
        status=Colour,
        departments=list,
    )
    assert r == CaseRow(7, Colour.GREEN, ["d1"], None, True, [])
    assert type(r.status) is Colour and type(r.departments) is list


def test_from_row_leaves_null_alone_and_ignores_other_columns():
    r = from_row(
        CaseRow,
        {
            "id": 7,
            "status": "red",
            "departments": [],
            "closed_at": None,
            "overdue": False,
            "seen": [],
            "extra": 1,
        },
        status=Colour,
        closed_at=datetime.fromisoformat,
    )
    assert r.closed_at is None


def test_from_row_missing_column_is_an_error_even_with_a_default():
    with pytest.raises(KeyError, match="overdue"):
        from_row(
            CaseRow, {"id": 7, "status": "red", "departments": [], "closed_at": None, "seen": []}
        )


def test_from_row_conversion_for_an_unknown_field_is_an_error():
    with pytest.raises(TypeError, match="colour"):
        from_row(
            CaseRow,
            {"id": 7, "status": "red", "departments": [], "closed_at": None},
            colour=Colour,
        )
