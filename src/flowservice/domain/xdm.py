"""XDM-style dataset schemas: the subset of JSON Schema that datasets are validated against.

A schema is posted as `{"title", "type": "object", "properties", "required"}`. `parse_schema` checks
it (a clear error names the offending property) and flattens it into `Field`s, one per leaf, with
the path that locates it in a record. Promotion validates records against those leaves.

Supported: types string, integer, number, boolean, object (nested), array (of scalars); formats
date, date-time, email, uri; `required`, `enum`, `minimum`, `maximum`, `maxLength`, `pattern`.
A leaf counts as required when it and every object above it are listed in their parents' `required`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from flowservice.errors import InvalidRequest

Scalar = Literal["string", "integer", "number", "boolean"]
SCALARS: tuple[Scalar, ...] = ("string", "integer", "number", "boolean")
FORMATS = ("date", "date-time", "email", "uri")
KEYWORDS = {
    "type",
    "title",
    "description",
    "properties",
    "required",
    "enum",
    "minimum",
    "maximum",
    "maxLength",
    "pattern",
    "format",
    "items",
    "$id",
    "$schema",
    "meta:xdmType",
    "default",
    "examples",
    "additionalProperties",
    "meta:extensible",
    "meta:abstract",
    "version",
    "meta:class",
    "allOf",
    "definitions",
}
MAX_DEPTH = 10
MAX_FIELDS = 2_000


@dataclass(frozen=True, slots=True)
class Field:
    """One leaf of a schema: where it sits in a record and what its values must be."""

    path: tuple[str, ...]
    type: Scalar
    array: bool = False  # a list of `type` values
    format: str | None = None
    required: bool = False
    enum: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None
    pattern: str | None = None

    @property
    def name(self) -> str:
        return ".".join(self.path)


@dataclass(frozen=True, slots=True)
class Schema:
    title: str
    fields: tuple[Field, ...]
    document: dict[str, Any]

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)


def parse_schema(document: Any) -> Schema:
    if not isinstance(document, dict):
        raise _bad("", "a schema must be a JSON object")
    if document.get("type") != "object":
        raise _bad("type", 'a dataset schema must have "type": "object"')
    title = document.get("title")
    if not isinstance(title, str) or not title.strip():
        raise _bad("title", "a schema needs a non-empty title")
    fields = list(_walk(document, (), required=True, depth=0))
    if not fields:
        raise _bad("properties", "a schema needs at least one property")
    if len(fields) > MAX_FIELDS:
        raise _bad("properties", f"a schema may have at most {MAX_FIELDS} fields")
    return Schema(title.strip(), tuple(fields), document)


def _walk(node: dict[str, Any], path: tuple[str, ...], *, required: bool, depth: int) -> Iterator[Field]:
    where = ".".join(path) or "schema"
    if depth > MAX_DEPTH:
        raise _bad(where, f"objects may nest at most {MAX_DEPTH} levels")
    properties = node.get("properties")
    if not isinstance(properties, dict):
        raise _bad(where, "an object needs a `properties` object")
    listed = node.get("required", [])
    if not isinstance(listed, list) or not all(isinstance(n, str) for n in listed):
        raise _bad(f"{where}.required", "`required` must be a list of property names")
    unknown = [n for n in listed if n not in properties]
    if unknown:
        raise _bad(f"{where}.required", f"`required` names '{unknown[0]}', which is not a property")
    for name, spec in properties.items():
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_@$][A-Za-z0-9_@$:-]{0,127}", name):
            raise _bad(where, f"'{str(name)[:40]}' is not a usable property name")
        child = (*path, name)
        if not isinstance(spec, dict):
            raise _bad(".".join(child), "a property must be a JSON object")
        extra = sorted(set(spec) - KEYWORDS)
        if extra:
            raise _bad(".".join(child), f"unsupported keyword '{extra[0]}'")
        kind = spec.get("type")
        if kind == "object":
            yield from _walk(spec, child, required=required and name in listed, depth=depth + 1)
        elif kind == "array":
            items = spec.get("items")
            if not isinstance(items, dict) or items.get("type") not in SCALARS:
                raise _bad(
                    ".".join(child), "arrays must have `items` of type string, integer, number or boolean"
                )
            yield _leaf(child, items, required=required and name in listed, array=True)
        elif kind in SCALARS:
            yield _leaf(child, spec, required=required and name in listed, array=False)
        else:
            raise _bad(
                ".".join(child), f"type {kind!r} is not supported; use {', '.join(SCALARS)}, object or array"
            )


def _leaf(path: tuple[str, ...], spec: dict[str, Any], *, required: bool, array: bool) -> Field:
    where = ".".join(path)
    kind: Scalar = spec["type"]
    fmt = spec.get("format")
    if fmt is not None and (kind != "string" or fmt not in FORMATS):
        raise _bad(where, f"format {fmt!r} is not supported here; string formats are {', '.join(FORMATS)}")
    enum = spec.get("enum")
    if enum is not None and (not isinstance(enum, list) or not enum):
        raise _bad(where, "`enum` must be a non-empty list")
    minimum, maximum = spec.get("minimum"), spec.get("maximum")
    for bound_name, bound in (("minimum", minimum), ("maximum", maximum)):
        if bound is not None and (kind not in ("integer", "number") or not _is_number(bound)):
            raise _bad(where, f"`{bound_name}` needs a numeric field and a number")
    max_length = spec.get("maxLength")
    if max_length is not None and (kind != "string" or not isinstance(max_length, int) or max_length < 0):
        raise _bad(where, "`maxLength` needs a string field and a whole number")
    pattern = spec.get("pattern")
    if pattern is not None:
        if kind != "string" or not isinstance(pattern, str):
            raise _bad(where, "`pattern` needs a string field")
        try:
            re.compile(pattern)
        except re.error as exc:
            raise _bad(where, f"`pattern` is not a regular expression: {exc}") from None
    return Field(
        path=path,
        type=kind,
        array=array,
        format=fmt,
        required=required,
        enum=tuple(enum) if enum is not None else None,
        minimum=float(minimum) if minimum is not None else None,
        maximum=float(maximum) if maximum is not None else None,
        max_length=max_length,
        pattern=pattern,
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _bad(where: str, message: str) -> InvalidRequest:
    field = f"properties.{where}" if where and where not in ("type", "title", "properties", "") else where
    return InvalidRequest("1000", f"Invalid schema at {where or 'the top'}: {message}.", field=field or None)
