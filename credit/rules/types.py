"""Value types of the rule language and the feature schema rules are checked against.

Types: `number` (int or Decimal, never float), `string`, `bool`, `date`, `list[<item>]`; `null` is
the type of the literal `null` and fits anywhere. The schema maps dotted field names
(`applicant.age`) to a type and a one-line description shown to the people who write rules.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

SCALARS = ("number", "string", "bool", "date")


@dataclass(frozen=True, slots=True)
class Type:
    kind: str  # number | string | bool | date | list | null
    item: Type | None = None  # lists only; None = items of any type (an empty list literal)

    def __str__(self) -> str:
        if self.kind == "list":
            return f"list[{self.item}]" if self.item is not None else "list"
        return self.kind


NUMBER = Type("number")
STRING = Type("string")
BOOL = Type("bool")
DATE = Type("date")
NULL = Type("null")
LIST = Type("list")


def list_of(item: Type | None) -> Type:
    return Type("list", item)


def parse_type(text: str) -> Type:
    """`"number"`, `"list[string]"`, ... -> Type; ValueError on anything else."""
    text = text.strip()
    if text in SCALARS:
        return Type(text)
    if text == "list":
        return LIST
    if text.startswith("list[") and text.endswith("]"):
        inner = text[5:-1].strip()
        if inner in SCALARS:
            return list_of(Type(inner))
    raise ValueError(
        f"unknown feature type {text!r}: use one of {', '.join(SCALARS)}, list or list[<type>]"
    )


def unify(a: Type, b: Type) -> Type | None:
    """The type both fit in, or None when they do not mix (null fits anything)."""
    if a.kind == "null":
        return b
    if b.kind == "null":
        return a
    if a.kind != b.kind:
        return None
    if a.kind != "list":
        return a
    if a.item is None:
        return b
    if b.item is None:
        return a
    item = unify(a.item, b.item)
    return None if item is None else list_of(item)


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    type: Type
    description: str = ""


class FeatureSchema(Mapping[str, Field]):
    """An immutable, hashable name -> Field mapping. Names are dotted lower-case identifiers."""

    def __init__(self, fields: Iterable[Field]) -> None:
        items: dict[str, Field] = {}
        for f in fields:
            parts = f.name.split(".")
            if not all(p.isidentifier() and p.isascii() for p in parts):
                raise ValueError(f"bad feature name {f.name!r}: dotted ASCII identifiers only")
            if f.name in items:
                raise ValueError(f"feature {f.name!r} declared twice")
            items[f.name] = f
        self._fields = items
        self._hash = hash(tuple(items.values()))

    @classmethod
    def from_types(cls, types: Mapping[str, str]) -> FeatureSchema:
        """`{"applicant.age": "number", "lists.hits": "list[string]"}` -> schema."""
        return cls(Field(name, parse_type(t)) for name, t in types.items())

    def __getitem__(self, name: str) -> Field:
        return self._fields[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FeatureSchema):
            return NotImplemented
        return self._fields == other._fields

    def suggest(self, name: str) -> str | None:
        """The closest declared name, for "did you mean ...?" (None when nothing is close)."""
        matches = difflib.get_close_matches(name, self._fields, n=1, cutoff=0.75)
        return matches[0] if matches else None

    def under(self, prefix: str) -> list[str]:
        """Declared names that start with `prefix.` (to explain `applicant` is a group)."""
        return [n for n in self._fields if n.startswith(prefix + ".")]
