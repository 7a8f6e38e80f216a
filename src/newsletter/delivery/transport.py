"""SMTP transport: pooled connections, a global and a per-domain rate, and replies sorted by meaning.

Each sending thread keeps one connection open and reuses it. What a reply
means for the ledger:
  2xx                      sent
  4xx, or the connection   deferred: tried again after a backoff
  dropping once the
  message was under way
  5xx                      failed for good; 5.1.x (no such user/domain) is a hard bounce
Trouble with the relay itself says nothing about the recipient, so such a
reply is marked `relay`: the relay cannot be reached, TLS or the greeting or
the login fails, it answers 421 (closing), or the connection drops before it
answered anything of this recipient's transaction (a pooled connection the
relay closed is first replaced, once, without a word). The worker gives those
rows back without counting an attempt and waits for the relay (`probe`).
The transport knows nothing about campaigns or issues: it sends bytes.
"""

from __future__ import annotations

import contextlib
import enum
import smtplib
import socket
import ssl
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from newsletter.errors import UserError

SLOW_DOWN_SECONDS = 5.0
TIMEOUT = 30.0


class Outcome(enum.StrEnum):
    SENT = "sent"
    DEFERRED = "deferred"
    FAILED = "failed"
    # A 5xx about this recipient. What it means for the member (a dead address, a full mailbox, a spam
    # block) is the member rules' to say (`audience.bouncing`), not the transport's.
    REFUSED = "refused"


@dataclass(frozen=True)
class Reply:
    outcome: Outcome
    code: int
    text: str
    # The relay or the connection to it failed before this recipient's transaction began (or it said
    # 421): nothing is known about the recipient, so no attempt should be counted against them.
    relay: bool = False

    def __str__(self) -> str:
        return (f"{self.code} {self.text}" if self.code else self.text).strip()[:500]


@dataclass(frozen=True)
class SmtpAddress:
    host: str
    port: int
    implicit_tls: bool
    username: str | None
    password: str | None

    @classmethod
    def parse(cls, url: str) -> SmtpAddress:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise UserError(
                f"smtp_url '{url}' must look like smtp://host:port or smtps://user:password@host:port"
            )
        default_port = 465 if parts.scheme == "smtps" else 25
        return cls(
            host=parts.hostname,
            port=parts.port or default_port,
            implicit_tls=parts.scheme == "smtps",
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )


def smtp_form(address: str) -> str:
    """The address as SMTP commands carry it: an internationalised domain in its ASCII form, so only
    a non-ASCII mailbox name needs SMTPUTF8."""
    local, _, domain = address.rpartition("@")
    return address if domain.isascii() else f"{local}@{domain.encode('idna').decode('ascii')}"


ACCEPTED = ((250,), (250, 251), (354,))  # the replies to MAIL, RCPT and DATA that let a message go on


class _NotStarted(Exception):
    """The connection failed, or the relay said 421, before it answered the transaction's first command."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(str(reply))
        self.reply = reply


def wire_data(message: bytes) -> bytes:
    """A message with CRLF lines as SMTP DATA carries it: dot-stuffed (RFC 5321 4.5.2), ending in CRLF . CRLF.

    smtplib's `sendmail` runs two regular expressions over every message for this; a bytes
    replace does it in a fraction of the time, and prepared messages do it once per variant.
    """
    wire = message.replace(b"\r\n.", b"\r\n..")
    if wire.startswith(b"."):
        wire = b"." + wire
    return wire + (b".\r\n" if wire.endswith(b"\r\n") else b"\r\n.\r\n")


def written_data(wire: bytes) -> bytes:
    """The message as written, from SMTP DATA (`wire_data`): the end-of-data line and the stuffing gone."""
    message = wire[: -len(b".\r\n")]
    if message.startswith(b".."):
        message = message[1:]
    return message.replace(b"\r\n..", b"\r\n.") if b"\r\n.." in message else message


class RateLimiter:
    """Spaces sends so that at most `rate` leave per second overall, and `domain_rate` per domain.

    0 means unlimited. A relay's 421 pauses every sender for a while (`slow_down`).
    """

    def __init__(self, rate: float, domain_rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.domain_interval = 1.0 / domain_rate if domain_rate > 0 else 0.0
        self.lock = threading.Lock()
        self.next_slot = 0.0
        self.next_domain_slot: dict[str, float] = defaultdict(float)
        self.paused_until = 0.0

    def wait(self, domain: str) -> None:
        """Sleep until a message to `domain` may leave."""
        delay = self.reserve(domain) - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    def reserve(self, domain: str) -> float:
        """The moment (`time.monotonic`) the next message to `domain` may leave, taken for it."""
        with self.lock:
            slot = max(time.monotonic(), self.paused_until)
            if self.interval:
                slot = max(slot, self.next_slot)
                self.next_slot = slot + self.interval
            if self.domain_interval:
                slot = max(slot, self.next_domain_slot[domain])
                self.next_domain_slot[domain] = slot + self.domain_interval
        return slot

    def slow_down(self, seconds: float = SLOW_DOWN_SECONDS) -> None:
        with self.lock:
            self.paused_until = max(self.paused_until, time.monotonic() + seconds)


class SmtpTransport:
    """Sends prepared messages; one reused connection per thread that calls `send`."""

    def __init__(
        self, smtp_url: str, max_rate: float = 0.0, domain_rate: float = 0.0, helo: str | None = None
    ) -> None:
        self.address = SmtpAddress.parse(smtp_url)
        self.limiter = RateLimiter(max_rate, domain_rate)
        self.helo = helo or socket.getfqdn()
        self.local = threading.local()
        self.connections: list[smtplib.SMTP] = []
        self.lock = threading.Lock()

    def send(self, envelope_from: str, recipient: str, data: bytes) -> Reply:
        """Send one message (CRLF lines) to one recipient; never raises for what the relay or network does."""
        return self.send_wire(envelope_from, recipient, wire_data(data))

    def send_wire(self, envelope_from: str, recipient: str, wire: bytes) -> Reply:
        """`send` for a message already in its DATA form (`wire_data`), as prepared messages keep theirs."""
        self.limiter.wait(recipient.rpartition("@")[2].lower())
        pooled = getattr(self.local, "connection", None) is not None
        try:
            return self._send_on_connection(envelope_from, recipient, wire)
        except _NotStarted as stopped:
            self._drop()
            if not pooled:
                return self._relay_trouble(stopped.reply)
        # The relay closed the pooled connection (an idle timeout, a restart): once more on a new one.
        try:
            return self._send_on_connection(envelope_from, recipient, wire)
        except _NotStarted as stopped:
            self._drop()
            return self._relay_trouble(stopped.reply)

    def _relay_trouble(self, reply: Reply) -> Reply:
        if reply.code == 421:
            self.limiter.slow_down()
        return reply

    def _send_on_connection(self, envelope_from: str, recipient: str, wire: bytes) -> Reply:
        try:
            connection = self._connection()
        except (smtplib.SMTPException, OSError) as error:  # refused, unreachable, TLS, greeting, login
            self._drop()
            return unavailable(error)
        commands = envelope(envelope_from, recipient, connection.has_extn("smtputf8"))
        if isinstance(commands, Reply):
            return commands
        if not commands[0].isascii():
            connection.command_encoding = "utf-8"
        try:
            return self._transaction(connection, *commands, wire)
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError, smtplib.SMTPResponseException) as error:
            return self._classify(error.smtp_code, error.smtp_error, reset=True)
        except (smtplib.SMTPException, OSError) as error:  # the message was under way: the recipient's try
            self._drop()
            return Reply(Outcome.DEFERRED, 0, f"connection problem: {error}")
        except UnicodeError as error:
            return Reply(Outcome.FAILED, 0, f"the address cannot be sent: {error}")

    def probe(self) -> Reply | None:
        """Open a connection as sending does (greeting, EHLO, STARTTLS, login) and close it again:
        None when the relay answers, else the reply that says why not (`relay` set)."""
        try:
            connection = self.open()
        except (smtplib.SMTPException, OSError) as error:
            return unavailable(error)
        try:
            connection.quit()
        except (smtplib.SMTPException, OSError):
            connection.close()
        return None

    def _transaction(
        self, connection: smtplib.SMTP, mail_command: str, rcpt_command: str, wire: bytes
    ) -> Reply:
        """MAIL, RCPT, DATA for one message in its DATA form (dot-stuffed, ending in CRLF . CRLF)."""
        # Addresses come from the ledger, already validated: no need for smtplib's parseaddr per command.
        if connection.has_extn("pipelining"):
            # RFC 2920: one write and one wait for the three replies instead of three round trips.
            first = _first_reply(connection, f"{mail_command}\r\n{rcpt_command}\r\nDATA\r\n")
            refused = None
            for number, ok in enumerate(ACCEPTED):
                code, text = connection.getreply() if number else first
                if code == 421:  # the relay hangs up: no more replies will come
                    return self._classify(code, text)
                if code not in ok and refused is None:
                    refused = (code, text)
            if refused is not None:
                if code == 354:  # a relay should refuse DATA after a refused RCPT; if not, end the data
                    connection.send(".\r\n")
                    connection.getreply()
                return self._classify(*refused, reset=True)
        else:
            for number, (command, ok) in enumerate(
                zip((mail_command, rcpt_command, "DATA"), ACCEPTED, strict=True)
            ):
                if number:
                    connection.putcmd(command)
                    code, text = connection.getreply()
                else:
                    code, text = _first_reply(connection, f"{command}\r\n")
                if code not in ok:
                    return self._classify(code, text, reset=True)
        connection.send(wire)
        code, text = connection.getreply()
        return self._classify(code, text, reset=code // 100 != 2)

    def _classify(self, code: int, text: bytes | str, reset: bool = False) -> Reply:
        reply = classify(code, text)
        if code == 421:  # the relay closes the session
            self.limiter.slow_down()
            self._drop()
        elif reset:
            self._reset()
        return reply

    def _connection(self) -> smtplib.SMTP:
        connection = getattr(self.local, "connection", None)
        if connection is not None:
            return connection
        connection = self.open()
        self.local.connection = connection
        with self.lock:
            self.connections.append(connection)
        return connection

    def open(self) -> smtplib.SMTP:
        """A new session with the relay: greeting, EHLO, STARTTLS when offered, login when configured
        (raises what smtplib raises); `send_wire` pools them, the worker's `Connections` drives them."""
        address = self.address
        if address.implicit_tls:
            connection = smtplib.SMTP_SSL(
                address.host,
                address.port,
                local_hostname=self.helo,
                timeout=TIMEOUT,
                context=ssl.create_default_context(),
            )
        else:
            connection = smtplib.SMTP(address.host, address.port, local_hostname=self.helo, timeout=TIMEOUT)
        try:
            connection.ehlo()  # over TLS from the first byte too: without it the relay refuses MAIL
            if not address.implicit_tls and connection.has_extn("starttls"):
                connection.starttls(context=ssl.create_default_context())
                connection.ehlo()
            if address.username:
                connection.login(address.username, address.password or "")
        except BaseException:
            connection.close()
            raise
        return connection

    def _reset(self) -> None:
        """After a refusal the transaction must be reset before the next message on this connection."""
        connection = getattr(self.local, "connection", None)
        if connection is not None:
            try:
                connection.rset()
            except (smtplib.SMTPException, OSError):
                self._drop()

    def _drop(self) -> None:
        connection = getattr(self.local, "connection", None)
        self.local.connection = None
        if connection is not None:
            with contextlib.suppress(OSError):
                connection.close()

    def close(self) -> None:
        """Say QUIT on every connection this transport opened."""
        with self.lock:
            connections, self.connections = self.connections, []
        for connection in connections:
            try:
                connection.quit()
            except (smtplib.SMTPException, OSError):
                connection.close()


def classify(code: int, text: bytes | str) -> Reply:
    """What a relay's reply means for the recipient: sent, deferred or refused; a 421 (the relay closes
    the session) is the relay's trouble, not the recipient's."""
    message = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    if code == 421:
        return Reply(Outcome.DEFERRED, code, message, relay=True)
    if 200 <= code < 300:
        return Reply(Outcome.SENT, code, message)
    if 500 <= code < 600:
        return Reply(Outcome.REFUSED, code, message)
    return Reply(Outcome.DEFERRED, code, message)


def envelope(envelope_from: str, recipient: str, has_smtputf8: bool) -> tuple[str, str] | Reply:
    """MAIL FROM and RCPT TO for one message, or the reply that says why it cannot be sent: an address
    that cannot be written, or a non-ASCII mailbox name for a relay without SMTPUTF8."""
    try:
        envelope_from, recipient = smtp_form(envelope_from), smtp_form(recipient)
    except UnicodeError as error:
        return Reply(Outcome.FAILED, 0, f"the address cannot be sent: {error}")
    extra = ""
    if not (recipient.isascii() and envelope_from.isascii()):
        if not has_smtputf8:
            return Reply(
                Outcome.FAILED, 0, "the mailbox name is not ASCII and the relay does not offer SMTPUTF8"
            )
        extra = " SMTPUTF8"
    return f"MAIL FROM:<{envelope_from}>{extra}", f"RCPT TO:<{recipient}>"


def _first_reply(connection: smtplib.SMTP, commands: str) -> tuple[int, bytes]:
    """Send a transaction's first command(s) and read the first reply. A connection that fails before
    that reply, or a 421 (a relay closing an idle connection says so), is `_NotStarted`: nothing of this
    recipient's transaction was taken up."""
    try:
        connection.send(commands)
        code, text = connection.getreply()
    except (smtplib.SMTPServerDisconnected, OSError) as error:
        raise _NotStarted(unavailable(error)) from error
    if code == 421:
        raise _NotStarted(Reply(Outcome.DEFERRED, code, text.decode("utf-8", "replace"), relay=True))
    return code, text


def unavailable(error: BaseException) -> Reply:
    """The relay could not be reached or would not talk: its trouble, not the recipient's."""
    code = getattr(error, "smtp_code", 0)
    return Reply(
        Outcome.DEFERRED,
        code if isinstance(code, int) and code > 0 else 0,
        f"connection problem: {error}",
        relay=True,
    )
