"""Keep the database's topics and lists in step with `subscribers/topics.yaml` and `lists.yaml`.

The files are the source of truth (editors change them in a text editor);
the tables exist so that segments can be one SQL query. A word removed from a
file stays in the table while members still refer to it, and disappears from
forms and validation.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from newsletter.db.models import MailingList, Topic
from newsletter.vocabulary import Vocabulary


def sync_vocabulary(session: Session, vocabulary: Vocabulary) -> tuple[dict[str, int], dict[str, int]]:
    """Add new topics and lists, rename changed ones; return slug -> id for each."""
    topics = _sync(session, Topic, vocabulary.topics)
    lists = _sync(session, MailingList, vocabulary.lists)
    return topics, lists


def _sync(session: Session, model: type[Topic] | type[MailingList], words: dict[str, str]) -> dict[str, int]:
    existing = {row.slug: row for row in session.scalars(select(model))}
    for slug, name in words.items():
        row = existing.get(slug)
        if row is None:
            row = model(slug=slug, name=name)
            session.add(row)
            existing[slug] = row
        elif row.name != name:
            row.name = name
    session.flush()
    return {slug: row.id for slug, row in existing.items()}
