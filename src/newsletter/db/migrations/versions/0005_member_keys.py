"""subscribers: ids never given twice, and a random key of each member's own that every link names

SQLite gave a deleted newest row's id to the next row (no AUTOINCREMENT), so the links an erased member
kept came to open the next member's pages. The table is rebuilt with AUTOINCREMENT (SQLite cannot add it
otherwise; PostgreSQL's sequence never gave an id twice). Every member, existing or new, gets `link_key`
(16 random bytes as 32 upper-case hex digits, made by the database so that bulk imports get one too).
Members here now get `keyless_links_until`: their unsubscribe and preferences links in issues already
sent carry no key, and keep working for them.

The rebuild copies the rows, drops the old table and renames the new one. `Database.upgrade` turns
SQLite's foreign keys off around it, as Alembic's batch mode asks: with them on, dropping the old table
would delete every member's lists, topics, consent records and deliveries through ON DELETE CASCADE.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

import contextlib
import datetime as dt
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# As `models.LINK_KEY_SQL` when this was written (a migration keeps its own copy).
LINK_KEY_SQL = {
    "sqlite": "hex(randomblob(16))",
    "postgresql": "upper(left(encode(sha256(convert_to(gen_random_uuid()::text || gen_random_uuid()::text, "
    "'UTF8')), 'hex'), 32))",
}


def upgrade() -> None:
    bind = op.get_bind()
    with _subscribers_rebuilt(bind, autoincrement=True) as batch:
        batch.add_column(
            sa.Column(
                "link_key",
                sa.String(length=32),
                nullable=False,
                server_default=sa.text(f"({LINK_KEY_SQL[bind.dialect.name]})"),
            )
        )
        batch.add_column(sa.Column("keyless_links_until", sa.DateTime(), nullable=True))
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    subscribers = sa.table("subscribers", sa.column("keyless_links_until", sa.DateTime()))
    op.execute(subscribers.update().values(keyless_links_until=now))


def downgrade() -> None:
    with _subscribers_rebuilt(op.get_bind(), autoincrement=False) as batch:
        batch.drop_column("keyless_links_until")
        batch.drop_column("link_key")


@contextlib.contextmanager
def _subscribers_rebuilt(bind: sa.Connection, autoincrement: bool) -> Iterator[Any]:
    """`subscribers` altered in batch: on SQLite always rebuilt (AUTOINCREMENT is a table option),
    which is only safe with foreign keys off."""
    sqlite = bind.dialect.name == "sqlite"
    if sqlite:
        _require_foreign_keys_off(bind)
    with op.batch_alter_table(
        "subscribers",
        recreate="always" if sqlite else "auto",
        table_kwargs={"sqlite_autoincrement": autoincrement},
    ) as batch:
        yield batch


def _require_foreign_keys_off(bind: sa.Connection) -> None:
    if bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise RuntimeError(
            "rebuilding subscribers with SQLite foreign keys on would delete every member's rows in other "
            "tables (ON DELETE CASCADE): run it through `newsletter db upgrade`, which turns them off"
        )
