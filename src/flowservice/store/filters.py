"""Compile the list grammar's AST (domain/query.py) to SQL, for SQLite and PostgreSQL alike.

Fields that have a typed column (ids, times, states, run counts) compile to that column, so the
indexes serve them; any other path compiles to JSON functions over the `doc` column. Both must
mean exactly what `domain.query.matches` means; tests run the two side by side.

JSON semantics, per value a path names (arrays stepped with `[]` give several):
- text form: strings as they are, `true`/`false`, numbers; objects, arrays and null have none;
- numeric form: numbers, and strings of digits (`"startTime": "1597784298"`);
- `==` holds when some value's text equals some filter value (case-insensitively for status-like
  fields), or when a JSON number equals a numeric filter value; `!=` is "`==` holds for none";
- ranges compare numeric forms; existence is "some value that is not null".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    String,
    and_,
    case,
    cast,
    exists,
    false,
    func,
    literal,
    literal_column,
    not_,
    or_,
    select,
    tuple_,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.types import Float, Numeric

from flowservice.domain import runs as run_states
from flowservice.domain.query import Compare, Exists, Filter, Path, Sort, Value
from flowservice.errors import InvalidRequest
from flowservice.store.tables import (
    AlertDelivery,
    AlertRule,
    Flow,
    NamedResource,
    Run,
    SourceConnection,
    TenantOwned,
)

Kind = Literal["int", "str", "status"]


@dataclass(frozen=True, slots=True)
class Field:
    column: InstrumentedAttribute[Any]
    kind: Kind


def typed_fields(model: type[TenantOwned]) -> dict[str, Field]:
    """Paths that have a typed column in this table, always present in its documents."""
    fields = {
        "id": Field(model.id, "str"),
        "createdAt": Field(model.created_at, "int"),
        "updatedAt": Field(model.updated_at, "int"),
    }
    if issubclass(model, NamedResource):
        fields["name"] = Field(model.name, "str")
        fields["state"] = Field(model.state, "status")
        fields["flowSpec.id" if model is Flow else "connectionSpec.id"] = Field(model.spec_id, "str")
    if model is SourceConnection:
        fields["baseConnectionId"] = Field(SourceConnection.base_connection_id, "str")
    if model is Run:
        fields.update(
            {
                "flowId": Field(Run.flow_id, "str"),
                "state": Field(Run.status, "status"),
                "metrics.statusSummary.status": Field(Run.status, "status"),
                "metrics.durationSummary.startedAtUTC": Field(Run.started_at, "int"),
                "metrics.durationSummary.completedAtUTC": Field(Run.completed_at, "int"),
                "metrics.recordSummary.inputRecordCount": Field(Run.input_record_count, "int"),
                "metrics.recordSummary.outputRecordCount": Field(Run.output_record_count, "int"),
                "metrics.recordSummary.failedRecordCount": Field(Run.failed_record_count, "int"),
                "metrics.fileSummary.inputFileCount": Field(Run.input_file_count, "int"),
                "metrics.fileSummary.outputFileCount": Field(Run.output_file_count, "int"),
                "metrics.sizeSummary.inputBytes": Field(Run.input_bytes, "int"),
                "metrics.sizeSummary.outputBytes": Field(Run.output_bytes, "int"),
            }
        )
    if model is AlertRule:
        fields.update(
            {
                "name": Field(AlertRule.name, "str"),
                "kind": Field(AlertRule.kind, "str"),
                "flowId": Field(AlertRule.flow_id, "str"),
            }
        )
    if model is AlertDelivery:
        fields.update(
            {
                "ruleId": Field(AlertDelivery.rule_id, "str"),
                "runId": Field(AlertDelivery.run_id, "str"),
                "flowId": Field(AlertDelivery.flow_id, "str"),
                "eventCode": Field(AlertDelivery.event_code, "str"),
                "status": Field(AlertDelivery.status, "str"),
                "attempts": Field(AlertDelivery.attempts, "int"),
            }
        )
    return fields


def compile_filters(
    model: type[TenantOwned], filters: Sequence[Filter], dialect: str
) -> list[ColumnElement[bool]]:
    fields = typed_fields(model)
    return [_compile(model, f, dialect, fields) for f in filters]


def _compile(
    model: type[TenantOwned], condition: Filter, dialect: str, fields: dict[str, Field]
) -> ColumnElement[bool]:
    typed = fields.get(condition.path.text)
    if typed is not None:
        return _typed(typed, condition)
    json = _SQLiteJSON(model) if dialect == "sqlite" else _PostgresJSON(model)
    return json.condition(condition)


# --- typed columns ---


def _typed(f: Field, condition: Filter) -> ColumnElement[bool]:
    column = f.column
    if isinstance(condition, Exists):
        return column.is_(None) if condition.negate else column.is_not(None)
    if condition.op in (">", "<", ">=", "<="):
        if f.kind != "int":
            raise InvalidRequest(
                "1448",
                f"Operator {condition.op} not supported for field {condition.path.text}.",
                field="property",
            )
        bound = condition.values[0].number
        return {">": column > bound, "<": column < bound, ">=": column >= bound, "<=": column <= bound}[
            condition.op
        ]
    equal = or_(*[_typed_equal(f, v) for v in condition.values])
    if condition.op == "==":
        return equal
    return not_(func.coalesce(equal, false()))


def _typed_equal(f: Field, value: Value) -> ColumnElement[bool]:
    if f.kind == "int":
        number = value.number
        return f.column == number if number is not None else false()
    if f.kind == "status":
        if f.column is Run.status:  # canonical spelling in the column: compare exactly, with the index
            status = run_states.canonical_status(value.text)
            return f.column == status if status is not None else false()
        return func.lower(f.column) == value.text.lower()
    return f.column == value.text


# --- JSON paths ---


class _JSON:
    """Builds conditions on one JSON value source: a document column or an array element."""

    def __init__(self, model: type[TenantOwned]) -> None:
        self.model = model

    def condition(self, condition: Filter) -> ColumnElement[bool]:
        if isinstance(condition, Exists):
            present = self._any(condition.path, lambda leaf: self.is_present(leaf))
            return not_(present) if condition.negate else present
        if condition.op == "==":
            return self._any(condition.path, lambda leaf: self.equal_any(leaf, condition))
        if condition.op == "!=":
            eq = Compare(condition.path, "==", condition.values)
            return not_(self._any(condition.path, lambda leaf: self.equal_any(leaf, eq)))
        bound = condition.values[0].number
        return self._any(condition.path, lambda leaf: self.ordered(leaf, condition.op, bound))

    def equal_any(self, leaf: Any, condition: Compare) -> ColumnElement[bool]:
        text = self.text(leaf)
        checks: list[ColumnElement[bool]] = []
        for value in condition.values:
            if condition.path.case_insensitive:
                checks.append(func.lower(text) == value.text.lower())
            else:
                checks.append(text == value.text)
                if value.number is not None:
                    checks.append(and_(self.is_number(leaf), self.number(leaf) == value.number))
        return func.coalesce(or_(*checks), false())

    def ordered(self, leaf: Any, op: str, bound: float | None) -> ColumnElement[bool]:
        number = self.number(leaf)
        compared = {">": number > bound, "<": number < bound, ">=": number >= bound, "<=": number <= bound}[
            op
        ]
        return func.coalesce(compared, false())

    # dialect hooks
    def _any(self, path: Path, build: Any) -> ColumnElement[bool]:
        raise NotImplementedError

    def text(self, leaf: Any) -> Any:
        raise NotImplementedError

    def number(self, leaf: Any) -> Any:
        raise NotImplementedError

    def is_number(self, leaf: Any) -> ColumnElement[bool]:
        raise NotImplementedError

    def is_present(self, leaf: Any) -> ColumnElement[bool]:
        raise NotImplementedError


def _groups(path: Path) -> list[tuple[list[str], bool]]:
    """Split a path at its array steps: `a.b[].c` -> [(["a", "b"], True), (["c"], False)]."""
    groups: list[tuple[list[str], bool]] = []
    current: list[str] = []
    for segment in path.segments:
        current.append(segment.name)
        if segment.each:
            groups.append((current, True))
            current = []
    groups.append((current, False))
    return groups


class _SQLiteJSON(_JSON):
    """SQLite: json_extract/json_type for scalars, json_each for array steps.

    A leaf is (value, type) as SQLite reports them; json_type names 'true'/'false'/'integer'/'real'/
    'text'/'null'/'object'/'array'.
    """

    def _any(self, path: Path, build: Any) -> ColumnElement[bool]:
        groups = _groups(path)
        source: Any = self.model.doc
        froms: list[Any] = []
        guards: list[ColumnElement[bool]] = []
        for index, (keys, each) in enumerate(groups):
            pointer = _sqlite_path(keys)
            if not each:
                if keys:
                    leaf = (func.json_extract(source, pointer), func.json_type(source, pointer))
                else:  # the path ended on an array step: the element itself is the value
                    leaf = (source.c.value, source.c.type)
                break
            guards.append(func.json_type(source, pointer) == "array")
            element = func.json_each(source, pointer).table_valued("value", "type").alias(f"e{index}")
            froms.append(element)
            if index + 1 < len(groups) and groups[index + 1][0]:
                # a scalar element's value is plain SQL text, not JSON: never hand it to json_extract
                source = case((element.c.type.in_(("object", "array")), element.c.value), else_=literal("{}"))
            else:
                source = element
        return _nest(froms, guards, build(leaf))

    def text(self, leaf: Any) -> Any:
        value, kind = leaf
        return case(
            (kind == "true", literal("true")),
            (kind == "false", literal("false")),
            (kind.in_(("integer", "real", "text")), cast(value, String)),
            else_=None,
        )

    def is_number(self, leaf: Any) -> ColumnElement[bool]:
        kind: ColumnElement[str] = leaf[1]
        return kind.in_(("integer", "real"))

    def number(self, leaf: Any) -> Any:
        value, kind = leaf
        digits = and_(kind == "text", value != "", not_(value.op("GLOB")("*[^0-9]*")))
        return case(
            (kind.in_(("integer", "real")), cast(value, Float)), (digits, cast(value, Float)), else_=None
        )

    def is_present(self, leaf: Any) -> ColumnElement[bool]:
        kind = leaf[1]
        return func.coalesce(and_(kind.is_not(None), kind != "null"), false())


def _nest(
    froms: list[Any], guards: list[ColumnElement[bool]], condition: ColumnElement[bool]
) -> ColumnElement[bool]:
    """`EXISTS (… e0 WHERE EXISTS (… e1 WHERE condition))`: one level per array step, each correlated
    to the one around it (a flat join of the steps would read as a cartesian product)."""
    for index in reversed(range(len(froms))):
        where = [guards[index], condition] if guards else [condition]
        condition = exists(select(literal(1)).select_from(froms[index]).where(*where))
    return condition


def _sqlite_path(keys: list[str]) -> str:
    return "$" + "".join('."' + k.replace('"', '\\"') + '"' for k in keys)


_NO_PATH: ColumnElement[Any] = literal_column(
    "'{}'::text[]"
)  # `value #>> '{}'`: a jsonb scalar as text, unquoted


class _PostgresJSON(_JSON):
    """PostgreSQL: `->` with text keys (never array indexes), jsonb_array_elements for array steps."""

    def _any(self, path: Path, build: Any) -> ColumnElement[bool]:
        groups = _groups(path)
        source: Any = type_coerce(self.model.doc, JSONB)
        froms: list[Any] = []
        for index, (keys, each) in enumerate(groups):
            node = source
            for key in keys:
                node = node.op("->")(literal(key, String))
            if not each:
                leaf = node
                break
            safe = case((func.jsonb_typeof(node) == "array", node), else_=cast(literal("[]", String), JSONB))
            element = func.jsonb_array_elements(safe).table_valued("value").alias(f"e{index}")
            froms.append(element)
            source = type_coerce(element.c.value, JSONB)
        return _nest(froms, [], build(leaf))

    def text(self, leaf: Any) -> Any:
        return case(
            (func.jsonb_typeof(leaf).in_(("string", "number", "boolean")), leaf.op("#>>")(_NO_PATH)),
            else_=None,
        )

    def is_number(self, leaf: Any) -> ColumnElement[bool]:
        return func.jsonb_typeof(leaf) == "number"

    def number(self, leaf: Any) -> Any:
        text = leaf.op("#>>")(_NO_PATH)
        digits = and_(func.jsonb_typeof(leaf) == "string", text.op("~")("^[0-9]+$"))
        return case(
            (func.jsonb_typeof(leaf) == "number", cast(text, Numeric)),
            (digits, cast(text, Numeric)),
            else_=None,
        )

    def is_present(self, leaf: Any) -> ColumnElement[bool]:
        return func.coalesce(func.jsonb_typeof(leaf).notin_(("null",)), false())


# --- order and keyset ---


@dataclass(frozen=True, slots=True)
class OrderKey:
    expression: Any
    descending: bool
    kind: Kind


def order_keys(model: type[TenantOwned], sorts: Sequence[Sort]) -> list[OrderKey]:
    """Sort expressions for `orderby` (typed fields only), ending with `id` so the order is total.

    Without `orderby` the order is newest first: `createdAt` descending, then `id` descending.
    """
    if not sorts:
        return [OrderKey(model.created_at, True, "int"), OrderKey(model.id, True, "str")]
    fields = typed_fields(model)
    keys: list[OrderKey] = []
    for sort in sorts:
        f = fields.get(sort.path.text)
        if f is None:
            raise InvalidRequest(
                "1433",
                f"Incorrect field= {sort.path.text} passed in orderBy, example are +name, -name, name. "
                f"Sortable fields: {', '.join(sorted(fields))}.",
                field="orderby",
            )
        # NULL sorts as -1 so that a keyset comparison never meets a NULL
        expression = func.coalesce(f.column, -1) if f.kind == "int" and f.column.nullable else f.column
        keys.append(OrderKey(expression, sort.descending, f.kind))
    if not any(k.expression is model.id for k in keys):
        keys.append(OrderKey(model.id, keys[-1].descending, "str"))
    return keys


def keyset_after(keys: Sequence[OrderKey], values: Sequence[Any]) -> ColumnElement[bool]:
    """Rows strictly after the row whose sort values are `values`, in the order of `keys`.

    When every key runs the same way this is one row-value comparison, `(created_at, id) < (:c, :i)`,
    which both databases turn into an index seek: page 1000 costs what page 1 does. Mixed directions
    expand to the OR chain, led by a bound on the first key that the index can still seek on.
    """
    expressions = [k.expression for k in keys]
    if all(k.descending for k in keys):
        return tuple_(*expressions) < tuple_(*values)
    if not any(k.descending for k in keys):
        return tuple_(*expressions) > tuple_(*values)
    clauses = []
    for index, key in enumerate(keys):
        equal_before = [keys[i].expression == values[i] for i in range(index)]
        step = key.expression < values[index] if key.descending else key.expression > values[index]
        clauses.append(and_(*equal_before, step))
    first = keys[0].expression <= values[0] if keys[0].descending else keys[0].expression >= values[0]
    return and_(first, or_(*clauses))
