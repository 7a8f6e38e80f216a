"""Looking after one member: find them, show everything held, unsubscribe, erase.

Used by the CLI when someone writes in, and by the subscriber web pages. A change of consent and its
record happen once however many requests ask for it at the same moment (mail providers retry one-click
unsubscriptions, and several may act on one message): the change is a conditional UPDATE, and only the
request whose UPDATE changed the row writes the record, in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Executable, bindparam, delete, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from newsletter.audience import addresses
from newsletter.audience.consent import Action, record
from newsletter.db.database import insert_in
from newsletter.db.models import (
    ConsentRecord,
    MailingList,
    Status,
    Submission,
    SubmissionStatus,
    Subscriber,
    SubscriberTopic,
    Subscription,
    Suppression,
    Topic,
    utcnow,
)
from newsletter.errors import UserError


@dataclass(frozen=True)
class MemberView:
    """Everything held about one member, for `subscribers show` and the data export page."""

    subscriber: Subscriber
    lists: list[tuple[str, bool]]  # (list slug, still subscribed)
    topics: list[str]
    consent: list[ConsentRecord]
    suppressed: str | None  # the suppression reason, if the address is suppressed


def find(session: Session, email: str) -> Subscriber | None:
    """The member with this address, matched case-insensitively; None if there is none."""
    try:
        normal = addresses.normalise(email)
    except addresses.InvalidAddress:
        return None
    return session.scalar(select(Subscriber).where(Subscriber.email_key == addresses.key(normal)))


def require(session: Session, email: str) -> Subscriber:
    member = find(session, email)
    if member is None:
        erased = _suppression(session, email)
        if erased == "erased":
            raise UserError(f"{email}: this address was erased at the member's request; nothing is held")
        raise UserError(f"{email}: no member with this address")
    return member


def describe(session: Session, member: Subscriber) -> MemberView:
    lists = session.execute(
        select(MailingList.slug, Subscription.subscribed)
        .join(Subscription, Subscription.list_id == MailingList.id)
        .where(Subscription.subscriber_id == member.id)
        .order_by(MailingList.slug)
    ).all()
    topics = session.scalars(
        select(Topic.slug)
        .join(SubscriberTopic, SubscriberTopic.topic_id == Topic.id)
        .where(SubscriberTopic.subscriber_id == member.id)
        .order_by(Topic.slug)
    ).all()
    consent = session.scalars(
        select(ConsentRecord)
        .where(ConsentRecord.subscriber_id == member.id)
        .order_by(ConsentRecord.created_at, ConsentRecord.id)
    ).all()
    return MemberView(
        member,
        [(slug, bool(on)) for slug, on in lists],
        list(topics),
        list(consent),
        _suppression(session, member.email),
    )


def unsubscribe(
    session: Session, member: Subscriber, source: str, list_slug: str | None = None, **how: str | None
) -> str:
    """Leave one list, or everything; recorded as consent withdrawn. Returns what happened, in words.

    Asked twice, even at the same moment, it records one withdrawal: the second finds it done.
    """
    if list_slug is not None:
        list_id = session.scalar(select(MailingList.id).where(MailingList.slug == list_slug))
        if list_id is None or not _leave_list(session, member, list_id):
            return f"{member.email} is not on the list '{list_slug}'"
        record(session, Action.LEFT_LIST, source, subscriber_id=member.id, list_id=list_id, **how)
        return f"{member.email} has left the list '{list_slug}'"
    now = utcnow()
    changed = {"status": Status.UNSUBSCRIBED, "unsubscribed_at": now, "updated_at": now}
    if not change_status(session, member, STILL_SUBSCRIBED, changed):
        return f"{member.email} was already unsubscribed"
    record(session, Action.UNSUBSCRIBED, source, subscriber_id=member.id, **how)
    return f"{member.email} is unsubscribed from everything"


STILL_SUBSCRIBED = tuple(status for status in Status if status != Status.UNSUBSCRIBED)


def _leave_list(session: Session, member: Subscriber, list_id: int) -> bool:
    """`UPDATE subscriptions SET subscribed = false WHERE ... AND subscribed`: True if this call did it."""
    result = session.execute(
        update(Subscription)
        .where(
            Subscription.subscriber_id == member.id,
            Subscription.list_id == list_id,
            Subscription.subscribed.is_(True),
        )
        .values(subscribed=False, updated_at=utcnow())
        .execution_options(synchronize_session="fetch")
    )
    return bool(result.rowcount)


def change_status(
    session: Session, member: Subscriber, when: Iterable[Status], values: dict[str, Any]
) -> bool:
    """`UPDATE subscribers SET values WHERE id = member AND status IN when`: True if this call changed
    the row (and `member` now shows it), False if it was not in one of those states, or another request
    changed it first (`member` is reloaded). The row count decides, so whatever the races, a change of
    status and its consent record are written once."""
    result = session.execute(
        update(Subscriber)
        .where(Subscriber.id == member.id, Subscriber.status.in_(list(when)))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        session.refresh(member)
        return False
    for name, value in values.items():
        set_committed_value(member, name, value)
    return True


def erase(session: Session, member: Subscriber, source: str) -> None:
    """Delete everything held about the member; keep only the hash that stops them being mailed or re-imported,
    and what they sent the editors, no longer naming them (`_unname_submissions`)."""
    digest = member.email_hash
    existing = session.scalar(select(Suppression).where(Suppression.email_hash == digest))
    if existing is None:
        session.add(
            Suppression(email_hash=digest, email=None, reason="erased", source=source, created_at=utcnow())
        )
    else:
        existing.email, existing.reason, existing.source = None, "erased", source
    _unname_submissions(session, member.id)
    session.execute(delete(Subscriber).where(Subscriber.id == member.id))  # submissions' member: NULL (FK)
    record(session, Action.ERASED, source, email_hash=digest)


def _unname_submissions(session: Session, member_id: int) -> None:
    """What the member sent the editors stops saying who sent it. An accepted submission keeps its
    organisation and whether to credit it: the issue already credits that organisation, not the person.
    Any other keeps neither, since nothing published speaks for it."""
    mine = Submission.subscriber_id == member_id
    accepted = Submission.status == SubmissionStatus.ACCEPTED
    session.execute(update(Submission).where(mine, accepted).values(name=""))
    session.execute(update(Submission).where(mine, ~accepted).values(name="", organisation="", credit=False))


def suppress(session: Session, email: str, reason: str, source: str, keep_address: bool = True) -> bool:
    """Never mail this address again (hard bounce, complaint, manual block). False if it already was.

    One INSERT that does nothing if the address is already suppressed, built once: no read first, so
    nothing pending in the session need be flushed before it (a bounce mailbox records hundreds at a
    time), and through Core, since nothing here is an object the session tracks."""
    result = session.connection().execute(
        _suppress_statement(session.get_bind().dialect.name),
        _suppression_row(email, reason, source, keep_address, utcnow()),
    )
    return result.first() is not None  # a row comes back only if one was inserted (rowcount may be -1)


def _suppression_row(
    email: str, reason: str, source: str, keep_address: bool, now: dt.datetime
) -> dict[str, Any]:
    """A `suppressions` row for `_suppress_statement`: the address kept only as its hash unless asked."""
    normal = addresses.normalise(email)
    return {
        "email_hash": addresses.address_hash(normal),
        "email": normal if keep_address else None,
        "reason": reason,
        "source": source,
        "created_at": now,
    }


@functools.cache
def _suppress_statement(dialect: str, returning: bool = True) -> Executable:
    statement = insert_in(dialect)(Suppression).on_conflict_do_nothing(
        index_elements=[Suppression.email_hash]
    )
    return statement.returning(Suppression.id) if returning else statement


# Members a dead address or a complaint moves to `bounced` or `complained`; one who unsubscribed stays
# unsubscribed (their own choice is what `subscribers show` and `bounces undo` must go on seeing).
STILL_JOINED = (Status.PENDING, Status.ACTIVE)


def bounced(session: Session, subscriber_id: int, email: str, source: str) -> bool:
    """The address does not exist: suppressed, and its member marked bounced. What `audience.bouncing`
    does for a hard bounce, whether the worker was refused (`delivery.ledger.record`) or the bounce came
    back later (`bounces.scoring`). True if the member's status changed."""
    suppress(session, email, "bounced", source[:200])
    now = utcnow()
    result = session.connection().execute(_BOUNCED, {"member": subscriber_id, "now": now})
    loaded = session.identity_map.get(identity_key(Subscriber, subscriber_id))
    if result.rowcount and loaded is not None:  # the member as this session holds it shows the change
        set_committed_value(loaded, "status", Status.BOUNCED)
        set_committed_value(loaded, "updated_at", now)
    return bool(result.rowcount)


def bounced_many(session: Session, bounces: list[tuple[int, str, str]]) -> None:
    """`bounced` for many (member id, address, why) at once: two statements however many there are (a
    mailbox's batch of reports). The members this session holds are not brought up to date."""
    now = utcnow()
    rows = [_suppression_row(email, "bounced", source[:200], True, now) for _member, email, source in bounces]
    connection = session.connection()
    connection.execute(_suppress_statement(session.get_bind().dialect.name, returning=False), rows)
    connection.execute(_BOUNCED, [{"member": member, "now": now} for member, _email, _source in bounces])


# `bounced`'s UPDATE, built once (Core: the member this session holds is brought up to date by hand;
# the states as ORs, since an IN list is expanded anew on every execution).
_BOUNCED = (
    update(Subscriber)
    .where(
        Subscriber.id == bindparam("member"), or_(*(Subscriber.status == status for status in STILL_JOINED))
    )
    .values(status=Status.BOUNCED, updated_at=bindparam("now"))
)


def _suppression(session: Session, email: str) -> str | None:
    try:
        digest = addresses.address_hash(addresses.normalise(email))
    except addresses.InvalidAddress:
        return None
    return session.scalar(select(Suppression.reason).where(Suppression.email_hash == digest))
