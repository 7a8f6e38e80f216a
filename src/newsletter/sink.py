"""A local SMTP server that keeps every message in a Maildir instead of delivering it.

`newsletter sink` runs this so an editor can point the delivery settings at 127.0.0.1:8025 and send a real
issue end to end — rendering, batching, SMTP — without a single real subscriber receiving mail. Each stored
copy keeps its envelope (`Return-Path`, `Delivered-To`) and the moment it arrived, and any mail client that
reads Maildir (mutt -f DIR, Thunderbird, `python -m mailbox`) can open the result.
"""

from __future__ import annotations

import contextlib
import errno
import mailbox
import signal
import socket
import threading
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from newsletter.errors import UserError, display_path
from newsletter.running import Running

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "RECEIVED_HEADER", "MaildirSink"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8025
RECEIVED_HEADER = "X-Newsletter-Sink-Received"
_GREETING_NAME = "newsletter-sink"  # an explicit name: aiosmtpd's default asks DNS for the machine's FQDN


def _free_port(host: str) -> int:
    """Let the kernel pick an unused port: aiosmtpd's Controller needs a concrete number before it binds."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _check_bindable(host: str, port: int) -> None:
    """Bind (host, port) the way asyncio will, so a busy port fails at once instead of after a 5 s timeout.

    aiosmtpd only notices a failed bind when its ready-timeout expires; this probe makes the error immediate
    and lets us phrase it for the user.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise UserError(f"Cannot listen on {host}:{port}: unknown host ({error.strerror}).") from None
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio.create_server does
            try:
                sock.bind(address)
            except OSError as error:
                raise _bind_error(host, port, error) from None


def _bind_error(host: str, port: int, error: OSError) -> UserError:
    if error.errno == errno.EADDRINUSE:
        return UserError(
            f"Cannot listen on {host}:{port}: the port is already in use. Stop the other server "
            f"(perhaps another `newsletter sink`) or choose another port with --port."
        )
    if error.errno == errno.EACCES:
        return UserError(f"Cannot listen on {host}:{port}: permission denied; use a port above 1023.")
    if error.errno == errno.EADDRNOTAVAIL:
        return UserError(f"Cannot listen on {host}:{port}: this machine has no such address.")
    return UserError(f"Cannot listen on {host}:{port}: {error.strerror or error}.")


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


class MaildirSink(Running):
    """An SMTP server on loopback that stores what it receives in a Maildir, for trying sends safely.

    Use as a context manager (``with MaildirSink(dir) as sink: ... sink.port``) in tests and scripts, or call
    `serve_forever()` from the CLI. Port 0 picks a free port; a busy port raises `UserError`.
    """

    def __init__(self, maildir: Path | str, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
        self.maildir = Path(maildir)
        self.host = host
        self.requested_port = port
        self.port: int = port
        self._handler: _MaildirHandler | None = None
        self._controller: Controller | None = None
        self._stop_requested = threading.Event()

    # -- lifecycle -----------------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> None:
        """Create the Maildir if needed and start listening (in a background thread)."""
        if self._controller is not None:
            raise RuntimeError("MaildirSink is already running")
        try:
            self._handler = _MaildirHandler(self.maildir)
        except OSError as error:
            raise UserError(
                f"Cannot use {display_path(self.maildir)} as a Maildir: {error.strerror or error}."
            ) from None
        port = self.requested_port or _free_port(self.host)
        _check_bindable(self.host, port)
        controller = Controller(
            self._handler,
            hostname=self.host,
            port=port,
            server_hostname=_GREETING_NAME,
            ready_timeout=10.0,
        )
        try:
            controller.start()
        except OSError as error:  # lost a race for the port between our probe and aiosmtpd's bind
            with contextlib.suppress(Exception):
                controller.stop(no_assert=True)
            raise _bind_error(self.host, port, error) from None
        self._controller = controller
        self.port = port
        self._stop_requested.clear()

    def stop(self) -> None:
        """Stop listening; messages already stored stay in the Maildir. Safe to call twice."""
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def shutdown(self) -> None:
        """Ask a running `serve_forever()` to return; callable from any thread."""
        self._stop_requested.set()

    def serve_forever(self) -> None:
        """Start if needed, block until SIGINT/SIGTERM (or `shutdown()`), then stop cleanly.

        Signal handlers are installed only for the duration of the call and only from the main thread (Python
        allows no other); elsewhere only `shutdown()` ends the wait.
        """
        if self._controller is None:
            self.start()
        previous: dict[int, Any] = {}

        def request_stop(signum: int, frame: FrameType | None) -> None:
            self._stop_requested.set()

        try:
            if threading.current_thread() is threading.main_thread():
                for signum in (signal.SIGINT, signal.SIGTERM):
                    previous[signum] = signal.signal(signum, request_stop)
            # A timed wait keeps the main thread responsive to signals on every platform.
            while not self._stop_requested.wait(0.2):
                pass
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            self.stop()

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
