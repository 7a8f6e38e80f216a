"""What one campaign reached, read from the ledger: for the editor's report to funders and partners.

Everything here is counted from what the pipeline already keeps for sending (the ledger's rows, the
bounces and complaints that came back, the consent history, the campaign's variants and its count per
link): nothing is recorded about anyone for the report's sake. Per recipient domain it shows sent,
deferred, failed and bounced messages and how long after the campaign started the domain's messages
were accepted (the median: the domains that throttle, NHS gateways and council relays, stand out);
over time the messages accepted by each minute; the relay's most common replies, with their queue ids
and such taken out so alike replies count together; who got which content; and, when clicks were
counted, the clicks per section and per link.

Each part is one grouped query: a campaign of 200,000 members is counted by the database, and only
the figures come back (`bench/report.py` holds it under a second on SQLite).
"""

from __future__ import annotations

import datetime as dt
import re
import statistics
import string
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, String, and_, case, func, select
from sqlalchemy.orm import Session

from newsletter.audience.consent import Action as ConsentAction
from newsletter.db.models import Campaign, CampaignLink, ConsentRecord, Delivery, DeliveryStatus, Subscriber
from newsletter.delivery import campaigns, ledger
from newsletter.delivery.campaigns import CampaignReport

TOP_REPLIES = 10
ACCEPTED = (
    DeliveryStatus.SENT.value,
    DeliveryStatus.BOUNCED.value,
)  # the relay took these (a bounce came later)
LEAVING = (ConsentAction.UNSUBSCRIBED.value, ConsentAction.COMPLAINED.value)  # off the list for it
# A queue id, a message id, a long number: what makes alike replies differ ("queued as 4F2A91C3").
_PARTICULAR_LENGTH = 6
_PARTICULAR = re.compile(rf"(?=[\w.-]*\d)[\w.-]{{{_PARTICULAR_LENGTH},}}|<[^>]*>")
# The ASCII characters of such a token, for the database to find one at the end of a reply (the
# likeliest first: SQL's rtrim tries them in order).
_TOKEN = string.digits + string.ascii_uppercase + string.ascii_lowercase + "_.-"
_TOKEN_CLASS = "[A-Za-z0-9_.-]"  # the same, as a GLOB or regular expression's class
# What a reply's own last token becomes in the database's grouping: a token `reply_kind` takes out too.
_ANY_PARTICULAR = "0" * _PARTICULAR_LENGTH


@dataclass(frozen=True)
class DomainLine:
    """One recipient domain's part of the campaign."""

    domain: str
    messages: int
    sent: int
    deferred: int  # deferred at least once (a 4xx or a dropped connection), whatever came after
    failed: int
    bounced: int
    waiting: int  # still queued, being sent or deferred
    median_accept_seconds: float | None  # from the campaign's start to the relay's 250, for the sent


@dataclass(frozen=True)
class LinkLine:
    """One link of the issue and how many times anyone followed it (a count, nothing about who)."""

    position: int  # in the order
    section: str  # the heading of the section where it first appears
    text: str
    url: str
    clicks: int


@dataclass(frozen=True)
class CampaignDetail:
    """The campaign report: `report` has the counts by status, bounces later and complaints."""

    report: CampaignReport
    unsubscribed: int  # members it went to who left since it started
    over_time: list[tuple[dt.datetime, int]]  # each minute with a message accepted, and the total by then
    domains: list[DomainLine]  # most messages first
    replies: list[tuple[str, int]]  # the relay's words, most common first
    # Who got which content: each distinct email it made and to how many members, as stored when it
    # started (most members first); empty for a campaign started before variants were kept.
    variants: list[tuple[str, int]] = field(default_factory=list)
    links: list[LinkLine] = field(default_factory=list)  # in the order; empty if not counted

    @property
    def campaign(self) -> Campaign:
        return self.report.campaign

    @property
    def clicks_counted(self) -> bool:
        """Whether clicks were counted (`count_clicks` was on when it started): a campaign whose links
        nobody followed still has its links, each with 0."""
        return bool(self.links)

    @property
    def sections(self) -> list[tuple[str, int]]:
        """Clicks per section of the issue, in the order the sections first appear."""
        sections: dict[str, int] = {}
        for link in self.links:
            sections[link.section] = sections.get(link.section, 0) + link.clicks
        return list(sections.items())


def reply_kind(reply: str) -> str:
    """A reply with what is particular to one message taken out, so alike replies count together."""
    return _PARTICULAR.sub("…", " ".join(reply.split()))[:200]


def campaign_detail(session: Session, campaign_id: int) -> CampaignDetail:
    """Everything the campaign report shows, each part counted by the database in one grouped query."""
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise campaigns.no_such_campaign(campaign_id)
    postgres = session.get_bind().dialect.name == "postgresql"
    return CampaignDetail(
        report=campaigns.report(session, campaign),
        unsubscribed=left_since(session, [campaign_id]).get(campaign_id, 0),
        over_time=_over_time(session, campaign_id, postgres),
        domains=_domains(session, campaign, postgres),
        replies=_replies(session, campaign_id, postgres),
        variants=_variants(campaign),
        links=_links(session, campaign_id),
    )


def _variants(campaign: Campaign) -> list[tuple[str, int]]:
    """(description, members) of each distinct email the campaign made, in the stored order."""
    return [(str(variant["description"]), int(variant["members"])) for variant in campaign.variants or []]


def _links(session: Session, campaign_id: int) -> list[LinkLine]:
    """The campaign's counted links in the issue's order (none if its clicks were not counted)."""
    rows = session.execute(
        select(
            CampaignLink.position,
            CampaignLink.section,
            CampaignLink.text,
            CampaignLink.url,
            CampaignLink.clicks,
        )
        .where(CampaignLink.campaign_id == campaign_id)
        .order_by(CampaignLink.position, CampaignLink.id)
    )
    return [LinkLine(*row) for row in rows]


def left_since(session: Session, campaign_ids: Collection[int]) -> dict[int, int]:
    """Per campaign, the members it went to who unsubscribed (or complained, which takes them off
    everything) since it started: counted from the consent history, one each however often they left.
    One grouped query for any number of campaigns; campaigns nobody left are missing."""
    started = func.coalesce(Campaign.started_at, Campaign.send_at)
    query = (
        select(Delivery.campaign_id, func.count(func.distinct(ConsentRecord.subscriber_id)))
        .join(Campaign, Campaign.id == Delivery.campaign_id)
        .join(ConsentRecord, ConsentRecord.subscriber_id == Delivery.subscriber_id)
        .where(
            Delivery.campaign_id.in_(campaign_ids),
            Delivery.status == DeliveryStatus.SENT,
            ConsentRecord.action.in_(LEAVING),
            ConsentRecord.created_at >= started,
        )
        .group_by(Delivery.campaign_id)
    )
    return {campaign_id: count for campaign_id, count in session.execute(query)}


def domain_of(address: ColumnElement[str], postgres: bool) -> ColumnElement[str]:
    """The part of an address after its `@`, in the database (each backend has its own function to
    find it). A stored address has one `@` (email-validator refuses quoted local parts), so this is
    `rpartition("@")[2]`; given `email_key`, the domain comes in lower case."""
    at = func.strpos(address, "@") if postgres else func.instr(address, "@")
    return func.substr(address, at + 1)


def minute_of(column: ColumnElement[dt.datetime], postgres: bool) -> ColumnElement[str]:
    """`YYYY-MM-DD HH:MM` of a timestamp, in the database (as `audience.month_of`). SQLite keeps
    timestamps as ISO text, so the first sixteen characters are the minute, cheaper than strftime."""
    if postgres:
        return func.to_char(column, "YYYY-MM-DD HH24:MI")
    return func.substr(column, 1, 16)


def _domains(session: Session, campaign: Campaign, postgres: bool) -> list[DomainLine]:
    """One row per domain: its counts by status and the middle acceptance times for the median."""
    status = Delivery.status
    domain = domain_of(Subscriber.email_key, postgres)
    accepted_at = case((status.in_(ACCEPTED), Delivery.sent_at))  # null for the others, left out
    if postgres:  # the two middle ones: the lower of an even count, then counting from the top
        middles = [
            func.percentile_disc(0.5).within_group(accepted_at),
            func.percentile_disc(0.5).within_group(accepted_at.desc()),
        ]
    else:  # SQLite has no such aggregate: all of them, as one text for the domain, sorted here
        middles = [func.aggregate_strings(accepted_at, ",")]
    rows = session.execute(
        select(
            domain,
            func.count(),
            func.count().filter(status == DeliveryStatus.SENT),
            func.count().filter(
                (status == DeliveryStatus.DEFERRED)
                | ((status == DeliveryStatus.SENT) & (Delivery.attempts > 1))
            ),
            func.count().filter(status == DeliveryStatus.FAILED),
            func.count().filter(status == DeliveryStatus.BOUNCED),
            func.count().filter(status.in_(ledger.PENDING)),
            *middles,
        )
        .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .where(Delivery.campaign_id == campaign.id)
        .group_by(domain)
    )
    started = campaign.started_at or campaign.send_at
    domains = [
        DomainLine(name, messages, sent, deferred, failed, bounced, waiting, _median_seconds(started, middle))
        for name, messages, sent, deferred, failed, bounced, waiting, *middle in rows
    ]
    domains.sort(key=lambda line: (-line.messages, line.domain))
    return domains


def _median_seconds(started: dt.datetime, middle: Sequence[Any]) -> float | None:
    """The median of the seconds from the start to each accepted message, from the middle times in
    either backend's form: PostgreSQL's lower and upper middle timestamps (the same one for an odd
    count), or SQLite's text of them all. `statistics.median` of the middle two is the median of all,
    to the last digit; None when the domain had nothing accepted."""
    if len(middle) == 2:
        lower, upper = middle
    elif middle[0]:
        times = sorted(middle[0].split(","))  # ISO text sorts as the times do
        lower, upper = (
            dt.datetime.fromisoformat(times[place]) for place in ((len(times) - 1) // 2, len(times) // 2)
        )
    else:
        return None
    if lower is None:
        return None
    return max(0.0, statistics.median([(lower - started).total_seconds(), (upper - started).total_seconds()]))


def _over_time(session: Session, campaign_id: int, postgres: bool) -> list[tuple[dt.datetime, int]]:
    """Each minute with a message accepted, and how many were by its end."""
    minute = minute_of(Delivery.sent_at, postgres)
    per_minute: Counter[dt.datetime] = Counter()
    for label, count in session.execute(
        select(minute, func.count())
        .where(
            Delivery.campaign_id == campaign_id,
            Delivery.status.in_(ACCEPTED),
            Delivery.sent_at.is_not(None),
        )
        .group_by(minute)
    ):
        per_minute[dt.datetime.fromisoformat(label)] += count
    total = 0
    over_time = []
    for at in sorted(per_minute):
        total += per_minute[at]
        over_time.append((at, total))
    return over_time


def _replies(session: Session, campaign_id: int, postgres: bool) -> list[tuple[str, int]]:
    """The most common replies, tidied by `reply_kind`, with exact counts.

    Every reply differs by its queue id, so tidying each distinct reply would mean one per message.
    Most end in it (`... queued as 4F2A91C3D0`, `... id=1qXyZa-0001Ab-Cd`): the database groups those
    whose last six characters are letters, digits, `_`, `.` or `-`, a digit among them, by what comes
    before that run of such characters, as if the run were `000000`. `reply_kind` takes such a run out
    whole, whatever it is, so a group's replies all tidy alike and one tidying counts them all; any
    other reply is grouped as it is. Equal counts are in alphabetical order."""
    reply = Delivery.last_reply
    key = case(
        (_ends_in_particular(reply, postgres), func.rtrim(reply, _TOKEN, type_=String) + _ANY_PARTICULAR),
        else_=reply,
    )
    counts: Counter[str] = Counter()
    for grouped, count in session.execute(
        select(key, func.count())
        .where(Delivery.campaign_id == campaign_id, reply.is_not(None), reply != "")
        .group_by(key)
    ):
        counts[reply_kind(grouped)] += count
    return sorted(counts.items(), key=lambda pair: (-pair[1], pair[0]))[:TOP_REPLIES]


def _ends_in_particular(reply: ColumnElement[str], postgres: bool) -> ColumnElement[bool]:
    """Whether the last six characters are all letters, digits, `_`, `.` or `-`, one a digit: then the
    run they end is one `reply_kind` takes out. Each backend has its own patterns for it."""
    if postgres:
        last, match = func.right(reply, _PARTICULAR_LENGTH), "~"
        patterns = (f"^{_TOKEN_CLASS}{{{_PARTICULAR_LENGTH}}}$", "[0-9]")
    else:
        last, match = func.substr(reply, -_PARTICULAR_LENGTH), "GLOB"
        patterns = (_TOKEN_CLASS * _PARTICULAR_LENGTH, "*[0-9]*")
    return and_(*(last.op(match, is_comparison=True)(pattern) for pattern in patterns))
