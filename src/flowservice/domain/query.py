"""The list grammar of the Flow Service API (`property`, `orderby`, `limit`, `count`) as a typed AST.

Parsing is pure so the API, UI and CLI share it and it is tested without a database; compiling to
SQL lives in `store/filters.py`. `matches()` evaluates the same AST over a document in Python: it
serves the in-memory spec catalog and is the oracle the SQL compiler is tested against.

Grammar (digest 4.2):

    property := "!"? path                 existence / non-existence
              | path op value ("," value)* comma = OR; repeated `property` = AND
    path     := seg ("." seg)*            seg may end with "[]": any element of an array
    op       := == | != | > | < | >= | <=  (`~` is refused with 1440, as Adobe does)
    value    := raw | '"' raw '"'

`property=a==1,b==2` (the spec's `explode: false` form) is two AND-ed expressions: after a comma,
a part that starts with a path and an operator begins a new expression, anything else is another
OR value of the current one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from flowservice.errors import InvalidRequest

Op = Literal["==", "!=", ">", "<", ">=", "<="]
RANGE_OPS: frozenset[str] = frozenset({">", "<", ">=", "<="})
OPERATORS: tuple[Op, ...] = ("==", "!=", ">=", "<=", ">", "<")
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_FILTERS = 20
MAX_VALUES = 100
# One `property` parameter: room for MAX_VALUES ids (36 characters and a comma each) and a path,
# while a single filter can never make the database compare megabytes of text.
MAX_PROPERTY_LENGTH = 8192
LIST_PARAMS = ("property", "orderby", "limit", "continuationToken", "count")
# Fields that hold text: a range operator on them is Adobe's 1448, not a silent numeric compare.
STRING_FIELDS = frozenset(
    {
        "id",
        "name",
        "description",
        "flowId",
        "state",
        "baseConnectionId",
        "connectionSpec.id",
        "flowSpec.id",
        "providerId",
        "metrics.statusSummary.status",
        "sandboxName",
        "sandboxId",
        "imsOrgId",
        "createdBy",
        "updatedBy",
        "createdClient",
        "updatedClient",
        "etag",
        "version",
    }
)

_SEGMENT = r"[A-Za-z0-9_@$:-]+(?:\[\])?"
_PATH = re.compile(rf"{_SEGMENT}(?:\.{_SEGMENT})*")
# A part that begins a new expression: a path followed by something operator-like.
_EXPRESSION_START = re.compile(rf"!?{_PATH.pattern}\s*[=!<>~]")


@dataclass(frozen=True, slots=True)
class Segment:
    name: str
    each: bool = False  # "name[]": the condition holds for any element of the array


@dataclass(frozen=True, slots=True)
class Path:
    segments: tuple[Segment, ...]

    @classmethod
    def of(cls, text: str) -> Path:
        return parse_path(text)

    @property
    def text(self) -> str:
        return ".".join(s.name + ("[]" if s.each else "") for s in self.segments)

    @property
    def is_plain(self) -> bool:
        """No array step: the path names at most one value."""
        return not any(s.each for s in self.segments)

    @property
    def leaf(self) -> str:
        return self.segments[-1].name

    @property
    def case_insensitive(self) -> bool:
        """Status-like fields compare without case: the docs filter `status==Failed`, runs say `failed`."""
        return self.leaf in ("status", "state")


@dataclass(frozen=True, slots=True)
class Value:
    text: str

    @property
    def number(self) -> float | None:
        try:
            number = float(self.text)
        except ValueError:
            return None
        return number if math.isfinite(number) else None


@dataclass(frozen=True, slots=True)
class Compare:
    path: Path
    op: Op
    values: tuple[Value, ...]


@dataclass(frozen=True, slots=True)
class Exists:
    path: Path
    negate: bool = False


Filter = Compare | Exists


@dataclass(frozen=True, slots=True)
class Sort:
    path: Path
    descending: bool

    @property
    def text(self) -> str:
        return ("-" if self.descending else "+") + self.path.text


@dataclass(frozen=True, slots=True)
class ListQuery:
    filters: tuple[Filter, ...] = ()
    order: tuple[Sort, ...] = ()
    limit: int = DEFAULT_LIMIT
    count: bool = False
    continuation: str | None = None
    raw_properties: tuple[str, ...] = field(default=(), compare=False)
    raw_orderby: tuple[str, ...] = field(default=(), compare=False)

    @property
    def shapes_results(self) -> bool:
        """Whether filters or an order were given (a continuation must then repeat them exactly)."""
        return bool(self.raw_properties or self.raw_orderby)


def parse_path(text: str, *, param: str = "property") -> Path:
    if not _PATH.fullmatch(text):
        raise InvalidRequest("1449", f"Invalid field {text} in filter params.", field=param)
    segments = []
    for part in text.split("."):
        each = part.endswith("[]")
        segments.append(Segment(part[:-2] if each else part, each))
    return Path(tuple(segments))


def parse_property(text: str) -> list[Filter]:
    """One `property` parameter; several expressions when the `explode: false` form is used."""
    text = text.strip()
    if not text:
        raise InvalidRequest("1453", "Invalid query value  provided: property is empty.", field="property")
    filters: list[Filter] = []
    current: tuple[Path, Op, list[Value]] | None = None
    for part in _split_outside_quotes(text):
        starts_expression = current is None or _EXPRESSION_START.match(part) is not None
        if not starts_expression and current is not None:
            current[2].append(_value(part, text))
            continue
        if current is not None:
            filters.append(_compare(*current, text))
            current = None
        parsed = _expression(part, text)
        if isinstance(parsed, Exists):
            filters.append(parsed)
        else:
            current = parsed
    if current is not None:
        filters.append(_compare(*current, text))
    return filters


def _expression(part: str, whole: str) -> Exists | tuple[Path, Op, list[Value]]:
    negate = part.startswith("!")
    body = part[1:] if negate else part
    match = _PATH.match(body)
    if match is None:
        raise InvalidRequest("1449", f"Invalid field {part} in filter params.", field="property")
    rest = body[match.end() :].lstrip()
    if rest[:1] in (".", "["):  # the path goes on with something a path cannot hold
        raise InvalidRequest(
            "1449", f"Invalid field {part.split('=')[0]} in filter params.", field="property"
        )
    path = parse_path(match.group(0))
    if not rest:
        return Exists(path, negate)
    if negate:
        raise InvalidRequest("1450", f"Invalid operator !{rest[:3]} in filter params.", field="property")
    if rest.startswith("~"):
        raise InvalidRequest("1440", "Operator '~' not implemented.", field="property")
    op = next((o for o in OPERATORS if rest.startswith(o)), None)
    # Adobe's own catalog docs write `attributes.sampleAttribute="abc"`: a single '=' means '=='.
    spelled = op or ("=" if rest.startswith("=") else None)
    if spelled is None or rest[len(spelled) : len(spelled) + 1] in ("=", "<", ">", "!", "~"):
        shown = rest[:3].rstrip()
        raise InvalidRequest("1450", f"Invalid operator {shown} in filter params.", field="property")
    return path, op or "==", [_value(rest[len(spelled) :], whole)]


def _value(raw: str, whole: str) -> Value:
    stripped = raw.strip()
    if len(stripped) >= 2 and stripped[0] == stripped[-1] == '"':
        return Value(stripped[1:-1])
    if not stripped:
        raise InvalidRequest("1453", f"Invalid query value {whole} provided.", field="property")
    return Value(stripped)


def _compare(path: Path, op: Op, values: list[Value], whole: str) -> Compare:
    if op in RANGE_OPS and path.text in STRING_FIELDS:
        raise InvalidRequest("1448", f"Operator {op} not supported for field {path.text}.", field="property")
    if len(values) > 1 and op in RANGE_OPS:
        raise InvalidRequest("1443", f"Operator '{op}' is not allowed for multiple values.", field="property")
    if len(values) > MAX_VALUES:
        raise InvalidRequest(
            "1452", f"Too many values in {whole[:80]}: at most {MAX_VALUES} are allowed.", field="property"
        )
    if op in RANGE_OPS and values[0].number is None:
        raise InvalidRequest(
            "1452",
            f"Invalid value {values[0].text} for field {path.text}: operator {op} compares numbers.",
            field="property",
        )
    return Compare(path, op, tuple(values))


def _split_outside_quotes(text: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def parse_orderby(text: str) -> list[Sort]:
    """`+f`, `-f`, `f`; a leading space is a `+` that lost its URL encoding. Commas give more keys."""
    sorts = []
    for raw in text.split(","):
        item = raw[1:] if raw.startswith(" ") else raw
        item = "+" + item if raw.startswith(" ") else item
        descending = item.startswith("-")
        name = item[1:] if item[:1] in ("+", "-") else item
        if not name or name[:1] in ("+", "-", " "):
            raise InvalidRequest(
                "1432",
                "Sort order specified is not correct, prepend + for ascending order and - for descending "
                "order in the fieldName.",
                field="orderby",
            )
        if not _PATH.fullmatch(name) or "[]" in name:
            raise InvalidRequest(
                "1433",
                f"Incorrect field= {name} passed in orderBy, example are +name, -name, name.",
                field="orderby",
            )
        sorts.append(Sort(parse_path(name, param="orderby"), descending))
    return sorts


def parse_list_query(params: Sequence[tuple[str, str]], *, allow_paging: bool = True) -> ListQuery:
    """Every list parameter, checked: unknown names are 1451, `limit` with `count=true` 1401."""
    names = {name for name, _ in params}
    unknown = sorted(names - set(LIST_PARAMS))
    if unknown:
        raise InvalidRequest(
            "1451", f"Invalid params {', '.join(unknown)} provided in query params.", field=unknown[0]
        )
    properties = tuple(value for name, value in params if name == "property")
    _check_size(properties)
    filters: list[Filter] = [f for p in properties for f in parse_property(p)]
    if len(filters) > MAX_FILTERS:
        raise InvalidRequest(
            "1452", f"Too many filters ({len(filters)}): at most {MAX_FILTERS} are allowed.", field="property"
        )
    orderbys = tuple(value for name, value in params if name == "orderby")
    order = [s for value in orderbys for s in parse_orderby(value)]
    if len(order) > 3:
        raise InvalidRequest("1433", "At most 3 fields may be given in orderby.", field="orderby")
    count = _single(params, "count")
    if count is not None and count.lower() not in ("true", "false"):
        raise InvalidRequest(
            "1454", f"Invalid value {count[:40]} for count: use true or false.", field="count"
        )
    counting = count is not None and count.lower() == "true"
    limit_text = _single(params, "limit")
    if counting and limit_text is not None:
        raise InvalidRequest(
            "1401", "The limit and count parameters cannot be given together.", field="limit"
        )
    limit = DEFAULT_LIMIT if limit_text is None else _limit(limit_text)
    continuation = _single(params, "continuationToken") if allow_paging else None
    return ListQuery(
        tuple(filters), tuple(order), limit, counting, continuation or None, properties, orderbys
    )


def _check_size(properties: Sequence[str]) -> None:
    """Refuse oversized filters before parsing them (each `property` holds at least one filter)."""
    if len(properties) > MAX_FILTERS:
        raise InvalidRequest(
            "1452",
            f"Too many filters ({len(properties)}): at most {MAX_FILTERS} are allowed.",
            field="property",
        )
    for text in properties:
        if len(text) > MAX_PROPERTY_LENGTH:
            raise InvalidRequest(
                "1452",
                f"The property parameter is too long ({len(text)} characters): at most "
                f"{MAX_PROPERTY_LENGTH} are allowed.",
                field="property",
            )


def _single(params: Sequence[tuple[str, str]], name: str) -> str | None:
    values = [value for key, value in params if key == name]
    if len(values) > 1 and len(set(values)) > 1:
        raise InvalidRequest("1452", f"The parameter {name} was given more than once.", field=name)
    return values[0] if values else None


def _limit(text: str) -> int:
    if not text.strip().isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise InvalidRequest(
            "1452",
            f"Invalid value {text[:40]} for limit: use a whole number from 1 to {MAX_LIMIT}.",
            field="limit",
        )
    return int(text)


# --- evaluation over documents (the in-memory catalog, and the oracle for the SQL compiler) ---


def matches(document: Mapping[str, Any], filters: Iterable[Filter]) -> bool:
    return all(_holds(document, f) for f in filters)


def _holds(document: Mapping[str, Any], condition: Filter) -> bool:
    found = list(resolve(document, condition.path))
    if isinstance(condition, Exists):
        present = any(v is not None for v in found)
        return not present if condition.negate else present
    if condition.op == "!=":
        return not any(_equal(v, value, condition.path) for v in found for value in condition.values)
    if condition.op == "==":
        return any(_equal(v, value, condition.path) for v in found for value in condition.values)
    bound = condition.values[0].number
    return any(_ordered(v, condition.op, bound) for v in found)


def resolve(document: Any, path: Path) -> Iterable[Any]:
    """Every value the path names in `document` (several when it steps through arrays)."""
    current: list[Any] = [document]
    for segment in path.segments:
        following: list[Any] = []
        for item in current:
            if isinstance(item, Mapping) and segment.name in item:
                child = item[segment.name]
                if segment.each:
                    if isinstance(child, list):
                        following.extend(child)
                else:
                    following.append(child)
        current = following
    return current


def scalar_text(value: Any) -> str | None:
    """How a JSON scalar reads in a comparison: strings as they are, true/false, numbers in JSON form."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return None


def numeric(value: Any) -> float | None:
    """Numbers, and strings of digits (Adobe echoes `"startTime": "1597784298"` as sent)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", value):
        return float(value)
    return None


def _equal(actual: Any, value: Value, path: Path) -> bool:
    text = scalar_text(actual)
    if text is None:
        return False
    if path.case_insensitive:
        return text.lower() == value.text.lower()
    if text == value.text:
        return True
    left, right = numeric(actual), value.number
    return isinstance(actual, int | float) and left is not None and right is not None and left == right


def _ordered(actual: Any, op: str, bound: float | None) -> bool:
    number = numeric(actual)
    if number is None or bound is None:
        return False
    return {">": number > bound, "<": number < bound, ">=": number >= bound, "<=": number <= bound}[op]
