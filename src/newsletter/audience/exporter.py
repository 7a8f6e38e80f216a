"""CSV export: every member (or one segment) with status, lists and topics, streamed.

Rows are read in batches from a streaming cursor, with each batch's lists and
topics fetched in two queries, so memory stays flat however long the list.
Cells that a spreadsheet would run as a formula (starting with `=`, `+`,
`-`, `@`, tab or carriage return) get a leading apostrophe from the one
formula-safe writer (`newsletter.csvsafe`); the importer removes it again, so
an export can be imported back unchanged.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from typing import IO, Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from newsletter import csvsafe
from newsletter.audience.profile import FIELDS
from newsletter.db.models import MailingList, Subscriber, SubscriberTopic, Subscription, Topic

COLUMNS = (
    "email",
    *FIELDS,  # a member's own details, in the order an import reads them
    "status",
    "lists",
    "topics",
    "joined",
    "confirmed",
    "attributes",
)
BATCH = 1000


def export_csv(session: Session, out: IO[str], where: ColumnElement[bool] | None = None) -> int:
    """Write the members matching `where` (everyone when None) to `out`; returns how many."""
    writer = csvsafe.writer(out)
    writer.writerow(COLUMNS)
    query = select(Subscriber).order_by(Subscriber.id).execution_options(yield_per=BATCH)
    if where is not None:
        query = query.where(where)
    count = 0
    for partition in session.scalars(query).partitions():
        members = list(partition)
        lists, topics = _memberships(session, [member.id for member in members])
        for member in members:
            writer.writerow(_cells(member, lists[member.id], topics[member.id]))
        count += len(members)
        session.expunge_all()  # keep the identity map from growing with the export
    return count


def _cells(member: Subscriber, lists: Iterable[str], topics: Iterable[str]) -> list[str]:
    return [
        member.email,
        member.name,
        member.organisation,
        member.sector or "",
        member.region or "",
        member.place,
        member.language,
        member.format.value,
        member.status.value,
        ";".join(lists),
        ";".join(topics),
        member.created_at.strftime("%Y-%m-%d %H:%M:%S"),
        member.confirmed_at.strftime("%Y-%m-%d %H:%M:%S") if member.confirmed_at else "",
        json.dumps(member.attributes, ensure_ascii=False, sort_keys=True) if member.attributes else "",
    ]


def _memberships(session: Session, ids: list[int]) -> tuple[dict[int, list[str]], dict[int, list[str]]]:
    lists: dict[int, list[str]] = defaultdict(list)
    topics: dict[int, list[str]] = defaultdict(list)
    rows: Any = session.execute(
        select(Subscription.subscriber_id, MailingList.slug)
        .join(MailingList, MailingList.id == Subscription.list_id)
        .where(Subscription.subscriber_id.in_(ids), Subscription.subscribed)
        .order_by(Subscription.subscriber_id, MailingList.slug)
    )
    for subscriber_id, slug in rows:
        lists[subscriber_id].append(slug)
    rows = session.execute(
        select(SubscriberTopic.subscriber_id, Topic.slug)
        .join(Topic, Topic.id == SubscriberTopic.topic_id)
        .where(SubscriberTopic.subscriber_id.in_(ids))
        .order_by(SubscriberTopic.subscriber_id, Topic.slug)
    )
    for subscriber_id, slug in rows:
        topics[subscriber_id].append(slug)
    return lists, topics
