"""Expressions evaluated over real Arrow record batches: every function, nulls, failure masks, paths.

Each test builds a small batch, evaluates a parsed expression and compares the values per row, so
a wrong kernel, a lost null or a failure reported on the wrong row shows up as a list difference.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from flowservice.domain.expressions import FUNCTIONS, Binary, Call, Constant, FieldRef, parse
from flowservice.engine.mapping import TIMESTAMP, Evaluated, column, constant, evaluate

UTC = dt.UTC


def batch(**columns: Any) -> pa.RecordBatch:
    arrays = {
        name: values if isinstance(values, pa.Array) else pa.array(values) for name, values in columns.items()
    }
    return pa.RecordBatch.from_pydict(arrays)


def run(text: str, **columns: Any) -> Evaluated:
    if not columns:
        columns = {"row": [0, 1]}
    return evaluate(parse(text), batch(**columns))


def values(text: str, **columns: Any) -> list[Any]:
    """The values of an expression that must not fail on any row."""
    result = run(text, **columns)
    assert result.failed is None, result.reason
    assert result.reason is None
    return list(result.values.to_pylist())


def failed(result: Evaluated) -> list[bool]:
    assert result.failed is not None, "expected failed rows"
    return list(result.failed.to_pylist())


def ts(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0
) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


PEOPLE = pa.array(
    [
        {"name": {"first": "Ann", "last": "Lee"}, "age": 31},
        None,
        {"name": None, "age": 40},
        {"name": {"first": None, "last": "Poe"}, "age": None},
    ],
    pa.struct([("name", pa.struct([("first", pa.string()), ("last", pa.string())])), ("age", pa.int64())]),
)


class TestColumn:
    def test_top_level(self) -> None:
        b = batch(a=[1, 2, None])
        assert column(b, "a").to_pylist() == [1, 2, None]

    def test_dotted_path_into_structs_keeps_the_parents_nulls(self) -> None:
        b = batch(person=PEOPLE)
        assert column(b, "person.age").to_pylist() == [31, None, 40, None]
        assert column(b, "person.name.first").to_pylist() == ["Ann", None, None, None]
        assert column(b, "person.name.last").to_pylist() == ["Lee", None, None, "Poe"]

    def test_a_name_with_a_dot_wins_over_a_path(self) -> None:
        b = batch(**{"person.age": ["as written"] * 4, "person": PEOPLE})
        assert column(b, "person.age").to_pylist() == ["as written"] * 4
        assert column(b, "person.name.last").to_pylist() == ["Lee", None, None, "Poe"]

    @pytest.mark.parametrize(
        "path", ["missing", "person.missing", "person.age.more", "person.name.first.x", "a.b"]
    )
    def test_missing_is_all_null_not_an_error(self, path: str) -> None:
        found = column(batch(person=PEOPLE, a=[1, 2, 3, 4]), path)
        assert found.to_pylist() == [None] * 4
        assert found.type == pa.null()

    def test_names_are_case_sensitive(self) -> None:
        assert column(batch(Name=["x"]), "name").to_pylist() == [None]

    def test_evaluated_fields(self) -> None:
        assert values("upper(person.name.first)", person=PEOPLE) == ["ANN", None, None, None]
        assert values("person.age + 1", person=PEOPLE) == [32, None, 41, None]
        assert values("`first name`", **{"first name": ["a", None]}) == ["a", None]
        assert values("lower(`the person`.`full name`)", **{"the person": [{"full name": "Ann Lee"}]}) == [
            "ann lee"
        ]
        assert values("is_empty(nowhere)", row=[1, 2]) == [True, True]

    def test_dictionary_columns_read_as_text(self) -> None:
        encoded = pa.array(["a", "b", None, "a"]).dictionary_encode()
        assert values('concat(c, "!")', c=encoded) == ["a!", "b!", "!", "a!"]
        assert values('c == "a"', c=encoded) == [True, False, None, True]

    def test_large_strings_read_as_text(self) -> None:
        assert values("upper(c)", c=pa.array(["x", None], pa.large_string())) == ["X", None]


class TestConstant:
    @pytest.mark.parametrize(
        ("value", "arrow_type"),
        [
            (7, pa.int64()),
            (1.5, pa.float64()),
            ("x", pa.string()),
            (True, pa.bool_()),
            (None, pa.null()),
            (Decimal("1.50"), pa.decimal128(3, 2)),
            (dt.date(2020, 1, 2), pa.date32()),
        ],
    )
    def test_types(self, value: object, arrow_type: pa.DataType) -> None:
        array = constant(value, 3)
        assert array.type == arrow_type
        assert array.to_pylist() == [value] * 3

    def test_empty(self) -> None:
        assert len(constant("x", 0)) == 0

    def test_literals_in_expressions(self) -> None:
        assert values("1") == [1, 1]
        assert values("2.5") == [2.5, 2.5]
        assert values("'x'") == ["x", "x"]
        assert values("true") == [True, True]
        assert values("null") == [None, None]


class TestTextFunctions:
    def test_concat_turns_nulls_into_empty_text(self) -> None:
        result = run('concat(a, " ", b)', a=["Ann", None, None], b=["Lee", "Poe", None])
        assert result.values.to_pylist() == ["Ann Lee", " Poe", " "]
        assert result.values.type == pa.string()

    def test_concat_reads_other_types_as_text(self) -> None:
        assert values("concat(n, '-', f, '-', t)", n=[1, None], f=[1.5, 2.0], t=[True, False]) == [
            "1-1.5-true",
            "-2-false",
        ]

    def test_concat_of_one(self) -> None:
        assert values("concat(a)", a=["x", None]) == ["x", ""]

    def test_case_and_trim(self) -> None:
        a = ["MiXeD", " ünï ", None, "\tpad\n"]
        assert values("lower(a)", a=a) == ["mixed", " ünï ", None, "\tpad\n"]
        assert values("upper(a)", a=a) == ["MIXED", " ÜNÏ ", None, "\tPAD\n"]
        assert values("trim(a)", a=a) == ["MiXeD", "ünï", None, "pad"]

    def test_text_functions_read_numbers_as_text(self) -> None:
        result = run("upper(n)", n=[1, None])
        assert result.values.to_pylist() == ["1", None]
        assert result.values.type == pa.string()

    def test_len(self) -> None:
        assert values("len(a)", a=["", "abc", "né", None]) == [0, 3, 2, None]
        assert values("len(a)", a=[[1, 2], [], None]) == [2, 0, None]
        assert run("len(a)", a=["x"]).values.type == pa.int64()

    def test_is_empty(self) -> None:
        assert values("is_empty(a)", a=["", " ", "x", None]) == [True, False, False, True]
        assert values("is_empty(a)", a=[0, None]) == [False, True]
        assert values("is_empty(a)", a=[[], [1], None]) == [True, False, True]
        assert values("is_empty(null)") == [True, True]

    def test_substr_is_zero_based(self) -> None:
        a = ["This is a substring test", "ab", "", None]
        assert values("substr(a, 7, 8)", a=a) == [" a subst", "", "", None]
        assert values("substr(a, 0, 1)", a=a) == ["T", "a", "", None]
        assert values("substr(a, 1)", a=a) == ["his is a substring test", "b", "", None]
        assert values("substr(a, 0, 0)", a=a) == ["", "", "", None]

    def test_text_of_a_record_fails_the_rows_that_have_one(self) -> None:
        result = run("lower(person)", person=PEOPLE)
        assert failed(result) == [True, False, True, True]
        assert result.values.to_pylist() == [None] * 4
        assert result.reason is not None
        assert (
            result.reason
            == "lower(person): a struct<name: struct<first: string, la... value cannot be read as text"
        )


class TestToInteger:
    def test_strings(self) -> None:
        a = ["42", " -7 ", "+3", "007", "1.5", "abc", "", None, "1 2", "٣"]
        result = run("to_integer(a)", a=a)
        assert result.values.to_pylist() == [42, -7, 3, 7, None, None, None, None, None, None]
        assert failed(result) == [False, False, False, False, True, True, True, False, True, True]
        assert result.reason == "to_integer(a): the text is not an integer in the int64 range"
        assert result.values.type == pa.int64()

    def test_int64_bounds(self) -> None:
        a = [str(2**63 - 1), str(-(2**63)), str(2**63), str(-(2**63) - 1), "9" * 38, "9" * 39]
        result = run("to_integer(a)", a=a)
        assert result.values.to_pylist() == [2**63 - 1, -(2**63), None, None, None, None]
        assert failed(result) == [False, False, True, True, True, True]

    def test_floats_truncate_toward_zero(self) -> None:
        f = [2.9, -2.9, 0.0, None, float("nan"), float("inf"), 1e19, -9.2e18]
        result = run("to_integer(f)", f=f)
        assert result.values.to_pylist() == [2, -2, 0, None, None, None, None, -9200000000000000000]
        assert failed(result) == [False, False, False, False, True, True, True, False]
        assert result.reason == "to_integer(f): the number is not finite or out of the integer range"

    def test_integers_and_booleans(self) -> None:
        assert values("to_integer(n)", n=pa.array([1, None], pa.int8())) == [1, None]
        assert values("to_integer(b)", b=[True, False, None]) == [1, 0, None]
        result = run("to_integer(u)", u=pa.array([1, 2**64 - 1], pa.uint64()))
        assert result.values.to_pylist() == [1, None]
        assert failed(result) == [False, True]

    def test_null(self) -> None:
        result = run("to_integer(null)")
        assert result.values.to_pylist() == [None, None] and result.values.type == pa.int64()
        assert result.failed is None

    def test_timestamps_are_not_numbers(self) -> None:
        result = run("to_integer(t)", t=[dt.datetime(2020, 1, 1), None])
        assert failed(result) == [True, False]
        assert result.reason == "to_integer(t): a timestamp[us] value is not a number"


class TestToDecimal:
    def test_strings(self) -> None:
        a = ["1.5", " -2e3 ", ".5", "5.", "+0.25", "abc", "NaN", "1e999", "", None, "1,5"]
        result = run("to_decimal(a)", a=a)
        assert result.values.to_pylist() == [1.5, -2000.0, 0.5, 5.0, 0.25, None, None, None, None, None, None]
        assert failed(result) == [False, False, False, False, False, True, True, True, True, False, True]
        assert result.reason == "to_decimal(a): the text is not a number"
        assert result.values.type == pa.float64()

    def test_numbers(self) -> None:
        assert values("to_decimal(n)", n=[1, None]) == [1.0, None]
        assert values("to_decimal(d)", d=pa.array([Decimal("1.25")], pa.decimal128(5, 2))) == [1.25]
        assert values("to_decimal(b)", b=[True]) == [1.0]
        assert run("to_decimal(null)").values.type == pa.float64()


class TestToTimestamp:
    def test_strftime(self) -> None:
        result = run(
            'to_timestamp(a, "%Y-%m-%d %H:%M:%S")', a=["2020-01-02 03:04:05", "2020-01-02", "bad", "", None]
        )
        assert result.values.type == TIMESTAMP
        assert result.values.to_pylist() == [ts(2020, 1, 2, 3, 4, 5), None, None, None, None]
        assert failed(result) == [False, True, True, True, False]
        assert result.reason == "to_timestamp(a, ...): the text does not match the format '%Y-%m-%d %H:%M:%S'"

    def test_java_style(self) -> None:
        assert values('to_timestamp(a, "yyyy-MM-dd HH:mm:ss")', a=["2020-01-02 03:04:05"]) == [
            ts(2020, 1, 2, 3, 4, 5)
        ]
        assert values('to_timestamp(a, "dd/MM/yyyy")', a=["31/12/1999"]) == [ts(1999, 12, 31)]
        assert values("to_timestamp(a, \"yyyy-MM-dd'T'HH:mm\")", a=["2020-01-02T03:04"]) == [
            ts(2020, 1, 2, 3, 4)
        ]
        assert values('to_timestamp(a, "d MMM yyyy hh:mm a")', a=["2 Mar 2020 03:04 PM"]) == [
            ts(2020, 3, 2, 15, 4)
        ]

    def test_offsets_become_utc(self) -> None:
        a = ["2020-01-02T03:04:05+01:00", "2020-01-02T03:04:05-0230", "2020-01-02T03:04:05Z"]
        assert values("to_timestamp(a, \"yyyy-MM-dd'T'HH:mm:ssXXX\")", a=a) == [
            ts(2020, 1, 2, 2, 4, 5),
            ts(2020, 1, 2, 5, 34, 5),
            ts(2020, 1, 2, 3, 4, 5),
        ]

    def test_fractional_seconds(self) -> None:
        a = [
            "2020-01-02 03:04:05.5",
            "2020-01-02 03:04:05.123",
            "2020-01-02 03:04:05.123456789",
            "2020-01-02 03:04:05",
            "2020-01-02 03:04:05,25",
            "2020-01-02 03:04:5.1",
        ]
        result = run('to_timestamp(a, "yyyy-MM-dd HH:mm:ss.SSS")', a=a)
        assert result.values.to_pylist() == [
            ts(2020, 1, 2, 3, 4, 5, 500000),
            ts(2020, 1, 2, 3, 4, 5, 123000),
            ts(2020, 1, 2, 3, 4, 5, 123456),  # microseconds: the rest is cut
            ts(2020, 1, 2, 3, 4, 5),
            ts(2020, 1, 2, 3, 4, 5, 250000),
            None,
        ]
        assert failed(result) == [False, False, False, False, False, True]

    def test_fraction_and_offset(self) -> None:
        assert values(
            "to_timestamp(a, \"yyyy-MM-dd'T'HH:mm:ss.SSSXXX\")", a=["2020-01-02T03:04:05.250+02:00"]
        ) == [ts(2020, 1, 2, 1, 4, 5, 250000)]

    def test_times_pass_through(self) -> None:
        naive = pa.array([dt.datetime(2020, 1, 2, 3, 4, 5), None], pa.timestamp("ns"))
        assert values('to_timestamp(t, "%Y")', t=naive) == [ts(2020, 1, 2, 3, 4, 5), None]
        paris = pa.array([dt.datetime(2020, 1, 2, 3, 4, 5)], pa.timestamp("s", tz="Europe/Paris"))
        result = run('to_timestamp(t, "%Y")', t=paris)
        assert result.values.type == TIMESTAMP
        assert result.values.to_pylist() == [ts(2020, 1, 2, 3, 4, 5)]
        assert values('to_timestamp(d, "%Y")', d=[dt.date(2020, 1, 2)]) == [ts(2020, 1, 2)]

    def test_numbers_are_read_as_text(self) -> None:
        assert values('to_timestamp(n, "yyyyMMdd")', n=[20200102]) == [ts(2020, 1, 2)]

    def test_null(self) -> None:
        result = run('to_timestamp(null, "%Y")')
        assert result.values.type == TIMESTAMP and result.failed is None


class TestArithmetic:
    def test_integers_stay_integers(self) -> None:
        result = run("a + b * 2 - 1", a=[1, 10, None], b=[2, -3, 4])
        assert result.values.to_pylist() == [4, 3, None]
        assert result.values.type == pa.int64()

    def test_mixed_numbers_are_floats(self) -> None:
        result = run("a + f", a=[1, 2], f=[0.5, None])
        assert result.values.to_pylist() == [1.5, None]
        assert result.values.type == pa.float64()

    def test_division_is_always_float(self) -> None:
        assert values("a / b", a=[7, -7, None], b=[2, 2, 0]) == [3.5, -3.5, None]
        assert run("a / b", a=[4], b=[2]).values.type == pa.float64()

    def test_division_by_zero_fails_the_row(self) -> None:
        result = run("a / b", a=[1, 1.5, None, 0], b=[0, 0.0, 0, 1])
        assert result.values.to_pylist() == [None, None, None, 0.0]
        assert failed(result) == [True, True, False, False]
        assert result.reason == "a / b: division by zero"

    def test_numeric_strings_are_read_as_decimals(self) -> None:
        result = run("a + 1", a=["1", " 2.5 ", "x", None])
        assert result.values.to_pylist() == [2.0, 3.5, None, None]
        assert result.values.type == pa.float64()
        assert failed(result) == [False, False, True, False]
        assert result.reason == "a + 1: the text is not a number"
        assert values('a * "2"', a=[3]) == [6.0]

    def test_booleans_are_not_numbers(self) -> None:
        result = run("b + 1", b=[True, None])
        assert failed(result) == [True, False]
        assert result.reason == "b + 1: a bool value is not a number"

    @pytest.mark.parametrize(
        ("text", "a", "b", "expected", "overflow"),
        [
            (
                "a + b",
                [2**62, 2**63 - 1, -(2**63), 5],
                [2**62, 1, -1, -6],
                [None, None, None, -1],
                [True, True, True, False],
            ),
            (
                "a - b",
                [-(2**63), 2**63 - 1, 0, 0],
                [1, -1, -(2**63), 2**63 - 1],
                [None, None, None, -(2**63) + 1],
                [True, True, True, False],
            ),
            (
                "a * b",
                [2**32, -(2**63), -1, 3037000499, 0, -(2**62)],
                [2**32, -1, -(2**63), 3037000499, -(2**63), 2],
                [None, None, None, 3037000499**2, 0, -(2**63)],
                [True, True, True, False, False, False],
            ),
        ],
    )
    def test_integer_overflow_fails_the_row(
        self, text: str, a: list[int], b: list[int], expected: list[int | None], overflow: list[bool]
    ) -> None:
        result = run(text, a=a, b=b)
        assert result.values.to_pylist() == expected
        assert failed(result) == overflow
        assert result.reason == f"{text}: the result is out of the integer range"

    def test_unary_minus(self) -> None:
        assert values("-a", a=[1, -2, None]) == [-1, 2, None]
        assert values("-f", f=[1.5]) == [-1.5]
        result = run("-a", a=[-(2**63), 1])
        assert result.values.to_pylist() == [None, -1]
        assert failed(result) == [True, False]

    def test_nulls_propagate(self) -> None:
        assert values("a + null", a=[1, 2]) == [None, None]
        result = run("missing * 2", a=[1, 2])
        assert result.values.to_pylist() == [None, None]
        assert result.values.type == pa.int64()
        assert run("missing / 2", a=[1]).values.type == pa.float64()

    def test_precedence_is_honoured(self) -> None:
        assert values("(a + 1) * 2 - -a", a=[3]) == [11]


class TestComparisons:
    def test_numbers(self) -> None:
        assert values("a < b", a=[1, 2, None], b=[1.5, 1.5, 1.5]) == [True, False, None]
        assert values("a == 2", a=[2.0, 2.5]) == [True, False]

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("a > 5", [True, False, True, None, False]),
            ("5 < a", [True, False, True, None, False]),
            ("a == 10", [True, False, False, None, False]),
            ("a != 10", [False, True, True, None, True]),
            ("a >= 9.5", [True, False, True, None, False]),
        ],
    )
    def test_numbers_with_numeric_strings_compare_numerically(
        self, text: str, expected: list[bool | None]
    ) -> None:
        # "10" > "5" is false as text; numerically it is true. "abc" falls back to text: "abc" > "5".
        assert values(text, a=["10", " 3 ", "abc", None, "-1e3"]) == expected

    def test_strings_compare_as_text(self) -> None:
        assert values("a < b", a=["10", "apple", "B"], b=["9", "banana", "a"]) == [True, True, True]

    def test_string_equality(self) -> None:
        assert values('a == "x"', a=["x", "X", None]) == [True, False, None]
        assert values('a != "x"', a=["x", "X", None]) == [False, True, None]

    def test_nulls_propagate(self) -> None:
        assert values("a == null", a=[1, None]) == [None, None]
        assert values("missing < 3", a=[1]) == [None]

    def test_timestamps_with_text(self) -> None:
        t = pa.array([dt.datetime(2020, 1, 1), dt.datetime(2022, 1, 1)], pa.timestamp("us"))
        assert values('t < "2021-01-01"', t=t) == [True, False]

    def test_booleans(self) -> None:
        assert values("b == true", b=[True, False, None]) == [True, False, None]
        assert values('b == "true"', b=[True, False]) == [True, False]

    def test_records_cannot_be_compared(self) -> None:
        result = run("person == 1", person=PEOPLE)
        assert failed(result) == [True, False, True, True]
        assert result.reason is not None and "cannot compare struct<" in result.reason


class TestLogic:
    A = [True, True, True, False, False, False, None, None, None]
    B = [True, False, None, True, False, None, True, False, None]

    def test_and_is_kleene(self) -> None:
        assert values("a and b", a=self.A, b=self.B) == [
            True,
            False,
            None,
            False,
            False,
            False,
            None,
            False,
            None,
        ]

    def test_or_is_kleene(self) -> None:
        assert values("a or b", a=self.A, b=self.B) == [True, True, True, True, False, None, True, None, None]

    def test_not(self) -> None:
        assert values("not a", a=[True, False, None]) == [False, True, None]
        assert values("not a > 1", a=[1, 2]) == [True, False]

    def test_text_true_and_false(self) -> None:
        result = run("a and true", a=["true", "FALSE", " True ", "yes", None])
        assert result.values.to_pylist() == [True, False, True, None, None]
        assert failed(result) == [False, False, False, True, False]
        assert result.reason == "a and true: the text is not true or false"

    def test_numbers_are_not_conditions(self) -> None:
        result = run("not n", n=[1, None])
        assert failed(result) == [True, False]
        assert result.reason == "not n: a int64 value is not true or false"

    def test_a_failure_counts_only_where_the_right_side_decides(self) -> None:
        flags = [False, True, None, True]
        text = ["x", "x", "x", "5"]
        result = run("f and to_integer(a) > 1", f=flags, a=text)
        assert result.values.to_pylist() == [False, None, None, True]
        assert failed(result) == [False, True, True, False]
        result = run("f or to_integer(a) > 1", f=flags, a=text)
        assert failed(result) == [True, False, True, False]


class TestConditionals:
    def test_iif(self) -> None:
        result = run('iif(a > 1, "big", "small")', a=[1, 2, None])
        assert result.values.to_pylist() == ["small", "big", "small"]  # a null condition takes else

    def test_iif_fails_only_where_the_failing_branch_is_taken(self) -> None:
        result = run("iif(ok, to_integer(a), 0)", ok=[True, False, True, None], a=["1", "x", "y", "z"])
        assert result.values.to_pylist() == [1, 0, None, 0]
        assert failed(result) == [False, False, True, False]
        assert values("iif(ok, to_integer(a), -1)", ok=[False, False], a=["x", "y"]) == [-1, -1]

    def test_iif_condition_failures_count(self) -> None:
        result = run("iif(to_integer(a) > 1, 1, 0)", a=["5", "x"])
        assert result.values.to_pylist() == [1, None]
        assert failed(result) == [False, True]

    def test_iif_branch_types_are_unified(self) -> None:
        mixed_numbers = run("iif(a, 1, 2.5)", a=[True, False])
        assert mixed_numbers.values.to_pylist() == [1.0, 2.5] and mixed_numbers.values.type == pa.float64()
        mixed = run('iif(a, 1, "x")', a=[True, False])
        assert mixed.values.to_pylist() == ["1", "x"] and mixed.values.type == pa.string()
        with_null = run("iif(a, null, 3)", a=[True, False])
        assert with_null.values.to_pylist() == [None, 3] and with_null.values.type == pa.int64()

    def test_coalesce(self) -> None:
        assert values('coalesce(a, b, "none")', a=["x", None, None], b=["y", "z", None]) == ["x", "z", "none"]
        assert values("coalesce(a)", a=[1, None]) == [1, None]
        result = run("coalesce(a, f)", a=[1, None], f=[9.5, 2.5])
        assert result.values.to_pylist() == [1.0, 2.5] and result.values.type == pa.float64()
        assert values("coalesce(a, 'n/a')", a=[1, None]) == ["1", "n/a"]
        assert values("coalesce(missing, 0)", a=[1]) == [0]

    def test_coalesce_ignores_failures_after_the_value_it_took(self) -> None:
        result = run("coalesce(b, to_integer(a), 0)", b=[7, None, None], a=["x", "x", None])
        assert result.values.to_pylist() == [7, None, 0]
        assert failed(result) == [False, True, False]


class TestEvaluated:
    def test_no_failures_means_none(self) -> None:
        result = run("a + 1", a=[1])
        assert result.failed is None and result.reason is None

    def test_failed_rows_are_null_and_the_mask_has_no_nulls(self) -> None:
        result = run("concat(to_integer(a), 'x')", a=["1", "bad", None])
        assert result.values.to_pylist() == ["1x", None, "x"]
        assert result.failed is not None and result.failed.null_count == 0
        assert failed(result) == [False, True, False]

    def test_different_reasons_are_joined(self) -> None:
        result = run("to_integer(a) + to_decimal(b)", a=["x", "1"], b=["1", "y"])
        assert failed(result) == [True, True]
        assert (
            result.reason
            == "to_integer(a): the text is not an integer in the int64 range; to_decimal(b): the text is not a number"
        )

    def test_same_failure_twice_is_one_reason(self) -> None:
        result = run("to_integer(a) + to_integer(a)", a=["x"])
        assert result.reason == "to_integer(a): the text is not an integer in the int64 range"

    def test_long_arguments_are_cut_in_reasons(self) -> None:
        result = run("to_integer(concat(" + ", ".join(["a"] * 40) + "))", a=["x"])
        assert result.reason is not None and len(result.reason) < 160

    def test_hand_built_trees_evaluate(self) -> None:
        expr = Binary("+", FieldRef(("a",)), Call("len", (Constant("abc"),)))
        assert evaluate(expr, batch(a=[1])).values.to_pylist() == [4]

    SAMPLES = {
        "concat": ("concat(s, n)", ["x1"]),
        "coalesce": ("coalesce(missing, s)", ["x"]),
        "lower": ("lower(s)", ["x"]),
        "upper": ("upper(s)", ["X"]),
        "trim": ("trim(s)", ["x"]),
        "len": ("len(s)", [1]),
        "is_empty": ("is_empty(s)", [False]),
        "to_integer": ("to_integer(n)", [1]),
        "to_decimal": ("to_decimal(n)", [1.0]),
        "to_timestamp": ('to_timestamp(d, "yyyy-MM-dd")', [ts(2020, 1, 2)]),
        "iif": ("iif(n == 1, s, 'y')", ["x"]),
        "substr": ("substr(s, 0, 1)", ["x"]),
    }

    def test_every_function_is_implemented(self) -> None:
        assert set(self.SAMPLES) == set(FUNCTIONS)
        for text, expected in self.SAMPLES.values():
            assert values(text, s=["x"], n=[1], d=["2020-01-02"]) == expected, text


def test_a_large_batch_is_evaluated_in_whole_columns() -> None:
    rows = 100_000
    ids = pa.array(range(rows), pa.int64())
    # every 10th code is not a number; names and dates vary per row
    codes = pc.if_else(
        pc.equal(pc.divide(ids, 10), pc.divide(pc.add(ids, 1), 10)), pc.cast(ids, pa.string()), "n/a"
    )
    names = pc.binary_join_element_wise("user-", pc.cast(ids, pa.string()), "")
    days = pc.binary_join_element_wise(
        "2024-01-", pc.utf8_lpad(pc.cast(pc.add(pc.bit_wise_and(ids, 15), 1), pa.string()), 2, "0"), ""
    )
    data = batch(id=ids, code=codes, name=names, day=days)
    expr = parse(
        'iif(to_integer(code) > 50000, upper(concat(name, "/", code)), trim(substr(name, 0, 6))) '
        '!= "" and to_timestamp(day, "yyyy-MM-dd") >= to_timestamp("2024-01-08", "yyyy-MM-dd")'
    )
    result = evaluate(expr, data)
    assert len(result.values) == rows
    assert result.failed is not None
    assert result.failed.true_count == rows // 10  # exactly the "n/a" codes
    assert result.reason == "to_integer(code): the text is not an integer in the int64 range"
    assert result.values.to_pylist()[:10] == [False] * 7 + [True, True, None]
    assert pc.sum(pc.fill_null(result.values, False)).as_py() == sum(
        1 for i in range(rows) if i % 10 != 9 and (i & 15) + 1 >= 8
    )
    upper = evaluate(parse('concat(upper(name), "-", to_integer(code) * 2)'), data)
    assert upper.values.to_pylist()[:3] == ["USER-0-0", "USER-1-2", "USER-2-4"]
    assert upper.values[rows - 2].as_py() == f"USER-{rows - 2}-{(rows - 2) * 2}"
