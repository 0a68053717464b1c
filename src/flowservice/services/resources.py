"""Create, read, patch and delete for the four Flow Service resources, written once.

Each resource contributes a `Kind`: how to validate its input into document fields, which fields
a PATCH may touch, and what must hold before a delete. The mechanics (system fields, etags,
optimistic concurrency, tenancy) live here and nowhere else.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel
from sqlalchemy.orm import Session

from flowservice.domain import etags, patch
from flowservice.domain.query import ListQuery
from flowservice.domain.tenancy import Caller
from flowservice.errors import InvalidRequest, NotFound, VersionMismatch
from flowservice.schemas import validate
from flowservice.services.context import Services
from flowservice.store.repos import resources as repos
from flowservice.store.repos.resources import Resources
from flowservice.store.tables import TenantOwned

R = TypeVar("R", bound=TenantOwned)


@dataclass
class Prepared:
    """Validated input: the document fields a client controls, plus columns kept outside the document."""

    fields: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)
    state: str | None = None
    links: tuple[list[str], list[str]] | None = None  # a flow's (source, target) connection ids


@dataclass
class Work:
    """One use case in flight: the services, the caller, and the open transaction."""

    services: Services
    caller: Caller
    session: Session
    now: int
    resource_id: str


class Kind(Protocol[R]):
    # Read-only members, so a kind can declare them as plain class attributes of narrower types.
    @property
    def collection(self) -> str: ...

    @property
    def model(self) -> type[R]: ...

    @property
    def create_model(self) -> type[BaseModel]: ...

    @property
    def patchable(self) -> frozenset[str]: ...

    @property
    def record_ops(self) -> bool: ...

    def prepare(self, work: Work, body: Any, previous: R | None) -> Prepared: ...

    def editable(self, work: Work, row: R) -> dict[str, Any]: ...

    def check_delete(self, work: Work, row: R) -> None: ...

    def after_write(self, work: Work, row_id: str, prepared: Prepared) -> None: ...


@dataclass(frozen=True, slots=True)
class Written:
    id: str
    etag: str


def system_fields(caller: Caller, now: int) -> dict[str, Any]:
    return {
        "createdAt": now,
        "updatedAt": now,
        "createdBy": caller.user,
        "updatedBy": caller.user,
        "createdClient": caller.client_id,
        "updatedClient": caller.client_id,
        "sandboxId": caller.tenant.sandbox_id,
        "sandboxName": caller.tenant.sandbox_name,
        "imsOrgId": caller.tenant.org_id,
    }


def last_operation(operation: str, now: int, ops: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {
        "started": now,
        "updated": now,
        "percentCompleted": 100.0,
        "status": {"value": "completed", "errors": []},
        "operation": operation,
    }
    if ops is not None:
        result["ops"] = ops
    return result


def stamp(doc: dict[str, Any], caller: Caller, now: int) -> dict[str, Any]:
    """Mark a document as written now by `caller`, with a new etag (= version)."""
    etag = etags.new_etag(now)
    doc.update(updatedAt=now, updatedBy=caller.user, updatedClient=caller.client_id, etag=etag, version=etag)
    return doc


def repo(work: Work, kind: Kind[R]) -> Resources[R]:
    return Resources(work.session, work.caller.tenant, kind.model)


def _work(services: Services, caller: Caller, session: Session, resource_id: str) -> Work:
    return Work(services, caller, session, services.clock.now_ms(), resource_id)


def create(
    services: Services, caller: Caller, kind: Kind[R], body: Any, *, state: str = "enabled"
) -> Written:
    with services.db.transaction() as session:
        work = _work(services, caller, session, str(uuid.uuid4()))
        prepared = kind.prepare(work, body, None)
        doc: dict[str, Any] = {"id": work.resource_id, **system_fields(caller, work.now)}
        doc.update(prepared.fields)
        doc["state"] = prepared.state or state
        doc["lastOperation"] = last_operation("create", work.now)
        stamp(doc, caller, work.now)
        repo(work, kind).insert(doc, **prepared.extra)
        kind.after_write(work, doc["id"], prepared)
    return Written(doc["id"], doc["etag"])


def get(services: Services, caller: Caller, kind: Kind[R], resource_id: str) -> dict[str, Any]:
    with services.db.reader() as session:
        row = Resources(session, caller.tenant, kind.model).get(resource_id)
        if row is None:
            raise NotFound(kind.collection, resource_id)
        return dict(row.doc)


def patch_resource(
    services: Services, caller: Caller, kind: Kind[R], resource_id: str, body: Any, if_match: str | None
) -> Written:
    if not if_match:
        raise InvalidRequest("1403", "The header 'If-Match' is missing in the request.", field="If-Match")
    ops = patch.normalize_ops(body)
    with services.db.transaction() as session:
        work = _work(services, caller, session, resource_id)
        resources = repo(work, kind)
        row = _current(resources, kind, resource_id, if_match)
        patched = patch.apply(kind.editable(work, row), ops, kind.patchable)
        input_fields = {k: patched[k] for k in kind.create_model.model_fields if k in patched}
        prepared = kind.prepare(work, validate(kind.create_model, input_fields), row)
        doc = {k: v for k, v in row.doc.items() if k not in kind.create_model.model_fields}
        doc.update(prepared.fields)
        doc["lastOperation"] = last_operation("update", work.now, ops if kind.record_ops else None)
        stamp(doc, caller, work.now)
        if not resources.replace(resource_id, doc, expected_etag=row.etag, **prepared.extra):
            raise VersionMismatch(if_match, resource_id)
        kind.after_write(work, resource_id, prepared)
    return Written(resource_id, doc["etag"])


def set_state(
    services: Services,
    caller: Caller,
    kind: Kind[R],
    resource_id: str,
    operation: str,
    transition: dict[str, str],
    if_match: str | None = None,
) -> Written:
    """Move a resource to a new state; `transition` maps each allowed current state to the next."""
    with services.db.transaction() as session:
        work = _work(services, caller, session, resource_id)
        resources = repo(work, kind)
        row = _current(resources, kind, resource_id, if_match)
        current = str(row.doc.get("state"))
        if current not in transition:
            raise InvalidRequest(
                "1422",
                f"The action {operation} cannot be applied on the current state {current}.",
                field="op",
            )
        doc = dict(row.doc, state=transition[current], lastOperation=last_operation(operation, work.now))
        stamp(doc, caller, work.now)
        if not resources.replace(resource_id, doc, expected_etag=row.etag):
            raise VersionMismatch(if_match or row.etag, resource_id)
    return Written(resource_id, doc["etag"])


def delete(services: Services, caller: Caller, kind: Kind[R], resource_id: str) -> None:
    with services.db.transaction() as session:
        work = _work(services, caller, session, resource_id)
        resources = repo(work, kind)
        row = resources.get(resource_id)
        if row is None:
            raise NotFound(kind.collection, resource_id)
        kind.check_delete(work, row)
        resources.delete(resource_id)


def _current(resources: Resources[R], kind: Kind[R], resource_id: str, if_match: str | None) -> R:
    row = resources.get(resource_id, lock=True)  # hold it: run progress also writes a flow's document
    if row is None:
        raise NotFound(kind.collection, resource_id)
    if if_match is not None and not etags.matches(if_match, row.etag):
        raise VersionMismatch(if_match, resource_id)
    return row


def refuse_if_used_by_flows(work: Work, connection_id: str) -> None:
    flows = repos.flows_using(work.session, work.caller.tenant, [connection_id])
    if flows:
        raise InvalidRequest(
            "1447",
            f"Found active flows containing id {connection_id}: {', '.join(flows)}. Delete those flows first.",
            field="id",
        )


@dataclass(frozen=True, slots=True)
class Page:
    items: list[dict[str, Any]]
    after: list[Any] | None  # the sort key of the last item when another page follows


def list_page(
    services: Services, caller: Caller, model: type[R], query: ListQuery, after: list[Any] | None = None
) -> Page:
    with services.db.reader() as session:
        rows, following = Resources(session, caller.tenant, model).page(
            limit=query.limit, filters=query.filters, order=query.order, after=after
        )
        return Page([dict(r.doc) for r in rows], following)


def list_page_json(
    services: Services, caller: Caller, model: type[R], query: ListQuery, after: list[Any] | None = None
) -> tuple[list[str], list[Any] | None]:
    """The same page as `list_page`, with each document as JSON text (the list endpoints' fast path)."""
    with services.db.reader() as session:
        return Resources(session, caller.tenant, model).page_json(
            limit=query.limit, filters=query.filters, order=query.order, after=after
        )


def count(services: Services, caller: Caller, model: type[R], query: ListQuery) -> int:
    with services.db.reader() as session:
        return Resources(session, caller.tenant, model).count(query.filters)
