"""The rules several parts of the code must agree on, written once as SQL expressions.

Who can be mailed, and which ledger rows a worker holds, are each decided here and nowhere else:
segments, the worker's claim, the list counts and the ledger's writers all build on these, so a
change to a rule changes every place it is applied.
"""

from __future__ import annotations

from sqlalchemy import BindParameter, ColumnElement, exists

from newsletter.db.models import Delivery, DeliveryStatus, Status, Subscriber, Suppression

# Statuses that mean "never mail this member again", whatever a segment asks for.
NEVER_MAILED = (Status.UNSUBSCRIBED, Status.BOUNCED, Status.COMPLAINED)


def not_suppressed() -> ColumnElement[bool]:
    """The member's address is on no suppression list (erased, bounced, complained, blocked)."""
    return ~exists().where(Suppression.email_hash == Subscriber.email_hash)


def reachable() -> ColumnElement[bool]:
    """Not unsubscribed, bounced or complained, and not suppressed: what every segment requires,
    even one that chooses pending members too."""
    return Subscriber.status.not_in(NEVER_MAILED) & not_suppressed()


def mailable() -> ColumnElement[bool]:
    """Can be mailed now: confirmed (active) and not suppressed. A campaign sends only to these."""
    return (Subscriber.status == Status.ACTIVE) & not_suppressed()


def held_by(worker: str | BindParameter[str]) -> ColumnElement[bool]:
    """A ledger row in flight whose lease `worker` holds: only the lease holder may write its result,
    so a worker whose lease ran out and was taken over writes nothing."""
    return (Delivery.status == DeliveryStatus.SENDING) & (Delivery.lease_owner == worker)
