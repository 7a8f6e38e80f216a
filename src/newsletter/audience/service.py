"""`Audience`: the member list as library calls, over one database and one vocabulary.

The CLI (and later the web app and delivery) call these; each opens its own
transaction, so a failure leaves nothing half-done.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import IO

from sqlalchemy import exists, func, select

from newsletter.audience import members
from newsletter.audience.exporter import export_csv
from newsletter.audience.importer import ImportSummary, import_csv
from newsletter.audience.segments import Segment, Segments
from newsletter.audience.sync import sync_vocabulary
from newsletter.db.database import Database
from newsletter.db.models import MailingList, Status, Subscriber, Subscription, Suppression
from newsletter.errors import UserError
from newsletter.settings import Settings
from newsletter.vocabulary import Vocabulary


class Audience:
    """Members, lists and segments behind `settings.database_url`."""

    def __init__(self, settings: Settings, vocabulary: Vocabulary | None = None) -> None:
        self.settings = settings
        self.vocabulary = vocabulary or Vocabulary.load(settings.vocabulary_dir)
        self.database = Database(settings.database_url)

    def close(self) -> None:
        self.database.dispose()

    def upgrade(self) -> tuple[str | None, str]:
        """Create or migrate the schema, then bring topics and lists in step with their files."""
        before, after = self.database.upgrade()
        with self.database.session() as session:
            sync_vocabulary(session, self.vocabulary)
        return before, after

    def ready(self) -> None:
        """Refuse to run against a database that is missing or behind: say to run `db upgrade`."""
        self.database.require_current()

    @cached_property
    def segments(self) -> Segments:
        return Segments.load(self.settings.vocabulary_dir, self.vocabulary)

    def segment_counts(self) -> list[tuple[Segment, int]]:
        self.ready()
        segments = self.segments
        with self.database.session() as session:
            return [(segment, segments.count(session, segment.name)) for segment in segments.by_name.values()]

    def segment_sample(self, name: str, limit: int = 10) -> tuple[Segment, int, list[Subscriber]]:
        self.ready()
        segment = self.segments.get(name)
        with self.database.session() as session:
            return segment, self.segments.count(session, name), self.segments.sample(session, name, limit)

    def list_counts(self) -> list[tuple[str, str, int]]:
        """Each list with how many members on it can be mailed."""
        self.ready()
        with self.database.session() as session:
            sync_vocabulary(session, self.vocabulary)
            on_list = (
                select(MailingList.slug, MailingList.name, func.count(Subscriber.id))
                .outerjoin(Subscription, (Subscription.list_id == MailingList.id) & Subscription.subscribed)
                .outerjoin(
                    Subscriber,
                    (Subscriber.id == Subscription.subscriber_id)
                    & (Subscriber.status == Status.ACTIVE)
                    & ~exists().where(Suppression.email_hash == Subscriber.email_hash),
                )
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
        self.ready()
        return import_csv(
            self.database,
            self.vocabulary,
            path,
            source=source,
            lists=lists,
            report_path=report_path,
            progress=progress,
        )

    def export_csv(self, out: IO[str], segment: str | None = None) -> int:
        self.ready()
        where = self.segments.where(segment) if segment else None
        with self.database.session() as session:
            return export_csv(session, out, where)

    def member(self, email: str) -> members.MemberView:
        self.ready()
        with self.database.session() as session:
            return members.describe(session, members.require(session, email))

    def unsubscribe(self, email: str, list_slug: str | None = None, source: str = "admin") -> str:
        self.ready()
        if list_slug is not None and list_slug not in self.vocabulary.lists:
            raise UserError(f"--list {list_slug}: {self.vocabulary.unknown('lists', list_slug)}")
        with self.database.session() as session:
            return members.unsubscribe(session, members.require(session, email), source, list_slug)

    def erase(self, email: str, source: str = "admin") -> str:
        self.ready()
        with self.database.session() as session:
            member = members.require(session, email)
            shown = member.email
            members.erase(session, member, source)
        return (
            f"{shown}: erased; only a hashed entry remains so the address is never mailed or imported again"
        )
