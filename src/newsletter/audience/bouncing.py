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

from sqlalchemy import insert
from sqlalchemy.orm import Session

from newsletter.audience import addresses, members
from newsletter.db.models import BounceEvent, Subscriber
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


def refused(
    session: Session, member: Subscriber | None, kind: Kind, where: str, rules: Rules, today: dt.date
) -> str:
    """Act on one refusal (HARD, SOFT or POLICY) of a message to `member` (None: nobody we hold);
    returns what was done, in words. `where` says how it was read ("dsn 5.1.1"); `today` is the
    calendar day a soft bounce counts on (tests pass simulated days)."""
    if member is None:
        return "nobody we hold: nothing changed"
    if kind == Kind.HARD:
        return _bounced(session, member, f"hard bounce ({where})")
    if kind == Kind.SOFT:
        return _soft(session, member, where, rules, today)
    if kind == Kind.POLICY:
        return "not counted against the member: refused for the sender's sake (a sending problem)"
    raise ValueError(f"{kind} is not a refusal")


def _bounced(session: Session, member: Subscriber, why: str) -> str:
    changed = members.bounced(session, member.id, member.email, why)
    if changed:
        return f"suppressed: {why}"
    return f"address suppressed: {why} (the member was already {member.status.value})"


def _soft(session: Session, member: Subscriber, where: str, rules: Rules, today: dt.date) -> str:
    if member.status not in members.STILL_JOINED:
        return f"not counted: the member is {member.status.value}"
    last = member.bounce_scored_on
    if last == today:
        return f"soft bounce ({where}): already counted today, score {member.bounce_score:g}"
    score = member.bounce_score if last is not None and (today - last).days <= rules.quiet_days else 0.0
    score += 1
    member.bounce_score, member.bounce_scored_on = score, today
    if score >= rules.threshold:
        return _bounced(session, member, f"{score:g} soft bounces on separate days ({where})")
    return f"soft bounce ({where}): score {score:g} of {rules.threshold}"


def event(
    member: Subscriber | None,
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
