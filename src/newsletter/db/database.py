"""One `Database` per command: the engine, sessions, and the schema's migration state.

SQLite gets WAL (readers never block the writer), foreign keys on, and a busy
timeout, so the web app, a worker and the CLI can share one file. Commands
other than `newsletter db upgrade` call `require_current()` first, so a
database that is missing or behind gives one clear instruction, not a
traceback from a missing table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, Table, create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from newsletter.errors import UserError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class Database:
    """The database behind `database_url`, on SQLite or PostgreSQL alike."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_db_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed if the block ends normally, rolled back if not."""
        with self.sessions() as session, session.begin():
            yield session

    def upgrade(self) -> tuple[str | None, str]:
        """Create or migrate the schema to the newest revision; safe to run any number of times."""
        before = self.current_revision()
        with self.engine.connect() as connection, _foreign_keys_off(connection), connection.begin():
            config = _alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
            _check_foreign_keys(connection)
        return before, self.head_revision()

    def current_revision(self) -> str | None:
        try:
            with self.engine.connect() as connection:
                return MigrationContext.configure(connection).get_current_revision()
        except OperationalError as error:
            raise UserError(f"cannot open the database {self.display_url()}: {error.orig}") from None

    @staticmethod
    def head_revision() -> str:
        head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
        assert head is not None, "the project ships at least one migration"
        return head

    def require_current(self) -> None:
        """Refuse to work on a database that is missing or behind the code's schema."""
        current, head = self.current_revision(), self.head_revision()
        if current != head:
            state = (
                "has no tables yet" if current is None else f"is at schema {current}, the code needs {head}"
            )
            raise UserError(f"the database {self.display_url()} {state}: run `newsletter db upgrade`")

    def display_url(self) -> str:
        """The URL without its password, for messages."""
        return make_url(self.url).render_as_string(hide_password=True)

    def dispose(self) -> None:
        self.engine.dispose()


def insert_for(session: Session) -> Callable[..., Any]:
    """The dialect's own INSERT for the session's database (SQLite or PostgreSQL), which has what the
    generic one lacks: ON CONFLICT DO NOTHING / DO UPDATE."""
    return insert_in(session.get_bind().dialect.name)


def insert_in(dialect: str) -> Callable[..., Any]:
    """`insert_for` by the dialect's name, for statements built once and kept."""
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def refresh_statistics(connection: Connection, tables: Sequence[Table]) -> None:
    """Have PostgreSQL look at `tables` again after a bulk write, before statements lean on them.

    Its planner works from table statistics that autovacuum refreshes only some time after a change.
    Just after an import or a campaign's snapshot they still described nearly empty tables, so a
    read of a few hundred members' topics by key was planned as a scan of every row (5 to 15 ms a
    batch at 20,000 members, most of the database server's time while sending) instead of using
    the key (0.3 ms). ANALYZE reads a fixed sample, runs inside the transaction and blocks no reads
    or writes. SQLite keeps no statistics unless asked, and plans by its indexes meanwhile.
    """
    if connection.dialect.name == "postgresql":
        for table in tables:
            connection.execute(text(f'ANALYZE "{table.name}"'))


def create_db_engine(url: str) -> Engine:
    """An engine with the connection settings each backend needs."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise UserError(
            f"database_url '{url}' is not a database address (sqlite:///FILE or postgresql+psycopg://...)"
        ) from None
    try:
        if parsed.get_backend_name() == "sqlite":
            engine = create_engine(parsed, connect_args={"timeout": 30})
            event.listen(engine, "connect", _sqlite_pragmas)
            return engine
        return create_engine(parsed, pool_pre_ping=True)
    except (NoSuchModuleError, ImportError) as error:
        raise UserError(
            f"database_url '{parsed.render_as_string(hide_password=True)}': no driver for it ({error})"
        ) from None


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    # SQLite's own lower() folds only ASCII; places such as "Ynys Môn" must match in any case.
    dbapi_connection.create_function("lower", 1, _lower, deterministic=True)  # type: ignore[attr-defined]
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


@contextmanager
def _foreign_keys_off(connection: Connection) -> Iterator[None]:
    """SQLite's foreign keys off while migrations run, back on after (the connection returns to the
    pool). Migrations rebuild a table by copying it and dropping the old one (SQLite cannot alter it
    otherwise); with foreign keys on, the drop would delete the rows of every table that refers to it
    (ON DELETE CASCADE). The pragma is ignored inside a transaction, so it is set before one begins.
    Nothing to do on PostgreSQL, which alters tables in place."""
    if connection.dialect.name != "sqlite":
        yield
        return
    connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    connection.commit()
    try:
        yield
    finally:
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")
        connection.commit()


def _check_foreign_keys(connection: Connection) -> None:
    """With foreign keys off, nothing stopped a migration leaving a row pointing nowhere: refuse to
    commit one that did."""
    if connection.dialect.name != "sqlite":
        return
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    if broken:
        raise RuntimeError(f"the migration left rows whose foreign keys point nowhere: {broken[:5]}")


def _lower(text: str | None) -> str | None:
    return text.lower() if isinstance(text, str) else text


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config
