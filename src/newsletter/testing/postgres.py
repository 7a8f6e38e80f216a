"""Throwaway servers for tests and benchmarks: real PostgreSQL on loopback, started and removed by the run itself"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql

from newsletter.running import Running
from newsletter.testing.ports import free_port

__all__ = ["TemporaryPostgres", "find_postgres_bindir"]

_INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found. "
    "Install Debian's `postgresql` package: `apt-get install postgresql`."
)

# Settings that trade durability for speed: the cluster is deleted after the run, so a crash loses nothing.
_SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "100",
    "shared_buffers": "128MB",
}

_START_ATTEMPTS = 3  # the free port we picked can be taken before the server binds it


def _has_server_binaries(bindir: Path) -> bool:
    return all((bindir / name).is_file() for name in ("initdb", "pg_ctl", "postgres"))


def _version_key(bindir: str) -> tuple[int, ...]:
    """Sort /usr/lib/postgresql/<version>/bin numerically, so 15 beats 9.6."""
    version = Path(bindir).parent.name
    return tuple(int(part) for part in re.findall(r"\d+", version)) or (0,)


def find_postgres_bindir() -> Path:
    """Locate initdb/pg_ctl: `pg_config --bindir` first, else the newest Debian install; raise if absent.

    Missing binaries are an error, never a skip, so a machine without PostgreSQL cannot pass the suite silently.
    """
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=10
            )
            bindir = Path(out.stdout.strip())
            if _has_server_binaries(bindir):
                return bindir
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True):
        if _has_server_binaries(Path(candidate)):
            return Path(candidate)
    raise RuntimeError(_INSTALL_HINT)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


class TemporaryPostgres(Running):
    """A private PostgreSQL cluster in a temporary directory, for the lifetime of a `with` block.

    Tests and benchmarks get a real server (same SQL, locking and planner as production) without depending
    on a shared, long-lived database. On exit the server is stopped immediately and its directory removed.
    """

    def __init__(self, *, bindir: Path | None = None, startup_timeout: float = 30.0) -> None:
        self._bindir_override = bindir
        self.startup_timeout = startup_timeout
        self.bindir: Path | None = None
        self.directory: Path | None = None
        self.port: int | None = None
        self._run_as: str | None = None  # system user to run the server as when we are root
        self._started = False

    # -- paths ---------------------------------------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        """The cluster's PGDATA, inside the temporary directory."""
        return self._require_directory() / "data"

    @property
    def log_path(self) -> Path:
        """The server log, kept next to the cluster so a failed start can be diagnosed."""
        return self._require_directory() / "postgres.log"

    def _require_directory(self) -> Path:
        if self.directory is None:
            raise RuntimeError("TemporaryPostgres is not running; use it as a context manager")
        return self.directory

    # -- lifecycle -----------------------------------------------------------------------------------------

    def start(self) -> None:
        """initdb a cluster in a fresh temporary directory and start its server on a free port."""
        if self.directory is not None:
            raise RuntimeError("TemporaryPostgres is already running")
        self.bindir = self._bindir_override or find_postgres_bindir()
        if not _has_server_binaries(self.bindir):
            raise RuntimeError(f"{_INSTALL_HINT} (looked in {self.bindir})")
        self.directory = Path(tempfile.mkdtemp(prefix="newsletter-pg-"))
        try:
            self._prepare_ownership()
            self._initdb()
            self._start()
        except BaseException:
            self._cleanup()
            raise

    def stop(self) -> None:
        """Stop the server and delete the cluster; safe to call twice."""
        self._cleanup()

    def _prepare_ownership(self) -> None:
        """PostgreSQL refuses to run as root, so as root hand the directory to the `postgres` system user."""
        if os.geteuid() != 0:
            self._run_as = None
            return
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            raise RuntimeError(
                "Running as root, but there is no `postgres` system user to run the server as. "
                "Install Debian's `postgresql` package (`apt-get install postgresql`), which creates it."
            ) from None
        directory = self._require_directory()
        os.chown(directory, user.pw_uid, user.pw_gid)
        self._run_as = user.pw_name

    def _command(self, argv: list[str]) -> list[str]:
        """Wrap argv so it runs as the server's user (runuser, else su) when we are root."""
        if self._run_as is None:
            return argv
        runuser = shutil.which("runuser")
        if runuser:
            return [runuser, "-u", self._run_as, "--", *argv]
        su = shutil.which("su") or "su"
        return [su, self._run_as, "-s", "/bin/sh", "-c", shlex.join(argv)]

    def _run(self, argv: list[str], *, timeout: float) -> subprocess.CompletedProcess[str]:
        # cwd is our own directory: the postgres user may not be allowed into the caller's cwd.
        return subprocess.run(
            self._command(argv),
            cwd=self._require_directory(),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def _initdb(self) -> None:
        assert self.bindir is not None
        base = [str(self.bindir / "initdb"), "-D", str(self.data_dir), "-U", "postgres", "--auth=trust"]
        base += ["-E", "UTF8", "--no-sync", "--no-instructions"]
        result = self._run([*base, "--locale=C.UTF-8"], timeout=120)
        if result.returncode != 0:
            # Systems without a C.UTF-8 locale: fall back to the always-present C locale.
            shutil.rmtree(self.data_dir, ignore_errors=True)
            result = self._run([*base, "--no-locale"], timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed (exit {result.returncode}):\n{result.stdout}\n{result.stderr}")

    def _write_config(self, port: int) -> None:
        settings = {
            **_SERVER_SETTINGS,
            "port": str(port),
            "unix_socket_directories": str(self._require_directory()),
        }
        lines = ["", "# Added by newsletter.testing.postgres.TemporaryPostgres"]
        for key, value in settings.items():
            escaped = value.replace("\\", "\\\\").replace("'", "''")
            lines.append(f"{key} = '{escaped}'")
        # postgresql.auto.conf is read last, so these win over anything initdb wrote; rewriting the file
        # each attempt keeps only the current port.
        (self.data_dir / "postgresql.auto.conf").write_text("\n".join(lines) + "\n")

    def _start(self) -> None:
        assert self.bindir is not None
        failure = ""
        for _ in range(_START_ATTEMPTS):
            port = free_port()
            self._write_config(port)
            argv = [str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_path)]
            argv += ["-w", "-t", str(int(self.startup_timeout)), "start"]
            try:
                result = self._run(argv, timeout=self.startup_timeout + 10)
            except subprocess.TimeoutExpired:
                failure = "pg_ctl start timed out"
                self._stop()
                continue
            if result.returncode == 0:
                self.port = port
                self._started = True
                return
            failure = (
                f"pg_ctl start failed (exit {result.returncode}): {result.stdout}{result.stderr}".strip()
            )
            self._stop()
            if "could not bind" not in _tail(self.log_path, 200):
                break  # not a port race: retrying will not help
        raise RuntimeError(f"{failure}\n--- tail of {self.log_path} ---\n{_tail(self.log_path)}")

    def _stop(self) -> None:
        if self.bindir is None or self.directory is None or not (self.data_dir / "postmaster.pid").exists():
            return
        argv = [str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "-w", "stop"]
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self._run(argv, timeout=30)

    def _cleanup(self) -> None:
        try:
            self._stop()
        finally:
            if self.directory is not None:
                shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None
            self.port = None
            self._started = False

    # -- databases -----------------------------------------------------------------------------------------

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL for `database` on this server (psycopg 3 driver, trust auth, no password)."""
        if not self._started or self.port is None:
            raise RuntimeError("TemporaryPostgres is not running; use it as a context manager")
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{quote(database, safe='')}"

    def _admin_connection(self) -> psycopg.Connection:
        if not self._started or self.port is None:
            raise RuntimeError("TemporaryPostgres is not running; use it as a context manager")
        # CREATE/DROP DATABASE cannot run inside a transaction block, hence autocommit.
        return psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", autocommit=True
        )

    def create_database(self, name: str, template: str | None = None) -> str:
        """Create database `name` and return its URL; copying a `template` is much faster than re-migrating.

        PostgreSQL refuses to copy a template while anything else is connected to it: dispose engines first.
        """
        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            query = sql.SQL("{} TEMPLATE {}").format(query, sql.Identifier(template))
        with self._admin_connection() as conn:
            conn.execute(query)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop database `name`, terminating its open connections first so a leaked pool cannot block it."""
        query = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        with self._admin_connection() as conn:
            conn.execute(query)
