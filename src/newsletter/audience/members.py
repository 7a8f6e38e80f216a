"""Looking after one member: find them, show everything held, unsubscribe, erase.

Used by the CLI when someone writes in, and by the subscriber web pages.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from newsletter.audience import addresses
from newsletter.audience.consent import Action, record
from newsletter.db.models import (
    ConsentRecord,
    MailingList,
    Status,
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
    """Leave one list, or everything; recorded as consent withdrawn. Returns what happened, in words."""
    if list_slug is not None:
        row = session.execute(
            select(Subscription, MailingList.id)
            .join(MailingList, MailingList.id == Subscription.list_id)
            .where(Subscription.subscriber_id == member.id, MailingList.slug == list_slug)
        ).first()
        if row is None or not row[0].subscribed:
            return f"{member.email} is not on the list '{list_slug}'"
        row[0].subscribed = False
        record(session, Action.LEFT_LIST, source, subscriber_id=member.id, list_id=row[1], **how)
        return f"{member.email} has left the list '{list_slug}'"
    if member.status == Status.UNSUBSCRIBED:
        return f"{member.email} was already unsubscribed"
    member.status = Status.UNSUBSCRIBED
    member.unsubscribed_at = utcnow()
    record(session, Action.UNSUBSCRIBED, source, subscriber_id=member.id, **how)
    return f"{member.email} is unsubscribed from everything"


def erase(session: Session, member: Subscriber, source: str) -> None:
    """Delete everything held about the member; keep only the hash that stops them being mailed or re-imported."""
    digest = member.email_hash
    existing = session.scalar(select(Suppression).where(Suppression.email_hash == digest))
    if existing is None:
        session.add(
            Suppression(email_hash=digest, email=None, reason="erased", source=source, created_at=utcnow())
        )
    else:
        existing.email, existing.reason, existing.source = None, "erased", source
    session.execute(delete(Subscriber).where(Subscriber.id == member.id))
    record(session, Action.ERASED, source, email_hash=digest)


def suppress(session: Session, email: str, reason: str, source: str, keep_address: bool = True) -> None:
    """Never mail this address again (hard bounce, complaint, manual block)."""
    normal = addresses.normalise(email)
    digest = addresses.address_hash(normal)
    if session.scalar(select(Suppression.id).where(Suppression.email_hash == digest)) is None:
        session.add(
            Suppression(
                email_hash=digest,
                email=normal if keep_address else None,
                reason=reason,
                source=source,
                created_at=utcnow(),
            )
        )


def _suppression(session: Session, email: str) -> str | None:
    try:
        digest = addresses.address_hash(addresses.normalise(email))
    except addresses.InvalidAddress:
        return None
    return session.scalar(select(Suppression.reason).where(Suppression.email_hash == digest))
