"""Copying between a service's own objects and the shapes it shows: a response model filled
from an object's attributes of the same names, and a row dataclass filled from a database
record's columns of the same names.

What is not a plain copy stays at the call site, named: a label (中文), a URL, a nested
object, a lookup, a computation. A name that is neither found on the source nor given there
is an error — never a silent None or default — and so is a given name the target lacks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from pydantic import BaseModel

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

M = TypeVar("M", bound=BaseModel)
D = TypeVar("D", bound="DataclassInstance")


class Record(Protocol):
    """What is read from a row: an ``asyncpg.Record`` (or a plain dict)."""

    def items(self) -> Iterable[tuple[str, Any]]: ...


def fill(model: type[M], source: object, /, **derived: object) -> M:
    """``model`` with each field taken from ``source``'s attribute of the same name (a
    property counts), except the fields given in ``derived``, which win. The values are
    validated as the model's constructor would (a tuple becomes a list, a value its enum).

    Not ``model_validate(source, from_attributes=True)``: that takes a field with a default
    from the default when the attribute is missing, and takes no overrides."""
    unknown = derived.keys() - model.model_fields.keys()
    if unknown:
        raise TypeError(f"{model.__name__} has no field {', '.join(sorted(unknown))}")
    data = dict(derived)
    missing = []
    for name in model.model_fields.keys() - derived.keys():
        try:
            data[name] = getattr(source, name)
        except AttributeError:
            missing.append(name)
    if missing:
        raise AttributeError(
            f"{type(source).__name__} has no {', '.join(sorted(missing))} for {model.__name__}:"
            " give it explicitly"
        )
    return model.model_validate(data)


def from_row(cls: type[D], record: Record, /, **convert: Callable[[Any], object]) -> D:
    """The dataclass ``cls`` from ``record``'s columns of the same names; ``convert`` turns a
    column's value into the field's type (``status=CaseStatus``, ``departments=list``) and
    is not applied to NULL. Every field must come back as a column; other columns are
    ignored."""
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = convert.keys() - set(names)
    if unknown:
        raise TypeError(f"{cls.__name__} has no field {', '.join(sorted(unknown))}")
    columns = dict(record.items())
    missing = [n for n in names if n not in columns]
    if missing:
        raise KeyError(f"no column {', '.join(missing)} for {cls.__name__}")
    data = {
        n: convert[n](columns[n]) if n in convert and columns[n] is not None else columns[n]
        for n in names
    }
    return cls(**data)
