"""Inspections: one vehicle's photos answered together (``/v1/inspections``).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import autoinspect.store.tables

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inspections",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("inspection_id", sa.String(length=128), nullable=False),
        sa.Column("vehicle_id", sa.String(length=128), nullable=False),
        sa.Column("client_reference", sa.String(length=128), nullable=True),
        sa.Column("created_at", autoinspect.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("answer", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("inspections", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_inspections_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_inspections_inspection_id"), ["inspection_id"], unique=True)
        batch_op.create_index(batch_op.f("ix_inspections_vehicle_id"), ["vehicle_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("inspections", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inspections_vehicle_id"))
        batch_op.drop_index(batch_op.f("ix_inspections_inspection_id"))
        batch_op.drop_index(batch_op.f("ix_inspections_created_at"))

    op.drop_table("inspections")
