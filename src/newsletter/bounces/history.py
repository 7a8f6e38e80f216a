"""What `newsletter bounces` shows and undoes: recent bounces and complaints with what was done, the
reports nobody could read (`--review`), and `undo` (the rule itself is `scoring.undo`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select

from newsletter.audience.store import Store
from newsletter.bounces.findings import Kind
from newsletter.bounces.scoring import undo
from newsletter.db.models import BounceEvent, Campaign, Subscriber, utcnow

# What `newsletter bounces` lists by default: what happened to members and to our mail. Auto-replies
# are left out (they change nothing and would drown the rest); unknown reports have `--review`.
LISTED = (Kind.HARD, Kind.SOFT, Kind.POLICY, Kind.COMPLAINT)


@dataclass(frozen=True)
class Event:
    """One line of `newsletter bounces`."""

    received_at: dt.datetime
    who: str  # the member's address, or words saying there is none (never held, or erased)
    kind: str
    source: str
    campaign: str  # "campaign 3 (2024-05)", or "" when it was no campaign's message
    status: str
    diagnostic: str
    action: str
    undone: bool


class Bounces:
    """The bounce history over a Store, for the CLI."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def recent(self, days: float = 30, review: bool = False, now: dt.datetime | None = None) -> list[Event]:
        """Events taken in over the last `days`, newest first (a report's own date may be older, or
        wrong): bounces and complaints, or (`review`) the reports that could not be classified."""
        self.store.ready()
        since = (now or utcnow()) - dt.timedelta(days=days)
        kinds = [Kind.UNKNOWN.value] if review else [kind.value for kind in LISTED]
        with self.store.session() as session:
            rows = session.execute(
                select(BounceEvent, Subscriber.email, Campaign.issue_slug)
                .outerjoin(Subscriber, Subscriber.id == BounceEvent.subscriber_id)
                .outerjoin(Campaign, Campaign.id == BounceEvent.campaign_id)
                .where(BounceEvent.created_at >= since, BounceEvent.kind.in_(kinds))
                .order_by(BounceEvent.created_at.desc(), BounceEvent.id.desc())
            ).all()
            return [
                Event(
                    received_at=event.received_at,
                    who=email or _nobody(event),
                    kind=event.kind,
                    source=event.source,
                    campaign=f"campaign {event.campaign_id} ({slug})" if event.campaign_id else "",
                    status=event.status or "",
                    diagnostic=event.diagnostic,
                    action=event.action,
                    undone=event.undone_at is not None,
                )
                for event, email, slug in rows
            ]

    def undo(self, email: str) -> str:
        """Restore a member a bounce or complaint suppressed (`scoring.undo`); a `UserError` says why not."""
        self.store.ready()
        with self.store.session() as session:
            return undo(session, email)


def _nobody(event: BounceEvent) -> str:
    """Who an event names when it names no member we hold: an address (kept only as its hash) that is
    not one of ours or was erased since, or no recipient at all (a provider's notice)."""
    return "no member (not one of ours, or erased since)" if event.email_hash else "no recipient (a notice)"
