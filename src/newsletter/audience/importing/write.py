"""Writing checked rows, a batch at a time: one lookup query per batch, bulk inserts and updates.

Safety rules: an import never re-activates anyone who unsubscribed, bounced or complained, never
brings back an erased or suppressed address, and never re-joins someone to a list they left. Every
change of consent (a new member, a status, a list joined) gets its consent record, through the same
rows `consent.record` writes (`consent.BulkRecords`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, bindparam, update
from sqlalchemy.orm import Session

from newsletter.audience.consent import Action, BulkRecords
from newsletter.audience.importing.check import Row
from newsletter.audience.importing.report import Report
from newsletter.audience.profile import FIELDS
from newsletter.audience.sync import sync_vocabulary
from newsletter.db.bulk import BulkInsert, KeyLookup
from newsletter.db.models import (
    Format,
    Status,
    Subscriber,
    SubscriberTopic,
    Subscription,
    Suppression,
    utcnow,
)
from newsletter.db.rules import NEVER_MAILED  # an import never brings these back
from newsletter.vocabulary import Vocabulary

if TYPE_CHECKING:
    from newsletter.audience.importer import ImportSummary

SUBSCRIBER_COLUMNS = (
    "email",
    "email_key",
    "email_hash",
    *FIELDS,
    "status",
    "attributes",
    "created_at",
    "updated_at",
    "unsubscribed_at",
)
EXISTING_COLUMNS = ("id", "email_key", "status", "attributes", *FIELDS)


class Writer:
    """Writes the batches of one import on its connection, and counts what happened to each row."""

    def __init__(
        self,
        connection: Connection,
        vocabulary: Vocabulary,
        source: str,
        summary: ImportSummary,
        report: Report,
    ) -> None:
        with Session(bind=connection) as session:
            self.topic_ids, self.list_ids = sync_vocabulary(session, vocabulary)
        if connection.dialect.name == "sqlite":
            # A 64 MB page cache for this connection keeps the unique-email index in memory as it grows.
            connection.exec_driver_sql("PRAGMA cache_size=-65536")
        self.connection = connection
        self.source = source
        self.summary = summary
        self.report = report
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

    def store(self, batch: list[Row]) -> None:
        """Write one batch: look up who exists, insert the new, update the changed."""
        if not batch:
            return
        existing = {
            values[1]: dict(zip(EXISTING_COLUMNS, values, strict=True))
            for values in self.find_members([row.key for row in batch])
        }
        suppressed = dict(self.find_suppressed([row.hash for row in batch]))
        now = utcnow()
        new_rows: list[Row] = []
        updates: list[dict[str, Any]] = []
        joined: list[tuple[int, Row]] = []
        for row in batch:
            reason = suppressed.get(row.hash)
            if reason is not None:
                self._skip_suppressed(row, reason)
                continue
            current = existing.get(row.key)
            if current is None:
                new_rows.append(row)
                continue
            change = _changes(current, row)
            if change:
                updates.append({"b_id": current["id"], **change, "updated_at": now})
            joined.append((current["id"], row))
        ids = self._insert(new_rows, now)
        self._update(updates, now)
        self._link([(ids[row.key], row) for row in new_rows], new=True)
        gained = self._link(joined, new=False)
        self._count(new_rows, joined, {update["b_id"] for update in updates} | gained)

    def _skip_suppressed(self, row: Row, reason: str) -> None:
        self.summary.skipped += 1
        why = "erased at their request" if reason == "erased" else f"suppressed ({reason})"
        self.report.write(row.line, row.email, f"skipped: {why}; never imported again")

    def _count(self, new_rows: list[Row], joined: list[tuple[int, Row]], changed_ids: set[int]) -> None:
        self.summary.added += len(new_rows)
        for subscriber_id, _row in joined:
            if subscriber_id in changed_ids:
                self.summary.updated += 1
            else:
                self.summary.unchanged += 1

    def _insert(self, rows: list[Row], now: Any) -> dict[str, int]:
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
                row.status if row.status in NEVER_MAILED or row.status == Status.PENDING else Status.ACTIVE,
                row.attributes,
                row.joined or now,
                now,
                now if row.status in NEVER_MAILED else None,
            )
            for row in rows
        )
        ids = dict(self.find_ids([row.key for row in rows]))
        self.insert_consent(
            Action.IMPORTED, self.source, ((ids[row.key], None) for row in rows), created_at=now
        )
        return ids

    def _update(self, updates: list[dict[str, Any]], now: Any) -> None:
        """Bulk UPDATE, grouped by which columns change (one executemany per shape); a status change
        is a change of consent, so it goes into the member's history."""
        if not updates:
            return
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
        statuses = [(values["b_id"], values["status"]) for values in updates if "status" in values]
        activated = [(member, None) for member, status in statuses if status == Status.ACTIVE]
        left = [(member, None) for member, status in statuses if status != Status.ACTIVE]
        self.insert_consent(Action.IMPORTED, self.source, activated, created_at=now)
        self.insert_consent(Action.UNSUBSCRIBED, self.source, left, created_at=now)

    def _link(self, members: list[tuple[int, Row]], new: bool) -> set[int]:
        """Add topics and list memberships; returns the ids of existing members who gained any."""
        if not members:
            return set()
        have_topics: set[tuple[int, int]] = set()
        have_lists: set[tuple[int, int]] = set()
        if not new:
            ids = [subscriber_id for subscriber_id, _ in members]
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


def _changes(current: dict[str, Any], row: Row) -> dict[str, Any]:
    """Details the file changes; empty cells never blank what is held; status only ever gets safer."""
    change = {column: value for column, value in row.profile.items() if current[column] != value}
    merged = {**(current["attributes"] or {}), **row.attributes}
    if merged != (current["attributes"] or {}):
        change["attributes"] = merged
    status = current["status"]
    if row.status in NEVER_MAILED and status not in NEVER_MAILED:
        change["status"] = row.status
        change["unsubscribed_at"] = utcnow()
    elif status == Status.PENDING and row.status in (None, Status.ACTIVE):
        change["status"] = Status.ACTIVE  # the import vouches for consent they had not yet confirmed
    return change
