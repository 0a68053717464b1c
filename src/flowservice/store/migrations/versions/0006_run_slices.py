"""Slices of large runs

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-10 10:00:00.000000

A run with many files (or many bytes) is planned into slices after its Copy Activity; each slice is
promoted by any worker under a lease of its own, and the run's coordinator commits all of them as
one batch (services/slices.py).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    document = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
    op.create_table(
        "run_slices",
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("files", document, nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("lease_owner", sa.String(length=128), nullable=True),
        sa.Column("lease_expires_at", sa.BigInteger(), nullable=True),
        sa.Column("lease_epoch", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("result", document, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_run_slices__run_id__runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "idx", name=op.f("pk_run_slices")),
    )
    op.create_index(
        op.f("ix_run_slices__status_lease_expires_at"), "run_slices", ["status", "lease_expires_at"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_run_slices__status_lease_expires_at"), table_name="run_slices")
    op.drop_table("run_slices")
