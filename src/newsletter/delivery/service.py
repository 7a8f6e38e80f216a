"""`Sending`: campaigns as library calls for the CLI (and the demo): send, steer, follow, work."""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy import select

from newsletter.audience.service import Audience
from newsletter.db.models import Campaign, TestSend, utcnow
from newsletter.delivery import campaigns
from newsletter.delivery.campaigns import CampaignReport
from newsletter.delivery.message import PreparedMessage, Recipient, sender_domain
from newsletter.delivery.tokens import Tokens
from newsletter.delivery.transport import SmtpTransport
from newsletter.delivery.worker import Worker, WorkerStats
from newsletter.editor import Editor
from newsletter.errors import ProblemsFound, UserError
from newsletter.schedule import schedule_campaign, unschedule_campaign
from newsletter.settings import Settings

TEST_PREFIX = "[TEST] "


class Sending:
    """Everything `newsletter send`, `campaigns`, `status`, `pause`, `resume`, `cancel` and `worker` do."""

    def __init__(self, settings: Settings, audience: Audience | None = None) -> None:
        self.settings = settings
        self.editor = Editor(settings)
        self.audience = audience or Audience(settings, self.editor.vocabulary)

    def close(self) -> None:
        self.audience.close()

    def send(self, slug: str, audiences: list[str], at: str | None = None) -> tuple[Campaign, int]:
        """Check the issue and schedule a campaign (now, or `at` in the configured time zone)."""
        send_at = campaigns.parse_when(at, self.settings.timezone) if at else None
        campaign, size = campaigns.create(self.editor, self.audience, slug, audiences, send_at)
        schedule_campaign(self.settings.database_url, campaign.id, campaign.send_at)
        return campaign, size

    def send_test(self, slug: str, addresses: list[str]) -> dict[str, str]:
        """One copy, subject prefixed [TEST], to each address; recorded apart from campaigns."""
        from newsletter.audience import addresses as address_rules

        checked = self.editor.check(slug)
        if checked.problems:
            raise ProblemsFound(checked.problems)
        try:
            normal = [address_rules.normalise(address) for address in addresses]
        except address_rules.InvalidAddress as error:
            raise UserError(f"--test: {error}") from None
        self.audience.ready()
        prepared = PreparedMessage.build(
            checked.edition, self.settings, text_only=False, subject_prefix=TEST_PREFIX
        )
        tokens = Tokens(self.settings.secret_key)
        transport = SmtpTransport(self.settings.smtp_url)
        domain = sender_domain(self.settings)
        results: dict[str, str] = {}
        with self.audience.database.session() as session:
            record = TestSend(issue_slug=slug, addresses=normal, results={}, created_at=utcnow())
            session.add(record)
            session.flush()
            try:
                for number, address in enumerate(normal):
                    recipient = Recipient(0, address, "", False)
                    data = prepared.render(recipient, f"<nl.test.{record.id}.{number}@{domain}>", tokens)
                    reply = transport.send(prepared.envelope_sender(recipient, tokens), address, data)
                    results[address] = f"{reply.outcome.value}: {reply}"
            finally:
                transport.close()
            record.results = results
        return results

    def campaigns(self) -> list[CampaignReport]:
        self.audience.ready()
        with self.audience.database.session() as session:
            rows = session.scalars(select(Campaign).order_by(Campaign.id.desc())).all()
            return [campaigns.report(session, campaign) for campaign in rows]

    def status(self, campaign_id: int) -> CampaignReport:
        self.audience.ready()
        with self.audience.database.session() as session:
            campaign = session.get(Campaign, campaign_id)
            if campaign is None:
                raise UserError(f"no campaign {campaign_id}; `newsletter campaigns` lists them")
            return campaigns.report(session, campaign)

    def steer(self, campaign_id: int, action: str) -> Campaign:
        self.audience.ready()
        with self.audience.database.session() as session:
            campaign = campaigns.steer(session, campaign_id, action)
        if action == "cancel":
            unschedule_campaign(self.settings.database_url, campaign_id)
        return campaign

    def work(
        self,
        once: bool = False,
        stop: threading.Event | None = None,
        progress: Callable[[WorkerStats], None] | None = None,
        **options: float,
    ) -> WorkerStats:
        """Run a worker in this process until stopped (or, with `once`, until nothing is due)."""
        self.audience.ready()
        worker = Worker(self.settings, self.audience, self.editor.renderer, **options)  # type: ignore[arg-type]
        return worker.run(once=once, stop=stop, progress=progress)
