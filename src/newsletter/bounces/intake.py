"""Findings recorded: the member named, the campaign's row found, the rules applied, an event written,
all in one transaction. Every way a bounce comes in (the SMTP/LMTP receiver, a mailbox, a provider's
webhook) ends here, so they all act alike.

Who a finding is about comes only from what we signed: the VERP token of `bounces+TOKEN@domain`
(or, in a complaint, the original's List-Unsubscribe token). A returned message is unsigned mail that
anyone can write, so the address it names is never trusted to find a member (else a forged bounce could
suppress anyone); a provider's webhook is checked against the provider's signature before it gets here,
so its address is. The Message-ID says which campaign, and only for the member the token names: our
Message-IDs can be read by every recipient, so they say which message, not who.

A bounce for a message that was sent marks its ledger row `bounced` (its `sent_at` stays, which is how
`status` tells a bounce that came back later); a complaint sets the row's `complained_at` and leaves it
`sent`, since the message did arrive.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from newsletter.audience import addresses
from newsletter.audience.store import Store
from newsletter.bounces.classify import classify
from newsletter.bounces.classify import looks_like_report as looks_like_report
from newsletter.bounces.findings import Finding, Kind
from newsletter.bounces.scoring import Rules, apply
from newsletter.db.models import BounceEvent, Delivery, DeliveryStatus, Subscriber, utcnow
from newsletter.delivery.message import sender_domain
from newsletter.settings import Settings
from newsletter.tokens import KEYLESS, WRONG_PURPOSE, BadToken, Tokens

# Findings read from mail anyone could have sent: their address alone never names a member.
MAIL_SOURCES = frozenset({"dsn", "flufl", "arf", "auto_reply", "unknown"})
# The tokens that may name a member in a report: the VERP address's, or a complaint's unsubscribe link.
PURPOSES = ("bounce", "unsubscribe")
# `delivery.message.message_id_for`'s form: <nl.CAMPAIGN.TAG.MEMBER@domain> (older ones lack the tag).
_MESSAGE_ID = re.compile(r"<nl\.(\d{1,18})\.(?:[A-Za-z0-9_-]+\.)?(\d{1,18})@[^>]+>")
_LIMITS = {
    name: BounceEvent.__table__.columns[name].type.length
    for name in ("diagnostic", "action", "status", "source")
}


@dataclass(frozen=True)
class Processed:
    """What became of one returned message."""

    understood: bool  # a report we could act on, or an auto-reply we rightly ignore
    findings: list[Finding] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)  # what was done, in words, one per finding


class Intake:
    """Takes returned mail and findings in; one per process, over the process's Store."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.domain = sender_domain(settings)
        self.tokens = Tokens(settings.secret_key)
        self.rules = Rules.from_settings(settings)

    def process(
        self, raw: bytes, envelope_to: str | None = None, *, now: dt.datetime | None = None
    ) -> Processed:
        """Classify one returned message and record what it says. Not a report at all: nothing is
        written and `understood` is False (a mailbox reader leaves it for a person)."""
        findings = classify(raw, self.domain, envelope_to)
        actions = self.record(findings, now=now) if findings else []
        return Processed(any(f.kind != Kind.UNKNOWN for f in findings), findings, actions)

    def record(self, findings: list[Finding], *, now: dt.datetime | None = None) -> list[str]:
        """Apply the rules to each finding and write its event, in one transaction; returns what was
        done to each, in words. `now` (UTC) stands in for the clock in tests."""
        now = _naive_utc(now) or utcnow()
        with self.store.session() as session:
            return [self._record(session, finding, now) for finding in findings]

    def _record(self, session: Session, finding: Finding, now: dt.datetime) -> str:
        member = self._member(session, finding)
        delivery = self._delivery(session, finding.message_id, member)
        action = apply(session, member, finding, self.rules, now)
        if delivery is not None:
            _mark(delivery, finding, now)
        session.add(
            BounceEvent(
                subscriber_id=member.id if member is not None else None,
                email_hash=member.email_hash if member is not None else _hash(finding.address),
                campaign_id=delivery.campaign_id if delivery is not None else None,
                kind=finding.kind.value,
                source=finding.source[: _LIMITS["source"]],
                status=(finding.status or None) and finding.status[: _LIMITS["status"]],
                diagnostic=" ".join(finding.diagnostic.split())[: _LIMITS["diagnostic"]],
                action=action[: _LIMITS["action"]],
                received_at=_naive_utc(finding.received_at) or now,
                created_at=now,
            )
        )
        session.flush()
        who = member.email if member is not None else (finding.address or "unknown recipient")
        return f"{who}: {action}"

    def _member(self, session: Session, finding: Finding) -> Subscriber | None:
        if finding.token:
            return self._by_token(session, finding.token)
        if finding.address and finding.source not in MAIL_SOURCES:
            try:
                key = addresses.key(addresses.normalise(finding.address))
            except addresses.InvalidAddress:
                return None
            return session.scalar(select(Subscriber).where(Subscriber.email_key == key))
        return None

    def _by_token(self, session: Session, token: str) -> Subscriber | None:
        """The member a bounce or unsubscribe token names, or None (forged, or the member is gone).

        A token from before member keys (schema 0005) names a member only if they were here when keys
        came and, for a timed token, only if it was made after their row was (ids could be given twice
        then), as the subscriber pages rule for such links."""

        def key_of(subscriber_id: int) -> str | None:
            member = session.get(Subscriber, subscriber_id)
            return None if member is None else member.link_key

        for purpose in PURPOSES:
            try:
                return session.get(Subscriber, self.tokens.read(purpose, token, key_of))
            except BadToken as error:
                if error.reason == WRONG_PURPOSE:
                    continue
                if error.reason == KEYLESS:
                    return _keyless(session, *self.tokens.read_keyless(purpose, token))
                return None
        return None

    def _delivery(
        self, session: Session, message_id: str | None, member: Subscriber | None
    ) -> Delivery | None:
        """The ledger row of this member's message: looked up through the (campaign, member) key the
        Message-ID holds, so no index on Message-IDs is needed, and only for the token's member."""
        found = _MESSAGE_ID.search(message_id or "")
        if member is None or found is None or int(found.group(2)) != member.id:
            return None
        return session.scalar(
            select(Delivery).where(
                Delivery.campaign_id == int(found.group(1)),
                Delivery.subscriber_id == member.id,
                Delivery.message_id == found.group(0),
            )
        )


def _mark(delivery: Delivery, finding: Finding, now: dt.datetime) -> None:
    """A sent message that did not arrive becomes `bounced`; one reported as spam gets `complained_at`.

    Only a definite failure marks it (hard, policy, or any 5.x.x): a 4.x.x may be a delay the relay
    still retries, and the message may yet arrive."""
    if finding.kind == Kind.COMPLAINT:
        if delivery.complained_at is None:
            delivery.complained_at = now
        return
    failed = finding.kind in (Kind.HARD, Kind.POLICY) or (
        finding.kind == Kind.SOFT and (finding.status or "").startswith("5.")
    )
    if failed and delivery.status == DeliveryStatus.SENT:
        delivery.status = DeliveryStatus.BOUNCED
        delivery.last_reply = (
            f"came back later ({finding.source}): {finding.status or ''} {finding.diagnostic}"[:500]
        )
        delivery.updated_at = now


def _keyless(session: Session, subscriber_id: int, issued_at: int | None) -> Subscriber | None:
    member = session.get(Subscriber, subscriber_id)
    if member is None or member.keyless_links_until is None:
        return None
    if issued_at is not None and not _seconds(member.created_at) <= issued_at <= _seconds(
        member.keyless_links_until
    ):
        return None
    return member


def _seconds(moment: dt.datetime) -> int:
    return int(moment.replace(tzinfo=dt.UTC).timestamp())


def _hash(address: str | None) -> str | None:
    """An address we hold no member for, kept only as its hash."""
    try:
        return addresses.address_hash(addresses.normalise(address)) if address else None
    except addresses.InvalidAddress:
        return None


def _naive_utc(moment: dt.datetime | None) -> dt.datetime | None:
    """Timestamps are stored in UTC without a zone (`db.models.utcnow`)."""
    if moment is None or moment.tzinfo is None:
        return moment
    return moment.astimezone(dt.UTC).replace(tzinfo=None)
