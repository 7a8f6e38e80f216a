"""The loopback SMTP servers, exercised with smtplib over real sockets: no mocks, so the tests that later rely
on these servers can trust what they record and how they misbehave."""

from __future__ import annotations

import mailbox
import smtplib
import socket
import subprocess
import sys
import textwrap
import time
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path

import pytest

from newsletter.errors import UserError
from newsletter.sink import RECEIVED_HEADER, MaildirSink
from newsletter.testing.smtp import (
    ANY_ADDRESS,
    PostfixSmtpSink,
    RecordingSMTPServer,
    Rule,
    smtp_source,
)

SENDER = "news@example.org"


def make_message(subject: str = "Issue 2023-10", body: str = "Hello, reader.\n") -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"Newsletter <{SENDER}>"
    message["To"] = "reader@example.net"
    message["Subject"] = subject
    message.set_content(body)
    return message


def send(port: int, recipients: list[str], message: EmailMessage | None = None) -> dict:
    """One SMTP transaction with the standard library client; returns smtplib's refused-recipients dict."""
    with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
        return client.send_message(message or make_message(), from_addr=SENDER, to_addrs=recipients)


# -- MaildirSink -------------------------------------------------------------------------------------------


def test_maildir_sink_stores_one_copy_per_recipient_with_envelope_and_timestamp(tmp_path: Path) -> None:
    maildir = tmp_path / "sink"
    with MaildirSink(maildir, port=0) as sink:
        assert sink.port > 0
        before = datetime.now().astimezone()
        send(sink.port, ["alice@example.net", "bob@example.net"], make_message(subject="Two copies"))
        assert sink.stored == 2
        assert sink.count() == 2

    stored = list(mailbox.Maildir(maildir, create=False))
    assert sorted(message["Delivered-To"] for message in stored) == ["alice@example.net", "bob@example.net"]
    for message in stored:
        assert message["Return-Path"] == f"<{SENDER}>"
        assert message["Subject"] == "Two copies"
        assert "Hello, reader." in message.get_payload()
        stamp = message[RECEIVED_HEADER]
        assert len(stamp.split(".")[1].split("+")[0]) == 6, f"microseconds expected in {stamp}"
        received = datetime.fromisoformat(stamp)
        assert before <= received <= datetime.now().astimezone()
    assert MaildirSink(maildir).count() == 2  # the Maildir outlives the server


def test_maildir_sink_port_in_use_is_a_user_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(UserError, match=rf"127\.0\.0\.1:{port}.*already in use"):
            MaildirSink(tmp_path / "sink", port=port).start()
        assert time.monotonic() - started < 2, "a busy port must fail at once, not after aiosmtpd's timeout"


def test_maildir_sink_accepts_new_or_empty_directories_and_refuses_others(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    for target in (tmp_path / "empty", tmp_path / "out" / "nested" / "sink"):
        with MaildirSink(target, port=0) as sink:
            send(sink.port, ["a@example.net"])
        assert MaildirSink(target).count() == 1
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(UserError, match="other content"):
        MaildirSink(tmp_path / "notes", port=0).start()
    with pytest.raises(UserError, match="is a file"):
        MaildirSink(tmp_path / "file", port=0).start()
    assert sorted(p.name for p in (tmp_path / "notes").iterdir()) == ["todo.txt"]


def test_maildir_sink_serve_forever_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        from newsletter.sink import MaildirSink
        sink = MaildirSink({str(tmp_path / "sink")!r}, port=0)
        sink.start()
        print(sink.port, flush=True)
        sink.serve_forever()
        print("stopped", sink.stored, flush=True)
        """
    )
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        send(port, ["carol@example.net"])
        process.terminate()
        out, _ = process.communicate(timeout=10)
    finally:
        process.kill()
    assert process.returncode == 0
    assert out.strip() == "stopped 1"
    assert MaildirSink(tmp_path / "sink").count() == 1


# -- RecordingSMTPServer -----------------------------------------------------------------------------------


def test_recording_server_records_envelope_data_and_times(server: RecordingSMTPServer) -> None:
    before_wall, before_mono = time.time(), time.monotonic()
    send(server.port, ["alice@example.net", "bob@example.net"], make_message(subject="Recorded"))
    send(server.port, ["carol@example.net"])

    assert server.wait_for(2, timeout=5)
    assert not server.wait_for(3, timeout=0.05)
    first, second = server.messages
    assert first.envelope_from == SENDER
    assert first.rcpt_tos == ("alice@example.net", "bob@example.net")
    assert first.message()["Subject"] == "Recorded"
    assert b"Hello, reader." in first.data
    assert before_wall <= first.received_at <= time.time()
    assert before_mono <= first.received_monotonic <= second.received_monotonic
    assert first.connection_id != second.connection_id  # two smtplib sessions, two connections
    assert server.attempts("ALICE@example.net") == 1


def test_recording_server_counts_connections_reused_for_several_messages(server: RecordingSMTPServer) -> None:
    with smtplib.SMTP("127.0.0.1", server.port, timeout=5) as client:
        for recipient in ("a@example.net", "b@example.net"):
            client.send_message(make_message(), from_addr=SENDER, to_addrs=[recipient])
    assert len({received.connection_id for received in server.messages}) == 1


def test_scripted_451_at_rcpt_then_accept(server: RecordingSMTPServer) -> None:
    rule = server.reply_at_rcpt("grey@example.net", "451 4.3.0 Try again later", times=2)
    for _ in range(2):
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            send(server.port, ["grey@example.net"])
        assert refused.value.recipients["grey@example.net"] == (451, b"4.3.0 Try again later")
    assert send(server.port, ["grey@example.net"]) == {}

    assert server.attempts("grey@example.net") == 3
    assert rule.used == 2
    assert [received.rcpt_tos for received in server.messages] == [("grey@example.net",)]


def test_scripted_rcpt_reply_only_affects_matching_recipient(server: RecordingSMTPServer) -> None:
    server.reply_at_rcpt("gone@example.net", "550 5.1.1 User unknown")
    refused = send(server.port, ["gone@example.net", "here@example.net"])
    assert refused == {"gone@example.net": (550, b"5.1.1 User unknown")}
    assert [received.rcpt_tos for received in server.messages] == [("here@example.net",)]


def test_scripted_451_at_data_then_accept(server: RecordingSMTPServer) -> None:
    server.reply_at_data("slow@example.net", "451 4.3.0 Try again later", times=1)
    with pytest.raises(smtplib.SMTPDataError) as error:
        send(server.port, ["slow@example.net"])
    assert error.value.smtp_code == 451
    assert server.messages == []
    send(server.port, ["slow@example.net"])
    assert len(server.messages) == 1
    assert server.attempts("slow@example.net") == 2


def test_scripted_550_at_data_is_not_recorded(server: RecordingSMTPServer) -> None:
    server.reply_at_data("nobody@example.net", "550 5.1.1 No such user")
    with pytest.raises(smtplib.SMTPDataError) as error:
        send(server.port, ["nobody@example.net"])
    assert (error.value.smtp_code, error.value.smtp_error) == (550, b"5.1.1 No such user")
    send(server.port, ["somebody@example.net"])
    assert [received.rcpt_tos for received in server.messages] == [("somebody@example.net",)]


@pytest.mark.parametrize("stage", ["rcpt", "data"])
def test_scripted_421_replies_then_closes_the_connection(server: RecordingSMTPServer, stage: str) -> None:
    server.script(Rule(ANY_ADDRESS, stage, "421 4.7.0 Slow down", times=1))  # type: ignore[arg-type]
    client = smtplib.SMTP("127.0.0.1", server.port, timeout=5)
    try:
        client.ehlo()
        client.mail(SENDER)
        if stage == "rcpt":
            assert client.rcpt("a@example.net") == (421, b"4.7.0 Slow down")
        else:
            assert client.rcpt("a@example.net")[0] == 250
            assert client.data(make_message().as_bytes()) == (421, b"4.7.0 Slow down")
        with pytest.raises(smtplib.SMTPServerDisconnected):
            client.noop()
    finally:
        client.close()
    assert server.messages == []
    send(server.port, ["a@example.net"])  # times=1: the next connection is served normally
    assert len(server.messages) == 1


def test_drop_during_data_closes_without_reply_and_records_nothing(server: RecordingSMTPServer) -> None:
    rule = server.drop_during_data(lambda address: address.endswith("@flaky.example"), times=1)
    with pytest.raises(smtplib.SMTPServerDisconnected):
        send(server.port, ["x@flaky.example"])
    assert rule.used == 1
    assert server.messages == []
    send(server.port, ["x@flaky.example"])
    assert server.wait_for(1, timeout=1)
    assert server.attempts("x@flaky.example") == 2


def test_delay_holds_every_data_reply(server: RecordingSMTPServer) -> None:
    server.delay = 0.2
    started = time.monotonic()
    send(server.port, ["a@example.net"])
    assert time.monotonic() - started >= 0.2


def test_reset_and_rule_validation(server: RecordingSMTPServer) -> None:
    server.reply_at_rcpt(ANY_ADDRESS, "550 5.7.1 Go away")
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        send(server.port, ["a@example.net"])
    server.reset()
    assert server.attempts("a@example.net") == 0
    send(server.port, ["a@example.net"])
    assert len(server.messages) == 1
    with pytest.raises(ValueError, match="reply must look like"):
        server.reply_at_rcpt(ANY_ADDRESS, "try later")
    with pytest.raises(ValueError, match="times"):
        server.drop_during_data(ANY_ADDRESS, times=0)


# -- Postfix smtp-sink and smtp-source ---------------------------------------------------------------------


def test_postfix_sink_accepts_counts_and_dumps_messages() -> None:
    with PostfixSmtpSink(dump=True) as sink:
        send(sink.port, ["alice@example.net", "bob@example.net"], make_message(subject="Dumped"))
        send(sink.port, ["carol@example.net"])
        assert sink.count_received() == 2
        dumps = sink.messages()
        directory = sink.directory
    assert directory is not None and not directory.exists(), "stop() removes the dumps"
    assert len(dumps) == 2
    (first,) = [dump.decode() for dump in dumps if b"Subject: Dumped" in dump]  # order is not guaranteed
    assert f"X-Mail-Args: <{SENDER}>" in first
    assert "X-Rcpt-Args: <alice@example.net>\nX-Rcpt-Args: <bob@example.net>\n" in first
    assert "Subject: Dumped\n" in first and "Hello, reader." in first


def test_postfix_sink_soft_and_hard_rejects() -> None:
    with PostfixSmtpSink(soft_reject=["rcpt"]) as sink:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            send(sink.port, ["a@example.net"])
        assert refused.value.recipients["a@example.net"][0] == 450
    with PostfixSmtpSink(hard_reject=["data"], hard_reply="554 5.7.1 Not today") as sink:
        with pytest.raises(smtplib.SMTPDataError) as error:
            send(sink.port, ["a@example.net"])
        assert (error.value.smtp_code, error.value.smtp_error) == (554, b"5.7.1 Not today")
        assert sink.count_received() == 0
    with PostfixSmtpSink(hard_reject=["."], dump=True) as sink:
        with pytest.raises(smtplib.SMTPDataError) as error:
            send(sink.port, ["a@example.net"])
        assert error.value.smtp_code == 500
        # smtp-sink counts and dumps at the final "." before answering it (documented quirk).
        assert sink.count_received() == 1 and len(sink.messages()) == 1


def test_postfix_sink_disconnect_and_421() -> None:
    with PostfixSmtpSink(disconnect=["data"], dump=True) as sink:
        with pytest.raises(smtplib.SMTPServerDisconnected):
            send(sink.port, ["a@example.net"])
        assert sink.count_received() == 0
        deadline = time.monotonic() + 2
        while sink.messages() and time.monotonic() < deadline:  # the aborted transaction's file is removed
            time.sleep(0.01)
        assert sink.messages() == []
    with PostfixSmtpSink(close_with_421=["rcpt"]) as sink:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            send(sink.port, ["a@example.net"])
        assert refused.value.recipients["a@example.net"][0] == 421


def test_postfix_sink_rejects_unknown_command_names() -> None:
    with pytest.raises(ValueError, match="knows no command"):
        PostfixSmtpSink(soft_reject=["rcpt to"])


def test_missing_postfix_binaries_raise_with_install_hint(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="postfix"), PostfixSmtpSink(binary=tmp_path / "smtp-sink"):
        pass
    with pytest.raises(RuntimeError, match="postfix"):
        smtp_source("127.0.0.1", 25, 1, binary=tmp_path / "smtp-source")


def test_smtp_source_into_postfix_sink() -> None:
    with PostfixSmtpSink() as sink:
        elapsed = smtp_source("127.0.0.1", sink.port, messages=200, size=2000, connections=4)
        assert elapsed > 0
        assert sink.wait_for(200, timeout=5)
        assert sink.count_received() == 200
        smtp_source("127.0.0.1", sink.port, messages=10, connections=2, reuse_connections=False)
        assert sink.wait_for(210, timeout=5)


def test_smtp_source_into_recording_server(server: RecordingSMTPServer) -> None:
    elapsed = smtp_source("127.0.0.1", server.port, 20, size=100, connections=2, sender="load@example.org")
    assert elapsed > 0
    assert server.wait_for(20, timeout=5)
    assert {received.envelope_from for received in server.messages} == {"load@example.org"}
    assert len({received.connection_id for received in server.messages}) <= 2  # -d: connections reused


def test_smtp_source_fails_loudly_on_a_refusing_server() -> None:
    with (
        PostfixSmtpSink(hard_reject=["mail"]) as sink,
        pytest.raises(RuntimeError, match="smtp-source failed"),
    ):
        smtp_source("127.0.0.1", sink.port, 1)
