"""The tables, as SQLAlchemy 2 typed models.

Email addresses are stored as normalised by email-validator (domain in lower
case) and are unique on `email_key`, the whole address in lower case, so
`Jo@Example.org` and `jo@example.org` are one member. `email_hash` is the
SHA-256 of that key: suppressions match on it, so an erased member's address
need not be kept to keep them from being mailed again.
"""

from __future__ import annotations

import datetime as dt
import enum
import secrets
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    """Timestamps are stored in UTC, without a zone (SQLite keeps none)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Status(enum.StrEnum):
    """Where a member stands. Only `active` members are ever mailed."""

    PENDING = "pending"
    ACTIVE = "active"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"


class Format(enum.StrEnum):
    HTML = "html"
    TEXT = "text"


LINK_KEY_BYTES = 16
# A new member's key made by the database itself, for rows written without the ORM (an import's bulk
# insert, a migration): 16 random bytes as 32 upper-case hex digits (SQLite's `hex()` writes upper
# case), like `new_link_key`. PostgreSQL (13 or later) hashes two random UUIDs, as a UUID has fixed bits.
LINK_KEY_SQL = {
    "sqlite": "hex(randomblob(16))",
    "postgresql": "upper(left(encode(sha256(convert_to(gen_random_uuid()::text || gen_random_uuid()::text, "
    "'UTF8')), 'hex'), 32))",
}


def new_link_key() -> str:
    """A member's own random key: every link names it, and erasing the member destroys it."""
    return secrets.token_hex(LINK_KEY_BYTES).upper()


class random_link_key(FunctionElement[str]):
    """`LINK_KEY_SQL` for the database at hand, as a column's server default."""

    type = String(2 * LINK_KEY_BYTES)
    inherit_cache = True


@compiles(random_link_key)
def _random_link_key(element: random_link_key, compiler: SQLCompiler, **kw: Any) -> str:
    return LINK_KEY_SQL[compiler.dialect.name]


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    """Store enums as their values in a VARCHAR with a CHECK, the same on SQLite and PostgreSQL."""
    return Enum(cls, name=name, native_enum=False, values_callable=lambda e: [m.value for m in e], length=20)


class Subscriber(Base):
    """A member. Only the unique email key is indexed: segments scan members once and test lists
    and topics through their primary keys, and every extra index slows a big import.

    Ids are never given twice (AUTOINCREMENT on SQLite, a sequence on PostgreSQL), and every link names
    the member's `link_key` as well as their id: a link kept by someone who was erased must never come
    to mean whoever is next. A migration that rebuilds this table on SQLite (batch mode) must pass
    `table_kwargs={"sqlite_autoincrement": True}`: reflection does not carry it (a test checks).
    """

    __tablename__ = "subscribers"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    email_key: Mapped[str] = mapped_column(String(320), unique=True)
    email_hash: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200), default="")
    organisation: Mapped[str] = mapped_column(String(200), default="")
    sector: Mapped[str | None] = mapped_column(String(50))
    region: Mapped[str | None] = mapped_column(String(50))
    place: Mapped[str] = mapped_column(String(200), default="")
    language: Mapped[str] = mapped_column(String(20), default="en-GB")
    format: Mapped[Format] = mapped_column(_enum(Format, "format"), default=Format.HTML)
    status: Mapped[Status] = mapped_column(_enum(Status, "status"), default=Status.PENDING)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    confirmed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    unsubscribed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    # A new address waits here until a link sent to it is followed (the subscriber pages).
    pending_email: Mapped[str | None] = mapped_column(String(320))
    pending_email_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    # Links (preferences, my data...) made before this moment no longer work: the member revoked them.
    links_valid_from: Mapped[dt.datetime | None] = mapped_column(DateTime)
    # The member's own random key (32 hex digits): every link carries a tag of it (`delivery.tokens`).
    # Set once, for every row however it is written; it goes when the member is erased.
    link_key: Mapped[str] = mapped_column(
        String(2 * LINK_KEY_BYTES), default=new_link_key, server_default=random_link_key()
    )
    # Members already here when links got keys (schema 0005): their unsubscribe and preferences links
    # made up to this moment, in issues already sent, carry no key and still work. None for later members.
    keyless_links_until: Mapped[dt.datetime | None] = mapped_column(DateTime)
    # Soft bounces counted against the member (`bounces/scoring.py`): at most one a day, forgotten after
    # a quiet spell, suppressed at `bounce_threshold`. `bounce_scored_on` is the day of the last one counted.
    bounce_score: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    bounce_scored_on: Mapped[dt.date | None] = mapped_column(Date)

    subscriptions: Mapped[list[Subscription]] = relationship(
        back_populates="subscriber", cascade="all, delete-orphan", passive_deletes=True
    )


class MailingList(Base):
    """A list members subscribe to (the monthly newsletter, network news...), from `subscribers/lists.yaml`."""

    __tablename__ = "lists"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(50), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")


class Subscription(Base):
    """A member on a list; leaving one list keeps the row, marked unsubscribed, as history."""

    __tablename__ = "subscriptions"

    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True
    )
    list_id: Mapped[int] = mapped_column(ForeignKey("lists.id", ondelete="CASCADE"), primary_key=True)
    subscribed: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    subscriber: Mapped[Subscriber] = relationship(back_populates="subscriptions")
    mailing_list: Mapped[MailingList] = relationship()

    __table_args__ = ({"sqlite_with_rowid": False},)


class Topic(Base):
    """A topic from `subscribers/topics.yaml`, kept in step with the file."""

    __tablename__ = "topics"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(50), unique=True)
    name: Mapped[str] = mapped_column(String(200))


class SubscriberTopic(Base):
    __tablename__ = "subscriber_topics"

    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True
    )
    topic_id: Mapped[int] = mapped_column(ForeignKey("topics.id", ondelete="CASCADE"), primary_key=True)

    # On SQLite the table is its primary key (no separate rowid tree): half the writes on import.
    __table_args__ = ({"sqlite_with_rowid": False},)


class ConsentRecord(Base):
    """Who agreed to (or withdrew) what, when and how: the proof UK GDPR and PECR ask for.

    After an erasure the member's records go with them; one record of the
    erasure remains, keyed by the address's hash only.
    """

    __tablename__ = "consent_records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), index=True
    )
    email_hash: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(40))
    source: Mapped[str] = mapped_column(String(200))
    wording_version: Mapped[str | None] = mapped_column(String(40))
    list_id: Mapped[int | None] = mapped_column(ForeignKey("lists.id", ondelete="SET NULL"))
    ip_address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(400))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Suppression(Base):
    """An address never to be mailed again: hard bounces, complaints, erasures, manual blocks."""

    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email_hash: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str | None] = mapped_column(String(320))
    reason: Mapped[str] = mapped_column(String(40))
    source: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class RateLimit(Base):
    """Hits per key (a hashed address or client address) per fixed window, shared by every web process.

    Kept in the database so that several server processes and threads count together; old windows
    are deleted as new ones are counted.
    """

    __tablename__ = "rate_limits"

    bucket: Mapped[str] = mapped_column(String(100), primary_key=True)
    period: Mapped[int] = mapped_column(Integer, primary_key=True)  # the window's start, Unix seconds
    hits: Mapped[int] = mapped_column(Integer, default=0)


class Role(enum.StrEnum):
    """What a desk account may do (`newsletter.team.PERMISSIONS` says exactly what)."""

    CONTRIBUTOR = "contributor"  # drafts issues and submits them for review
    EDITOR = "editor"  # also approves, test-sends, schedules, pauses, resumes and cancels
    ADMIN = "admin"  # also manages the team's accounts


class Editor(Base):
    """A member of the team that makes the newsletter, who signs in to the desk.

    There are no passwords: an editor signs in with a single-use emailed link (`sign_in_nonce` is
    the one link that works; using it clears it). Removing an account keeps what it did in the
    desk's history, under the address it had.
    """

    __tablename__ = "editors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    email_key: Mapped[str] = mapped_column(String(320), unique=True)  # the address in lower case
    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[Role] = mapped_column(_enum(Role, "editor_role"))
    sign_in_nonce: Mapped[str | None] = mapped_column(String(64))
    sign_in_sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    signed_in_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    # Part of every session cookie: raising it signs the account out everywhere.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class DeskEvent(Base):
    """One thing done at the desk or about the team: who, when, to what. Shown on the issue's page.

    Who is kept as the address they had then (`actor`), so removing an account loses no history;
    `editor_id` is SET NULL when it goes. The CLI acts as `actor` "command line".
    """

    __tablename__ = "desk_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)
    editor_id: Mapped[int | None] = mapped_column(ForeignKey("editors.id", ondelete="SET NULL"))
    actor: Mapped[str] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(40))
    issue_slug: Mapped[str | None] = mapped_column(String(100), index=True)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"))
    details: Mapped[str] = mapped_column(String(1000), default="")


__all__ = [
    "Base",
    "BounceEvent",
    "Campaign",
    "CampaignStatus",
    "ConsentRecord",
    "Delivery",
    "DeliveryStatus",
    "DeskEvent",
    "Editor",
    "Format",
    "MailingList",
    "RateLimit",
    "Role",
    "Status",
    "Subscriber",
    "SubscriberTopic",
    "Subscription",
    "Suppression",
    "TestSend",
    "Topic",
]


class CampaignStatus(enum.StrEnum):
    SCHEDULED = "scheduled"
    SENDING = "sending"
    PAUSED = "paused"
    SENT = "sent"
    CANCELLED = "cancelled"


class DeliveryStatus(enum.StrEnum):
    """One recipient's place in a campaign: the ledger's states."""

    QUEUED = "queued"
    SENDING = "sending"  # leased by a worker; due again if the lease expires (the worker died)
    SENT = "sent"
    DEFERRED = "deferred"  # a 4xx or a dropped connection: tried again after a backoff
    FAILED = "failed"
    BOUNCED = "bounced"  # refused: a 5xx while sending, or a failure report that came back after it
    # (then `sent_at` is set); a permanent 5.1.x refusal also suppresses the address
    SKIPPED = "skipped"  # left, bounced or was suppressed after the campaign started


class Campaign(Base):
    """One issue sent to one audience. The issue's text is kept as it was when scheduled, so what
    was checked is what is sent, even if the file changes afterwards."""

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issue_slug: Mapped[str] = mapped_column(String(100))
    issue_source: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(String(300))
    audiences: Mapped[list[str]] = mapped_column(JSON)
    status: Mapped[CampaignStatus] = mapped_column(_enum(CampaignStatus, "campaign_status"))
    send_at: Mapped[dt.datetime] = mapped_column(DateTime)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    # Send the issue even to members an earlier campaign already sent it to (`send --resend`).
    resend: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The distinct emails it made when it started, most members first: [{"description", "members"}]
    # (the same words as the preview's menu), for the report's "who got which content".
    variants: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)


class CampaignLink(Base):
    """A link of a campaign's issue whose clicks are counted (`count_clicks`): how many times anyone
    followed it, and nothing about who. The email carries a signed redirect naming this row's id; the
    redirect only goes to `url`, which came from the issue."""

    __tablename__ = "campaign_links"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)  # in the issue's order
    section: Mapped[str] = mapped_column(String(300))  # the section's heading where it first appears
    text: Mapped[str] = mapped_column(String(300))  # what the link says
    url: Mapped[str] = mapped_column(Text)
    clicks: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (UniqueConstraint("campaign_id", "url"),)


class Delivery(Base):
    """The ledger: one row per (campaign, member), the only record of progress."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"))
    status: Mapped[DeliveryStatus] = mapped_column(_enum(DeliveryStatus, "delivery_status"))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(DateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    message_id: Mapped[str] = mapped_column(String(200))
    last_reply: Mapped[str | None] = mapped_column(String(500))
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    # The member reported this message as spam (a complaint). The message did arrive, so the status
    # stays `sent` and every rule about who had the issue holds; `status` counts these apart.
    complained_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    __table_args__ = (
        UniqueConstraint("campaign_id", "subscriber_id"),
        Index("ix_deliveries_due", "campaign_id", "status", "next_attempt_at"),
        Index("ix_deliveries_subscriber", "subscriber_id"),
    )


class TestSend(Base):
    """A proof copy sent to editors; kept apart from campaigns and their ledger."""

    __tablename__ = "test_sends"
    __test__ = False  # not a pytest test class

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issue_slug: Mapped[str] = mapped_column(String(100))
    addresses: Mapped[list[str]] = mapped_column(JSON)
    results: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class BounceEvent(Base):
    """One bounce, complaint or auto-reply as it came back, and what was done about it.

    The member's row is named by id only (ON DELETE SET NULL): erasing a member leaves their events
    without an address, the hash alone saying they were the same person.
    """

    __tablename__ = "bounce_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscribers.id", ondelete="SET NULL"), index=True
    )
    email_hash: Mapped[str | None] = mapped_column(String(64))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(20))  # `bounces.findings.Kind`
    source: Mapped[str] = mapped_column(String(40))  # how it was read: dsn, flufl, arf, ses...
    status: Mapped[str | None] = mapped_column(String(20))  # the enhanced status code, e.g. 5.1.1
    diagnostic: Mapped[str] = mapped_column(String(1000), default="")
    action: Mapped[str] = mapped_column(String(300), default="")  # what was done, in words
    received_at: Mapped[dt.datetime] = mapped_column(DateTime)  # when the report says it happened
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)  # when it came in
    undone_at: Mapped[dt.datetime | None] = mapped_column(DateTime)  # `bounces undo` restored the member


class SubmissionStatus(enum.StrEnum):
    """Where a member's submission stands with the editors."""

    PENDING = "pending"  # waiting for an editor
    QUESTION = "question"  # an editor asked the member something (emailed); it waits for them
    ACCEPTED = "accepted"  # made an item of a draft issue (`issue_slug`)
    DECLINED = "declined"  # with the editor's note, emailed to the member


class Submission(Base):
    """Something a member offered for the newsletter (a report, a place update, a collaboration, an
    event, a story idea): the fields of that kind of item, as the issue model names them.

    Erasing the member empties `subscriber_id` and `name`: a pending submission no longer says who sent
    it, and an accepted one keeps only the organisation's credit, which the issue already shows."""

    __tablename__ = "submissions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscriber_id: Mapped[int | None] = mapped_column(ForeignKey("subscribers.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(200), default="")  # the member's, when they sent it
    organisation: Mapped[str] = mapped_column(String(200), default="")
    credit: Mapped[bool] = mapped_column(Boolean, default=True)  # credit the organisation when published
    kind: Mapped[str] = mapped_column(String(30))  # publication, place, collaboration, event, story
    title: Mapped[str] = mapped_column(String(300))
    fields: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[SubmissionStatus] = mapped_column(_enum(SubmissionStatus, "submission_status"))
    note: Mapped[str] = mapped_column(Text, default="")  # the editor's question or reason, as emailed
    issue_slug: Mapped[str | None] = mapped_column(String(100))  # the issue it was accepted into
    decided_by: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    __table_args__ = (
        Index("ix_submissions_subscriber", "subscriber_id"),
        Index("ix_submissions_status", "status", "created_at"),
    )
