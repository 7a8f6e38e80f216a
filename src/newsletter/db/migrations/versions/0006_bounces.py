"""bounces: what came back from the mail world, each member's soft-bounce score, complaints per message

`bounce_events` keeps every bounce, complaint and auto-reply taken in, with what was done about it
(`newsletter bounces` lists them, `bounces undo` marks them undone). A member's row is named by id with
ON DELETE SET NULL, so erasing the member leaves no address behind. `subscribers.bounce_score` and
`bounce_scored_on` hold the soft-bounce count and the day it last rose; `deliveries.complained_at`
marks a message its recipient reported as spam.

Columns are added with ALTER TABLE ADD COLUMN on both databases (no rebuild of `subscribers`).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "subscribers", sa.Column("bounce_score", sa.Float(), nullable=False, server_default=sa.text("0"))
    )
    op.add_column("subscribers", sa.Column("bounce_scored_on", sa.Date(), nullable=True))
    op.add_column("deliveries", sa.Column("complained_at", sa.DateTime(), nullable=True))
    op.create_table(
        "bounce_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=True),
        sa.Column("email_hash", sa.String(length=64), nullable=True),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=True),
        sa.Column("diagnostic", sa.String(length=1000), nullable=False),
        sa.Column("action", sa.String(length=300), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("undone_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name=op.f("fk_bounce_events_subscriber_id_subscribers"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_bounce_events_campaign_id_campaigns"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bounce_events")),
    )
    op.create_index(op.f("ix_bounce_events_subscriber_id"), "bounce_events", ["subscriber_id"])
    op.create_index(op.f("ix_bounce_events_created_at"), "bounce_events", ["created_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_bounce_events_created_at"), table_name="bounce_events")
    op.drop_index(op.f("ix_bounce_events_subscriber_id"), table_name="bounce_events")
    op.drop_table("bounce_events")
    # ALTER TABLE DROP COLUMN (SQLite 3.35 or later, PostgreSQL): no rebuild of `subscribers`.
    for table, column in (
        ("deliveries", "complained_at"),
        ("subscribers", "bounce_scored_on"),
        ("subscribers", "bounce_score"),
    ):
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
