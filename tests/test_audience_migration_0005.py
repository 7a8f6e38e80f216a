"""Migration 0005 (member keys, ids never reused) on a database that holds members, on SQLite and
PostgreSQL: every row, foreign key and link table survives; every member gets a key of their own; links
made before it (in issues already sent) still unsubscribe the member they were made for, and nobody else.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterator
from contextlib import nullcontext

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from itsdangerous import TimestampSigner
from itsdangerous.encoding import base64_encode, int_to_bytes
from sqlalchemy import delete, insert, inspect, select, text
from sqlalchemy.exc import IntegrityError

from newsletter.audience import addresses
from newsletter.db import database as db_module
from newsletter.db.database import Database
from newsletter.db.models import (
    Base,
    ConsentRecord,
    Delivery,
    Format,
    Status,
    Subscriber,
    SubscriberTopic,
    Subscription,
)
from web_support import SECRET, open_site, web_settings

NOW = dt.datetime(2024, 3, 1, 9, 30)
ONE_CLICK = {"List-Unsubscribe": "One-Click"}
OLD_COLUMNS = ("id", "email", "email_key", "email_hash", "name", "status", "created_at", "links_valid_from")


def migrate(database: Database, step=command.upgrade, revision: str = "0004", foreign_keys_off=True) -> None:
    """Run migrations to `revision` as `Database.upgrade` does (SQLite's foreign keys off)."""
    with (
        database.engine.connect() as connection,
        db_module._foreign_keys_off(connection) if foreign_keys_off else nullcontext(),
        connection.begin(),
    ):
        config = db_module._alembic_config()
        config.attributes["connection"] = connection
        step(config, revision)


def member_row(number: int, **values):
    email = f"member{number}@example.org"
    row = {
        "email": email,
        "email_key": email,
        "email_hash": addresses.address_hash(email),
        "name": f"Member {number}",
        "organisation": "",
        "sector": None,
        "region": None,
        "place": "",
        "language": "en-GB",
        "format": "html",
        "status": "active",
        "attributes": {},
        "created_at": NOW,
        "updated_at": NOW,
        "links_valid_from": None,
    }
    row.update(values)
    return row


def fill_0004(database: Database) -> None:
    """Members 1..3 as schema 0004 held them (member 4 was erased: its id is free), with lists, topics,
    consent records and deliveries, written with the 0004 columns only."""
    tables = _reflect(database)
    with database.engine.begin() as connection:
        connection.execute(insert(tables["lists"]), [{"slug": "newsletter", "name": "N", "description": ""}])
        connection.execute(insert(tables["topics"]), [{"slug": "housing", "name": "Housing"}])
        connection.execute(
            insert(tables["subscribers"]),
            [
                member_row(1),
                member_row(2, links_valid_from=NOW),
                member_row(3, status="unsubscribed"),
                member_row(4),
            ],
        )
        ids = connection.execute(select(tables["subscribers"].c.id).order_by(tables["subscribers"].c.id))
        assert ids.scalars().all() == [1, 2, 3, 4]
        connection.execute(
            insert(tables["subscriptions"]),
            [
                {"subscriber_id": n, "list_id": 1, "subscribed": True, "created_at": NOW, "updated_at": NOW}
                for n in (1, 2, 3, 4)
            ],
        )
        connection.execute(
            insert(tables["subscriber_topics"]), [{"subscriber_id": n, "topic_id": 1} for n in (1, 2, 4)]
        )
        connection.execute(
            insert(tables["consent_records"]),
            [
                {"subscriber_id": n, "action": "imported", "source": "old.csv", "created_at": NOW}
                for n in (1, 2, 3, 4)
            ],
        )
        connection.execute(
            insert(tables["campaigns"]),
            [
                {
                    "issue_slug": "2023-10",
                    "issue_source": "x",
                    "subject": "S",
                    "audiences": ["everyone"],
                    "status": "sent",
                    "send_at": NOW,
                    "created_at": NOW,
                    "recipients": 2,
                    "resend": False,
                }
            ],
        )
        connection.execute(
            insert(tables["deliveries"]),
            [
                {
                    "campaign_id": 1,
                    "subscriber_id": n,
                    "status": "sent",
                    "attempts": 1,
                    "next_attempt_at": NOW,
                    "message_id": f"<{n}@example.org>",
                    "updated_at": NOW,
                }
                for n in (1, 2, 4)
            ],
        )
        # Member 4 erased, as 0004 did it: the row goes and the cascades take the rest.
        connection.execute(delete(tables["subscribers"]).where(tables["subscribers"].c.id == 4))


def orm_row(number: int, email: str) -> dict:
    """A member for the models (after the upgrade), id chosen by the database."""
    row = member_row(number, email=email, email_key=email, email_hash=addresses.address_hash(email))
    return {**row, "status": Status.ACTIVE, "format": Format.HTML}


def _reflect(database: Database):
    from sqlalchemy import MetaData

    metadata = MetaData()
    metadata.reflect(database.engine)
    return metadata.tables


def counts(database: Database) -> dict[str, int]:
    with database.engine.connect() as connection:
        return {
            table: connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in (
                "subscribers",
                "subscriptions",
                "subscriber_topics",
                "consent_records",
                "deliveries",
            )
        }


@pytest.fixture
def settings(database_url):
    return web_settings(database_url, 25)


def database_at_0004(url: str) -> Iterator[Database]:
    """A database at schema 0004 holding members; upgraded to the newest schema by the test."""
    database = Database(url)
    migrate(database, command.upgrade, "0004")
    fill_0004(database)
    yield database
    database.dispose()


@pytest.fixture
def old_database(settings):
    yield from database_at_0004(settings.database_url)


@pytest.fixture
def old_sqlite_database(tmp_path):
    """The same on SQLite only: the rebuild that needs foreign keys off is SQLite's (PostgreSQL alters
    the table in place)."""
    yield from database_at_0004(f"sqlite:///{tmp_path / 'old.sqlite3'}")


def test_the_upgrade_keeps_every_row_and_gives_each_member_a_key(old_database):
    before_counts = counts(old_database)
    assert before_counts == {
        "subscribers": 3,
        "subscriptions": 3,
        "subscriber_topics": 2,
        "consent_records": 3,
        "deliveries": 2,
    }
    with old_database.engine.connect() as connection:
        before = connection.execute(
            text(f"SELECT {', '.join(OLD_COLUMNS)} FROM subscribers ORDER BY id")
        ).all()

    assert old_database.upgrade() == ("0004", Database.head_revision())

    assert counts(old_database) == before_counts
    with old_database.engine.connect() as connection:
        after = connection.execute(
            text(f"SELECT {', '.join(OLD_COLUMNS)} FROM subscribers ORDER BY id")
        ).all()
    assert after == before
    with old_database.session() as session:
        keys = session.scalars(select(Subscriber.link_key).order_by(Subscriber.id)).all()
        members = session.scalars(select(Subscriber).order_by(Subscriber.id)).all()
    assert len(set(keys)) == 3 and all(re.fullmatch(r"[0-9A-F]{32}", key) for key in keys)
    assert all(member.keyless_links_until is not None for member in members)


def test_foreign_keys_and_link_tables_survive_the_rebuild(old_database, settings):
    old_database.upgrade()
    engine = old_database.engine
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
            assert connection.exec_driver_sql("PRAGMA foreign_key_check").all() == []
            schema = dict(
                connection.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'table'").all()
            )
        assert "AUTOINCREMENT" in schema["subscribers"]
        for table in ("subscriptions", "subscriber_topics"):
            assert "WITHOUT ROWID" in schema[table], schema[table]
    inspector = inspect(engine)
    for table in ("subscriptions", "subscriber_topics", "consent_records", "deliveries"):
        targets = {fk["referred_table"] for fk in inspector.get_foreign_keys(table)}
        assert "subscribers" in targets, (table, targets)
    assert {tuple(u["column_names"]) for u in inspector.get_unique_constraints("subscribers")} == {
        ("email_key",)
    }
    # The cascades still work from the rebuilt table: deleting member 2 takes its rows with it.
    with old_database.session() as session:
        session.execute(delete(Subscriber).where(Subscriber.id == 2))
    with old_database.session() as session:
        for model in (Subscription, SubscriberTopic, ConsentRecord, Delivery):
            assert session.scalars(select(model).where(model.subscriber_id == 2)).all() == [], model
        assert len(session.scalars(select(Subscription)).all()) == 2
    # And the unique address key still holds.
    with pytest.raises(IntegrityError), old_database.session() as session:
        session.add(Subscriber(**{**orm_row(9, "x@example.org"), "email_key": "member1@example.org"}))


def test_after_the_upgrade_an_erased_newest_members_id_is_never_given_again(old_database):
    old_database.upgrade()
    with old_database.session() as session:
        newest = Subscriber(**orm_row(0, "new@example.org"))
        session.add(newest)
        session.flush()
        first = newest.id
        session.delete(newest)
    with old_database.session() as session:
        again = Subscriber(**orm_row(0, "again@example.org"))
        session.add(again)
        session.flush()
        assert again.id > first


def test_the_rebuild_refuses_to_run_with_sqlite_foreign_keys_on(old_sqlite_database):
    """Dropping the old table with foreign keys on would empty every table that refers to it."""
    before = counts(old_sqlite_database)
    with pytest.raises(RuntimeError, match="foreign keys on"):
        migrate(old_sqlite_database, command.upgrade, "0005", foreign_keys_off=False)
    assert counts(old_sqlite_database) == before
    assert old_sqlite_database.current_revision() == "0004"


def test_down_and_up_again_keeps_the_members(old_database):
    old_database.upgrade()
    before = counts(old_database)
    migrate(old_database, command.downgrade, "0004")
    assert counts(old_database) == before
    old_database.upgrade()
    assert counts(old_database) == before
    with old_database.session() as session:
        assert None not in session.scalars(select(Subscriber.link_key)).all()


def legacy_token(purpose: str, subscriber_id: int, issued_at: int | None = None) -> str:
    """A link as the code before 0005 made it: a plain TimestampSigner over the id (base36), no key."""
    value = f"{subscriber_id}.{base64_encode(int_to_bytes(issued_at or int(time.time()))).decode('ascii')}"
    return f"{value}.{TimestampSigner(SECRET, salt=purpose).get_signature(value).decode('ascii')}"


def test_links_in_issues_sent_before_the_upgrade_still_unsubscribe_their_member(old_database, settings):
    """The unsubscribe and preferences links of issues already sent carry no key; they keep working for
    the member they were made for, who was there before the upgrade, and for nobody else."""
    unsubscribe = legacy_token("unsubscribe", 1)
    preferences = legacy_token("preferences", 2)
    erased = legacy_token("unsubscribe", 4)  # made for member 4, erased before the upgrade
    time.sleep(1.05)  # the upgrade comes after the links were made (whole seconds)
    site_iter = open_site(settings.database_url)
    site = next(site_iter)
    try:
        page = site.client.get(f"/preferences/{preferences}")
        assert page.status_code == 200 and "member2@example.org" in page.text
        response = site.fresh_client().post(f"/unsubscribe/{unsubscribe}", data=ONE_CLICK)
        assert response.status_code == 200
        assert site.member("member1@example.org").status == Status.UNSUBSCRIBED
        # A member who joins after the upgrade (here given the erased member's id back) is never
        # reached by a link without a key.
        with site.store.database.session() as session:
            session.add(Subscriber(**{**orm_row(4, "sam@example.org"), "id": 4}))
        assert site.client.get(f"/unsubscribe/{erased}").status_code == 410
        site.fresh_client().post(f"/unsubscribe/{erased}", data=ONE_CLICK)
        assert site.member("sam@example.org").status == Status.ACTIVE
        # Other kinds of link made before the upgrade are short-lived anyway: they must be asked for again.
        assert site.client.get(f"/data/{legacy_token('data', 2)}").status_code == 410
    finally:
        site_iter.close()


def test_a_link_without_a_key_made_before_its_member_existed_is_refused(old_database, settings):
    """Before 0005 an erased newest member's id went to the next person; a link older than the member's
    row was made for somebody else."""
    site_iter = open_site(settings.database_url)
    site = next(site_iter)
    try:
        made_before = int(NOW.replace(tzinfo=dt.UTC).timestamp()) - 3600
        token = legacy_token("preferences", 1, made_before)
        response = site.client.get(f"/preferences/{token}")
        assert response.status_code == 410 and "member1@example.org" not in response.text
    finally:
        site_iter.close()


def test_the_schema_after_the_upgrade_is_the_models(old_database):
    old_database.upgrade()
    with old_database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
