"""The Postfix harness itself: a real Postfix on loopback relays, bounces and defers as a production relay
would, so the end-to-end bounce test can trust what it sees."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

import pytest

from newsletter.testing.postfix import TemporaryPostfix
from newsletter.testing.smtp import PostfixSmtpSink, RecordingSMTPServer

pytestmark = pytest.mark.slow

SENDER = "bounces+abc@news.example.org"


def submit(mta: TemporaryPostfix, *recipients: str) -> None:
    message = EmailMessage()
    message["From"] = "News <news@news.example.org>"
    message["To"] = "reader@example.net"
    message["Subject"] = "Issue 2023-10"
    message["Message-ID"] = "<nl.1.7@news.example.org>"
    message.set_content("Hello, reader.\n")
    with smtplib.SMTP(mta.host, mta.port, timeout=10) as client:
        client.send_message(message, from_addr=SENDER, to_addrs=list(recipients))


def test_it_accepts_a_message_and_relays_it_to_the_sink() -> None:
    with PostfixSmtpSink(dump=True) as sink, TemporaryPostfix(relay=sink.port) as mta:
        submit(mta, "reader@example.net")
        assert mta.wait_until(lambda: sink.counters().messages == 1, timeout=30), mta.log()
        assert mta.wait_until(lambda: not mta.queue(), timeout=10), mta.queue()
        (dumped,) = sink.messages()
        assert b"Subject: Issue 2023-10" in dumped
        assert "status=sent" in mta.log()
    assert mta.directory is None  # stopped and removed


def test_a_rejected_recipient_comes_back_as_a_dsn_to_the_verp_address() -> None:
    """The route sends the sender's domain to our own server, as the product's transport-map line does."""
    with (
        PostfixSmtpSink(
            hard_reject=["rcpt"], hard_reply="550 5.1.1 <gone@example.net>: User unknown"
        ) as gone,
        RecordingSMTPServer() as returns,
        TemporaryPostfix(relay=gone.port, routes={"news.example.org": returns.port}) as mta,
    ):
        submit(mta, "gone@example.net")
        assert mta.wait_until(lambda: len(returns.messages) == 1, timeout=30), mta.log()
        (dsn,) = returns.messages
        assert dsn.envelope_from in ("", "<>")  # a bounce has the null sender, so it never bounces in turn
        assert dsn.rcpt_tos == (SENDER,)
        report = dsn.message()
        assert report.get_content_type() == "multipart/report"
        assert report.get_param("report-type") == "delivery-status"
        assert b"Status: 5.1.1" in dsn.data and b"gone@example.net" in dsn.data


def test_a_450_stays_deferred_in_the_queue_and_sends_nothing_back() -> None:
    with (
        PostfixSmtpSink(soft_reject=["rcpt"], soft_reply="450 4.2.1 Mailbox busy, try later") as busy,
        RecordingSMTPServer() as returns,
        TemporaryPostfix(relay=busy.port, routes={"news.example.org": returns.port}) as mta,
    ):
        submit(mta, "busy@example.net")

        def deferred() -> bool:
            return any(m.queue_name == "deferred" for m in mta.queue())

        assert mta.wait_until(deferred, timeout=30), mta.log()
        (queued,) = mta.queue()
        assert "4.2.1 Mailbox busy" in queued.recipients["busy@example.net"]
        assert returns.messages == []
