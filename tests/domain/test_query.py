"""The list grammar as a pure AST: every documented example parses, every documented error has its code."""

from __future__ import annotations

from typing import Any

import pytest

from flowservice.domain import query
from flowservice.domain.query import Compare, Exists, Path, Segment, Sort, Value
from flowservice.errors import InvalidRequest


def parse(text: str) -> list[query.Filter]:
    return query.parse_property(text)


def code(text: str) -> str:
    with pytest.raises(InvalidRequest) as exc:
        parse(text)
    return exc.value.code


class TestDocumentedExamples:
    """digest 4.1, verbatim (URL-decoded)."""

    def test_simple_equality(self) -> None:
        assert parse("state==enabled") == [Compare(Path.of("state"), "==", (Value("enabled"),))]

    def test_nested_path(self) -> None:
        [f] = parse("params.tableName==lead")
        assert isinstance(f, Compare) and f.path.segments == (Segment("params"), Segment("tableName"))

    def test_array_paths(self) -> None:
        [f] = parse(
            "transformations[].params.segmentSelectors.selectors[].value.id==5722a16f-5e1f-4732-91b6-3b03943f759a"
        )
        assert isinstance(f, Compare)
        assert [s.each for s in f.path.segments] == [True, False, False, True, False, False]
        assert f.values == (Value("5722a16f-5e1f-4732-91b6-3b03943f759a"),)

    def test_comma_is_or(self) -> None:
        assert parse("sourceConnectionIds[]==9874984,6980696") == [
            Compare(Path.of("sourceConnectionIds[]"), "==", (Value("9874984"), Value("6980696")))
        ]

    def test_quoted_values_lose_their_quotes(self) -> None:
        assert parse('name=="CloudStorageToAEP"')[0] == Compare(
            Path.of("name"), "==", (Value("CloudStorageToAEP"),)
        )
        # the catalog docs' single '=' means '=='
        assert parse('attributes.sampleAttribute="abc"') == [
            Compare(Path.of("attributes.sampleAttribute"), "==", (Value("abc"),))
        ]

    def test_spaces_and_ranges(self) -> None:
        assert parse("description==Test description")[0].values == (Value("Test description"),)  # type: ignore[union-attr]
        assert parse("metrics.durationSummary.startedAtUTC>1593134665781")[0] == Compare(
            Path.of("metrics.durationSummary.startedAtUTC"), ">", (Value("1593134665781"),)
        )
        assert parse("lastRunDetails.startedAtUTC>=1670880253121")[0].op == ">="  # type: ignore[union-attr]

    def test_case_insensitive_status_fields(self) -> None:
        assert Path.of("metrics.statusSummary.status").case_insensitive
        assert Path.of("state").case_insensitive
        assert not Path.of("name").case_insensitive

    def test_existence(self) -> None:
        assert parse("lastRunDetails") == [Exists(Path.of("lastRunDetails"))]
        assert parse("!description") == [Exists(Path.of("description"), negate=True)]

    def test_explode_false_form_is_and_of_expressions(self) -> None:
        assert parse("state==enabled,flowSpec.id==x,y") == [
            Compare(Path.of("state"), "==", (Value("enabled"),)),
            Compare(Path.of("flowSpec.id"), "==", (Value("x"), Value("y"))),
        ]
        assert parse('name=="a,b==c",id==1') == [
            Compare(Path.of("name"), "==", (Value("a,b==c"),)),
            Compare(Path.of("id"), "==", (Value("1"),)),
        ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name~abc", "1440"),
        ("createdAt<=1,2", "1443"),
        ("id>=5", "1448"),
        ("flowId>abc", "1448"),
        ("a..b==1", "1449"),
        ("==1", "1449"),
        ("a[0]==1", "1449"),
        ("state!>1", "1450"),
        ("state===1", "1450"),
        ("state=>1", "1450"),
        ("!state==1", "1450"),
        ("createdAt>abc", "1452"),
        ("createdAt==", "1453"),
        ("state==enabled,", "1453"),
        ("", "1453"),
    ],
)
def test_documented_errors(text: str, expected: str) -> None:
    assert code(text) == expected


class TestListParameters:
    def parse(self, params: list[tuple[str, str]]) -> query.ListQuery:
        return query.parse_list_query(params)

    def test_defaults_and_repeated_property_is_and(self) -> None:
        q = self.parse([("property", "flowId==a"), ("property", "state==failed")])
        assert len(q.filters) == 2 and q.limit == 100 and not q.count and q.order == ()

    def test_orderby_forms(self) -> None:
        assert query.parse_orderby("name") == [Sort(Path.of("name"), False)]
        assert query.parse_orderby("+name") == [Sort(Path.of("name"), False)]
        assert query.parse_orderby(" name") == [Sort(Path.of("name"), False)]  # an unencoded '+'
        assert query.parse_orderby("-createdAt") == [Sort(Path.of("createdAt"), True)]

    @pytest.mark.parametrize(
        ("params", "expected"),
        [
            ([("orderby", "--name")], "1432"),
            ([("orderby", "#id")], "1433"),
            ([("orderby", "a[].b")], "1433"),
            ([("limit", "10"), ("count", "true")], "1401"),
            ([("limit", "0")], "1452"),
            ([("limit", "1001")], "1452"),
            ([("limit", "ten")], "1452"),
            ([("count", "yes")], "1454"),
            ([("testParam", "1")], "1451"),
            ([("start", "0")], "1451"),
        ],
    )
    def test_errors(self, params: list[tuple[str, str]], expected: str) -> None:
        with pytest.raises(InvalidRequest) as exc:
            self.parse(params)
        assert exc.value.code == expected

    def test_count_false_with_limit_is_fine_as_aepp_sends_it(self) -> None:
        q = self.parse([("limit", "10"), ("count", "False")])
        assert q.limit == 10 and not q.count
        assert self.parse([("count", "true")]).count

    def test_too_many_filters_is_refused(self) -> None:
        with pytest.raises(InvalidRequest):
            self.parse([("property", f"a{i}==1") for i in range(query.MAX_FILTERS + 1)])


DOC: dict[str, Any] = {
    "id": "f1",
    "state": "enabled",
    "name": "Customers",
    "createdAt": 1670000000000,
    "sourceConnectionIds": ["s1", "s2"],
    "scheduleParams": {"startTime": "1597784298", "interval": "30"},
    "options": {"partialIngestionPercent": 10.0, "errorDiagnosticsEnabled": True},
    "transformations": [
        {"name": "Mapping", "params": {"mappingId": "m1"}},
        {"name": "Copy", "params": {"deltaColumn": {"name": "updated"}}},
    ],
    "metrics": {"statusSummary": {"status": "failed"}},
    "description": None,
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("state==enabled", True),
        ("state==ENABLED", True),
        ("name==customers", False),
        ("metrics.statusSummary.status==Failed", True),
        ("sourceConnectionIds[]==s9,s2", True),
        ("sourceConnectionIds[]==s9", False),
        ("sourceConnectionIds[]!=s9", True),
        ("sourceConnectionIds[]!=s1", False),
        ("transformations[].params.deltaColumn.name==updated", True),
        ("transformations[].name==Mapping", True),
        ("scheduleParams.startTime>1597784297", True),
        ("scheduleParams.startTime==1597784298", True),
        ("options.partialIngestionPercent==10", True),
        ("options.errorDiagnosticsEnabled==true", True),
        ("createdAt>=1670000000000", True),
        ("createdAt<1670000000000", False),
        ("description", False),
        ("!description", True),
        ("lastRunDetails", False),
        ("!lastRunDetails", True),
        ("name!=Other", True),
        ("missing.field!=x", True),
        ("name.first==x", False),
        ("options>1", False),
    ],
)
def test_matches(text: str, expected: bool) -> None:
    assert query.matches(DOC, parse(text)) is expected
