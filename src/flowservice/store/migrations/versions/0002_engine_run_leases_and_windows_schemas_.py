"""engine: run leases and windows, schemas, datasets, mapping sets, batches

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 15:43:40.525716
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("dataset_id", sa.String(length=36), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("record_count", sa.BigInteger(), nullable=False),
        sa.Column("failed_record_count", sa.BigInteger(), nullable=False),
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
            name=op.f("fk_batches__ims_org_id_sandbox_name__sandboxes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batches")),
        sa.UniqueConstraint("run_id", name=op.f("uq_batches__run_id")),
    )
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_batches__dataset_id"), ["dataset_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_batches__ims_org_id_sandbox_name_created_at_id"),
            ["ims_org_id", "sandbox_name", "created_at", "id"],
            unique=False,
        )

    op.create_table(
        "datasets",
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.Column("schema_id", sa.String(length=255), nullable=False),
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
            name=op.f("fk_datasets__ims_org_id_sandbox_name__sandboxes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_datasets")),
    )
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_datasets__ims_org_id_sandbox_name_created_at_id"),
            ["ims_org_id", "sandbox_name", "created_at", "id"],
            unique=False,
        )

    op.create_table(
        "mapping_sets",
        sa.Column("schema_id", sa.String(length=255), nullable=False),
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
            name=op.f("fk_mapping_sets__ims_org_id_sandbox_name__sandboxes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mapping_sets")),
    )
    with op.batch_alter_table("mapping_sets", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_mapping_sets__ims_org_id_sandbox_name_created_at_id"),
            ["ims_org_id", "sandbox_name", "created_at", "id"],
            unique=False,
        )

    op.create_table(
        "schemas",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("title", sa.String(length=512), nullable=False),
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
            name=op.f("fk_schemas__ims_org_id_sandbox_name__sandboxes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schemas")),
    )
    with op.batch_alter_table("schemas", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_schemas__ims_org_id_sandbox_name_created_at_id"),
            ["ims_org_id", "sandbox_name", "created_at", "id"],
            unique=False,
        )

    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("window_start", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("window_end", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("ready_at", sa.BigInteger(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("lease_owner", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("lease_expires_at", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("lease_epoch", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("attempt", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("retry_of", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("run_key", sa.String(length=128), nullable=True))
        batch_op.create_index(batch_op.f("ix_runs__status_ready_at"), ["status", "ready_at"], unique=False)
        batch_op.create_unique_constraint(batch_op.f("uq_runs__flow_id_run_key"), ["flow_id", "run_key"])


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_runs__flow_id_run_key"), type_="unique")
        batch_op.drop_index(batch_op.f("ix_runs__status_ready_at"))
        batch_op.drop_column("run_key")
        batch_op.drop_column("retry_of")
        batch_op.drop_column("attempt")
        batch_op.drop_column("lease_epoch")
        batch_op.drop_column("lease_expires_at")
        batch_op.drop_column("lease_owner")
        batch_op.drop_column("ready_at")
        batch_op.drop_column("window_end")
        batch_op.drop_column("window_start")

    with op.batch_alter_table("schemas", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_schemas__ims_org_id_sandbox_name_created_at_id"))

    op.drop_table("schemas")
    with op.batch_alter_table("mapping_sets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mapping_sets__ims_org_id_sandbox_name_created_at_id"))

    op.drop_table("mapping_sets")
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_datasets__ims_org_id_sandbox_name_created_at_id"))

    op.drop_table("datasets")
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_batches__ims_org_id_sandbox_name_created_at_id"))
        batch_op.drop_index(batch_op.f("ix_batches__dataset_id"))

    op.drop_table("batches")
