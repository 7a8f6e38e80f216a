"""What members do for themselves: sign up, confirm, change their details, change address, revoke their
links, download or erase what is held about them.

The subscriber web pages are a thin layer over these functions (no Flask here): each takes an open
session, so the page's request is one transaction, and every change of consent goes through
`consent.record` with when, how, the client's address and user agent, and the consent wording's version.

Links name a member by a signed token (`delivery.tokens`) holding their id and a tag of their own key
(`Subscriber.link_key`); `member_for` turns one into the member or a `LinkProblem` that says why not, in
the words the page shows. A link whose member was erased, or whose id now belongs to another row, names
nobody: it never opens someone else's pages.

A confirmation link confirms the sign-up it was sent for, once: the newest sign-up made before the link,
while nothing has settled it since (a confirmation, an import, an unsubscription). Leaving is final until
the member signs up again and follows the new link.
"""

from __future__ import annotations

import calendar
import datetime as dt
import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from newsletter.audience import addresses, members
from newsletter.audience.consent import Action, record
from newsletter.db.models import (
    Campaign,
    ConsentRecord,
    Delivery,
    Format,
    MailingList,
    Status,
    Submission,
    Subscriber,
    SubscriberTopic,
    Subscription,
    Suppression,
    Topic,
    new_link_key,
    utcnow,
)
from newsletter.tokens import EXPIRED, GONE, KEYLESS, BadToken, Tokens

DAY = 24 * 3600
# How long each kind of link works. Unsubscribe and preferences links sit in every issue and must keep
# working for as long as people keep their email; the others are asked for and used soon after. A submit
# link (in every issue's footer too) speaks for the member to the editors, so it works for the issue it
# came in and the next, not for as long as a forwarded email is kept: after that /submit mails a new one.
MAX_AGE = {
    "unsubscribe": None,
    "preferences": None,
    "confirm": 7 * DAY,
    "email": 2 * DAY,
    "data": DAY,
    "submit": 60 * DAY,
}
# Links that a member's "send me new links" stops. Unsubscribe links keep working: leaving must stay
# as easy as joining, and an old issue's List-Unsubscribe header must still be honoured.
REVOCABLE = frozenset({"preferences", "confirm", "email", "data", "submit"})
# Links made before members had keys (schema 0005) that still work, for the member who was there then:
# the ones in every issue already sent. The others lived a few days at most: they are asked for again.
KEYLESS_PURPOSES = frozenset({"unsubscribe", "preferences"})
NOT_MAILED = (Status.BOUNCED, Status.COMPLAINED)
CONFIRMABLE = (Status.PENDING, Status.UNSUBSCRIBED)
# What settles a sign-up: once one of these is recorded after it, its confirmation link has done its work.
SETTLES_SIGN_UP = (Action.CONFIRMED, Action.IMPORTED, Action.UNSUBSCRIBED)


@dataclass(frozen=True)
class Client:
    """Who is asking, as far as the web server can tell: kept in consent records."""

    ip_address: str | None = None
    user_agent: str | None = None

    def how(self) -> dict[str, str | None]:
        return {"ip_address": self.ip_address, "user_agent": self.user_agent}


@dataclass(frozen=True)
class Profile:
    """The details a member chooses on the sign-up and preferences pages (slugs, already checked)."""

    name: str = ""
    organisation: str = ""
    sector: str | None = None
    region: str | None = None
    topics: tuple[str, ...] = ()
    lists: tuple[str, ...] = ()
    format: Format = Format.HTML

    def as_details(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "organisation": self.organisation,
            "sector": self.sector,
            "region": self.region,
            "topics": list(self.topics),
            "lists": list(self.lists),
            "format": self.format.value,
        }

    @classmethod
    def from_details(cls, details: dict[str, Any]) -> Profile:
        return cls(
            name=details.get("name") or "",
            organisation=details.get("organisation") or "",
            sector=details.get("sector"),
            region=details.get("region"),
            topics=tuple(details.get("topics") or ()),
            lists=tuple(details.get("lists") or ()),
            format=Format(details.get("format") or Format.HTML.value),
        )


class Reply(enum.StrEnum):
    """What a sign-up should send; the page says the same thing whichever it is."""

    CONFIRM = "confirm"  # a confirmation link (new, pending or unsubscribed address)
    ALREADY = "already"  # already a member: a link to their preferences instead
    NOTHING = "nothing"  # suppressed, erased, bounced or complained: never mailed


@dataclass(frozen=True)
class SignUp:
    """What a sign-up did: what to send, to whom, and what it wrote (so `withdraw_sign_up` can undo it)."""

    reply: Reply
    subscriber_id: int | None
    email: str
    created: bool = False  # this sign-up made the pending member
    record_id: int | None = None  # the "subscribed" consent record it added
    # The member's key, for the link the email carries; a key nobody holds when there is no member
    # (the pages still build a link they do not send, so every sign-up takes the same time).
    link_key: str = field(default_factory=new_link_key)


class LinkProblem(Exception):
    """A link that does not lead to a member; `kind` picks the page and its HTTP status."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind  # "bad", "expired", "gone" (erased or never existed), "revoked", "used"


class AddressRefused(Exception):
    """A new address that cannot be used; the message says why, for the member who asked."""


@dataclass(frozen=True)
class Link:
    """A member found through a link, and when that link was made (Unix seconds)."""

    member: Subscriber
    issued_at: int


def seconds(moment: dt.datetime) -> int:
    """A stored UTC time (naive) as Unix seconds, the unit tokens are dated in."""
    return calendar.timegm(moment.utctimetuple())


def member_for(session: Session, tokens: Tokens, purpose: str, token: str) -> Link:
    """The member a link names, or `LinkProblem`: bad (tampered, malformed, wrong purpose), expired,
    gone (erased, or the id is another member's now), revoked (older than the member's "new links"
    request)."""

    def key_of(subscriber_id: int) -> str | None:
        member = session.get(Subscriber, subscriber_id)
        return None if member is None else member.link_key

    try:
        subscriber_id, issued_at = tokens.read_timed(purpose, token, key_of, MAX_AGE[purpose])
    except BadToken as error:
        if error.reason == KEYLESS:
            return _keyless_link(session, tokens, purpose, token)
        raise LinkProblem(_LINK_PROBLEMS.get(error.reason, "bad")) from None
    member = session.get(Subscriber, subscriber_id)  # already loaded by key_of
    assert member is not None
    return _current_link(member, purpose, issued_at)


_LINK_PROBLEMS = {EXPIRED: "expired", GONE: "gone"}


def _keyless_link(session: Session, tokens: Tokens, purpose: str, token: str) -> Link:
    """A link made before members had keys: only an unsubscribe or preferences link (they are in issues
    already sent), only for a member who was here when keys came (and so when it was made), and only if
    it was made after that member's row was: before 0005 an erased newest member's id went to the next
    person, and a link older than the row was made for somebody else."""
    if purpose not in KEYLESS_PURPOSES:
        raise LinkProblem("expired")
    try:
        subscriber_id, issued_at = tokens.read_keyless(purpose, token, MAX_AGE[purpose])
    except BadToken as error:
        raise LinkProblem(_LINK_PROBLEMS.get(error.reason, "bad")) from None
    assert issued_at is not None  # both purposes are timed
    member = session.get(Subscriber, subscriber_id)
    if (
        member is None
        or member.keyless_links_until is None
        or not seconds(member.created_at) <= issued_at <= seconds(member.keyless_links_until)
    ):
        raise LinkProblem("gone")
    return _current_link(member, purpose, issued_at)


def _current_link(member: Subscriber, purpose: str, issued_at: int) -> Link:
    if purpose in REVOCABLE and not link_is_current(member, issued_at):
        raise LinkProblem("revoked")
    return Link(member, issued_at)


def link_is_current(member: Subscriber, issued_at: int) -> bool:
    """False for a link made before the member revoked their links."""
    return member.links_valid_from is None or issued_at >= seconds(member.links_valid_from)


def sign_up(
    session: Session, email: str, profile: Profile, wording_version: str, client: Client, source: str = "web"
) -> SignUp:
    """Ask to join: a new address becomes a pending member. Nothing about an existing member changes
    until they confirm; what they asked for is kept in the consent record and applied then."""
    normal = addresses.normalise(email)
    if _suppressed(session, normal):
        return SignUp(Reply.NOTHING, None, normal)
    member = members.find(session, normal)
    created = False
    if member is None:
        member, created = _new_pending(session, normal, profile)
    if member.status in NOT_MAILED:
        return SignUp(Reply.NOTHING, member.id, member.email, link_key=member.link_key)
    if member.status == Status.ACTIVE:
        return SignUp(Reply.ALREADY, member.id, member.email, link_key=member.link_key)
    asked = record(
        session,
        Action.SUBSCRIBED,
        source,
        subscriber_id=member.id,
        wording_version=wording_version,
        details=profile.as_details(),
        **client.how(),
    )
    session.flush()
    return SignUp(Reply.CONFIRM, member.id, member.email, created, asked.id, member.link_key)


def withdraw_sign_up(session: Session, sign_up: SignUp) -> None:
    """Undo a sign-up whose email could not be sent.

    The person was told it did not work and to try again, so nothing of it is kept: its consent
    record goes, and so does the member it created while that member is still pending and nobody
    else has asked for the address meanwhile. A later try starts afresh (a new pending member, a
    working link); an earlier pending request, and its link, stand as they were.
    """
    if sign_up.record_id is not None:
        session.execute(delete(ConsentRecord).where(ConsentRecord.id == sign_up.record_id))
    if sign_up.created and sign_up.subscriber_id is not None:
        others = select(ConsentRecord.id).where(ConsentRecord.subscriber_id == sign_up.subscriber_id)
        session.execute(
            delete(Subscriber).where(
                Subscriber.id == sign_up.subscriber_id,
                Subscriber.status == Status.PENDING,
                ~others.exists(),
            )
        )


def _new_pending(session: Session, email: str, profile: Profile) -> tuple[Subscriber, bool]:
    """A new pending member, or the one a simultaneous sign-up for the address just made; True if
    this call made it."""
    member = Subscriber(
        email=email,
        email_key=addresses.key(email),
        email_hash=addresses.address_hash(email),
        name=profile.name,
        organisation=profile.organisation,
        sector=profile.sector,
        region=profile.region,
        format=profile.format,
        status=Status.PENDING,
        attributes={},
    )
    try:
        with session.begin_nested():  # two sign-ups for one new address at once: the second finds the first
            session.add(member)
    except IntegrityError:
        found = members.find(session, email)
        assert found is not None
        return found, False
    return member, True


def needs_confirming(member: Subscriber) -> bool:
    return member.status in CONFIRMABLE


def confirmable(session: Session, link: Link) -> bool:
    """Whether a confirmation link has something to confirm: False when the member is already active
    (nothing to do); `LinkProblem("gone")` for a member who must not be mailed, `LinkProblem("used")`
    when the sign-up the link was sent for is not the one waiting (`waiting_sign_up`)."""
    return _sign_up_to_confirm(session, link) is not None


def _sign_up_to_confirm(session: Session, link: Link) -> ConsentRecord | None:
    member = link.member
    if member.status == Status.ACTIVE:
        return None
    if not needs_confirming(member):
        raise LinkProblem("gone")
    try:
        return waiting_sign_up(session, link)
    except LinkProblem:
        session.refresh(member)
        if member.status == Status.ACTIVE:  # confirmed a moment ago, by another click on this link
            return None
        raise


def waiting_sign_up(session: Session, link: Link) -> ConsentRecord:
    """The "subscribed" record a confirmation link was sent for: the newest made before the link (which
    is dated in whole seconds, after the record was written). `LinkProblem("used")` unless it is the
    member's newest sign-up and nothing has settled it since (confirmed, imported, unsubscribed)."""
    history = session.execute(
        select(ConsentRecord.id, ConsentRecord.action, ConsentRecord.created_at)
        .where(
            ConsentRecord.subscriber_id == link.member.id,
            ConsentRecord.action.in_([Action.SUBSCRIBED.value, *(a.value for a in SETTLES_SIGN_UP)]),
        )
        .order_by(ConsentRecord.id)
    ).all()
    sign_ups = [row for row in history if row.action == Action.SUBSCRIBED.value]
    sent_for = [row for row in sign_ups if seconds(row.created_at) <= link.issued_at]
    if not sent_for or sent_for[-1].id != sign_ups[-1].id:
        raise LinkProblem("used")
    if any(row.id > sent_for[-1].id for row in history if row.action != Action.SUBSCRIBED.value):
        raise LinkProblem("used")
    asked = session.get(ConsentRecord, sent_for[-1].id)
    assert asked is not None
    return asked


def confirm(session: Session, link: Link, client: Client, source: str = "web") -> bool:
    """Make a pending (or returning) member active with what their sign-up asked for; False if there is
    nothing to do (already active, or a simultaneous confirmation did it). `LinkProblem` as `confirmable`.

    The change of status is one conditional UPDATE, and only the request whose UPDATE changed the row
    writes the "confirmed" record: two confirmations at once record one.
    """
    member = link.member
    asked = _sign_up_to_confirm(session, link)
    if asked is None:
        return False
    now = utcnow()
    changed = {"status": Status.ACTIVE, "confirmed_at": now, "unsubscribed_at": None, "updated_at": now}
    if not members.change_status(session, member, (member.status,), changed):  # as it was when checked
        if member.status == Status.ACTIVE:  # a simultaneous confirmation did it
            return False
        raise LinkProblem("used")  # they left, or were imported, while this was on its way
    profile = Profile.from_details(asked.details or {})
    _apply_profile(member, profile, from_sign_up=True)
    _set_topics(session, member, profile.topics)
    for slug in profile.lists:
        _join_list(session, member, slug)
    record(
        session,
        Action.CONFIRMED,
        source,
        subscriber_id=member.id,
        wording_version=asked.wording_version,
        details={"lists": list(profile.lists)},
        **client.how(),
    )
    return True


def current_profile(session: Session, member: Subscriber) -> Profile:
    """The member's details as the preferences form shows them (lists they are still on)."""
    view = members.describe(session, member)
    return Profile(
        name=member.name,
        organisation=member.organisation,
        sector=member.sector,
        region=member.region,
        topics=tuple(view.topics),
        lists=tuple(slug for slug, on in view.lists if on),
        format=member.format,
    )


def update_preferences(
    session: Session, member: Subscriber, profile: Profile, client: Client, source: str = "preferences"
) -> list[str]:
    """Save the preferences form; returns the names of what changed (recorded when anything did).

    Leaving a list goes through `members.unsubscribe`, so it is recorded like any other withdrawal.
    """
    before = current_profile(session, member)
    was, now = _comparable(before), _comparable(profile)
    changed = [name for name in now if was[name] != now[name]]
    if not changed:
        return []
    _apply_profile(member, profile, from_sign_up=False)
    _set_topics(session, member, profile.topics)
    for slug in profile.lists:
        if slug not in before.lists:
            list_id = _join_list(session, member, slug)
            record(
                session, Action.JOINED_LIST, source, subscriber_id=member.id, list_id=list_id, **client.how()
            )
    for slug in before.lists:
        if slug not in profile.lists:
            members.unsubscribe(session, member, source, slug, **client.how())
    record(
        session,
        Action.PREFERENCES,
        source,
        subscriber_id=member.id,
        details={"changed": changed},
        **client.how(),
    )
    return changed


def request_email_change(session: Session, member: Subscriber, new_email: str) -> str | None:
    """Keep the new address until a link sent to it is followed; returns the address to send that link
    to, or None when nothing may be sent (the same address, or one that must never be mailed).
    Raises `InvalidAddress`."""
    normal = addresses.normalise(new_email)
    if addresses.key(normal) == member.email_key or _suppressed(session, normal):
        member.pending_email = member.pending_email_at = None
        return None
    member.pending_email = normal
    member.pending_email_at = utcnow().replace(microsecond=0)
    return normal


def withdraw_email_change(session: Session, member: Subscriber, new_email: str) -> None:
    """Forget the change to `new_email` when its link could not be sent (the member is told to try
    again); a later change asked for meanwhile is left alone."""
    if member.pending_email == new_email:
        member.pending_email = member.pending_email_at = None


def waiting_address(link: Link) -> str:
    """The new address an address-change link confirms; `LinkProblem("used")` when no change waits or a
    later one was asked for after this link was sent."""
    member = link.member
    if member.pending_email is None or member.pending_email_at is None:
        raise LinkProblem("used")
    if link.issued_at < seconds(member.pending_email_at):
        raise LinkProblem("used")
    return member.pending_email


def confirm_email_change(session: Session, link: Link, client: Client, source: str = "web") -> str:
    """Move the member to the address the link was sent to; returns it. `LinkProblem("used")` when the
    link is not for the change still waiting, `AddressRefused` when the address cannot be used."""
    member = link.member
    new = waiting_address(link)
    if _suppressed(session, new):
        raise AddressRefused(
            "we cannot send to this address: it asked not to be mailed, or mail to it was refused"
        )
    other = members.find(session, new)
    if other is not None and other.id != member.id:
        raise AddressRefused("this address already belongs to another member of the list")
    old_hash = member.email_hash
    member.email = new
    member.email_key = addresses.key(new)
    member.email_hash = addresses.address_hash(new)
    member.pending_email = member.pending_email_at = None
    record(
        session,
        Action.PREFERENCES,
        source,
        subscriber_id=member.id,
        details={"changed": ["email"], "previous_email_hash": old_hash},
        **client.how(),
    )
    return new


def revoke_links(session: Session, member: Subscriber, client: Client, source: str = "preferences") -> int:
    """Stop every preferences, confirmation, my-data and submit link made until now; returns the cut-off
    (Unix seconds), at which new links are made. Unsubscribe links keep working."""
    now = utcnow().replace(microsecond=0)
    member.links_valid_from = now
    member.pending_email = member.pending_email_at = None
    record(
        session,
        Action.PREFERENCES,
        source,
        subscriber_id=member.id,
        details={"revoked_links": True},
        **client.how(),
    )
    return seconds(now)


def export(session: Session, member: Subscriber) -> dict[str, Any]:
    """Everything held about the member, as plain JSON-ready data (UK GDPR right of access)."""
    view = members.describe(session, member)
    list_names = dict(session.execute(select(MailingList.slug, MailingList.name)).all())
    since = dict(
        session.execute(
            select(MailingList.slug, Subscription.created_at)
            .join(Subscription, Subscription.list_id == MailingList.id)
            .where(Subscription.subscriber_id == member.id)
        ).all()
    )
    deliveries = session.execute(
        select(Delivery, Campaign.issue_slug, Campaign.subject)
        .join(Campaign, Campaign.id == Delivery.campaign_id)
        .where(Delivery.subscriber_id == member.id)
        .order_by(Delivery.id)
    ).all()
    return {
        "profile": {
            "email": member.email,
            "name": member.name,
            "organisation": member.organisation,
            "sector": member.sector,
            "region": member.region,
            "place": member.place,
            "language": member.language,
            "format": member.format.value,
            "status": member.status.value,
            "attributes": member.attributes,
            "joined": _iso(member.created_at),
            "updated": _iso(member.updated_at),
            "confirmed": _iso(member.confirmed_at),
            "unsubscribed": _iso(member.unsubscribed_at),
            "email_change_waiting": member.pending_email,
        },
        "lists": [
            {
                "list": slug,
                "name": list_names.get(slug, slug),
                "subscribed": on,
                "since": _iso(since.get(slug)),
            }
            for slug, on in view.lists
        ],
        "topics": view.topics,
        "consent_records": [
            {
                "at": _iso(entry.created_at),
                "action": entry.action,
                "source": entry.source,
                "wording_version": entry.wording_version,
                "ip_address": entry.ip_address,
                "user_agent": entry.user_agent,
                "details": entry.details,
            }
            for entry in view.consent
        ],
        "deliveries": [
            {
                "campaign": delivery.campaign_id,
                "issue": slug,
                "subject": subject,
                "status": delivery.status.value,
                "attempts": delivery.attempts,
                "sent": _iso(delivery.sent_at),
                "message_id": delivery.message_id,
            }
            for delivery, slug, subject in deliveries
        ],
        "suppressed": view.suppressed,
        "submissions": [
            {
                "sent": _iso(submission.created_at),
                "kind": submission.kind,
                "title": submission.title,
                "fields": submission.fields,
                "name": submission.name,
                "organisation": submission.organisation,
                "credit_organisation": submission.credit,
                "status": submission.status.value,
                "note": submission.note,
                "issue": submission.issue_slug,
                "decided": _iso(submission.decided_at),
            }
            for submission in session.scalars(
                select(Submission).where(Submission.subscriber_id == member.id).order_by(Submission.id)
            )
        ],
    }


def erase(session: Session, member: Subscriber, source: str = "web") -> None:
    """Erase the member at their own request: only the hashed suppression remains, and what they sent
    the editors without their name (`members.erase`)."""
    members.erase(session, member, source)


def _comparable(profile: Profile) -> dict[str, Any]:
    """The profile with its lists and topics as sets: their order means nothing."""
    return {
        name: sorted(value) if isinstance(value, list) else value
        for name, value in profile.as_details().items()
    }


def _suppressed(session: Session, email: str) -> bool:
    digest = addresses.address_hash(email)
    return session.scalar(select(Suppression.id).where(Suppression.email_hash == digest)) is not None


def _apply_profile(member: Subscriber, profile: Profile, from_sign_up: bool) -> None:
    """Copy the profile onto the member. From the sign-up form (confirming), a field left empty keeps
    what is held, and the format (not on that form) is left as the member chose it."""
    for name in ("name", "organisation", "sector", "region"):
        value = getattr(profile, name)
        if value or not from_sign_up:
            setattr(member, name, value if value or name in ("sector", "region") else "")
    if not from_sign_up:
        member.format = profile.format


def _set_topics(session: Session, member: Subscriber, topics: Iterable[str]) -> None:
    wanted = set(_ids(session, Topic, topics).values())
    have = set(
        session.scalars(select(SubscriberTopic.topic_id).where(SubscriberTopic.subscriber_id == member.id))
    )
    if have - wanted:
        session.execute(
            delete(SubscriberTopic).where(
                SubscriberTopic.subscriber_id == member.id, SubscriberTopic.topic_id.in_(have - wanted)
            )
        )
    session.add_all(
        SubscriberTopic(subscriber_id=member.id, topic_id=topic) for topic in sorted(wanted - have)
    )


def _join_list(session: Session, member: Subscriber, slug: str) -> int | None:
    list_id = _ids(session, MailingList, [slug]).get(slug)
    if list_id is None:
        return None
    row = session.get(Subscription, (member.id, list_id))
    if row is None:
        session.add(Subscription(subscriber_id=member.id, list_id=list_id, subscribed=True))
    else:
        row.subscribed = True
    return list_id


def _ids(session: Session, model: type[Topic] | type[MailingList], slugs: Iterable[str]) -> dict[str, int]:
    wanted = list(slugs)
    if not wanted:
        return {}
    return dict(session.execute(select(model.slug, model.id).where(model.slug.in_(wanted))).all())


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.replace(tzinfo=dt.UTC).isoformat() if moment is not None else None
