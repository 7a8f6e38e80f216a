"""The Store: the member database, the vocabulary and the segments, opened once and passed in.

The CLI, the web app and each worker build one Store at start-up and hand it to everything that
reads or writes members and campaigns (`Audience`, `Sending`, `Worker`, `campaigns`, the pages).
Nothing else opens the database, reads the vocabulary or parses `segments.yaml`, so a component's
signature says all it depends on, and a worker never reaches through the CLI's import service.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path

from sqlalchemy import ColumnElement
from sqlalchemy.orm import Session

from newsletter.audience.segments import Segments
from newsletter.audience.sync import sync_vocabulary
from newsletter.db.database import Database
from newsletter.settings import Settings
from newsletter.vocabulary import Vocabulary


class Store:
    """One database, one vocabulary, and the segments defined beside it."""

    def __init__(self, database: Database, vocabulary: Vocabulary, vocabulary_dir: Path) -> None:
        self.database = database
        self.vocabulary = vocabulary
        self.vocabulary_dir = vocabulary_dir

    @classmethod
    def open(cls, settings: Settings, vocabulary: Vocabulary | None = None) -> Store:
        """The Store behind `settings` (the vocabulary read from its folder unless one is given)."""
        vocabulary = vocabulary or Vocabulary.load(settings.vocabulary_dir)
        return cls(Database(settings.database_url), vocabulary, settings.vocabulary_dir)

    def close(self) -> None:
        self.database.dispose()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed if the block ends normally, rolled back if not."""
        with self.database.session() as session:
            yield session

    def ready(self) -> None:
        """Refuse to run against a database that is missing or behind: say to run `db upgrade`."""
        self.database.require_current()

    def upgrade(self) -> tuple[str | None, str]:
        """Create or migrate the schema, then bring topics and lists in step with their files."""
        before, after = self.database.upgrade()
        with self.session() as session:
            sync_vocabulary(session, self.vocabulary)
        return before, after

    @cached_property
    def segments(self) -> Segments:
        """`segments.yaml`, parsed on first use (a command that never needs it never reads it)."""
        return Segments.load(self.vocabulary_dir, self.vocabulary)

    def audience(self, names: Iterable[str]) -> ColumnElement[bool]:
        """Everyone in any of these segments or on any of these lists, as one SQL condition."""
        return self.segments.audience(list(names), self.vocabulary.lists)
