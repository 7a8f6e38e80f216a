"""What a member, or each member of a segment, will receive: seen before sending, not after.

Topic targeting and regional ordering make members' emails differ. An editor
must be able to see, before sending, that a Welsh council member who did not
pick `marmot-places` will not get the Gwent report. The keys and the content
come from the same `Personaliser` the worker uses, and the members' choices
are read the way the worker's claim reads them, so the preview is the email.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from newsletter.audience import members
from newsletter.content.model import Issue
from newsletter.db.models import Delivery, Format, Subscriber
from newsletter.delivery import ledger
from newsletter.delivery.variants import Personaliser, VariantKey
from newsletter.vocabulary import Vocabulary


@dataclass(frozen=True)
class Profile:
    """The choices of one member that personalisation looks at."""

    email: str
    topics: tuple[str, ...]
    region: str | None
    text_only: bool


@dataclass(frozen=True)
class Foreseen:
    """One distinct email: who gets it, and the issue as they will read it."""

    label: str
    members: int
    example: str  # one member who gets it
    issue: Issue
    text_only: bool
    left_out: tuple[str, ...]  # tagged sections and items these members do not get
    region_first: str | None  # the region whose place updates come first for these members


def member_profile(session: Session, email: str) -> Profile:
    """One member's choices; a clear error names an address that is not a member."""
    member = members.require(session, email)
    return _profiles(session, Subscriber.id == member.id)[0]


def audience_profiles(session: Session, where: ColumnElement[bool]) -> list[Profile]:
    """Every member of an audience (a segment's condition), with their choices."""
    return _profiles(session, where)


def _profiles(session: Session, where: ColumnElement[bool]) -> list[Profile]:
    rows = session.execute(
        select(Subscriber.id, Subscriber.email, Subscriber.region, Subscriber.format)
        .where(where)
        .order_by(Subscriber.id)
    ).all()
    chosen = ledger.member_topics(session.connection(), [row.id for row in rows])
    return [
        Profile(row.email, tuple(sorted(chosen.get(row.id, ()))), row.region, row.format == Format.TEXT)
        for row in rows
    ]


def variants_of(
    session: Session, campaign_id: int, issue: Issue, vocabulary: Vocabulary
) -> list[dict[str, object]]:
    """The distinct emails a campaign makes for the members in its ledger, most members first, each
    described without naming anyone: what its report keeps of who got which content."""
    in_ledger = Subscriber.id.in_(select(Delivery.subscriber_id).where(Delivery.campaign_id == campaign_id))
    return [
        {"description": what_they_get(view, vocabulary.regions), "members": view.members}
        for view in foresee(issue, _profiles(session, in_ledger))
    ]


def foresee(issue: Issue, profiles: list[Profile]) -> list[Foreseen]:
    """The distinct emails these members will get, most members first."""
    personaliser = Personaliser(issue)
    groups: dict[VariantKey, list[Profile]] = defaultdict(list)
    for profile in profiles:
        groups[personaliser.key(profile.topics, profile.region, profile.text_only)].append(profile)
    ordered = sorted(groups.items(), key=lambda pair: -len(pair[1]))
    foreseen = []
    for number, (key, group) in enumerate(ordered, start=1):
        left_out = tuple(personaliser.left_out(key))
        if len(profiles) == 1:
            label = f"as {group[0].email}"
        else:
            label = f"variant {number}: {len(group):,} member{'s' if len(group) != 1 else ''}"
        foreseen.append(
            Foreseen(
                label,
                len(group),
                group[0].email,
                personaliser.issue_for(key),
                key.text_only,
                left_out,
                key.region,
            )
        )
    return foreseen


def describe(view: Foreseen, names: dict[str, str] | None = None, most: int = 3) -> str:
    """One line for the terminal and the preview's menu: who, in what format, what comes first, and
    the first `most` of what they miss (with how many more)."""
    who = view.label if view.members == 1 else f"{view.label} (for example {view.example})"
    return f"{who}, {what_they_get(view, names, most)}"


def what_they_get(view: Foreseen, names: dict[str, str] | None = None, most: int = 3) -> str:
    """The content of one distinct email in words, naming nobody: for a campaign's report."""
    parts = ["plain text only" if view.text_only else "HTML and text"]
    if view.region_first:
        parts.append(f"{(names or {}).get(view.region_first, view.region_first)} first in the place updates")
    if view.left_out:
        shown = [_short(name) for name in view.left_out[:most]]
        more = len(view.left_out) - len(shown)
        count = f"{len(view.left_out)} tagged item{'s' if len(view.left_out) != 1 else ''}"
        parts.append(f"without {count}: {'; '.join(shown)}{f' and {more} more' if more else ''}")
    else:
        parts.append("everything in the issue")
    return ", ".join(parts)


def _short(described: str, length: int = 40) -> str:
    """`A very long report title (topic-a, topic-b)` with the title cut and its topics kept whole."""
    title, opening, topics = described.rpartition(" (")
    if not opening:
        title, topics = described, ""
    if len(title) > length:
        title = title[: length - 1].rstrip() + "…"
    return f"{title} ({topics}" if opening else title
