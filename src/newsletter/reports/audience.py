"""How the membership grows and changes, month by month: for the network's reports to its funders.

Counted from the member table (who is a member now, by status, sector and region; when each joined)
and the consent history, which the pipeline keeps anyway as proof of consent (confirmations,
unsubscribes, complaints, erasures, and where each member's consent came from), and from the bounces
taken in. Each figure is one grouped query: a million members are counted by the database, not read.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from newsletter.audience.bouncing import Kind
from newsletter.audience.consent import Action
from newsletter.db.models import BounceEvent, ConsentRecord, Status, Subscriber, utcnow

MONTHS = 12
# Leaving, for the members at each month's end. Erasures are not among them: an erased member's row is
# gone, so they are not counted as having joined either.
LEAVING = (Action.UNSUBSCRIBED.value, Action.COMPLAINED.value)
TOP_SOURCES = 10


@dataclass(frozen=True)
class Month:
    """One month's changes (`month` is `YYYY-MM`) and the members at its end."""

    month: str
    joined: int  # members added: signed up or imported
    confirmed: int
    unsubscribed: int
    bounced: int  # bounces taken in that count against the member (hard and soft)
    complained: int
    members: (
        int  # joined by the month's end (and not erased) less those who unsubscribed or complained by then
    )


@dataclass(frozen=True)
class AudienceReport:
    by_status: dict[str, int]  # every member now, by status
    months: list[Month]  # oldest first
    by_sector: list[tuple[str, int]]  # active members, most first ("not given" for none)
    by_region: list[tuple[str, int]]
    sources: list[tuple[str, int]]  # where consent came from (sign-up forms, imports), most first


def month_of(column: ColumnElement[dt.datetime], postgres: bool) -> ColumnElement[str]:
    """`YYYY-MM` of a timestamp, in the database: each backend has its own function for it."""
    if postgres:
        return func.to_char(column, "YYYY-MM")
    return func.strftime("%Y-%m", column)


def audience_report(session: Session, months: int = MONTHS, now: dt.datetime | None = None) -> AudienceReport:
    """The membership now and over the last `months` months (the current one included)."""
    now = now or utcnow()
    postgres = session.get_bind().dialect.name == "postgresql"
    labels = _last_months(now, months)
    first = dt.datetime.strptime(labels[0], "%Y-%m")

    def per_month(column: ColumnElement[dt.datetime], *where: ColumnElement[bool]) -> dict[str, int]:
        month = month_of(column, postgres)
        query = select(month, func.count()).where(column >= first, *where).group_by(month)
        return {label: count for label, count in session.execute(query)}

    def before_first(column: ColumnElement[dt.datetime], *where: ColumnElement[bool]) -> int:
        return session.scalar(select(func.count()).where(column < first, *where)) or 0

    joined = per_month(Subscriber.created_at)
    consent = {
        action: per_month(ConsentRecord.created_at, ConsentRecord.action == action)
        for action in (Action.CONFIRMED.value, Action.UNSUBSCRIBED.value, Action.COMPLAINED.value)
    }
    left = per_month(ConsentRecord.created_at, ConsentRecord.action.in_(LEAVING))
    bounced = per_month(BounceEvent.created_at, BounceEvent.kind.in_([Kind.HARD.value, Kind.SOFT.value]))
    # Members at the end of each month: those who joined by then, less those who left by then.
    members = before_first(Subscriber.created_at) - before_first(
        ConsentRecord.created_at, ConsentRecord.action.in_(LEAVING)
    )
    rows = []
    for label in labels:
        members += joined.get(label, 0) - left.get(label, 0)
        rows.append(
            Month(
                month=label,
                joined=joined.get(label, 0),
                confirmed=consent[Action.CONFIRMED.value].get(label, 0),
                unsubscribed=consent[Action.UNSUBSCRIBED.value].get(label, 0),
                bounced=bounced.get(label, 0),
                complained=consent[Action.COMPLAINED.value].get(label, 0),
                members=members,
            )
        )
    by_status = {
        status.value: count
        for status, count in session.execute(
            select(Subscriber.status, func.count()).group_by(Subscriber.status)
        )
    }
    return AudienceReport(
        by_status=by_status,
        months=rows,
        by_sector=_active_by(session, Subscriber.sector),
        by_region=_active_by(session, Subscriber.region),
        sources=[
            (source, count)
            for source, count in session.execute(
                select(ConsentRecord.source, func.count())
                .where(ConsentRecord.action.in_([Action.SUBSCRIBED.value, Action.IMPORTED.value]))
                .group_by(ConsentRecord.source)
                .order_by(func.count().desc(), ConsentRecord.source)
                .limit(TOP_SOURCES)
            )
        ],
    )


def _active_by(session: Session, column: ColumnElement[str | None]) -> list[tuple[str, int]]:
    found = session.execute(
        select(column, func.count()).where(Subscriber.status == Status.ACTIVE).group_by(column)
    ).all()
    return sorted(
        ((value or "not given", count) for value, count in found), key=lambda pair: (-pair[1], pair[0])
    )


def _last_months(now: dt.datetime, count: int) -> list[str]:
    """`YYYY-MM` of the last `count` months, oldest first, this one last."""
    year, month = now.year, now.month
    labels = []
    for _ in range(count):
        labels.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return labels[::-1]
