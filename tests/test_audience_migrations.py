"""`newsletter db upgrade` from empty on both engines, and every other command refusing an empty database."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select

from newsletter.audience.service import Audience
from newsletter.db.database import Database
from newsletter.db.models import Base, MailingList, Topic
from test_audience_support import MIGRATE_HINT, all_emails, error_lines, run_cli, write_csv

TABLES = {
    "alembic_version",
    "subscribers",
    "lists",
    "subscriptions",
    "topics",
    "subscriber_topics",
    "consent_records",
    "suppressions",
    "campaigns",
    "deliveries",
    "test_sends",
    "rate_limits",
    "bounce_events",
    "editors",
    "desk_events",
    "campaign_links",
    "submissions",
}


def test_upgrade_creates_every_table_and_the_vocabulary(audience_settings):
    service = Audience.open(audience_settings)
    try:
        assert set(inspect(service.store.database.engine).get_table_names()) == set()
        service.upgrade()
        assert set(inspect(service.store.database.engine).get_table_names()) == TABLES
        with service.store.database.session() as session:
            assert set(session.scalars(select(MailingList.slug))) == {"newsletter", "network", "events"}
            assert len(set(session.scalars(select(Topic.slug)))) == len(service.store.vocabulary.topics) == 16
        # and again: nothing changes, nothing is added twice
        assert service.upgrade() == (Database.head_revision(), Database.head_revision())
        with service.store.database.session() as session:
            assert len(session.scalars(select(MailingList.slug)).all()) == 3
    finally:
        service.close()


def test_migrated_schema_matches_the_models(audience):
    with audience.store.database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_db_upgrade_command_says_created_then_up_to_date(audience_settings):
    head = Database.head_revision()
    first = run_cli(audience_settings, "db", "upgrade")
    assert first.exit_code == 0
    assert first.output.strip().endswith(f": created at schema {head}")
    second = run_cli(audience_settings, "db", "upgrade")
    assert second.exit_code == 0
    assert second.output.strip().endswith(f": already up to date (schema {head})")
    service = Audience.open(audience_settings)
    try:
        service.store.ready()  # the library agrees the schema is current
    finally:
        service.close()


@pytest.mark.parametrize(
    "args",
    [
        ("segments",),
        ("segments", "show", "everyone"),
        ("lists",),
        ("subscribers", "import", "{csv}"),
        ("subscribers", "export"),
        ("subscribers", "export", "--out", "{out}"),
        ("subscribers", "show", "jo@example.org"),
        ("subscribers", "unsubscribe", "jo@example.org"),
        ("subscribers", "erase", "jo@example.org", "--yes"),
    ],
    ids=lambda args: " ".join(args).replace("{", "").replace("}", ""),
)
def test_commands_on_an_empty_database_say_run_db_upgrade(audience_settings, tmp_path, args):
    csv_file = write_csv(tmp_path / "new.csv", "email\njo@example.org\n")
    out = tmp_path / "export.csv"
    argv = [arg.format(csv=csv_file, out=out) for arg in args]
    result = run_cli(audience_settings, *argv)
    assert result.exit_code == 1
    [error] = error_lines(result)
    assert MIGRATE_HINT in error
    assert "has no tables yet" in error
    assert not out.exists()
    assert not (tmp_path / "new-import-report.csv").exists()
    # and the refusal left the database empty: upgrading now finds nothing imported
    service = Audience.open(audience_settings)
    try:
        before, _ = service.upgrade()
        assert before is None
        assert all_emails(service) == set()
    finally:
        service.close()
