"""When the relay says no, drops the line or is not there: what the ledger, the member and the inbox show.

Scripted answers come from a real aiosmtpd server (`RecordingSMTPServer`) and from Postfix's own
`smtp-sink`; a relay that is down is a closed loopback port, later answered by `MaildirSink`.
Every test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import mailbox
import time

import pytest
from sqlalchemy import select

from delivery_support import (
    SAMPLE_SLUG,
    assert_each_once,
    audience_emails,
    campaign_status,
    delivery_settings,
    free_port,
    ledger,
    member_row,
    open_sending,
    recipients,
    wait_until,
    work_until_finished,
    write_members,
)
from newsletter.audience.service import Audience
from newsletter.bounces.history import Bounces
from newsletter.db.models import Status, Subscriber, Suppression
from newsletter.sink import MaildirSink
from newsletter.testing.smtp import PostfixSmtpSink

MEMBERS = [f"m{number}@example.org" for number in range(6)]
GREY, POLICY, GONE, FLAKY = MEMBERS[:4]
FAST_RETRY = {"lease_seconds": 30, "retry_base_seconds": 0.05}


@pytest.fixture
def members_csv(tmp_path):
    rows = [member_row(email, name=f"Member {n}", topics="housing") for n, email in enumerate(MEMBERS)]
    return write_members(tmp_path / "members.csv", rows)


@pytest.fixture
def sending(database_url, server, members_csv):
    with open_sending(delivery_settings(database_url, server.port), members_csv) as opened:
        yield opened


def test_greylisting_4xx_is_retried_until_delivered(sending, server):
    rule = server.reply_at_rcpt(GREY, "451 4.7.1 Greylisted, try again later", times=2)
    campaign, _ = sending.send(SAMPLE_SLUG, ["housing"])

    first = sending.work(once=True, **FAST_RETRY)
    assert first.deferred >= 1
    rows = ledger(sending, campaign.id)
    assert rows[GREY].status in {"deferred", "sent"}
    assert {rows[email].status for email in MEMBERS if email != GREY} == {"sent"}

    work_until_finished(sending, campaign.id, **FAST_RETRY)

    assert rule.used == 2
    assert server.attempts(GREY) == 3
    assert_each_once(server.messages, set(MEMBERS))
    row = ledger(sending, campaign.id)[GREY]
    assert (row.status, row.attempts) == ("sent", 3)
    assert campaign_status(sending, campaign.id) == "sent"


def test_a_4xx_that_never_ends_fails_after_six_attempts(sending, server):
    server.reply_at_rcpt(GREY, "452 4.2.2 Mailbox full")
    campaign, _ = sending.send(SAMPLE_SLUG, ["housing"])

    work_until_finished(sending, campaign.id, lease_seconds=30, retry_base_seconds=0.01)

    row = ledger(sending, campaign.id)[GREY]
    assert (row.status, row.attempts) == ("failed", 6)
    assert "4.2.2" in (row.last_reply or "")
    assert server.attempts(GREY) == 6
    assert_each_once(server.messages, set(MEMBERS) - {GREY})
    assert (
        Audience(sending.store).member(GREY).subscriber.status == Status.ACTIVE
    )  # a full mailbox is no bounce


def test_a_policy_5xx_fails_but_keeps_the_member(sending, server):
    server.reply_at_data(POLICY, "550 5.7.1 Message rejected by policy")
    campaign, _ = sending.send(SAMPLE_SLUG, ["housing"])

    stats = sending.work(once=True, **FAST_RETRY)

    assert (stats.sent, stats.failed, stats.bounced) == (5, 1, 0)
    row = ledger(sending, campaign.id)[POLICY]
    assert (row.status, row.attempts) == ("failed", 1)
    assert "5.7.1" in (row.last_reply or "")
    assert server.attempts(POLICY) == 1  # a permanent refusal is not retried
    assert_each_once(server.messages, set(MEMBERS) - {POLICY})
    view = Audience(sending.store).member(POLICY)
    assert view.subscriber.status == Status.ACTIVE
    assert view.suppressed is None
    assert POLICY in audience_emails(sending, ["housing"])
    assert campaign_status(sending, campaign.id) == "sent"
    assert sending.status(campaign.id).counts == {"sent": 5, "failed": 1}


@pytest.mark.parametrize("stage", ["rcpt", "data"])
def test_a_hard_bounce_suppresses_the_address_for_good(sending, server, stage):
    if stage == "rcpt":
        server.reply_at_rcpt(GONE, "550 5.1.1 <m2@example.org>: Recipient address rejected: User unknown")
    else:
        server.reply_at_data(GONE, "550 5.1.1 No such user here")
    campaign, _ = sending.send(SAMPLE_SLUG, ["housing"])

    stats = sending.work(once=True, **FAST_RETRY)

    assert (stats.sent, stats.bounced) == (5, 1)
    row = ledger(sending, campaign.id)[GONE]
    assert (row.status, row.attempts) == ("bounced", 1)
    assert "5.1.1" in (row.last_reply or "")
    view = Audience(sending.store).member(GONE)
    assert view.subscriber.status == Status.BOUNCED
    assert view.suppressed == "bounced"
    with sending.store.database.session() as session:
        assert session.scalar(select(Suppression.email).where(Suppression.reason == "bounced")) == GONE
    assert GONE not in audience_emails(sending, ["housing"])
    assert GONE not in audience_emails(sending, ["everyone"])

    # The next campaign leaves the address out altogether, even when the relay would now accept it.
    server.reset()
    campaign, size = sending.send(SAMPLE_SLUG, ["housing", "everyone"], resend=True)
    sending.work(once=True, **FAST_RETRY)
    assert size == 5
    assert GONE not in ledger(sending, campaign.id)
    assert_each_once(server.messages, set(MEMBERS) - {GONE})


def test_a_connection_dropped_during_data_is_retried_and_delivered(sending, server):
    rule = server.drop_during_data(FLAKY, times=1)
    campaign, _ = sending.send(SAMPLE_SLUG, ["housing"])

    work_until_finished(sending, campaign.id, **FAST_RETRY)

    assert rule.used == 1
    assert_each_once(server.messages, set(MEMBERS))
    rows = ledger(sending, campaign.id)
    assert (rows[FLAKY].status, rows[FLAKY].attempts) == ("sent", 2)
    assert {rows[email].attempts for email in MEMBERS if email != FLAKY} == {1}


def test_every_kind_of_answer_in_one_campaign(sending, server):
    server.reply_at_rcpt(GREY, "451 4.7.1 Greylisted", times=2)
    server.reply_at_data(POLICY, "554 5.7.1 Spam detected")
    server.reply_at_rcpt(GONE, "550 5.1.1 User unknown")
    server.drop_during_data(FLAKY, times=1)
    campaign, _ = sending.send(SAMPLE_SLUG, ["housing"])

    work_until_finished(sending, campaign.id, **FAST_RETRY)

    assert_each_once(server.messages, set(MEMBERS) - {POLICY, GONE})
    assert sending.status(campaign.id).counts == {"sent": 4, "failed": 1, "bounced": 1}
    rows = ledger(sending, campaign.id)
    assert {email: (row.status, row.attempts) for email, row in rows.items()} == {
        GREY: ("sent", 3),
        POLICY: ("failed", 1),
        GONE: ("bounced", 1),
        FLAKY: ("sent", 2),
        MEMBERS[4]: ("sent", 1),
        MEMBERS[5]: ("sent", 1),
    }


def test_a_refusal_while_sending_follows_the_rules_every_bounce_follows(sending, server):
    """A spam block is never held against the member, a full mailbox is scored, a dead address is
    suppressed even when the server gives no enhanced code; each is listed by `newsletter bounces`."""
    server.reply_at_data(POLICY, "554 5.7.1 Message rejected: listed on Spamhaus")
    server.reply_at_rcpt(GREY, "552 5.2.2 Mailbox full")
    server.reply_at_rcpt(GONE, "550 No such user here")
    campaign, _ = sending.send(SAMPLE_SLUG, ["housing"])

    work_until_finished(sending, campaign.id, **FAST_RETRY)

    rows = ledger(sending, campaign.id)
    assert {email: rows[email].status for email in (POLICY, GREY, GONE)} == {
        POLICY: "failed",  # `retry` may send it again once the block is lifted
        GREY: "failed",
        GONE: "bounced",
    }
    with sending.store.session() as session:
        people = {
            m.email: m for m in session.scalars(select(Subscriber).where(Subscriber.email.in_(MEMBERS)))
        }
        suppressed = set(session.scalars(select(Suppression.email)))
        assert (people[POLICY].status, people[POLICY].bounce_score) == (Status.ACTIVE, 0)
        assert (people[GREY].status, people[GREY].bounce_score) == (Status.ACTIVE, 1)
        assert people[GONE].status == Status.BOUNCED
        assert suppressed == {GONE}
    listed = {
        event.who: (event.kind, event.source, event.status) for event in Bounces(sending.store).recent()
    }
    assert listed == {
        POLICY: ("policy", "smtp", "5.7.1"),
        GREY: ("soft", "smtp", "5.2.2"),
        GONE: ("hard", "smtp", ""),
    }


# --- The relay is down ---


def test_a_relay_that_is_down_loses_nothing(database_url, members_csv, tmp_path):
    port = free_port()  # nothing listens here yet
    settings = delivery_settings(database_url, port)
    with open_sending(settings, members_csv) as sending:
        campaign, _ = sending.send(SAMPLE_SLUG, ["housing"])

        stats = sending.work(once=True, lease_seconds=30, retry_base_seconds=0.5, once_wait_seconds=0.5)

        # Nothing is known about the members: nobody is charged an attempt, and the worker says so.
        assert (stats.sent, stats.deferred, stats.failed) == (0, 0, 0)
        assert stats.relay_unavailable >= len(MEMBERS)
        assert f"{len(MEMBERS)} messages are left, none of them counted as an attempt" in stats.unfinished
        rows = ledger(sending, campaign.id)
        assert set(rows) == set(MEMBERS)
        assert {(row.status, row.attempts) for row in rows.values()} == {("queued", 0)}
        assert all("connection problem" in (row.last_reply or "") for row in rows.values())
        assert campaign_status(sending, campaign.id) == "sending"

        # The relay comes up on the configured port; the next worker run delivers everything.
        maildir = tmp_path / "maildir"
        with MaildirSink(maildir, port=port) as sink:
            work_until_finished(sending, campaign.id, lease_seconds=30, retry_base_seconds=0.5)
            assert sink.stored == len(MEMBERS)
        delivered = [message["Delivered-To"] for message in mailbox.Maildir(maildir, create=False)]
        assert sorted(delivered) == sorted(MEMBERS)
        rows = ledger(sending, campaign.id)
        assert {(row.status, row.attempts) for row in rows.values()} == {("sent", 1)}
        assert campaign_status(sending, campaign.id) == "sent"


# --- Postfix's smtp-sink as the relay ---


@pytest.mark.parametrize(
    ("flags", "status", "reply"),
    [
        ({}, "sent", "250"),
        ({"soft_reject": ("rcpt",)}, "deferred", "450 4.3.0"),
        ({"hard_reject": ("mail",)}, "failed", "500 5.3.0"),
        ({"hard_reject": ("data",)}, "failed", "500 5.3.0"),
        ({"close_with_421": ("rcpt",)}, "queued", "421"),  # the relay's trouble: given back, not counted
        ({"disconnect": (".",)}, "deferred", "connection problem"),
    ],
    ids=[
        "accepts",
        "soft-reject-rcpt",
        "hard-reject-mail",
        "hard-reject-data",
        "421-at-rcpt",
        "hang-up-after-dot",
    ],
)
@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "one-command-at-a-time"])
def test_postfix_smtp_sink_answers(database_url, members_csv, flags, status, reply, pipelining):
    """Every answer means the same whether the commands went out together (RFC 2920) or one by one."""
    with (
        PostfixSmtpSink(pipelining=pipelining, **flags) as sink,
        open_sending(delivery_settings(database_url, sink.port), members_csv) as sending,
    ):
        campaign, _ = sending.send(SAMPLE_SLUG, ["housing"])

        sending.work(once=True, lease_seconds=30, retry_base_seconds=60, once_wait_seconds=0)

        rows = ledger(sending, campaign.id)
        assert set(rows) == set(MEMBERS)
        assert {(row.status, row.attempts) for row in rows.values()} == {
            (status, 0 if status == "queued" else 1)
        }
        assert all(reply in (row.last_reply or "") for row in rows.values()), rows
        if status == "sent":
            assert wait_until(lambda: sink.count_received() == len(MEMBERS), timeout=5)
            assert campaign_status(sending, campaign.id) == "sent"
        elif status == "failed":
            assert campaign_status(sending, campaign.id) == "sent"  # finished: nothing left to try
            assert {Audience(sending.store).member(email).subscriber.status for email in MEMBERS} == {
                Status.ACTIVE
            }
        else:
            assert campaign_status(sending, campaign.id) == "sending"  # waiting to try again


def test_postfix_smtp_sink_soft_reject_then_accepting_relay(database_url, members_csv, server):
    """Deferred by one relay, delivered through another: each member still gets exactly one message."""
    with (
        PostfixSmtpSink(soft_reject=("rcpt",)) as sink,
        open_sending(delivery_settings(database_url, sink.port), members_csv) as sending,
    ):
        campaign, _ = sending.send(SAMPLE_SLUG, ["housing"])
        sending.work(once=True, lease_seconds=30, retry_base_seconds=0.3)
        assert sink.count_received() == 0
        assert sending.status(campaign.id).counts == {"deferred": len(MEMBERS)}
        settings = dataclasses.replace(sending.settings, smtp_url=f"smtp://127.0.0.1:{server.port}")
    time.sleep(0.35)
    with open_sending(settings, members=None) as sending:
        sending.work(once=True, lease_seconds=30, retry_base_seconds=0.3)
        assert_each_once(server.messages, set(MEMBERS))
        assert {row.attempts for row in ledger(sending, campaign.id).values()} == {2}
        assert len(recipients(server.messages)) == len(MEMBERS)


# --- A relay that asks us to slow down ---


def test_a_421_makes_the_whole_pool_wait_and_costs_the_member_no_attempt(database_url, members_csv, server):
    server.reply_at_rcpt(MEMBERS[0], "421 4.7.0 Too many messages, slow down", times=1)
    settings = delivery_settings(database_url, server.port, concurrency=1)
    with open_sending(settings, members_csv) as sending:
        campaign, _ = sending.send(SAMPLE_SLUG, ["housing"])
        started = time.monotonic()
        work_until_finished(sending, campaign.id, **FAST_RETRY)

        first = min(received.received_monotonic for received in server.messages)
        assert first - started >= 4.5, f"the next message left {first - started:.2f} s after a 421"
        assert_each_once(server.messages, set(MEMBERS))
        rows = ledger(sending, campaign.id)
        assert {(row.status, row.attempts) for row in rows.values()} == {("sent", 1)}


# --- Addresses that are not ASCII ---

UNICODE_MEMBERS = ["josé@example.org", "ann@bücher.example", "plain@example.org"]


@pytest.fixture
def unicode_csv(tmp_path):
    rows = [member_row(email, name=f"Member {n}") for n, email in enumerate(UNICODE_MEMBERS)]
    return write_members(tmp_path / "unicode.csv", rows)


def test_a_relay_offering_smtputf8_gets_non_ascii_addresses(database_url, unicode_csv, server):
    with open_sending(delivery_settings(database_url, server.port), unicode_csv) as sending:
        campaign, _ = sending.send(SAMPLE_SLUG, ["everyone"])
        sending.work(once=True, **FAST_RETRY)
        # An internationalised domain travels in its ASCII form; only the non-ASCII mailbox needs SMTPUTF8.
        expected = {address.replace("bücher", "xn--bcher-kva") for address in UNICODE_MEMBERS}
        assert_each_once(server.messages, expected)
        assert sending.status(campaign.id).counts == {"sent": 3}
        to = {received.rcpt_tos[0]: received.message()["To"] for received in server.messages}
        assert to["josé@example.org"] == "Member 0 <josé@example.org>"
        assert to["ann@xn--bcher-kva.example"] == "Member 1 <ann@xn--bcher-kva.example>"


def test_a_relay_without_smtputf8_fails_a_non_ascii_mailbox_clearly(database_url, unicode_csv):
    with (
        PostfixSmtpSink() as sink,
        open_sending(delivery_settings(database_url, sink.port), unicode_csv) as sending,
    ):
        campaign, _ = sending.send(SAMPLE_SLUG, ["everyone"])
        sending.work(once=True, **FAST_RETRY)
        rows = ledger(sending, campaign.id)
        assert rows["josé@example.org"].status == "failed"
        assert "not ASCII and the relay does not offer SMTPUTF8" in (
            rows["josé@example.org"].last_reply or ""
        )
        assert rows["plain@example.org"].status == "sent"
        assert campaign_status(sending, campaign.id) == "sent"
        assert Audience(sending.store).member("josé@example.org").subscriber.status == Status.ACTIVE


def test_an_internationalised_domain_needs_no_smtputf8(database_url, unicode_csv):
    with (
        PostfixSmtpSink() as sink,
        open_sending(delivery_settings(database_url, sink.port), unicode_csv) as sending,
    ):
        campaign, _ = sending.send(SAMPLE_SLUG, ["everyone"])
        sending.work(once=True, **FAST_RETRY)
        row = ledger(sending, campaign.id)["ann@bücher.example"]
        assert row.status == "sent", row.last_reply
        assert wait_until(lambda: sink.count_received() == 2, timeout=5)
