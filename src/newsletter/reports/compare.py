"""The last issues side by side: for the editor asking whether reach, bounces, complaints, unsubscribes
and clicks are going up or down from one issue to the next.

Each figure means what it means in the campaign report (`reports.campaign`), and comes from the same
rows: the ledger (`bounced` is the bounced status, which already counts the reports that came back
after sending, as `campaigns.report` counts them; `complained` its complaint marks), the consent
history (`campaign.left_since`) and the count per link. A handful of grouped queries over the
campaigns' ids, whatever their size: nothing is read member by member.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from newsletter.db.models import Campaign, CampaignLink, CampaignStatus, Delivery, DeliveryStatus
from newsletter.reports.campaign import ACCEPTED, left_since

LAST = 12  # a year of a monthly newsletter


@dataclass(frozen=True)
class CampaignLine:
    """One campaign's outcome, in counts; the rates are properties, None where nothing to divide by."""

    id: int
    issue_slug: str
    subject: str
    started_at: dt.datetime
    audiences: tuple[str, ...]
    recipients: int  # its ledger rows: the members it was to go to
    reached: int  # the sent and the bounced: the relay took them, or a refusal named a dead address
    bounced: int  # a dead address: refused so while sending, or reported back after it
    failed: int  # otherwise refused (a full mailbox, a spam block) or still deferred at the last attempt
    complained: int  # sent messages their member reported as spam
    unsubscribed: int  # members it was sent to who unsubscribed or complained since it started
    clicks: int | None  # over all its links; None when clicks were not counted

    @property
    def delivered(self) -> int:
        """The messages that arrived: reached and not bounced (the `sent` status)."""
        return self.reached - self.bounced

    @property
    def reach_rate(self) -> float | None:
        """Reached / recipients: how much of the audience a mail server answered for."""
        return _share(self.reached, self.recipients)

    @property
    def delivery_rate(self) -> float | None:
        """Delivered / recipients: how much of the audience got the issue."""
        return _share(self.delivered, self.recipients)

    @property
    def bounce_rate(self) -> float | None:
        """Bounced / reached: of the messages a mail server answered for, those it refused or
        reported back (what mailbox providers watch)."""
        return _share(self.bounced, self.reached)

    @property
    def failure_rate(self) -> float | None:
        """Failed / recipients: the audience it never got out to."""
        return _share(self.failed, self.recipients)

    @property
    def complaint_rate(self) -> float | None:
        """Complained / delivered: only a message that arrived can be reported as spam."""
        return _share(self.complained, self.delivered)

    @property
    def unsubscribe_rate(self) -> float | None:
        """Unsubscribed / delivered: the members who had it and left since."""
        return _share(self.unsubscribed, self.delivered)

    @property
    def click_rate(self) -> float | None:
        """Clicks / delivered: clicks per message that arrived. Clicks are counted, not the people who
        clicked (nothing is kept about who), so one member following three links counts three and the
        rate can pass 1. None when clicks were not counted."""
        return None if self.clicks is None else _share(self.clicks, self.delivered)


def compare_campaigns(session: Session, last: int = LAST) -> list[CampaignLine]:
    """The last `last` campaigns that started (sending, paused, sent or cancelled after starting),
    oldest first, so that a chart of them reads left to right."""
    if last < 1:
        return []
    campaigns = session.scalars(
        select(Campaign)
        .where(Campaign.started_at.is_not(None), Campaign.status != CampaignStatus.SCHEDULED)
        .order_by(Campaign.started_at.desc(), Campaign.id.desc())
        .limit(last)
    ).all()[::-1]
    ids = [campaign.id for campaign in campaigns]
    status = Delivery.status
    ledger = {
        campaign_id: figures
        for campaign_id, *figures in session.execute(
            select(
                Delivery.campaign_id,
                func.count(),
                func.count().filter(status.in_(ACCEPTED)),
                func.count().filter(status == DeliveryStatus.BOUNCED),
                func.count().filter(status == DeliveryStatus.FAILED),
                func.count(Delivery.complained_at),  # as `campaigns.report` counts complaints
            )
            .where(Delivery.campaign_id.in_(ids))
            .group_by(Delivery.campaign_id)
        )
    }
    left = left_since(session, ids)
    clicks = {
        campaign_id: int(total or 0)
        for campaign_id, total in session.execute(
            select(CampaignLink.campaign_id, func.sum(CampaignLink.clicks))
            .where(CampaignLink.campaign_id.in_(ids))
            .group_by(CampaignLink.campaign_id)
        )
    }
    lines = []
    for campaign in campaigns:
        recipients, reached, bounced, failed, complained = ledger.get(campaign.id, (0, 0, 0, 0, 0))
        assert campaign.started_at is not None
        lines.append(
            CampaignLine(
                id=campaign.id,
                issue_slug=campaign.issue_slug,
                subject=campaign.subject,
                started_at=campaign.started_at,
                audiences=tuple(campaign.audiences),
                recipients=recipients,
                reached=reached,
                bounced=bounced,
                failed=failed,
                complained=complained,
                unsubscribed=left.get(campaign.id, 0),
                clicks=clicks.get(campaign.id),
            )
        )
    return lines


def _share(part: int, whole: int) -> float | None:
    """part / whole, or None when whole is 0 (a rate of nothing is not 0%)."""
    return part / whole if whole else None
