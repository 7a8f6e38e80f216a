"""`Sending`: campaigns as library calls for the CLI (and the demo): send, steer, follow, work."""

from __future__ import annotations

import multiprocessing
import queue
import signal
import threading
from collections.abc import Callable
from typing import Any

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
                    message_id = f"<nl.test.{record.id}.{number}@{domain}>"
                    sender, wire = prepared.wire(recipient, message_id, tokens)
                    reply = transport.send_wire(sender, address, wire)
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

    def work_in_processes(
        self, processes: int, once: bool = False, stop: threading.Event | None = None, **options: float
    ) -> WorkerStats:
        """Run `processes` workers side by side, sharing campaigns through the ledger; their stats summed.

        One Python process sends on one core at a time (the GIL), so on a machine with more cores
        several workers send faster; they share the work exactly as workers on several machines do.
        `stop` (or SIGTERM to this process) stops them all after their messages in flight.
        """
        self.audience.ready()
        stop = stop or threading.Event()
        context = multiprocessing.get_context("spawn")  # no inherited threads, locks or connections
        results: Any = context.Queue()
        children = [
            context.Process(
                target=_work_in_child,
                args=(self.settings, once, options, results),
                name=f"newsletter-worker-{number}",
            )
            for number in range(processes)
        ]
        for child in children:
            child.start()
        stopped = False
        while any(child.is_alive() for child in children):
            if stop.is_set() and not stopped:
                stopped = True
                for child in children:
                    if child.is_alive():
                        child.terminate()  # SIGTERM: each finishes its messages in flight
            for child in children:
                child.join(0.1)
        total, problems = WorkerStats(), []
        for _ in children:
            try:
                outcome = results.get(timeout=1)
            except queue.Empty:
                break
            if isinstance(outcome, str):
                problems.append(outcome)
                continue
            for name in ("sent", "deferred", "failed", "bounced", "skipped", "variants_rendered"):
                setattr(total, name, getattr(total, name) + getattr(outcome, name))
            total.started_campaigns += outcome.started_campaigns
        crashed = [child.name for child in children if child.exitcode not in (0, None)]
        if problems or crashed:
            raise UserError(
                "; ".join(problems or [f"worker processes ended abnormally: {', '.join(crashed)}"])
            )
        return total


def _work_in_child(settings: Settings, once: bool, options: dict[str, float], results: Any) -> None:
    """One of `work_in_processes`'s workers: SIGTERM stops it cleanly; Ctrl-C is the parent's to handle."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        sending = Sending(settings)
        try:
            results.put(sending.work(once=once, stop=stop, **options))
        finally:
            sending.close()
    except UserError as error:
        results.put(str(error))
