"""Crash safety and shared work: `newsletter worker` killed at random points, stopped with SIGTERM, and
several workers on one campaign. The workers are real processes (or threads with their own connections);
the relay is a real SMTP server on loopback; SQLite and PostgreSQL both.
"""

from __future__ import annotations

import datetime as dt
import random
import signal
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest

from delivery_support import (
    SAMPLE_SLUG,
    SwitchableRelay,
    WorkerThread,
    assert_each_once,
    audience_emails,
    campaign_status,
    delivery_settings,
    end_process,
    ledger,
    numbered_members,
    open_sending,
    other_sending,
    recipients,
    start_worker,
    wait_until,
    worker_logs,
)
from newsletter.audience.bouncing import Rules
from newsletter.db.models import utcnow
from newsletter.delivery import campaigns
from newsletter.delivery import ledger as ledger_module
from newsletter.delivery.message import sender_domain
from newsletter.delivery.transport import Outcome, Reply
from newsletter.settings import Settings
from newsletter.testing.smtp import RecordingSMTPServer

KILLS = 5
CONCURRENCY = 2
SEED = 20231020


def message_ids_by_address(server: RecordingSMTPServer) -> dict[str, set[str]]:
    found: dict[str, set[str]] = defaultdict(set)
    for received in server.messages:
        message_id = received.message()["Message-ID"]
        for address in received.rcpt_tos:
            found[address.lower()].add(message_id)
    return found


def kill_once_it_sends(
    settings: Settings,
    workdir: Path,
    server: RecordingSMTPServer,
    kill: int,
    before_the_kill: Callable[[], None],
) -> None:
    """Start `newsletter worker`, let it send ten more messages, run `before_the_kill`, then SIGKILL it."""
    before = len(server.messages)
    process = start_worker(settings, workdir, "--lease", "2", "--retry", "0.2")
    try:
        progressed = wait_until(
            lambda: len(server.messages) >= before + 10 or process.poll() is not None, timeout=60
        )
        assert process.poll() is None, f"worker {kill} ended early:\n{worker_logs(workdir)}"
        assert progressed, f"worker {kill} sent nothing in 60 s:\n{worker_logs(workdir)}"
        before_the_kill()
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        end_process(process)
    assert process.returncode == -signal.SIGKILL


def test_sigkill_at_random_points_loses_nobody_and_repeats_only_what_was_in_flight(database_url, tmp_path):
    rng = random.Random(SEED)
    workdir = tmp_path / "workers"
    with RecordingSMTPServer(delay=0.01) as server:
        settings = delivery_settings(database_url, server.port, concurrency=CONCURRENCY)
        with open_sending(settings) as sending:
            expected = audience_emails(sending, ["everyone"])
            campaign, size = sending.send(SAMPLE_SLUG, ["everyone"])
            assert size == len(expected) == 400

            for kill in range(KILLS):
                kill_once_it_sends(settings, workdir, server, kill, lambda: time.sleep(rng.uniform(0.0, 0.4)))

            sent_while_killing = len(server.messages)
            assert sent_while_killing < len(expected), "the campaign finished before the last kill"
            assert campaign_status(sending, campaign.id) == "sending"

            # The last worker's leases expire after two seconds; then a fresh worker drains the rest.
            time.sleep(2.2)
            final = start_worker(settings, workdir, "--once", "--lease", "2", "--retry", "0.2")
            try:
                assert final.wait(timeout=120) == 0, worker_logs(workdir)
            finally:
                end_process(final)
            assert "Worker done:" in (workdir / "worker-5.out").read_text()

            got = Counter(recipients(server.messages))
            assert set(got) == expected, f"lost: {sorted(expected - set(got))[:10]}"
            repeated = {address: count for address, count in got.items() if count > 1}
            ids_by_address = message_ids_by_address(server)
            for address, ids in ids_by_address.items():
                assert len(ids) == 1, f"{address} got different Message-IDs: {ids}"
            duplicates = sum(count - 1 for count in repeated.values())
            assert duplicates <= KILLS * CONCURRENCY * 2, f"{duplicates} duplicates: {repeated}"

            rows = ledger(sending, campaign.id)
            assert set(rows) == expected
            assert {row.status for row in rows.values()} == {"sent"}
            assert {row.lease_owner for row in rows.values()} == {None}
            for address, row in rows.items():
                assert ids_by_address[address] == {row.message_id}
            assert campaign_status(sending, campaign.id) == "sent"
            assert sending.status(campaign.id).counts == {"sent": 400}


def test_sigkill_while_the_relay_is_down_for_part_of_the_run_loses_nobody_and_fails_nobody(
    database_url, tmp_path
):
    """The test above, with the relay down for 8 s around the second kill and 2 s around the fifth: six
    retry rounds at the workers' 0.2 s base take about 6 s, yet no member is charged for the outage."""
    rng = random.Random(SEED + 1)
    workdir = tmp_path / "workers"
    with RecordingSMTPServer(delay=0.01) as server, SwitchableRelay(server.port) as relay:
        relay.up()
        settings = delivery_settings(database_url, relay.port, concurrency=CONCURRENCY)
        with open_sending(settings) as sending:
            expected = audience_emails(sending, ["everyone"])
            campaign, _ = sending.send(SAMPLE_SLUG, ["everyone"])
            outages = {1: 8.0, 4: 2.0}  # kill number -> seconds the relay is down before that kill

            for kill in range(KILLS):

                def before_the_kill(kill: int = kill) -> None:
                    if kill in outages:
                        relay.down()
                        time.sleep(outages[kill])
                        assert "failed" not in sending.status(campaign.id).counts
                    else:
                        time.sleep(rng.uniform(0.0, 0.4))

                try:
                    kill_once_it_sends(settings, workdir, server, kill, before_the_kill)
                finally:
                    relay.up()

            assert len(server.messages) < len(expected), "the campaign finished before the last kill"
            assert campaign_status(sending, campaign.id) == "sending"
            logs = worker_logs(workdir)
            assert "relay unavailable" in logs and "not counted as attempts" in logs, logs

            final = start_worker(settings, workdir, "--once", "--lease", "2", "--retry", "0.2")
            try:
                assert final.wait(timeout=120) == 0, worker_logs(workdir)
            finally:
                end_process(final)

            got = Counter(recipients(server.messages))
            assert set(got) == expected, f"lost: {sorted(expected - set(got))[:10]}"
            for address, ids in message_ids_by_address(server).items():
                assert len(ids) == 1, f"{address} got different Message-IDs: {ids}"
            duplicates = sum(count - 1 for count in got.values())
            # In flight at each kill, and at each outage's cut.
            assert duplicates <= (KILLS + len(outages)) * CONCURRENCY * 2, f"{duplicates} duplicates"
            rows = ledger(sending, campaign.id)
            assert {row.status for row in rows.values()} == {"sent"}
            assert campaign_status(sending, campaign.id) == "sent"
            assert sending.status(campaign.id).counts == {"sent": 400}


def test_sigterm_finishes_what_is_in_flight_and_gives_the_rest_back(database_url, tmp_path):
    workdir = tmp_path / "workers"
    with RecordingSMTPServer(delay=0.01) as server:
        settings = delivery_settings(database_url, server.port, concurrency=CONCURRENCY)
        with open_sending(settings) as sending:
            campaign, _ = sending.send(SAMPLE_SLUG, ["housing"])
            expected = audience_emails(sending, ["housing"])
            process = start_worker(settings, workdir, "--lease", "60", "--retry", "60")
            try:
                assert wait_until(lambda: len(server.messages) >= 5, timeout=60), worker_logs(workdir)
                process.send_signal(signal.SIGTERM)
                assert process.wait(timeout=20) == 0, worker_logs(workdir)
            finally:
                end_process(process)
            output = (workdir / "worker-0.out").read_text()
            assert output.startswith("Worker done: "), worker_logs(workdir)
            assert "Stopping after the messages in flight" in (workdir / "worker-0.err").read_text()

            counts = sending.status(campaign.id).counts
            assert "sending" not in counts, f"leases left behind by a clean stop: {counts}"
            assert counts["sent"] == len(server.messages)
            assert counts["sent"] < len(expected)
            assert int(output.split()[2].replace(",", "")) == counts["sent"]

            # A worker started later (its lease is long: only rows given back can be due) finishes the job.
            sending.work(once=True, lease_seconds=60, retry_base_seconds=60)
            assert_each_once(server.messages, expected)
            assert campaign_status(sending, campaign.id) == "sent"


# --- Several workers, one campaign ---


def test_three_workers_share_one_campaign_without_sending_anyone_twice(database_url):
    with RecordingSMTPServer(delay=0.005) as server:
        settings = delivery_settings(database_url, server.port, concurrency=CONCURRENCY)
        with open_sending(settings) as sending:
            expected = audience_emails(sending, ["everyone"])
            campaign, _ = sending.send(SAMPLE_SLUG, ["everyone"])
            workers = [other_sending(sending) for _ in range(3)]
            threads = [
                WorkerThread(worker, lease_seconds=60, retry_base_seconds=60, poll_seconds=0.05)
                for worker in workers
            ]
            try:
                for thread in threads:
                    thread.thread.start()
                finished = wait_until(lambda: campaign_status(sending, campaign.id) == "sent", timeout=90)
                stats = [thread.join() for thread in threads]
            finally:
                for thread in threads:
                    thread.stop.set()
                for worker in workers:
                    worker.close()
            assert finished

            assert_each_once(server.messages, expected)
            assert sum(stat.sent for stat in stats) == len(expected)
            assert sum(1 for stat in stats if stat.sent > 0) >= 2, [stat.sent for stat in stats]
            assert len({received.connection_id for received in server.messages}) > CONCURRENCY
            assert sending.status(campaign.id).counts == {"sent": len(expected)}


def test_a_worker_whose_lease_was_taken_over_records_nothing(database_url, tmp_path):
    with RecordingSMTPServer() as server:
        settings = delivery_settings(database_url, server.port)
        with open_sending(settings) as sending:
            campaign, _ = sending.send(SAMPLE_SLUG, ["housing"])
            domain = sender_domain(settings)
            assert campaigns.start(sending.store, campaign.id, domain)
            database = sending.store.database

            with database.session() as session:
                (slow,) = ledger_module.claim(session, "slow-worker", 1, lease_seconds=0.2)
            time.sleep(0.3)  # the slow worker's lease runs out; another worker takes the row over
            with database.session() as session:
                (taker,) = ledger_module.claim(session, "second-worker", 1, lease_seconds=60)
            assert taker.delivery_id == slow.delivery_id
            assert taker.attempts == 2

            # The slow worker finally hears back (a 4xx), then the new lease holder delivers the message.
            with database.session() as session:
                ledger_module.record(
                    session, slow, Reply(Outcome.DEFERRED, 451, "4.7.1 Try later"), 60, Rules()
                )
            with database.session() as session:
                ledger_module.record(session, taker, Reply(Outcome.SENT, 250, "OK"), 60, Rules())

            row = ledger(sending, campaign.id)[taker.email.lower()]
            assert row.status == "sent", f"the member got the message, but the ledger says {row.status}"
            assert row.attempts == 2


def test_an_expired_lease_makes_the_rows_due_again(database_url):
    """A worker that died keeps its rows only until its lease runs out."""
    with RecordingSMTPServer() as server:
        settings = delivery_settings(database_url, server.port)
        with open_sending(settings) as sending:
            campaign, _ = sending.send(SAMPLE_SLUG, ["housing"])
            domain = sender_domain(settings)
            assert campaigns.start(sending.store, campaign.id, domain)
            with sending.store.database.session() as session:
                dead = ledger_module.claim(session, "dead-worker", 10, lease_seconds=1)
            assert len(dead) == 10
            lease_end = utcnow() + dt.timedelta(seconds=1)

            # Told not to wait (`worker --once --wait 0`), a worker leaves them and says so.
            stats = sending.work(once=True, lease_seconds=60, retry_base_seconds=60, once_wait_seconds=0)
            assert len(server.messages) == 46  # the dead worker's ten rows are not due yet
            assert sending.status(campaign.id).counts == {"sent": 46, "sending": 10}
            assert stats.unfinished.startswith("10 messages are leased by another worker until ")

            assert wait_until(lambda: utcnow() > lease_end, timeout=3)
            sending.work(once=True, lease_seconds=60, retry_base_seconds=60)
            assert_each_once(server.messages, audience_emails(sending, ["housing"]))
            rows = ledger(sending, campaign.id)
            assert {rows[claimed.email.lower()].attempts for claimed in dead} == {2}
            assert campaign_status(sending, campaign.id) == "sent"


def test_a_slow_batch_is_not_taken_over_by_another_live_worker(database_url, tmp_path):
    # One connection at 8 messages a second: a batch of 25 takes three seconds, longer than a 1 s lease.
    with RecordingSMTPServer() as server:
        settings = delivery_settings(database_url, server.port, concurrency=1, max_rate=8.0)
        with open_sending(settings, numbered_members(tmp_path / "members.csv", 25)) as sending:
            campaign, _ = sending.send(SAMPLE_SLUG, ["everyone"])
            first = WorkerThread(sending, lease_seconds=1, retry_base_seconds=60, poll_seconds=0.05)
            second_sending = other_sending(sending)
            second = WorkerThread(second_sending, lease_seconds=1, retry_base_seconds=60, poll_seconds=0.05)
            try:
                with first:
                    assert wait_until(lambda: len(server.messages) >= 1, timeout=30)
                    with second:
                        finished = wait_until(
                            lambda: campaign_status(sending, campaign.id) == "sent", timeout=30
                        )
            finally:
                second_sending.close()
            assert finished
            assert_each_once(server.messages, {f"member{n:03d}@example.org" for n in range(25)})


def test_a_ledger_write_that_fails_stops_the_worker_with_its_error(database_url, monkeypatch):
    """Replies are written on a thread of their own; when a write fails, the worker stops with that error
    instead of sending on with nothing recorded, and what it could not record stays leased (due again
    when the lease runs out), never marked sent or forgotten."""
    with RecordingSMTPServer() as server:
        settings = delivery_settings(database_url, server.port)
        with open_sending(settings) as sending:
            campaign, size = sending.send(SAMPLE_SLUG, ["housing"])
            writes = []
            record_sent = ledger_module.SentRecorder.__call__

            def failing_on_the_second_write(self, results):
                writes.append(len(results))
                if len(writes) == 2:
                    raise OSError("disk I/O error (the test's)")
                return record_sent(self, results)

            monkeypatch.setattr(ledger_module.SentRecorder, "__call__", failing_on_the_second_write)
            with pytest.raises(OSError, match="the test's"):
                sending.work(once=True, lease_seconds=60, retry_base_seconds=60)
            monkeypatch.undo()

            rows = ledger(sending, campaign.id)
            received = set(recipients(server.messages))
            marked_sent = {email for email, row in rows.items() if row.status == "sent"}
            assert marked_sent <= received  # nothing recorded as sent that the relay did not get
            assert len(marked_sent) == writes[0] < size  # the first write only; it did not carry on
            unrecorded = received - marked_sent
            assert unrecorded and all(rows[email].status == "sending" for email in unrecorded)
