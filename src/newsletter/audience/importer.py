"""CSV import: stream members in, in constant memory, rejecting bad rows with their line and reason.

What an editor's spreadsheet throws at us: UTF-8 with or without a BOM,
commas or semicolons (Excel's choice depends on the locale), extra columns
(kept as attributes), missing columns, mixed-case and duplicate addresses,
names with line breaks, ten-thousand-character cells. Every row is either
imported or written to the rejection report with its line and why.

The steps live in `audience.importing`: `read` the file, `check` each row
(with the member's own rules from `audience.profile`), `write` the rows in
batches, `report` what was left out. This module runs them.

Safety rules: an import never re-activates anyone who unsubscribed, bounced
or complained, never brings back an erased or suppressed address, and never
re-joins someone to a list they left. It runs in one transaction: a file
that turns out not to be UTF-8 halfway through leaves the database as it was.

Speed: rows are handled in batches (one lookup query per batch, bulk
inserts and updates), so a million rows take well under a minute on SQLite.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import Connection

from newsletter.audience.importing import read
from newsletter.audience.importing.check import Checker, Rejected, Row, Skipped
from newsletter.audience.importing.read import SNIFF_BYTES
from newsletter.audience.importing.report import Report
from newsletter.audience.importing.write import Writer
from newsletter.audience.profile import FieldProblem
from newsletter.db.database import Database, refresh_statistics
from newsletter.db.models import Subscriber, SubscriberTopic, Subscription
from newsletter.errors import UserError, display_path
from newsletter.vocabulary import Vocabulary

__all__ = ["BATCH", "SNIFF_BYTES", "ImportSummary", "import_csv"]

BATCH = 5000


@dataclass
class ImportSummary:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    rejected: int = 0
    attribute_columns: list[str] = field(default_factory=list)
    report: Path | None = None

    @property
    def rows(self) -> int:
        return self.added + self.updated + self.unchanged + self.skipped + self.rejected

    def __str__(self) -> str:
        return (
            f"{self.rows} rows: {self.added} added, {self.updated} updated, {self.unchanged} unchanged, "
            f"{self.skipped} skipped, {self.rejected} rejected"
        )


def import_csv(
    database: Database,
    vocabulary: Vocabulary,
    path: Path,
    *,
    source: str | None = None,
    lists: tuple[str, ...] = (),
    report_path: Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportSummary:
    """Import one CSV file; returns the counts. Raises `UserError` (and writes nothing) for an unusable file."""
    for slug in lists:
        if slug not in vocabulary.lists:
            raise UserError(f"--list {slug}: {vocabulary.unknown('lists', slug)}")
    read.check_file(path)
    report_path = report_path or path.with_name(f"{path.stem}-import-report.csv")
    summary = ImportSummary()
    with path.open("rb") as raw, Report(report_path) as report:
        run = _Run(vocabulary, source or f"import:{path.name}", lists, summary, report, progress)
        rows = read.Rows(io.TextIOWrapper(raw, encoding="utf-8-sig", newline=""))
        try:
            with database.engine.begin() as connection:
                run(connection, rows, raw, path)
                # Segments and the worker's claim read these by key: tell the planner how big they are now.
                refresh_statistics(
                    connection, [Subscriber.__table__, SubscriberTopic.__table__, Subscription.__table__]
                )
        except UnicodeDecodeError:
            report.discard()
            raise UserError(
                f"{display_path(path)}:{rows.line + 1}: is not UTF-8 text from about here on; nothing was imported. "
                f"In Excel use Save As > 'CSV UTF-8'"
            ) from None
        except csv.Error as error:
            report.discard()
            raise UserError(
                f"{display_path(path)}:{rows.line + 1}: not valid CSV ({error}); nothing was imported"
            ) from None
        except UserError:
            report.discard()
            raise
    summary.report = report_path if report.rows else None
    return summary


@dataclass
class _Run:
    """One import, in its transaction: rows read, checked, gathered into batches and written."""

    vocabulary: Vocabulary
    source: str
    lists: tuple[str, ...]
    summary: ImportSummary
    report: Report
    progress: Callable[[int], None] | None

    def __call__(self, connection: Connection, rows: read.Rows, raw: BinaryIO, path: Path) -> None:
        writer = Writer(connection, self.vocabulary, self.source, self.summary, self.report)
        checker = Checker(self.vocabulary, rows.header(path), self.lists)
        self.summary.attribute_columns = checker.attribute_columns
        batch: list[Row] = []
        for line, written, cells in rows:
            try:
                batch.append(checker.row(line, cells))
            except Skipped as skipped:
                self.summary.skipped += 1
                self.report.write(line, skipped.email, skipped.reason)
            except (Rejected, FieldProblem) as reason:
                self.summary.rejected += 1
                self.report.write(line, checker.email_cell(written), str(reason))
            if len(batch) >= BATCH:
                writer.store(batch)
                batch = []
                self._progress(raw)
        writer.store(batch)
        self._progress(raw)

    def _progress(self, raw: BinaryIO) -> None:
        if self.progress:
            self.progress(raw.tell())
