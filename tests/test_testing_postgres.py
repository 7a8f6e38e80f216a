"""The throwaway PostgreSQL server really starts, serves SQL, copies templates and cleans up after itself."""

from __future__ import annotations

import socket
import time

from sqlalchemy import create_engine, text

from newsletter.testing.postgres import TemporaryPostgres


def _accepts_connections(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_temporary_postgres_lifecycle() -> None:
    started = time.monotonic()
    with TemporaryPostgres() as pg:
        startup = time.monotonic() - started
        assert startup < 10, f"startup took {startup:.1f}s"
        port, directory = pg.port, pg.directory
        assert port is not None and directory is not None
        assert directory.is_dir()
        assert pg.log_path.is_file()
        assert _accepts_connections(port)

        url = pg.create_database("first-db")
        assert url == f"postgresql+psycopg://postgres@127.0.0.1:{port}/first-db"
        engine = create_engine(url)
        try:
            with engine.begin() as conn:
                conn.execute(text("CREATE TABLE subscriber (id serial PRIMARY KEY, email text NOT NULL)"))
                conn.execute(
                    text("INSERT INTO subscriber (email) VALUES (:email)"),
                    [{"email": "a@example.org"}, {"email": "b@example.org"}],
                )
            with engine.connect() as conn:
                emails = conn.execute(text("SELECT email FROM subscriber ORDER BY id")).scalars().all()
                version = conn.execute(text("SELECT version()")).scalar_one()
                settings = dict(
                    conn.execute(
                        text(
                            "SELECT name, setting FROM pg_settings"
                            " WHERE name IN ('fsync', 'synchronous_commit', 'listen_addresses')"
                        )
                    ).all()
                )
        finally:
            engine.dispose()  # a template cannot be copied while anything is connected to it
        assert emails == ["a@example.org", "b@example.org"]
        assert "PostgreSQL" in version
        assert settings == {"fsync": "off", "synchronous_commit": "off", "listen_addresses": "127.0.0.1"}

        copy_url = pg.create_database("second", template="first-db")
        assert copy_url == pg.url("second")
        copy_engine = create_engine(copy_url)
        try:
            with copy_engine.connect() as conn:
                assert conn.execute(text("SELECT count(*) FROM subscriber")).scalar_one() == 2
            # Left open on purpose: drop_database must terminate it rather than block.
            held = copy_engine.connect()
            pg.drop_database("second")
            held.close()
        finally:
            copy_engine.dispose()

        admin = create_engine(pg.url())
        try:
            with admin.connect() as conn:
                names = set(conn.execute(text("SELECT datname FROM pg_database")).scalars())
        finally:
            admin.dispose()
        assert "first-db" in names
        assert "second" not in names

    assert pg.directory is None
    assert not directory.exists()
    assert not _accepts_connections(port)
