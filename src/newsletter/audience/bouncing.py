"""What a refused message does to its member: the one set of rules for every refusal, whether the
receiving server said no during our own SMTP conversation (`delivery.ledger.record`) or the refusal came
back later as a report or a provider's event (`bounces.scoring`).

- HARD (the address does not exist): suppressed at once, reason "bounced", status `bounced`
  (`members.bounced`).
- SOFT (4.x.x, a full mailbox, a 5.x.x that does not say the address is gone): the member's score rises
  by 1, at most once a calendar day however many bounces that day brings; a soft bounce more than
  `bounce_quiet_days` after the last one counted starts the score again from 0 (a reset rather than
  halving: a mailbox that was full for a week in spring says nothing about one full in autumn, and a
  reset is easy to explain); at `bounce_threshold` the member is suppressed as for a hard bounce.
- POLICY (5.7.x, "blocked", "spam", "reputation"): never counted against the member; the receiving
  server refused *our* mail, a sending problem for the list owner to see in `newsletter bounces`.

A member who unsubscribed stays `unsubscribed` (their own choice is what `bounces undo` must see), though
a dead address still suppresses the address.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, insert, update
from sqlalchemy.orm import Session

from newsletter.audience import addresses, members
from newsletter.db.models import BounceEvent, Status, Subscriber
from newsletter.settings import Settings


class Kind(enum.StrEnum):
    """What happened to one message, as far as the member's standing goes."""

    HARD = "hard"  # the address does not exist or never will (5.1.x): suppress at once
    SOFT = "soft"  # a temporary failure (4.x.x, mailbox full): scored, suppressed only if it goes on
    POLICY = "policy"  # refused for the sender's sake (5.7.x, "blocked", "spam"): never the member's fault
    COMPLAINT = "complaint"  # the member marked it as spam (ARF, a provider's complaint event)
    AUTO_REPLY = "auto_reply"  # out of office and other automatic replies (RFC 3834): ignored
    UNKNOWN = "unknown"  # looks like a report but says nothing usable: kept for review


# An enhanced status code (RFC 3463), e.g. 5.1.1.
STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
# A refusal for the sender's sake (its reputation, a block list, a content filter): never the member's
# fault, so never counted against them, whatever the code says.
_POLICY = re.compile(r"block|spam|policy|blacklist|blocklist|denylist|reputation|rbl\b|spamhaus")
# The address itself is gone: what servers say with a 5.0.0 or no enhanced code at all.
_NO_SUCH_USER = re.compile(
    r"user unknown|unknown user|unknown recipient|(?:does|do) ?n[o']t exist|no such (?:user|mailbox|recipient|"
    r"address|person)|invalid (?:recipient|mailbox|address)|(?:recipient|mailbox|address|user) not found|"
    r"not a valid (?:mailbox|recipient|user)|mailbox unavailable: user"
)
_MAILBOX_FULL = re.compile(
    r"mailbox (?:is )?full|over ?quota|quota exceeded|insufficient (?:system )?storage"
)
# The three above are lower case and matched against lower-cased words: ten times faster than re.I on
# the kilobyte of text a non-standard bounce gives.
_LIMITS = {
    name: BounceEvent.__table__.columns[name].type.length
    for name in ("diagnostic", "action", "status", "source")
}


def kind_of(status: str | None, diagnostic: str, permanent: bool = True) -> Kind:
    """What a failure means for the member, from its enhanced status code and the server's words.

    Policy first (5.7.x, or words about blocks, spam or reputation: never counted against the member,
    even when the code is 5.x.x); then a full mailbox (5.2.2) and every 4.x.x are soft; 5.1.x, or
    any 5.x.x saying the user does not exist, is hard. Another 5.x.x, or a permanent failure with no
    code, is soft: counted, so an address that keeps failing is suppressed, but one odd reply is not
    enough to lose a member.
    """
    status = status or ""
    words = diagnostic.lower()
    if status.startswith("5.7.") or _POLICY.search(words):
        return Kind.POLICY
    if status == "5.2.2" or _MAILBOX_FULL.search(words) or status.startswith("4."):
        return Kind.SOFT
    if status.startswith("5.1.") or ((status.startswith("5.") or permanent) and _NO_SUCH_USER.search(words)):
        return Kind.HARD
    return Kind.SOFT


def status_in(text: str) -> str | None:
    """The first enhanced status code in a server's words, e.g. "5.1.1"."""
    found = STATUS.search(text)
    return found.group(0) if found else None


@dataclass(frozen=True)
class Rules:
    """The settings the rules read (`bounce_threshold`, `bounce_quiet_days`)."""

    threshold: int = 5
    quiet_days: int = 7

    @classmethod
    def from_settings(cls, settings: Settings) -> Rules:
        return cls(settings.bounce_threshold, settings.bounce_quiet_days)


@dataclass
class Standing:
    """What the refusal rules read of a member and change: loaded for a batch of reports at once
    (`Standing.columns`), or taken from the member a session holds (`Standing.of`)."""

    id: int
    email: str
    email_hash: str
    status: Status
    bounce_score: float
    bounce_scored_on: dt.date | None

    @classmethod
    def of(cls, member: Subscriber) -> Standing:
        return cls(*(getattr(member, name) for name in _STANDING))

    @staticmethod
    def columns() -> list[Any]:
        """The member's columns a `Standing` is made of, in order, for a SELECT."""
        return [getattr(Subscriber, name) for name in _STANDING]

    def take(self, verdict: Verdict) -> None:
        """The member as they stand once the verdict is carried out."""
        if verdict.score is not None:
            self.bounce_score, self.bounce_scored_on = verdict.score
        if verdict.suppress and self.status in members.STILL_JOINED:
            self.status = Status.BOUNCED


_STANDING = ("id", "email", "email_hash", "status", "bounce_score", "bounce_scored_on")


@dataclass(frozen=True)
class Verdict:
    """What one refusal does to its member, in words (`action`) and in changes."""

    action: str
    suppress: str = ""  # why the address is suppressed and the member marked bounced (empty: it is not)
    score: tuple[float, dt.date] | None = None  # the member's soft-bounce score and the day it counted


def judge(member: Standing, kind: Kind, where: str, rules: Rules, today: dt.date) -> Verdict:
    """The rule for one refusal (HARD, SOFT or POLICY) of a message to `member`. `where` says how it
    was read ("dsn 5.1.1"); `today` is the calendar day a soft bounce counts on (tests pass simulated
    days). It decides only: `refused` and `Changes` carry it out."""
    if kind == Kind.HARD:
        return _bounce(member, f"hard bounce ({where})")
    if kind == Kind.POLICY:
        return Verdict("not counted against the member: refused for the sender's sake (a sending problem)")
    if kind != Kind.SOFT:
        raise ValueError(f"{kind} is not a refusal")
    if member.status not in members.STILL_JOINED:
        return Verdict(f"not counted: the member is {member.status.value}")
    last = member.bounce_scored_on
    if last == today:
        return Verdict(f"soft bounce ({where}): already counted today, score {member.bounce_score:g}")
    score = member.bounce_score if last is not None and (today - last).days <= rules.quiet_days else 0.0
    score += 1
    if score >= rules.threshold:
        bounce = _bounce(member, f"{score:g} soft bounces on separate days ({where})")
        return Verdict(bounce.action, bounce.suppress, (score, today))
    return Verdict(f"soft bounce ({where}): score {score:g} of {rules.threshold}", score=(score, today))


def _bounce(member: Standing, why: str) -> Verdict:
    if member.status in members.STILL_JOINED:
        return Verdict(f"suppressed: {why}", suppress=why)
    return Verdict(f"address suppressed: {why} (the member was already {member.status.value})", suppress=why)


def refused(
    session: Session, member: Subscriber | None, kind: Kind, where: str, rules: Rules, today: dt.date
) -> str:
    """Carry out the rule for one refusal of a message to `member` (None: nobody we hold) at once, as
    the worker does for a 5xx; returns what was done, in words."""
    if member is None:
        return "nobody we hold: nothing changed"
    verdict = judge(Standing.of(member), kind, where, rules, today)
    if verdict.score is not None:
        member.bounce_score, member.bounce_scored_on = verdict.score
    if verdict.suppress:
        members.bounced(session, member.id, member.email, verdict.suppress)
    return verdict.action


class Changes:
    """The verdicts for a batch of reports, carried out together (`write`): a handful of statements for
    hundreds of reports, where carrying out each at once would cost two or three apiece."""

    def __init__(self) -> None:
        self.suppressed: dict[int, tuple[str, str]] = {}  # member id -> (address, why)
        self.scores: dict[int, tuple[float, dt.date]] = {}

    def add(self, member: Standing, verdict: Verdict) -> str:
        """Note the verdict's changes and bring `member` up to date (a later report in the batch reads
        it); returns the verdict's words."""
        member.take(verdict)
        if verdict.score is not None:
            self.scores[member.id] = verdict.score
        if verdict.suppress:
            self.suppressed.setdefault(member.id, (member.email, verdict.suppress))
        return verdict.action

    def write(self, session: Session) -> None:
        if self.scores:
            session.connection().execute(
                _SCORE, [{"member": id, "score": s, "day": day} for id, (s, day) in self.scores.items()]
            )
        if self.suppressed:
            members.bounced_many(session, [(id, email, why) for id, (email, why) in self.suppressed.items()])


_SCORE = (
    update(Subscriber)
    .where(Subscriber.id == bindparam("member"))
    .values(bounce_score=bindparam("score"), bounce_scored_on=bindparam("day"))
)


def event(
    member: Standing | Subscriber | None,
    address: str | None,
    campaign_id: int | None,
    kind: Kind,
    source: str,
    status: str | None,
    diagnostic: str,
    action: str,
    received_at: dt.datetime,
    now: dt.datetime,
) -> dict[str, Any]:
    """The history row of one refusal, complaint or reply (`newsletter bounces`), for `write_events`:
    the member by id, or only the hash of an address we hold nobody for; every text cut to its column."""
    return {
        "subscriber_id": member.id if member is not None else None,
        "email_hash": member.email_hash if member is not None else _hash(address),
        "campaign_id": campaign_id,
        "kind": kind.value,
        "source": source[: _LIMITS["source"]],
        "status": (status or None) and status[: _LIMITS["status"]],
        "diagnostic": " ".join(diagnostic.split())[: _LIMITS["diagnostic"]],
        "action": action[: _LIMITS["action"]],
        "received_at": received_at,
        "created_at": now,
        "undone_at": None,
    }


def write_events(session: Session, rows: list[dict[str, Any]]) -> None:
    """Write `event` rows, many in one statement (a mailbox's batch of reports)."""
    if rows:
        session.execute(insert(BounceEvent), rows)


def _hash(address: str | None) -> str | None:
    try:
        return addresses.address_hash(addresses.normalise(address)) if address else None
    except addresses.InvalidAddress:
        return None
