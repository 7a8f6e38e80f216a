"""A server a `with` block starts and always stops: the sink and the test servers share this."""

from __future__ import annotations

import signal
import subprocess
from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self


class Running(ABC):
    """`with server:` calls `start()`, and `stop()` however the block ends."""

    @abstractmethod
    def start(self) -> None:
        """Begin serving; raise if that is impossible."""

    @abstractmethod
    def stop(self) -> None:
        """Stop serving; safe to call twice."""

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def terminate(process: subprocess.Popen[bytes], seconds: float = 10) -> None:
    """Stop a child process as Ctrl-C would (SIGTERM: it finishes cleanly), killing it only if it has
    not stopped within `seconds`."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=seconds)
