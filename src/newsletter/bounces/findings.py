"""What a returned message or a provider's event says, before anything is done about it.

Every intake path (the SMTP/LMTP receiver, a Maildir or IMAP folder, a provider's webhook) turns what
it got into `Finding`s, and `intake.Intake.record` is the one place that acts on them, so the rules
are the same however a bounce arrived.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass


class Kind(enum.StrEnum):
    """What happened to one message, as far as the member's standing goes."""

    HARD = "hard"  # the address does not exist or never will (5.1.x): suppress at once
    SOFT = "soft"  # a temporary failure (4.x.x, mailbox full): scored, suppressed only if it goes on
    POLICY = "policy"  # refused for the sender's sake (5.7.x, "blocked", "spam"): never the member's fault
    COMPLAINT = "complaint"  # the member marked it as spam (ARF, a provider's complaint event)
    AUTO_REPLY = "auto_reply"  # out of office and other automatic replies (RFC 3834): ignored
    UNKNOWN = "unknown"  # looks like a report but says nothing usable: kept for review


@dataclass(frozen=True)
class Finding:
    """One report about one recipient of one message."""

    kind: Kind
    source: str  # how it was read: "dsn", "flufl", "arf", "smtp", "ses", "postmark", "mailgun", "sendgrid"
    token: str | None = None  # the VERP token of `bounces+TOKEN@domain`: names the member
    address: str | None = None  # the recipient the report is about, when it says
    message_id: str | None = None  # our Message-ID of the original message: names the campaign row
    status: str | None = None  # the enhanced status code, e.g. "5.1.1"
    diagnostic: str = ""  # the receiving server's own words, for people to read
    received_at: dt.datetime | None = None  # when the report says it happened (UTC), else when it came
