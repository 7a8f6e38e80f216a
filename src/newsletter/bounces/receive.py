"""`newsletter bounces receive`: an SMTP or LMTP server the relay hands returned mail to.

The relay (Postfix, see docs/bounces.md) routes `bounces+*@domain` here. The server answers for that
pattern only: any other recipient is refused at RCPT with 550 5.1.1, so nothing else is ever stored or
read. Each accepted message goes to the processing function (`Intake.process` in production); if that
raises, the answer is 451 and the relay keeps the message and tries again later, so no report is lost.

Over SMTP there is one reply for the whole message, so a transaction takes one recipient (a second RCPT
gets 452, which makes the relay send it in a transaction of its own): a 451 then never makes the relay
repeat a recipient that was processed already. LMTP answers each recipient separately after DATA, so
there a transaction may carry many.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiosmtpd.controller import Controller
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope, Session

from newsletter.listener import SmtpListener

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "BounceReceiver", "Process", "is_bounce_address"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8026  # next to the sink's 8025
_GREETING_NAME = "newsletter-bounces"  # explicit: aiosmtpd's default asks DNS for the machine's FQDN
_ACCEPTED = "250 2.0.0 Report received"
_RETRY = "451 4.3.0 The report could not be processed now; try again later"
_NO_SUCH_USER = "550 5.1.1 No such mailbox here: this server takes only bounces+*@{domain}"
_ONE_AT_A_TIME = "452 4.5.3 One recipient per message here; send the others separately"

Process = Callable[[bytes, str | None], object]  # Intake.process(raw, envelope_to); its result is unused here

log = logging.getLogger(__name__)


def is_bounce_address(address: str, domain: str) -> bool:
    """True for `bounces+TOKEN@domain` (a non-empty token; the domain and the `bounces` part in any case)."""
    local, at, address_domain = address.rpartition("@")
    prefix, plus, token = local.partition("+")
    return (
        bool(at and plus and token) and prefix.lower() == "bounces" and _same_domain(address_domain, domain)
    )


def _same_domain(left: str, right: str) -> bool:
    return left.rstrip(".").casefold() == right.rstrip(".").casefold()


class _Handler:
    """aiosmtpd hooks. Processing runs on the server's one event-loop thread, so reports are recorded one
    at a time, in the order they arrive: the database sees a single writer."""

    def __init__(self, process: Process, domain: str, lmtp: bool) -> None:
        self.process = process
        self.domain = domain
        self.lmtp = lmtp
        self.accepted = 0
        self.retried = 0

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if not is_bounce_address(address, self.domain):
            return _NO_SUCH_USER.format(domain=self.domain)
        if envelope.rcpt_tos and not self.lmtp:
            return _ONE_AT_A_TIME
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        # LMTP wants one reply per accepted recipient, in order; SMTP has exactly one recipient here.
        return "\r\n".join(self._take(raw, rcpt) for rcpt in envelope.rcpt_tos)

    def _take(self, raw: bytes, rcpt: str) -> str:
        try:
            self.process(raw, rcpt)
        except Exception:
            log.exception("Could not process a report for %s; answered 451 so the relay retries", rcpt)
            self.retried += 1
            return _RETRY
        self.accepted += 1
        return _ACCEPTED


class _LMTPController(Controller):
    def factory(self) -> LMTP:
        return LMTP(self.handler, **self.SMTP_kwargs)


class BounceReceiver(SmtpListener):
    """The bounce server on (host, port), SMTP or LMTP, in a background thread while running.

    Use as a context manager in tests (``with BounceReceiver(intake.process, domain, port=0) as server:
    ... server.port``) or call `serve_forever()` from the CLI. Port 0 picks a free port.
    """

    OTHER = "another `newsletter bounces receive`"

    def __init__(
        self,
        process: Process,
        domain: str,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        *,
        lmtp: bool = False,
    ) -> None:
        super().__init__(host, port)
        self.handler = _Handler(process, domain, lmtp)
        self.lmtp = lmtp

    @property
    def protocol(self) -> str:
        return "LMTP" if self.lmtp else "SMTP"

    @property
    def accepted(self) -> int:
        """Reports processed since the server started (one per recipient)."""
        return self.handler.accepted

    @property
    def retried(self) -> int:
        """Reports answered 451 because processing failed (the relay will offer them again)."""
        return self.handler.retried

    def controller(self, port: int) -> Controller:
        kind = _LMTPController if self.lmtp else Controller
        return kind(
            self.handler, hostname=self.host, port=port, server_hostname=_GREETING_NAME, ready_timeout=10.0
        )
