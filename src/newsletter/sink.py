"""A local SMTP server that keeps every message in a Maildir instead of delivering it.

`newsletter sink` runs this so an editor can point the delivery settings at 127.0.0.1:8025 and send a real
issue end to end — rendering, batching, SMTP — without a single real subscriber receiving mail. Each stored
copy keeps its envelope (`Return-Path`, `Delivered-To`) and the moment it arrived, and any mail client that
reads Maildir (mutt -f DIR, Thunderbird, `python -m mailbox`) can open the result.
"""

from __future__ import annotations

import mailbox
import threading
from datetime import UTC, datetime
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from newsletter.errors import UserError, display_path
from newsletter.listener import SmtpListener

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "RECEIVED_HEADER", "MaildirSink"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8025
RECEIVED_HEADER = "X-Newsletter-Sink-Received"
_GREETING_NAME = "newsletter-sink"  # an explicit name: aiosmtpd's default asks DNS for the machine's FQDN


_MAILDIR_PARTS = ("tmp", "new", "cur")


def _prepare_maildir(path: Path) -> None:
    """Make `path` a Maildir, or refuse with a message saying why.

    mailbox.Maildir(create=True) only creates a directory that does not exist yet; an empty directory the
    user made (`mkdir out/sink`) would later fail on the first message, so give it the three subdirectories
    here. A non-empty directory that is not a Maildir is left alone: it probably holds something else.
    """
    if path.exists() and not path.is_dir():
        raise UserError(f"Cannot use {display_path(path)} as a Maildir: it is a file, not a directory.")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)  # mailbox.Maildir creates the rest
        return
    missing = [part for part in _MAILDIR_PARTS if not (path / part).is_dir()]
    if not missing:
        return
    if len(missing) < len(_MAILDIR_PARTS) or any(path.iterdir()):
        raise UserError(
            f"Cannot use {display_path(path)} as a Maildir: it is a directory with other content and no "
            f"{'/'.join(missing)} subdirectories. Choose a new or empty directory with --maildir."
        )
    for part in _MAILDIR_PARTS:
        (path / part).mkdir(mode=0o700)


class _MaildirHandler:
    """aiosmtpd handler: one Maildir copy per envelope recipient, each stamped with envelope and time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        _prepare_maildir(path)
        self.maildir = mailbox.Maildir(path, create=True)
        self.stored = 0
        self._lock = threading.Lock()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        received = datetime.now(UTC).isoformat(timespec="microseconds")
        content = envelope.original_content or b""
        mail_from = envelope.mail_from or ""
        for rcpt in envelope.rcpt_tos:
            headers = (
                f"Return-Path: <{mail_from}>\r\nDelivered-To: {rcpt}\r\n{RECEIVED_HEADER}: {received}\r\n"
            )
            # Header values may carry UTF-8 addresses (SMTPUTF8); surrogateescape keeps raw bytes intact.
            with self._lock:
                self.maildir.add(headers.encode("utf-8", "surrogateescape") + content)
                self.stored += 1
        return "250 2.0.0 Stored in the local Maildir, not delivered"


class MaildirSink(SmtpListener):
    """An SMTP server on loopback that stores what it receives in a Maildir, for trying sends safely.

    Use as a context manager (``with MaildirSink(dir) as sink: ... sink.port``) in tests and scripts, or call
    `serve_forever()` from the CLI. Port 0 picks a free port; a busy port raises `UserError`.
    """

    OTHER = "another `newsletter sink`"

    def __init__(self, maildir: Path | str, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
        super().__init__(host, port)
        self.maildir = Path(maildir)
        self._handler: _MaildirHandler | None = None

    def prepare(self) -> None:
        """Create the Maildir if needed, or refuse a folder that cannot be one."""
        try:
            self._handler = _MaildirHandler(self.maildir)
        except OSError as error:
            raise UserError(
                f"Cannot use {display_path(self.maildir)} as a Maildir: {error.strerror or error}."
            ) from None

    def controller(self, port: int) -> Controller:
        return Controller(
            self._handler, hostname=self.host, port=port, server_hostname=_GREETING_NAME, ready_timeout=10.0
        )

    # -- results -------------------------------------------------------------------------------------------

    @property
    def stored(self) -> int:
        """How many copies this sink has stored since it started (one per envelope recipient)."""
        return self._handler.stored if self._handler is not None else 0

    def count(self) -> int:
        """How many messages the Maildir holds now, including any left there by earlier runs."""
        if not self.maildir.exists():
            return 0
        return len(mailbox.Maildir(self.maildir, create=False))

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<MaildirSink {self.host}:{self.port} -> {self.maildir} ({state})>"
