"""Rows a worker that died still holds: `worker --once` waits for their lease to run out and sends them, or
says what is left and exits 1; `status` does not promise a time left for them.

A dead worker is played by claiming rows under a name no worker runs as; SQLite and PostgreSQL both.
"""

from __future__ import annotations

import datetime as dt
import re
import time

from delivery_support import (
    SAMPLE_SLUG,
    assert_each_once,
    audience_emails,
    campaign_status,
)
from delivery_support import (
    run_cli as run,
)
from newsletter.audience.bouncing import Rules
from newsletter.db.models import utcnow
from newsletter.delivery import campaigns
from newsletter.delivery import ledger as ledger_rules
from newsletter.delivery.message import sender_domain
from newsletter.delivery.transport import Outcome, Reply


def started(sending) -> int:
    campaign, _ = sending.send(SAMPLE_SLUG, ["housing"])
    assert campaigns.start(sending.store, campaign.id, sender_domain(sending.settings))
    return campaign.id


def die_holding(sending, rows: int, lease_seconds: float) -> list[ledger_rules.Claimed]:
    """A worker leases `rows` rows and is never heard of again."""
    with sending.store.database.session() as session:
        return ledger_rules.claim(session, "dead-worker", rows, lease_seconds=lease_seconds)


def test_worker_once_after_a_crash_waits_for_the_dead_workers_leases_and_sends_them(sending, server):
    campaign_id = started(sending)
    die_holding(sending, 10, lease_seconds=2)

    result = run(sending.settings, "worker", "--once", "--lease", "30")

    assert result.exit_code == 0, result.output
    assert result.stdout == "Worker done: 56 sent, 0 deferred, 0 failed, 0 bounced, 0 skipped\n"
    assert "10 messages are leased by another worker until" in result.stderr, result.stderr
    assert_each_once(server.messages, audience_emails(sending, ["housing"]))
    assert campaign_status(sending, campaign_id) == "sent"


def test_worker_once_exits_1_naming_rows_leased_beyond_its_wait(sending, server):
    campaign_id = started(sending)
    die_holding(sending, 10, lease_seconds=300)
    lease_end = utcnow() + dt.timedelta(seconds=300)

    began = time.monotonic()
    result = run(sending.settings, "worker", "--once", "--lease", "30", "--wait", "5")

    assert time.monotonic() - began < 30  # it does not wait five minutes, nor its own --wait
    assert result.exit_code == 1, result.output
    assert result.stdout == "Worker done: 46 sent, 0 deferred, 0 failed, 0 bounced, 0 skipped\n"
    found = re.search(
        r"Error: 10 messages are leased by another worker until (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC",
        result.stderr,
    )
    assert found, result.stderr
    said = dt.datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S")
    assert abs((said - lease_end).total_seconds()) < 3
    assert len(server.messages) == 46
    assert campaign_status(sending, campaign_id) == "sending"


def test_status_gives_no_time_left_for_rows_a_stopped_worker_still_holds(sending):
    campaign_id = started(sending)
    # A lease long enough that the steps below (claims, records, two status commands) end well inside
    # it on a loaded machine: the check must come after two thirds of it and before its end.
    die_holding(sending, 10, lease_seconds=6)
    with sending.store.database.session() as session:  # a live worker sent 20 just now: a rate
        live = ledger_rules.claim(session, "live-worker", 20, lease_seconds=60)
    with sending.store.database.session() as session:
        for row in live:
            ledger_rules.record(session, row, Reply(Outcome.SENT, 250, "OK"), 60, Rules())
    with sending.store.database.session() as session:  # and holds a fresh lease on 5 more
        five = ledger_rules.claim(session, "live-worker", 5, lease_seconds=60)

    fresh = run(sending.settings, "status", str(campaign_id))
    assert "time left about" in fresh.stdout, fresh.stdout  # a live worker holds leases: an estimate

    with sending.store.database.session() as session:  # the live worker sends its five and stops
        for row in five:
            ledger_rules.record(session, row, Reply(Outcome.SENT, 250, "OK"), 60, Rules())
    time.sleep(4.3)  # over two thirds of the dead worker's lease has gone without its being renewed

    result = run(sending.settings, "status", str(campaign_id))
    assert result.exit_code == 0
    assert "time left" not in result.stdout, result.stdout
    assert re.search(
        r"10 messages are held by a worker that has stopped renewing its lease \(it has probably stopped\); "
        r"any worker may send them from \d\d:\d\d:\d\d UTC",
        result.stdout,
    ), result.stdout
