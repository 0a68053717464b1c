"""Data Prep expressions (domain/expressions.py) evaluated over a record batch with Arrow compute.

Promotion maps every batch of source records through the mapping set; a Python loop per row would
make that the slowest step of a run, so each AST node becomes one or a few Arrow kernels over whole
columns. Row-level problems (`to_integer("abc")`) never raise: they become a boolean mask of failed
rows and a short reason, so promotion can reject exactly those records (MAPPER-3700-400) and keep
the rest under partial ingestion. Rows fail only where a value cannot become what an operation needs
(`to_*` conversions, text that is not a number in arithmetic or not true/false in a condition, a
record where text is expected), on int64 overflow and on division by zero; everything else follows
SQL-like null rules. Only a hand-built AST the parser would have refused raises (ValueError).

Semantics:
- Nulls propagate through operators and functions, except concat (a null is ""), coalesce, iif
  (a null condition takes the else branch), is_empty (null is empty) and `and`/`or`, which use
  Kleene logic (`false and null` is false).
- A failure counts only where its value was needed: `iif(c, to_integer(x), 0)` does not fail rows
  where `c` is false, coalesce ignores failures in arguments after the first non-null one, and the
  right side of `and`/`or` matters only where the left side does not decide.
- Numbers: integers are int64, everything else numeric is float64 (to_decimal gives float64, the
  Arrow type of XDM `number`). `+ - *` on two integers stay integers and fail a row on int64
  overflow instead of wrapping; `/` always divides as float64; dividing by zero fails the row.
  Strings in arithmetic are read as decimal numbers (`" 1.5 "`, `"2e3"`), and a row whose string is
  not one fails.
- Comparisons: numbers with numbers numerically; a number with a string numerically where the
  string is numeric and as text otherwise; strings as text (code points); other mixes as Arrow
  compares them, else as text.
- to_integer reads strings of digits (sign and surrounding spaces allowed; "1.5" fails) and
  truncates floats toward zero. to_timestamp gives timestamp[us, UTC]; a time without an offset is
  taken as UTC.
- Text functions cast numbers, booleans and times to their Arrow text form first.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc

from flowservice.domain.expressions import (
    Binary,
    Call,
    Constant,
    Expr,
    FieldRef,
    Unary,
    render,
    strftime_format,
)

INT_MIN, INT_MAX = -(2**63), 2**63 - 1
TIMESTAMP = pa.timestamp("us", tz="UTC")

# RE2 (Arrow's regex engine) runs in linear time: no input can make these backtrack.
_NUMBER = r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d{1,3})?\s*$"
_INTEGER = r"^\s*[+-]?\d{1,38}\s*$"
_FRACTION = r":\d{2}[.,](?P<fraction>\d{1,9})"
_WIDE_INTEGER = pa.decimal128(38, 0)
_ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError)

Failures = tuple[tuple[pa.BooleanArray, str], ...]  # (rows, reason); masks hold no nulls


@dataclass(frozen=True, slots=True)
class Evaluated:
    values: pa.Array  # one value per row (nulls allowed); null where the row failed
    failed: pa.BooleanArray | None  # rows where evaluation failed, None when none did
    reason: str | None  # one text for all failed rows: "to_decimal(a): the text is not a number"


def evaluate(expr: Expr, batch: pa.RecordBatch) -> Evaluated:
    out = _eval(expr, batch)
    if not out.failures:
        return Evaluated(out.values, None, None)
    failed = functools.reduce(pc.or_, [mask for mask, _ in out.failures])
    reason = "; ".join(reason for _, reason in out.failures)
    return Evaluated(_null_where(out.values, failed), failed, reason)


def column(batch: pa.RecordBatch, path: str) -> pa.Array:
    """A source field by name, or by a dotted path into struct columns; all nulls when it is absent.

    A name that exists as written wins over a path (a CSV header may contain dots). Absence is not
    an error: a file may lack an optional column, and the dataset schema decides what is required.
    """
    found = _lookup(batch, tuple(path.split(".")))
    return pa.nulls(batch.num_rows) if found is None else found


def constant(value: object, length: int) -> pa.Array:
    """`length` copies of a literal: int → int64, float → float64, str → string, None → null type."""
    if value is None:
        return pa.nulls(length)
    if isinstance(value, bool):
        scalar = pa.scalar(value, pa.bool_())
    elif isinstance(value, int):
        scalar = pa.scalar(value, pa.int64())
    elif isinstance(value, float):
        scalar = pa.scalar(value, pa.float64())
    elif isinstance(value, str):
        scalar = pa.scalar(value, pa.string())
    else:
        scalar = pa.scalar(value)
    return pa.repeat(scalar, length)


# --- the evaluator ---


@dataclass(frozen=True, slots=True)
class _Out:
    values: pa.Array
    failures: Failures = ()


def _eval(expr: Expr, batch: pa.RecordBatch) -> _Out:
    if isinstance(expr, Constant):
        return _Out(constant(expr.value, batch.num_rows))
    if isinstance(expr, FieldRef):
        found = _lookup(batch, expr.segments)
        return _Out(pa.nulls(batch.num_rows) if found is None else _plain(found))
    if isinstance(expr, Call):
        return _FUNCTIONS[expr.name](expr, batch)
    if isinstance(expr, Unary):
        return _unary(expr, batch)
    return _binary(expr, batch)


def _lookup(batch: pa.RecordBatch, segments: tuple[str, ...]) -> pa.Array | None:
    names = batch.schema.names
    joined = ".".join(segments)
    if joined in names:
        return batch.column(names.index(joined))
    if segments[0] not in names:
        return None
    found = batch.column(names.index(segments[0]))
    for segment in segments[1:]:
        kind = found.type
        if not pa.types.is_struct(kind):
            return None
        indexes = [i for i in range(kind.num_fields) if kind.field(i).name == segment]
        if not indexes:
            return None
        # struct_field, unlike StructArray.field(), applies the parent's nulls to the child
        found = pc.struct_field(found, [indexes[0]])
    return found


def _plain(values: pa.Array) -> pa.Array:
    """Dictionary-encoded and large/view strings as plain strings, so kernels see one text type."""
    kind = values.type
    if pa.types.is_dictionary(kind):
        return _plain(values.dictionary_decode())
    if pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return pc.cast(values, pa.string())
    return values


def _label(expr: Expr) -> str:
    text = render(expr)
    return text if len(text) <= 60 else text[:57] + "..."


def _kind(kind: pa.DataType) -> str:
    if pa.types.is_null(kind):
        return "null"
    if pa.types.is_integer(kind):
        return "integer"
    if pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return "float"
    if pa.types.is_string(kind):
        return "string"
    if pa.types.is_boolean(kind):
        return "boolean"
    if pa.types.is_temporal(kind):
        return "temporal"
    return "other"


def _type_name(kind: pa.DataType) -> str:
    text = str(kind)
    return text if len(text) <= 40 else text[:37] + "..."


# --- failures ---


def _failure(rows: pa.Array, reason: str) -> Failures:
    mask = pc.fill_null(rows, False)
    return ((mask, reason),) if pc.any(mask).as_py() else ()


def _merge(*groups: Failures) -> Failures:
    merged: dict[str, pa.BooleanArray] = {}
    for group in groups:
        for mask, reason in group:
            merged[reason] = pc.or_(merged[reason], mask) if reason in merged else mask
    return tuple((mask, reason) for reason, mask in merged.items())


def _only(failures: Failures, where: pa.BooleanArray) -> Failures:
    """The failures in rows where the failing value was actually used."""
    return _merge(*(_failure(pc.and_(mask, where), reason) for mask, reason in failures))


def _null_where(values: pa.Array, rows: pa.BooleanArray) -> pa.Array:
    if pa.types.is_null(values.type):
        return values
    return pc.if_else(rows, pa.scalar(None, values.type), values)


def _unreadable(out: _Out, target: pa.DataType, reason: str) -> _Out:
    """Every present value fails: its type cannot become what the operation needs."""
    failures = _merge(out.failures, _failure(pc.is_valid(out.values), reason))
    return _Out(pa.nulls(len(out.values), target), failures)


# --- coercions ---


def _as_text(out: _Out, who: str) -> _Out:
    kind = _kind(out.values.type)
    if kind == "string":
        return out
    if kind != "other":
        try:
            return _Out(pc.cast(out.values, pa.string()), out.failures)
        except _ARROW_ERRORS:
            pass
    reason = f"{who}: a {_type_name(out.values.type)} value cannot be read as text"
    return _unreadable(out, pa.string(), reason)


def _parse_number(text: pa.Array) -> tuple[pa.Array, pa.Array]:
    """float64 of each numeric string, and which strings were numeric (false for nulls)."""
    ok = pc.fill_null(pc.match_substring_regex(text, _NUMBER), False)
    numbers = pc.cast(pc.utf8_trim_whitespace(_null_where(text, pc.invert(ok))), pa.float64())
    ok = pc.and_(ok, pc.fill_null(pc.is_finite(numbers), False))  # "1e999" reads as inf
    return _null_where(numbers, pc.invert(ok)), ok


def _as_number(out: _Out, who: str) -> _Out:
    """int64 for integers, float64 for other numbers and numeric strings; null type stays."""
    values = out.values
    kind = _kind(values.type)
    if kind == "null" or values.type in (pa.int64(), pa.float64()):
        return out
    if kind == "integer":
        if values.type != pa.uint64():
            return _Out(pc.cast(values, pa.int64()), out.failures)
        too_big = pc.greater(values, pa.scalar(INT_MAX, pa.uint64()))
        failures = _merge(out.failures, _failure(too_big, f"{who}: the value is out of the integer range"))
        return _Out(pc.cast(_null_where(values, pc.fill_null(too_big, False)), pa.int64()), failures)
    if kind == "float":
        return _Out(pc.cast(values, pa.float64(), safe=False), out.failures)
    if kind == "string":
        numbers, ok = _parse_number(values)
        bad = pc.and_(pc.is_valid(values), pc.invert(ok))
        return _Out(numbers, _merge(out.failures, _failure(bad, f"{who}: the text is not a number")))
    return _unreadable(out, pa.float64(), f"{who}: a {_type_name(values.type)} value is not a number")


def _as_bool(out: _Out, who: str) -> _Out:
    """Booleans as they are; the strings true/false in any case; anything else fails."""
    values = out.values
    kind = _kind(values.type)
    if kind == "boolean":
        return out
    if kind == "null":
        return _Out(pa.nulls(len(values), pa.bool_()), out.failures)
    if kind == "string":
        word = pc.utf8_lower(pc.utf8_trim_whitespace(values))
        is_true = pc.equal(word, "true")
        ok = pc.or_(is_true, pc.equal(word, "false"))
        bad = pc.invert(pc.fill_null(ok, True))
        failures = _merge(out.failures, _failure(bad, f"{who}: the text is not true or false"))
        return _Out(_null_where(is_true, pc.fill_null(bad, False)), failures)
    return _unreadable(out, pa.bool_(), f"{who}: a {_type_name(values.type)} value is not true or false")


def _unify(outs: Sequence[_Out], who: str) -> list[_Out]:
    """One type for values that end up in one column: the same type, a numeric type, or text."""
    types = [o.values.type for o in outs if not pa.types.is_null(o.values.type)]
    if not types:
        return list(outs)
    if all(t == types[0] for t in types):
        return [_Out(_cast_nulls(o.values, types[0]), o.failures) for o in outs]
    kinds = {_kind(t) for t in types}
    if kinds <= {"integer", "float"}:
        target = pa.int64() if kinds == {"integer"} else pa.float64()
        numbers = [_as_number(o, who) for o in outs]
        return [_Out(pc.cast(o.values, target, safe=False), o.failures) for o in numbers]
    return [_as_text(o, who) for o in outs]


def _cast_nulls(values: pa.Array, target: pa.DataType) -> pa.Array:
    return pa.nulls(len(values), target) if pa.types.is_null(values.type) else values


# --- operators ---

_COMPARE: dict[str, Callable[..., pa.Array]] = {
    "==": pc.equal,
    "!=": pc.not_equal,
    "<": pc.less,
    ">": pc.greater,
    "<=": pc.less_equal,
    ">=": pc.greater_equal,
}


def _unary(expr: Unary, batch: pa.RecordBatch) -> _Out:
    who = _label(expr)
    if expr.op == "not":
        operand = _as_bool(_eval(expr.operand, batch), who)
        return _Out(pc.invert(operand.values), operand.failures)
    number = _as_number(_eval(expr.operand, batch), who)
    values = number.values
    if pa.types.is_null(values.type):
        return number
    if values.type == pa.int64():
        overflow = pc.equal(values, INT_MIN)  # -INT_MIN does not fit
        failures = _merge(
            number.failures, _failure(overflow, f"{who}: the result is out of the integer range")
        )
        return _Out(_null_where(pc.negate(values), pc.fill_null(overflow, False)), failures)
    return _Out(pc.negate(values), number.failures)


def _binary(expr: Binary, batch: pa.RecordBatch) -> _Out:
    left = _eval(expr.left, batch)
    if expr.op in ("and", "or"):
        return _logic(expr, left, _eval(expr.right, batch))
    right = _eval(expr.right, batch)
    if expr.op in _COMPARE:
        return _compare(expr, left, right)
    return _arithmetic(expr, left, right)


def _logic(expr: Binary, left: _Out, right: _Out) -> _Out:
    who = _label(expr)
    a, b = _as_bool(left, who), _as_bool(right, who)
    if expr.op == "and":
        values = pc.and_kleene(a.values, b.values)
        decided = pc.fill_null(pc.invert(a.values), False)  # false and anything is false
    else:
        values = pc.or_kleene(a.values, b.values)
        decided = pc.fill_null(a.values, False)  # true or anything is true
    return _Out(values, _merge(a.failures, _only(b.failures, pc.invert(decided))))


def _compare(expr: Binary, left: _Out, right: _Out) -> _Out:
    compare = _COMPARE[expr.op]
    failures = _merge(left.failures, right.failures)
    a, b = left.values, right.values
    kinds = (_kind(a.type), _kind(b.type))
    if "null" in kinds:
        return _Out(pa.nulls(len(a), pa.bool_()), failures)
    numeric = {"integer", "float"}
    if kinds[0] in numeric and kinds[1] in numeric:
        return _Out(compare(_float_if_decimal(a), _float_if_decimal(b)), failures)
    if kinds[0] in numeric and kinds[1] == "string":
        return _Out(_number_with_text(compare, a, b, number_first=True), failures)
    if kinds[0] == "string" and kinds[1] in numeric:
        return _Out(_number_with_text(compare, b, a, number_first=False), failures)
    if kinds[0] == "temporal" and kinds[1] == "string":
        b = _try_cast(b, a.type)
    elif kinds[0] == "string" and kinds[1] == "temporal":
        a = _try_cast(a, b.type)
    try:
        return _Out(compare(a, b), failures)
    except _ARROW_ERRORS:
        pass
    try:
        return _Out(compare(pc.cast(a, pa.string()), pc.cast(b, pa.string())), failures)
    except _ARROW_ERRORS:
        reason = f"{_label(expr)}: cannot compare {_type_name(a.type)} with {_type_name(b.type)}"
        present = pc.and_(pc.is_valid(a), pc.is_valid(b))
        return _Out(pa.nulls(len(a), pa.bool_()), _merge(failures, _failure(present, reason)))


def _float_if_decimal(values: pa.Array) -> pa.Array:
    return pc.cast(values, pa.float64(), safe=False) if pa.types.is_decimal(values.type) else values


def _try_cast(values: pa.Array, target: pa.DataType) -> pa.Array:
    try:
        return pc.cast(values, target)
    except _ARROW_ERRORS:
        return values


def _number_with_text(
    compare: Callable[..., pa.Array], number: pa.Array, text: pa.Array, *, number_first: bool
) -> pa.Array:
    """Numerically where the text is a number, else the number's text form against the text."""
    parsed, ok = _parse_number(text)
    number = _float_if_decimal(number)
    as_text = pc.cast(number, pa.string())
    if number_first:
        numerically, textually = compare(number, parsed), compare(as_text, text)
    else:
        numerically, textually = compare(parsed, number), compare(text, as_text)
    return pc.if_else(ok, numerically, textually)


def _arithmetic(expr: Binary, left: _Out, right: _Out) -> _Out:
    who = _label(expr)
    a, b = _as_number(left, who), _as_number(right, who)
    failures = _merge(a.failures, b.failures)
    x, y = a.values, b.values
    length = len(x)
    types = {x.type, y.type}
    if pa.null() in types:
        result_type = pa.float64() if expr.op == "/" or pa.float64() in types else pa.int64()
        return _Out(pa.nulls(length, result_type), failures)
    if expr.op == "/":
        x, y = pc.cast(x, pa.float64(), safe=False), pc.cast(y, pa.float64(), safe=False)
        zero = pc.fill_null(pc.equal(y, 0), False)
        values = pc.divide(x, _null_where(y, zero))
        by_zero = _failure(pc.and_(zero, pc.is_valid(x)), f"{who}: division by zero")
        return _Out(values, _merge(failures, by_zero))
    if types == {pa.int64()}:
        values, overflow = _integer_arithmetic(expr.op, x, y)
        out_of_range = _failure(overflow, f"{who}: the result is out of the integer range")
        return _Out(_null_where(values, pc.fill_null(overflow, False)), _merge(failures, out_of_range))
    x, y = pc.cast(x, pa.float64(), safe=False), pc.cast(y, pa.float64(), safe=False)
    operation = {"+": pc.add, "-": pc.subtract, "*": pc.multiply}[expr.op]
    return _Out(operation(x, y), failures)


def _integer_arithmetic(op: str, x: pa.Array, y: pa.Array) -> tuple[pa.Array, pa.Array]:
    """The wrapping int64 result and where it wrapped: the checked kernels would fail the whole batch."""
    if op == "+":
        result = pc.add(x, y)
        # overflow iff both operands have the sign the result lacks
        sign = pc.bit_wise_and(pc.bit_wise_xor(x, result), pc.bit_wise_xor(y, result))
        return result, pc.less(sign, 0)
    if op == "-":
        result = pc.subtract(x, y)
        sign = pc.bit_wise_and(pc.bit_wise_xor(x, y), pc.bit_wise_xor(x, result))
        return result, pc.less(sign, 0)
    result = pc.multiply(x, y)
    # a wrapped product differs from x*y by a multiple of 2**64, so result / x != y exactly then
    # (Arrow's unchecked int division gives 0 for INT_MIN / -1, which also reads as overflow)
    divisor = pc.if_else(pc.equal(x, 0), 1, x)
    return result, pc.and_(pc.not_equal(x, 0), pc.not_equal(pc.divide(result, divisor), y))


# --- functions ---


def _arg(expr: Call, index: int, batch: pa.RecordBatch) -> _Out:
    return _eval(expr.args[index], batch)


def _who(expr: Call) -> str:
    return f"{expr.name}({_label(expr.args[0])}{', ...' if len(expr.args) > 1 else ''})"


def _concat(expr: Call, batch: pa.RecordBatch) -> _Out:
    parts = [_as_text(_eval(arg, batch), "concat") for arg in expr.args]
    values = pc.binary_join_element_wise(*(pc.fill_null(p.values, "") for p in parts), "")
    return _Out(values, _merge(*(p.failures for p in parts)))


def _text_function(kernel: Callable[[pa.Array], pa.Array]) -> Callable[[Call, pa.RecordBatch], _Out]:
    def apply(expr: Call, batch: pa.RecordBatch) -> _Out:
        text = _as_text(_arg(expr, 0, batch), _who(expr))
        return _Out(kernel(text.values), text.failures)

    return apply


def _len(expr: Call, batch: pa.RecordBatch) -> _Out:
    arg = _arg(expr, 0, batch)
    if pa.types.is_list(arg.values.type) or pa.types.is_large_list(arg.values.type):
        return _Out(pc.cast(pc.list_value_length(arg.values), pa.int64()), arg.failures)
    text = _as_text(arg, _who(expr))
    return _Out(pc.cast(pc.utf8_length(text.values), pa.int64()), text.failures)


def _is_empty(expr: Call, batch: pa.RecordBatch) -> _Out:
    arg = _arg(expr, 0, batch)
    values = arg.values
    missing = pc.is_null(values)
    if pa.types.is_string(values.type):
        empty = pc.equal(pc.utf8_length(values), 0)
    elif pa.types.is_list(values.type) or pa.types.is_large_list(values.type):
        empty = pc.equal(pc.list_value_length(values), 0)
    else:
        return _Out(missing, arg.failures)
    return _Out(pc.or_(missing, pc.fill_null(empty, False)), arg.failures)


def _substr(expr: Call, batch: pa.RecordBatch) -> _Out:
    text = _as_text(_arg(expr, 0, batch), _who(expr))
    start = _literal_int(expr.args[1])
    stop = start + _literal_int(expr.args[2]) if len(expr.args) > 2 else None
    return _Out(pc.utf8_slice_codeunits(text.values, start, stop), text.failures)


def _literal_int(arg: Expr) -> int:
    # The parser guarantees a non-negative integer literal; a hand-built AST gets a clear error.
    if not (isinstance(arg, Constant) and isinstance(arg.value, int) and not isinstance(arg.value, bool)):
        raise ValueError(f"substr() takes whole-number literals, not {_label(arg)}")
    return arg.value


def _to_integer(expr: Call, batch: pa.RecordBatch) -> _Out:
    who = _who(expr)
    arg = _arg(expr, 0, batch)
    values = arg.values
    kind = _kind(values.type)
    if kind == "null":
        return _Out(pa.nulls(len(values), pa.int64()), arg.failures)
    if kind == "integer":
        return _as_number(arg, who)
    if kind == "boolean":
        return _Out(pc.cast(values, pa.int64()), arg.failures)
    if kind == "float":
        numbers = pc.cast(values, pa.float64(), safe=False)
        in_range = pc.and_(
            pc.and_(pc.is_finite(numbers), pc.greater_equal(numbers, float(INT_MIN))),
            pc.less(numbers, float(2**63)),
        )
        bad = pc.invert(pc.fill_null(in_range, True))
        whole = pc.trunc(_null_where(numbers, pc.fill_null(bad, False)))
        reason = f"{who}: the number is not finite or out of the integer range"
        return _Out(pc.cast(whole, pa.int64()), _merge(arg.failures, _failure(bad, reason)))
    if kind == "string":
        ok = pc.fill_null(pc.match_substring_regex(values, _INTEGER), False)
        wide = pc.cast(pc.utf8_trim_whitespace(_null_where(values, pc.invert(ok))), _WIDE_INTEGER)
        in_range = pc.and_(
            pc.greater_equal(wide, pa.scalar(Decimal(INT_MIN), _WIDE_INTEGER)),
            pc.less_equal(wide, pa.scalar(Decimal(INT_MAX), _WIDE_INTEGER)),
        )
        ok = pc.and_(ok, pc.fill_null(in_range, False))
        integers = pc.cast(_null_where(wide, pc.invert(ok)), pa.int64())
        bad = pc.and_(pc.is_valid(values), pc.invert(ok))
        reason = f"{who}: the text is not an integer in the int64 range"
        return _Out(integers, _merge(arg.failures, _failure(bad, reason)))
    return _unreadable(arg, pa.int64(), f"{who}: a {_type_name(values.type)} value is not a number")


def _to_decimal(expr: Call, batch: pa.RecordBatch) -> _Out:
    who = _who(expr)
    arg = _arg(expr, 0, batch)
    kind = _kind(arg.values.type)
    if kind == "null":
        return _Out(pa.nulls(len(arg.values), pa.float64()), arg.failures)
    if kind == "boolean":
        return _Out(pc.cast(arg.values, pa.float64()), arg.failures)
    number = _as_number(arg, who)
    return _Out(pc.cast(number.values, pa.float64(), safe=False), number.failures)


def _to_timestamp(expr: Call, batch: pa.RecordBatch) -> _Out:
    who = _who(expr)
    arg = _arg(expr, 0, batch)
    values = arg.values
    if pa.types.is_null(values.type):
        return _Out(pa.nulls(len(values), TIMESTAMP), arg.failures)
    if pa.types.is_timestamp(values.type):
        # a time without an offset is taken as UTC; finer units than microseconds are truncated
        return _Out(pc.cast(values, TIMESTAMP, safe=False), arg.failures)
    if pa.types.is_date(values.type):
        return _Out(pc.cast(pc.cast(values, pa.timestamp("us")), TIMESTAMP), arg.failures)
    fmt_arg = expr.args[1]
    if not (isinstance(fmt_arg, Constant) and isinstance(fmt_arg.value, str)):
        raise ValueError(f"to_timestamp() takes a string literal format, not {_label(fmt_arg)}")
    fmt = strftime_format(fmt_arg.value)
    text = _as_text(arg, who)
    parsed = _strptime(text.values, fmt)
    bad = pc.and_(pc.is_valid(text.values), pc.is_null(parsed))
    reason = f"{who}: the text does not match the format {fmt_arg.value!r}"
    return _Out(parsed, _merge(text.failures, _failure(bad, reason)))


def _strptime(text: pa.Array, fmt: str) -> pa.Array:
    """Arrow's strptime, plus fractional seconds after `:%S.` that it cannot parse itself."""
    if "%f" not in fmt:
        return pc.cast(pc.strptime(text, format=fmt, unit="us", error_is_null=True), TIMESTAMP)
    # strftime_format() allows %f only right after ":%S." or ":%S,": cut the fraction off the
    # input, parse the rest, add the fraction back (an input without a fraction is whole seconds).
    base = fmt.replace(":%S.%f", ":%S").replace(":%S,%f", ":%S")
    fraction = pc.struct_field(pc.extract_regex(text, _FRACTION), [0])
    seconds = pc.replace_substring_regex(text, r"(:\d{2})[.,]\d{1,9}", r"\1", max_replacements=1)
    parsed = pc.cast(pc.strptime(seconds, format=base, unit="us", error_is_null=True), TIMESTAMP)
    digits = pc.utf8_slice_codeunits(pc.utf8_rpad(pc.fill_null(fraction, ""), width=6, padding="0"), 0, 6)
    micros = pc.cast(pc.cast(digits, pa.int64()), pa.duration("us"))
    return pc.add(parsed, micros)


def _coalesce(expr: Call, batch: pa.RecordBatch) -> _Out:
    args = _unify([_eval(arg, batch) for arg in expr.args], "coalesce")
    reached = pa.repeat(pa.scalar(True), batch.num_rows)  # rows where every earlier argument was null
    failures: Failures = ()
    for arg in args:
        failures = _merge(failures, _only(arg.failures, reached))
        reached = pc.and_(reached, pc.is_null(arg.values))
    return _Out(pc.coalesce(*(arg.values for arg in args)), failures)


def _iif(expr: Call, batch: pa.RecordBatch) -> _Out:
    condition = _as_bool(_arg(expr, 0, batch), f"iif({_label(expr.args[0])}, ...)")
    then, otherwise = _unify([_arg(expr, 1, batch), _arg(expr, 2, batch)], "iif")
    taken = pc.fill_null(condition.values, False)  # a null condition takes the else branch
    values = pc.if_else(taken, then.values, otherwise.values)
    failures = _merge(
        condition.failures, _only(then.failures, taken), _only(otherwise.failures, pc.invert(taken))
    )
    return _Out(values, failures)


_FUNCTIONS: dict[str, Callable[[Call, pa.RecordBatch], _Out]] = {
    "concat": _concat,
    "coalesce": _coalesce,
    "lower": _text_function(pc.utf8_lower),
    "upper": _text_function(pc.utf8_upper),
    "trim": _text_function(pc.utf8_trim_whitespace),
    "len": _len,
    "is_empty": _is_empty,
    "to_integer": _to_integer,
    "to_decimal": _to_decimal,
    "to_timestamp": _to_timestamp,
    "iif": _iif,
    "substr": _substr,
}
