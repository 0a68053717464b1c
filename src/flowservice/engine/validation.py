"""Vectorized conversion and validation of records against a dataset schema (Arrow compute).

Every check is a boolean mask over a batch; Python objects are made only for the rows that fail,
to describe them. Each leaf of the schema (domain/xdm.Field) goes through:

1. conversion to the field's Arrow type (strings from CSV, native values from JSON or Parquet):
   a value that is present but cannot become the type fails with MAPPER-3700-400;
2. `required`: a missing value fails with INGEST-1555-400;
3. constraints (format, enum, minimum/maximum, maxLength, pattern) fail with INGEST-1556-400,
   flowservice's own code for "the value breaks its schema" (Adobe documents none for it).

Types: integer → int64, number → float64, boolean → bool, string → string, except format
`date` → date32 and `date-time` → timestamp[us, UTC]; arrays are lists of those; objects nest
as structs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from flowservice.domain.xdm import Field, Schema

CONVERSION = "MAPPER-3700-400"
REQUIRED = "INGEST-1555-400"
CONSTRAINT = "INGEST-1556-400"

_INTEGER = r"^\s*[+-]?\d{1,18}\s*$"
_NUMBER = r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d{1,3})?\s*$"
_TRUE = ("true", "1", "yes", "y", "t")
_FALSE = ("false", "0", "no", "n", "f")
_DATE = r"^\d{4}-\d{2}-\d{2}$"
_DATETIME = (
    r"^\d{4}-\d{2}-\d{2}[T ]([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,9})?)?(Z|[+-]([01]\d|2[0-3]):?[0-5]\d)?$"
)
_HAS_ZONE = r"(Z|[+-]\d{2}:?\d{2})$"
_EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
_URI = r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$"


@dataclass(frozen=True, slots=True)
class Failure:
    """Rows of a batch that fail one check of one field."""

    rows: pa.Array  # boolean, one per row; null counts as false
    code: str
    field: str
    message: str


def arrow_type(field: Field) -> pa.DataType:
    if field.format == "date":
        scalar: pa.DataType = pa.date32()
    elif field.format == "date-time":
        scalar = pa.timestamp("us", tz="UTC")
    else:
        scalar = {
            "string": pa.string(),
            "integer": pa.int64(),
            "number": pa.float64(),
            "boolean": pa.bool_(),
        }[field.type]
    return pa.list_(scalar) if field.array else scalar


def arrow_schema(schema: Schema) -> pa.Schema:
    """The dataset's Parquet layout: objects become structs, in the schema's property order."""
    return pa.schema(_struct_fields(schema.fields, ()))


def _struct_fields(fields: Sequence[Field], prefix: tuple[str, ...]) -> list[pa.Field]:
    result: list[pa.Field] = []
    seen: list[str] = []
    for f in fields:
        if f.path[: len(prefix)] != prefix:
            continue
        name = f.path[len(prefix)]
        if name in seen:
            continue
        seen.append(name)
        if len(f.path) == len(prefix) + 1:
            result.append(pa.field(name, arrow_type(f), nullable=True))
        else:
            children = _struct_fields(fields, (*prefix, name))
            result.append(pa.field(name, pa.struct(children), nullable=True))
    return result


def convert(field: Field, values: pa.Array) -> tuple[pa.Array, list[Failure]]:
    """The values as the field's type, and the rows that fail conversion, `required` or a constraint."""
    values = _plain(values)
    present = pc.is_valid(values)
    if pa.types.is_string(values.type):  # "" is as absent as null; lengths are cheap, trimming is not
        present = pc.fill_null(pc.greater(pc.binary_length(values), 0), False)
    if field.array:
        converted, bad = _convert_list(field, values)
    else:
        converted, bad = _convert_scalar(field, values)
    failures: list[Failure] = []
    if bad is not None:
        failures.append(Failure(bad, CONVERSION, field.name, _conversion_message(field)))
        converted = pc.if_else(bad, pa.nulls(len(converted), converted.type), converted)
    if field.required:
        failures.append(
            Failure(pc.invert(present), REQUIRED, field.name, f"required field {field.name} is missing")
        )
    failures += [
        Failure(pc.and_(f.rows, present), f.code, f.field, f.message) for f in _constraints(field, converted)
    ]  # an absent value breaks no constraint (`required` speaks for it)
    return converted, failures


def _plain(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    if pa.types.is_large_string(values.type):
        values = values.cast(pa.string())
    return values


def _convert_scalar(field: Field, values: pa.Array) -> tuple[pa.Array, pa.Array | None]:
    target = arrow_type(field)
    if values.type == target:
        return values, None
    if pa.types.is_null(values.type):
        return pa.nulls(len(values), target), None
    text = pa.types.is_string(values.type)
    if text and (field.type != "string" or field.format in ("date", "date-time")):
        fast = _strict_cast(field, values, target)
        if fast is not None:
            return fast, None
    if field.format in ("date", "date-time"):
        return _temporal(field, values)
    if field.type == "string":
        if pa.types.is_nested(values.type):
            return pa.nulls(len(values), target), pc.is_valid(values)
        return values.cast(pa.string()), None
    if field.type == "integer":
        if text:
            return _parsed(values, _INTEGER, pa.int64())
        if pa.types.is_integer(values.type):
            return values.cast(pa.int64()), None
        if pa.types.is_floating(values.type):
            whole = pc.and_(pc.equal(values, pc.floor(values)), pc.less_equal(pc.abs(values), 9.0e18))
            bad = pc.and_(pc.is_valid(values), pc.invert(pc.fill_null(whole, False)))
            return pc.if_else(bad, None, values).cast(pa.int64()), bad
    if field.type == "number":
        if text:
            return _parsed(values, _NUMBER, pa.float64())
        if (
            pa.types.is_integer(values.type)
            or pa.types.is_floating(values.type)
            or pa.types.is_decimal(values.type)
        ):
            return values.cast(pa.float64()), None
    if field.type == "boolean":
        if text:
            lowered = pc.utf8_lower(pc.utf8_trim_whitespace(values))
            truthy = pc.is_in(lowered, pa.array(_TRUE))
            falsy = pc.is_in(lowered, pa.array(_FALSE))
            blank = pc.equal(lowered, "")
            bad = pc.and_(pc.is_valid(values), pc.invert(pc.or_(pc.or_(truthy, falsy), blank)))
            result = pc.if_else(truthy, True, pc.if_else(falsy, False, pa.nulls(len(values), pa.bool_())))
            return result, bad
        if pa.types.is_integer(values.type):
            bad = pc.and_(pc.is_valid(values), pc.invert(pc.is_in(values, pa.array([0, 1]))))
            return pc.if_else(bad, None, pc.not_equal(values, 0)), bad
    # a value of a kind that can never be this type (a struct for a number, a number for a boolean, …)
    return pa.nulls(len(values), target), pc.is_valid(values)


def _strict_cast(field: Field, values: pa.Array, target: pa.DataType) -> pa.Array | None:
    """Arrow's own cast of a whole column, when every value is already well formed (the common case).

    Arrow's parsers are strict (no spaces, no "+3", no 2023-02-29), so a column they accept is one
    the row-by-row checks would accept too; any refusal sends the column down the careful path,
    which finds the rows at fault. The careful path never accepts infinity or NaN as numbers.
    """
    try:
        if field.format == "date-time":
            # a failing zoned cast of naive text costs 30x a successful one: pick by the first value
            first = next((v for v in values.slice(0, 1000).to_pylist() if v), "")
            if re.search(_HAS_ZONE, first):
                return values.cast(target)  # zoned: "…Z", "…+02:00"
            return values.cast(pa.timestamp("us")).cast(target)  # naive: read as UTC
        converted = values.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if field.type == "number" and pc.any(pc.invert(pc.is_finite(converted))).as_py():
        return None  # "inf" and "nan" parse, but are not numbers a schema accepts
    return converted


def _parsed(values: pa.Array, pattern: str, target: pa.DataType) -> tuple[pa.Array, pa.Array]:
    blank = pc.equal(pc.utf8_trim_whitespace(values), "")
    ok = pc.match_substring_regex(values, pattern)
    bad = pc.and_(pc.is_valid(values), pc.invert(pc.or_(ok, blank)))
    cleaned = pc.if_else(ok, pc.utf8_trim_whitespace(values), pa.nulls(len(values), pa.string()))
    if pa.types.is_integer(target):
        cleaned = pc.replace_substring_regex(cleaned, r"^\+", "")
    return cleaned.cast(target), bad


def _temporal(field: Field, values: pa.Array) -> tuple[pa.Array, pa.Array | None]:
    target = arrow_type(field)
    if pa.types.is_timestamp(values.type) or pa.types.is_date(values.type):
        if pa.types.is_timestamp(values.type) and values.type.tz is None and field.format == "date-time":
            values = pc.assume_timezone(values, "UTC")
        return values.cast(target), None
    if not pa.types.is_string(values.type):
        return pa.nulls(len(values), target), pc.is_valid(values)
    trimmed = pc.utf8_trim_whitespace(values)
    blank = pc.equal(trimmed, "")
    day = pc.utf8_slice_codeunits(trimmed, 0, 10)
    # strptime rolls 2023-02-29 over to March 1st: a real date is one that prints back as it was written
    parsed_day = pc.strptime(day, format="%Y-%m-%d", unit="s", error_is_null=True)
    calendar = pc.fill_null(pc.equal(pc.strftime(parsed_day, format="%Y-%m-%d"), day), False)
    if field.format == "date":
        ok = pc.and_(pc.match_substring_regex(trimmed, _DATE), calendar)
        cleaned = pc.if_else(ok, trimmed, pa.nulls(len(values), pa.string()))
        parsed = pc.strptime(cleaned, format="%Y-%m-%d", unit="s", error_is_null=True).cast(pa.date32())
    else:
        ok = pc.and_(pc.match_substring_regex(trimmed, _DATETIME), calendar)
        cleaned = pc.if_else(
            ok,
            pc.replace_substring(trimmed, " ", "T", max_replacements=1),
            pa.nulls(len(values), pa.string()),
        )
        zoned = pc.if_else(
            pc.match_substring_regex(cleaned, _HAS_ZONE),
            cleaned,
            pc.binary_join_element_wise(cleaned, "Z", ""),
        )
        parsed = zoned.cast(target)  # every remaining value is well formed: the cast cannot fail
    bad = pc.and_(pc.is_valid(values), pc.invert(pc.or_(ok, blank)))
    return parsed, bad


def _convert_list(field: Field, values: pa.Array) -> tuple[pa.Array, pa.Array | None]:
    target = arrow_type(field)
    if pa.types.is_list(values.type) or pa.types.is_large_list(values.type):
        element = Field(field.path, field.type, False, field.format)
        flat, bad_elements = _convert_scalar(element, pc.list_flatten(values))
        offsets = values.offsets
        rebuilt = pa.ListArray.from_arrays(offsets, flat, mask=pc.is_null(values))
        if bad_elements is None:
            return rebuilt.cast(target), None
        parents = pc.list_parent_indices(values)
        failing = pc.filter(parents, bad_elements)
        bad = pc.is_in(pa.array(range(len(values)), pa.int64()), failing.cast(pa.int64()))
        return rebuilt.cast(target), bad
    if pa.types.is_string(values.type):
        # CSV cells can hold a JSON array: parsed row by row (the slow path, only for array fields)
        parsed: list[Any] = []
        bad_rows: list[bool] = []
        for cell in values.to_pylist():
            items, broken = _json_list(cell)
            parsed.append(items)
            bad_rows.append(broken)
        as_lists = (
            pa.array(parsed, type=pa.list_(pa.string()))
            if any(p for p in parsed)
            else pa.nulls(len(values), pa.list_(pa.string()))
        )
        rebuilt, bad = _convert_list(field, as_lists)
        parse_bad = pa.array(bad_rows, pa.bool_())
        return rebuilt, parse_bad if bad is None else pc.or_(bad, parse_bad)
    return pa.nulls(len(values), target), pc.is_valid(values)


def _json_list(cell: str | None) -> tuple[list[str | None] | None, bool]:
    if cell is None or not cell.strip():
        return None, False
    try:
        items = json.loads(cell)
    except ValueError:
        return None, True
    if not isinstance(items, list) or any(isinstance(i, dict | list) for i in items):
        return None, True
    return [None if i is None else (json.dumps(i) if isinstance(i, bool) else str(i)) for i in items], False


def _constraints(field: Field, values: pa.Array) -> list[Failure]:
    """Rows whose (converted, present) value breaks a constraint; arrays are checked element by element."""
    if field.array:
        flat = pc.list_flatten(values)
        parents = pc.list_parent_indices(values)
        element = Field(
            field.path,
            field.type,
            False,
            field.format,
            False,
            field.enum,
            field.minimum,
            field.maximum,
            field.max_length,
            field.pattern,
        )
        failures = []
        for failure in _constraints(element, flat):
            failing = pc.filter(parents, pc.fill_null(failure.rows, False)).cast(pa.int64())
            rows = pc.is_in(pa.array(range(len(values)), pa.int64()), failing)
            failures.append(Failure(rows, failure.code, failure.field, failure.message))
        return failures
    checks: list[tuple[pa.Array, str]] = []
    name = field.name
    if field.format == "email":
        checks.append(
            (pc.invert(pc.match_substring_regex(values, _EMAIL)), f"{name} is not an email address")
        )
    if field.format == "uri":
        checks.append((pc.invert(pc.match_substring_regex(values, _URI)), f"{name} is not a URI"))
    if field.enum is not None:
        allowed = pa.array(list(field.enum)).cast(values.type, safe=False) if _castable(field) else None
        if allowed is not None:
            shown = ", ".join(map(str, field.enum[:10]))
            checks.append((pc.invert(pc.is_in(values, allowed)), f"{name} must be one of {shown}"))
    if field.minimum is not None:
        checks.append((pc.less(values, field.minimum), f"{name} must be >= {field.minimum:g}"))
    if field.maximum is not None:
        checks.append((pc.greater(values, field.maximum), f"{name} must be <= {field.maximum:g}"))
    if field.max_length is not None:
        checks.append(
            (
                pc.greater(pc.utf8_length(values), field.max_length),
                f"{name} is longer than {field.max_length}",
            )
        )
    if field.pattern is not None:
        checks.append((pc.invert(_matches(values, field.pattern)), f"{name} does not match {field.pattern}"))
    return [Failure(pc.fill_null(mask, False), CONSTRAINT, name, message) for mask, message in checks]


def _castable(field: Field) -> bool:
    kinds: dict[str, type | tuple[type, ...]] = {
        "string": str,
        "integer": int,
        "number": (int, float),
        "boolean": bool,
    }
    expected = kinds[field.type]
    return field.enum is not None and all(isinstance(v, expected) for v in field.enum)


def _matches(values: pa.Array, pattern: str) -> pa.Array:
    """JSON Schema patterns search unanchored; Arrow's RE2 does too. Patterns RE2 refuses (lookarounds,
    backreferences) fall back to Python's `re`, row by row, for the values that are present."""
    try:
        return pc.match_substring_regex(values, pattern)
    except pa.ArrowInvalid:
        compiled = re.compile(pattern)
        return pa.array(
            [None if v is None else bool(compiled.search(v)) for v in values.to_pylist()], pa.bool_()
        )


def _conversion_message(field: Field) -> str:
    wanted = {"date": "a date (YYYY-MM-DD)", "date-time": "an ISO 8601 date-time"}.get(
        field.format or "",
        {"integer": "an integer", "number": "a number", "boolean": "true or false", "string": "text"}[
            field.type
        ],
    )
    return f"{field.name} is not {'a list of ' if field.array else ''}{wanted}"


def assemble(schema: Schema, leaves: dict[str, pa.Array], length: int) -> pa.RecordBatch:
    """A batch in the dataset's nested layout from converted leaf arrays (absent leaves are null)."""
    target = arrow_schema(schema)
    columns = [_build(target.field(i), (target.field(i).name,), leaves, length) for i in range(len(target))]
    return pa.RecordBatch.from_arrays(columns, schema=target)


def _build(field: pa.Field, path: tuple[str, ...], leaves: dict[str, pa.Array], length: int) -> pa.Array:
    if pa.types.is_struct(field.type):
        children = [
            _build(field.type.field(i), (*path, field.type.field(i).name), leaves, length)
            for i in range(field.type.num_fields)
        ]
        # an object with no value in any of its leaves is itself absent, not an object of nulls
        any_present = None
        for child in children:
            valid = pc.is_valid(child)
            any_present = valid if any_present is None else pc.or_(any_present, valid)
        mask = pc.invert(any_present) if any_present is not None else None
        return pa.StructArray.from_arrays(children, fields=list(field.type), mask=mask)
    value = leaves.get(".".join(path))
    return value if value is not None else pa.nulls(length, field.type)


def summarize(failures: Iterable[Failure], length: int) -> tuple[pa.Array, dict[str, int]]:
    """The rows that fail any check, and per error code the number of rows failing it."""
    failing = pc.is_valid(pa.nulls(length, pa.bool_()))  # all false, without a Python list
    counts: dict[str, int] = {}
    per_code: dict[str, pa.Array] = {}
    for failure in failures:
        rows = pc.fill_null(failure.rows, False)
        failing = pc.or_(failing, rows)
        per_code[failure.code] = pc.or_(per_code[failure.code], rows) if failure.code in per_code else rows
    for code, rows in per_code.items():
        total = pc.sum(rows.cast(pa.int64())).as_py() or 0
        if total:
            counts[code] = total
    return failing, counts
