"""What a returned message or a provider's event says, before anything is done about it.

Every intake path (the SMTP/LMTP receiver, a Maildir or IMAP folder, a provider's webhook) turns what
it got into `Finding`s, and `intake.Intake.record` is the one place that acts on them, so the rules
are the same however a bounce arrived.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from newsletter.audience.bouncing import Kind

__all__ = ["Finding", "Kind"]


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
