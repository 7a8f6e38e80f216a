"""A server a `with` block starts and always stops: the sink and the test servers share this."""

from __future__ import annotations

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
