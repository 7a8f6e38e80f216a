"""desk: the team's accounts and what they did at the desk

`editors` holds the people who sign in to the desk (`/desk/`), each with a role; there are no
passwords, only a single-use sign-in link (`sign_in_nonce`). `desk_events` is the history shown on
each issue's page: who did what and when, kept under the address they had when an account goes.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

ROLES = ("contributor", "editor", "admin")


def upgrade() -> None:
    op.create_table(
        "editors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("email_key", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "role",
            sa.Enum(*ROLES, name="editor_role", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("sign_in_nonce", sa.String(length=64), nullable=True),
        sa.Column("sign_in_sent_at", sa.DateTime(), nullable=True),
        sa.Column("signed_in_at", sa.DateTime(), nullable=True),
        sa.Column("session_epoch", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_editors")),
        sa.UniqueConstraint("email_key", name=op.f("uq_editors_email_key")),
    )
    op.create_table(
        "desk_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("editor_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=320), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("issue_slug", sa.String(length=100), nullable=True),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("details", sa.String(length=1000), nullable=False),
        sa.ForeignKeyConstraint(
            ["editor_id"], ["editors.id"], name=op.f("fk_desk_events_editor_id_editors"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_desk_events_campaign_id_campaigns"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_desk_events")),
    )
    op.create_index(op.f("ix_desk_events_at"), "desk_events", ["at"])
    op.create_index(op.f("ix_desk_events_issue_slug"), "desk_events", ["issue_slug"])


def downgrade() -> None:
    op.drop_index(op.f("ix_desk_events_issue_slug"), table_name="desk_events")
    op.drop_index(op.f("ix_desk_events_at"), table_name="desk_events")
    op.drop_table("desk_events")
    op.drop_table("editors")
