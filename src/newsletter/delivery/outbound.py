"""The one way from a prepared edition to the relay: Message-IDs, a recipient's bytes, the transport.

The worker sends every campaign message through an `Outbound`, and `send --test` sends its copies
through one too, so a test copy is addressed, signed with the same tokens and handed to the same
pooled, rate-limited transport as the members' messages, with a Message-ID of the same form.

With `dkim_selector` and `dkim_private_key` set, every message it hands over carries a DKIM signature
(`delivery/dkim.py`); the keys are read and checked when the `Outbound` is made, so a missing or weak
key is one clear error before anything is sent. The pages' emails are signed by the same `signer_for`.
"""

from __future__ import annotations

import datetime as dt
import weakref
from typing import cast

from newsletter.delivery.dkim import Signer, Template, signer_for
from newsletter.delivery.message import (
    PreparedMessage,
    Recipient,
    campaign_tag,
    message_id_for,
    sender_domain,
)
from newsletter.delivery.transport import Reply, SmtpTransport, written_data
from newsletter.settings import Settings
from newsletter.tokens import Tokens

_UNSEEN = object()  # a variant not yet asked for its signing template
TEST_MARK = "t"  # a test copy's Message-ID names its test send as `t<id>`, never a campaign's number


class Outbound:
    """Tokens, the sender's domain and one SMTP transport (its connections pooled across threads)."""

    def __init__(self, settings: Settings, transport: SmtpTransport | None = None) -> None:
        self.tokens = Tokens(settings.secret_key)
        self.domain = sender_domain(settings)
        self.signer = signer_for(settings)
        # Each variant's signing template, made on its first message, gone with the variant.
        self._templates: weakref.WeakKeyDictionary[PreparedMessage, Template | object | None] = (
            weakref.WeakKeyDictionary()
        )
        self.transport = transport or SmtpTransport(
            settings.smtp_url, settings.max_rate, settings.domain_rate
        )

    def wire(self, prepared: PreparedMessage, recipient: Recipient, message_id: str) -> tuple[str, bytes]:
        """MAIL FROM and the DATA for one recipient, DKIM-signed when keys are set (raises ValueError
        for an address no header can carry)."""
        if self.signer is None:
            return prepared.wire(recipient, message_id, self.tokens)
        sender, pieces = prepared.pieces(recipient, message_id, self.tokens)
        template = self._templates.get(prepared, _UNSEEN)
        if template is _UNSEEN:
            template = self._templates[prepared] = self.signer.template(*prepared.template)
        if template is None:
            return sender, signed_data(self.signer, b"".join(pieces))
        return sender, b"".join([cast(Template, template).headers(pieces), *pieces])  # one copy

    def send(self, sender: str, address: str, wire: bytes) -> Reply:
        """Hand one message to the relay; the reply says sent, deferred, failed or bounced."""
        return self.transport.send_wire(sender, address, wire)

    def test_message_id(self, test_id: int, created_at: dt.datetime, number: int) -> str:
        """The Message-ID of a test send's `number`th copy: the campaigns' form (`message_id_for`),
        with the test send's own tag, so it never repeats and is never taken for a member's."""
        return message_id_for(f"{TEST_MARK}{test_id}", number, self.domain, campaign_tag(test_id, created_at))

    def probe(self) -> Reply | None:
        """None when the relay answers; otherwise its trouble (see `SmtpTransport.probe`)."""
        return self.transport.probe()

    def close(self) -> None:
        self.transport.close()


def signed_data(signer: Signer, data: bytes) -> bytes:
    """SMTP DATA (dot-stuffed, ending `.` CRLF) with the DKIM-Signature header(s) in front, signed over
    the message as written: the stuffing is the transport's, undone by the receiver before verifying."""
    return signer.headers(written_data(data)) + data
