"""The editors' side of members' submissions: the queue, and each one accepted into a draft issue, asked
about, or declined.

A submission's `fields` are the item as an issue file writes it (`submissions.member` makes them with
the editor's own validation), so accepting one is adding that item to the draft's section of the same
kind, with `credit: ORGANISATION` unless the member asked not to be credited; a draft without such a
section gets one, before its contact section if it has one. The draft is written as the desk writes
every edit (comments and layout kept, nothing written over a change made meanwhile), and from then
on the item is edited like any other. Decisions are recorded on the submission; the member is told
by email by the caller, once the decision is committed.
"""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from newsletter.content.issuefile import read_issue_file, write_draft
from newsletter.content.model import CREDIT_LENGTH
from newsletter.db.models import Submission, SubmissionStatus, Subscriber, utcnow
from newsletter.errors import FieldProblem, UserError
from newsletter.submissions.member import KINDS

STORY = "story"  # the one kind that is a section of its own, not an item of one

OPEN = (SubmissionStatus.PENDING, SubmissionStatus.QUESTION)  # waiting for the editors
MAX_NOTE = 2000


@dataclass(frozen=True)
class Queued:
    """A submission as the desk lists it, with the member who sent it (None once they are erased)."""

    submission: Submission
    member: Subscriber | None

    @property
    def name(self) -> str:
        return (self.member.name if self.member else "") or self.submission.name

    @property
    def organisation(self) -> str:
        return (self.member.organisation if self.member else "") or self.submission.organisation

    @property
    def sector(self) -> str | None:
        return self.member.sector if self.member else None

    @property
    def kind_words(self) -> str:
        """ "a publication or report": the kind as a sentence says it."""
        kind = KINDS.get(self.submission.kind)
        return kind.label[0].lower() + kind.label[1:] if kind else self.submission.kind


@dataclass(frozen=True)
class Decided:
    """A decision, for the email that tells the member (`member` None: nobody left to tell)."""

    submission: Submission
    member: Subscriber | None
    issue_title: str | None = None


def queue(session: Session, open_only: bool = True) -> list[Queued]:
    """The submissions, newest first: only those waiting for the editors unless `open_only` is off."""
    query = (
        select(Submission, Subscriber)
        .outerjoin(Subscriber, Subscriber.id == Submission.subscriber_id)
        .order_by(Submission.created_at.desc(), Submission.id.desc())
    )
    if open_only:
        query = query.where(Submission.status.in_(OPEN))
    return [Queued(*row) for row in session.execute(query)]


def find(session: Session, submission_id: int) -> Queued:
    """One submission with its member; a `UserError` for a number that is not one."""
    row = session.execute(
        select(Submission, Subscriber)
        .outerjoin(Subscriber, Subscriber.id == Submission.subscriber_id)
        .where(Submission.id == submission_id)
    ).first()
    if row is None:
        raise UserError(f"no submission {submission_id}")
    return Queued(*row)


def with_item(data: Any, kind: str, fields: dict[str, Any], credit: str | None) -> dict[str, Any]:
    """The issue file's data with the submitted item added where an editor would put it."""
    if kind not in KINDS:
        raise UserError(f"a submission of an unknown kind {kind!r}")
    new = copy.deepcopy(data) if isinstance(data, dict) else {}
    item = dict(fields)  # a place update's own `kind` (a Marmot City...) is one of its fields
    if credit:
        item["credit"] = credit
    sections = new.get("sections")
    if not isinstance(sections, list):
        sections = new["sections"] = []
    section_kind = KINDS[kind].section
    if section_kind == STORY:  # a story is a section of its own
        _insert_section(sections, {"kind": STORY, **item})
        return new
    for section in sections:
        if isinstance(section, dict) and section.get("kind") == section_kind:
            items = section.get("items")
            if not isinstance(items, list):
                items = section["items"] = []
            items.append(item)
            return new
    _insert_section(sections, {"kind": section_kind, "items": [item]})
    return new


def _insert_section(sections: list[Any], section: dict[str, Any]) -> None:
    """A new section goes before the contact section (which closes an issue), else last."""
    for index, existing in enumerate(sections):
        if isinstance(existing, dict) and existing.get("kind") == "contact":
            sections.insert(index, section)
            return
    sections.append(section)


def accept(session: Session, submission_id: int, issue_path: Path, slug: str, editor: str) -> Decided:
    """Add the submission to the draft `issue_path` as an item and mark it accepted into `slug`."""
    found = _open(session, submission_id)
    submission = found.submission
    current = read_issue_file(issue_path)
    # A member's organisation may be longer than a credit (`content.model.CREDIT_LENGTH`): cut, not refused.
    credit = found.organisation.strip()[:CREDIT_LENGTH].strip() if submission.credit else None
    write_draft(
        issue_path,
        with_item(current.data, submission.kind, submission.fields, credit or None),
        current.version,
    )
    _decide(submission, SubmissionStatus.ACCEPTED, editor, note="", issue_slug=slug)
    title = current.data.get("title") if isinstance(current.data, dict) else None
    return Decided(submission, found.member, str(title) if title else slug)


def ask(session: Session, submission_id: int, question: str, editor: str) -> Decided:
    """Ask the member something about it: it waits for their answer (by email) as `question`."""
    found = _open(session, submission_id)
    _decide(found.submission, SubmissionStatus.QUESTION, editor, note=_note(question, "question", "ask"))
    return Decided(found.submission, found.member)


def decline(session: Session, submission_id: int, reason: str, editor: str) -> Decided:
    """Decline it, saying why (the member is told)."""
    found = _open(session, submission_id)
    _decide(found.submission, SubmissionStatus.DECLINED, editor, note=_note(reason, "reason", "say why"))
    return Decided(found.submission, found.member)


def _open(session: Session, submission_id: int) -> Queued:
    found = find(session, submission_id)
    if found.submission.status not in OPEN:
        raise UserError(
            f"submission {submission_id} was already {found.submission.status.value}: nothing was changed"
        )
    return found


def _note(text: str, field: str, verb: str) -> str:
    words = text.strip()
    if not words:
        raise FieldProblem(field, f"{verb}: the member reads this in the email we send them")
    if len(words) > MAX_NOTE:
        raise FieldProblem(field, f"keep it under {MAX_NOTE:,} characters (it has {len(words):,})")
    return words


def _decide(
    submission: Submission,
    status: SubmissionStatus,
    editor: str,
    note: str,
    issue_slug: str | None = None,
) -> None:
    submission.status = status
    submission.note = note
    submission.issue_slug = issue_slug
    submission.decided_by = editor
    submission.decided_at = utcnow()


def age(submission: Submission, now: dt.datetime | None = None) -> str:
    """How long ago it came, in words the queue shows ("3 days ago")."""
    seconds = ((now or utcnow()) - submission.created_at).total_seconds()
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'' if count == 1 else 's'} ago"
    return "just now"
