"""Consent records: every agreement and withdrawal, with when, how and on what wording.

UK GDPR and PECR ask the sender to prove consent; these rows are that proof.
Every change of a member's consent goes through `record`, so none is silent.
"""

from __future__ import annotations

import enum
from typing import Any

from sqlalchemy.orm import Session

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


def record(
    session: Session,
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
) -> ConsentRecord:
    """Add one consent record to the session (committed with the change it proves)."""
    entry = ConsentRecord(
        subscriber_id=subscriber_id,
        email_hash=email_hash,
        action=action.value,
        source=source[:200],
        list_id=list_id,
        wording_version=wording_version,
        ip_address=ip_address,
        user_agent=(user_agent or None) and user_agent[:400],
        details=details,
        created_at=utcnow(),
    )
    session.add(entry)
    return entry
