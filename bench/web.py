"""Web load check: concurrent sign-ups and one-click unsubscribes against the production server.

For each engine (SQLite by default; `--engines sqlite,postgresql` adds a throwaway PostgreSQL) it
creates a fresh database, imports `--unsubscribes` members, starts Postfix's `smtp-sink` as the relay
and `newsletter serve` (waitress, a child process on loopback, `--server-threads` threads), then from
`--clients` threads sends, interleaved in random order:

* `--subscribes` sign-up POSTs, each for a new address, with the form's CSRF token and cookie (every
  one sends a confirmation email through the relay before it answers);
* `--unsubscribes` RFC 8058 one-click POSTs (`List-Unsubscribe=One-Click`, no cookie), one per member.

Each client thread keeps a connection open and sends from its own loopback addresses (127.0.x.y),
moving to the next address before the per-client sign-up limit, as members behind many different
gateways would. Every answer must be 200, and afterwards the database must hold exactly one pending
member and one "subscribed" consent record per sign-up, one "unsubscribed" member and one one-click
record per unsubscribe, and the relay one message per sign-up: no error and no lost write.

The reference, measured in the same run with the same client, connections and concurrency, is the
same server answering `GET /health` (no database, no mail) the same number of times: the ratio of
the two rates is what to compare between runs and machines. It prints requests/s and p95 latency for
each and exits 0 (a benchmark, not a test); it exits 1 only if a check above fails.

    .venv/bin/python bench/web.py [--subscribes 300] [--unsubscribes 300] [--clients 8]
        [--server-threads 8] [--engines sqlite[,postgresql]] [--time-limit 120]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import random
import re
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

from sqlalchemy import func, select

from newsletter.audience.service import Audience
from newsletter.db.models import ConsentRecord, Status, Subscriber
from newsletter.settings import Settings
from newsletter.testing.processes import ServeProcess
from newsletter.testing.smtp import PostfixSmtpSink
from newsletter.tokens import Tokens
from newsletter.web.ratelimit import Limits

ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-web-secret-key-0123456789-abcdefghijklmnop"
CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')
PER_ADDRESS = Limits().per_client.hits - 2  # requests from one client address, safely under its limit


@dataclass
class Task:
    method: str
    path: str
    body: str = ""
    form: bool = False  # a sign-up: needs the CSRF cookie and token


@dataclass
class Run:
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def report(self, name: str) -> str:
        count = len(self.latencies)
        rate = count / self.seconds if self.seconds else 0.0
        p95 = statistics.quantiles(self.latencies, n=20)[18] * 1000 if count >= 20 else float("nan")
        median = statistics.median(self.latencies) * 1000 if count else float("nan")
        return (
            f"{name:<34} {count:>6} requests  {rate:>8.1f} req/s  median {median:6.1f} ms  p95 {p95:6.1f} ms"
        )

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0


class Client(threading.Thread):
    """One client thread: a kept-alive connection per loopback source address, a CSRF cookie and token."""

    def __init__(
        self, number: int, port: int, tasks: list[Task], run: Run, lock: threading.Lock, deadline: float
    ):
        super().__init__(daemon=True)
        self.number, self.port, self.tasks, self.run_ = number, port, tasks, run
        self.lock, self.deadline = lock, deadline
        self.addresses = self._addresses()
        self.connection: http.client.HTTPConnection | None = None
        self.sent_from_address = 0
        self.cookie = ""
        self.token = ""

    def _addresses(self) -> Iterator[str]:
        """127.N.x.y: each thread its own block of loopback addresses."""
        for third in range(256):
            for fourth in range(1, 255):
                yield f"127.{self.number + 1}.{third}.{fourth}"

    def _connect(self) -> http.client.HTTPConnection:
        if self.connection is None or self.sent_from_address >= PER_ADDRESS:
            if self.connection is not None:
                self.connection.close()
            self.connection = http.client.HTTPConnection(
                "127.0.0.1", self.port, timeout=60, source_address=(next(self.addresses), 0)
            )
            self.sent_from_address = 0
        return self.connection

    def request(self, method: str, path: str, body: str = "", headers: dict[str, str] | None = None):
        connection = self._connect()
        self.sent_from_address += 1
        connection.request(method, path, body=body or None, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.getheader("Set-Cookie") or "", response.read()

    def run(self) -> None:
        _, cookie, page = self.request("GET", "/subscribe")
        self.cookie = cookie.split(";")[0]
        self.token = CSRF_INPUT.search(page.decode()).group(1)
        self.sent_from_address = PER_ADDRESS  # the form's GET does not count; start timed work afresh
        for task in self.tasks:
            if time.monotonic() > self.deadline:
                with self.lock:
                    self.run_.failures.append("time limit reached")
                return
            headers = {}
            body = task.body
            if task.method == "POST":
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            if task.form:
                headers["Cookie"] = self.cookie
                body = f"{body}&{urlencode({'csrf_token': self.token})}"
            started = time.perf_counter()
            try:
                status, _, _ = self.request(task.method, task.path, body, headers)
            except OSError as error:
                self.connection = None
                with self.lock:
                    self.run_.failures.append(f"{task.method} {task.path[:40]}: {error}")
                continue
            elapsed = time.perf_counter() - started
            with self.lock:
                self.run_.latencies.append(elapsed)
                if status != 200:
                    self.run_.failures.append(f"{task.method} {task.path[:40]}: HTTP {status}")
        if self.connection is not None:
            self.connection.close()


def drive(port: int, tasks: list[Task], clients: int, time_limit: float) -> Run:
    """Share `tasks` among `clients` threads and time them from the first request to the last answer."""
    run, lock = Run(), threading.Lock()
    deadline = time.monotonic() + time_limit
    threads = [Client(n, port, tasks[n::clients], run, lock, deadline) for n in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=time_limit + 30)
    run.seconds = time.perf_counter() - started
    return run


def members_csv(path: Path, count: int) -> Path:
    lines = ["email,name,lists"] + [
        f"leaving{n:05d}@example.org,Leaving {n},newsletter" for n in range(count)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def check(audience: Audience, subscribes: int, unsubscribes: int, sink: PostfixSmtpSink) -> list[str]:
    """What the database and the relay must hold afterwards; each difference is a lost or extra write."""
    problems = []
    with audience.store.database.session() as session:
        pending = session.scalar(
            select(func.count())
            .select_from(Subscriber)
            .where(Subscriber.email.like("joining%"), Subscriber.status == Status.PENDING)
        )
        asked = session.scalar(
            select(func.count()).select_from(ConsentRecord).where(ConsentRecord.action == "subscribed")
        )
        left = session.scalar(
            select(func.count())
            .select_from(Subscriber)
            .where(Subscriber.email.like("leaving%"), Subscriber.status == Status.UNSUBSCRIBED)
        )
        one_click = session.scalar(
            select(func.count()).select_from(ConsentRecord).where(ConsentRecord.source == "one-click")
        )
    for name, got, expected in (
        ("pending members", pending, subscribes),
        ("'subscribed' consent records", asked, subscribes),
        ("unsubscribed members", left, unsubscribes),
        ("one-click consent records", one_click, unsubscribes),
    ):
        if got != expected:
            problems.append(f"{name}: {got}, expected {expected}")
    if not sink.wait_for(subscribes, timeout=10) or sink.count_received() != subscribes:
        problems.append(f"confirmation emails at the relay: {sink.count_received()}, expected {subscribes}")
    return problems


@contextlib.contextmanager
def database(engine: str, directory: Path) -> Iterator[str]:
    if engine == "sqlite":
        yield f"sqlite:///{directory / 'newsletter.sqlite3'}"
        return
    from newsletter.testing.postgres import TemporaryPostgres

    with TemporaryPostgres() as server:
        yield server.create_database("bench_web")


def bench(engine: str, args: argparse.Namespace) -> bool:
    with (
        tempfile.TemporaryDirectory(prefix="bench-web-") as folder,
        database(engine, Path(folder)) as url,
        PostfixSmtpSink() as sink,
    ):
        settings = Settings(
            database_url=url,
            smtp_url=f"smtp://127.0.0.1:{sink.port}",
            secret_key=SECRET,
            base_url="https://news.example.test",
            issues_dir=ROOT / "issues",
            theme_dir=ROOT / "templates",
            vocabulary_dir=ROOT / "subscribers",
        )
        audience = Audience.open(settings)
        audience.upgrade()
        audience.import_csv(members_csv(Path(folder) / "leaving.csv", args.unsubscribes))
        with audience.store.database.session() as session:
            leaving = session.execute(
                select(Subscriber.id, Subscriber.link_key).where(Subscriber.email.like("leaving%"))
            ).all()
        tokens = Tokens(SECRET)
        tasks = [
            Task(
                "POST",
                "/subscribe",
                urlencode({"email": f"joining{n:05d}@example.org", "lists": "newsletter", "consent": "yes"}),
                form=True,
            )
            for n in range(args.subscribes)
        ] + [
            Task("POST", f"/unsubscribe/{tokens.make('unsubscribe', i, key)}", "List-Unsubscribe=One-Click")
            for i, key in leaving
        ]
        random.Random(5).shuffle(tasks)
        reference_tasks = [Task("GET", "/health") for _ in tasks]
        with ServeProcess(settings, "--threads", str(args.server_threads)) as server:
            drive(server.port, [Task("GET", "/health")] * (args.clients * 5), args.clients, 30)  # warm up
            reference = drive(server.port, reference_tasks, args.clients, args.time_limit)
            work = drive(server.port, tasks, args.clients, args.time_limit)
            reference_after = drive(server.port, reference_tasks, args.clients, args.time_limit)
            server_log = server.log()
        problems = (
            work.failures[:10]
            + reference.failures[:3]
            + check(audience, args.subscribes, args.unsubscribes, sink)
        )
        audience.close()
    reference.latencies += reference_after.latencies
    reference.seconds += reference_after.seconds
    print(
        f"\n{engine}: {args.subscribes} sign-ups + {args.unsubscribes} one-click unsubscribes, "
        f"{args.clients} client threads, waitress with {args.server_threads} threads"
    )
    print(reference.report("reference: GET /health (before+after)"))
    print(work.report("sign-up and one-click POSTs"))
    print(
        f"{'ratio to the reference rate':<34} {work.rate / reference.rate:.3f}x "
        f"(p95 {statistics.quantiles(work.latencies, n=20)[18] / statistics.quantiles(reference.latencies, n=20)[18]:.1f}x the reference's)"
    )
    if "Traceback" in server_log:
        problems.append("the server logged a traceback")
    for problem in problems:
        print(f"  PROBLEM: {problem}")
    print("  checks: " + ("no error, no lost write" if not problems else f"{len(problems)} problems"))
    return not problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribes", type=int, default=300)
    parser.add_argument("--unsubscribes", type=int, default=300)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--server-threads", type=int, default=8)
    parser.add_argument("--engines", default="sqlite")
    parser.add_argument(
        "--time-limit", type=float, default=120.0, help="Seconds each phase may take at most."
    )
    args = parser.parse_args()
    results = [bench(engine.strip(), args) for engine in args.engines.split(",")]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
