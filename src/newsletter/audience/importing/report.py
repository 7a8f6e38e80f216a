"""The import's report: every row rejected or skipped, with its line and why."""

from __future__ import annotations

from pathlib import Path
from typing import IO

from newsletter import csvsafe


class Report:
    """Rejected and skipped rows with their line and reason, written as they come; no file if none.

    Written by the same formula-safe writer as the export: a rejected `=HYPERLINK(...)` cell is the
    likeliest cell of all to be hostile, and the report is made to be opened in a spreadsheet.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file: IO[str] | None = None
        self.writer: csvsafe.Writer | None = None
        self.rows = 0

    def __enter__(self) -> Report:
        return self

    def write(self, line: int, email: str, reason: str) -> None:
        if self.file is None or self.writer is None:
            self.file = self.path.open("w", encoding="utf-8", newline="")
            self.writer = csvsafe.writer(self.file)
            self.writer.writerow(["line", "email", "reason"])
        self.writer.writerow([line, email[:320], reason])
        self.rows += 1

    def discard(self) -> None:
        """Nothing was imported after all: no report either."""
        if self.file is not None:
            self.file.close()
            self.file = None
            self.writer = None
            self.rows = 0
            self.path.unlink(missing_ok=True)

    def __exit__(self, *exc: object) -> None:
        if self.file is not None:
            self.file.close()
