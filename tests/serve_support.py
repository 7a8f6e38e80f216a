"""Helpers for tests against a real `newsletter serve` (no tests of its own): a visitor on a loopback
address of its choosing, Debian's nginx as the reverse proxy in front, and a relay that accepts
connections and never says a word.

All of 127.0.0.0/8 is loopback on Linux, so a `Visitor` bound to 127.0.0.2, 127.0.0.3, ... is a
different client to the server (or to nginx) without any header being set by hand.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import pwd
import re
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from newsletter.running import Running, terminate

NGINX = Path("/usr/sbin/nginx")
LOOPBACK = "127.0.0.1"
CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')
CSRF_COOKIE = re.compile(r"(newsletter_csrf=[^;]+)")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    text: str
    seconds: float  # from sending the request to the end of the answer


class Visitor:
    """A browser-like client on `source` (a loopback address) talking to 127.0.0.1:`port`, keeping the
    CSRF cookie and the form's token from the last page it loaded."""

    def __init__(self, port: int, source: str = LOOPBACK, timeout: float = 10.0) -> None:
        self.port = port
        self.source = source
        self.timeout = timeout
        self.cookie = ""
        self.csrf = ""

    def request(
        self,
        method: str,
        path: str,
        form: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        connection = http.client.HTTPConnection(
            LOOPBACK, self.port, timeout=self.timeout, source_address=(self.source, 0)
        )
        sent = dict(headers or {})
        body = None
        if form is not None:
            body = urlencode(form, doseq=True)
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        if self.cookie:
            sent["Cookie"] = self.cookie
        try:
            connection.connect()
            started = time.perf_counter()
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            text = response.read().decode("utf-8")
            seconds = time.perf_counter() - started
            answer = Answer(response.status, dict(response.getheaders()), text, seconds)
        finally:
            connection.close()
        found = CSRF_COOKIE.search(answer.headers.get("Set-Cookie", ""))
        if found:
            self.cookie = found.group(1)
        token = CSRF_INPUT.search(answer.text)
        if token:
            self.csrf = token.group(1)
        return answer

    def subscribe(self, email: str, headers: dict[str, str] | None = None, **fields: object) -> Answer:
        """POST the sign-up form (loading it first, once, for the CSRF cookie and token)."""
        if not self.csrf:
            assert self.request("GET", "/subscribe").status == 200
        form = {"csrf_token": self.csrf, "email": email, "lists": ["newsletter"], "consent": "yes", **fields}
        return self.request("POST", "/subscribe", form, headers)


class NginxProxy(Running):
    """Debian's nginx on 127.0.0.1:`port` as a reverse proxy to 127.0.0.1:`upstream`, passing the
    client's address the usual way (`X-Forwarded-For $proxy_add_x_forwarded_for`, `X-Forwarded-Proto`).

    A child process with its own configuration, pid, logs and temporary files in a temporary folder,
    in the foreground (`daemon off`), so nothing of the system's nginx is used or left running.
    """

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._folder: tempfile.TemporaryDirectory[str] | None = None

    def configuration(self, folder: Path) -> str:
        # As root, nginx would run its workers as `nobody`, who cannot read a private temporary folder.
        user = f"user {pwd.getpwuid(os.geteuid()).pw_name};" if os.geteuid() == 0 else ""
        return f"""
{user}
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log {folder}/access.log;
    client_body_temp_path {folder}/client_body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    server {{
        listen {LOOPBACK}:{self.port};
        location / {{
            proxy_pass http://{LOOPBACK}:{self.upstream};
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
    }}
}}
"""

    def start(self) -> None:
        if not (NGINX.is_file() and os.access(NGINX, os.X_OK)):
            raise RuntimeError(
                f"{NGINX} was not found. It comes with Debian's `nginx` package: `apt-get install nginx` "
                "(scripts/test installs it)."
            )
        self._folder = tempfile.TemporaryDirectory(prefix="newsletter-nginx-")
        folder = Path(self._folder.name)
        for attempt in range(3):  # the free port may be taken by someone else before nginx binds it
            self.port = free_port()
            conf = folder / "nginx.conf"
            conf.write_text(self.configuration(folder), encoding="utf-8")
            command = [str(NGINX), "-c", str(conf), "-p", str(folder), "-e", str(folder / "error.log")]
            self.process = subprocess.Popen(
                [*command, "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.process.poll() is None:
                with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, self.port), timeout=1):
                    return
                time.sleep(0.02)
            self.stop()
            if attempt == 2:
                raise RuntimeError(f"nginx did not start:\n{self.log()}")

    def log(self) -> str:
        if self._folder is None:
            return ""
        path = Path(self._folder.name) / "error.log"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.process is not None:
            terminate(self.process)

    def __exit__(self, *exc: object) -> None:
        self.stop()
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None


class SilentRelay(Running):
    """A "relay" on 127.0.0.1:`port` that accepts every connection and never answers, not even with
    its greeting (a hung mail server). With `hang_up_after`, each connection is closed after that many
    seconds, still without a word."""

    def __init__(self, hang_up_after: float | None = None) -> None:
        self.hang_up_after = hang_up_after
        self.port = 0
        self.accepted = 0
        self._listener: socket.socket | None = None
        self._connections: list[tuple[socket.socket, float]] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind((LOOPBACK, 0))
        listener.listen(64)
        listener.settimeout(0.05)
        self._listener, self.port = listener, listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, name="silent-relay", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while (listener := self._listener) is not None:
            try:
                connection, _ = listener.accept()
                with self._lock:
                    self.accepted += 1
                    self._connections.append((connection, time.monotonic()))
            except TimeoutError:
                pass
            except OSError:
                return
            if self.hang_up_after is not None:
                self._hang_up(time.monotonic() - self.hang_up_after)

    def _hang_up(self, opened_before: float) -> None:
        with self._lock:
            keep = []
            for connection, opened in self._connections:
                if opened <= opened_before:
                    connection.close()
                else:
                    keep.append((connection, opened))
            self._connections = keep

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._hang_up(float("inf"))
