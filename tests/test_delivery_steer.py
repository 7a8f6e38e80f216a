"""Pause, resume and cancel while a worker is sending, steered from another connection as the CLI does it.

The send is slowed by `max_rate` so there is time to steer; what counts is when the SMTP server stopped
receiving, and that nobody is sent twice. SQLite and PostgreSQL both.
"""

from __future__ import annotations

import time

import pytest

from delivery_support import (
    SAMPLE_SLUG,
    WorkerThread,
    assert_each_once,
    audience_emails,
    campaign_status,
    delivery_settings,
    ledger,
    numbered_members,
    open_sending,
    other_sending,
    wait_until,
)
from newsletter.errors import UserError
from newsletter.testing.smtp import RecordingSMTPServer

RATE = 30.0  # messages a second
MEMBERS = 60
GRACE = 1.0  # a pause must take effect within a second (the worker looks every half second)


@pytest.fixture
def sending(database_url, server, tmp_path):
    settings = delivery_settings(database_url, server.port, max_rate=RATE)
    with open_sending(settings, numbered_members(tmp_path / "members.csv", MEMBERS)) as opened:
        yield opened


@pytest.fixture
def unhurried(database_url, server, tmp_path):
    """Five members and no rate limit: for tests that only need a campaign that has been sent."""
    settings = delivery_settings(database_url, server.port)
    with open_sending(settings, numbered_members(tmp_path / "five.csv", 5)) as opened:
        yield opened


@pytest.fixture
def steering(sending):
    """Another `Sending` on the same database: the `newsletter pause` of a second terminal."""
    other = other_sending(sending)
    yield other
    other.close()


def arrived_after(server: RecordingSMTPServer, moment: float) -> int:
    return sum(1 for received in server.messages if received.received_monotonic > moment)


def test_pause_stops_within_a_second_and_resume_sends_nobody_twice(sending, steering, server):
    campaign, _ = sending.send(SAMPLE_SLUG, ["everyone"])
    expected = audience_emails(sending, ["everyone"])
    assert len(expected) == MEMBERS

    with WorkerThread(sending, poll_seconds=0.1, lease_seconds=60, retry_base_seconds=60):
        assert wait_until(lambda: len(server.messages) >= 10, timeout=30)
        assert steering.steer(campaign.id, "pause").status.value == "paused"
        paused_at = time.monotonic()

        time.sleep(GRACE)
        held = len(server.messages)
        counts = steering.status(campaign.id).counts
        assert held < MEMBERS, "the campaign finished before the pause could take effect"
        assert "sending" not in counts, f"rows still leased while paused: {counts}"
        assert counts["sent"] == held
        time.sleep(1.5)
        assert len(server.messages) == held, "messages kept arriving while paused"
        assert steering.status(campaign.id).counts == counts
        assert arrived_after(server, paused_at + GRACE) == 0
        assert campaign_status(sending, campaign.id) == "paused"

        assert steering.steer(campaign.id, "resume").status.value == "sending"
        assert wait_until(lambda: campaign_status(sending, campaign.id) == "sent", timeout=30)

    assert_each_once(server.messages, expected)
    rows = ledger(sending, campaign.id)
    assert {row.status for row in rows.values()} == {"sent"}
    assert {row.attempts for row in rows.values()} == {1}  # rows given back on pause are not "attempts"


def test_cancel_stops_for_good(sending, steering, server):
    campaign, _ = sending.send(SAMPLE_SLUG, ["everyone"])

    with WorkerThread(sending, poll_seconds=0.1, lease_seconds=60, retry_base_seconds=60):
        assert wait_until(lambda: len(server.messages) >= 10, timeout=30)
        assert steering.steer(campaign.id, "cancel").status.value == "cancelled"
        cancelled_at = time.monotonic()
        time.sleep(GRACE + 1.0)
    assert arrived_after(server, cancelled_at + GRACE) == 0

    sent = len(server.messages)
    assert sent < MEMBERS
    counts = sending.status(campaign.id).counts
    assert counts["sent"] == sent
    assert counts["queued"] == MEMBERS - sent
    assert "sending" not in counts

    # No later worker sends the rest, and it cannot be brought back.
    sending.work(once=True, lease_seconds=60, retry_base_seconds=60)
    assert len(server.messages) == sent
    with pytest.raises(UserError, match=f"campaign {campaign.id} is cancelled; it cannot be resumed"):
        steering.steer(campaign.id, "resume")
    assert campaign_status(sending, campaign.id) == "cancelled"
    assert len({address for received in server.messages for address in received.rcpt_tos}) == sent


def test_steering_refuses_what_makes_no_sense(unhurried, server):
    campaign, _ = unhurried.send(SAMPLE_SLUG, ["everyone"])
    with pytest.raises(UserError, match="is scheduled; it cannot be resumed"):
        unhurried.steer(campaign.id, "resume")
    unhurried.work(once=True, lease_seconds=60, retry_base_seconds=60)
    assert campaign_status(unhurried, campaign.id) == "sent"
    for action in ("pause", "resume"):
        with pytest.raises(UserError, match=f"is sent; it cannot be {action}d"):
            unhurried.steer(campaign.id, action)
    with pytest.raises(UserError, match="no campaign 999"):
        unhurried.steer(999, "pause")
    assert campaign_status(unhurried, campaign.id) == "sent"
    assert len(server.messages) == 5


def test_cancelling_a_sent_campaign_is_refused_in_plain_english(unhurried, server):
    campaign, _ = unhurried.send(SAMPLE_SLUG, ["everyone"])
    unhurried.work(once=True, lease_seconds=60, retry_base_seconds=60)
    with pytest.raises(UserError) as refused:
        unhurried.steer(campaign.id, "cancel")
    assert str(refused.value) == f"campaign {campaign.id} is sent; it cannot be cancelled"
