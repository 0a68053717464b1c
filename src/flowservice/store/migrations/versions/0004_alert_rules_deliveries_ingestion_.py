"""alert rules, deliveries, ingestion rollups, flow totals

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 18:02:17.158925
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_deliveries",
        sa.Column("rule_id", sa.String(length=36), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=True),
        sa.Column("flow_id", sa.String(length=36), nullable=True),
        sa.Column("event_code", sa.String(length=64), nullable=False),
        sa.Column("dedupe_key", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.BigInteger(), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", sa.BigInteger(), nullable=True),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("ims_org_id", sa.String(length=255), nullable=False),
        sa.Column("sandbox_name", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("etag", sa.String(length=64), nullable=False),
        sa.Column(
            "doc",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["ims_org_id", "sandbox_name"],
            ["sandboxes.ims_org_id", "sandboxes.name"],
            name=op.f("fk_alert_deliveries__ims_org_id_sandbox_name__sandboxes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_deliveries")),
        sa.UniqueConstraint("rule_id", "dedupe_key", name=op.f("uq_alert_deliveries__rule_id_dedupe_key")),
    )
    with op.batch_alter_table("alert_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_alert_deliveries__ims_org_id_sandbox_name_created_at_id"),
            ["ims_org_id", "sandbox_name", "created_at", "id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_alert_deliveries__ims_org_id_sandbox_name_rule_id_created_at_id"),
            ["ims_org_id", "sandbox_name", "rule_id", "created_at", "id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_alert_deliveries__status_next_attempt_at"),
            ["status", "next_attempt_at"],
            unique=False,
        )

    op.create_table(
        "alert_rules",
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("flow_id", sa.String(length=36), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("ims_org_id", sa.String(length=255), nullable=False),
        sa.Column("sandbox_name", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("etag", sa.String(length=64), nullable=False),
        sa.Column(
            "doc",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["ims_org_id", "sandbox_name"],
            ["sandboxes.ims_org_id", "sandboxes.name"],
            name=op.f("fk_alert_rules__ims_org_id_sandbox_name__sandboxes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_rules")),
    )
    with op.batch_alter_table("alert_rules", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_alert_rules__ims_org_id_sandbox_name_created_at_id"),
            ["ims_org_id", "sandbox_name", "created_at", "id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_alert_rules__ims_org_id_sandbox_name_enabled_kind"),
            ["ims_org_id", "sandbox_name", "enabled", "kind"],
            unique=False,
        )

    op.create_table(
        "ingestion_rollups",
        sa.Column("ims_org_id", sa.String(length=255), nullable=False),
        sa.Column("sandbox_name", sa.String(length=64), nullable=False),
        sa.Column("granularity", sa.String(length=8), nullable=False),
        sa.Column("dataset_id", sa.String(length=64), nullable=False),
        sa.Column("bucket_start", sa.BigInteger(), nullable=False),
        sa.Column("runs", sa.BigInteger(), nullable=False),
        sa.Column("record_success", sa.BigInteger(), nullable=False),
        sa.Column("record_failed", sa.BigInteger(), nullable=False),
        sa.Column("batch_success", sa.BigInteger(), nullable=False),
        sa.Column("batch_failed", sa.BigInteger(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ims_org_id", "sandbox_name"],
            ["sandboxes.ims_org_id", "sandboxes.name"],
            name=op.f("fk_ingestion_rollups__ims_org_id_sandbox_name__sandboxes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "ims_org_id",
            "sandbox_name",
            "granularity",
            "dataset_id",
            "bucket_start",
            name=op.f("pk_ingestion_rollups"),
        ),
    )
    with op.batch_alter_table("ingestion_rollups", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ingestion_rollups__ims_org_id_sandbox_name_granularity_bucket_start"),
            ["ims_org_id", "sandbox_name", "granularity", "bucket_start"],
            unique=False,
        )

    op.create_table(
        "flow_totals",
        sa.Column("flow_id", sa.String(length=36), nullable=False),
        sa.Column("ims_org_id", sa.String(length=255), nullable=False),
        sa.Column("sandbox_name", sa.String(length=64), nullable=False),
        sa.Column("runs_success", sa.BigInteger(), nullable=False),
        sa.Column("runs_failed", sa.BigInteger(), nullable=False),
        sa.Column("runs_cancelled", sa.BigInteger(), nullable=False),
        sa.Column("records_in", sa.BigInteger(), nullable=False),
        sa.Column("records_out", sa.BigInteger(), nullable=False),
        sa.Column("records_failed", sa.BigInteger(), nullable=False),
        sa.Column("bytes_in", sa.BigInteger(), nullable=False),
        sa.Column("bytes_out", sa.BigInteger(), nullable=False),
        sa.Column("duration_ms_sum", sa.BigInteger(), nullable=False),
        sa.Column(
            "duration_buckets",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["flow_id"], ["flows.id"], name=op.f("fk_flow_totals__flow_id__flows"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("flow_id", name=op.f("pk_flow_totals")),
    )


def downgrade() -> None:
    op.drop_table("flow_totals")
    with op.batch_alter_table("ingestion_rollups", schema=None) as batch_op:
        batch_op.drop_index(
            batch_op.f("ix_ingestion_rollups__ims_org_id_sandbox_name_granularity_bucket_start")
        )

    op.drop_table("ingestion_rollups")
    with op.batch_alter_table("alert_rules", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_rules__ims_org_id_sandbox_name_enabled_kind"))
        batch_op.drop_index(batch_op.f("ix_alert_rules__ims_org_id_sandbox_name_created_at_id"))

    op.drop_table("alert_rules")
    with op.batch_alter_table("alert_deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_deliveries__status_next_attempt_at"))
        batch_op.drop_index(batch_op.f("ix_alert_deliveries__ims_org_id_sandbox_name_rule_id_created_at_id"))
        batch_op.drop_index(batch_op.f("ix_alert_deliveries__ims_org_id_sandbox_name_created_at_id"))

    op.drop_table("alert_deliveries")
