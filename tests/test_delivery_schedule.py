"""Scheduled campaigns: nothing leaves before its time, a missed time is caught up, and times are read in
the configured zone (GMT or BST as the date has it). Campaign tests run on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import time
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update

from delivery_support import (
    SAMPLE_SLUG,
    WorkerThread,
    assert_each_once,
    audience_emails,
    campaign_status,
    ledger,
    wait_until,
)
from newsletter.db.models import Campaign
from newsletter.delivery.campaigns import parse_when
from newsletter.errors import UserError

LONDON = ZoneInfo("Europe/London")


def local_time_in(seconds: float, zone: ZoneInfo = LONDON) -> tuple[str, float]:
    """A whole-second wall-clock time `seconds` or a little more from now, as `--at` takes it, and as epoch."""
    when = (dt.datetime.now(zone) + dt.timedelta(seconds=seconds + 1)).replace(microsecond=0)
    return when.strftime("%Y-%m-%d %H:%M:%S"), when.timestamp()


def test_a_worker_sends_a_scheduled_campaign_at_its_time_and_not_before(sending, server):
    at, due = local_time_in(2.0)
    campaign, _ = sending.send(SAMPLE_SLUG, ["housing"], at=at)
    assert campaign.send_at == dt.datetime.fromtimestamp(due, dt.UTC).replace(tzinfo=None)
    expected = audience_emails(sending, ["housing"])

    with WorkerThread(sending, poll_seconds=0.1, lease_seconds=30, retry_base_seconds=30) as worker:
        early = wait_until(lambda: bool(server.messages), timeout=max(0.0, due - time.time() - 0.2))
        assert not early, "a message left before the campaign's time"
        assert campaign_status(sending, campaign.id) == "scheduled"
        assert wait_until(lambda: len(server.messages) >= len(expected), timeout=30)
        assert wait_until(lambda: campaign_status(sending, campaign.id) == "sent", timeout=10)
    assert worker.error is None
    assert worker.stats is not None and worker.stats.started_campaigns == [campaign.id]

    first = min(received.received_at for received in server.messages)
    assert first >= due, f"first message {due - first:.3f} s before the campaign's time"
    assert first < due + 5, "the campaign started late"
    assert_each_once(server.messages, expected)


def scheduled_then_time_passes(sending, audience: str = "housing"):
    """A campaign scheduled for later, then its time passing with no worker running (moved back in time)."""
    campaign, size = sending.send(SAMPLE_SLUG, [audience], at="2099-06-01 10:00")
    with sending.store.database.session() as session:
        session.execute(
            update(Campaign).where(Campaign.id == campaign.id).values(send_at=dt.datetime(2023, 10, 20, 8, 0))
        )
    return campaign, size


def test_a_time_that_passed_while_no_worker_ran_is_caught_up(sending, server):
    campaign, size = scheduled_then_time_passes(sending)
    assert campaign_status(sending, campaign.id) == "scheduled"

    stats = sending.work(once=True, lease_seconds=30, retry_base_seconds=30)

    assert stats.sent == size == 56
    assert_each_once(server.messages, audience_emails(sending, ["housing"]))
    assert campaign_status(sending, campaign.id) == "sent"


def test_a_run_before_the_time_sends_nothing_and_keeps_the_schedule(sending, server):
    at, _ = local_time_in(3600)
    campaign, _ = sending.send(SAMPLE_SLUG, ["housing"], at=at)

    stats = sending.work(once=True, lease_seconds=30, retry_base_seconds=30)

    assert stats.sent == 0
    assert server.messages == []
    assert campaign_status(sending, campaign.id) == "scheduled"
    assert ledger(sending, campaign.id) == {}  # recipients are fixed only when it starts
    report = sending.campaigns()[0]
    assert (report.campaign.id, report.total) == (campaign.id, 0)


def test_a_cancelled_schedule_never_starts(sending, server):
    at, due = local_time_in(0.5)
    campaign, _ = sending.send(SAMPLE_SLUG, ["housing"], at=at)
    assert sending.steer(campaign.id, "cancel").status.value == "cancelled"
    assert wait_until(lambda: time.time() > due + 0.1, timeout=5)

    stats = sending.work(once=True, lease_seconds=30, retry_base_seconds=30)

    assert stats.sent == 0
    assert server.messages == []
    assert campaign_status(sending, campaign.id) == "cancelled"
    assert ledger(sending, campaign.id) == {}


def test_a_paused_schedule_waits_and_resume_sends_it(sending, server):
    campaign, _ = scheduled_then_time_passes(sending)
    sending.steer(campaign.id, "pause")
    sending.work(once=True, lease_seconds=30, retry_base_seconds=30)
    assert server.messages == []
    assert campaign_status(sending, campaign.id) == "paused"

    assert sending.steer(campaign.id, "resume").status.value == "scheduled"  # it had not started yet
    sending.work(once=True, lease_seconds=30, retry_base_seconds=30)
    assert_each_once(server.messages, audience_emails(sending, ["housing"]))
    assert campaign_status(sending, campaign.id) == "sent"


# --- Reading times: the configured zone and daylight saving ---


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("2023-10-20 09:00", dt.datetime(2023, 10, 20, 8, 0)),  # BST, UTC+1
        ("2023-12-20 09:00", dt.datetime(2023, 12, 20, 9, 0)),  # GMT
        ("2024-03-31 00:30", dt.datetime(2024, 3, 31, 0, 30)),  # just before the clocks go forward
        ("2024-03-31 02:30", dt.datetime(2024, 3, 31, 1, 30)),  # just after
        ("2023-10-20T09:00", dt.datetime(2023, 10, 20, 8, 0)),
        ("2023-10-20 09:00:30", dt.datetime(2023, 10, 20, 8, 0, 30)),
        ("  2023-10-20 09:00 ", dt.datetime(2023, 10, 20, 8, 0)),
    ],
)
def test_times_are_read_in_london_time(text, utc):
    assert parse_when(text, "Europe/London") == utc


def test_another_configured_zone():
    assert parse_when("2023-10-20 09:00", "America/New_York") == dt.datetime(2023, 10, 20, 13, 0)
    assert parse_when("2023-10-20 09:00", "UTC") == dt.datetime(2023, 10, 20, 9, 0)


def test_a_time_that_does_not_exist_is_refused():
    with pytest.raises(UserError, match=r"2024-03-31 01:30.*does not exist in Europe/London"):
        parse_when("2024-03-31 01:30", "Europe/London")


def test_a_time_that_happens_twice_asks_which_one_is_meant():
    with pytest.raises(
        UserError,
        match=r"2023-10-29 01:30.*happens twice.*'2023-10-29 01:30 \+01:00' or '2023-10-29 01:30 \+00:00'",
    ):
        parse_when("2023-10-29 01:30", "Europe/London")
    assert parse_when("2023-10-29 01:30 +01:00", "Europe/London") == dt.datetime(2023, 10, 29, 0, 30)  # BST
    assert parse_when("2023-10-29 01:30 +00:00", "Europe/London") == dt.datetime(2023, 10, 29, 1, 30)  # GMT
    assert parse_when("2023-10-20T09:00Z", "Europe/London") == dt.datetime(2023, 10, 20, 9, 0)


@pytest.mark.parametrize("text", ["not a time", "20/10/2023 09:00", "2023-02-30 09:00", "tomorrow", ""])
def test_a_time_that_cannot_be_read_is_refused_with_the_expected_form(text):
    with pytest.raises(UserError, match="YYYY-MM-DD HH:MM"):
        parse_when(text, "Europe/London")


def test_an_unknown_zone_is_refused():
    with pytest.raises(UserError, match=r"Europe/Londn.*not a known time zone"):
        parse_when("2023-10-20 09:00", "Europe/Londn")


def test_refused_times_create_no_campaign(sending, server):
    for at in ("2024-03-31 01:30", "not a time"):
        with pytest.raises(UserError):
            sending.send(SAMPLE_SLUG, ["housing"], at=at)
    assert sending.campaigns() == []
