"""The relational schema: identity tables, and one table per Flow Service resource.

A resource row keeps the full wire document in `doc` (so filters work on any JSON path) and
copies into typed, indexed columns the few fields that are filtered and sorted on. The copy is
made in exactly one place (`repos.resources.columns_for`), so the two never drift.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

# Stable constraint names make Alembic diffs and batch (copy-and-move) migrations on SQLite work.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s__%(column_0_N_name)s",
    "uq": "uq_%(table_name)s__%(column_0_N_name)s",
    "ck": "ck_%(table_name)s__%(constraint_name)s",
    "fk": "fk_%(table_name)s__%(column_0_N_name)s__%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Document = JSON().with_variant(JSONB(), "postgresql")
ID = String(36)
ORG = String(255)
SANDBOX = String(64)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Org(Base):
    __tablename__ = "orgs"
    id: Mapped[str] = mapped_column(ORG, primary_key=True)
    created_at: Mapped[int] = mapped_column(BigInteger)


class Sandbox(Base):
    __tablename__ = "sandboxes"
    __table_args__ = (UniqueConstraint("ims_org_id", "name"),)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    ims_org_id: Mapped[str] = mapped_column(ORG, ForeignKey("orgs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(SANDBOX)
    created_at: Mapped[int] = mapped_column(BigInteger)


class Credential(Base):
    """A client-credentials pair; only a hash of the secret is kept."""

    __tablename__ = "credentials"
    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    ims_org_id: Mapped[str] = mapped_column(ORG, ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    secret_hash: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[int] = mapped_column(BigInteger)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class TenantOwned(Base):
    """Columns every tenant-owned resource has; the repositories filter on the first two always."""

    __abstract__ = True
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    ims_org_id: Mapped[str] = mapped_column(ORG)
    sandbox_name: Mapped[str] = mapped_column(SANDBOX)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)
    etag: Mapped[str] = mapped_column(String(64))
    doc: Mapped[dict[str, Any]] = mapped_column(Document)

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        return (
            ForeignKeyConstraint(
                ["ims_org_id", "sandbox_name"], ["sandboxes.ims_org_id", "sandboxes.name"], ondelete="CASCADE"
            ),
            Index(None, "ims_org_id", "sandbox_name", "created_at", "id"),
            *cls.extra_table_args(),
        )

    @classmethod
    def extra_table_args(cls) -> tuple[Any, ...]:
        return ()


class NamedResource(TenantOwned):
    __abstract__ = True
    name: Mapped[str] = mapped_column(String(512), default="")
    state: Mapped[str] = mapped_column(String(32), default="enabled")
    spec_id: Mapped[str] = mapped_column(ID)


class Connection(NamedResource):
    __tablename__ = "connections"
    secrets: Mapped[str | None] = mapped_column(Text, nullable=True)  # Fernet token of the secret params


class SourceConnection(NamedResource):
    __tablename__ = "source_connections"
    base_connection_id: Mapped[str | None] = mapped_column(ID, nullable=True, index=True)


class TargetConnection(NamedResource):
    __tablename__ = "target_connections"


class Flow(NamedResource):
    __tablename__ = "flows"
    # the scheduler's cursor (domain/schedule.py): where the next window starts and when it closes
    schedule_window_start: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    schedule_next_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)

    @classmethod
    def extra_table_args(cls) -> tuple[Any, ...]:
        return (
            Index(None, "ims_org_id", "sandbox_name", "state"),
            Index(None, "state", "schedule_next_at"),  # what the scheduler polls: due flows of every tenant
        )


class FlowLink(Base):
    """Which source and target connections a flow uses, so "is this connection in use" is one indexed lookup."""

    __tablename__ = "flow_links"
    flow_id: Mapped[str] = mapped_column(ID, ForeignKey("flows.id", ondelete="CASCADE"), primary_key=True)
    connection_id: Mapped[str] = mapped_column(ID, primary_key=True, index=True)
    role: Mapped[str] = mapped_column(String(8), primary_key=True)  # "source" | "target"


class Run(TenantOwned):
    """A flow run; metrics that people filter and sort on are typed columns, the rest lives in `doc`.

    The engine's bookkeeping (lease, attempt, window, retry link) is kept in columns only: it is
    not part of Adobe's run object.
    """

    __tablename__ = "runs"
    flow_id: Mapped[str] = mapped_column(ID)
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    completed_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    input_record_count: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    output_record_count: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    failed_record_count: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    input_file_count: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    output_file_count: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    input_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    output_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # engine bookkeeping
    window_start: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    window_end: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    ready_at: Mapped[int] = mapped_column(
        BigInteger, default=0, server_default="0"
    )  # not claimable before (retry backoff)
    lease_owner: Mapped[str | None] = mapped_column(String(128), nullable=True)
    lease_expires_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    lease_epoch: Mapped[int] = mapped_column(
        Integer, default=0, server_default="0"
    )  # fences stale workers: bumped per claim
    attempt: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    retry_of: Mapped[str | None] = mapped_column(ID, nullable=True)
    retry_number: Mapped[int] = mapped_column(
        Integer, default=0, server_default="0"
    )  # automatic retries so far
    run_key: Mapped[str | None] = mapped_column(
        String(128), nullable=True
    )  # (flow, window) for scheduled runs

    @classmethod
    def extra_table_args(cls) -> tuple[Any, ...]:
        return (
            Index(None, "ims_org_id", "sandbox_name", "flow_id", "created_at", "id"),
            Index(None, "ims_org_id", "sandbox_name", "status", "created_at", "id"),
            Index(None, "status", "ready_at"),  # what workers poll: claimable runs across tenants
            UniqueConstraint("flow_id", "run_key"),
        )


class SchemaDoc(TenantOwned):
    """An XDM-style schema of the schema registry; its id is the `$id` URL."""

    __tablename__ = "schemas"
    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    title: Mapped[str] = mapped_column(String(512))


class Dataset(TenantOwned):
    __tablename__ = "datasets"
    name: Mapped[str] = mapped_column(String(512))
    schema_id: Mapped[str] = mapped_column(String(255))


class MappingSet(TenantOwned):
    __tablename__ = "mapping_sets"
    schema_id: Mapped[str] = mapped_column(String(255))


class Batch(TenantOwned):
    """A batch of a dataset. A run commits at most one (unique run_id): the exactly-once anchor."""

    __tablename__ = "batches"
    dataset_id: Mapped[str] = mapped_column(ID, index=True)
    run_id: Mapped[str | None] = mapped_column(ID, nullable=True, unique=True)
    status: Mapped[str] = mapped_column(String(16))
    record_count: Mapped[int] = mapped_column(BigInteger, default=0)
    failed_record_count: Mapped[int] = mapped_column(BigInteger, default=0)


class AlertRule(TenantOwned):
    """When a person or a system is told about runs, and where (a webhook)."""

    __tablename__ = "alert_rules"
    name: Mapped[str] = mapped_column(String(512), default="")
    kind: Mapped[str] = mapped_column(String(32))
    flow_id: Mapped[str | None] = mapped_column(ID, nullable=True)  # None: every flow of the sandbox
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    secret: Mapped[str] = mapped_column(Text)  # Fernet token of the webhook's signing secret

    @classmethod
    def extra_table_args(cls) -> tuple[Any, ...]:
        return (Index(None, "ims_org_id", "sandbox_name", "enabled", "kind"),)


class AlertDelivery(TenantOwned):
    """The outbox: one notification of one rule, kept until delivered or given up, with its log.

    `dedupe_key` (per rule) makes each alert once: a run's start, its end, its delay.
    """

    __tablename__ = "alert_deliveries"
    rule_id: Mapped[str] = mapped_column(ID)
    run_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    flow_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    event_code: Mapped[str] = mapped_column(String(64))
    dedupe_key: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    delivered_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)

    @classmethod
    def extra_table_args(cls) -> tuple[Any, ...]:
        return (
            UniqueConstraint("rule_id", "dedupe_key"),
            Index(None, "status", "next_attempt_at"),  # what the notifier polls
            Index(None, "ims_org_id", "sandbox_name", "rule_id", "created_at", "id"),
        )


class IngestionRollup(Base):
    """Ingestion totals per dataset and hour (and day), added to as runs finish: what the Observability
    Insights API answers from, so a month of a million runs is a few thousand rows, not a scan."""

    __tablename__ = "ingestion_rollups"
    ims_org_id: Mapped[str] = mapped_column(ORG, primary_key=True)
    sandbox_name: Mapped[str] = mapped_column(SANDBOX, primary_key=True)
    granularity: Mapped[str] = mapped_column(String(8), primary_key=True)  # "hour" | "day"
    dataset_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    bucket_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # epoch ms, UTC
    runs: Mapped[int] = mapped_column(BigInteger, default=0)
    record_success: Mapped[int] = mapped_column(BigInteger, default=0)
    record_failed: Mapped[int] = mapped_column(BigInteger, default=0)
    batch_success: Mapped[int] = mapped_column(BigInteger, default=0)
    batch_failed: Mapped[int] = mapped_column(BigInteger, default=0)
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)

    __table_args__ = (
        ForeignKeyConstraint(
            ["ims_org_id", "sandbox_name"], ["sandboxes.ims_org_id", "sandboxes.name"], ondelete="CASCADE"
        ),
        # the key serves one dataset's range; this serves "every dataset" over a range of a long history
        Index(None, "ims_org_id", "sandbox_name", "granularity", "bucket_start"),
    )


class FlowTotals(Base):
    """Running totals per flow since it was made, for `/metrics` (Prometheus counters and the run
    duration histogram): one row per flow, read whole at a scrape."""

    __tablename__ = "flow_totals"
    flow_id: Mapped[str] = mapped_column(ID, ForeignKey("flows.id", ondelete="CASCADE"), primary_key=True)
    ims_org_id: Mapped[str] = mapped_column(ORG)
    sandbox_name: Mapped[str] = mapped_column(SANDBOX)
    runs_success: Mapped[int] = mapped_column(BigInteger, default=0)
    runs_failed: Mapped[int] = mapped_column(BigInteger, default=0)
    runs_cancelled: Mapped[int] = mapped_column(BigInteger, default=0)
    records_in: Mapped[int] = mapped_column(BigInteger, default=0)
    records_out: Mapped[int] = mapped_column(BigInteger, default=0)
    records_failed: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_in: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_out: Mapped[int] = mapped_column(BigInteger, default=0)
    duration_ms_sum: Mapped[int] = mapped_column(BigInteger, default=0)
    # runs by duration, one count per bucket of services/rollups.DURATION_BOUNDS_S plus one over the
    # last bound; per bucket, not cumulative, so adding two lists is adding them element by element
    duration_buckets: Mapped[list[int]] = mapped_column(JSON().with_variant(JSONB(), "postgresql"))


class RunSlice(Base):
    """One slice of a large run: a group of its staged files, promoted by any worker (services/slices.py).

    A slice has a lease of its own (owner, expiry, epoch bumped per claim) so that a worker killed
    mid-slice loses only that slice; `result` holds what its promotion produced (counts, parts,
    per-file outcomes), written with a fenced update.
    """

    __tablename__ = "run_slices"
    run_id: Mapped[str] = mapped_column(ID, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    idx: Mapped[int] = mapped_column(Integer, primary_key=True)
    files: Mapped[list[dict[str, Any]]] = mapped_column(Document)
    bytes: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))  # todo | doing | done | failed
    lease_owner: Mapped[str | None] = mapped_column(String(128), nullable=True)
    lease_expires_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    lease_epoch: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    result: Mapped[dict[str, Any] | None] = mapped_column(Document, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (Index(None, "status", "lease_expires_at"),)
