"""`Sending`: campaigns as library calls for the CLI (and the demo): send, steer, follow, work."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from newsletter.audience.store import Store
from newsletter.content.model import Issue
from newsletter.db.models import Campaign, CampaignStatus, TestSend, new_link_key, utcnow
from newsletter.delivery import campaigns, ledger, lookahead, supervisor
from newsletter.delivery.campaigns import CampaignReport
from newsletter.delivery.lookahead import Foreseen
from newsletter.delivery.message import PreparedMessage, Recipient
from newsletter.delivery.outbound import Outbound
from newsletter.delivery.worker import WorkerStats
from newsletter.editor import Editor
from newsletter.errors import UserError
from newsletter.schedule import schedule_campaign, unschedule_campaign
from newsletter.settings import Settings

TEST_PREFIX = "[TEST] "


class Sending:
    """Everything `newsletter send`, `campaigns`, `status`, `pause`, `resume`, `cancel`, `retry` and
    `worker` do."""

    def __init__(self, settings: Settings, store: Store | None = None) -> None:
        self.settings = settings
        self.editor = Editor(settings)
        self.store = store or Store.open(settings, self.editor.vocabulary)

    def close(self) -> None:
        self.store.close()

    def plan(
        self, slug: str, audiences: list[str], at: str | None = None, resend: bool = False
    ) -> campaigns.SendPlan:
        """What `send` would do, checked and counted, nothing written: refuses a time in the past and
        a campaign that would only repeat the issue to members who already had it."""
        send_at = None
        if at:
            send_at = campaigns.parse_when(at, self.settings.timezone)
            campaigns.refuse_past(send_at, at, self.settings.timezone)
        planned = campaigns.plan(self.editor, self.store, slug, audiences, send_at, resend)
        campaigns.refuse_repeat(planned)
        return planned

    def schedule(self, planned: campaigns.SendPlan) -> Campaign:
        """Write the planned campaign and its scheduler job."""
        campaign = campaigns.schedule(self.store, planned)
        schedule_campaign(self.settings.database_url, campaign.id, campaign.send_at)
        return campaign

    def send(
        self, slug: str, audiences: list[str], at: str | None = None, resend: bool = False
    ) -> tuple[Campaign, int]:
        """Check the issue and schedule a campaign (now, or `at` in the configured time zone);
        returns it and how many members it would send to now."""
        planned = self.plan(slug, audiences, at, resend)
        return self.schedule(planned), planned.to_send

    def foresee(
        self, issue: Issue, as_email: str | None = None, segment: str | None = None
    ) -> list[Foreseen]:
        """The distinct emails one member (`as_email`) or a segment's members will get of `issue`."""
        return lookahead.foresee(issue, self.profiles(as_email, segment))

    def profiles(self, as_email: str | None = None, segment: str | None = None) -> list[lookahead.Profile]:
        """The choices of one member, or of every member of a segment, read once."""
        if (as_email is None) == (segment is None):
            raise UserError("say whose email to show: --as EMAIL or --segment NAME (one of them)")
        self.store.ready()
        with self.store.session() as session:
            if as_email is not None:
                return [lookahead.member_profile(session, as_email)]
            where = self.store.audience([segment or ""])
            found = lookahead.audience_profiles(session, where)
        if not found:
            raise UserError(
                f"--segment {segment}: nobody in it can be mailed now, so there is nothing to show"
            )
        return found

    def send_test(self, slug: str, addresses: list[str], as_email: str | None = None) -> dict[str, str]:
        """One copy, subject prefixed [TEST], to each address; recorded apart from campaigns.

        With `as_email`, the copy is the one that member will get (their topics, region and format),
        with links that act on nobody (test links, never the member's own).
        """
        from newsletter.audience import addresses as address_rules

        checked = self.editor.check(slug)
        checked.raise_for_problems()
        try:
            normal = [address_rules.normalise(address) for address in addresses]
        except address_rules.InvalidAddress as error:
            raise UserError(f"--test: {error}") from None
        self.store.ready()
        edition, text_only = checked.edition, False
        if as_email is not None:
            (view,) = self.foresee(checked.issue, as_email=as_email)
            edition = self.editor.renderer.render(view.issue, with_html=not view.text_only)
            text_only = view.text_only
        prepared = PreparedMessage.build(
            edition, self.settings, text_only=text_only, subject_prefix=TEST_PREFIX
        )
        outbound = Outbound(self.settings)  # the worker's way to the relay, tokens and Message-IDs
        results: dict[str, str] = {}
        with self.store.session() as session:
            record = TestSend(issue_slug=slug, addresses=normal, results={}, created_at=utcnow())
            session.add(record)
            session.flush()
            try:
                for number, address in enumerate(normal):
                    recipient = Recipient(0, address, "", text_only, new_link_key())  # links name nobody
                    message_id = outbound.test_message_id(record.id, record.created_at, number)
                    sender, wire = outbound.wire(prepared, recipient, message_id)
                    reply = outbound.send(sender, address, wire)
                    results[address] = f"{reply.outcome.value}: {reply}"
            finally:
                outbound.close()
            record.results = results
        return results

    def campaigns(self) -> list[CampaignReport]:
        self.store.ready()
        with self.store.session() as session:
            rows = session.scalars(select(Campaign).order_by(Campaign.id.desc())).all()
            return [campaigns.report(session, campaign) for campaign in rows]

    def status(self, campaign_id: int) -> CampaignReport:
        self.store.ready()
        with self.store.session() as session:
            campaign = session.get(Campaign, campaign_id)
            if campaign is None:
                raise UserError(f"no campaign {campaign_id}; `newsletter campaigns` lists them")
            return campaigns.report(session, campaign)

    def troubles(self, campaign_id: int) -> list[ledger.Trouble]:
        """Who a campaign has not reached: deferred, failed and bounced, with the relay's reply."""
        self.status(campaign_id)  # a clear error for a campaign that does not exist
        with self.store.session() as session:
            return ledger.troubles(session, campaign_id)

    def active(self) -> list[CampaignReport]:
        """Campaigns being sent now (or paused halfway), oldest first."""
        self.store.ready()
        going_on = (CampaignStatus.SENDING, CampaignStatus.PAUSED)
        with self.store.session() as session:
            rows = session.scalars(
                select(Campaign).where(Campaign.status.in_(going_on)).order_by(Campaign.id)
            )
            return [campaigns.report(session, campaign) for campaign in rows]

    def finished_since(self, moment: dt.datetime) -> list[CampaignReport]:
        """Campaigns that finished (sent or cancelled) at or after `moment`, in the order they finished."""
        self.store.ready()
        with self.store.session() as session:
            rows = session.scalars(
                select(Campaign).where(Campaign.finished_at >= moment).order_by(Campaign.finished_at)
            )
            return [campaigns.report(session, campaign) for campaign in rows]

    def retry(self, campaign_id: int) -> campaigns.Retried:
        """Queue a campaign's failed messages again (not bounced ones); a finished campaign sends again."""
        self.store.ready()
        with self.store.session() as session:
            return campaigns.retry(session, campaign_id)

    def steer(self, campaign_id: int, action: str) -> Campaign:
        self.store.ready()
        with self.store.session() as session:
            campaign = campaigns.steer(session, campaign_id, action)
        if action == "cancel":
            unschedule_campaign(self.settings.database_url, campaign_id)
        return campaign

    def work(
        self,
        once: bool = False,
        stop: threading.Event | None = None,
        progress: Callable[[WorkerStats], None] | None = None,
        notice: Callable[[str], None] | None = None,
        **options: float,
    ) -> WorkerStats:
        """Run a worker in this process until stopped (or, with `once`, until nothing is due).

        `notice` is told what the worker is waiting for (a relay that is down, rows another worker
        holds); with `once`, `WorkerStats.unfinished` says why it stopped with messages left."""
        return supervisor.work(
            self.settings, self.store, self.editor.renderer, once, stop, progress, notice, **options
        )

    def work_in_processes(
        self, processes: int, once: bool = False, stop: threading.Event | None = None, **options: float
    ) -> WorkerStats:
        """Run `processes` workers side by side (`supervisor.work_in_processes`); their stats summed."""
        self.store.ready()
        return supervisor.work_in_processes(self.settings, processes, once, stop, **options)


class ProgressWatch:
    """Follows the campaigns being sent, from the ledger, so it sees every worker's progress.

    `poll` hands `show` each campaign going on, and once each campaign that finished since the
    watch began (with `finished` true); a thread calls it every few seconds while the worker runs,
    and the caller once more at the end, so a short run still says how each campaign went.
    """

    def __init__(self, sending: Sending, show: Callable[[CampaignReport, bool], None]) -> None:
        self.sending = sending
        self.show = show
        self.since = utcnow()
        self.announced: set[int] = set()

    def poll(self) -> None:
        for report in self.sending.finished_since(self.since):
            if report.campaign.id not in self.announced:
                self.announced.add(report.campaign.id)
                self.show(report, True)
        for report in self.sending.active():
            self.show(report, False)

    def run_every(self, seconds: float, stop: threading.Event) -> threading.Thread:
        """Poll in a daemon thread until `stop` is set; the caller polls once more at the end."""

        def loop() -> None:
            while not stop.wait(seconds):
                try:
                    self.poll()
                except OperationalError:
                    continue  # the database busy this time: progress waits for the next poll

        thread = threading.Thread(target=loop, name="newsletter-progress", daemon=True)
        thread.start()
        return thread
