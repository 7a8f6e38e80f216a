"""`Sending`: campaigns as library calls for the CLI (and the demo): send, steer, follow, work."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import queue
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from newsletter.audience.service import Audience
from newsletter.content.model import Issue
from newsletter.db.models import Campaign, CampaignStatus, TestSend, new_link_key, utcnow
from newsletter.delivery import campaigns, ledger, lookahead
from newsletter.delivery.campaigns import CampaignReport
from newsletter.delivery.lookahead import Foreseen
from newsletter.delivery.message import PreparedMessage, Recipient, sender_domain
from newsletter.delivery.transport import SmtpTransport
from newsletter.delivery.worker import Worker, WorkerStats
from newsletter.editor import Editor
from newsletter.errors import ProblemsFound, UserError
from newsletter.schedule import schedule_campaign, unschedule_campaign
from newsletter.settings import Settings
from newsletter.tokens import Tokens

TEST_PREFIX = "[TEST] "


class Sending:
    """Everything `newsletter send`, `campaigns`, `status`, `pause`, `resume`, `cancel`, `retry` and
    `worker` do."""

    def __init__(self, settings: Settings, audience: Audience | None = None) -> None:
        self.settings = settings
        self.editor = Editor(settings)
        self.audience = audience or Audience(settings, self.editor.vocabulary)

    def close(self) -> None:
        self.audience.close()

    def plan(
        self, slug: str, audiences: list[str], at: str | None = None, resend: bool = False
    ) -> campaigns.SendPlan:
        """What `send` would do, checked and counted, nothing written: refuses a time in the past and
        a campaign that would only repeat the issue to members who already had it."""
        send_at = None
        if at:
            send_at = campaigns.parse_when(at, self.settings.timezone)
            campaigns.refuse_past(send_at, at, self.settings.timezone)
        planned = campaigns.plan(self.editor, self.audience, slug, audiences, send_at, resend)
        campaigns.refuse_repeat(planned)
        return planned

    def schedule(self, planned: campaigns.SendPlan) -> Campaign:
        """Write the planned campaign and its scheduler job."""
        campaign = campaigns.schedule(self.audience, planned)
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
        self.audience.ready()
        with self.audience.database.session() as session:
            if as_email is not None:
                return [lookahead.member_profile(session, as_email)]
            where = self.audience.segments.audience([segment or ""], self.audience.vocabulary.lists)
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
        if checked.problems:
            raise ProblemsFound(checked.problems)
        try:
            normal = [address_rules.normalise(address) for address in addresses]
        except address_rules.InvalidAddress as error:
            raise UserError(f"--test: {error}") from None
        self.audience.ready()
        edition, text_only = checked.edition, False
        if as_email is not None:
            (view,) = self.foresee(checked.issue, as_email=as_email)
            edition = self.editor.renderer.render(view.issue, with_html=not view.text_only)
            text_only = view.text_only
        prepared = PreparedMessage.build(
            edition, self.settings, text_only=text_only, subject_prefix=TEST_PREFIX
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
                    recipient = Recipient(0, address, "", text_only, new_link_key())  # links name nobody
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

    def troubles(self, campaign_id: int) -> list[ledger.Trouble]:
        """Who a campaign has not reached: deferred, failed and bounced, with the relay's reply."""
        self.status(campaign_id)  # a clear error for a campaign that does not exist
        with self.audience.database.session() as session:
            return ledger.troubles(session, campaign_id)

    def active(self) -> list[CampaignReport]:
        """Campaigns being sent now (or paused halfway), oldest first."""
        self.audience.ready()
        going_on = (CampaignStatus.SENDING, CampaignStatus.PAUSED)
        with self.audience.database.session() as session:
            rows = session.scalars(
                select(Campaign).where(Campaign.status.in_(going_on)).order_by(Campaign.id)
            )
            return [campaigns.report(session, campaign) for campaign in rows]

    def finished_since(self, moment: dt.datetime) -> list[CampaignReport]:
        """Campaigns that finished (sent or cancelled) at or after `moment`, in the order they finished."""
        self.audience.ready()
        with self.audience.database.session() as session:
            rows = session.scalars(
                select(Campaign).where(Campaign.finished_at >= moment).order_by(Campaign.finished_at)
            )
            return [campaigns.report(session, campaign) for campaign in rows]

    def retry(self, campaign_id: int) -> campaigns.Retried:
        """Queue a campaign's failed messages again (not bounced ones); a finished campaign sends again."""
        self.audience.ready()
        with self.audience.database.session() as session:
            return campaigns.retry(session, campaign_id)

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
        notice: Callable[[str], None] | None = None,
        **options: float,
    ) -> WorkerStats:
        """Run a worker in this process until stopped (or, with `once`, until nothing is due).

        `notice` is told what the worker is waiting for (a relay that is down, rows another worker
        holds); with `once`, `WorkerStats.unfinished` says why it stopped with messages left."""
        self.audience.ready()
        worker = Worker(
            self.settings,
            self.audience,
            self.editor.renderer,
            notice=notice,
            **options,  # type: ignore[arg-type]
        )
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
            for name in (
                "sent",
                "deferred",
                "failed",
                "bounced",
                "skipped",
                "variants_rendered",
                "relay_unavailable",
            ):
                setattr(total, name, getattr(total, name) + getattr(outcome, name))
            total.started_campaigns += outcome.started_campaigns
            if outcome.unfinished and outcome.unfinished not in total.unfinished:
                total.unfinished = "; ".join(filter(None, (total.unfinished, outcome.unfinished)))
        crashed = [child.name for child in children if child.exitcode not in (0, None)]
        if problems or crashed:
            raise UserError(
                "; ".join(problems or [f"worker processes ended abnormally: {', '.join(crashed)}"])
            )
        return total


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


def _work_in_child(settings: Settings, once: bool, options: dict[str, float], results: Any) -> None:
    """One of `work_in_processes`'s workers: SIGTERM stops it cleanly; Ctrl-C is the parent's to handle."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def notice(text: str) -> None:  # the parent's stderr: a service's journal, or the terminal
        print(f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S} UTC {text}", file=sys.stderr, flush=True)

    try:
        sending = Sending(settings)
        try:
            results.put(sending.work(once=once, stop=stop, notice=notice, **options))
        finally:
            sending.close()
    except UserError as error:
        results.put(str(error))
