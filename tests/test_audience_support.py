"""Helpers shared by the audience tests (no tests of its own): CSV files, custom vocabularies, the CLI.

Every helper works on a real database: the `audience` and `database_url` fixtures in conftest.py run
each audience test on a SQLite file and on the throwaway PostgreSQL server.
"""

from __future__ import annotations

import dataclasses
import shutil
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import MetaData, select

from newsletter.audience.service import Audience
from newsletter.cli import cli
from newsletter.db.models import ConsentRecord, Subscriber
from newsletter.settings import Settings

MIGRATE_HINT = "run `newsletter db upgrade`"


def write_csv(path: Path, text: str, *, bom: bool = False) -> Path:
    """Write `text` as UTF-8 exactly as given (newlines kept), optionally with Excel's BOM."""
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


def import_text(audience: Audience, tmp_path: Path, text: str, name: str = "members.csv", **options):
    """Write a small CSV into tmp_path and import it through the library call."""
    return audience.import_csv(write_csv(tmp_path / name, text), **options)


def vocabulary_copy(repo_root: Path, directory: Path, segments_yaml: str | None = None) -> Path:
    """A copy of the repository's subscribers/*.yaml, optionally with our own segments.yaml."""
    directory.mkdir(parents=True, exist_ok=True)
    for source in (repo_root / "subscribers").glob("*.yaml"):
        shutil.copy(source, directory / source.name)
    if segments_yaml is not None:
        (directory / "segments.yaml").write_text(segments_yaml, encoding="utf-8")
    return directory


def custom_settings(settings: Settings, vocabulary_dir: Path) -> Settings:
    """The same database, with the vocabulary (and segments) of another folder."""
    return dataclasses.replace(settings, vocabulary_dir=vocabulary_dir)


def custom_audience(settings: Settings, vocabulary_dir: Path) -> Audience:
    """A second `Audience` on the same (already migrated) database, reading another vocabulary folder."""
    return Audience.open(custom_settings(settings, vocabulary_dir))


def run_cli(settings: Settings, *args: str, input: str | None = None) -> Result:
    """Run `newsletter ARGS` with these settings; a user mistake must never show a traceback."""
    result = CliRunner().invoke(cli, list(args), obj=settings, input=input)
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def error_lines(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("Error:")]


def segment_emails(audience: Audience, name: str) -> set[str]:
    """The segment's members as addresses, checking the SQL lists each member once and counts the same."""
    with audience.store.database.session() as session:
        ids = list(session.scalars(audience.segments.members(name)))
        assert len(ids) == len(set(ids)), f"{name}: a member is listed twice"
        assert audience.segments.count(session, name) == len(ids), f"{name}: count differs from members"
        return set(session.scalars(select(Subscriber.email).where(Subscriber.id.in_(ids))))


def all_emails(audience: Audience) -> set[str]:
    with audience.store.database.session() as session:
        return set(session.scalars(select(Subscriber.email)))


def member(audience: Audience, email: str) -> Subscriber | None:
    with audience.store.database.session() as session:
        return session.scalar(select(Subscriber).where(Subscriber.email_key == email.lower()))


def consent_actions(audience: Audience, email: str) -> list[tuple[str, str]]:
    """(action, source) of each consent record of the member, oldest first."""
    with audience.store.database.session() as session:
        rows = session.execute(
            select(ConsentRecord.action, ConsentRecord.source)
            .join(Subscriber, Subscriber.id == ConsentRecord.subscriber_id)
            .where(Subscriber.email_key == email.lower())
            .order_by(ConsentRecord.id)
        )
        return [(action, source) for action, source in rows]


def every_stored_value(audience: Audience) -> list[str]:
    """Every value in every row of every table (reflected, so nothing the models forget is missed)."""
    metadata = MetaData()
    metadata.reflect(audience.store.database.engine)
    values = []
    with audience.store.database.engine.connect() as connection:
        for table in metadata.sorted_tables:
            for row in connection.execute(table.select()):
                values.extend(str(value) for value in row)
    return values


def second_database_url(request: pytest.FixtureRequest, database_url: str, tmp_path: Path) -> str:
    """Another empty database on the same engine as `database_url` (dropped after the test on PostgreSQL)."""
    if database_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'second.sqlite3'}"
    server = request.getfixturevalue("postgres")
    name = f"second_{uuid.uuid4().hex[:12]}"
    url = server.create_database(name)
    request.addfinalizer(lambda: server.drop_database(name))
    return url


def on_sqlite(database_url: str) -> bool:
    return database_url.startswith("sqlite")
