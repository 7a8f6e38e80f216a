"""CSV import: stream members in, in constant memory, rejecting bad rows with their line and reason.

What an editor's spreadsheet throws at us: UTF-8 with or without a BOM,
commas or semicolons (Excel's choice depends on the locale), extra columns
(kept as attributes), missing columns, mixed-case and duplicate addresses,
names with line breaks, ten-thousand-character cells. Every row is either
imported or written to the rejection report with its line and why.

Safety rules: an import never re-activates anyone who unsubscribed, bounced
or complained, never brings back an erased or suppressed address, and never
re-joins someone to a list they left. It runs in one transaction: a file
that turns out not to be UTF-8 halfway through leaves the database as it was.

Speed: rows are handled in batches (one lookup query per batch, bulk
inserts and updates), so a million rows take well under a minute on SQLite.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection, bindparam, update

from newsletter import csvsafe
from newsletter.audience import addresses
from newsletter.audience.consent import Action, BulkRecords
from newsletter.audience.sync import sync_vocabulary
from newsletter.db.bulk import BulkInsert, KeyLookup
from newsletter.db.database import Database
from newsletter.db.models import (
    Format,
    Status,
    Subscriber,
    SubscriberTopic,
    Subscription,
    Suppression,
    utcnow,
)
from newsletter.errors import UserError, display_path
from newsletter.vocabulary import LANGUAGE_TAG, Vocabulary

BATCH = 5000
SUBSCRIBER_COLUMNS = (
    "email",
    "email_key",
    "email_hash",
    "name",
    "organisation",
    "sector",
    "region",
    "place",
    "language",
    "format",
    "status",
    "attributes",
    "created_at",
    "updated_at",
    "unsubscribed_at",
)
SNIFF_BYTES = 64 * 1024
LIMITS = {"name": 200, "organisation": 200, "place": 200}
ATTRIBUTE_LIMIT = 1000
PROFILE = ("name", "organisation", "sector", "region", "place", "language", "format")
EXISTING_COLUMNS = ("id", "email_key", "status", "attributes", *PROFILE)
ALIASES = {
    "e-mail": "email",
    "email_address": "email",
    "e-mail_address": "email",
    "full_name": "name",
    "organization": "organisation",
    "org": "organisation",
    "topic": "topics",
    "list": "lists",
}
# Columns our own export writes that are not member details to copy. `joined` is used for new
# members only (keeping the date from the tool a list moves from); `confirmed` is not copied.
EXPORT_ONLY = ("joined", "confirmed")
SAFER_STATUSES = {Status.UNSUBSCRIBED, Status.BOUNCED, Status.COMPLAINED}
FORMULA_MARK = re.compile(r"^'(?=[=+\-@\t\r])")


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


@dataclass(slots=True)
class _Row:
    line: int
    email: str
    key: str
    hash: str
    profile: dict[str, Any]
    topics: list[str]
    lists: list[str]
    attributes: dict[str, str]
    status: Status | None
    joined: dt.datetime | None


class Rejected(Exception):
    """One row cannot be imported; the message is the reason shown in the report."""


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
    _check_file(path)
    source = source or f"import:{path.name}"
    report_path = report_path or path.with_name(f"{path.stem}-import-report.csv")
    summary = ImportSummary()
    with path.open("rb") as raw, _Report(report_path) as report:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        line = 1
        try:
            with database.engine.begin() as connection:
                run = _Run(connection, vocabulary, source, lists, summary, report)
                header_line = text.readline()
                dialect = _dialect(header_line)
                columns = run.read_header(header_line, dialect, path)
                batch: list[_Row] = []
                for line, cells in _numbered(csv.reader(text, dialect), start_line=2):
                    parsed = run.parse(line, columns, cells)
                    if parsed is not None:
                        batch.append(parsed)
                    if len(batch) >= BATCH:
                        run.store(batch)
                        batch = []
                        if progress:
                            progress(raw.tell())
                run.store(batch)
                if progress:
                    progress(raw.tell())
        except UnicodeDecodeError:
            report.discard()
            raise UserError(
                f"{display_path(path)}:{line + 1}: is not UTF-8 text from about here on; nothing was imported. "
                f"In Excel use Save As > 'CSV UTF-8'"
            ) from None
        except csv.Error as error:
            report.discard()
            raise UserError(
                f"{display_path(path)}:{line + 1}: not valid CSV ({error}); nothing was imported"
            ) from None
        except UserError:
            report.discard()
            raise
    summary.report = report_path if report.rows else None
    return summary


class _Run:
    """The state of one import: vocabulary ids, addresses seen so far, the counts."""

    def __init__(
        self,
        connection: Connection,
        vocabulary: Vocabulary,
        source: str,
        lists: tuple[str, ...],
        summary: ImportSummary,
        report: _Report,
    ) -> None:
        from sqlalchemy.orm import Session

        with Session(bind=connection) as session:
            self.topic_ids, self.list_ids = sync_vocabulary(session, vocabulary)
        if connection.dialect.name == "sqlite":
            # A 64 MB page cache for this connection keeps the unique-email index in memory as it grows.
            connection.exec_driver_sql("PRAGMA cache_size=-65536")
        self.connection = connection
        self.vocabulary = vocabulary
        self.source = source
        self.extra_lists = list(lists)
        self.summary = summary
        self.report = report
        # 8-byte digests of every address seen: duplicates in the file are caught in ~50 MB per million.
        self.seen: set[int] = set()
        self.columns: list[str] = []
        self.word_cache: dict[tuple[str, str], list[str]] = {}
        self.insert_subscribers = BulkInsert(connection, Subscriber.__table__, SUBSCRIBER_COLUMNS)
        self.find_members = KeyLookup(connection, Subscriber.__table__, "email_key", EXISTING_COLUMNS)
        self.find_ids = KeyLookup(connection, Subscriber.__table__, "email_key", ("email_key", "id"))
        self.find_suppressed = KeyLookup(
            connection, Suppression.__table__, "email_hash", ("email_hash", "reason")
        )
        self.find_topics = KeyLookup(
            connection, SubscriberTopic.__table__, "subscriber_id", ("subscriber_id", "topic_id")
        )
        self.find_lists = KeyLookup(
            connection, Subscription.__table__, "subscriber_id", ("subscriber_id", "list_id")
        )
        self.insert_consent = BulkRecords(connection)  # the same rows `consent.record` writes
        self.insert_topics = BulkInsert(connection, SubscriberTopic.__table__, ("subscriber_id", "topic_id"))
        self.insert_subscriptions = BulkInsert(
            connection,
            Subscription.__table__,
            ("subscriber_id", "list_id", "subscribed", "created_at", "updated_at"),
        )

    def read_header(self, header_line: str, dialect: type[csv.Dialect], path: Path) -> list[str]:
        names = next(csv.reader([header_line], dialect), [])
        columns = [ALIASES.get(_column(name), _column(name)) for name in names]
        if "email" not in columns:
            found = ", ".join(name.strip() for name in names if name.strip()) or "none"
            raise UserError(f"{display_path(path)}:1: no 'email' column (columns found: {found})")
        duplicates = sorted({c for c in columns if c and columns.count(c) > 1})
        if duplicates:
            raise UserError(f"{display_path(path)}:1: the column '{duplicates[0]}' appears twice")
        known = {"email", "topics", "lists", "status", "attributes", *PROFILE, *EXPORT_ONLY}
        self.summary.attribute_columns = [c for c in columns if c and c not in known]
        self.columns = columns
        return columns

    def parse(self, line: int, columns: list[str], cells: list[str]) -> _Row | None:
        """Check one row; a bad row goes to the report and returns None."""
        if not "".join(cells).strip():
            return None  # a blank line: spreadsheets end with them
        try:
            if len(cells) > len(columns):
                raise Rejected(f"has {len(cells)} values but the header names {len(columns)} columns")
            stripped = [cell.strip() for cell in cells]
            if "\x00'" in "\x00" + "\x00".join(stripped):  # some cell starts with an apostrophe
                stripped = [_unmark(cell) for cell in stripped]
            return self._row(line, dict(zip(columns, stripped, strict=False)))
        except Rejected as reason:
            self.summary.rejected += 1
            self.report.write(
                line,
                cells[columns.index("email")] if len(cells) > columns.index("email") else "",
                str(reason),
            )
            return None

    def _row(self, line: int, values: dict[str, str]) -> _Row | None:
        try:
            email = addresses.normalise(values.get("email", ""))
        except addresses.InvalidAddress as error:
            raise Rejected(f"not an email address: {error}") from None
        key = addresses.key(email)
        email_hash = addresses.address_hash(email)
        digest = int(email_hash[:16], 16)
        if digest in self.seen:
            self.summary.skipped += 1
            self.report.write(line, email, "skipped: the same address as an earlier row")
            return None
        self.seen.add(digest)
        profile: dict[str, Any] = {}
        for column in ("name", "organisation", "place"):
            text = " ".join(values.get(column, "").split())  # line breaks and runs of spaces: one space
            if len(text) > LIMITS[column]:
                raise Rejected(f"{column} is {len(text)} characters; at most {LIMITS[column]}")
            if text:
                profile[column] = text
        for column, kind in (("sector", "sectors"), ("region", "regions")):
            word = values.get(column, "")
            if word:
                slug = self.vocabulary.lookup(kind, word)
                if slug is None:
                    raise Rejected(self.vocabulary.unknown(kind, word))
                profile[column] = slug
        if values.get("language"):
            if not LANGUAGE_TAG.match(values["language"]) or len(values["language"]) > 20:
                raise Rejected(
                    f"language must be a tag such as en-GB or cy, not '{_shorten(values['language'])}'"
                )
            profile["language"] = values["language"]
        if values.get("format"):
            try:
                profile["format"] = Format(values["format"].lower())
            except ValueError:
                raise Rejected(f"format must be html or text, not '{values['format']}'") from None
        joined = None
        if values.get("joined"):
            try:
                joined = dt.datetime.fromisoformat(values["joined"])
            except ValueError:
                raise Rejected(
                    f"joined must be a date (YYYY-MM-DD), not '{_shorten(values['joined'])}'"
                ) from None
        status = None
        if values.get("status"):
            try:
                status = Status(values["status"].lower())
            except ValueError:
                raise Rejected(
                    f"status '{values['status']}' is not one of {', '.join(s.value for s in Status)}"
                ) from None
        return _Row(
            line=line,
            email=email,
            key=key,
            hash=email_hash,
            profile=profile,
            topics=self._words("topics", values.get("topics", "")),
            lists=self._words("lists", values.get("lists", "")) + self.extra_lists,
            attributes=self._attributes(values),
            status=status,
            joined=_utc(joined) if joined else None,
        )

    def _words(self, kind: str, cell: str) -> list[str]:
        """`housing; Early years` -> slugs; the few distinct cells of a big file are parsed once."""
        cached = self.word_cache.get((kind, cell))
        if cached is not None:
            return list(cached)
        slugs = self._parse_words(kind, cell)
        if len(self.word_cache) < 50_000:
            self.word_cache[(kind, cell)] = slugs
        return list(slugs)

    def _parse_words(self, kind: str, cell: str) -> list[str]:
        slugs = []
        for word in re.split(r"[;,|]", cell):
            if word.strip():
                slug = self.vocabulary.lookup(kind, word)
                if slug is None:
                    raise Rejected(self.vocabulary.unknown(kind, word))
                slugs.append(slug)
        return list(dict.fromkeys(slugs))

    def _attributes(self, values: dict[str, str]) -> dict[str, str]:
        attributes: dict[str, str] = {}
        if values.get("attributes"):
            try:
                loaded = json.loads(values["attributes"])
            except json.JSONDecodeError:
                raise Rejected(
                    "attributes must be JSON, as `newsletter subscribers export` writes it"
                ) from None
            if not isinstance(loaded, dict):
                raise Rejected("attributes must be a JSON object")
            attributes.update({str(k): str(v) for k, v in loaded.items()})
        for column in self.summary.attribute_columns:
            value = values.get(column, "")
            if len(value) > ATTRIBUTE_LIMIT:
                raise Rejected(f"{column} is {len(value)} characters; at most {ATTRIBUTE_LIMIT}")
            if value:
                attributes[column] = value
        return attributes

    def store(self, batch: list[_Row]) -> None:
        """Write one batch: look up who exists, insert the new, update the changed."""
        if not batch:
            return
        existing = {
            values[1]: dict(zip(EXISTING_COLUMNS, values, strict=True))
            for values in self.find_members([row.key for row in batch])
        }
        suppressed = dict(self.find_suppressed([row.hash for row in batch]))
        now = utcnow()
        new_rows: list[_Row] = []
        updates: list[dict[str, Any]] = []
        joined: list[tuple[int, _Row]] = []
        for row in batch:
            reason = suppressed.get(row.hash)
            if reason is not None:
                self.summary.skipped += 1
                why = "erased at their request" if reason == "erased" else f"suppressed ({reason})"
                self.report.write(row.line, row.email, f"skipped: {why}; never imported again")
                continue
            current = existing.get(row.key)
            if current is None:
                new_rows.append(row)
                continue
            change = self._changes(current, row)
            if change:
                updates.append({"b_id": current["id"], **change, "updated_at": now})
            joined.append((current["id"], row))
        ids = self._insert(new_rows, now)
        if updates:
            self._update(updates)
            # A status change is a change of consent: it goes into the member's history.
            statuses = [(values["b_id"], values["status"]) for values in updates if "status" in values]
            activated = [(member, None) for member, status in statuses if status == Status.ACTIVE]
            left = [(member, None) for member, status in statuses if status != Status.ACTIVE]
            self.insert_consent(Action.IMPORTED, self.source, activated, created_at=now)
            self.insert_consent(Action.UNSUBSCRIBED, self.source, left, created_at=now)
        self._link([(ids[row.key], row) for row in new_rows], new=True)
        gained = self._link(joined, new=False)
        self.summary.added += len(new_rows)
        changed_ids = {update["b_id"] for update in updates} | gained
        for subscriber_id, _row in joined:
            if subscriber_id in changed_ids:
                self.summary.updated += 1
            else:
                self.summary.unchanged += 1

    def _changes(self, current: Any, row: _Row) -> dict[str, Any]:
        """Details the file changes; empty cells never blank what is held; status only ever gets safer."""
        change = {column: value for column, value in row.profile.items() if current[column] != value}
        merged = {**(current["attributes"] or {}), **row.attributes}
        if merged != (current["attributes"] or {}):
            change["attributes"] = merged
        status = current["status"]
        if row.status in SAFER_STATUSES and status not in SAFER_STATUSES:
            change["status"] = row.status
            change["unsubscribed_at"] = utcnow()
        elif status == Status.PENDING and row.status in (None, Status.ACTIVE):
            change["status"] = Status.ACTIVE  # the import vouches for consent they had not yet confirmed
        return change

    def _insert(self, rows: list[_Row], now: Any) -> dict[str, int]:
        """Insert new members and their consent records; return email key -> id."""
        if not rows:
            return {}
        self.insert_subscribers(
            (
                row.email,
                row.key,
                row.hash,
                row.profile.get("name", ""),
                row.profile.get("organisation", ""),
                row.profile.get("sector"),
                row.profile.get("region"),
                row.profile.get("place", ""),
                row.profile.get("language", "en-GB"),
                row.profile.get("format", Format.HTML),
                row.status if row.status in SAFER_STATUSES or row.status == Status.PENDING else Status.ACTIVE,
                row.attributes,
                row.joined or now,
                now,
                now if row.status in SAFER_STATUSES else None,
            )
            for row in rows
        )
        ids = dict(self.find_ids([row.key for row in rows]))
        self.insert_consent(
            Action.IMPORTED, self.source, ((ids[row.key], None) for row in rows), created_at=now
        )
        return ids

    def _update(self, updates: list[dict[str, Any]]) -> None:
        """Bulk UPDATE, grouped by which columns change (one executemany per shape)."""
        shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for update_values in updates:
            shapes.setdefault(tuple(sorted(update_values)), []).append(update_values)
        for shape, rows in shapes.items():
            columns = [column for column in shape if column != "b_id"]
            statement = (
                update(Subscriber)
                .where(Subscriber.id == bindparam("b_id"))
                .values({column: bindparam(column) for column in columns})
            )
            self.connection.execute(statement, rows)

    def _link(self, members: list[tuple[int, _Row]], new: bool) -> set[int]:
        """Add topics and list memberships; returns the ids of existing members who gained any."""
        if not members:
            return set()
        ids = [subscriber_id for subscriber_id, _ in members]
        have_topics: set[tuple[int, int]] = set()
        have_lists: set[tuple[int, int]] = set()
        if not new:
            have_topics = set(self.find_topics(ids))
            # Any row, subscribed or not: someone who left a list is never put back on it by an import.
            have_lists = set(self.find_lists(ids))
        now = utcnow()
        topic_rows, list_rows, gained = [], [], set()
        for subscriber_id, row in members:
            for slug in row.topics:
                pair = (subscriber_id, self.topic_ids[slug])
                if pair not in have_topics:
                    topic_rows.append(pair)
                    gained.add(subscriber_id)
            for slug in row.lists:
                pair = (subscriber_id, self.list_ids[slug])
                if pair not in have_lists:
                    have_lists.add(pair)
                    list_rows.append(pair)
                    gained.add(subscriber_id)
        self.insert_topics(topic_rows)
        self.insert_subscriptions((member, list_id, True, now, now) for member, list_id in list_rows)
        if not new:
            self.insert_consent(Action.JOINED_LIST, self.source, list_rows, created_at=now)
        return gained if not new else set()


class _Report:
    """Rejected and skipped rows with their line and reason, written as they come; no file if none.

    Written by the same formula-safe writer as the export: a rejected `=HYPERLINK(...)` cell is the
    likeliest cell of all to be hostile, and the report is made to be opened in a spreadsheet.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file: IO[str] | None = None
        self.writer: csvsafe.Writer | None = None
        self.rows = 0

    def __enter__(self) -> _Report:
        return self

    def write(self, line: int, email: str, reason: str) -> None:
        if self.file is None or self.writer is None:
            self.file = self.path.open("w", encoding="utf-8", newline="")
            self.writer = csvsafe.writer(self.file)
            self.writer.writerow(["line", "email", "reason"])
        self.writer.writerow([line, email[:320], reason])
        self.rows += 1

    def discard(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None
            self.writer = None
            self.rows = 0
            self.path.unlink(missing_ok=True)

    def __exit__(self, *exc: object) -> None:
        if self.file is not None:
            self.file.close()


def _check_file(path: Path) -> None:
    """Refuse, before touching the database, a file that is missing, binary or not UTF-8 at the start."""
    shown = display_path(path)
    if not path.exists():
        raise UserError(f"{shown}: no such file")
    if path.is_dir():
        raise UserError(f"{shown}: is a folder, not a CSV file")
    try:
        with path.open("rb") as raw:
            head = raw.read(SNIFF_BYTES)
    except OSError as error:
        raise UserError(f"{shown}: cannot be read: {error.strerror}") from None
    if head.startswith(b"PK\x03\x04"):
        raise UserError(f"{shown}: is a spreadsheet workbook, not CSV; in Excel use Save As > 'CSV UTF-8'")
    if b"\x00" in head:
        raise UserError(f"{shown}: is not a text file (it contains NUL bytes); export it as CSV UTF-8")
    try:
        head.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        if error.start < len(head) - 4:  # not merely a character cut at the end of the sample
            line = head[: error.start].count(b"\n") + 1
            raise UserError(
                f"{shown}:{line}: is not UTF-8 text; nothing was imported. In Excel use Save As > 'CSV UTF-8'"
            ) from None
    if not head.strip():
        raise UserError(f"{shown}: is empty")


def _dialect(header_line: str) -> type[csv.Dialect]:
    """Comma, semicolon or tab, whichever the header uses most (Excel writes ';' in many locales)."""
    counts = {delimiter: header_line.count(delimiter) for delimiter in (",", ";", "\t")}
    delimiter = max(counts, key=lambda d: counts[d])

    class Dialect(csv.excel):
        pass

    Dialect.delimiter = delimiter if counts[delimiter] else ","
    return Dialect


def _numbered(rows: Any, start_line: int) -> Iterator[tuple[int, list[str]]]:
    """Each row with the file line it starts on (a quoted cell may span lines)."""
    line = start_line
    for cells in rows:
        yield line, cells
        line = rows.line_num + 2  # line_num counts lines read after the header


def _utc(moment: dt.datetime) -> dt.datetime:
    """Stored times are UTC without a zone; a time given with an offset is converted, not cut."""
    return moment.astimezone(dt.UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _shorten(text: str, limit: int = 60) -> str:
    """A cell quoted in a reason, cut so one bad cell cannot make a 10,000-character reason."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _column(name: str) -> str:
    return re.sub(r"[\s]+", "_", name.strip().lower())


def _unmark(cell: str) -> str:
    """Drop the apostrophe our export puts before formula-like text (`'=SUM` -> `=SUM`)."""
    return FORMULA_MARK.sub("", cell) if cell.startswith("'") else cell
