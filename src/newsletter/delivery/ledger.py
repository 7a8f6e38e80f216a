"""The ledger: one row per (campaign, member); the only record of a campaign's progress.

Recipients are fixed when a campaign starts (one INSERT ... SELECT of its
audience). Workers lease batches of due rows, send, and record each result
as soon as it is known, so after a crash at most the messages in flight are
sent again, each with the same Message-ID. A lease that expires means its
worker died: the rows become due again. On PostgreSQL rows are claimed with
`FOR UPDATE SKIP LOCKED`, so any number of workers on any number of machines
share one campaign without sending anyone twice.

An attempt is counted when a row is leased. Rows given back unsent (a pause,
a stop, or the relay being unavailable: nothing is known about the recipient
then) have it taken back, so only the recipient's own answers (a 4xx) use up
their `MAX_ATTEMPTS`.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    String,
    Update,
    any_,
    bindparam,
    case,
    cast,
    exists,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session, aliased

from newsletter.audience.bouncing import Kind, Rules, event, kind_of, refused, status_in, write_events
from newsletter.db import rules
from newsletter.db.bulk import bind_processor
from newsletter.db.database import refresh_statistics
from newsletter.db.models import (
    Campaign,
    CampaignStatus,
    Delivery,
    DeliveryStatus,
    Subscriber,
    SubscriberTopic,
    Topic,
    utcnow,
)
from newsletter.delivery.message import campaign_tag
from newsletter.delivery.transport import Outcome, Reply

MAX_ATTEMPTS = 6
UNSENT = (DeliveryStatus.QUEUED, DeliveryStatus.DEFERRED, DeliveryStatus.SENDING)  # still to be sent
# `last_reply` of a row given back because the relay could not be reached: `activity` looks for it.
RELAY_UNAVAILABLE = "relay unavailable, not counted as an attempt: "
FINISHED = (DeliveryStatus.SENT, DeliveryStatus.FAILED, DeliveryStatus.BOUNCED, DeliveryStatus.SKIPPED)


@dataclass(frozen=True)
class Claimed:
    """A leased ledger row with what is needed to build the member's message."""

    delivery_id: int
    campaign_id: int
    subscriber_id: int
    message_id: str
    attempts: int
    email: str
    name: str
    region: str | None
    text_only: bool
    topics: tuple[str, ...]
    mailable: bool  # still active and not suppressed: otherwise the row is skipped
    worker: str  # the lease holder: only it may record this row's result
    link_key: str  # the member's own random key: their links name it, so they never reach anyone else


# Rows that mean a member has had an issue, or is still to get it from a campaign that goes on.
PENDING = (DeliveryStatus.QUEUED, DeliveryStatus.SENDING, DeliveryStatus.DEFERRED)
GOING_ON = (CampaignStatus.SENDING, CampaignStatus.PAUSED)


def has_issue(issue_slug: str, other_than: int | None = None) -> ColumnElement[bool]:
    """Members another campaign of this issue sent it to, or is still sending it to.

    The one rule behind `send`'s refusal to send an issue twice and the snapshot that leaves
    those members out: a campaign cancelled or finished before reaching a member does not count.
    """
    earlier = Campaign.issue_slug == issue_slug
    if other_than is not None:
        earlier &= Campaign.id != other_than
    return exists(
        select(Delivery.id)
        .join(Campaign, Campaign.id == Delivery.campaign_id)
        .where(
            Delivery.subscriber_id == Subscriber.id,
            earlier,
            (Delivery.status == DeliveryStatus.SENT)
            | (Delivery.status.in_(PENDING) & Campaign.status.in_(GOING_ON)),
        )
    )


def lock_issue(session: Session, issue_slug: str) -> None:
    """Hold every campaign row of one issue until the transaction ends (PostgreSQL; SQLite has one
    writer anyway), always in id order, so campaigns of one issue start one after another."""
    session.execute(
        select(Campaign.id).where(Campaign.issue_slug == issue_slug).order_by(Campaign.id).with_for_update()
    ).all()


def snapshot(session: Session, campaign: Campaign, audience: ColumnElement[bool], message_domain: str) -> int:
    """Fix the recipients: one queued row per member of the audience, each with its Message-ID.

    Members another campaign of the same issue sent it to, or is sending it to, are left out
    unless the campaign was made with `--resend`. The caller holds `lock_issue`, so two campaigns
    of one issue starting together cannot both take the same member.
    """
    now = utcnow()
    if not campaign.resend:
        audience = audience & ~has_issue(campaign.issue_slug, other_than=campaign.id)
    # `message.message_id_for`'s form, with the campaign's own random-looking part (`campaign_tag`).
    tag = campaign_tag(campaign.id, campaign.created_at)
    message_id = (
        literal(f"<nl.{campaign.id}.{tag}.") + cast(Subscriber.id, String) + literal(f"@{message_domain}>")
    )
    rows = select(
        literal(campaign.id),
        Subscriber.id,
        literal(DeliveryStatus.QUEUED.value),
        literal(0),
        literal(now),
        message_id,
        literal(now),
    ).where(audience)
    # Members who get the same email sit side by side in the ledger (rows are claimed in this order),
    # so a worker renders a variant for a run of members, and several workers mostly render different
    # variants instead of each rendering all of them.
    rows = rows.order_by(Subscriber.format, Subscriber.region, Subscriber.id)
    session.execute(
        insert(Delivery).from_select(
            [
                "campaign_id",
                "subscriber_id",
                "status",
                "attempts",
                "next_attempt_at",
                "message_id",
                "updated_at",
            ],
            rows,
        )
    )
    # The claim reads the ledger by its indexes from now on: the planner must know how big it is.
    refresh_statistics(session.connection(), [Delivery.__table__])
    count = session.scalar(
        select(func.count()).select_from(Delivery).where(Delivery.campaign_id == campaign.id)
    )
    return count or 0


def _among_ids(column: Any, postgres: bool) -> ColumnElement[bool]:
    """`column` is one of the values of the `ids` parameter, a list of a few hundred keys.

    On PostgreSQL one array parameter: an expanding IN made a statement of as many placeholders,
    which psycopg parses afresh each time it is that long (1.4 ms of the claim's CPU a statement).
    SQLite has no arrays; its driver takes the placeholders as they come."""
    if postgres:
        return column == any_(bindparam("ids", type_=ARRAY(column.type)))
    return column.in_(bindparam("ids", expanding=True))


# What a worker needs of each member whose row it leased, and their topics, for each backend, built
# once. Each reads one table by its key: joined to the ledger rows, PostgreSQL's planner preferred
# hashing the whole members table (4 to 6 ms a batch at 20,000 members) to a few hundred lookups.
CLAIMED_MEMBERS = {
    postgres: select(
        Subscriber.id,
        Subscriber.email,
        Subscriber.name,
        Subscriber.region,
        Subscriber.format,
        rules.mailable(),
        Subscriber.link_key,
    ).where(_among_ids(Subscriber.id, postgres))
    for postgres in (False, True)
}
CLAIMED_TOPICS = {
    postgres: select(
        SubscriberTopic.subscriber_id,
        select(Topic.slug).where(Topic.id == SubscriberTopic.topic_id).scalar_subquery(),
    ).where(_among_ids(SubscriberTopic.subscriber_id, postgres))
    for postgres in (False, True)
}


TOPICS_AT_A_TIME = 500  # SQLite limits the parameters of one statement


def member_topics(connection: Connection, member_ids: list[int]) -> dict[int, list[str]]:
    """The topic slugs each of these members chose: the worker's one read of them, which the
    preview and test sends use too, so they see exactly what the worker will."""
    statement = CLAIMED_TOPICS[connection.dialect.name == "postgresql"]
    topics: dict[int, list[str]] = {}
    for start in range(0, len(member_ids), TOPICS_AT_A_TIME):
        chosen = connection.execute(statement, {"ids": member_ids[start : start + TOPICS_AT_A_TIME]}).all()
        for subscriber_id, slug in chosen:
            topics.setdefault(subscriber_id, []).append(slug)
    return topics


def _lease(status: DeliveryStatus, postgres: bool) -> Update:
    """One pass of the claim: lease up to `limit` of one campaign's due rows in one status.

    The rows are an index range in `ix_deliveries_due`, read in order until there are enough; the
    campaign is checked again inside the statement, as an editor may pause it after it was listed.
    On SQLite the UPDATE takes the write lock before choosing; on PostgreSQL SKIP LOCKED lets
    concurrent workers choose different rows, and `= ANY(ARRAY(...))` finds the chosen rows by key
    (with `IN (...)` the planner joined them to the whole ledger, scanning it once a batch)."""
    now = bindparam("now", type_=Delivery.next_attempt_at.type)
    # A row in flight is due again when its worker's lease ran out (it died): those were due earliest.
    due = (
        Delivery.lease_expires_at < now
        if status is DeliveryStatus.SENDING
        else Delivery.next_attempt_at <= now
    )
    campaign = bindparam("campaign", type_=Delivery.campaign_id.type)
    candidates = (
        select(Delivery.id)
        .where(Delivery.campaign_id == campaign, Delivery.status == status, due)
        .where(exists().where(Campaign.id == campaign, Campaign.status == CampaignStatus.SENDING))
        .order_by(Delivery.next_attempt_at)
        .limit(bindparam("limit"))
    )
    if postgres:
        chosen = Delivery.id == any_(
            func.array(candidates.with_for_update(skip_locked=True).scalar_subquery())
        )
    else:
        chosen = Delivery.id.in_(candidates.scalar_subquery())
    return (
        update(Delivery.__table__)
        .where(chosen)
        .values(
            status=DeliveryStatus.SENDING,
            lease_owner=bindparam("worker", type_=Delivery.lease_owner.type),
            lease_expires_at=bindparam("expires", type_=Delivery.lease_expires_at.type),
            attempts=Delivery.attempts + 1,
            updated_at=now,
        )
        .returning(
            Delivery.id, Delivery.campaign_id, Delivery.subscriber_id, Delivery.message_id, Delivery.attempts
        )
    )


# Built once (a statement costs more to build than to run): the passes in their order, per backend.
LEASES = {
    postgres: [
        _lease(status, postgres)
        for status in (DeliveryStatus.SENDING, DeliveryStatus.DEFERRED, DeliveryStatus.QUEUED)
    ]
    for postgres in (False, True)
}
SENDING_CAMPAIGNS = select(Campaign.id).where(Campaign.status == CampaignStatus.SENDING).order_by(Campaign.id)


def claim(session: Session, worker: str, limit: int, lease_seconds: float) -> list[Claimed]:
    """Lease up to `limit` due rows of campaigns that are sending; commit before sending anything.

    Each sending campaign's due rows are looked for in three passes (`_lease`), one status at a
    time: rows whose lease expired, deferred rows whose retry is due, then queued rows in the
    ledger's order. One pass for both queued and deferred rows, as before, had no index order to
    follow: PostgreSQL scanned the ledger from the start, past every row already sent, for each
    batch (4 to 9 ms a batch by the end of a 20,000-member campaign, and growing with its size).
    """
    now = utcnow()
    connection = session.connection()  # Core statements: the ORM adds nothing here but CPU
    postgres = connection.dialect.name == "postgresql"
    parameters = {"now": now, "expires": now + dt.timedelta(seconds=lease_seconds), "worker": worker}
    leased: list[tuple[int, int, int, str, int]] = []
    for campaign_id in connection.scalars(SENDING_CAMPAIGNS).all():
        for lease in LEASES[postgres]:
            if len(leased) >= limit:
                break
            rows = connection.execute(
                lease, {**parameters, "campaign": campaign_id, "limit": limit - len(leased)}
            )
            leased += rows.all()  # fetched at once: row by row costs a driver call a row
    if not leased:
        return []
    leased.sort(key=itemgetter(0))  # the ledger's order: members who get the same email side by side
    member_ids = sorted({row[2] for row in leased})
    members = {
        member[0]: member
        for member in connection.execute(CLAIMED_MEMBERS[postgres], {"ids": member_ids}).all()
    }
    topics = member_topics(connection, member_ids)
    return [
        Claimed(
            delivery_id=delivery_id,
            campaign_id=campaign_id,
            subscriber_id=subscriber_id,
            message_id=message_id,
            attempts=attempts,
            email=member[1],
            name=member[2],
            region=member[3],
            text_only=member[4] == "text",
            topics=tuple(sorted(topics.get(subscriber_id, ()))),
            mailable=bool(member[5]),
            worker=worker,
            link_key=member[6],
        )
        for delivery_id, campaign_id, subscriber_id, message_id, attempts in leased
        for member in (members[subscriber_id],)
    ]


def backoff(attempts: int, base_seconds: float) -> dt.timedelta:
    """1, 2, 4, 8... times the base, capped at an hour."""
    return dt.timedelta(seconds=min(base_seconds * 2 ** max(attempts - 1, 0), 3600))


def record(
    session: Session, claimed: Claimed, reply: Reply | None, retry_base_seconds: float, rules_for: Rules
) -> DeliveryStatus:
    """Write one result (None: skipped, no longer mailable). A refusal follows the member rules every
    bounce follows (`rules_for`: a dead address is suppressed, a full mailbox scored, a spam block
    never held against the member).

    A reply about the relay rather than the recipient (`Reply.relay`) is the worker's to `release`:
    recorded here, it would count as one of the recipient's attempts."""
    now = utcnow()
    values: dict[str, object] = {"lease_owner": None, "lease_expires_at": None, "updated_at": now}
    if reply is None:
        status = DeliveryStatus.SKIPPED
        values["last_reply"] = "skipped: unsubscribed, bounced or suppressed after the campaign started"
    else:
        values["last_reply"] = str(reply)
        if reply.outcome == Outcome.SENT:
            status = DeliveryStatus.SENT
            values["sent_at"] = now
        elif reply.outcome == Outcome.DEFERRED and claimed.attempts < MAX_ATTEMPTS:
            status = DeliveryStatus.DEFERRED
            values["next_attempt_at"] = now + backoff(claimed.attempts, retry_base_seconds)
        elif reply.outcome == Outcome.REFUSED:
            status = _refused(session, claimed, reply, rules_for, now)
        else:
            status = DeliveryStatus.FAILED
            if reply.outcome == Outcome.DEFERRED:
                values["last_reply"] = f"gave up after {claimed.attempts} attempts: {reply}"[:500]
    values["status"] = status
    session.execute(
        update(Delivery)
        .where(Delivery.id == claimed.delivery_id, rules.held_by(claimed.worker))
        .values(values)
        .execution_options(synchronize_session=False)
    )
    return status


def _refused(
    session: Session, claimed: Claimed, reply: Reply, rules_for: Rules, now: dt.datetime
) -> DeliveryStatus:
    """A 5xx for this recipient, judged as a bounce that came back later would be and listed with them
    (`newsletter bounces`). A dead address makes the row `bounced`; anything else (a full mailbox, a
    spam block) `failed`, which `retry` may send again once the trouble is over."""
    code = status_in(reply.text)
    kind = kind_of(code, str(reply))
    member = session.get(Subscriber, claimed.subscriber_id)
    where = f"smtp {code or reply.code}, campaign {claimed.campaign_id}"
    action = refused(session, member, kind, where, rules_for, now.date())
    row = event(member, claimed.email, claimed.campaign_id, kind, "smtp", code, str(reply), action, now, now)
    write_events(session, [row])
    return DeliveryStatus.BOUNCED if kind == Kind.HARD else DeliveryStatus.FAILED


class SentRecorder:
    """Messages the relay accepted, marked sent straight through the driver on a connection of its own.

    Only the lease holder's rows still in flight change (`rules.held_by`). A worker writes a handful
    of accepted messages every few milliseconds; through SQLAlchemy each such transaction costs about
    four times what the driver needs (measured on SQLite: 131 µs of CPU against 34 µs for five rows).
    So the statement is built from the same expressions as `record`, compiled once for the dialect,
    and each run of rows goes to the driver's `executemany`, every value through its column's own
    bind processor, as `db/bulk.py` does.
    """

    VARYING = ("row", "worker", "reply", "moment")  # the parameters that change from row to row

    def __init__(self, engine: Engine) -> None:
        dialect = engine.dialect
        moment = bindparam("moment", type_=Delivery.sent_at.type)
        worker = bindparam("worker", type_=Delivery.lease_owner.type)
        # On PostgreSQL every statement is a round trip and a plan run by the server: the handful goes as
        # two arrays, unnested into rows the UPDATE joins, one statement whatever its size. SQLite runs
        # `executemany` in its own C loop, in this process, so each row is one cheap statement there.
        self.arrays = dialect.name == "postgresql"
        if self.arrays:
            accepted = select(
                func.unnest(bindparam("rows", type_=ARRAY(Delivery.id.type))).label("id"),
                func.unnest(bindparam("replies", type_=ARRAY(Delivery.last_reply.type))).label("reply"),
            ).subquery("accepted")
            row_id, reply = accepted.c.id, accepted.c.reply
        else:
            row_id = bindparam("row", type_=Delivery.id.type)
            reply = bindparam("reply", type_=Delivery.last_reply.type)
        statement = (
            update(Delivery)
            .where(Delivery.id == row_id, rules.held_by(worker))
            .values(
                status=DeliveryStatus.SENT,
                sent_at=moment,
                updated_at=moment,
                last_reply=reply,
                lease_owner=None,
                lease_expires_at=None,
            )
        )
        compiled = statement.compile(dialect=dialect)
        self.sql = compiled.string
        binds = {name: bind for bind, name in compiled.bind_names.items()}  # those in the statement
        self.process = {name: bind_processor(bind.type, dialect) for name, bind in binds.items()}
        self.fixed = {
            name: self.process[name](bind.effective_value)
            for name, bind in binds.items()
            if name not in (*self.VARYING, "rows", "replies")
        }
        # sqlite3 takes a tuple in the statement's order; psycopg a mapping by name.
        self.order = tuple(compiled.positiontup or ()) if dialect.positional else None
        self.connection = engine.raw_connection()
        if self.arrays:  # one statement is its own transaction: no COMMIT round trip after it
            self.connection.driver_connection.autocommit = True  # type: ignore[union-attr]

    def __call__(self, results: list[tuple[Claimed, Reply]]) -> None:
        if not results:
            return
        process = self.process
        now = process["moment"](utcnow())
        cursor = self.connection.cursor()
        try:
            if self.arrays:
                cursor.execute(
                    self.sql,
                    {
                        **self.fixed,
                        "rows": [row.delivery_id for row, _ in results],
                        "replies": [str(reply) for _, reply in results],
                        "worker": process["worker"](results[0][0].worker),  # one worker's rows
                        "moment": now,
                    },
                )
            else:
                rows: list[Any] = []
                for row, reply in results:
                    values = {
                        **self.fixed,
                        "row": process["row"](row.delivery_id),
                        "worker": process["worker"](row.worker),
                        "reply": process["reply"](str(reply)),
                        "moment": now,
                    }
                    rows.append(
                        tuple(values[name] for name in self.order) if self.order is not None else values
                    )
                cursor.executemany(self.sql, rows)
            if not self.arrays:
                self.connection.commit()
        except BaseException:
            self.connection.rollback()
            raise
        finally:
            cursor.close()

    def close(self) -> None:
        if self.arrays:  # as the pool lent it
            self.connection.driver_connection.autocommit = False  # type: ignore[union-attr]
        self.connection.close()  # back to the engine's pool


def release(session: Session, claimed: list[Claimed], relay_reply: Reply | None = None) -> None:
    """Give back leased rows unsent, without counting the attempt: the campaign was paused or
    cancelled, the worker is stopping, or (`relay_reply`) the relay could not be reached, which says
    nothing about the recipients. They are due again at once; a row tried before stays deferred."""
    if not claimed:
        return
    values: dict[str, object] = {
        "status": case(
            (Delivery.attempts > 1, literal(DeliveryStatus.DEFERRED.value)),
            else_=literal(DeliveryStatus.QUEUED.value),
        ),
        "lease_owner": None,
        "lease_expires_at": None,
        "attempts": Delivery.attempts - 1,
        "updated_at": utcnow(),
    }
    if relay_reply is not None:
        values["last_reply"] = f"{RELAY_UNAVAILABLE}{relay_reply}"[:500]
    session.execute(
        update(Delivery)
        .where(Delivery.id.in_([c.delivery_id for c in claimed]), rules.held_by(claimed[0].worker))
        .values(values)
        .execution_options(synchronize_session=False)
    )


def renew(session: Session, claimed: list[Claimed], lease_seconds: float) -> None:
    """Extend the lease on rows still being worked on, so a slow batch is not taken over.

    `updated_at` moves too: a lease whose worker renews it is never more than a third of the way
    through its term, which is how `activity` tells it from one its worker has left (`STALE`)."""
    if claimed:
        now = utcnow()
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_([c.delivery_id for c in claimed]), rules.held_by(claimed[0].worker))
            .values(lease_expires_at=now + dt.timedelta(seconds=lease_seconds), updated_at=now)
            .execution_options(synchronize_session=False)
        )


def counts(session: Session, campaign_id: int) -> Counter[str]:
    rows = session.execute(
        select(Delivery.status, func.count())
        .where(Delivery.campaign_id == campaign_id)
        .group_by(Delivery.status)
    )
    return Counter({str(DeliveryStatus(status).value): count for status, count in rows})


def finish_if_done(session: Session, campaign_id: int) -> bool:
    """Mark a sending campaign sent once no row is queued, deferred or in flight."""
    unfinished = select(Delivery.id).where(Delivery.campaign_id == campaign_id, Delivery.status.in_(UNSENT))
    if session.scalar(select(unfinished.exists())):
        return False
    result = session.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id, Campaign.status == CampaignStatus.SENDING)
        .values(status=CampaignStatus.SENT, finished_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)


def left(session: Session) -> int:
    """Messages still to be sent by campaigns that are sending (queued, deferred or in flight)."""
    sending = select(Campaign.id).where(Campaign.status == CampaignStatus.SENDING).scalar_subquery()
    count = select(func.count()).where(Delivery.campaign_id.in_(sending), Delivery.status.in_(UNSENT))
    return session.scalar(count) or 0


@dataclass(frozen=True)
class Leases:
    """Rows of sending campaigns that other workers hold leases on that have not run out."""

    count: int
    first_end: dt.datetime | None  # when the first of them is due again, if its worker does not finish it
    last_end: dt.datetime | None  # ... and the last


def leased_elsewhere(session: Session, worker: str, now: dt.datetime | None = None) -> Leases:
    """What `worker --once` must wait for before it can say a campaign is done: live leases of others."""
    now = now or utcnow()
    sending = select(Campaign.id).where(Campaign.status == CampaignStatus.SENDING).scalar_subquery()
    count, first, last = session.execute(
        select(func.count(), func.min(Delivery.lease_expires_at), func.max(Delivery.lease_expires_at)).where(
            Delivery.campaign_id.in_(sending),
            Delivery.status == DeliveryStatus.SENDING,
            Delivery.lease_expires_at >= now,
            Delivery.lease_owner != worker,
        )
    ).one()
    return Leases(count or 0, first, last)


def requeue_failed(session: Session, campaign: Campaign) -> tuple[int, int]:
    """Put a campaign's failed rows (not bounced, not skipped) back in the queue: attempts counted
    afresh, due now, the same Message-ID. Members another campaign of the issue has since sent it to,
    or is sending it to, stay failed (unless the campaign was made with `--resend`), as the snapshot
    would leave them out. The caller holds `lock_issue`. Returns (queued, left failed)."""
    failed = (Delivery.campaign_id == campaign.id) & (Delivery.status == DeliveryStatus.FAILED)
    had: list[int] = []
    if not campaign.resend:
        mine = aliased(Delivery, name="mine")
        had = list(
            session.scalars(
                select(mine.id)
                .join(Subscriber, Subscriber.id == mine.subscriber_id)
                .where(
                    mine.campaign_id == campaign.id,
                    mine.status == DeliveryStatus.FAILED,
                    has_issue(campaign.issue_slug, other_than=campaign.id),
                )
            )
        )
    now = utcnow()
    queued = session.execute(
        update(Delivery)
        .where(failed, Delivery.id.not_in(had))
        .values(
            status=DeliveryStatus.QUEUED,
            attempts=0,
            next_attempt_at=now,
            lease_owner=None,
            lease_expires_at=None,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    return queued, len(had)


# A lease further through its term than this was not renewed in time: a worker renews the rows it
# still works on a third of the way through, so its worker has most likely stopped.
STALE = 2 / 3


@dataclass(frozen=True)
class Activity:
    """Whether anyone is working on a campaign now: what `status` says instead of guessing."""

    live_leases: int  # rows a worker holds a lease on that has not run out
    due_now: int  # rows waiting for a worker right now
    next_attempt_at: dt.datetime | None  # the earliest retry still to come
    stale_leases: int = 0  # of the live leases, those no worker renews (`STALE`): its worker stopped
    stale_until: dt.datetime | None = None  # when the last of those runs out and its rows are due again
    # When nothing holds a fresh lease: the last time a worker found the relay unavailable, and why.
    relay_trouble: tuple[dt.datetime, str] | None = None

    @property
    def fresh_leases(self) -> int:
        """Leases a worker is keeping up: someone is sending."""
        return self.live_leases - self.stale_leases


def activity(session: Session, campaign_id: int, now: dt.datetime | None = None) -> Activity:
    """Leases that have not run out, and are renewed, mean a worker is sending; due rows with none
    mean nobody is (or the relay is not answering: `relay_trouble`)."""
    now = now or utcnow()
    ours = Delivery.campaign_id == campaign_id
    # A few hundred rows a worker at most: each lease judged here, the same on both engines.
    leases = session.execute(
        select(Delivery.updated_at, Delivery.lease_expires_at).where(
            ours, Delivery.status == DeliveryStatus.SENDING, Delivery.lease_expires_at >= now
        )
    ).all()
    stale = [expires for taken, expires in leases if now - taken > (expires - taken) * STALE]
    due = select(func.count()).where(
        ours,
        (
            Delivery.status.in_([DeliveryStatus.QUEUED, DeliveryStatus.DEFERRED])
            & (Delivery.next_attempt_at <= now)
        )
        | ((Delivery.status == DeliveryStatus.SENDING) & (Delivery.lease_expires_at < now)),
    )
    later = select(func.min(Delivery.next_attempt_at)).where(
        ours, Delivery.status == DeliveryStatus.DEFERRED, Delivery.next_attempt_at > now
    )
    relay_trouble = None
    if len(leases) == len(stale):
        found = session.execute(
            select(Delivery.updated_at, Delivery.last_reply)
            .where(
                ours,
                Delivery.status.in_([DeliveryStatus.QUEUED, DeliveryStatus.DEFERRED]),
                Delivery.last_reply.startswith(RELAY_UNAVAILABLE),
            )
            .order_by(Delivery.updated_at.desc())
            .limit(1)
        ).first()
        if found is not None:
            relay_trouble = (found[0], (found[1] or "").removeprefix(RELAY_UNAVAILABLE))
    return Activity(
        live_leases=len(leases),
        due_now=session.scalar(due) or 0,
        next_attempt_at=session.scalar(later),
        stale_leases=len(stale),
        stale_until=max(stale, default=None),
        relay_trouble=relay_trouble,
    )


@dataclass(frozen=True)
class Trouble:
    """A member a campaign has not reached (yet): who, how it stands, and what the relay said."""

    email: str
    status: str
    attempts: int
    last_reply: str
    updated_at: dt.datetime


TROUBLED = (DeliveryStatus.DEFERRED, DeliveryStatus.FAILED, DeliveryStatus.BOUNCED)


def troubles(session: Session, campaign_id: int, limit: int | None = None) -> list[Trouble]:
    """Deferred, failed and bounced rows: failed and bounced first, then by address."""
    order = (Delivery.status == DeliveryStatus.DEFERRED, Subscriber.email)
    rows = session.execute(
        select(Subscriber.email, Delivery.status, Delivery.attempts, Delivery.last_reply, Delivery.updated_at)
        .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .where(Delivery.campaign_id == campaign_id, Delivery.status.in_(TROUBLED))
        .order_by(*order)
        .limit(limit)
    )
    return [
        Trouble(email, DeliveryStatus(status).value, attempts, last_reply or "", updated_at)
        for email, status, attempts, last_reply, updated_at in rows
    ]
