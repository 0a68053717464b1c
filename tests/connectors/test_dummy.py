"""The dummy source is deterministic, countable, and fails exactly where its knobs say."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest

from flowservice import catalog
from flowservice.connectors.base import (
    ConnectorError,
    ExploreItem,
    ObjectMissing,
    SourceRefused,
    SourceUnreachable,
)
from flowservice.connectors.dummy import BAD_VALUE, DummySource
from flowservice.connectors.landing_zone import LandingZone
from flowservice.connectors.registry import DUMMY, file_source


def rows(source: DummySource, path: str) -> list[dict[str, str]]:
    with source.open(path) as stream:
        return list(csv.DictReader(io.TextIOWrapper(stream, encoding="utf-8")))


def test_defaults_three_files_of_a_thousand_clean_rows() -> None:
    source = DummySource({})
    objects = list(source.list("/"))
    assert [o.path for o in objects] == ["dummy/part-0000.csv", "dummy/part-0001.csv", "dummy/part-0002.csv"]
    assert [o.modified_ms for o in objects] == [1_704_067_200_000, 1_704_067_260_000, 1_704_067_320_000]
    first = rows(source, objects[0].path)
    assert len(first) == 1000
    assert list(first[0]) == ["id", "name", "amount", "when"]
    assert first[0]["id"] == "1" and first[0]["when"] == "2024-01-01T00:01:00Z"
    assert rows(source, objects[2].path)[-1]["id"] == "3000"
    assert all(float(r["amount"]) >= 0 for r in first)
    for obj in objects:
        with source.open(obj.path) as stream:
            assert len(stream.read()) == obj.size


def test_same_params_same_bytes_and_the_seed_changes_them() -> None:
    knobs = {"files": 2, "rows": 50, "badRows": 5, "seed": 7}
    a, b, c = DummySource(knobs), DummySource(knobs), DummySource(knobs | {"seed": 8})
    assert a.content(1) == b.content(1)
    assert list(a.list("dummy")) == list(b.list("dummy"))
    assert a.content(1) != c.content(1)
    assert a.bad_row_numbers(1) != c.bad_row_numbers(1)


def test_bad_rows_are_counted_per_file_in_the_numeric_column() -> None:
    source = DummySource({"files": 4, "rows": 100, "badRows": 5})
    bad = 0
    for obj in source.list("dummy/"):
        for row in rows(source, obj.path):
            if row["amount"] == BAD_VALUE:
                bad += 1
            else:
                float(row["amount"])
    assert bad == 4 * 5
    only_id = DummySource({"rows": 10, "badRows": 2, "columns": ["id", "city"]})
    data = rows(only_id, "dummy/part-0000.csv")
    assert [r["id"] for r in data].count(BAD_VALUE) == 2
    assert [r["city"] for r in data] == [f"city-{i}" for i in range(1, 11)]


def test_a_single_file_and_missing_paths() -> None:
    source = DummySource({"files": 2, "rows": 3})
    assert [o.path for o in source.list("/dummy/part-0001.csv")] == ["dummy/part-0001.csv"]
    with pytest.raises(ObjectMissing):
        source.list("dummy/part-0002.csv")
    with pytest.raises(ObjectMissing):
        source.open("elsewhere.csv")


def test_explore() -> None:
    source = DummySource({"files": 2})
    assert source.explore() == [ExploreItem("folder", "dummy", "dummy")]
    assert source.explore("/dummy") == [
        ExploreItem("file", "part-0000.csv", "dummy/part-0000.csv"),
        ExploreItem("file", "part-0001.csv", "dummy/part-0001.csv"),
    ]
    with pytest.raises(ObjectMissing):
        source.explore("dummy/part-0000.csv")


@pytest.mark.parametrize("operation", ["list", "open", "test", "explore"])
@pytest.mark.parametrize(("kind", "error"), [("transient", SourceUnreachable), ("terminal", SourceRefused)])
def test_fail_on_each_operation(operation: str, kind: str, error: type[ConnectorError]) -> None:
    source = DummySource({"failOn": operation, "failKind": kind})
    calls = {
        "list": lambda: source.list("dummy"),
        "open": lambda: source.open("dummy/part-0000.csv"),
        "test": source.test,
        "explore": source.explore,
    }
    with pytest.raises(error, match=operation):
        calls[operation]()
    for other, call in calls.items():
        if other != operation:
            call()


def test_fail_after_bytes_breaks_the_stream_midway() -> None:
    source = DummySource({"files": 1, "rows": 1000, "failAfterBytes": 10_000})
    received = bytearray()
    with source.open("dummy/part-0000.csv") as stream, pytest.raises(SourceUnreachable, match="10000 bytes"):
        while chunk := stream.read(1000):
            received += chunk
    assert 0 < len(received) <= 10_000
    assert bytes(received) == source.content(0)[: len(received)]
    # A file no longer than the limit reads whole.
    small = DummySource({"files": 1, "rows": 2, "failAfterBytes": 10_000})
    with small.open("dummy/part-0000.csv") as stream:
        assert stream.read() == small.content(0)


@pytest.mark.parametrize(
    "knobs",
    [
        {"rowz": 3},
        {"files": -1},
        {"rows": "10"},
        {"badRows": 11, "rows": 10},
        {"badRows": 1, "columns": ["name"]},
        {"columns": []},
        {"columns": ["a", "a"]},
        {"failOn": "read"},
        {"failKind": "sometimes"},
        {"failAfterBytes": True},
    ],
)
def test_bad_knobs_are_rejected(knobs: dict[str, Any]) -> None:
    with pytest.raises(ConnectorError):
        DummySource(knobs)


def test_close_is_recorded() -> None:
    source = DummySource({})
    source.close()
    assert source.closed


def test_registry(tmp_path: Path) -> None:
    dummy = file_source(DUMMY, {"files": 1}, landing_zone_root=None)
    assert isinstance(dummy, DummySource) and len(list(dummy.list(""))) == 1
    zone = file_source(catalog.DATA_LANDING_ZONE, {}, landing_zone_root=tmp_path / "dlz")
    assert isinstance(zone, LandingZone) and (tmp_path / "dlz").is_dir()
    assert DUMMY not in catalog.load().connection_specs
    with pytest.raises(ConnectorError, match="landing-zone folder"):
        file_source(catalog.DATA_LANDING_ZONE, {}, landing_zone_root=None)
    for spec_id, name in [
        (catalog.POSTGRESQL, "PostgreSQL"),
        (catalog.MYSQL, "MySQL"),
        (catalog.MARIADB, "MariaDB"),
    ]:
        with pytest.raises(ConnectorError, match=f"^{name} sources .* are table sources"):
            file_source(spec_id, {}, landing_zone_root=tmp_path)
    for spec_id in (catalog.HTTP_API, catalog.DATA_LAKE, "no-such-spec"):
        with pytest.raises(ConnectorError, match="not a file source"):
            file_source(spec_id, {}, landing_zone_root=tmp_path)
