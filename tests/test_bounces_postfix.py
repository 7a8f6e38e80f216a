"""Bounces through a real MTA, end to end, as a network running Postfix as its relay sees them.

The worker sends a campaign to a private Postfix (`newsletter.testing.postfix`) as its relay. Postfix
delivers to Postfix's `smtp-sink`: its transport map sends the chosen dead addresses to a sink that refuses
every RCPT with "550 5.1.1", the chosen busy ones to a sink that answers "450", and everyone else to a sink
that accepts. (smtp-sink answers every RCPT alike, so the choice of recipients is made by Postfix's
transport map, one sink for each answer.) Postfix's own bounce daemon then writes the delivery status
notifications to the VERP addresses, and the transport-map line docs/bounces.md gives
(`bounces@DOMAIN smtp:[127.0.0.1]:PORT`, with `recipient_delimiter = +`) hands them to the real
`newsletter bounces receive`, the installed command in a child process.

Afterwards: the dead addresses are suppressed, the deferred members are untouched (Postfix still holds
their mail and keeps trying, as a relay does), nobody else changed, and `newsletter status ID` counts the
bounces. Every wait polls with a deadline, flushing Postfix's queue meanwhile; nothing sleeps blindly.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from delivery_support import (
    SAMPLE_SLUG,
    delivery_settings,
    member_row,
    open_sending,
    work_until_finished,
    write_members,
)
from newsletter.db.models import Status, Subscriber, Suppression
from newsletter.db.rules import mailable
from newsletter.delivery.service import Sending
from newsletter.testing.postfix import TemporaryPostfix
from newsletter.testing.processes import settings_environment
from newsletter.testing.smtp import PostfixSmtpSink
from user_support import Background, free_port, newsletter

pytestmark = pytest.mark.slow

DOMAIN = "health-equity-network.example.org"  # the default from_address's, so the VERP domain
GONE = [f"gone{n}@inbox.example" for n in range(3)]
BUSY = [f"busy{n}@inbox.example" for n in range(2)]
FINE = [f"reader{n}@inbox.example" for n in range(5)]
HARD_REPLY = "550 5.1.1 Recipient address rejected: User unknown in virtual mailbox table"
SOFT_REPLY = "450 4.2.1 Mailbox temporarily unavailable, try again later"
PATIENCE = 90.0  # seconds: Postfix's first delivery and its bounce daemon usually take well under 5


def members(sending: Sending) -> dict[str, dict[str, Any]]:
    """Every member's whole row (every column), by address, plus whether the address is suppressed."""
    with sending.store.database.session() as session:
        suppressed = set(session.scalars(select(Suppression.email_hash)))
        rows = session.scalars(select(Subscriber)).all()
        return {
            row.email.lower(): {
                **{column.key: getattr(row, column.key) for column in Subscriber.__table__.columns},
                "suppressed": row.email_hash in suppressed,
            }
            for row in rows
        }


def mailable_emails(sending: Sending) -> set[str]:
    with sending.store.database.session() as session:
        return {email.lower() for email in session.scalars(select(Subscriber.email).where(mailable()))}


def test_postfix_bounces_suppress_the_dead_addresses_and_nobody_else(
    database_url: str, tmp_path: Path
) -> None:
    receive_port = free_port()
    with (
        PostfixSmtpSink(dump=True) as accepting,
        PostfixSmtpSink(hard_reject=["rcpt"], hard_reply=HARD_REPLY) as refusing,
        PostfixSmtpSink(soft_reject=["rcpt"], soft_reply=SOFT_REPLY) as busy,
        TemporaryPostfix(
            relay=accepting.port,
            routes={
                **dict.fromkeys(GONE, refusing.port),
                **dict.fromkeys(BUSY, busy.port),
                f"bounces@{DOMAIN}": receive_port,  # docs/bounces.md's transport-map line
            },
        ) as mta,
    ):
        settings = delivery_settings(database_url, f"smtp://127.0.0.1:{mta.port}")
        csv = write_members(tmp_path / "members.csv", [member_row(email) for email in GONE + BUSY + FINE])
        with open_sending(settings, csv) as sending:
            receiver = Background(
                tmp_path,
                *("bounces", "receive", "--host", "127.0.0.1", "--port", str(receive_port)),
                port=receive_port,
                env=settings_environment(settings),
            )
            try:
                before = members(sending)
                campaign, planned = sending.send(SAMPLE_SLUG, ["everyone"])
                assert planned == len(GONE + BUSY + FINE)
                work_until_finished(sending, campaign.id, timeout=120)  # Postfix took every message

                def dead_suppressed() -> bool:
                    return not set(GONE) & mailable_emails(sending)

                assert mta.wait_until(dead_suppressed, timeout=PATIENCE), (
                    f"the dead addresses are still mailable\n--- postfix log ---\n{mta.log()[-6000:]}"
                    f"\n--- bounces receive ---\n{receiver.output()}"
                )

                def settled() -> bool:
                    """Postfix holds nothing but the busy members' mail, deferred (no report still queued)."""
                    queued = mta.queue()
                    waiting = {address for message in queued for address in message.recipients}
                    return waiting == set(BUSY) and all(m.queue_name == "deferred" for m in queued)

                assert mta.wait_until(settled, timeout=PATIENCE), (mta.queue(), mta.log()[-4000:])
                assert accepting.counters().messages == len(FINE)
                after = members(sending)
            finally:
                log = receiver.stop()
        assert "Traceback" not in log, log

        for email in GONE:
            assert after[email]["status"] == Status.BOUNCED or after[email]["suppressed"], after[email]
        for email in BUSY:
            reasons = [m.recipients[email] for m in mta.queue() if email in m.recipients]
            assert reasons and "4.2.1" in reasons[0], reasons  # deferred by the 450, still queued
        unchanged = {email: after[email] for email in BUSY + FINE}
        assert unchanged == {email: before[email] for email in BUSY + FINE}
        assert mailable_emails(sending) == {email.lower() for email in BUSY + FINE}

        status = newsletter(tmp_path, "status", str(campaign.id), env=settings_environment(settings))
        # Postfix took every message, so each counted as sent; the reports that came back later move the
        # dead ones to bounced, and the deferred ones stay sent (the relay still holds them).
        assert re.search(
            rf"^\s*bounced\s+{len(GONE)}\b.*{len(GONE)} came back after sending", status.stdout, re.M
        ), status.stdout
        assert re.search(rf"^\s*sent\s+{len(BUSY + FINE)}\s*$", status.stdout, re.M), status.stdout
