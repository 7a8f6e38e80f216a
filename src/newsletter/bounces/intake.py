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

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from newsletter.audience import addresses
from newsletter.audience.bouncing import Changes, Rules, Standing, event, write_events
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
        report would be most of the cost of taking a mailbox in). Each message's result is its
        `Processed`, or the exception that stopped it: one that cannot be read or recorded fails
        alone, and the rest are recorded."""
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
        with self.store.session() as session:
            known = Known.load(session, [finding for findings in batch for finding in findings])
            changes, marks, events = Changes(), Marks(), []
            actions = [
                [self._record(session, finding, now, known, changes, marks, events) for finding in findings]
                for findings in batch
            ]
            # The rules' writes for the whole batch, a few statements (complaints, rare, went at once).
            changes.write(session)
            marks.write(session, now)
            write_events(session, events)
            return actions

    def _record(
        self,
        session: Session,
        finding: Finding,
        now: dt.datetime,
        known: Known,
        changes: Changes,
        marks: Marks,
        events: list[dict[str, Any]],
    ) -> str:
        member = self._member(session, finding, known)
        sent = known.delivery(finding.message_id, member)
        action = apply(session, member, finding, self.rules, now, changes)
        if sent is not None:
            marks.add(sent, finding)
        campaign_id = sent.campaign_id if sent is not None else None
        events.append(
            event(
                member,
                finding.address,
                campaign_id,
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

    def _member(self, session: Session, finding: Finding, known: Known) -> Standing | None:
        if finding.token:
            return self._by_token(session, finding.token, known)
        if finding.address and finding.source not in MAIL_SOURCES:
            try:
                key = addresses.key(addresses.normalise(finding.address))
            except addresses.InvalidAddress:
                return None
            return known.member_where(session, Subscriber.email_key == key)
        return None

    def _by_token(self, session: Session, token: str, known: Known) -> Standing | None:
        """The member a bounce or unsubscribe token names, or None (forged, or the member is gone).

        A token from before member keys (schema 0005) names a member only if they were here when keys
        came and, for a timed token, only if it was made after their row was (ids could be given twice
        then), as the subscriber pages rule for such links."""

        def key_of(subscriber_id: int) -> str | None:
            found = known.member(session, subscriber_id)
            return None if found is None else found.link_key

        for purpose in PURPOSES:
            try:
                found = known.member(session, self.tokens.read(purpose, token, key_of))
                return None if found is None else found.standing
            except BadToken as error:
                if error.reason == WRONG_PURPOSE:
                    continue
                if error.reason == KEYLESS:
                    return _keyless(session, known, *self.tokens.read_keyless(purpose, token))
                return None
        return None


@dataclass
class Member:
    """A member as a batch of findings needs them: their standing for the rules, and what their links'
    tokens are checked against."""

    standing: Standing
    link_key: str
    created_at: dt.datetime
    keyless_links_until: dt.datetime | None

    COLUMNS = (Subscriber.link_key, Subscriber.created_at, Subscriber.keyless_links_until)

    @classmethod
    def of_row(cls, row: Any) -> Member:
        *standing, link_key, created_at, keyless_until = row
        return cls(Standing(*standing), link_key, created_at, keyless_until)


@dataclass
class Sent:
    """A ledger row a finding names, as far as marking it goes."""

    id: int
    campaign_id: int
    subscriber_id: int
    message_id: str
    status: DeliveryStatus
    complained_at: dt.datetime | None

    COLUMNS = (
        Delivery.id,
        Delivery.campaign_id,
        Delivery.subscriber_id,
        Delivery.message_id,
        Delivery.status,
        Delivery.complained_at,
    )


class Known:
    """The members and ledger rows a batch's findings name, read at once: the members the Message-IDs
    name in one query, the rows in one a campaign (only a cache: who a finding is about is still the
    token's to say), any other member when first asked for."""

    def __init__(
        self, members: dict[int, Member | None], deliveries: dict[tuple[int, int, str], Sent]
    ) -> None:
        self.members = members
        self.deliveries = deliveries

    @classmethod
    def load(cls, session: Session, findings: list[Finding]) -> Known:
        wanted: dict[int, set[int]] = {}
        for finding in findings:
            found = _MESSAGE_ID.search(finding.message_id or "")
            if found is not None:
                wanted.setdefault(int(found.group(1)), set()).add(int(found.group(2)))
        ids = sorted({member for campaign in wanted.values() for member in campaign})
        members: dict[int, Member | None] = {}
        for chunk in _chunks(ids):
            rows = session.execute(_member_query().where(Subscriber.id.in_(chunk)))
            members.update((row[0], Member.of_row(row)) for row in rows)
        deliveries: dict[tuple[int, int, str], Sent] = {}
        for campaign_id, campaign_members in wanted.items():
            for chunk in _chunks(sorted(campaign_members)):
                rows = session.execute(
                    select(*Sent.COLUMNS).where(
                        Delivery.campaign_id == campaign_id, Delivery.subscriber_id.in_(chunk)
                    )
                )
                for row in rows:
                    sent = Sent(*row)
                    deliveries[(sent.campaign_id, sent.subscriber_id, sent.message_id)] = sent
        return cls(members, deliveries)

    def member(self, session: Session, subscriber_id: int) -> Member | None:
        if subscriber_id not in self.members:
            row = session.execute(_member_query().where(Subscriber.id == subscriber_id)).first()
            self.members[subscriber_id] = None if row is None else Member.of_row(row)
        return self.members[subscriber_id]

    def member_where(self, session: Session, condition: Any) -> Standing | None:
        """A member found by another column (a provider's webhook names the address)."""
        row = session.execute(_member_query().where(condition)).first()
        if row is None:
            return None
        found = self.members.setdefault(row[0], Member.of_row(row))
        return None if found is None else found.standing

    def delivery(self, message_id: str | None, member: Standing | None) -> Sent | None:
        """The ledger row of this member's message: found through the (campaign, member) key the
        Message-ID holds, and only for the token's member (our Message-IDs can be read by every
        recipient, so they say which message, not who)."""
        found = _MESSAGE_ID.search(message_id or "")
        if member is None or found is None or int(found.group(2)) != member.id:
            return None
        return self.deliveries.get((int(found.group(1)), member.id, found.group(0)))


def _member_query() -> Any:
    return select(*Standing.columns(), *Member.COLUMNS)


def _chunks(ids: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), _IN_LIMIT):
        yield ids[start : start + _IN_LIMIT]


class Marks:
    """The ledger rows a batch's findings mark, written together (`write`).

    A sent message that did not arrive becomes `bounced`; one reported as spam gets `complained_at`.
    Only a definite failure marks it (hard, policy, or any 5.x.x): a 4.x.x may be a delay the relay
    still retries, and the message may yet arrive."""

    def __init__(self) -> None:
        self.bounced: dict[int, str] = {}  # row id -> the reply to keep
        self.complained: set[int] = set()

    def add(self, sent: Sent, finding: Finding) -> None:
        if finding.kind == Kind.COMPLAINT:
            if sent.complained_at is None:
                self.complained.add(sent.id)
            return
        failed = finding.kind in (Kind.HARD, Kind.POLICY) or (
            finding.kind == Kind.SOFT and (finding.status or "").startswith("5.")
        )
        if failed and sent.status == DeliveryStatus.SENT and sent.id not in self.bounced:
            self.bounced[sent.id] = (
                f"came back later ({finding.source}): {finding.status or ''} {finding.diagnostic}"[:500]
            )

    def write(self, session: Session, now: dt.datetime) -> None:
        connection = session.connection()
        if self.bounced:
            connection.execute(
                _BOUNCED_ROW, [{"row": id, "reply": reply, "now": now} for id, reply in self.bounced.items()]
            )
        if self.complained:
            connection.execute(_COMPLAINED_ROW, [{"row": id, "now": now} for id in self.complained])


_BOUNCED_ROW = (
    update(Delivery)
    .where(Delivery.id == bindparam("row"), Delivery.status == DeliveryStatus.SENT)
    .values(status=DeliveryStatus.BOUNCED, last_reply=bindparam("reply"), updated_at=bindparam("now"))
)
_COMPLAINED_ROW = (
    update(Delivery)
    .where(Delivery.id == bindparam("row"), Delivery.complained_at.is_(None))
    .values(complained_at=bindparam("now"))
)


def _keyless(session: Session, known: Known, subscriber_id: int, issued_at: int | None) -> Standing | None:
    found = known.member(session, subscriber_id)
    if found is None or found.keyless_links_until is None:
        return None
    if issued_at is not None and not _seconds(found.created_at) <= issued_at <= _seconds(
        found.keyless_links_until
    ):
        return None
    return found.standing


def _processed(findings: list[Finding], actions: list[str]) -> Processed:
    return Processed(any(f.kind != Kind.UNKNOWN for f in findings), findings, actions)


def _seconds(moment: dt.datetime) -> int:
    return int(moment.replace(tzinfo=dt.UTC).timestamp())


def _naive_utc(moment: dt.datetime | None) -> dt.datetime | None:
    """Timestamps are stored in UTC without a zone (`db.models.utcnow`)."""
    if moment is None or moment.tzinfo is None:
        return moment
    return moment.astimezone(dt.UTC).replace(tzinfo=None)
