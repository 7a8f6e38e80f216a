"""`Audience`: the member list as library calls for the CLI, over a `Store`.

Each call opens its own transaction, so a failure leaves nothing half-done. The web pages, the
worker and campaigns do not go through here: they take the `Store` itself.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import IO

from sqlalchemy import func, select

from newsletter.audience import members
from newsletter.audience.exporter import export_csv
from newsletter.audience.importer import ImportSummary, import_csv
from newsletter.audience.segments import Segment, Segments
from newsletter.audience.store import Store
from newsletter.audience.sync import sync_vocabulary
from newsletter.db import rules
from newsletter.db.models import MailingList, Subscriber, Subscription
from newsletter.errors import UserError
from newsletter.settings import Settings


class Audience:
    """Members, lists and segments: the calls `newsletter subscribers`, `segments` and `lists` make."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @classmethod
    def open(cls, settings: Settings) -> Audience:
        """The member calls over a Store of their own (the CLI opens one per command)."""
        return cls(Store.open(settings))

    def close(self) -> None:
        self.store.close()

    def upgrade(self) -> tuple[str | None, str]:
        """Create or migrate the schema, then bring topics and lists in step with their files."""
        return self.store.upgrade()

    @property
    def segments(self) -> Segments:
        return self.store.segments

    def segment_counts(self) -> list[tuple[Segment, int]]:
        self.store.ready()
        segments = self.segments
        with self.store.session() as session:
            return [(segment, segments.count(session, segment.name)) for segment in segments.by_name.values()]

    def segment_sample(self, name: str, limit: int = 10) -> tuple[Segment, int, list[Subscriber]]:
        self.store.ready()
        segment = self.segments.get(name)
        with self.store.session() as session:
            return segment, self.segments.count(session, name), self.segments.sample(session, name, limit)

    def list_counts(self) -> list[tuple[str, str, int]]:
        """Each list with how many members on it can be mailed."""
        self.store.ready()
        with self.store.session() as session:
            sync_vocabulary(session, self.store.vocabulary)
            on_list = (
                select(MailingList.slug, MailingList.name, func.count(Subscriber.id))
                .outerjoin(Subscription, (Subscription.list_id == MailingList.id) & Subscription.subscribed)
                .outerjoin(Subscriber, (Subscriber.id == Subscription.subscriber_id) & rules.mailable())
                .group_by(MailingList.slug, MailingList.name)
                .order_by(MailingList.slug)
            )
            return [(slug, name, count) for slug, name, count in session.execute(on_list)]

    def import_csv(
        self,
        path: Path,
        lists: tuple[str, ...] = (),
        source: str | None = None,
        report_path: Path | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> ImportSummary:
        self.store.ready()
        return import_csv(
            self.store.database,
            self.store.vocabulary,
            path,
            source=source,
            lists=lists,
            report_path=report_path,
            progress=progress,
        )

    def export_csv(self, out: IO[str], segment: str | None = None) -> int:
        self.store.ready()
        where = self.segments.where(segment) if segment else None
        with self.store.session() as session:
            return export_csv(session, out, where)

    def member(self, email: str) -> members.MemberView:
        self.store.ready()
        with self.store.session() as session:
            return members.describe(session, members.require(session, email))

    def unsubscribe(self, email: str, list_slug: str | None = None, source: str = "admin") -> str:
        self.store.ready()
        if list_slug is not None and list_slug not in self.store.vocabulary.lists:
            raise UserError(f"--list {list_slug}: {self.store.vocabulary.unknown('lists', list_slug)}")
        with self.store.session() as session:
            return members.unsubscribe(session, members.require(session, email), source, list_slug)

    def erase(self, email: str, source: str = "admin") -> str:
        self.store.ready()
        with self.store.session() as session:
            member = members.require(session, email)
            shown = member.email
            members.erase(session, member, source)
        return (
            f"{shown}: erased; only a hashed entry remains so the address is never mailed or imported again"
        )
