"""Conversion and validation against a schema, vectorized: the right rows fail, for the right reason."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from flowservice.domain.xdm import Field, parse_schema
from flowservice.engine import validation


def failing(
    field: Field, values: list[Any], kind: pa.DataType | None = None
) -> tuple[list[Any], dict[str, list[int]]]:
    converted, failures = validation.convert(field, pa.array(values, kind))
    rows: dict[str, list[int]] = {}
    for failure in failures:
        hit = [i for i, flag in enumerate(pc.fill_null(failure.rows, False).to_pylist()) if flag]
        if hit:
            rows.setdefault(failure.code, []).extend(hit)
    return converted.to_pylist(), rows


def test_integers_from_text_and_numbers() -> None:
    field = Field(("n",), "integer")
    values, rows = failing(field, [" 42", "-7", "+3", "4.5", "x", "", None, "99999999999999999999"])
    assert values == [42, -7, 3, None, None, None, None, None]
    assert rows == {"MAPPER-3700-400": [3, 4, 7]}
    values, rows = failing(field, [1.0, 2.5, None], pa.float64())
    assert values == [1, None, None] and rows == {"MAPPER-3700-400": [1]}


def test_numbers_booleans_and_strings() -> None:
    number = failing(Field(("x",), "number"), ["1.5", "1e3", ".5", "abc"])
    assert number == ([1.5, 1000.0, 0.5, None], {"MAPPER-3700-400": [3]})
    assert failing(Field(("b",), "boolean"), ["true", "FALSE", "1", "0", "maybe", None]) == (
        [True, False, True, False, None, None],
        {"MAPPER-3700-400": [4]},
    )
    assert failing(Field(("s",), "string"), [1, 2], pa.int64())[0] == ["1", "2"]


def test_dates_and_date_times() -> None:
    values, rows = failing(
        Field(("d",), "string", format="date"), ["2024-02-29", "2023-02-29", "2024-13-01", "24-1-1"]
    )
    assert values == [date(2024, 2, 29), None, None, None] and rows == {"MAPPER-3700-400": [1, 2, 3]}
    values, rows = failing(
        Field(("t",), "string", format="date-time"),
        [
            "2021-01-01T10:00:00Z",
            "2021-01-01 10:00:00",
            "2021-01-01T10:00:00.5+02:00",
            "2021-02-30T00:00:00Z",
            "noon",
        ],
    )
    assert values[:3] == [
        datetime(2021, 1, 1, 10, tzinfo=UTC),
        datetime(2021, 1, 1, 10, tzinfo=UTC),
        datetime(2021, 1, 1, 8, 0, 0, 500000, tzinfo=UTC),
    ]
    assert rows == {"MAPPER-3700-400": [3, 4]}


def test_required_and_constraints() -> None:
    field = Field(
        ("email",), "string", format="email", required=True, max_length=13, pattern="@example\\.com$"
    )
    _, rows = failing(
        field, ["a@example.com", "", None, "not-an-email", "long-name@example.com", "a@other.org"]
    )
    assert rows["INGEST-1555-400"] == [1, 2]
    assert sorted(set(rows["INGEST-1556-400"])) == [3, 4, 5]
    _, rows = failing(
        Field(("n",), "integer", minimum=0, maximum=10, enum=(1, 2, 3, 11)), ["1", "-1", "11", "4"]
    )
    assert sorted(rows["INGEST-1556-400"]) == [
        1,
        1,
        2,
        3,
    ]  # -1: < min and not in enum; 11 > max; 4 not in enum
    _, rows = failing(Field(("u",), "string", format="uri"), ["https://x.org/a", "mailto:a@b.c", "no scheme"])
    assert rows == {"INGEST-1556-400": [2]}


def test_lookaround_patterns_fall_back_to_python_regex() -> None:
    _, rows = failing(Field(("p",), "string", pattern="^(?!test).*"), ["prod", "test-1", None])
    assert rows == {"INGEST-1556-400": [1]}


def test_arrays_from_lists_and_json_text() -> None:
    field = Field(("tags",), "integer", array=True, maximum=5)
    values, rows = failing(field, [[1, 2], [3, 9], None], pa.list_(pa.int64()))
    assert values == [[1, 2], [3, 9], None] and rows == {"INGEST-1556-400": [1]}
    values, rows = failing(field, ["[1, 2]", '[1, "x"]', "not json", ""])
    assert values[0] == [1, 2] and rows == {"MAPPER-3700-400": [1, 2]}


def test_assemble_nests_objects_and_absent_objects_are_null() -> None:
    schema = parse_schema(
        {
            "title": "t",
            "type": "object",
            "properties": {
                "id": {"type": "integer"},
                "person": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
                },
            },
        }
    )
    leaves = {"id": pa.array([1, 2]), "person.name": pa.array(["a", None]), "person.age": pa.array([3, None])}
    batch = validation.assemble(schema, leaves, 2)
    assert batch.schema == validation.arrow_schema(schema)
    assert batch.to_pylist() == [{"id": 1, "person": {"name": "a", "age": 3}}, {"id": 2, "person": None}]


def test_summarize_counts_rows_per_code() -> None:
    failures = [
        validation.Failure(pa.array([True, False, True]), "A", "x", ""),
        validation.Failure(pa.array([True, True, None]), "B", "y", ""),
        validation.Failure(pa.array([False, False, True]), "A", "z", ""),
    ]
    failing_rows, counts = validation.summarize(failures, 3)
    assert failing_rows.to_pylist() == [True, True, True]
    assert counts == {"A": 2, "B": 2}


@pytest.mark.parametrize("rows", [0, 1, 200_000])
def test_sizes(rows: int) -> None:
    field = Field(("n",), "integer", required=True)
    values = pa.array([str(i) if i % 10 else "bad" for i in range(rows)], pa.string())
    converted, failures = validation.convert(field, values)
    failing_rows, counts = validation.summarize(failures, rows)
    assert len(converted) == rows
    assert counts.get("MAPPER-3700-400", 0) == len(range(0, rows, 10))
    assert (pc.sum(failing_rows.cast(pa.int64())).as_py() or 0) == len(range(0, rows, 10))
