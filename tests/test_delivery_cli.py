"""`newsletter send / campaigns / status / pause / resume / cancel / worker / sink` as an editor types them.

Commands run through click's CliRunner with explicit Settings (a real database on SQLite and PostgreSQL,
a real SMTP server on loopback); `newsletter sink` runs as a separate process and is stopped with SIGTERM.
"""

from __future__ import annotations

import dataclasses
import mailbox
import re
import select
import signal
import smtplib
import subprocess
import sys
from email.message import EmailMessage

import pytest
from sqlalchemy import select as sql_select

from delivery_support import (
    SAMPLE_SLUG,
    assert_each_once,
    audience_emails,
    delivery_settings,
    free_port,
    open_sending,
)
from delivery_support import (
    run_cli as run,
)
from newsletter.db.models import TestSend
from newsletter.testing.smtp import RecordingSMTPServer

SUBJECT = "First Health Equity Network conference, plus new NHS and Gwent reports"


def test_send_then_campaigns_worker_and_status(sending, server):
    settings = sending.settings
    result = run(settings, "send", SAMPLE_SLUG, "--to", "housing")
    assert result.exit_code == 0, result.output
    match = re.fullmatch(
        rf'2023-10: "{SUBJECT}"\n  to housing: 56 members as of now\n'
        r"  sending now \(\d{4}-\d\d-\d\d \d\d:\d\d UTC\)\n"
        r"Campaign (\d+) scheduled\. A running `newsletter worker` sends it\.\n",
        result.stdout,
    )
    assert match, result.stdout
    campaign_id = match.group(1)
    assert server.messages == []  # `send` only schedules

    listed = run(settings, "campaigns")
    assert listed.exit_code == 0
    assert re.search(
        rf"^\s*{campaign_id}\s+scheduled\s+2023-10\s+to housing\s+at .* UTC", listed.stdout, re.M
    )

    worked = run(settings, "worker", "--once", "--lease", "30", "--retry", "30")
    assert worked.exit_code == 0, worked.output
    assert worked.stdout == "Worker done: 56 sent, 0 deferred, 0 failed, 0 bounced, 0 skipped\n"
    assert_each_once(server.messages, audience_emails(sending, ["housing"]))

    status = run(settings, "status", campaign_id)
    assert status.exit_code == 0
    lines = status.stdout.splitlines()
    assert re.match(rf"\s*{campaign_id}\s+sent\s+2023-10\s+to housing .* 56/56 done$", lines[0])
    assert re.search(r"^\s+sent\s+56$", status.stdout, re.M), status.stdout

    listed = run(settings, "campaigns")
    assert re.search(rf"^\s*{campaign_id}\s+sent\s+.*56/56 done$", listed.stdout, re.M), listed.stdout


def test_worker_processes_share_a_campaign_and_send_each_member_once(sending, server):
    """`worker --processes 2`: two processes on one ledger; the summary adds up both."""
    settings = sending.settings
    assert run(settings, "send", SAMPLE_SLUG, "--to", "everyone").exit_code == 0
    expected = audience_emails(sending, ["everyone"])

    worked = run(settings, "worker", "--once", "--processes", "2", "--lease", "30")

    assert worked.exit_code == 0, worked.output
    assert worked.stdout == f"Worker done: {len(expected)} sent, 0 deferred, 0 failed, 0 bounced, 0 skipped\n"
    assert_each_once(server.messages, expected)
    assert run(settings, "campaigns").stdout.split()[1] == "sent"


def test_send_to_several_audiences_and_later(sending):
    result = run(
        sending.settings,
        "send",
        SAMPLE_SLUG,
        "--to",
        "housing",
        "--to",
        "nhs-addresses",
        "--at",
        "2099-06-01 10:00",
    )
    assert result.exit_code == 0, result.output
    assert (
        "to housing, nhs-addresses: 156 members as of now\n"
        "  sending 2099-06-01 10:00 Europe/London (2099-06-01 09:00 UTC)" in result.stdout
    )


def test_campaigns_when_there_are_none(sending):
    result = run(sending.settings, "campaigns")
    assert result.exit_code == 0
    assert result.stdout == "No campaigns yet: newsletter send SLUG --to AUDIENCE\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--to", "housin"], "no segment or list called 'housin' (did you mean 'housing'?)"),
        (["--to", "nosuch"], "no segment or list called 'nosuch'; segments: everyone, "),
        (["--to", "housing", "--at", "not a time"], "--at 'not a time': write the time as YYYY-MM-DD HH:MM"),
        (["--to", "housing", "--at", "2024-03-31 01:30"], "that time does not exist in Europe/London"),
        ([], "say who to send to: --to SEGMENT_OR_LIST"),
        (["--test", "ed@example.org", "--to", "housing"], "--test sends only to the given addresses"),
        (["--test", "not an address"], "--test: "),
    ],
    ids=["misspelt", "unknown", "bad-time", "missing-hour", "no-audience", "test-and-to", "bad-test-address"],
)
def test_send_mistakes_are_explained_and_send_nothing(sending, server, args, message):
    result = run(sending.settings, "send", SAMPLE_SLUG, *args)
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: "), result.output
    assert message in result.stderr
    assert sending.campaigns() == []
    assert server.messages == []


def test_an_issue_that_fails_its_check_cannot_be_sent(database_url, server, tmp_path, write_issue):
    write_issue(
        tmp_path,
        """\
        title: T
        date: 2023-02-30
        subject: S
        preheader: ""
        editor: E
        sections:
          - kind: story
            title: A story
            body: Text.
            topics: [housng]
        """,
        slug="broken",
    )
    settings = delivery_settings(database_url, server.port, issues_dir=tmp_path / "issues")
    with open_sending(settings) as sending:
        for args in (["--to", "housing"], ["--test", "ed@example.org"]):
            result = run(settings, "send", "broken", *args)
            assert result.exit_code == 1
            assert "issues/broken/issue.yaml:2: date: '2023-02-30' is not a real date" in result.stdout
            assert "unknown topic 'housng' (did you mean 'housing'?)" in result.stdout
            assert re.fullmatch(r"\d+ problems found\.\n", result.stderr), result.stderr
        assert sending.campaigns() == []
        assert server.messages == []


def test_send_test_goes_to_the_given_address_only(sending, server):
    result = run(sending.settings, "send", SAMPLE_SLUG, "--test", "Ed@Example.org")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("test copy to Ed@example.org: sent: 250 "), result.stdout

    assert [received.rcpt_tos for received in server.messages] == [("Ed@example.org",)]
    message = server.messages[0].message()
    assert message["Subject"] == f"[TEST] {SUBJECT}"
    assert message["To"] == "Ed@example.org"
    # The campaigns' form, `<nl.<id>.<tag>.<n>@domain>`, with the test send marked `t<id>`.
    assert re.fullmatch(
        r"<nl\.t\d+\.[a-z2-7]{16}\.0@health-equity-network\.example\.org>", message["Message-ID"]
    )
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message.get_content_type() == "multipart/alternative"

    assert run(sending.settings, "campaigns").stdout.startswith("No campaigns yet")
    with sending.store.database.session() as session:
        records = session.scalars(sql_select(TestSend)).all()
        assert [(r.issue_slug, r.addresses) for r in records] == [(SAMPLE_SLUG, ["Ed@example.org"])]
        assert list(records[0].results) == ["Ed@example.org"]
        assert records[0].results["Ed@example.org"].startswith("sent: 250")


def test_send_test_to_two_editors(sending, server):
    result = run(
        sending.settings, "send", SAMPLE_SLUG, "--test", "ed@example.org", "--test", "sub@example.net"
    )
    assert result.exit_code == 0, result.output
    assert sorted(address for received in server.messages for address in received.rcpt_tos) == [
        "ed@example.org",
        "sub@example.net",
    ]
    assert all(received.message()["Subject"].startswith("[TEST] ") for received in server.messages)


def test_pause_resume_cancel_and_their_refusals(sending, server):
    settings = sending.settings
    campaign, _ = sending.send(SAMPLE_SLUG, ["housing"], at="2099-06-01 10:00")
    cid = str(campaign.id)

    assert run(settings, "pause", cid).stdout == f"Campaign {cid} is now paused\n"
    assert run(settings, "resume", cid).stdout == f"Campaign {cid} is now scheduled\n"
    assert run(settings, "cancel", cid).stdout == f"Campaign {cid} is now cancelled\n"

    refused = run(settings, "resume", cid)
    assert refused.exit_code == 1
    assert refused.stderr == f"Error: campaign {cid} is cancelled; it cannot be resumed\n"

    sent, _ = sending.send(SAMPLE_SLUG, ["housing"])
    assert run(settings, "worker", "--once").exit_code == 0
    for action in ("resume", "pause"):
        refused = run(settings, action, str(sent.id))
        assert refused.exit_code == 1
        assert refused.stderr == f"Error: campaign {sent.id} is sent; it cannot be {action}d\n"
    assert len(server.messages) == 56  # only the campaign that was not cancelled

    for command in ("status", "pause", "resume", "cancel"):
        missing = run(settings, command, "999")
        assert missing.exit_code == 1
        assert "no campaign 999; `newsletter campaigns` lists them" in missing.stderr


def test_worker_once_with_the_relay_down_waits_then_says_what_is_left(sending):
    settings = dataclasses.replace(sending.settings, smtp_url=f"smtp://127.0.0.1:{free_port()}")
    sending.send(SAMPLE_SLUG, ["housing"])
    result = run(settings, "worker", "--once", "--retry", "60", "--wait", "1")
    assert result.exit_code == 1
    assert result.stdout == "Worker done: 0 sent, 0 deferred, 0 failed, 0 bounced, 0 skipped\n"
    assert "relay unavailable (connection problem: " in result.stderr
    assert "56 messages are left, none of them counted as an attempt" in result.stderr


def test_commands_on_a_database_that_was_never_created(tmp_path, server):
    settings = delivery_settings(f"sqlite:///{tmp_path / 'none.sqlite3'}", server.port)
    for args in (["campaigns"], ["send", SAMPLE_SLUG, "--to", "housing"], ["worker", "--once"]):
        result = run(settings, *args)
        assert result.exit_code == 1, args
        assert "newsletter db upgrade" in result.stderr


# --- newsletter sink ---


def read_line(process: subprocess.Popen[str], timeout: float) -> str:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    assert ready, "no output within the timeout"
    return process.stdout.readline()


def start_sink(tmp_path, maildir):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "newsletter", "sink", "--port", str(port), "--maildir", str(maildir)],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return process, port


def stop(process: subprocess.Popen[str]) -> tuple[str, str]:
    """SIGTERM, as a service manager stops it; then the rest of its output (the process is ours, by PID)."""
    process.send_signal(signal.SIGTERM)
    try:
        return process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def test_sink_command_keeps_what_it_receives_and_stops_cleanly_on_sigterm(tmp_path):
    maildir = tmp_path / "out" / "sink"
    process, port = start_sink(tmp_path, maildir)
    try:
        line = read_line(process, timeout=20)
        assert line == f"Sink listening on 127.0.0.1:{port}, storing mail in out/sink (Ctrl-C stops)\n"
        message = EmailMessage()
        message["From"] = "editor@example.org"
        message["To"] = "reader@example.net"
        message["Subject"] = "Trying the sink"
        message.set_content("Hello from the test.\n")
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            assert client.send_message(message) == {}
    finally:
        _, err = stop(process)
    # serve_forever() turns SIGTERM into a clean return: exit code 0, not -15.
    assert process.returncode == 0, err
    assert "Traceback" not in err
    stored = list(mailbox.Maildir(maildir, create=False))
    assert len(stored) == 1
    assert stored[0]["Subject"] == "Trying the sink"
    assert stored[0]["Delivered-To"] == "reader@example.net"
    assert "Hello from the test." in stored[0].get_payload()


def test_sink_command_refuses_a_busy_port(tmp_path):
    with RecordingSMTPServer() as busy:
        result = subprocess.run(
            [sys.executable, "-m", "newsletter", "sink", "--port", str(busy.port), "--maildir", "sink"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1
    assert f"127.0.0.1:{busy.port}: the port is already in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_campaign_delivered_into_the_sink(sending, tmp_path):
    """The editor's dry run: `newsletter sink` in one terminal, `send` and `worker --once` in another."""
    maildir = tmp_path / "sink"
    process, port = start_sink(tmp_path, maildir)
    try:
        assert read_line(process, timeout=20).startswith("Sink listening on")
        settings = dataclasses.replace(sending.settings, smtp_url=f"smtp://127.0.0.1:{port}")
        assert run(settings, "send", SAMPLE_SLUG, "--to", "housing").exit_code == 0
        worked = run(settings, "worker", "--once")
        assert worked.stdout.startswith("Worker done: 56 sent,"), worked.output
    finally:
        stop(process)
    assert process.returncode == 0
    delivered = [message["Delivered-To"].lower() for message in mailbox.Maildir(maildir, create=False)]
    assert sorted(delivered) == sorted(audience_emails(sending, ["housing"]))
