"""add items: the tooling tests' one table

Revision ID: d0e1a2b3c4d5
Revises:
Create Date: 2026-12-03 06:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "d0e1a2b3c4d5"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("made_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_items")),
        sa.UniqueConstraint("label", name=op.f("uq_items_label")),
    )


def downgrade():
    op.drop_table("items")
