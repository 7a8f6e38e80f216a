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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, defer

from newsletter.audience import addresses
from newsletter.audience.bouncing import Rules, event, write_events
from newsletter.audience.store import Store
from newsletter.bounces.classify import classify
from newsletter.bounces.classify import looks_like_report as looks_like_report
from newsletter.bounces.findings import Finding, Kind
from newsletter.bounces.scoring import apply
from newsletter.db.models import Delivery, DeliveryStatus, Subscriber, utcnow
from newsletter.delivery.message import sender_domain
from newsletter.settings import Settings
from newsletter.tokens import KEYLESS, WRONG_PURPOSE, BadToken, Tokens

# Findings read from mail anyone could have sent: their address alone never names a member.
MAIL_SOURCES = frozenset({"dsn", "flufl", "arf", "auto_reply", "unknown"})
# The tokens that may name a member in a report: the VERP address's, or a complaint's unsubscribe link.
PURPOSES = ("bounce", "unsubscribe")
# `delivery.message.message_id_for`'s form: <nl.CAMPAIGN.TAG.MEMBER@domain> (older ones lack the tag).
_MESSAGE_ID = re.compile(r"<nl\.(\d{1,18})\.(?:[A-Za-z0-9_-]+\.)?(\d{1,18})@[^>]+>")
_IN_LIMIT = 500  # ids a prefetch names in one statement, well inside every database's limit


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
        return _processed(findings, actions)

    def process_many(
        self, reports: Sequence[bytes], *, now: dt.datetime | None = None
    ) -> list[Processed | Exception]:
        """`process` for many messages from a mailbox, recorded in one transaction (a transaction a
        report would be most of the cost of taking a mailbox in). Each message's result is its `Processed`, or the exception that
        stopped it: one that cannot be read or recorded fails alone, and the rest are recorded."""
        read: list[list[Finding] | Exception] = []
        for raw in reports:
            try:
                read.append(classify(raw, self.domain))
            except Exception as error:  # a message that trips the parser: its own failure, not the batch's
                read.append(error)
        found = [findings for findings in read if not isinstance(findings, Exception)]
        try:
            recorded: Iterator[list[str] | Exception] = iter(self._record_batch(found, now))
        except Exception:  # one report's findings broke the transaction: each on its own, so only it fails
            recorded = iter([self._record_alone(findings, now) for findings in found])
        results: list[Processed | Exception] = []
        for findings in read:
            if isinstance(findings, Exception):
                results.append(findings)
                continue
            actions = next(recorded)
            results.append(actions if isinstance(actions, Exception) else _processed(findings, actions))
        return results

    def record(self, findings: list[Finding], *, now: dt.datetime | None = None) -> list[str]:
        """Apply the rules to each finding and write its event, in one transaction; returns what was
        done to each, in words. `now` (UTC) stands in for the clock in tests."""
        return self._record_batch([findings], now)[0]

    def _record_alone(self, findings: list[Finding], now: dt.datetime | None) -> list[str] | Exception:
        try:
            return self._record_batch([findings], now)[0]
        except Exception as error:
            return error

    def _record_batch(self, batch: list[list[Finding]], now: dt.datetime | None) -> list[list[str]]:
        now = _naive_utc(now) or utcnow()
        with self.store.session() as session, session.no_autoflush:
            # Nothing a finding reads was changed by an earlier one's pending writes (the members and
            # rows are loaded first; the rules' own statements go straight to the database), so the
            # writes wait for one flush at the commit instead of one before every statement.
            loaded = _prefetch(session, [finding for findings in batch for finding in findings])
            events: list[dict[str, Any]] = []
            actions = [
                [self._record(session, finding, now, loaded.deliveries, events) for finding in findings]
                for findings in batch
            ]
            write_events(session, events)
            return actions

    def _record(
        self,
        session: Session,
        finding: Finding,
        now: dt.datetime,
        deliveries: Deliveries,
        events: list[dict[str, Any]],
    ) -> str:
        member = self._member(session, finding)
        delivery = _delivery(deliveries, finding.message_id, member)
        action = apply(session, member, finding, self.rules, now)
        if delivery is not None:
            _mark(delivery, finding, now)
        events.append(
            event(
                member,
                finding.address,
                delivery.campaign_id if delivery is not None else None,
                finding.kind,
                finding.source,
                finding.status,
                finding.diagnostic,
                action,
                _naive_utc(finding.received_at) or now,
                now,
            )
        )
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

        found: dict[int, Subscriber] = {}  # held: the session keeps loaded members only weakly

        def key_of(subscriber_id: int) -> str | None:
            member = session.get(Subscriber, subscriber_id)
            if member is None:
                return None
            found[subscriber_id] = member
            return member.link_key

        for purpose in PURPOSES:
            try:
                return found[self.tokens.read(purpose, token, key_of)]
            except BadToken as error:
                if error.reason == WRONG_PURPOSE:
                    continue
                if error.reason == KEYLESS:
                    return _keyless(session, *self.tokens.read_keyless(purpose, token))
                return None
        return None


# The ledger rows a batch's findings name, by (campaign, member, Message-ID).
Deliveries = dict[tuple[int, int, str], Delivery]


@dataclass
class _Loaded:
    """What a batch's findings name, read at once."""

    members: list[Subscriber]  # held here: the session's identity map holds its objects only weakly
    deliveries: Deliveries


def _prefetch(session: Session, findings: list[Finding]) -> _Loaded:
    """Load at once the members and ledger rows the findings' Message-IDs name, so recording each
    finding reads no more rows. Only a cache: who a finding is about is still the token's to say."""
    wanted: dict[int, set[int]] = {}
    for finding in findings:
        found = _MESSAGE_ID.search(finding.message_id or "")
        if found is not None:
            wanted.setdefault(int(found.group(1)), set()).add(int(found.group(2)))
    ids = sorted({member for campaign in wanted.values() for member in campaign})
    members: list[Subscriber] = []
    for start in range(0, len(ids), _IN_LIMIT):
        members += session.scalars(
            select(Subscriber)
            .options(defer(Subscriber.attributes))  # a JSON document no rule reads: decoding it is dear
            .where(Subscriber.id.in_(ids[start : start + _IN_LIMIT]))
        )
    deliveries: Deliveries = {}
    for campaign_id, ids in wanted.items():
        chosen = sorted(ids)
        for start in range(0, len(chosen), _IN_LIMIT):
            rows = session.scalars(
                select(Delivery).where(
                    Delivery.campaign_id == campaign_id,
                    Delivery.subscriber_id.in_(chosen[start : start + _IN_LIMIT]),
                )
            )
            deliveries.update({(row.campaign_id, row.subscriber_id, row.message_id): row for row in rows})
    return _Loaded(members, deliveries)


def _delivery(deliveries: Deliveries, message_id: str | None, member: Subscriber | None) -> Delivery | None:
    """The ledger row of this member's message: found through the (campaign, member) key the
    Message-ID holds, and only for the token's member (our Message-IDs can be read by every
    recipient, so they say which message, not who)."""
    found = _MESSAGE_ID.search(message_id or "")
    if member is None or found is None or int(found.group(2)) != member.id:
        return None
    return deliveries.get((int(found.group(1)), member.id, found.group(0)))


def _processed(findings: list[Finding], actions: list[str]) -> Processed:
    return Processed(any(f.kind != Kind.UNKNOWN for f in findings), findings, actions)


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


def _naive_utc(moment: dt.datetime | None) -> dt.datetime | None:
    """Timestamps are stored in UTC without a zone (`db.models.utcnow`)."""
    if moment is None or moment.tzinfo is None:
        return moment
    return moment.astimezone(dt.UTC).replace(tzinfo=None)
