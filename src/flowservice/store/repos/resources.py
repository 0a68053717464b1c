"""Tenant-scoped access to the resource tables.

A `Resources` repository is bound to one tenant when it is made, and every statement it builds
starts from `scoped()`: a route that forgets a filter still cannot reach another tenant's rows.
"""

from __future__ import annotations

import typing
from collections.abc import Iterable, Sequence
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, Text, cast, delete, exists, func, select, update
from sqlalchemy.orm import Session

from flowservice.domain.query import Filter, Sort
from flowservice.domain.tenancy import Tenant
from flowservice.store.filters import compile_filters, keyset_after, order_keys
from flowservice.store.tables import (
    AlertDelivery,
    AlertRule,
    Batch,
    Connection,
    Dataset,
    Flow,
    FlowLink,
    MappingSet,
    NamedResource,
    Run,
    SchemaDoc,
    SourceConnection,
    TargetConnection,
    TenantOwned,
)

R = TypeVar("R", bound=TenantOwned)


def columns_for(model: type[TenantOwned], doc: dict[str, Any]) -> dict[str, Any]:
    """The typed columns of a row, derived from its wire document (the one place that does this)."""
    values: dict[str, Any] = {
        "created_at": doc["createdAt"],
        "updated_at": doc["updatedAt"],
        "etag": doc["etag"],
    }
    if issubclass(model, NamedResource):
        spec = doc.get("flowSpec") if model is Flow else doc.get("connectionSpec")
        values["name"] = str(doc.get("name") or "")[:512]
        values["state"] = str(doc.get("state") or "enabled")
        values["spec_id"] = str((spec or {}).get("id") or "")
    if model is SourceConnection:
        values["base_connection_id"] = doc.get("baseConnectionId")
    if model is Run:
        values.update(_run_columns(doc))
    elif model is AlertRule:
        values.update(
            name=str(doc.get("name", ""))[:512],
            kind=doc["kind"],
            flow_id=doc.get("flowId"),
            enabled=doc.get("state", "enabled") == "enabled",
        )
    elif model is AlertDelivery:
        values.update(
            rule_id=doc["ruleId"],
            run_id=doc.get("runId"),
            flow_id=doc.get("flowId"),
            event_code=doc["eventCode"],
            dedupe_key=doc["dedupeKey"],
            status=doc["status"],
            attempts=doc.get("attempts", 0),
            next_attempt_at=doc.get("nextAttemptAt"),
            last_status=doc.get("lastStatus"),
            last_error=doc.get("lastError"),
            delivered_at=doc.get("deliveredAt"),
        )
    elif model is SchemaDoc:
        values["title"] = str(doc.get("title", ""))[:512]
    elif model is Dataset:
        values["name"] = str(doc.get("name", ""))[:512]
        values["schema_id"] = str((doc.get("schemaRef") or {}).get("id", ""))
    elif model is MappingSet:
        values["schema_id"] = str(doc.get("xdmSchema", ""))
    elif model is Batch:
        metrics = doc.get("metrics") or {}
        values["status"] = doc["status"]
        values["dataset_id"] = next(
            (o["id"] for o in doc.get("relatedObjects", []) if o.get("type") == "dataSet"), ""
        )
        values["record_count"] = metrics.get("outputRecordCount", 0)
        values["failed_record_count"] = metrics.get("failedRecordCount", 0)
    return values


def _run_columns(doc: dict[str, Any]) -> dict[str, Any]:
    metrics = doc.get("metrics") or {}
    duration = metrics.get("durationSummary") or {}
    records = metrics.get("recordSummary") or {}
    files = metrics.get("fileSummary") or {}
    sizes = metrics.get("sizeSummary") or {}
    return {
        "flow_id": doc["flowId"],
        "status": (metrics.get("statusSummary") or {}).get("status", "scheduled"),
        "started_at": duration.get("startedAtUTC"),
        "completed_at": duration.get("completedAtUTC"),
        "input_record_count": records.get("inputRecordCount"),
        "output_record_count": records.get("outputRecordCount"),
        "failed_record_count": records.get("failedRecordCount"),
        "input_file_count": files.get("inputFileCount"),
        "output_file_count": files.get("outputFileCount"),
        "input_bytes": sizes.get("inputBytes"),
        "output_bytes": sizes.get("outputBytes"),
    }


class Resources(Generic[R]):
    def __init__(self, session: Session, tenant: Tenant, model: type[R]) -> None:
        self.session = session
        self.tenant = tenant
        self.model = model

    def _in_tenant(self) -> list[ColumnElement[bool]]:
        return [
            self.model.ims_org_id == self.tenant.org_id,
            self.model.sandbox_name == self.tenant.sandbox_name,
        ]

    def scoped(self) -> Select[R]:
        return select(self.model).where(*self._in_tenant())

    def get(self, resource_id: str, *, lock: bool = False) -> R | None:
        """The row, or None; `lock` holds it (SELECT … FOR UPDATE) until the transaction ends."""
        query = self.scoped().where(self.model.id == resource_id)
        return self.session.scalars(query.with_for_update() if lock else query).first()

    def get_many(self, ids: Iterable[str]) -> dict[str, R]:
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return {}
        rows = self.session.scalars(self.scoped().where(self.model.id.in_(wanted)))
        return {row.id: row for row in rows}

    def insert(self, doc: dict[str, Any], **extra: Any) -> R:
        row = self.model(
            id=doc["id"],
            ims_org_id=self.tenant.org_id,
            sandbox_name=self.tenant.sandbox_name,
            doc=doc,
            **columns_for(self.model, doc),
            **extra,
        )
        self.session.add(row)
        self.session.flush()
        return row

    def replace(self, resource_id: str, doc: dict[str, Any], *, expected_etag: str, **extra: Any) -> bool:
        """Write a new version only if nobody wrote since `expected_etag` was read (one winner)."""
        result = self.session.execute(
            update(self.model)
            .where(*self._in_tenant(), self.model.id == resource_id, self.model.etag == expected_etag)
            .values(doc=doc, **columns_for(self.model, doc), **extra)
            .execution_options(synchronize_session="fetch")  # rows already loaded see the new version
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    def delete(self, resource_id: str) -> bool:
        result = self.session.execute(
            delete(self.model)
            .where(*self._in_tenant(), self.model.id == resource_id)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    def page(
        self,
        *,
        limit: int,
        filters: Sequence[Filter] = (),
        order: Sequence[Sort] = (),
        after: Sequence[Any] | None = None,
        name_contains: str | None = None,
    ) -> tuple[list[R], list[Any] | None]:
        """One page in the requested order, and the sort key to continue after (None on the last page).

        Keyset pagination: the next page starts strictly after the last row's sort key, so page 1000
        costs what page 1 does and rows inserted meanwhile neither repeat nor vanish.
        `name_contains` is the UI's text search (case-insensitive), for named resources only.
        """
        extra: list[ColumnElement[bool]] = []
        if name_contains:
            if not issubclass(self.model, NamedResource):
                raise ValueError(f"{self.model.__name__} has no name to search")
            pattern = (
                "%"
                + name_contains.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                + "%"
            )
            named = typing.cast(type[NamedResource], self.model)
            extra.append(func.lower(named.name).like(pattern, escape="\\"))
        rows, following = self._page(self.model, limit, filters, order, after, extra)
        return list(rows), following

    def page_json(
        self,
        *,
        limit: int,
        filters: Sequence[Filter] = (),
        order: Sequence[Sort] = (),
        after: Sequence[Any] | None = None,
    ) -> tuple[list[str], list[Any] | None]:
        """`page()`, but each document as the JSON text the database holds: a list endpoint can splice
        the texts into its answer instead of decoding and re-encoding every document."""
        return self._page(cast(self.model.doc, Text), limit, filters, order, after, [])

    def _page(
        self,
        selected: Any,
        limit: int,
        filters: Sequence[Filter],
        order: Sequence[Sort],
        after: Sequence[Any] | None,
        extra: Sequence[ColumnElement[bool]],
    ) -> tuple[list[Any], list[Any] | None]:
        keys = order_keys(self.model, order)
        query = select(selected, *[k.expression for k in keys]).where(*self._in_tenant(), *extra)
        query = query.where(*compile_filters(self.model, filters, self._dialect()))
        if after is not None:
            if len(after) != len(keys):
                raise ValueError("continuation key does not fit the order")
            query = query.where(keyset_after(keys, after))
        ordering = [k.expression.desc() if k.descending else k.expression.asc() for k in keys]
        rows = self.session.execute(query.order_by(*ordering).limit(limit + 1)).all()
        items = [row[0] for row in rows[:limit]]
        following = list(rows[limit - 1][1:]) if len(rows) > limit else None
        return items, following

    def count(self, filters: Sequence[Filter] = ()) -> int:
        query = (
            select(func.count())
            .select_from(self.model)
            .where(*self._in_tenant(), *compile_filters(self.model, filters, self._dialect()))
        )
        return int(self.session.execute(query).scalar_one())

    def _dialect(self) -> str:
        return self.session.get_bind().dialect.name


def connections(session: Session, tenant: Tenant) -> Resources[Connection]:
    return Resources(session, tenant, Connection)


def source_connections(session: Session, tenant: Tenant) -> Resources[SourceConnection]:
    return Resources(session, tenant, SourceConnection)


def target_connections(session: Session, tenant: Tenant) -> Resources[TargetConnection]:
    return Resources(session, tenant, TargetConnection)


def flows(session: Session, tenant: Tenant) -> Resources[Flow]:
    return Resources(session, tenant, Flow)


def runs(session: Session, tenant: Tenant) -> Resources[Run]:
    return Resources(session, tenant, Run)


def schemas(session: Session, tenant: Tenant) -> Resources[SchemaDoc]:
    return Resources(session, tenant, SchemaDoc)


def datasets(session: Session, tenant: Tenant) -> Resources[Dataset]:
    return Resources(session, tenant, Dataset)


def mapping_sets(session: Session, tenant: Tenant) -> Resources[MappingSet]:
    return Resources(session, tenant, MappingSet)


def batches(session: Session, tenant: Tenant) -> Resources[Batch]:
    return Resources(session, tenant, Batch)


def set_flow_links(session: Session, flow_id: str, sources: list[str], targets: list[str]) -> None:
    session.execute(delete(FlowLink).where(FlowLink.flow_id == flow_id))
    links = [FlowLink(flow_id=flow_id, connection_id=c, role="source") for c in dict.fromkeys(sources)]
    links += [FlowLink(flow_id=flow_id, connection_id=c, role="target") for c in dict.fromkeys(targets)]
    session.add_all(links)
    session.flush()


def flows_using(session: Session, tenant: Tenant, connection_ids: Iterable[str]) -> list[str]:
    """Ids of this tenant's flows that use any of the given source or target connections."""
    ids = list(connection_ids)
    if not ids:
        return []
    query = (
        select(Flow.id)
        .where(Flow.ims_org_id == tenant.org_id, Flow.sandbox_name == tenant.sandbox_name)
        .where(exists().where(FlowLink.flow_id == Flow.id, FlowLink.connection_id.in_(ids)))
        .order_by(Flow.id)
    )
    return list(session.scalars(query))


def source_connections_of(session: Session, tenant: Tenant, base_connection_id: str) -> list[str]:
    query = (
        select(SourceConnection.id)
        .where(
            SourceConnection.ims_org_id == tenant.org_id, SourceConnection.sandbox_name == tenant.sandbox_name
        )
        .where(SourceConnection.base_connection_id == base_connection_id)
        .order_by(SourceConnection.id)
    )
    return list(session.scalars(query))


def alert_rules(session: Session, tenant: Tenant) -> Resources[AlertRule]:
    return Resources(session, tenant, AlertRule)


def alert_deliveries(session: Session, tenant: Tenant) -> Resources[AlertDelivery]:
    return Resources(session, tenant, AlertDelivery)
