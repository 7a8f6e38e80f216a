"""reports: the variants a campaign made, and its counted links

`campaigns.variants` keeps the distinct emails a campaign made when it started and how many members
got each. `campaign_links` holds, for a campaign sent with `count_clicks`, each link of its issue and
how many times it was followed: a number per link, nothing about who followed it.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("variants", sa.JSON(), nullable=True))
    op.create_table(
        "campaign_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("section", sa.String(length=300), nullable=False),
        sa.Column("text", sa.String(length=300), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("clicks", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_links_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_links")),
        sa.UniqueConstraint("campaign_id", "url", name=op.f("uq_campaign_links_campaign_id")),
    )


def downgrade() -> None:
    op.drop_table("campaign_links")
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("variants")
