"""When the relay itself is down, refuses TLS, says 421 or drops a pooled connection: the campaign waits,
and no member is charged an attempt for it. A member's own 4xx is still counted as before.

The relay is a real aiosmtpd server behind `SwitchableRelay` (a loopback proxy that refuses connections
and cuts open ones while down); SQLite and PostgreSQL both.
"""

from __future__ import annotations

import logging
import re
import threading
import time

from delivery_support import (
    SAMPLE_SLUG,
    SwitchableRelay,
    WorkerThread,
    assert_each_once,
    campaign_status,
    delivery_settings,
    free_port,
    ledger,
    numbered_members,
    open_sending,
    recipients,
    run_cli,
    wait_until,
)
from newsletter.delivery.transport import Outcome, SmtpTransport
from newsletter.testing.smtp import RecordingSMTPServer

WORKER_LOG = "newsletter.delivery.worker"
SENDER = "bounces@example.org"
MESSAGE = b"Subject: hello\r\n\r\nHello.\r\n"


def notices(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == WORKER_LOG]


def pauses(lines: list[str]) -> list[float]:
    """The pauses the worker announced ("trying again in 4 s")."""
    return [float(found) for line in lines for found in re.findall(r"trying again in ([\d.]+) s", line)]


# --- The worker ---


def test_an_outage_longer_than_six_retry_rounds_fails_nobody(database_url, tmp_path, caplog):
    """Six retry rounds at a 0.05 s base take 1.6 s; the relay is down for 3 s from the start."""
    caplog.set_level(logging.INFO, logger=WORKER_LOG)
    with RecordingSMTPServer() as server, SwitchableRelay(server.port) as relay:
        settings = delivery_settings(database_url, relay.port)
        with open_sending(settings, numbered_members(tmp_path / "members.csv", 30)) as sending:
            campaign, _ = sending.send(SAMPLE_SLUG, ["everyone"])
            with WorkerThread(sending, lease_seconds=30, retry_base_seconds=0.05, poll_seconds=0.05):
                time.sleep(3.0)
                assert server.messages == []
                assert "failed" not in sending.status(campaign.id).counts
                relay.up()
                finished = wait_until(lambda: campaign_status(sending, campaign.id) == "sent", timeout=60)
            assert finished, sending.status(campaign.id).counts

            rows = ledger(sending, campaign.id)
            assert {(row.status, row.attempts) for row in rows.values()} == {("sent", 1)}
            assert_each_once(server.messages, {f"member{n:03d}@example.org" for n in range(30)})
    said = notices(caplog)
    assert any("relay" in line and "not counted" in line for line in said), said
    waits = pauses(said)
    assert len(waits) >= 2 and waits[1] > waits[0], said  # a growing pause
    assert any("relay answers again" in line for line in said), said


def test_a_short_outage_among_4xx_fails_nobody_who_would_have_been_delivered(database_url, tmp_path):
    """One member in five is greylisted twice; the relay goes down for 4 s partway through. Each member is
    charged its own 4xx and the send that worked (and one more if the cut caught its message in flight)."""
    members = 100
    greylisted = {f"member{n:03d}@example.org" for n in range(0, members, 5)}
    with RecordingSMTPServer(delay=0.03) as server, SwitchableRelay(server.port) as relay:
        relay.up()
        for address in greylisted:
            server.reply_at_rcpt(address, "451 4.7.1 Greylisted, try again later", times=2)
        settings = delivery_settings(database_url, relay.port)
        with open_sending(settings, numbered_members(tmp_path / "members.csv", members)) as sending:
            campaign, _ = sending.send(SAMPLE_SLUG, ["everyone"])
            worker = WorkerThread(sending, lease_seconds=30, retry_base_seconds=0.05, poll_seconds=0.05)
            with worker:
                assert wait_until(lambda: len(server.messages) >= 30, timeout=60)
                relay.outage(4.0).join()
                finished = wait_until(lambda: campaign_status(sending, campaign.id) == "sent", timeout=90)
            assert finished, sending.status(campaign.id).counts

            assert sending.status(campaign.id).counts == {"sent": members}
            got = recipients(server.messages)
            assert set(got) == {f"member{n:03d}@example.org" for n in range(members)}
            assert len(got) - members <= 2 * settings.concurrency  # only messages the cut caught in flight
            for address, row in ledger(sending, campaign.id).items():
                own = 2 if address in greylisted else 0
                assert own + 1 <= row.attempts <= own + 2, (address, row)


def test_worker_once_waits_for_a_relay_that_comes_back(database_url, tmp_path):
    with RecordingSMTPServer() as server, SwitchableRelay(server.port) as relay:
        settings = delivery_settings(database_url, relay.port)
        with open_sending(settings, numbered_members(tmp_path / "members.csv", 20)) as sending:
            campaign, _ = sending.send(SAMPLE_SLUG, ["everyone"])
            coming_back = threading.Timer(2.5, relay.up)
            coming_back.start()
            try:
                result = run_cli(settings, "worker", "--once", "--lease", "30", "--retry", "60")
            finally:
                coming_back.cancel()
            assert result.exit_code == 0, result.output
            assert result.stdout == "Worker done: 20 sent, 0 deferred, 0 failed, 0 bounced, 0 skipped\n"
            assert re.search(r"relay unavailable .*trying again in 1 s", result.stderr), result.stderr
            assert {(row.status, row.attempts) for row in ledger(sending, campaign.id).values()} == {
                ("sent", 1)
            }
            assert campaign_status(sending, campaign.id) == "sent"


def test_worker_once_gives_up_after_its_wait_and_says_what_is_left(database_url, tmp_path):
    settings = delivery_settings(database_url, free_port())  # nothing listens there
    with open_sending(settings, numbered_members(tmp_path / "members.csv", 20)) as sending:
        campaign, _ = sending.send(SAMPLE_SLUG, ["everyone"])
        started = time.monotonic()
        result = run_cli(settings, "worker", "--once", "--wait", "2")
        assert time.monotonic() - started < 30
        assert result.exit_code == 1, result.output
        assert result.stdout == "Worker done: 0 sent, 0 deferred, 0 failed, 0 bounced, 0 skipped\n"
        assert re.search(
            r"Error: the relay has not answered for \d+ s \(connection problem.*refused.*\); "
            r"20 messages are left, none of them counted as an attempt",
            result.stderr,
        ), result.stderr
        rows = ledger(sending, campaign.id)
        assert {(row.status, row.attempts) for row in rows.values()} == {("queued", 0)}
        assert all("relay unavailable" in (row.last_reply or "") for row in rows.values())
        assert campaign_status(sending, campaign.id) == "sending"

        status = run_cli(settings, "status", str(campaign.id))
        assert "the relay did not answer at" in status.stdout, status.stdout
        assert "no worker is running" not in status.stdout


# --- The transport: what is the relay's trouble and what is the recipient's ---


def test_a_relay_that_refuses_connections_is_the_relays_trouble():
    transport = SmtpTransport(f"smtp://127.0.0.1:{free_port()}")
    try:
        reply = transport.send(SENDER, "a@example.org", MESSAGE)
        assert (reply.outcome, reply.relay) == (Outcome.DEFERRED, True)
        assert "connection problem" in str(reply)
        assert transport.probe() is not None
    finally:
        transport.close()


def test_a_failed_tls_handshake_is_the_relays_trouble(server):
    transport = SmtpTransport(f"smtps://127.0.0.1:{server.port}")  # implicit TLS to a plain server
    try:
        reply = transport.send(SENDER, "a@example.org", MESSAGE)
        assert (reply.outcome, reply.relay) == (Outcome.DEFERRED, True)
    finally:
        transport.close()
    assert server.messages == []


def test_a_421_is_the_relays_trouble_and_a_4xx_or_a_drop_during_data_the_recipients(server):
    server.reply_at_rcpt("closing@example.org", "421 4.3.2 Service shutting down")
    server.reply_at_rcpt("grey@example.org", "451 4.7.1 Greylisted")
    server.drop_during_data("flaky@example.org")
    transport = SmtpTransport(f"smtp://127.0.0.1:{server.port}")
    try:
        closing = transport.send(SENDER, "closing@example.org", MESSAGE)
        grey = transport.send(SENDER, "grey@example.org", MESSAGE)
        flaky = transport.send(SENDER, "flaky@example.org", MESSAGE)
        fine = transport.send(SENDER, "fine@example.org", MESSAGE)
        assert transport.probe() is None
    finally:
        transport.close()
    assert (closing.outcome, closing.code, closing.relay) == (Outcome.DEFERRED, 421, True)
    assert (grey.outcome, grey.code, grey.relay) == (Outcome.DEFERRED, 451, False)
    assert (flaky.outcome, flaky.relay) == (Outcome.DEFERRED, False)  # the message was on its way
    assert (fine.outcome, fine.relay) == (Outcome.SENT, False)


def test_a_pooled_connection_the_relay_dropped_is_replaced_without_a_failure(server):
    with SwitchableRelay(server.port) as relay:
        relay.up()
        transport = SmtpTransport(f"smtp://127.0.0.1:{relay.port}")
        try:
            assert transport.send(SENDER, "first@example.org", MESSAGE).outcome == Outcome.SENT
            relay.down()  # the relay restarts: the pooled connection is gone
            relay.up()
            again = transport.send(SENDER, "second@example.org", MESSAGE)
        finally:
            transport.close()
    assert (again.outcome, again.relay) == (Outcome.SENT, False), again
    assert_each_once(server.messages, {"first@example.org", "second@example.org"})
