"""Consent records: every agreement and withdrawal, with when, how and on what wording.

UK GDPR and PECR ask the sender to prove consent; these rows are that proof.
Every change of a member's consent goes through this module, so none is silent:
`record` adds one row to a session (the web pages, the CLI), `BulkRecords`
writes many through `db.bulk` (an import of a million members). Both build
their rows with `fields`, the one place that says what a row holds, so a value
too long for its column (a 300-character `--source`, a browser's user agent)
is cut the same way whichever path wrote it.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, String
from sqlalchemy.orm import Session

from newsletter.db.bulk import BulkInsert
from newsletter.db.models import ConsentRecord, utcnow


class Action(enum.StrEnum):
    SUBSCRIBED = "subscribed"  # asked to join (double opt-in pending)
    CONFIRMED = "confirmed"  # confirmed by the link in the confirmation email
    IMPORTED = "imported"  # brought in by an import that vouches for consent
    JOINED_LIST = "joined_list"
    LEFT_LIST = "left_list"
    PREFERENCES = "preferences_changed"
    UNSUBSCRIBED = "unsubscribed"
    ERASED = "erased"
    COMPLAINED = "complained"  # reported our mail as spam: left everything (bounces/scoring.py)
    RESTORED = "restored"  # a bounce or complaint suppression undone by an editor (`bounces undo`)


# Every column a writer fills, in the order `BulkRecords` hands them to the driver: the two that
# vary from member to member first, then those an import's records share.
COLUMNS = (
    "subscriber_id",
    "list_id",
    "email_hash",
    "action",
    "source",
    "wording_version",
    "ip_address",
    "user_agent",
    "details",
    "created_at",
)
# The longest text each column holds, read from the table so the two cannot drift apart.
LIMITS = {
    column.name: column.type.length
    for column in ConsentRecord.__table__.columns
    if isinstance(column.type, String) and column.type.length
}


def fields(
    action: Action,
    source: str,
    *,
    subscriber_id: int | None = None,
    email_hash: str | None = None,
    list_id: int | None = None,
    wording_version: str | None = None,
    ip_address: str | None = None,
    user_agent: str | None = None,
    details: dict[str, Any] | None = None,
    created_at: dt.datetime | None = None,
) -> dict[str, Any]:
    """The column values of one consent record, each text cut to its column.

    PostgreSQL refuses a value longer than its VARCHAR and SQLite would keep it whole, so the
    cut happens here, once, for every writer: proof of consent must never fail to be written
    because of an over-long label, and must read the same on either database.
    """
    return {
        "subscriber_id": subscriber_id,
        "email_hash": _cut("email_hash", email_hash),
        "action": _cut("action", action.value),
        "source": _cut("source", source) or "",
        "list_id": list_id,
        "wording_version": _cut("wording_version", wording_version),
        "ip_address": _cut("ip_address", ip_address),
        "user_agent": _cut("user_agent", user_agent),
        "details": details,
        "created_at": created_at or utcnow(),
    }


def _cut(column: str, value: str | None) -> str | None:
    """`value` at most as long as `column` holds; an empty value is no value (None)."""
    if not value:
        return None
    return value[: LIMITS[column]]


def record(session: Session, action: Action, source: str, **values: Any) -> ConsentRecord:
    """Add one consent record to the session (committed with the change it proves).

    Takes the keyword arguments of `fields`.
    """
    entry = ConsentRecord(**fields(action, source, **values))
    session.add(entry)
    return entry


class BulkRecords:
    """Consent records for many members at once, inside an import's transaction (`db.bulk`).

    Each call writes one action from one source for many (member, list) pairs: the row is built
    once by `fields`, as `record` builds it, and only the member and list vary.
    """

    def __init__(self, connection: Connection) -> None:
        self._insert = BulkInsert(connection, ConsentRecord.__table__, COLUMNS)

    def __call__(
        self,
        action: Action,
        source: str,
        members: Iterable[tuple[int, int | None]],
        *,
        created_at: dt.datetime,
    ) -> None:
        """Write one record per (subscriber id, list id or None) in `members`."""
        shared = fields(action, source, created_at=created_at)
        rest = tuple(shared[column] for column in COLUMNS[2:])
        self._insert((subscriber_id, list_id, *rest) for subscriber_id, list_id in members)
