"""Real SMTP servers on loopback for tests and benchmarks, like Mailman's SMTP test layer.

Delivery code is only trustworthy when it has talked to a real SMTP server over a real socket, including
servers that misbehave the way relays do in production. Three tools, all bound to 127.0.0.1 on a free port:

* `RecordingSMTPServer` — aiosmtpd in a background thread that records every accepted message in memory and
  can be *scripted* to answer like a troubled relay: 4xx/5xx at RCPT or at the end of DATA (the first N
  times, or always), ``421`` followed by a closed connection, a connection dropped after the data arrived
  but before any reply, and a per-message delay.

      with RecordingSMTPServer() as server:
          server.reply_at_rcpt("greylisted@example.org", "451 4.7.1 Greylisted, try later", times=2)
          server.reply_at_data("gone@example.org", "550 5.1.1 No such user")
          server.reply_at_rcpt(ANY_ADDRESS, "421 4.7.0 Slow down", times=1)  # 421 also closes the connection
          server.drop_during_data(lambda address: address.endswith("@flaky.example"), times=1)
          server.delay = 0.05  # seconds before answering each message's DATA
          ...  # deliver to ("127.0.0.1", server.port)
          assert server.wait_for(3, timeout=5)
          server.attempts("greylisted@example.org")  # -> 3 RCPT attempts

* `PostfixSmtpSink` — Postfix's own ``smtp-sink`` test server as a subprocess: very fast, the reference peer
  for benchmarks, with its built-in soft/hard reject and disconnect switches, and optional per-message dumps.

* `smtp_source` — Postfix's ``smtp-source`` load generator, timing how fast a C client pushes N messages into
  a server: the baseline our own delivery code is compared against.

A missing Postfix binary raises RuntimeError naming Debian's ``postfix`` package; nothing is skipped silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import errno
import os
import pwd
import re
import shutil
import signal
import ssl
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Literal, cast

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from newsletter.running import Running
from newsletter.testing.ports import LOOPBACK, free_port, listening

__all__ = [
    "ANY_ADDRESS",
    "SMTP_SINK",
    "SMTP_SOURCE",
    "PostfixSmtpSink",
    "Received",
    "RecordingSMTPServer",
    "Rule",
    "SinkCounters",
    "smtp_source",
]


SMTP_SINK = Path("/usr/sbin/smtp-sink")
SMTP_SOURCE = Path("/usr/sbin/smtp-source")
_GREETING_NAME = "newsletter-test-smtp"  # explicit: aiosmtpd's default asks DNS for the machine's FQDN
_START_ATTEMPTS = 3  # a free port we picked can be taken by someone else before the server binds it


def _require_binary(path: Path) -> Path:
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise RuntimeError(
            f"{path} was not found. It comes with Debian's `postfix` package: "
            "`apt-get install postfix` (scripts/test installs it non-interactively)."
        )
    return path


# ---------------------------------------------------------------------------------------------------------
# RecordingSMTPServer
# ---------------------------------------------------------------------------------------------------------


def ANY_ADDRESS(address: str) -> bool:
    """Rule matcher that matches every recipient."""
    return True


Matcher = str | Callable[[str], bool]
Stage = Literal["rcpt", "data"]
_REPLY = re.compile(r"^([2-5])\d\d(?: .*)?$")


@dataclass(frozen=True)
class Received:
    """One message the server accepted (answered 2xx at the end of DATA)."""

    envelope_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    received_at: float  # time.time(): wall clock, for logs and comparing with timestamps in the message
    received_monotonic: float  # time.monotonic(): for measuring rates and gaps between messages
    connection_id: int  # 1, 2, ... in order of connections; equal ids = messages sent over one connection

    def message(self) -> EmailMessage:
        """The data parsed with the modern email policy, for asserting on headers and body."""
        return cast(EmailMessage, email.message_from_bytes(self.data, policy=email.policy.default))


@dataclass
class Rule:
    """One scripted answer: at `stage`, for a recipient matching `match`, reply `reply` (None = hang up).

    `match` is an address (compared case-insensitively) or a predicate on the address. At ``data`` stage the
    rule applies when *any* recipient accepted for the transaction matches (SMTP has one DATA reply).
    `times` limits how often the rule fires (None = always); `used` counts how often it has. A reply starting
    with ``421`` is sent and then the connection is closed, as a real server does. Rules are tried in the
    order they were added; the first one that matches and is not used up wins.
    """

    match: Matcher
    stage: Stage
    reply: str | None
    times: int | None = None
    used: int = 0

    def __post_init__(self) -> None:
        if self.stage not in ("rcpt", "data"):
            raise ValueError(f"stage must be 'rcpt' or 'data', not {self.stage!r}")
        if self.reply is not None and not _REPLY.match(self.reply):
            raise ValueError(f"reply must look like '451 4.3.0 Try again later', not {self.reply!r}")
        if self.times is not None and self.times < 1:
            raise ValueError("times must be at least 1 (or None for always)")

    @property
    def used_up(self) -> bool:
        return self.times is not None and self.used >= self.times

    def matches(self, address: str) -> bool:
        if isinstance(self.match, str):
            return address.casefold() == self.match.casefold()
        return bool(self.match(address))

    @property
    def closes_connection(self) -> bool:
        return self.reply is None or self.reply.startswith("421")


class _RecordingHandler:
    """aiosmtpd hooks; run on the server's event-loop thread, sharing state with the test thread via a lock."""

    def __init__(self, owner: RecordingSMTPServer) -> None:
        self.owner = owner

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        owner = self.owner
        owner._connection_id(session)
        with owner._lock:
            owner._attempts[address.casefold()] += 1
            rule = owner._take_rule("rcpt", [address])
        reply = "250 2.1.5 OK" if rule is None else rule.reply
        if reply is not None and reply.startswith("2"):
            envelope.rcpt_tos.append(address)
            envelope.rcpt_options.extend(rcpt_options)
        if rule is not None and rule.closes_connection:
            await _hang_up(server, reply)
        assert reply is not None
        return reply

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        owner = self.owner
        if owner.delay > 0:
            await asyncio.sleep(owner.delay)
        with owner._lock:
            rule = owner._take_rule("data", envelope.rcpt_tos)
        reply = "250 2.0.0 OK: recorded" if rule is None else rule.reply
        if reply is not None and reply.startswith("2"):
            owner._record(
                Received(
                    envelope_from=envelope.mail_from or "",
                    rcpt_tos=tuple(envelope.rcpt_tos),
                    data=envelope.original_content or b"",
                    received_at=time.time(),
                    received_monotonic=time.monotonic(),
                    connection_id=owner._connection_id(session),
                )
            )
        if rule is not None and rule.closes_connection:
            await _hang_up(server, reply)
        assert reply is not None
        return reply


async def _hang_up(server: SMTP, reply: str | None) -> None:
    """Send `reply` (if any), close the connection, and never return.

    Closing the transport makes aiosmtpd cancel the session's task — the same path as a client hanging up —
    so nothing else is written to the socket.
    """
    if reply is not None:
        await server.push(reply)
    if server.transport is not None:
        server.transport.close()
    await asyncio.Event().wait()  # cancelled by connection_lost


class RecordingSMTPServer(Running):
    """aiosmtpd on 127.0.0.1:free-port that records accepted messages and can be scripted to misbehave.

    Scripting (each returns the `Rule`, whose ``used`` counts how often it fired):

    * ``reply_at_rcpt(match, "451 4.3.0 Try later", times=2)`` — answer RCPT TO with this reply.
    * ``reply_at_data(match, "550 5.1.1 No such user", times=None)`` — read the whole message, then answer
      the final ``.`` with this reply instead of 250.
    * ``drop_during_data(match, times=1)`` — read the whole message, then close the connection without replying.
    * ``script(Rule(...))`` — the general form; ``clear_script()`` removes all rules.
    * ``delay`` — seconds to wait before answering every message's DATA (default 0).

    Any ``421`` reply closes the connection after being sent. Only messages answered 2xx are recorded.
    ``attempts(address)`` counts RCPT TO commands for an address, accepted or not.
    """

    def __init__(
        self,
        *,
        delay: float = 0.0,
        data_size_limit: int = 32 * 1024 * 1024,
        tls: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
    ) -> None:
        """`tls` (a server context holding a certificate) makes the server require STARTTLS, or speak
        TLS from the first byte with `implicit_tls` (an `smtps://` relay)."""
        self.tls = tls
        self.implicit_tls = implicit_tls
        self.host = LOOPBACK
        self.port = 0
        self.delay = delay
        self.data_size_limit = data_size_limit
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._messages: list[Received] = []
        self._attempts: Counter[str] = Counter()
        self._rules: list[Rule] = []
        self._next_connection = 0
        self._controller: Controller | None = None

    # -- lifecycle -----------------------------------------------------------------------------------------

    def start(self) -> None:
        """Listen on a free loopback port (``self.port``), retrying if another process grabs it first."""
        if self._controller is not None:
            raise RuntimeError("RecordingSMTPServer is already running")
        for attempt in range(_START_ATTEMPTS):
            port = free_port()
            controller = Controller(
                _RecordingHandler(self),
                hostname=self.host,
                port=port,
                server_hostname=_GREETING_NAME,
                data_size_limit=self.data_size_limit,
                **self._tls_options(),
            )
            try:
                controller.start()
            except OSError as error:
                with contextlib.suppress(Exception):
                    controller.stop(no_assert=True)
                if error.errno != errno.EADDRINUSE or attempt == _START_ATTEMPTS - 1:
                    raise
                continue
            self._controller = controller
            self.port = port
            return

    def _tls_options(self) -> dict[str, object]:
        if self.tls is None:
            return {}
        if self.implicit_tls:
            return {"ssl_context": self.tls}
        return {"tls_context": self.tls, "require_starttls": True}

    def stop(self) -> None:
        """Stop listening; recorded messages stay readable. Safe to call twice."""
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    # -- scripting -----------------------------------------------------------------------------------------

    def script(self, rule: Rule) -> Rule:
        """Add a rule (after the existing ones) and return it."""
        with self._lock:
            self._rules.append(rule)
        return rule

    def reply_at_rcpt(self, match: Matcher, reply: str, *, times: int | None = None) -> Rule:
        """Answer RCPT TO for matching recipients with `reply` (e.g. "451 4.3.0 Try later"), `times` times."""
        return self.script(Rule(match, "rcpt", reply, times))

    def reply_at_data(self, match: Matcher, reply: str, *, times: int | None = None) -> Rule:
        """Answer the end of DATA with `reply` when a matching recipient is in the transaction."""
        return self.script(Rule(match, "data", reply, times))

    def drop_during_data(self, match: Matcher, *, times: int | None = None) -> Rule:
        """Receive the whole message, then close the connection without replying (a crash or network cut)."""
        return self.script(Rule(match, "data", None, times))

    def clear_script(self) -> None:
        """Remove every rule: from now on everything is accepted."""
        with self._lock:
            self._rules.clear()

    def _take_rule(self, stage: Stage, addresses: Iterable[str]) -> Rule | None:
        """First live rule for this stage matching any address, marked as used once. Caller holds the lock."""
        addresses = list(addresses)
        for rule in self._rules:
            if rule.stage == stage and not rule.used_up and any(rule.matches(a) for a in addresses):
                rule.used += 1
                return rule
        return None

    # -- results -------------------------------------------------------------------------------------------

    @property
    def messages(self) -> list[Received]:
        """A snapshot of the accepted messages, in arrival order."""
        with self._lock:
            return list(self._messages)

    def attempts(self, address: str) -> int:
        """How many RCPT TO commands named `address` (case-insensitive), whatever the answer was."""
        with self._lock:
            return self._attempts[address.casefold()]

    def wait_for(self, count: int, timeout: float = 5.0) -> bool:
        """Block until at least `count` messages were accepted; False if `timeout` seconds pass first."""
        with self._arrived:
            return self._arrived.wait_for(lambda: len(self._messages) >= count, timeout)

    def reset(self) -> None:
        """Forget messages, attempts and rules, so one server can serve several scenarios."""
        with self._lock:
            self._messages.clear()
            self._attempts.clear()
            self._rules.clear()

    def _record(self, received: Received) -> None:
        with self._arrived:
            self._messages.append(received)
            self._arrived.notify_all()

    def _connection_id(self, session: Session) -> int:
        """Number connections lazily (on their first RCPT), so aiosmtpd's own start-up probe gets none."""
        current = getattr(session, "newsletter_connection_id", None)
        if current is None:
            with self._lock:
                self._next_connection += 1
                current = self._next_connection
            session.newsletter_connection_id = current  # type: ignore[attr-defined]
        return int(current)


# ---------------------------------------------------------------------------------------------------------
# Postfix smtp-sink / smtp-source
# ---------------------------------------------------------------------------------------------------------

# The commands smtp-sink knows; anything else makes it exit with "unknown command".
_SINK_COMMANDS = frozenset(
    {"connect", "helo", "ehlo", "lhlo", "xclient", "xforward", "auth", "mail", "rcpt", "data", ".", "rset"}
    | {"noop", "vrfy", "quit"}
)
_COUNTERS = re.compile(rb"sess=(\d+) quit=(\d+) mesg=(\d+)")


@dataclass(frozen=True)
class SinkCounters:
    """smtp-sink's own counters (-c): sessions ended, QUIT commands, messages whose final "." arrived."""

    sessions: int = 0
    quits: int = 0
    messages: int = 0


def _commands(option: str, commands: Iterable[str]) -> list[str]:
    names = [command.strip().lower() for command in commands]
    unknown = sorted(set(names) - _SINK_COMMANDS)
    if unknown:
        raise ValueError(f"{option}: smtp-sink knows no command {unknown}; use {sorted(_SINK_COMMANDS)}")
    return names


@dataclass
class _SinkOptions:
    soft_reject: list[str] = field(default_factory=list)
    hard_reject: list[str] = field(default_factory=list)
    disconnect: list[str] = field(default_factory=list)
    close_with_421: list[str] = field(default_factory=list)


class PostfixSmtpSink(Running):
    """Postfix's ``smtp-sink`` on 127.0.0.1:free-port, for the duration of a ``with`` block.

    Arguments map onto smtp-sink flags (commands are names like "mail", "rcpt", "data", "." — the final dot —
    "rset", "quit", "connect"):

    * ``soft_reject`` → ``-r``: answer those commands with `soft_reply` (default "450 4.3.0 Error: command failed").
    * ``hard_reject`` → ``-f``: answer with `hard_reply` (default "500 5.3.0 Error: command failed").
    * ``disconnect`` → ``-q``: close the connection without replying after receiving the command.
    * ``close_with_421`` → ``-Q``: reply "421" and close the connection.
    * ``data_delay`` → ``-w``: wait whole seconds before answering DATA.
    * ``pipelining=False`` → ``-p``: do not offer ESMTP PIPELINING (RFC 2920), so clients send one command
      at a time.
    * ``dump=True`` → ``-d DIR/%Y%m%d%H%M%S.``: one file per message, readable through `messages()`.

    Always passes ``-c`` (counters, read by `counters()` / `count_received()`) and, when run as root, ``-u``
    (smtp-sink refuses to run as root without it) with an unprivileged user, default "nobody".
    smtp-sink counts and dumps a message as soon as its final "." arrives, before it answers it, so a message
    rejected or dropped *at* "." still shows up in both; rejects at "data" or earlier leave no trace.
    """

    def __init__(
        self,
        *,
        soft_reject: Iterable[str] = (),
        hard_reject: Iterable[str] = (),
        disconnect: Iterable[str] = (),
        close_with_421: Iterable[str] = (),
        soft_reply: str | None = None,
        hard_reply: str | None = None,
        data_delay: int = 0,
        pipelining: bool = True,
        dump: bool = False,
        backlog: int = 256,
        max_connections: int | None = None,
        user: str = "nobody",
        binary: Path | str = SMTP_SINK,
        startup_timeout: float = 10.0,
    ) -> None:
        self.options = _SinkOptions(
            soft_reject=_commands("soft_reject", soft_reject),
            hard_reject=_commands("hard_reject", hard_reject),
            disconnect=_commands("disconnect", disconnect),
            close_with_421=_commands("close_with_421", close_with_421),
        )
        self.soft_reply = soft_reply
        self.hard_reply = hard_reply
        self.data_delay = data_delay
        self.pipelining = pipelining
        self.dump = dump
        self.backlog = backlog
        self.max_connections = max_connections
        self.user = user
        self.binary = Path(binary)
        self.startup_timeout = startup_timeout
        self.host = LOOPBACK
        self.port = 0
        self.directory: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    # -- paths ---------------------------------------------------------------------------------------------

    @property
    def dump_dir(self) -> Path:
        """Where smtp-sink writes one file per message (only with ``dump=True``)."""
        if not self.dump:
            raise RuntimeError("PostfixSmtpSink was created without dump=True, so it keeps no messages")
        return self._require_directory() / "dump"

    @property
    def _stdout_path(self) -> Path:
        return self._require_directory() / "smtp-sink.out"

    @property
    def _stderr_path(self) -> Path:
        return self._require_directory() / "smtp-sink.err"

    def _require_directory(self) -> Path:
        if self.directory is None:
            raise RuntimeError("PostfixSmtpSink is not running; use it as a context manager")
        return self.directory

    # -- lifecycle -----------------------------------------------------------------------------------------

    def argv(self, port: int) -> list[str]:
        """The smtp-sink command line for `port` (public so failures and reports can show it)."""
        argv = [str(self.binary), "-c"]
        if os.geteuid() == 0:
            argv += ["-u", self.user]
        for flag, commands in (
            ("-r", self.options.soft_reject),
            ("-f", self.options.hard_reject),
            ("-q", self.options.disconnect),
            ("-Q", self.options.close_with_421),
        ):
            if commands:
                argv += [flag, ",".join(commands)]
        if self.soft_reply is not None:
            argv += ["-b", self.soft_reply]
        if self.hard_reply is not None:
            argv += ["-B", self.hard_reply]
        if self.data_delay > 0:
            argv += ["-w", str(int(self.data_delay))]
        if not self.pipelining:
            argv.append("-p")
        if self.max_connections is not None:
            argv += ["-m", str(self.max_connections)]
        if self.dump:
            # strftime expands the template, so a literal % in our path must be doubled.
            argv += ["-d", str(self.dump_dir).replace("%", "%%") + "/%Y%m%d%H%M%S."]
        argv += [f"{self.host}:{port}", str(self.backlog)]
        return argv

    def start(self) -> None:
        """Run smtp-sink on a free loopback port (``self.port``) and return once it listens."""
        if self._process is not None:
            raise RuntimeError("PostfixSmtpSink is already running")
        _require_binary(self.binary)
        self.directory = Path(tempfile.mkdtemp(prefix="newsletter-smtp-sink-"))
        try:
            self._prepare_dump_dir()
            self._start()
        except BaseException:
            self.stop()
            raise

    def _prepare_dump_dir(self) -> None:
        """As root smtp-sink drops to `user` before writing dumps, so that user must own the dump directory."""
        if not self.dump:
            return
        self.dump_dir.mkdir()
        if os.geteuid() != 0:
            return
        try:
            account = pwd.getpwnam(self.user)
        except KeyError:
            raise RuntimeError(
                f"Running as root, but there is no user {self.user!r} for smtp-sink -u"
            ) from None
        os.chmod(self._require_directory(), 0o711)  # let the user reach dump/ inside our private directory
        os.chown(self.dump_dir, account.pw_uid, account.pw_gid)

    def _start(self) -> None:
        failure = ""
        for _ in range(_START_ATTEMPTS):
            port = free_port()
            argv = self.argv(port)
            with self._stdout_path.open("wb") as out, self._stderr_path.open("wb") as err:
                # Files, not pipes: nobody has to drain them while smtp-sink runs.
                self._process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
            if self._wait_untillistening(port):
                self.port = port
                return
            failure = self._stderr_path.read_text(errors="replace").strip()
            self._terminate()
            if "in use" not in failure:
                break  # not a port race: retrying will not help
        raise RuntimeError(f"smtp-sink did not start: {failure or 'no error output'}\ncommand: {argv}")

    def _wait_untillistening(self, port: int) -> bool:
        """Poll until the port listens, without connecting (a probe connection would count as a session)."""
        assert self._process is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            if listening(self.host, port):
                return True
            time.sleep(0.005)
        return False

    def _terminate(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def stop(self) -> None:
        """Stop smtp-sink and delete its directory (dumps included). Safe to call twice."""
        try:
            self._terminate()
        finally:
            if self.directory is not None:
                shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None
            self.port = 0

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log(self) -> str:
        """smtp-sink's stderr so far: warnings such as "lost connection" and fatal errors."""
        return self._stderr_path.read_text(errors="replace")

    # -- results -------------------------------------------------------------------------------------------

    def counters(self) -> SinkCounters:
        """The latest counters smtp-sink printed. Messages are counted before "." is answered; sessions only
        once smtp-sink has noticed the disconnect, so they may lag a client's QUIT by a moment."""
        found = _COUNTERS.findall(self._stdout_path.read_bytes())
        if not found:
            return SinkCounters()
        sessions, quits, messages = (int(value) for value in found[-1])
        return SinkCounters(sessions=sessions, quits=quits, messages=messages)

    def count_received(self) -> int:
        """Messages whose final "." smtp-sink has read (accepted, or rejected/dropped only at ".")."""
        return self.counters().messages

    def wait_for(self, count: int, timeout: float = 5.0) -> bool:
        """Block until smtp-sink has counted `count` messages; False if `timeout` seconds pass first."""
        deadline = time.monotonic() + timeout
        while self.count_received() < count:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def messages(self) -> list[bytes]:
        """Each dumped message (dump=True): smtp-sink's X-Client-Addr, X-Helo-Args, X-Mail-Args, X-Rcpt-Args
        (one per RCPT) and Received headers, then the message with LF line ends, then one empty line.

        Sorted by file time, which the kernel keeps only to a few milliseconds, and smtp-sink names files by
        the second plus a random number: messages finished close together come in no particular order, so
        find them by content. A file appears at MAIL FROM and is complete once "." was read; smtp-sink
        deletes the files of aborted transactions.
        """
        files = [path for path in self.dump_dir.iterdir() if path.is_file()]
        files.sort(key=lambda path: (path.stat().st_mtime_ns, path.name))
        return [path.read_bytes() for path in files]


def smtp_source(
    host: str,
    port: int,
    messages: int,
    size: int = 1000,
    connections: int = 1,
    sender: str = "sender@example.test",
    recipient: str = "recipient@example.test",
    *,
    reuse_connections: bool = True,
    timeout: float = 600.0,
    binary: Path | str = SMTP_SOURCE,
) -> float:
    """Send `messages` messages of `size` body bytes over `connections` parallel sessions with Postfix's
    ``smtp-source``; return the elapsed wall-clock seconds (process start-up included, a few ms).

    This is the C reference a delivery benchmark compares against. With `reuse_connections` (``-d``) each
    session sends message after message over one connection, as our delivery does; without it every message
    gets its own connection. smtp-source stops at the first unexpected reply, which raises RuntimeError here.
    """
    if messages < 1 or connections < 1 or size < 0:
        raise ValueError("messages and connections must be at least 1, size at least 0")
    executable = _require_binary(Path(binary))
    argv = [str(executable), "-s", str(connections), "-m", str(messages), "-l", str(size)]
    argv += ["-f", sender, "-t", recipient, "-M", "localhost"]
    if reuse_connections:
        argv.append("-d")
    argv.append(f"{host}:{port}")
    started = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(
            f"smtp-source failed (exit {result.returncode}): {(result.stderr or result.stdout).strip()}\n"
            f"command: {argv}"
        )
    return elapsed
