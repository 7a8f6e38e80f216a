"""Campaigns: create, start, pause, resume, cancel, retry, and where each one stands.

A campaign keeps the issue's text as it was when it was checked and
scheduled. Starting a campaign is a guarded status change (only one worker
can win it) followed by the ledger snapshot, in one transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from newsletter.audience.store import Store
from newsletter.content.loader import load_issue
from newsletter.content.model import Issue
from newsletter.db.models import Campaign, CampaignStatus, Delivery, DeliveryStatus, Subscriber, utcnow
from newsletter.delivery import ledger
from newsletter.editor import Editor
from newsletter.errors import UserError
from newsletter.settings import Settings
from newsletter.vocabulary import Vocabulary

# Called in the transaction that fixes a campaign's recipients, before any message can go out.
OnStart = Callable[[Session, Campaign], None]

STARTED_WITHIN_SECONDS = 30  # a running worker starts a due campaign well within this
WHEN_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d")
# The same with a UTC offset (`+01:00`, `+0100`, `Z`): how to say which of a repeated hour is meant.
WHEN_FORMATS_WITH_OFFSET = (*(f"{pattern} %z" for pattern in WHEN_FORMATS[:3]), "%Y-%m-%dT%H:%M%z")


@dataclass(frozen=True)
class CampaignReport:
    """Where a campaign stands, read from the ledger."""

    campaign: Campaign
    counts: dict[str, int]
    rate_per_second: float
    seconds_left: float | None  # only while a worker is sending: no estimate when nobody is
    activity: ledger.Activity | None = None  # for a campaign that is sending: is anyone at work on it
    bounced_later: int = 0  # of the bounced, those a report said so after the message was sent
    complained: int = 0  # sent messages their member reported as spam

    @property
    def state(self) -> str:
        """The campaign's status in words, with its failures: `sent, 95 failed`. The status column
        says `sent` once nothing is left to try; these words say whether everyone was reached."""
        failed = self.counts.get(DeliveryStatus.FAILED.value, 0)
        status = self.campaign.status.value
        return f"{status}, {failed:,} failed" if failed else status

    @property
    def no_worker(self) -> bool:
        """Nothing is going out though it should: messages due and no worker keeping a lease (nor a
        worker waiting for the relay), or a campaign whose time came a while ago and that no worker
        has started (workers start due campaigns within a second)."""
        if self.activity is not None:
            activity = self.activity
            return not activity.fresh_leases and bool(activity.due_now) and activity.relay_trouble is None
        campaign = self.campaign
        overdue = utcnow() - campaign.send_at > dt.timedelta(seconds=STARTED_WITHIN_SECONDS)
        return campaign.status == CampaignStatus.SCHEDULED and overdue

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def done(self) -> int:
        return sum(self.counts.get(status.value, 0) for status in ledger.FINISHED)


def no_such_campaign(campaign_id: int) -> UserError:
    """The one message for a campaign number that names none, whichever command or page was given it."""
    return UserError(f"no campaign {campaign_id}; `newsletter campaigns` lists them")


def parse_when(text: str, timezone: str, name: str = "--at") -> dt.datetime:
    """`2023-10-20 09:00` in the configured zone (Europe/London: GMT or BST as the date has it) -> UTC.
    `name` is what the user typed it into, for the messages (the CLI's option, the desk's field)."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise UserError(f"timezone '{timezone}' is not a known time zone (such as Europe/London)") from None
    text = text.strip()
    for pattern in WHEN_FORMATS_WITH_OFFSET:
        try:
            return dt.datetime.strptime(text, pattern).astimezone(dt.UTC).replace(tzinfo=None)
        except ValueError:
            continue
    for pattern in WHEN_FORMATS:
        try:
            local = dt.datetime.strptime(text, pattern)
            break
        except ValueError:
            continue
    else:
        raise UserError(f"{name} '{text}': write the time as YYYY-MM-DD HH:MM, for example 2023-10-20 09:00")
    aware = local.replace(tzinfo=zone)
    # A time that does not exist (the hour skipped when clocks go forward) is refused, not guessed.
    if aware.astimezone(dt.UTC).astimezone(zone).replace(tzinfo=None) != local:
        raise UserError(
            f"{name} '{text}': that time does not exist in {timezone} (the clocks go forward then)"
        )
    # Nor is a time that happens twice (the hour repeated when clocks go back): say which one.
    first, second = aware.utcoffset(), aware.replace(fold=1).utcoffset()
    if first != second:
        raise UserError(
            f"{name} '{text}': that time happens twice in {timezone} (the clocks go back then); "
            f"add the UTC offset you mean: '{text} {_offset(first)}' or '{text} {_offset(second)}'"
        )
    return aware.astimezone(dt.UTC).replace(tzinfo=None)


def _offset(delta: dt.timedelta | None) -> str:
    minutes = int((delta or dt.timedelta()).total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


@dataclass(frozen=True)
class SendPlan:
    """What `send` is about to do, worked out before anything is written: the editor confirms it."""

    slug: str
    subject: str
    source: str  # the issue file's text, kept with the campaign
    audiences: list[str]
    send_at: dt.datetime  # UTC
    members: int  # members of the audience who can be mailed now
    already: int  # of them, members another campaign of this issue sent it to or is sending it to
    resend: bool

    @property
    def to_send(self) -> int:
        """Members the campaign would send to if it started now."""
        return self.members if self.resend else self.members - self.already


def plan(
    editor: Editor,
    store: Store,
    slug: str,
    audiences: list[str],
    send_at: dt.datetime | None = None,
    resend: bool = False,
) -> SendPlan:
    """Check the issue and count the audience, and who of it already has the issue; writes nothing."""
    if not audiences:
        raise UserError("say who to send to: --to SEGMENT_OR_LIST (one or more)")
    checked = editor.check(slug)
    checked.raise_for_problems()
    members, already = reach(store, checked.issue.slug, audiences)
    return SendPlan(
        slug=checked.issue.slug,
        subject=checked.edition.subject,
        source=checked.path.read_text(encoding="utf-8-sig"),
        audiences=list(dict.fromkeys(audiences)),
        send_at=send_at or utcnow(),
        members=members,
        already=already,
        resend=resend,
    )


def reach(store: Store, slug: str, audiences: list[str]) -> tuple[int, int]:
    """How many members of the audiences can be mailed now (each once, whatever they are in), and how
    many of them another campaign of issue `slug` sent it to or is sending it to."""
    store.ready()
    where = store.audience(audiences)
    count = select(func.count()).select_from(Subscriber)
    with store.session() as session:
        members = session.scalar(count.where(where)) or 0
        already = session.scalar(count.where(where & ledger.has_issue(slug))) or 0
    return members, already


def refuse_repeat(planned: SendPlan) -> None:
    """An issue goes to each member once: refuse a campaign that would reach nobody new."""
    if planned.resend or not planned.already or planned.to_send:
        return
    everyone = "all" if planned.already > 1 else "the"
    raise UserError(
        f"{everyone} {planned.already:,} member{'s' if planned.already != 1 else ''} of "
        f"{', '.join(planned.audiences)} already got {planned.slug} (or are being sent it) from an earlier "
        "campaign, so this one would send nothing; add --resend to send it to them again"
    )


def create(
    editor: Editor,
    store: Store,
    slug: str,
    audiences: list[str],
    send_at: dt.datetime | None,
    resend: bool = False,
) -> tuple[Campaign, int]:
    """Check the issue, resolve the audience, and schedule the campaign; returns it and the audience size now."""
    planned = plan(editor, store, slug, audiences, send_at, resend)
    refuse_repeat(planned)
    return schedule(store, planned), planned.to_send


def schedule(store: Store, planned: SendPlan) -> Campaign:
    """Write the campaign a plan describes; a worker starts it when its time comes."""
    with store.session() as session:
        campaign = Campaign(
            issue_slug=planned.slug,
            issue_source=planned.source,
            subject=planned.subject,
            audiences=planned.audiences,
            status=CampaignStatus.SCHEDULED,
            send_at=planned.send_at,
            created_at=utcnow(),
            resend=planned.resend,
        )
        session.add(campaign)
        session.flush()
    return campaign


def refuse_past(
    send_at: dt.datetime, text: str, timezone: str, now: dt.datetime | None = None, name: str = "--at"
) -> None:
    """`--at` earlier than the current minute would go out at once: surely not what was meant."""
    now = now or utcnow()
    if send_at < now.replace(second=0, microsecond=0):
        zone = ZoneInfo(timezone)
        local = now.replace(tzinfo=dt.UTC).astimezone(zone)
        instead = ", or leave out --at to send now" if name == "--at" else ""
        raise UserError(
            f"{name} '{text}' is in the past: it is now {local:%Y-%m-%d %H:%M} in {timezone}; "
            f"give a later time{instead}"
        )


def campaign_issue(campaign: Campaign, settings: Settings, vocabulary: Vocabulary) -> Issue:
    """The issue as it was when the campaign was scheduled (its kept text, not today's file)."""
    path = settings.issues_dir / campaign.issue_slug / "issue.yaml"
    return load_issue(path, vocabulary, text=campaign.issue_source)


def start_due(
    store: Store, domain: str, on_start: OnStart | None = None, now: dt.datetime | None = None
) -> list[int]:
    """Start every scheduled campaign whose time has come: fix its recipients in the ledger."""
    now = now or utcnow()
    with store.session() as session:
        due = list(
            session.scalars(
                select(Campaign.id).where(
                    Campaign.status == CampaignStatus.SCHEDULED, Campaign.send_at <= now
                )
            )
        )
    started = []
    for campaign_id in due:
        if start(store, campaign_id, domain, on_start):
            started.append(campaign_id)
    return started


def start(store: Store, campaign_id: int, domain: str, on_start: OnStart | None = None) -> bool:
    """Scheduled -> sending, with the snapshot, once; False if another worker already started it.
    `on_start` adds what the campaign keeps of its start, in the same transaction."""
    with store.session() as session:
        issue_slug = session.scalar(select(Campaign.issue_slug).where(Campaign.id == campaign_id))
        if issue_slug is None:
            return False
        ledger.lock_issue(session, issue_slug)
        won = session.execute(
            update(Campaign)
            .where(Campaign.id == campaign_id, Campaign.status == CampaignStatus.SCHEDULED)
            .values(status=CampaignStatus.SENDING, started_at=utcnow())
            .execution_options(synchronize_session=False)
        ).rowcount
        if not won:
            return False
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        where = store.audience(campaign.audiences)
        campaign.recipients = ledger.snapshot(session, campaign, where, domain)
        if on_start is not None:
            on_start(session, campaign)
        if not campaign.recipients:
            campaign.status, campaign.finished_at = CampaignStatus.SENT, utcnow()
    return True


@dataclass(frozen=True)
class Retried:
    """What `retry` did: failed messages queued again, and those left failed (the member had the issue since)."""

    campaign: Campaign
    queued: int
    left_failed: int
    reopened: bool  # the campaign had finished and is sending again


def retry(session: Session, campaign_id: int) -> Retried:
    """Queue a campaign's failed messages again (not bounced, not skipped), attempts counted afresh and
    due now; a finished campaign goes back to sending so a worker picks them up. Refuses a cancelled
    campaign, and one with nothing failed to send again."""
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise no_such_campaign(campaign_id)
    ledger.lock_issue(session, campaign.issue_slug)
    session.refresh(campaign)
    if campaign.status == CampaignStatus.CANCELLED:
        raise UserError(
            f"campaign {campaign_id} was cancelled; its failed messages are not sent again "
            "(send the issue anew to reach them)"
        )
    queued, left_failed = ledger.requeue_failed(session, campaign)
    if not queued:
        if left_failed:
            them = "member it failed" if left_failed == 1 else "members it failed"
            raise UserError(
                f"campaign {campaign_id} has no failed messages to retry: the {left_failed:,} {them} got "
                f"{campaign.issue_slug} from another campaign since"
            )
        raise UserError(
            f"campaign {campaign_id} has no failed messages to retry (bounced addresses are never retried)"
        )
    reopened = campaign.status == CampaignStatus.SENT
    if reopened:
        campaign.status, campaign.finished_at = CampaignStatus.SENDING, None
    return Retried(campaign, queued, left_failed, reopened)


def steer(session: Session, campaign_id: int, action: str) -> Campaign:
    """pause, resume or cancel; refuses what makes no sense (resuming a sent campaign...)."""
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise no_such_campaign(campaign_id)
    allowed = {
        "pause": ({CampaignStatus.SENDING, CampaignStatus.SCHEDULED}, CampaignStatus.PAUSED),
        "resume": ({CampaignStatus.PAUSED}, None),
        "cancel": (
            {CampaignStatus.SENDING, CampaignStatus.SCHEDULED, CampaignStatus.PAUSED},
            CampaignStatus.CANCELLED,
        ),
    }
    sources, target = allowed[action]
    if campaign.status not in sources:
        done = {"pause": "paused", "resume": "resumed", "cancel": "cancelled"}[action]
        raise UserError(f"campaign {campaign_id} is {campaign.status.value}; it cannot be {done}")
    if target is None:  # resume: back to sending if it had started, else to its schedule
        target = CampaignStatus.SENDING if campaign.started_at else CampaignStatus.SCHEDULED
    campaign.status = target
    if target == CampaignStatus.CANCELLED:
        campaign.finished_at = utcnow()
    return campaign


def report(session: Session, campaign: Campaign) -> CampaignReport:
    """Counts by delivery status, the recent sending rate and an estimate of the time left."""
    counts = dict(ledger.counts(session, campaign.id))
    window = utcnow() - dt.timedelta(seconds=60)
    recent = (
        session.scalar(
            select(func.count())
            .select_from(Delivery)
            .where(
                Delivery.campaign_id == campaign.id,
                Delivery.status == DeliveryStatus.SENT,
                Delivery.sent_at >= window,
            )
        )
        or 0
    )
    started = campaign.started_at
    span = min(60.0, (utcnow() - started).total_seconds()) if started else 0.0
    rate = recent / span if span > 0 else 0.0
    waiting = sum(
        counts.get(s.value, 0)
        for s in (DeliveryStatus.QUEUED, DeliveryStatus.DEFERRED, DeliveryStatus.SENDING)
    )
    activity = ledger.activity(session, campaign.id) if campaign.status == CampaignStatus.SENDING else None
    # Only while a worker keeps its leases up: a worker that stopped holds its rows until the lease
    # runs out, and no estimate can say when anyone will send them.
    working = activity is not None and activity.fresh_leases > 0
    left = waiting / rate if rate > 0 and working else None
    bounced_later, complained = session.execute(
        select(
            func.count(Delivery.sent_at).filter(Delivery.status == DeliveryStatus.BOUNCED),
            func.count(Delivery.complained_at),
        ).where(Delivery.campaign_id == campaign.id)
    ).one()
    return CampaignReport(campaign, counts, rate, left, activity, bounced_later or 0, complained or 0)
