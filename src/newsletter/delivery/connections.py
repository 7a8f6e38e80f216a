"""The worker's SMTP connections, driven from its own loop: no sending threads.

Sending threads cost more than they save here. Each message meant a queue hand-off and three or four
blocking socket calls, each giving the interpreter lock up and waiting to get it back from the loop,
which holds it while it builds the next messages: measured against smtp-sink, two-thirds of the
sending threads' CPU went on that, and the connections sat idle meanwhile. So the loop drives the
connections itself: each socket is non-blocking, commands and messages are written as far as the
socket takes them, replies are read when they come (`selectors`), and `reply` runs that until a
message's result is known. A relay that offers PIPELINING (RFC 2920) gets MAIL, RCPT and DATA in one
write, and the next message's MAIL, RCPT and DATA straight after this one's data, without waiting for
its reply (RFC 2920 allows message content first in a group): one round trip a message, not two, so a
connection does not stand idle while the loop is busy building messages. One that does not gets them
one at a time.

What a reply means, and what is the relay's trouble rather than the recipient's, are the transport's
rules (`transport.classify`, `transport.envelope`), the same for test sends and the pages' emails; so
is opening a connection (greeting, EHLO, STARTTLS, login: `SmtpTransport.open`, blocking, once per
connection) and the rates (`RateLimiter.reserve`: a message waits for its moment without holding up
the others). A pooled connection the relay closed before answering anything of a transaction is
replaced, once, without a word, as `SmtpTransport.send_wire` does.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import selectors
import smtplib
import socket
import ssl
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from newsletter.delivery.transport import (
    ACCEPTED,
    TIMEOUT,
    Outcome,
    Reply,
    SmtpTransport,
    classify,
    envelope,
    unavailable,
)

Row = TypeVar("Row")
READ_SIZE = 65536


@dataclass(eq=False)
class _Job(Generic[Row]):
    row: Row
    sender: str
    recipient: str
    wire: bytes
    key: int  # the row's place in `in_flight`
    retried: bool = False  # already moved to a fresh connection once


@dataclass(eq=False)
class _Connection(Generic[Row]):
    """One SMTP session and where its current transaction stands."""

    smtp: smtplib.SMTP
    pipelining: bool
    smtputf8: bool
    job: _Job[Row] | None = None
    following: _Job[Row] | None = None  # pipelined after `job`'s data: its envelope is on its way
    steps: deque[tuple[bytes, tuple[int, ...]]] = field(
        default_factory=deque
    )  # still to write, non-pipelined
    expected: int = 0  # replies still awaited for what was written
    replies: list[tuple[int, bytes]] = field(default_factory=list)  # this stage's replies
    stage: str = "idle"  # idle, envelope, message, end (a lone '.'), reset
    refused: tuple[int, bytes] | None = None
    heard: bool = False  # the relay answered something of this job's transaction
    used: bool = False  # a transaction finished on it: a pooled connection
    out: memoryview = field(default_factory=lambda: memoryview(b""))
    inbox: bytearray = field(default_factory=bytearray)
    lines: list[bytes] = field(default_factory=list)  # the reply being read, line by line
    deadline: float = 0.0
    events: int = selectors.EVENT_READ  # what the selector watches the socket for

    @property
    def socket(self) -> socket.socket:
        """The session's socket (an `ssl.SSLSocket` with TLS)."""
        return self.smtp.sock


class Connections(Generic[Row]):
    """Up to `count` connections to the relay, each carrying one message at a time.

    `submit` hands a message over; `reply` returns the next result (its row and the relay's reply),
    waiting at most `timeout` seconds; `in_flight` holds every row handed over and not yet answered;
    `take_back` withdraws those not yet on a connection.
    """

    def __init__(self, transport: SmtpTransport, count: int) -> None:
        self.transport = transport
        self.count = max(1, count)
        self.selector = selectors.DefaultSelector()
        self.connections: list[_Connection[Row]] = []
        self.in_flight: dict[int, Row] = {}
        self.waiting: list[tuple[float, int, _Job[Row]]] = []  # (moment it may leave, order, job)
        self.order = itertools.count()
        self.done: deque[tuple[Row, Reply]] = deque()

    # --- what the loop calls -------------------------------------------------------------------------

    def submit(self, key: int, row: Row, sender: str, recipient: str, wire: bytes) -> None:
        """Send `wire` (SMTP DATA form) from `sender` to `recipient`; `key` names the row in `in_flight`."""
        self.in_flight[key] = row
        moment = self.transport.limiter.reserve(recipient.rpartition("@")[2].lower())
        heapq.heappush(self.waiting, (moment, next(self.order), _Job(row, sender, recipient, wire, key)))
        self._start_waiting()

    def reply(self, timeout: float | None) -> tuple[Row, Reply] | None:
        """The next result, waiting at most `timeout` seconds (None: as long as it takes); None if none
        came in that time, or nothing is in flight."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self._start_waiting()
            if self.done:
                return self.done.popleft()
            if not self.in_flight:
                return None
            self._poll(self._next_event(time.monotonic(), deadline))
            self._expire(time.monotonic())
            if not self.done and deadline is not None and time.monotonic() >= deadline:
                self._start_waiting()
                return self.done.popleft() if self.done else None

    def take_back(self) -> list[Row]:
        """The rows still waiting for a connection (or for their moment), withdrawn unsent."""
        taken = [job.row for _, _, job in sorted(self.waiting)]
        for _, _, job in self.waiting:
            del self.in_flight[job.key]
        self.waiting = []
        return taken

    def close(self) -> None:
        """Say QUIT on every connection that is not in the middle of something; close them all."""
        for connection in list(self.connections):
            if connection.stage == "idle" and not connection.out:
                with contextlib.suppress(OSError, smtplib.SMTPException, ValueError):
                    connection.socket.setblocking(True)
                    connection.socket.settimeout(TIMEOUT)
                    connection.smtp.quit()
            self._drop(connection)
        self.selector.close()

    # --- starting messages -------------------------------------------------------------------------------

    def _start_waiting(self) -> None:
        """Put the messages whose moment has come on free connections, opening one when allowed."""
        while self.waiting and self._moment() <= time.monotonic():
            try:
                connection = self._free_connection()
            except (smtplib.SMTPException, OSError) as error:  # refused, unreachable, TLS, greeting, login
                self._finish(heapq.heappop(self.waiting)[2], unavailable(error))
                continue
            if connection is None:
                return
            self._start(connection, heapq.heappop(self.waiting)[2])

    def _moment(self) -> float:
        """When the next waiting message may leave: its reserved moment, or later while a 421 pauses
        every sender (`RateLimiter.slow_down`)."""
        return max(self.waiting[0][0], self.transport.limiter.paused_until)

    def _free_connection(self) -> _Connection[Row] | None:
        """An idle connection, a new one while fewer than `count` are open, or None (all are busy)."""
        for connection in self.connections:
            if connection.stage == "idle" and not connection.out:
                return connection
        if len(self.connections) >= self.count:
            return None
        smtp = self.transport.open()
        smtp.sock.setblocking(False)
        # Writes follow each other without waiting for replies (the next envelope behind a message):
        # Nagle's algorithm would hold each small one back until the relay acknowledged the last.
        smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection = _Connection[Row](smtp, smtp.has_extn("pipelining"), smtp.has_extn("smtputf8"))
        self.connections.append(connection)
        self.selector.register(smtp.sock, selectors.EVENT_READ, connection)
        return connection

    def _start(self, connection: _Connection[Row], job: _Job[Row]) -> None:
        commands = self._envelope(connection, job)
        if commands is None:
            return
        mail, rcpt = commands
        self._begin(connection, job)
        if connection.pipelining:  # RFC 2920: one write, then the three replies
            self._write(connection, mail + rcpt + b"DATA\r\n")
        else:
            connection.steps = deque([(rcpt, ACCEPTED[1]), (b"DATA\r\n", ACCEPTED[2])])
            connection.expected = 1
            self._write(connection, mail)

    def _envelope(self, connection: _Connection[Row], job: _Job[Row]) -> tuple[bytes, bytes] | None:
        """MAIL and RCPT as written, or None when the addresses cannot be (the job's result is given)."""
        commands = envelope(job.sender, job.recipient, connection.smtputf8)
        if isinstance(commands, Reply):
            self._finish(job, commands)
            return None
        mail, rcpt = (command.encode("utf-8") + b"\r\n" for command in commands)
        return mail, rcpt

    @staticmethod
    def _begin(connection: _Connection[Row], job: _Job[Row]) -> None:
        """`job`'s transaction is the connection's own from here: its replies are the next to come."""
        connection.job, connection.heard, connection.refused = job, False, None
        connection.stage, connection.replies, connection.expected = "envelope", [], 3

    def _follow(self, connection: _Connection[Row], job: _Job[Row]) -> bytes:
        """`job`'s MAIL, RCPT and DATA, to write behind the message on its way: the relay answers that
        message first, then these (RFC 2920); `_done` makes `job` the connection's own when that answer
        comes. Empty when the addresses cannot be written (the job's result is given)."""
        commands = self._envelope(connection, job)
        if commands is None:
            return b""
        connection.following = job
        return b"".join(commands) + b"DATA\r\n"

    # --- the event loop ----------------------------------------------------------------------------------

    def _next_event(self, now: float, until: float | None) -> float | None:
        """How long the selector may wait: until the next message's moment, a reply's deadline or `until`."""
        moments = [connection.deadline for connection in self.connections if connection.stage != "idle"]
        if self.waiting and self._moment() > now:  # past it, the message waits for a connection instead
            moments.append(self._moment())
        if until is not None:
            moments.append(until)
        return max(0.0, min(moments) - now) if moments else None

    def _poll(self, wait: float | None) -> None:
        if not self.connections:
            if wait:
                time.sleep(wait)
            return
        for key, events in self.selector.select(wait):
            connection: _Connection[Row] = key.data
            if connection not in self.connections:
                continue
            if events & selectors.EVENT_WRITE:
                self._flush(connection)
            if events & selectors.EVENT_READ and connection in self.connections:
                self._read(connection)

    def _expire(self, now: float) -> None:
        for connection in list(self.connections):
            if connection.stage != "idle" and connection.deadline <= now:
                self._broken(connection, TimeoutError("the relay did not answer in time"))

    def _write(self, connection: _Connection[Row], data: bytes) -> None:
        connection.out = memoryview(data)
        connection.deadline = time.monotonic() + TIMEOUT
        self._flush(connection)

    def _flush(self, connection: _Connection[Row]) -> None:
        try:
            while connection.out:
                try:
                    sent = connection.socket.send(connection.out)
                except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                    break
                connection.out = connection.out[sent:]
        except OSError as error:
            self._broken(connection, error)
            return
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if connection.out else 0)
        if events != connection.events:  # a system call each time: only when it changes
            connection.events = events
            self.selector.modify(connection.socket, events, connection)

    def _read(self, connection: _Connection[Row]) -> None:
        try:
            while True:
                try:
                    data = connection.socket.recv(READ_SIZE)
                except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    break
                if not data:
                    raise smtplib.SMTPServerDisconnected("the relay closed the connection")
                connection.inbox += data
                if not isinstance(connection.socket, ssl.SSLSocket) or not connection.socket.pending():
                    break
        except (OSError, smtplib.SMTPServerDisconnected) as error:
            self._take_replies(connection)  # what came before it closed (a 421 says why)
            if connection in self.connections:
                self._broken(connection, error)
            return
        self._take_replies(connection)

    def _take_replies(self, connection: _Connection[Row]) -> None:
        """Each complete reply in the inbox, in turn: `250-...` lines continue, `250 ...` ends one."""
        while connection in self.connections:
            end = connection.inbox.find(b"\r\n")
            if end < 0:
                return
            line = bytes(connection.inbox[:end])
            del connection.inbox[: end + 2]
            connection.lines.append(line)
            if line[3:4] == b"-":
                continue
            lines, connection.lines = connection.lines, []
            try:
                code = int(lines[-1][:3])
            except ValueError:
                self._broken(
                    connection, smtplib.SMTPResponseException(-1, b"not an SMTP reply: " + line[:100])
                )
                return
            self._answered(connection, code, b"\n".join(text[4:] for text in lines))

    # --- what each reply means ---------------------------------------------------------------------------

    def _answered(self, connection: _Connection[Row], code: int, text: bytes) -> None:
        job = connection.job
        connection.deadline = time.monotonic() + TIMEOUT
        if connection.stage == "reset":  # RSET after a refusal: the connection is free again
            if code // 100 == 2:
                self._idle(connection)
            else:
                self._drop(connection)
            return
        if job is None:  # nothing asked: a relay closing an idle connection (421) says so unasked
            self._drop(connection)
            return
        first = not connection.heard
        connection.heard = True
        if code == 421:  # the relay closes the session: its trouble, not the recipient's
            self.transport.limiter.slow_down()
            self._drop(connection)
            reply = classify(code, text)
            if first:
                self._not_started(connection, job, reply)
            else:
                self._finish(job, reply)
            self._requeue_following(connection)
            return
        if connection.stage == "envelope":
            self._envelope_reply(connection, job, code, text)
        elif connection.stage == "message":
            self._done(connection, job, classify(code, text), reset=code // 100 != 2)
        elif connection.stage == "end":  # the lone '.' after a refused RCPT: the refusal is the result
            assert connection.refused is not None
            self._done(connection, job, classify(*connection.refused), reset=True)

    def _envelope_reply(self, connection: _Connection[Row], job: _Job[Row], code: int, text: bytes) -> None:
        number = len(connection.replies)
        connection.replies.append((code, text))
        if code not in ACCEPTED[number] and connection.refused is None:
            connection.refused = (code, text)
        connection.expected -= 1
        if not connection.pipelining and connection.refused is None and connection.steps:
            command, _ = connection.steps.popleft()
            connection.expected = 1
            self._write(connection, command)
            return
        if connection.expected > 0:
            return
        if connection.refused is None:
            connection.stage = "message"
            following = b""
            # With PIPELINING the next envelope goes in the same write (a separate one let the relay answer
            # in two writes, and its Nagle wait for our delayed acknowledgement stalled it for 40 ms).
            if connection.pipelining and self.waiting and self._moment() <= time.monotonic():
                following = self._follow(connection, heapq.heappop(self.waiting)[2])
            self._write(connection, job.wire + following if following else job.wire)
        elif code == 354:  # a relay should refuse DATA after a refused RCPT; if not, end the data
            connection.stage = "end"
            self._write(connection, b".\r\n")
        else:
            self._done(connection, job, classify(*connection.refused), reset=True)

    def _done(self, connection: _Connection[Row], job: _Job[Row], reply: Reply, reset: bool) -> None:
        connection.used = True
        self._finish(job, reply)
        following, connection.following = connection.following, None
        if following is not None:  # the data's end closed the transaction, whatever its reply
            self._begin(connection, following)
        elif reset:  # after a refusal the transaction must be reset before the next message
            connection.job, connection.stage = None, "reset"
            self._write(connection, b"RSET\r\n")
        else:
            self._idle(connection)

    def _idle(self, connection: _Connection[Row]) -> None:
        connection.job, connection.stage, connection.expected = None, "idle", 0
        connection.steps.clear()

    def _requeue_following(self, connection: _Connection[Row]) -> None:
        """The connection ends before the job pipelined behind its message was answered: that job goes
        back to the head of the queue for another connection, as it would have gone had it waited for
        this message's reply. The ending is the message ahead's result, not this job's: it is not
        counted as its one retry (`_not_started`), and each such return follows a result, so it ends."""
        following, connection.following = connection.following, None
        if following is not None:
            heapq.heappush(self.waiting, (0.0, next(self.order), following))

    def _not_started(self, connection: _Connection[Row], job: _Job[Row], reply: Reply) -> None:
        """Nothing of this transaction was answered: on a pooled connection (the relay closed it while
        idle) the message moves to a fresh one, once; otherwise the relay's trouble is its result."""
        if connection.used and not job.retried:
            job.retried = True
            heapq.heappush(self.waiting, (0.0, next(self.order), job))
        else:
            self._finish(job, reply)

    def _broken(self, connection: _Connection[Row], error: BaseException) -> None:
        job, heard = connection.job, connection.heard
        stage = connection.stage
        self._drop(connection)
        if job is not None and stage != "reset":
            if not heard:
                self._not_started(connection, job, unavailable(error))
            else:  # the message was under way: this recipient's try
                self._finish(job, Reply(Outcome.DEFERRED, 0, f"connection problem: {error}"))
        self._requeue_following(connection)

    def _drop(self, connection: _Connection[Row]) -> None:
        if connection in self.connections:
            self.connections.remove(connection)
            with contextlib.suppress(KeyError, ValueError, OSError):
                self.selector.unregister(connection.socket)
        with contextlib.suppress(OSError):
            connection.smtp.close()

    def _finish(self, job: _Job[Row], reply: Reply) -> None:
        self.in_flight.pop(job.key, None)
        self.done.append((job.row, reply))
