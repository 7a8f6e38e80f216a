"""An SMTP (or LMTP) server of ours on a local port: `newsletter sink` and `newsletter bounces receive`.

aiosmtpd runs the server in a background thread. What both commands need around it is written here once:
a free port when asked for port 0, a busy or forbidden port refused at once in words (aiosmtpd itself
notices a failed bind only when its ready-timeout runs out), and `serve_forever` that stops cleanly on
Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import contextlib
import errno
import signal
import socket
import threading
from abc import abstractmethod
from types import FrameType
from typing import Any

from aiosmtpd.controller import Controller

from newsletter.errors import UserError
from newsletter.running import Running


def free_port(host: str) -> int:
    """Let the kernel pick an unused port: aiosmtpd's Controller needs a concrete number before it binds."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def check_bindable(host: str, port: int, other: str) -> None:
    """Bind (host, port) the way asyncio will, so a busy port fails at once, phrased for the user.

    `other` names what probably holds the port (`another \\`newsletter sink\\``)."""
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
                raise bind_error(host, port, error, other) from None


def bind_error(host: str, port: int, error: OSError, other: str) -> UserError:
    """What a failed bind means, in words, with what to do."""
    if error.errno == errno.EADDRINUSE:
        return UserError(
            f"Cannot listen on {host}:{port}: the port is already in use. Stop the other server "
            f"(perhaps {other}) or choose another port with --port."
        )
    if error.errno == errno.EACCES:
        return UserError(f"Cannot listen on {host}:{port}: permission denied; use a port above 1023.")
    if error.errno == errno.EADDRNOTAVAIL:
        return UserError(f"Cannot listen on {host}:{port}: this machine has no such address.")
    return UserError(f"Cannot listen on {host}:{port}: {error.strerror or error}.")


class SmtpListener(Running):
    """One aiosmtpd server on (host, port) while running; port 0 picks a free port.

    Subclasses say how the controller is built (`controller`), what must be ready first (`prepare`),
    and what probably holds a busy port (`OTHER`)."""

    OTHER = "another server"

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.requested_port = port
        self.port = port
        self._controller: Controller | None = None
        self._stop_requested = threading.Event()

    @abstractmethod
    def controller(self, port: int) -> Controller:
        """The aiosmtpd controller to run on `port`."""

    def prepare(self) -> None:
        """Whatever must exist before the first message can arrive (none by default)."""

    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> None:
        """Start listening (in a background thread); a port that cannot be bound is a `UserError` at once."""
        if self._controller is not None:
            raise RuntimeError(f"{type(self).__name__} is already running")
        self.prepare()
        port = self.requested_port or free_port(self.host)
        check_bindable(self.host, port, self.OTHER)
        controller = self.controller(port)
        try:
            controller.start()
        except OSError as error:  # lost a race for the port between our probe and aiosmtpd's bind
            with contextlib.suppress(Exception):
                controller.stop(no_assert=True)
            raise bind_error(self.host, port, error, self.OTHER) from None
        self._controller = controller
        self.port = port
        self._stop_requested.clear()

    def stop(self) -> None:
        """Stop listening; safe to call twice."""
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
            while not self._stop_requested.wait(0.2):  # a timed wait keeps the main thread answering signals
                pass
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            self.stop()
