"""`newsletter serve` in a child process on loopback, for end-to-end tests and the web benchmark.

The child gets its settings through `NEWSLETTER_*` variables (as a deployment would), runs in a
working directory of its own, and is ready when `/health` answers. `stop()` sends SIGTERM, which the
server treats like Ctrl-C, and kills it only if it does not stop in time.
"""

from __future__ import annotations

import dataclasses
import http.client
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from newsletter.running import Running, terminate
from newsletter.settings import ENV_PREFIX, Settings
from newsletter.testing.ports import LOOPBACK, free_port

START_SECONDS = 30.0


def settings_environment(settings: Settings) -> dict[str, str]:
    """The process environment, less any NEWSLETTER_* of its own, plus one variable per setting."""
    environment = {name: value for name, value in os.environ.items() if not name.startswith(ENV_PREFIX)}
    for field in dataclasses.fields(settings):
        environment[ENV_PREFIX + field.name.upper()] = str(getattr(settings, field.name))
    return environment


class ServeProcess(Running):
    """`python -m newsletter serve --port PORT [options]` with these settings; `url` once started."""

    def __init__(self, settings: Settings, *options: str, port: int | None = None) -> None:
        self.settings = settings
        self.options = options
        self.port = port or free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self._workdir: tempfile.TemporaryDirectory[str] | None = None

    def start(self) -> None:
        self._workdir = tempfile.TemporaryDirectory(prefix="newsletter-serve-")
        log = Path(self._workdir.name) / "serve.log"
        command = [sys.executable, "-m", "newsletter", "serve", "--host", LOOPBACK, "--port", str(self.port)]
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [*command, *self.options],
                cwd=self._workdir.name,
                env=settings_environment(self.settings),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"newsletter serve exited with {self.process.returncode}:\n{self.log()}")
            if self._answers():
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"newsletter serve did not answer within {START_SECONDS:.0f} s:\n{self.log()}")

    def _answers(self) -> bool:
        connection = http.client.HTTPConnection(LOOPBACK, self.port, timeout=2)
        try:
            connection.request("GET", "/health")
            return connection.getresponse().status == 200
        except OSError:
            return False
        finally:
            connection.close()

    def log(self) -> str:
        """What the server printed (its announcement, warnings, logged errors)."""
        if self._workdir is None:
            return ""
        path = Path(self._workdir.name) / "serve.log"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.process is not None:
            terminate(self.process)

    def close(self) -> None:
        """Stop, and remove the working directory (after reading `log()` if wanted)."""
        self.stop()
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None

    def __exit__(self, *exc: object) -> None:
        self.close()
