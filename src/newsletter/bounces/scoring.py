"""The rules: what a finding does to a member, and how an editor undoes it. Each rule is written here
once, whichever way the bounce came in (a DSN in a mailbox, the SMTP receiver, a provider's webhook).

- HARD (the address does not exist): suppressed at once, reason "bounced", status `bounced`
  (`audience.members.bounced`, the same call the worker makes on a 5xx during sending).
- SOFT (4.x.x, a full mailbox, a delay): the member's score rises by 1, at most once a calendar day
  however many bounces that day brings; a soft bounce more than `bounce_quiet_days` after the last
  one counted starts the score again from 0 (a reset rather than halving: a mailbox that was full
  for a week in spring says nothing about one full in autumn, and a reset is easy to explain); at
  `bounce_threshold` the member is suppressed as for a hard bounce.
- POLICY (5.7.x, "blocked", "spam", "reputation"): never counted against the member; the receiving
  server refused *our* mail, a sending problem for the list owner to see in `newsletter bounces`.
- COMPLAINT: off every list, status `complained`, suppressed (reason "complained"), and a consent
  record of the complaint naming the lists left, so `undo` can put them back.
- AUTO_REPLY and UNKNOWN: nothing changes.

A member who unsubscribed stays `unsubscribed` (their own choice is what `undo` must see), though a
dead address or a complaint still suppresses the address.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from newsletter.audience import addresses, members
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
from newsletter.settings import Settings

# The suppressions these rules make, and so the only ones `undo` lifts.
BOUNCED = "bounced"
COMPLAINED = "complained"
UNDOABLE = (BOUNCED, COMPLAINED)


@dataclass(frozen=True)
class Rules:
    """The settings the rules read (`bounce_threshold`, `bounce_quiet_days`)."""

    threshold: int = 5
    quiet_days: int = 7

    @classmethod
    def from_settings(cls, settings: Settings) -> Rules:
        return cls(settings.bounce_threshold, settings.bounce_quiet_days)


def apply(
    session: Session, member: Subscriber | None, finding: Finding, rules: Rules, now: dt.datetime
) -> str:
    """Act on one finding about `member` (None: nobody we hold); returns what was done, in words.

    `now` (UTC, naive) decides the calendar day a soft bounce counts on: tests pass simulated days.
    """
    if member is None:
        return "nobody we hold: nothing changed"
    where = f"{finding.source} {finding.status or ''}".strip()
    if finding.kind == Kind.HARD:
        return _bounced(session, member, f"hard bounce ({where})")
    if finding.kind == Kind.SOFT:
        return _soft(session, member, where, rules, now.date())
    if finding.kind == Kind.POLICY:
        return "not counted against the member: refused for the sender's sake (a sending problem)"
    if finding.kind == Kind.COMPLAINT:
        return _complained(session, member, finding.source, now)
    if finding.kind == Kind.AUTO_REPLY:
        return "an automatic reply: ignored"
    return "not understood: kept for review (`newsletter bounces --review`)"


def _bounced(session: Session, member: Subscriber, why: str) -> str:
    changed = members.bounced(session, member.id, member.email, why)
    if changed:
        return f"suppressed: {why}"
    return f"address suppressed: {why} (the member was already {member.status.value})"


def _soft(session: Session, member: Subscriber, where: str, rules: Rules, today: dt.date) -> str:
    if member.status not in members.STILL_JOINED:
        return f"not counted: the member is {member.status.value}"
    last = member.bounce_scored_on
    if last == today:
        return f"soft bounce ({where}): already counted today, score {member.bounce_score:g}"
    score = member.bounce_score if last is not None and (today - last).days <= rules.quiet_days else 0.0
    score += 1
    member.bounce_score, member.bounce_scored_on = score, today
    session.flush()
    if score >= rules.threshold:
        return _bounced(session, member, f"{score:g} soft bounces on separate days ({where})")
    return f"soft bounce ({where}): score {score:g} of {rules.threshold}"


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
