"""Static types of the expression language.

Types come from the facts schema (JSON Schema `type` and `format`), from
setting declarations, from derived-value declarations and from the function
library. The checker uses them to refuse comparisons that cannot be meant
(a date with a number) before any decision is made.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from engine.core.i18n import Msg

Kind = Literal[
    "string",
    "integer",
    "number",
    "boolean",
    "date",
    "datetime",
    "list",
    "record",
    "null",
    "any",
    "dataset",
]

SCALAR_KINDS: frozenset[str] = frozenset(
    {"string", "integer", "number", "boolean", "date", "datetime"}
)
NUMERIC_KINDS: frozenset[str] = frozenset({"integer", "number"})
ORDERED_KINDS: frozenset[str] = frozenset({"integer", "number", "date", "datetime"})


@dataclass(frozen=True, slots=True)
class Type:
    kind: Kind
    nullable: bool = False
    item: Type | None = None
    # None means an open record whose fields are not known (type `any` inside).
    # For a dataset, `item` is the type of one entry.
    fields: Mapping[str, Type] | None = None
    enum: tuple[Any, ...] | None = None

    def with_nullable(self, nullable: bool = True) -> Type:
        return self if self.nullable == nullable else replace(self, nullable=nullable)

    def describe(self) -> str:
        if self.kind == "any":
            return "any"
        if self.kind == "list":
            inner = self.item.describe() if self.item else "any"
            text: str = Msg("list of {item}", item=inner)
        else:
            text = self.kind  # the language's own names (integer, date, ...) stay as written
        return Msg("{type} or null", type=text) if self.nullable and self.kind != "null" else text

    def field(self, name: str) -> Type | None:
        """Type of `self.name`, or None when the record has no such field."""
        if self.kind == "any":
            return ANY
        if self.kind != "record":
            return None
        if self.fields is None:
            return ANY
        found = self.fields.get(name)
        if found is None:
            return None
        return found.with_nullable() if self.nullable else found


ANY = Type("any", nullable=True)
# The type of a value that could not be checked (its error is reported where it is): `any`,
# but told apart from a declared `any` so that its uses bring no follow-on errors.
UNKNOWN = Type("any", nullable=True, fields={})
NULL = Type("null", nullable=True)
STRING = Type("string")
INTEGER = Type("integer")
NUMBER = Type("number")
BOOLEAN = Type("boolean")
DATE = Type("date")
DATETIME = Type("datetime")


def list_of(item: Type) -> Type:
    return Type("list", item=item)


def record(fields: Mapping[str, Type] | None) -> Type:
    return Type("record", fields=dict(fields) if fields is not None else None)


def dataset_of(entry: Type) -> Type:
    return Type("dataset", item=entry)


def comparable(a: Type, b: Type) -> bool:
    """Whether `a == b` can ever be true (null and any compare with everything)."""
    if "any" in (a.kind, b.kind) or "null" in (a.kind, b.kind):
        return True
    if a.kind in NUMERIC_KINDS and b.kind in NUMERIC_KINDS:
        return True
    if a.kind == "list" and b.kind == "list":
        return True
    return a.kind == b.kind


def orderable(a: Type, b: Type) -> bool:
    """Whether `a < b` is meaningful: numbers with numbers, dates with dates."""
    if a.kind == "any" or b.kind == "any":
        return True
    if a.kind in NUMERIC_KINDS and b.kind in NUMERIC_KINDS:
        return True
    return a.kind == b.kind and a.kind in ("date", "datetime")


def join(a: Type, b: Type) -> Type:
    """The type of a value that is either `a` or `b` (used for if() and list literals)."""
    if a.kind == "null":
        return b.with_nullable()
    if b.kind == "null":
        return a.with_nullable()
    nullable = a.nullable or b.nullable
    if a.kind == b.kind:
        return a.with_nullable(nullable) if a.enum is None else Type(a.kind, nullable)
    if a.kind in NUMERIC_KINDS and b.kind in NUMERIC_KINDS:
        return Type("number", nullable)
    return ANY
