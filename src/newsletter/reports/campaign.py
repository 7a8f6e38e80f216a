"""What one campaign reached, read from the ledger: for the editor's report to funders and partners.

Everything here is counted from what the pipeline already keeps for sending (the ledger's rows, the
bounces and complaints that came back, the consent history): nothing is recorded about anyone for
the report's sake. Per recipient domain it shows sent, deferred, failed and bounced messages and how
long after the campaign started the domain's messages were accepted (the median: the domains that
throttle, NHS gateways and council relays, stand out); over time the messages accepted by each
minute; and the relay's most common replies, with their queue ids and such taken out so alike
replies count together.
"""

from __future__ import annotations

import datetime as dt
import re
import statistics
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import String, func, select, type_coerce
from sqlalchemy.orm import Session

from newsletter.audience.consent import Action as ConsentAction
from newsletter.db.models import Campaign, ConsentRecord, Delivery, DeliveryStatus, Subscriber
from newsletter.delivery import campaigns, ledger
from newsletter.delivery.campaigns import CampaignReport

TOP_REPLIES = 10
ACCEPTED = (
    DeliveryStatus.SENT.value,
    DeliveryStatus.BOUNCED.value,
)  # the relay took these (a bounce came later)
# A queue id, a message id, a long number: what makes alike replies differ ("queued as 4F2A91C3").
_PARTICULAR = re.compile(r"(?=[\w.-]*\d)[\w.-]{6,}|<[^>]*>")


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
class CampaignDetail:
    """The campaign report: `report` has the counts by status, bounces later and complaints."""

    report: CampaignReport
    unsubscribed: int  # members it went to who left since it started
    over_time: list[tuple[dt.datetime, int]]  # each minute with a message accepted, and the total by then
    domains: list[DomainLine]  # most messages first
    replies: list[tuple[str, int]]  # the relay's words, most common first

    @property
    def campaign(self) -> Campaign:
        return self.report.campaign


def reply_kind(reply: str) -> str:
    """A reply with what is particular to one message taken out, so alike replies count together."""
    return _PARTICULAR.sub("…", " ".join(reply.split()))[:200]


def campaign_detail(session: Session, campaign_id: int) -> CampaignDetail:
    """Everything the campaign report shows, in one read of its ledger rows."""
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise campaigns.no_such_campaign(campaign_id)
    report = campaigns.report(session, campaign)
    # Read through the connection, statuses as the stored text: ORM rows and enum objects cost more
    # than the rest of the report together at 200,000 rows.
    rows = (
        session.connection()
        .execute(
            select(
                Subscriber.email,
                type_coerce(Delivery.status, String),
                Delivery.attempts,
                Delivery.sent_at,
                Delivery.last_reply,
            )
            .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
            .where(Delivery.campaign_id == campaign_id)
        )
        .all()
    )
    started = campaign.started_at or campaign.send_at
    by_domain: dict[str, dict[str, int]] = {}
    waits: dict[str, list[float]] = {}
    minutes: Counter[dt.datetime] = Counter()
    replies: Counter[str] = Counter()
    sent, deferred, accepted = DeliveryStatus.SENT.value, DeliveryStatus.DEFERRED.value, ACCEPTED
    reply_counts: Counter[str] = Counter()
    for email, status, attempts, sent_at, last_reply in rows:
        domain = email.rpartition("@")[2].lower()
        line = by_domain.get(domain)
        if line is None:
            line = by_domain[domain] = Counter()
        line["messages"] += 1
        line[status] += 1
        if status == deferred or (status == sent and attempts > 1):
            line["deferred_once"] += 1
        if sent_at is not None and status in accepted:
            waits.setdefault(domain, []).append((sent_at - started).total_seconds())
            minutes[sent_at.replace(second=0, microsecond=0)] += 1
        if last_reply:
            reply_counts[last_reply] += 1
    for reply, count in reply_counts.items():  # each distinct reply tidied once, not once a message
        replies[reply_kind(reply)] += count
    domains = [
        DomainLine(
            domain=domain,
            messages=counts["messages"],
            sent=counts[DeliveryStatus.SENT.value],
            deferred=counts["deferred_once"],
            failed=counts[DeliveryStatus.FAILED.value],
            bounced=counts[DeliveryStatus.BOUNCED.value],
            waiting=sum(counts[status.value] for status in ledger.PENDING),
            median_accept_seconds=max(0.0, statistics.median(waits[domain])) if waits.get(domain) else None,
        )
        for domain, counts in by_domain.items()
    ]
    domains.sort(key=lambda line: (-line.messages, line.domain))
    total = 0
    over_time = []
    for minute in sorted(minutes):
        total += minutes[minute]
        over_time.append((minute, total))
    return CampaignDetail(
        report=report,
        unsubscribed=_left_since(session, campaign_id, started),
        over_time=over_time,
        domains=domains,
        replies=replies.most_common(TOP_REPLIES),
    )


def _left_since(session: Session, campaign_id: int, started: dt.datetime) -> int:
    """Members the campaign went to who unsubscribed (or complained, which takes them off everything)
    since it started: counted from the consent history, one each however often they left."""
    reached = select(Delivery.subscriber_id).where(
        Delivery.campaign_id == campaign_id, Delivery.status == DeliveryStatus.SENT
    )
    return (
        session.scalar(
            select(func.count(func.distinct(ConsentRecord.subscriber_id))).where(
                ConsentRecord.subscriber_id.in_(reached),
                ConsentRecord.action.in_([ConsentAction.UNSUBSCRIBED.value, ConsentAction.COMPLAINED.value]),
                ConsentRecord.created_at >= started,
            )
        )
        or 0
    )
