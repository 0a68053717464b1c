"""The repositories scope every statement by (org, sandbox): no method can reach another tenant's rows."""

from __future__ import annotations

import uuid
from typing import Any

from flowservice.domain.tenancy import Tenant
from flowservice.services import identity
from flowservice.services.context import Services
from flowservice.store.repos import resources as repos
from tests.factories import new_org_id


def tenant(services: Services, sandbox: str = "prod", org_id: str | None = None) -> Tenant:
    org_id = org_id or identity.create_credentials(services.db, new_org_id()).org_id
    if sandbox != "prod":
        identity.create_sandbox(services.db, org_id, sandbox)
    [info] = [s for s in identity.list_sandboxes(services.db, org_id) if s.name == sandbox]
    return Tenant(org_id, sandbox, info.id)


def doc(name: str, created_at: int) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "name": name,
        "createdAt": created_at,
        "updatedAt": created_at,
        "etag": '"e"',
        "state": "enabled",
        "connectionSpec": {"id": "spec"},
    }


def test_every_repository_method_is_scoped(services: Services) -> None:
    a = tenant(services)
    b = tenant(services)
    a_dev = tenant(services, "dev", org_id=a.org_id)
    with services.db.transaction() as session:
        mine = repos.connections(session, a).insert(doc("a", 1))
    for other in (b, a_dev):
        with services.db.transaction() as session:
            theirs = repos.connections(session, other)
            assert theirs.get(mine.id) is None
            assert theirs.get_many([mine.id]) == {}
            assert theirs.page(limit=10) == ([], None)
            assert theirs.count() == 0
            assert theirs.replace(mine.id, doc("stolen", 2) | {"id": mine.id}, expected_etag='"e"') is False
            assert theirs.delete(mine.id) is False
    with services.db.reader() as session:
        row = repos.connections(session, a).get(mine.id)
        assert row is not None and row.doc["name"] == "a"


def test_keyset_pages_are_newest_first_without_gaps_or_repeats(services: Services) -> None:
    a = tenant(services)
    with services.db.transaction() as session:
        ids = [repos.flows(session, a).insert(doc(f"f{i}", 1000 + i // 3)).id for i in range(10)]
    seen: list[str] = []
    after: list[Any] | None = None
    while True:
        with services.db.reader() as session:
            page, after = repos.flows(session, a).page(limit=3, after=after)
        seen += [row.id for row in page]
        if after is None:
            break
    assert sorted(seen) == sorted(ids) and len(seen) == len(set(seen))
    with services.db.reader() as session:
        rows = repos.flows(session, a).get_many(seen)
    keys = [(rows[i].created_at, i) for i in seen]
    assert keys == sorted(keys, reverse=True)


def test_replace_is_a_compare_and_swap_on_the_etag(services: Services) -> None:
    a = tenant(services)
    with services.db.transaction() as session:
        row = repos.connections(session, a).insert(doc("a", 1))
    with services.db.transaction() as session:
        first = repos.connections(session, a).replace(
            row.id, doc("b", 2) | {"id": row.id, "etag": '"v2"'}, expected_etag='"e"'
        )
    with services.db.transaction() as session:
        second = repos.connections(session, a).replace(
            row.id, doc("c", 3) | {"id": row.id, "etag": '"v3"'}, expected_etag='"e"'
        )
    assert (first, second) == (True, False)
