"""A campaign worth reporting on, shared by the reports' tests (no tests of its own): members at three
domains, the sample issue sent for real through the worker with its clicks counted, to an SMTP server
scripted to defer one address once and refuse another, and one link clicked a few times."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from sqlalchemy import select

from delivery_support import SAMPLE_SLUG, member_row, work_until_finished, write_members
from newsletter.audience.service import Audience
from newsletter.db.models import CampaignLink
from newsletter.delivery.service import Sending
from newsletter.settings import Settings
from newsletter.testing.smtp import RecordingSMTPServer

MEMBERS = {
    "ann@accepting.example": "Ann",
    "ben@accepting.example": "Ben",
    "eve@throttling.example": "Eve",
    "fay@gone.example": "Fay",
}
CLICKS = 3


def send_reported_campaign(
    settings: Settings, server: RecordingSMTPServer, members_csv: Path
) -> tuple[int, str]:
    """Import the members from `members_csv` (written here), send, click; the campaign's id and the
    address of the link clicked `CLICKS` times."""
    sending = Sending(
        dataclasses.replace(settings, smtp_url=f"smtp://127.0.0.1:{server.port}", count_clicks=True)
    )
    try:
        Audience(sending.store).import_csv(
            write_members(members_csv, [member_row(email, name=name) for email, name in MEMBERS.items()])
        )
        server.reply_at_rcpt("eve@throttling.example", "451 4.7.1 Greylisted, try again later", times=1)
        server.reply_at_rcpt("fay@gone.example", "550 5.1.1 No such user here")
        campaign, _ = sending.send(SAMPLE_SLUG, ["newsletter"])
        work_until_finished(sending, campaign.id, lease_seconds=30, retry_base_seconds=0.05)
        with sending.store.session() as session:
            first = session.scalars(
                select(CampaignLink)
                .where(CampaignLink.campaign_id == campaign.id)
                .order_by(CampaignLink.position)
            ).first()
            assert first is not None, "the campaign's links were counted"
            first.clicks = CLICKS
            session.commit()
            return campaign.id, first.url
    finally:
        sending.close()
