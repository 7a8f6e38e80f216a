"""web: pending address changes, link revocation, rate limits shared by every server process

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.add_column(sa.Column("pending_email", sa.String(length=320), nullable=True))
        batch.add_column(sa.Column("pending_email_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("links_valid_from", sa.DateTime(), nullable=True))
    op.create_table(
        "rate_limits",
        sa.Column("bucket", sa.String(length=100), nullable=False),
        sa.Column("period", sa.Integer(), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("bucket", "period", name=op.f("pk_rate_limits")),
    )


def downgrade() -> None:
    op.drop_table("rate_limits")
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_column("links_valid_from")
        batch.drop_column("pending_email_at")
        batch.drop_column("pending_email")
