"""The rules for what comes back: a refusal (hard, soft, policy) through `audience.bouncing`, the rules
the worker's own 5xx replies follow too; a complaint; and how an editor undoes either.

- HARD, SOFT and POLICY: `audience.bouncing.refused` (suppress at once; score once a day with a
  quiet-week reset, suppressing at the threshold; never count a refusal for the sender's sake).
- COMPLAINT: off every list, status `complained`, suppressed (reason "complained"), and a consent
  record of the complaint naming the lists left, so `undo` can put them back.
- AUTO_REPLY and UNKNOWN: nothing changes.

A member who unsubscribed stays `unsubscribed` (their own choice is what `undo` must see), though a
dead address or a complaint still suppresses the address.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from newsletter.audience import addresses, members
from newsletter.audience.bouncing import Changes, Rules, Standing, judge
from newsletter.audience.consent import Action, record
from newsletter.bounces.findings import Finding, Kind
from newsletter.db.models import (
    BounceEvent,
    ConsentRecord,
    MailingList,
    Status,
    Subscriber,
    Subscription,
    Suppression,
    utcnow,
)
from newsletter.errors import UserError

# The suppressions these rules make, and so the only ones `undo` lifts.
BOUNCED = "bounced"
COMPLAINED = "complained"
UNDOABLE = (BOUNCED, COMPLAINED)
REFUSALS = (Kind.HARD, Kind.SOFT, Kind.POLICY)


def apply(
    session: Session,
    member: Standing | None,
    finding: Finding,
    rules: Rules,
    now: dt.datetime,
    changes: Changes,
) -> str:
    """Act on one finding about `member` (None: nobody we hold); returns what was done, in words.

    A refusal's verdict goes into `changes`, written with the rest of its batch; a complaint, rare and
    touching lists and consent, is carried out at once. `now` (UTC, naive) decides the calendar day a
    soft bounce counts on: tests pass simulated days.
    """
    if member is None:
        return "kept for review" if finding.kind == Kind.UNKNOWN else "nobody we hold: nothing changed"
    if finding.kind in REFUSALS:
        where = f"{finding.source} {finding.status or ''}".strip()
        return changes.add(member, judge(member, finding.kind, where, rules, now.date()))
    if finding.kind == Kind.COMPLAINT:
        subscriber = session.get(Subscriber, member.id)
        if subscriber is None:
            return "nobody we hold: nothing changed"
        action = _complained(session, subscriber, finding.source, now)
        member.status = subscriber.status
        return action
    if finding.kind == Kind.AUTO_REPLY:
        return "an automatic reply: ignored"
    return "not understood: kept for review (`newsletter bounces --review`)"


def _complained(session: Session, member: Subscriber, source: str, now: dt.datetime) -> str:
    left = list(
        session.scalars(
            select(MailingList.slug)
            .join(Subscription, Subscription.list_id == MailingList.id)
            .where(Subscription.subscriber_id == member.id, Subscription.subscribed.is_(True))
            .order_by(MailingList.slug)
        )
    )
    session.execute(
        update(Subscription)
        .where(Subscription.subscriber_id == member.id, Subscription.subscribed.is_(True))
        .values(subscribed=False, updated_at=now)
        .execution_options(synchronize_session="fetch")
    )
    was = member.status
    changed = members.change_status(
        session,
        member,
        (*members.STILL_JOINED, Status.BOUNCED),
        {"status": Status.COMPLAINED, "updated_at": now},
    )
    suppressed = members.suppress(session, member.email, COMPLAINED, f"complaint ({source})")
    if not (changed or suppressed or left):
        return "complaint: already acted on"
    record(
        session,
        Action.COMPLAINED,
        f"complaint ({source})",
        subscriber_id=member.id,
        details={"lists": left, "status": was.value},
        created_at=now,
    )
    lists = f" left {', '.join(left)};" if left else ""
    return f"complaint:{lists} {'status complained; ' if changed else ''}suppressed"


def undo(session: Session, email: str, source: str = "bounces undo", now: dt.datetime | None = None) -> str:
    """Restore a member a bounce or a complaint suppressed by mistake: the suppression lifted, status
    back to active (pending if they never confirmed), score 0, the lists a complaint took them off
    joined again, their events marked undone, and a consent record saying so. Refuses, with the
    reason, anyone else: nobody held, erased, unsubscribed by their own choice, or suppressed by hand."""
    now = now or utcnow()
    member = members.find(session, email)
    suppression = _suppression(session, email, member)
    if member is None:
        if suppression is not None and suppression.reason == "erased":
            raise UserError(
                f"{email}: this address was erased at the member's request; there is nobody to restore"
            )
        raise UserError(f"{email}: no member with this address")
    if member.status == Status.UNSUBSCRIBED:
        raise UserError(
            f"{email}: unsubscribed of their own accord; only they can join again (from the sign-up page)"
        )
    if suppression is not None and suppression.reason not in UNDOABLE:
        raise UserError(
            f"{email}: suppressed as '{suppression.reason}' ({suppression.source}), not by a bounce or a "
            "complaint; `bounces undo` does not lift it"
        )
    if suppression is None and member.status not in (Status.BOUNCED, Status.COMPLAINED):
        raise UserError(f"{email}: not suppressed by a bounce or a complaint (status {member.status.value})")
    was = member.status
    restored = (
        Status.ACTIVE if was not in (Status.BOUNCED, Status.COMPLAINED) else _status_before(session, member)
    )
    if suppression is not None:
        session.execute(delete(Suppression).where(Suppression.id == suppression.id))
    member.status, member.updated_at = restored, now
    member.bounce_score, member.bounce_scored_on = 0.0, None
    rejoined = _rejoin(session, member, now) if was == Status.COMPLAINED else []
    session.execute(
        update(BounceEvent)
        .where(BounceEvent.subscriber_id == member.id, BounceEvent.undone_at.is_(None))
        .values(undone_at=now)
        .execution_options(synchronize_session=False)
    )
    lifted = suppression.reason if suppression is not None else None
    record(
        session,
        Action.RESTORED,
        source,
        subscriber_id=member.id,
        details={"status": was.value, "suppression": lifted, "lists": rejoined},
        created_at=now,
    )
    lists = f", back on {', '.join(rejoined)}" if rejoined else ""
    return f"{member.email} is {restored.value} again (was {was.value}{f', suppressed: {lifted}' if lifted else ''}){lists}"


def _suppression(session: Session, email: str, member: Subscriber | None) -> Suppression | None:
    if member is not None:
        digest = member.email_hash
    else:
        try:
            digest = addresses.address_hash(addresses.normalise(email))
        except addresses.InvalidAddress:
            return None
    return session.scalar(select(Suppression).where(Suppression.email_hash == digest))


def _status_before(session: Session, member: Subscriber) -> Status:
    """Active, unless the member signed up and never confirmed (a confirmation email that bounced):
    consent is shown by a confirmation or an import that vouched for it."""
    if member.confirmed_at is not None:
        return Status.ACTIVE
    vouched = session.scalar(
        select(ConsentRecord.id)
        .where(
            ConsentRecord.subscriber_id == member.id,
            ConsentRecord.action.in_([Action.CONFIRMED.value, Action.IMPORTED.value]),
        )
        .limit(1)
    )
    return Status.ACTIVE if vouched is not None else Status.PENDING


def _rejoin(session: Session, member: Subscriber, now: dt.datetime) -> list[str]:
    """The lists the member's last complaint took them off, joined again (each recorded)."""
    details = session.scalar(
        select(ConsentRecord.details)
        .where(ConsentRecord.subscriber_id == member.id, ConsentRecord.action == Action.COMPLAINED.value)
        .order_by(ConsentRecord.created_at.desc(), ConsentRecord.id.desc())
        .limit(1)
    )
    slugs = list((details or {}).get("lists", []))
    rows = session.execute(
        select(MailingList.id, MailingList.slug)
        .join(Subscription, Subscription.list_id == MailingList.id)
        .where(Subscription.subscriber_id == member.id, MailingList.slug.in_(slugs))
    ).all()
    for list_id, _slug in rows:
        session.execute(
            update(Subscription)
            .where(Subscription.subscriber_id == member.id, Subscription.list_id == list_id)
            .values(subscribed=True, updated_at=now)
            .execution_options(synchronize_session="fetch")
        )
    return sorted(slug for _id, slug in rows)
