"""Helpers shared by the delivery tests (no tests of its own): settings, members, the ledger, workers.

Everything is real: the `database_url` fixture in conftest.py runs each test on a SQLite file and on the
throwaway PostgreSQL server, messages go over loopback sockets to `RecordingSMTPServer` (aiosmtpd),
`PostfixSmtpSink` (Postfix's smtp-sink) or `MaildirSink`, and crash tests run `newsletter worker` as a
separate process. Every wait here has a timeout.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner, Result
from sqlalchemy import select

from newsletter.audience.service import Audience
from newsletter.cli import cli
from newsletter.db.models import Campaign, CampaignStatus, Delivery, Subscriber
from newsletter.delivery.service import Sending
from newsletter.delivery.worker import WorkerStats
from newsletter.settings import Settings
from newsletter.testing.smtp import Received

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_SLUG = "2023-10"
SAMPLE_CSV = REPO_ROOT / "subscribers" / "sample.csv"
MEMBER_COLUMNS = ("email", "name", "organisation", "sector", "region", "place", "topics", "lists", "format")


def delivery_settings(database_url: str, smtp_url: str | int, **overrides: object) -> Settings:
    """Settings for the repository's sample issue, theme and vocabulary, sending to `smtp_url` (or a port)."""
    if isinstance(smtp_url, int):
        smtp_url = f"smtp://127.0.0.1:{smtp_url}"
    values: dict[str, object] = {
        "database_url": database_url,
        "smtp_url": smtp_url,
        "issues_dir": REPO_ROOT / "issues",
        "theme_dir": REPO_ROOT / "templates",
        "vocabulary_dir": REPO_ROOT / "subscribers",
        "concurrency": 2,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@contextlib.contextmanager
def open_sending(settings: Settings, members: Path | None = SAMPLE_CSV) -> Iterator[Sending]:
    """A migrated database holding `members` (the 400-member sample by default), closed afterwards."""
    sending = Sending(settings)
    try:
        sending.store.upgrade()
        if members is not None:
            summary = Audience(sending.store).import_csv(members)
            assert summary.rejected == 0, str(summary)
        yield sending
    finally:
        sending.close()


def run_cli(settings: Settings, *args: str) -> Result:
    """`newsletter ARGS` with these settings; a user mistake is a message and exit code 1, never a traceback."""
    result = CliRunner().invoke(cli, list(args), obj=settings)
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def other_sending(sending: Sending, **overrides: object) -> Sending:
    """A second `Sending` on the same database, as another process (the CLI, another worker) would have."""
    return Sending(dataclasses.replace(sending.settings, **overrides))


def free_port() -> int:
    """A loopback port nothing listens on (bound once, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- Members -------------------------------------------------------------------------------------------


def member_row(email: str, **values: str) -> dict[str, str]:
    row = dict.fromkeys(MEMBER_COLUMNS, "")
    row.update(email=email, lists="newsletter", **values)
    return row


def write_members(path: Path, rows: list[dict[str, str]]) -> Path:
    """A members CSV as `subscribers import` reads it (any extra keys in the rows become columns)."""
    columns = list(MEMBER_COLUMNS) + sorted({key for row in rows for key in row} - set(MEMBER_COLUMNS))
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def numbered_members(path: Path, count: int, domains: tuple[str, ...] = ("example.org",)) -> Path:
    """`count` members on the newsletter list, member{i}@ one of `domains` in turn (interleaved)."""
    rows = [
        member_row(f"member{number:03d}@{domains[number % len(domains)]}", name=f"Member {number:03d}")
        for number in range(count)
    ]
    return write_members(path, rows)


# --- What the server received, and what the ledger says --------------------------------------------------


def recipients(messages: list[Received]) -> list[str]:
    """Every RCPT address of every accepted message, lower-cased, duplicates kept."""
    return [address.lower() for message in messages for address in message.rcpt_tos]


def assert_each_once(messages: list[Received], expected: set[str]) -> None:
    """The server got exactly one message for each expected address and none for anyone else."""
    got = Counter(recipients(messages))
    twice = sorted(address for address, count in got.items() if count > 1)
    assert not twice, f"received more than once: {twice}"
    expected = {address.lower() for address in expected}
    assert set(got) == expected, (
        f"missing: {sorted(expected - set(got))[:10]}, unexpected: {sorted(set(got) - expected)[:10]}"
    )


@dataclass(frozen=True)
class LedgerRow:
    email: str
    status: str
    attempts: int
    message_id: str
    last_reply: str | None
    lease_owner: str | None


def ledger(sending: Sending, campaign_id: int) -> dict[str, LedgerRow]:
    """The campaign's ledger rows by member address (lower case)."""
    with sending.store.database.session() as session:
        rows = session.execute(
            select(
                Subscriber.email,
                Delivery.status,
                Delivery.attempts,
                Delivery.message_id,
                Delivery.last_reply,
                Delivery.lease_owner,
            )
            .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
            .where(Delivery.campaign_id == campaign_id)
        ).all()
    return {
        email.lower(): LedgerRow(email, str(getattr(status, "value", status)), attempts, mid, reply, owner)
        for email, status, attempts, mid, reply, owner in rows
    }


def campaign_status(sending: Sending, campaign_id: int) -> str:
    with sending.store.database.session() as session:
        status = session.scalar(select(Campaign.status).where(Campaign.id == campaign_id))
    return CampaignStatus(status).value


def link_key_of(sending: Sending) -> Callable[[int], str | None]:
    """A member's link key by id, as `Tokens.read` asks for it."""

    def key_of(member_id: int) -> str | None:
        with sending.store.database.session() as session:
            return session.scalar(select(Subscriber.link_key).where(Subscriber.id == member_id))

    return key_of


def subscriber_id(sending: Sending, email: str) -> int:
    with sending.store.database.session() as session:
        found = session.scalar(select(Subscriber.id).where(Subscriber.email_key == email.lower()))
    assert found is not None, email
    return found


def member_emails(sending: Sending, where: object = None) -> set[str]:
    query = select(Subscriber.email)
    if where is not None:
        query = query.where(where)  # type: ignore[arg-type]
    with sending.store.database.session() as session:
        return {email.lower() for email in session.scalars(query)}


def audience_emails(sending: Sending, names: list[str]) -> set[str]:
    """Who a campaign to `names` would reach now, each segment counted by its own SQL (not the campaign's)."""
    store = sending.store
    found: set[str] = set()
    with store.session() as session:
        for name in names:
            ids = list(session.scalars(store.segments.members(name)))
            assert store.segments.count(session, name) == len(ids)
            found |= {
                email.lower()
                for email in session.scalars(select(Subscriber.email).where(Subscriber.id.in_(ids)))
            }
    return found


# --- Waiting and workers ---------------------------------------------------------------------------------


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    """Poll `predicate` until true; False once `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def work_until_finished(
    sending: Sending, campaign_id: int, timeout: float = 30.0, pause: float = 0.05, **options: float
) -> WorkerStats:
    """Run `work(once=True)` again and again (deferred rows come due) until the campaign is finished."""
    total = WorkerStats()
    deadline = time.monotonic() + timeout
    while True:
        stats = sending.work(once=True, **options)
        for name in ("sent", "deferred", "failed", "bounced", "skipped"):
            setattr(total, name, getattr(total, name) + getattr(stats, name))
        if campaign_status(sending, campaign_id) != CampaignStatus.SENDING.value:
            return total
        assert time.monotonic() < deadline, f"campaign {campaign_id} not finished after {timeout}s"
        time.sleep(pause)


class WorkerThread:
    """`sending.work(stop=...)` in a background thread, as `newsletter worker` runs it; stopped on exit."""

    def __init__(self, sending: Sending, **options: float) -> None:
        self.sending = sending
        self.options = options
        self.stop = threading.Event()
        self.stats: WorkerStats | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.stats = self.sending.work(stop=self.stop, **self.options)
        except BaseException as error:  # reported by the test thread
            self.error = error

    def __enter__(self) -> WorkerThread:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.join()

    def join(self, timeout: float = 30.0) -> WorkerStats:
        self.stop.set()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the worker did not stop within its timeout"
        if self.error is not None:
            raise self.error
        assert self.stats is not None
        return self.stats


# --- The CLI worker as a separate process -----------------------------------------------------------------


def worker_environment(settings: Settings) -> dict[str, str]:
    """The environment `newsletter worker` reads its settings from (NEWSLETTER_*), nothing else inherited."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("NEWSLETTER_")}
    env.update(
        NEWSLETTER_DATABASE_URL=settings.database_url,
        NEWSLETTER_SMTP_URL=settings.smtp_url,
        NEWSLETTER_ISSUES_DIR=str(settings.issues_dir),
        NEWSLETTER_THEME_DIR=str(settings.theme_dir),
        NEWSLETTER_VOCABULARY_DIR=str(settings.vocabulary_dir),
        NEWSLETTER_CONCURRENCY=str(settings.concurrency),
        NEWSLETTER_MAX_RATE=str(settings.max_rate),
        NEWSLETTER_DOMAIN_RATE=str(settings.domain_rate),
    )
    return env


def start_worker(settings: Settings, cwd: Path, *args: str) -> subprocess.Popen[bytes]:
    """`python -m newsletter worker ARGS` with these settings, its output in files under `cwd`."""
    cwd.mkdir(parents=True, exist_ok=True)
    number = len(list(cwd.glob("worker-*.out")))
    with (cwd / f"worker-{number}.out").open("wb") as out, (cwd / f"worker-{number}.err").open("wb") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "newsletter", "worker", *args],
            cwd=cwd,
            env=worker_environment(settings),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
        )


def worker_logs(cwd: Path) -> str:
    return "\n".join(
        f"--- {path.name}\n{path.read_text(errors='replace')}" for path in sorted(cwd.glob("worker-*.*"))
    )


def end_process(process: subprocess.Popen[bytes]) -> None:
    """Make sure a process this test started is gone (by its own PID only)."""
    if process.poll() is None:
        process.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)


# --- A relay that goes down and comes back ------------------------------------------------------------------


class SwitchableRelay:
    """A TCP proxy on a fixed loopback port in front of a real SMTP server, switched on and off as a relay
    goes down and comes back: while down nothing listens on the port (connections are refused) and every
    connection that was open is cut, as when a relay restarts or the network to it fails.

        with SwitchableRelay(server.port) as relay:   # down until `up()`
            settings = delivery_settings(database_url, relay.port)
            relay.up(); ...; relay.down(); ...; relay.up()
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self.lock = threading.Lock()
        self.listener: socket.socket | None = None
        self.accepting: threading.Thread | None = None
        self.open: set[socket.socket] = set()
        self.outages = 0

    def __enter__(self) -> SwitchableRelay:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.down()

    @property
    def is_up(self) -> bool:
        return self.listener is not None

    def up(self) -> None:
        """Listen on the port again (and keep doing so until `down`)."""
        if self.listener is not None:
            return
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.05)
        self.listener = listener
        self.accepting = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self.accepting.start()

    def down(self) -> None:
        """Stop listening and cut every open connection."""
        listener, self.listener = self.listener, None
        if listener is not None:
            self.outages += 1
            assert self.accepting is not None
            self.accepting.join(5)
            listener.close()
        with self.lock:
            cut, self.open = self.open, set()
        for sock in cut:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def outage(self, seconds: float) -> threading.Thread:
        """Go down now and come back `seconds` later (from a daemon thread, returned)."""
        self.down()
        thread = threading.Timer(seconds, self.up)
        thread.daemon = True
        thread.start()
        return thread

    def _accept(self, listener: socket.socket) -> None:
        while self.listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
            except OSError:
                client.close()
                continue
            client.settimeout(None)
            upstream.settimeout(None)
            with self.lock:
                if self.listener is not listener:  # went down meanwhile
                    client.close()
                    upstream.close()
                    return
                self.open |= {client, upstream}
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        for sock in (source, target):  # one side gone: the other goes too
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        with self.lock:
            self.open -= {source, target}
        source.close()  # each socket is the source of one pump: that pump closes it
