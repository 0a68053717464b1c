"""The SQL compiler means what the pure evaluator means, on SQLite and PostgreSQL, and uses the indexes."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select, text

from flowservice.domain import query
from flowservice.domain.tenancy import Tenant
from flowservice.services.context import Services
from flowservice.store.filters import compile_filters
from flowservice.store.repos import resources as repos
from flowservice.store.tables import Run
from tests.store.test_tenancy import tenant as new_tenant

DOCS: list[dict[str, Any]] = [
    {
        "name": "alpha",
        "state": "enabled",
        "connectionSpec": {"id": "s1"},
        "tags": ["x", "y"],
        "nested": {"flag": True, "count": 3, "text": "3", "when": "1597784298"},
        "items": [{"kind": "a", "n": 1}, {"kind": "b", "n": 5}],
        "description": "Test description",
    },
    {
        "name": "Beta",
        "state": "Disabled",
        "connectionSpec": {"id": "s2"},
        "tags": [],
        "nested": {"flag": False, "count": 3.5, "text": "abc"},
        "items": [{"kind": "c"}],
        "mixed": [1, "2", {"k": "v"}, None, True],
    },
    {
        "name": "gamma",
        "state": "enabled",
        "connectionSpec": {"id": "s1"},
        "tags": "not a list",
        "nested": None,
        "items": {"kind": "a"},
        "description": None,
        "deep": {"a": [{"b": [{"c": "hit"}]}, {"b": "str"}, 7]},
    },
    {
        "name": "123",
        "state": "enabled",
        "connectionSpec": {"id": "s3"},
        "nested": {"count": -2, "when": "12a"},
        "mixed": ["x"],
        "items": [],
    },
]

FILTERS = [
    "name==alpha",
    "name==ALPHA",
    "name!=alpha",
    "state==ENABLED",
    "state==disabled",
    "state!=enabled",
    "connectionSpec.id==s1,s3",
    "connectionSpec.id!=s1",
    "createdAt>0",
    "createdAt<=1",
    "updatedAt>=1",
    "tags[]==x",
    "tags[]==x,nothing",
    "tags[]!=x",
    "tags[]",
    "!tags[]",
    "tags",
    "!tags",
    "nested.flag==true",
    "nested.flag==false",
    "nested.count==3",
    "nested.count==3.0",
    "nested.count==3.5",
    "nested.count>3",
    "nested.count>=3",
    "nested.count<0",
    "nested.count!=3",
    "nested.text==3",
    "nested.text==abc",
    "nested.when>1000",
    "nested.when==1597784298",
    "nested",
    "!nested",
    "items[].kind==a",
    "items[].kind==A",
    "items[].n>4",
    "items[].n",
    "!items[].n",
    "mixed[]==1",
    "mixed[]==2",
    "mixed[]==true",
    "mixed[].k==v",
    "mixed[]",
    "deep.a[].b[].c==hit",
    "deep.a[].b[].c",
    "deep.a[].b==str",
    "description==Test description",
    "description",
    "!description",
    "missing.x!=1",
    "missing",
    'name=="123"',
    "state==enabled,name==gamma",
]


@pytest.fixture
def loaded(services: Services) -> tuple[Tenant, list[dict[str, Any]]]:
    tenant = new_tenant(services)
    docs = []
    with services.db.transaction() as session:
        for i, body in enumerate(DOCS):
            doc = {"id": str(uuid.uuid4()), "createdAt": i + 1, "updatedAt": i + 1, "etag": '"e"', **body}
            repos.connections(session, tenant).insert(doc)
            docs.append(doc)
    return tenant, docs


@pytest.mark.parametrize("expression", FILTERS)
def test_sql_agrees_with_the_evaluator(
    services: Services, loaded: tuple[Tenant, list[dict[str, Any]]], expression: str
) -> None:
    tenant, docs = loaded
    filters = query.parse_property(expression)
    expected = {d["id"] for d in docs if query.matches(d, filters)}
    with services.db.reader() as session:
        resources = repos.connections(session, tenant)
        rows, _ = resources.page(limit=100, filters=filters)
        assert {r.id for r in rows} == expected
        assert resources.count(filters) == len(expected)


def test_every_filter_selects_something_and_something_is_left_out(
    loaded: tuple[Tenant, list[dict[str, Any]]],
) -> None:
    """Guard against an oracle that agrees because both sides always say 'all' or 'none'."""
    _, docs = loaded
    outcomes = [sum(query.matches(d, query.parse_property(e)) for d in docs) for e in FILTERS]
    assert any(0 < n < len(docs) for n in outcomes)
    assert sum(1 for n in outcomes if 0 < n < len(docs)) > len(FILTERS) // 2


def test_range_on_a_text_column_is_1448(
    services: Services, loaded: tuple[Tenant, list[dict[str, Any]]]
) -> None:
    from flowservice.errors import InvalidRequest

    tenant, _ = loaded
    with services.db.reader() as session, pytest.raises(InvalidRequest) as exc:
        repos.connections(session, tenant).page(
            limit=1, filters=[query.Compare(query.Path.of("state"), ">", (query.Value("1"),))]
        )
    assert exc.value.code == "1448"


def test_run_filters_on_typed_columns_use_the_indexes(services: Services) -> None:
    tenant = Tenant("ORG@AdobeOrg", "prod", "x")
    filters = query.parse_property("flowId==abc") + query.parse_property(
        "metrics.statusSummary.status==Failed"
    )
    condition = compile_filters(Run, filters, services.db.dialect)
    statement = (
        select(Run.id)
        .where(Run.ims_org_id == tenant.org_id, Run.sandbox_name == tenant.sandbox_name, *condition)
        .order_by(Run.created_at.desc(), Run.id.desc())
        .limit(100)
    )
    with services.db.engine.connect() as conn:
        compiled = statement.compile(conn, compile_kwargs={"literal_binds": True})
        if services.db.dialect == "sqlite":
            plan = " ".join(str(row[-1]) for row in conn.execute(text(f"EXPLAIN QUERY PLAN {compiled}")))
            assert "USING INDEX ix_runs__" in plan, plan
        else:
            conn.execute(text("SET enable_seqscan = off"))
            plan = " ".join(row[0] for row in conn.execute(text(f"EXPLAIN {compiled}")))
            assert "Index" in plan and "ix_runs__" in plan, plan
    assert "json" not in str(compiled).lower()  # typed columns, not JSON functions
