"""scheduler cursor on flows, retry numbers on runs

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 16:31:54.830556
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("flows", schema=None) as batch_op:
        batch_op.add_column(sa.Column("schedule_window_start", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("schedule_next_at", sa.BigInteger(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_flows__state_schedule_next_at"), ["state", "schedule_next_at"], unique=False
        )

    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("retry_number", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("retry_number")

    with op.batch_alter_table("flows", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_flows__state_schedule_next_at"))
        batch_op.drop_column("schedule_next_at")
        batch_op.drop_column("schedule_window_start")
